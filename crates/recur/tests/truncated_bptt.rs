//! Truncated BPTT (k1, k2) on synthetic inputs, in f64: an update's gradient is exactly the
//! gradient of one forward over its k2 steps from the carried state (the chunk chain loses
//! nothing), the carried state is the one an uninterrupted forward reaches, k1 = k2 = T is
//! ordinary BPTT, and misuse is refused with the reason.

use recur::model::{Coupling, FusionKind, HeadKind, ModelConfig, SequenceModel};
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
            streams.backward(&model, &input, (&d_mean, &d_precision), &mut grads).unwrap();

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
        streams.backward(&model, &input, (&d_mean, &d_precision), &mut grads).unwrap();
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
    let mut bidirectional = config(CellKind::Lstm, 1, HeadKind::Linear);
    bidirectional.encoder.bidirectional = true;
    for coupling in [Coupling::Coupled, Coupling::Decoupled] {
        bidirectional.coupling = coupling;
        let bi = SequenceModel::<f64>::new(bidirectional.clone(), 1).unwrap();
        let e = TruncatedStreams::new(&bi, Truncation { k1: 3, k2: 3, steps: 12 }, 2).err().unwrap().to_string();
        assert!(e.contains("unidirectional"), "{e}");
    }
    let x = vec![0.5; 12 * 2 * INPUT];
    let mut streams = TruncatedStreams::new(&model, Truncation { k1: 3, k2: 3, steps: 12 }, 2).unwrap();
    let input = |x| SequenceBatch { x, steps: 12, batch: 2, lengths: None };
    let e = streams.forward(&model, &input(&x), 2, 0).err().unwrap().to_string();
    assert!(e.contains("before the ones it follows"), "{e}");
    let e = streams.forward(&model, &input(&x[..10]), 0, 0).err().unwrap().to_string();
    assert!(e.contains("streams"), "{e}");
    let bad = SequenceBatch { lengths: Some(&[12, 0]), ..input(&x) };
    let e = streams.forward(&model, &bad, 0, 0).err().unwrap().to_string();
    assert!(e.contains("stream lengths"), "{e}");
}
