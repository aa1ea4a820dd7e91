//! Truncated BPTT (k1, k2) on synthetic inputs, in f64: an update's gradient is exactly the
//! gradient of one forward over its k2 steps from the carried state (the chunk chain loses
//! nothing), the carried state is the one an uninterrupted forward reaches, k1 = k2 = T is
//! ordinary BPTT, a decoupled model's update is the gradient of its losses (central
//! differences) and its twin loss leaves ended streams out, and misuse is refused with
//! the reason.

use crate::common::surrogate;
use recur::model::{Coupling, FusionKind, HeadKind, HeadOutput, ModelConfig, SequenceModel};
use recur::rnn::{CellKind, InitialState, InputGradient, RnnConfig, SequenceBatch};
use recur::train::{TruncatedStreams, Truncation};
use recur::Rng;

const INPUT: usize = 3;
const OUTPUTS: usize = 2;

fn config(cell: CellKind, layers: usize, head: HeadKind) -> ModelConfig {
    ModelConfig {
        encoder: RnnConfig {
            cell,
            input_size: INPUT,
            hidden_size: 4,
            num_layers: layers,
            bidirectional: false,
            ..RnnConfig::default()
        },
        coupling: Coupling::Coupled,
        twin_weight: 0.0,
        fusion: FusionKind::Concat,
        head,
        outputs: OUTPUTS,
        precisions: 1,
        detach_precision: false,
    }
}

/// Every cell, one and two layers, both heads; layer norm with variational dropout and a
/// learned initial state on one layer (one layer: its dropout masks are per sequence, the
/// same for a chunk as for the whole window).
fn cases() -> Vec<ModelConfig> {
    let mut cases = Vec::new();
    for cell in CellKind::ALL {
        cases.push(config(cell, 2, HeadKind::Linear));
        let mut c = config(cell, 1, HeadKind::Gaussian);
        c.encoder.learn_initial_state = true;
        if cell != CellKind::Jordan {
            c.encoder.layer_norm = true;
            c.encoder.input_dropout = 0.3;
            c.encoder.state_dropout = 0.2;
        }
        cases.push(c);
    }
    cases
}

fn random(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.normal()).collect()
}

fn close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-11 * (1.0 + y.abs()), "{what}[{i}]: {x} vs {y}");
    }
}

fn assert_same_grads(a: &mut SequenceModel<f64>, b: &mut SequenceModel<f64>, what: &str) {
    let mut any = false;
    for ((name, x), (_, y)) in a.named_mut().into_iter().zip(b.named_mut()) {
        close(&x.data, &y.data, &format!("{what}: {name}"));
        any |= y.data.iter().any(|v| *v != 0.0);
    }
    assert!(any, "{what}: every gradient is zero");
}

#[test]
fn an_update_is_the_exact_gradient_of_its_window_from_the_carried_state() {
    let (steps, batch, k1, k2) = (9, 3, 3, 6);
    let mut rng = Rng::new(7);
    let x = random(&mut rng, steps * batch * INPUT);
    let plane = batch * INPUT;
    // streams of one length, and of three: one ends in the window, one before it (its
    // chunks run one padded step each, which the loss leaves out)
    for lengths in [None, Some(vec![9usize, 5, 2])] {
        // a stream's length within steps `from..from + n`, at least 1 (as the chunks run it)
        let within = |from: usize, n: usize| {
            lengths.as_ref().map(|l| l.iter().map(|&len| len.saturating_sub(from).clamp(1, n)).collect::<Vec<usize>>())
        };
        for (i, c) in cases().into_iter().enumerate() {
            let what = format!(
                "{:?} L={} LN={} lengths={lengths:?}",
                c.encoder.cell, c.encoder.num_layers, c.encoder.layer_norm
            );
            let gaussian = c.head == HeadKind::Gaussian;
            let model = SequenceModel::<f64>::new(c, i as u64).unwrap();
            let seed = 99;
            let input = SequenceBatch { x: &x, steps, batch, lengths: lengths.as_deref() };
            let mut streams = TruncatedStreams::new(&model, Truncation { k1, k2, steps }, batch).unwrap();
            let (mut outs, mut grads) = (Vec::new(), model.zeros_like());
            for u in 0..3 {
                outs.push(streams.forward(&model, &input, u, seed).unwrap());
            }
            assert_eq!(outs[2].steps, 6..9);
            // ∂L/∂x̂ and ∂L/∂λ̂ on the newest chunk, zero where a stream has ended (its task's mask)
            let ended = |t: usize, b: usize| lengths.as_ref().is_some_and(|l| 6 + t >= l[b]);
            let mut d_mean = random(&mut rng, k1 * batch * OUTPUTS);
            let mut d_precision = if gaussian { random(&mut rng, k1 * batch) } else { Vec::new() };
            for t in 0..k1 {
                for b in (0..batch).filter(|&b| ended(t, b)) {
                    d_mean[(t * batch + b) * OUTPUTS..(t * batch + b + 1) * OUTPUTS].fill(0.0);
                    if gaussian {
                        d_precision[t * batch + b] = 0.0;
                    }
                }
            }
            streams.backward(&model, &input, (&d_mean, &d_precision), None, &mut grads).unwrap();

            // the state carried into step 3, from a training forward of steps 0..3 with the
            // same seed (the same dropout masks: one per sequence)
            let encoder = &model.forward_branch;
            let first = within(0, 3);
            let head_start = SequenceBatch { x: &x[..3 * plane], steps: 3, batch, lengths: first.as_deref() };
            let (carried, _) = encoder.forward_train(&head_start, &InitialState::default(), seed).unwrap();
            let state =
                InitialState { h0: Some(&carried.h_n), c0: (!carried.c_n.is_empty()).then_some(&carried.c_n[..]) };
            let rest = within(3, 6);
            let window = SequenceBatch { x: &x[3 * plane..], steps: 6, batch, lengths: rest.as_deref() };
            let (out, mut cache) = encoder.forward_train(&window, &state, seed).unwrap();
            let h = model.forward_branch.config().hidden_size;
            let z = &out.output[3 * batch * h..];
            let head = model.head.forward(z).unwrap();
            // x̂ of the newest chunk, where the streams have not ended
            for t in 0..k1 {
                for b in (0..batch).filter(|&b| !ended(t, b)) {
                    let row = (t * batch + b) * OUTPUTS..(t * batch + b + 1) * OUTPUTS;
                    close(&outs[2].head.mean[row.clone()], &head.mean[row], &format!("{what}: x̂ at ({t}, {b})"));
                }
            }
            let mut want = model.zeros_like();
            let dz = model.head.backward(z, &d_mean, &d_precision, &mut want.head).unwrap();
            let mut d_output = vec![0.0; 3 * batch * h];
            d_output.extend(dz);
            encoder
                .backward_with(
                    &window,
                    &mut cache,
                    &d_output,
                    None,
                    None,
                    want.forward_branch.cells_mut(),
                    InputGradient::Skip,
                )
                .unwrap();
            assert_same_grads(&mut grads, &mut want, &what);
            // the window starts at a carried state: a learned initial state took no part
            for (name, g) in grads.named_mut() {
                if name.contains("initial") {
                    assert!(g.data.iter().all(|&v| v == 0.0), "{what}: {name} got a gradient");
                }
            }

            // without dropout, the carried state is the one an uninterrupted forward reaches
            if model.config().encoder.input_dropout == 0.0 && lengths.is_none() {
                let whole = model.forward(&SequenceBatch { x: &x, steps, batch, lengths: None }).unwrap();
                for (u, out) in outs.iter().enumerate() {
                    let rows = u * k1 * batch * OUTPUTS..(u + 1) * k1 * batch * OUTPUTS;
                    close(&out.head.mean, &whole.mean[rows], &format!("{what}: chunk {u} against one forward"));
                }
            }
        }
    }
}

#[test]
fn one_update_over_the_whole_stream_is_ordinary_bptt() {
    let (steps, batch) = (7, 2);
    let mut rng = Rng::new(3);
    let x = random(&mut rng, steps * batch * INPUT);
    for (i, c) in cases().into_iter().enumerate() {
        let what = format!("{:?} L={}", c.encoder.cell, c.encoder.num_layers);
        let gaussian = c.head == HeadKind::Gaussian;
        let model = SequenceModel::<f64>::new(c, 40 + i as u64).unwrap();
        let d_mean = random(&mut rng, steps * batch * OUTPUTS);
        let d_precision = if gaussian { random(&mut rng, steps * batch) } else { Vec::new() };
        let mut streams = TruncatedStreams::new(&model, Truncation { k1: steps, k2: steps, steps }, batch).unwrap();
        let mut grads = model.zeros_like();
        let input = SequenceBatch { x: &x, steps, batch, lengths: None };
        streams.forward(&model, &input, 0, 5).unwrap();
        streams.backward(&model, &input, (&d_mean, &d_precision), None, &mut grads).unwrap();
        let (_, mut cache) = model.forward_train(&input, 5).unwrap();
        let mut want = model.zeros_like();
        model.backward(&mut cache, (&d_mean, &d_precision), None, &mut want).unwrap();
        assert_same_grads(&mut grads, &mut want, &what);
    }
}

#[test]
fn misuse_is_refused_with_the_reason() {
    let model = SequenceModel::<f64>::new(config(CellKind::Lstm, 1, HeadKind::Linear), 1).unwrap();
    for (k1, k2) in [(0, 4), (3, 4), (4, 2)] {
        let e = TruncatedStreams::new(&model, Truncation { k1, k2, steps: 12 }, 2).err().unwrap().to_string();
        assert!(e.contains("multiple of k1"), "{e}");
    }
    let mut coupled = config(CellKind::Lstm, 1, HeadKind::Linear);
    coupled.encoder.bidirectional = true;
    let bi = SequenceModel::<f64>::new(coupled.clone(), 1).unwrap();
    let e = TruncatedStreams::new(&bi, Truncation { k1: 3, k2: 3, steps: 12 }, 2).err().unwrap().to_string();
    assert!(e.contains("a coupled bidirectional one reads the future"), "{e}");
    let decoupled = SequenceModel::<f64>::new(ModelConfig { coupling: Coupling::Decoupled, ..coupled }, 1).unwrap();
    assert!(TruncatedStreams::new(&decoupled, Truncation { k1: 3, k2: 3, steps: 12 }, 2).is_ok());
    let x = vec![0.5; 12 * 2 * INPUT];
    let mut streams = TruncatedStreams::new(&model, Truncation { k1: 3, k2: 3, steps: 12 }, 2).unwrap();
    let input = |x| SequenceBatch { x, steps: 12, batch: 2, lengths: None };
    let e = streams.forward(&model, &input(&x), 2, 0).err().unwrap().to_string();
    assert!(e.contains("before the ones it follows"), "{e}");
    let e = streams.forward(&model, &input(&x[..10]), 0, 0).err().unwrap().to_string();
    assert!(e.contains("streams"), "{e}");
    let e = streams.backward(&model, &input(&x), (&[], &[]), None, &mut model.zeros_like()).err().unwrap().to_string();
    assert!(e.contains("backward before forward"), "{e}");
    // a forward that failed leaves nothing to backpropagate (not the update before it)
    let out = streams.forward(&model, &input(&x), 0, 0).unwrap();
    let ones = vec![1.0; out.head.mean.len()];
    streams.backward(&model, &input(&x), (&ones, &[]), None, &mut model.zeros_like()).unwrap();
    assert!(streams.forward(&model, &input(&x[..10]), 1, 0).is_err());
    let e =
        streams.backward(&model, &input(&x), (&ones, &[]), None, &mut model.zeros_like()).err().unwrap().to_string();
    assert!(e.contains("backward before forward"), "{e}");
    let bad = SequenceBatch { lengths: Some(&[12, 0]), ..input(&x) };
    let e = streams.forward(&model, &bad, 0, 0).err().unwrap().to_string();
    assert!(e.contains("stream lengths"), "{e}");
}

/// Σ d ⊙ x̂ + Σ e ⊙ λ̂: a loss whose gradient on the outputs is (d, e).
fn linear_loss(out: &HeadOutput<f64>, (d_mean, d_precision): (&[f64], &[f64])) -> f64 {
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    dot(&out.mean, d_mean) + dot(&out.precision, d_precision)
}

/// Decoupled models under TBPTT (LSTM and GRU, every fusion, both heads, streams of one
/// length and of three): with the carried state fixed, central differences of the
/// update's losses as functions of the weights equal its backward, each parameter against
/// the loss it learns from (`surrogate`: the decoupled stop-gradients); the teacher reads
/// the newest chunk only, and the twin loss leaves out the padded step of a stream that
/// has ended.
#[test]
fn a_decoupled_update_is_the_gradient_of_its_losses_from_the_carried_state() {
    let (steps, batch, k1, k2) = (9, 3, 3, 6);
    let mut rng = Rng::new(11);
    let x = random(&mut rng, steps * batch * INPUT);
    let mut checked = 0;
    for lengths in [None, Some(vec![9usize, 5, 2])] {
        // streams 1 and 2 have ended before the newest chunk (steps 6..9)
        let ended = |b: usize| lengths.is_some() && b > 0;
        for (i, (cell, fusion)) in [CellKind::Lstm, CellKind::GruResetAfter]
            .into_iter()
            .flat_map(|cell| FusionKind::ALL.into_iter().map(move |f| (cell, f)))
            .enumerate()
        {
            let head = if i % 2 == 0 { HeadKind::Gaussian } else { HeadKind::Linear };
            let mut c = config(cell, 1 + i % 2, head);
            c.encoder.bidirectional = true;
            c.encoder.input_dropout = 0.2;
            c.coupling = Coupling::Decoupled;
            c.twin_weight = 0.7;
            c.fusion = fusion;
            let what = format!("{cell:?} {fusion:?} L={} {head:?} lengths={lengths:?}", c.encoder.num_layers);
            let mut model = SequenceModel::<f64>::new(c, 60 + i as u64).unwrap();
            let input = SequenceBatch { x: &x, steps, batch, lengths: lengths.as_deref() };
            let mut streams = TruncatedStreams::new(&model, Truncation { k1, k2, steps }, batch).unwrap();
            for u in 0..2 {
                streams.forward(&model, &input, u, 3).unwrap();
            }
            let out = streams.forward(&model, &input, 2, 3).unwrap();
            let teacher = out.teacher.as_ref().expect("a decoupled model's teacher path");
            assert!(out.twin_loss > 0.0, "{what}: no twin loss");
            let rows = k1 * batch;
            let mut draw = |n: usize, width: usize| {
                let mut d = random(&mut rng, n);
                for (r, v) in d.iter_mut().enumerate() {
                    if ended(r / width % batch) {
                        *v = 0.0;
                    }
                }
                d
            };
            let precision = if head == HeadKind::Gaussian { rows } else { 0 };
            let (d_mean, d_precision) = (draw(rows * OUTPUTS, OUTPUTS), draw(precision, 1));
            let (e_mean, e_precision) = (draw(rows * OUTPUTS, OUTPUTS), draw(precision, 1));
            assert_eq!((teacher.mean.len(), teacher.precision.len()), (e_mean.len(), e_precision.len()));
            let mut grads = model.zeros_like();
            streams
                .backward(&model, &input, (&d_mean, &d_precision), Some((&e_mean, &e_precision)), &mut grads)
                .unwrap();

            // the losses of update 2 from the carried state (the earlier updates' forwards
            // set it; a forward of update 2 reads it and changes only what comes after)
            let mut losses = |m: &SequenceModel<f64>| {
                let out = streams.forward(m, &input, 2, 3).unwrap();
                let teacher = out.teacher.as_ref().unwrap();
                (
                    linear_loss(&out.head, (&d_mean, &d_precision)),
                    linear_loss(teacher, (&e_mean, &e_precision)),
                    out.twin_loss,
                )
            };
            let analytic: Vec<(String, Vec<f64>)> =
                grads.named_mut().into_iter().map(|(n, t)| (n, t.data.clone())).collect();
            for (k, (name, g)) in analytic.iter().enumerate() {
                for (j, &want) in g.iter().enumerate() {
                    let mut at = |delta: f64| {
                        model.named_mut()[k].1.data[j] += delta;
                        let l = surrogate(true, name, losses(&model));
                        model.named_mut()[k].1.data[j] -= delta;
                        l
                    };
                    let numeric = (at(1e-6) - at(-1e-6)) / 2e-6;
                    assert!(
                        (numeric - want).abs() <= 1e-6 + 1e-5 * numeric.abs(),
                        "{what}: {name}[{j}] backward {want:.9}, central difference {numeric:.9}"
                    );
                    checked += 1;
                }
            }
            assert!(analytic.iter().any(|(n, g)| n.starts_with("backward.") && g.iter().any(|&v| v != 0.0)));

            // the padded step of an ended stream takes no part in the twin loss, nor in the
            // other streams' outputs
            if lengths.is_some() {
                let before = losses(&model);
                let mut changed = x.clone();
                for t in 6..9 {
                    changed[(t * batch + 2) * INPUT..(t * batch + 3) * INPUT].iter_mut().for_each(|v| *v += 1.0);
                }
                let changed = SequenceBatch { x: &changed, ..input };
                let out = streams.forward(&model, &changed, 2, 3).unwrap();
                assert_eq!(out.twin_loss, before.2, "{what}: the twin loss read an ended stream");
                assert_eq!(linear_loss(&out.head, (&d_mean, &d_precision)), before.0, "{what}");
            }
        }
    }
    println!("{checked} central differences");
}

/// A decoupled model's fuser RNN carries its state from chunk to chunk, as it does
/// deployed: update by update, the student path's outputs are those of one uninterrupted
/// forward (not of a fuser restarted at every chunk), and an update whose chunk before
/// was never run is refused.
#[test]
fn a_fuser_carries_its_state_from_chunk_to_chunk_as_deployed() {
    let (steps, batch, k1) = (12, 2, 3);
    let mut rng = Rng::new(21);
    let x = random(&mut rng, steps * batch * INPUT);
    let input = SequenceBatch { x: &x, steps, batch, lengths: None };
    for (i, fusion) in [FusionKind::FuserGru, FusionKind::FuserLstm].into_iter().enumerate() {
        for k2 in [k1, 2 * k1] {
            let mut c = config(CellKind::GruResetAfter, 1, HeadKind::Linear);
            c.encoder.bidirectional = true;
            c.coupling = Coupling::Decoupled;
            c.twin_weight = 0.5;
            c.fusion = fusion;
            let model = SequenceModel::<f64>::new(c, 70 + i as u64).unwrap();
            let whole = model.forward(&input).unwrap();
            let mut streams = TruncatedStreams::new(&model, Truncation { k1, k2, steps }, batch).unwrap();
            for u in 0..steps / k1 {
                let out = streams.forward(&model, &input, u, 0).unwrap();
                let rows = u * k1 * batch * OUTPUTS..(u + 1) * k1 * batch * OUTPUTS;
                close(&out.head.mean, &whole.mean[rows], &format!("{fusion:?} k2 = {k2}: chunk {u}"));
            }
            if k2 == k1 {
                let mut fresh = TruncatedStreams::new(&model, Truncation { k1, k2, steps }, batch).unwrap();
                let e = fresh.forward(&model, &input, 1, 0).err().unwrap().to_string();
                assert!(e.contains("before the ones it follows"), "{fusion:?}: {e}");
            }
        }
    }
}
