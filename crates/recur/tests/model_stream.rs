//! A causal model streamed one step at a time gives, at every step, what its whole-
//! sequence forward gives: unidirectional models and decoupled ones with every fusion
//! (a fuser RNN carries its own state), both heads, two layers. Synthetic inputs.

use recur::model::{Coupling, FusionKind, HeadKind, ModelConfig, SequenceModel};
use recur::rnn::{CellKind, RnnConfig, SequenceBatch};
use recur::Rng;

fn config(cell: CellKind, bidirectional: bool, fusion: FusionKind, head: HeadKind) -> ModelConfig {
    ModelConfig {
        encoder: RnnConfig {
            cell,
            input_size: 3,
            hidden_size: 5,
            num_layers: 2,
            bidirectional,
            ..RnnConfig::default()
        },
        coupling: Coupling::Decoupled,
        twin_weight: 0.5,
        fusion,
        head,
        outputs: 2,
        precisions: 1,
        detach_precision: false,
    }
}

#[test]
fn streaming_a_causal_model_equals_its_whole_sequence_forward() {
    let mut rng = Rng::new(12);
    let (steps, batch) = (9, 4);
    let x: Vec<f64> = (0..steps * batch * 3).map(|_| rng.normal()).collect();
    let mut cases = Vec::new();
    for cell in [CellKind::Lstm, CellKind::GruResetAfter, CellKind::ElmanTanh] {
        for head in [HeadKind::Linear, HeadKind::Gaussian] {
            cases.push(config(cell, false, FusionKind::Concat, head));
            for fusion in FusionKind::ALL {
                cases.push(config(cell, true, fusion, head));
            }
        }
    }
    for (i, c) in cases.into_iter().enumerate() {
        let what = format!("{:?} bi={} {:?} {:?}", c.encoder.cell, c.encoder.bidirectional, c.fusion, c.head);
        let model = SequenceModel::<f64>::new(c, i as u64).unwrap();
        let whole = model.forward(&SequenceBatch { x: &x, steps, batch, lengths: None }).unwrap();
        let mut stream = model.stream(batch).unwrap();
        for t in 0..steps {
            let out = stream.step(&x[t * batch * 3..(t + 1) * batch * 3]).unwrap();
            let want = &whole.mean[t * batch * 2..(t + 1) * batch * 2];
            assert!(out.mean.iter().zip(want).all(|(a, b)| (a - b).abs() <= 1e-12), "{what}: x̂ at step {t}");
            let want = if whole.precision.is_empty() { &[][..] } else { &whole.precision[t * batch..(t + 1) * batch] };
            assert!(out.precision.iter().zip(want).all(|(a, b)| (a - b).abs() <= 1e-12), "{what}: λ̂ at step {t}");
            assert_eq!(out.precision.len(), want.len());
        }
    }
}

#[test]
fn a_coupled_bidirectional_model_refuses_to_stream() {
    let mut c = config(CellKind::GruResetAfter, true, FusionKind::Gated, HeadKind::Linear);
    c.coupling = Coupling::Coupled;
    let model = SequenceModel::<f32>::new(c, 1).unwrap();
    let err = model.stream(2).err().expect("not causal").to_string();
    assert!(err.contains("stream") && err.contains("future"), "{err}");
    let uni =
        SequenceModel::<f32>::new(config(CellKind::Lstm, false, FusionKind::Concat, HeadKind::Linear), 1).unwrap();
    let mut stream = uni.stream(2).unwrap();
    let err = stream.step(&[0.0; 5]).expect_err("wrong width").to_string();
    assert!(err.contains("x_t"), "{err}");
}

#[test]
fn replicated_streams_carry_the_same_state_and_then_part_with_their_inputs() {
    // every copy of a stream answers a step as the stream would: a uni LSTM (two states per
    // layer) and a decoupled GRU with an LSTM fuser (which carries its own)
    let mut rng = Rng::new(5);
    let batch = 2;
    let x: Vec<f64> = (0..6 * batch * 3).map(|_| rng.normal()).collect();
    for c in [
        config(CellKind::Lstm, false, FusionKind::Concat, HeadKind::Gaussian),
        config(CellKind::GruResetAfter, true, FusionKind::FuserLstm, HeadKind::Linear),
    ] {
        let model = SequenceModel::<f64>::new(c, 3).unwrap();
        let mut stream = model.stream(batch).unwrap();
        for t in 0..3 {
            stream.step(&x[t * batch * 3..(t + 1) * batch * 3]).unwrap();
        }
        let copies = 3;
        let mut paths = stream.replicated(copies);
        // the same next input in every copy: each copy's rows equal the original's
        let next = &x[3 * batch * 3..4 * batch * 3];
        let want = stream.clone().step(next).unwrap();
        let got = paths.clone().step(&next.repeat(copies)).unwrap();
        assert_eq!(got.mean, want.mean.repeat(copies));
        assert_eq!(got.precision, want.precision.repeat(copies));
        // different inputs: copy k answers as the original fed copy k's input
        let inputs: Vec<f64> = x[3 * batch * 3..(3 + copies) * batch * 3].to_vec();
        let got = paths.step(&inputs).unwrap();
        let outputs = got.mean.len() / copies;
        for k in 0..copies {
            let want = stream.clone().step(&inputs[k * batch * 3..(k + 1) * batch * 3]).unwrap();
            assert_eq!(got.mean[k * outputs..(k + 1) * outputs], want.mean[..], "copy {k}");
        }
    }
}

#[test]
fn a_bidirectional_model_on_one_thread_counts_both_branches_in_its_row_layout_with_the_same_bits() {
    // S1's shape: one LSTM direction with layer norm keeps 4.9 MB of rows, both 9.8 MB,
    // past the 8 MiB above which a core keeps compact rows (synthetic inputs)
    let encoder = RnnConfig {
        cell: CellKind::Lstm,
        input_size: 12,
        hidden_size: 64,
        bidirectional: true,
        layer_norm: true,
        ..RnnConfig::default()
    };
    let config = ModelConfig {
        encoder,
        coupling: Coupling::Coupled,
        twin_weight: 0.0,
        fusion: FusionKind::Concat,
        head: HeadKind::Linear,
        outputs: 2,
        precisions: 1,
        detach_precision: false,
    };
    let mut shared = SequenceModel::<f32>::new(config, 3).unwrap();
    let sharers = |m: &SequenceModel<f32>| {
        (m.forward_branch.cache_sharers(), m.backward_branch.as_ref().unwrap().cache_sharers())
    };
    assert_eq!(sharers(&shared), (2, 2), "one thread: the branches run one after another");
    shared.set_threads(2);
    assert_eq!(sharers(&shared), (1, 1), "two threads: side by side");
    shared.set_threads(1);
    let mut alone = shared.clone();
    alone.forward_branch.set_cache_sharers(1);
    alone.backward_branch.as_mut().unwrap().set_cache_sharers(1);
    let (steps, batch) = (60, 32);
    let mut rng = Rng::new(4);
    let x: Vec<f32> = (0..steps * batch * 12).map(|_| rng.normal() as f32).collect();
    let input = SequenceBatch { x: &x, steps, batch, lengths: None };
    let grads_of = |model: &SequenceModel<f32>| {
        let (out, mut cache) = model.forward_train(&input, 9).unwrap();
        let d: Vec<f32> = out.student.mean.iter().map(|v| 0.5 * v).collect();
        let mut grads = model.zeros_like();
        let dx = model.backward(&mut cache, (&d, &[]), None, &mut grads).unwrap();
        let named: Vec<Vec<u32>> =
            grads.named_mut().into_iter().map(|(_, t)| t.data.iter().map(|v| v.to_bits()).collect()).collect();
        (out.student.mean.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), dx, named)
    };
    let (a, b) = (grads_of(&shared), grads_of(&alone));
    assert_eq!(a.0, b.0, "outputs");
    assert_eq!(
        a.1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.1.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(a.2, b.2, "every gradient, bit for bit");
}

#[test]
fn a_causal_model_restored_from_its_carried_state_goes_on_as_its_whole_sequence_forward() {
    // synthetic inputs; two-layer LSTM and Jordan encoders, unidirectional and decoupled
    // with an LSTM fuser (a state of its own): stopped after 4 of 9 steps, the carried
    // state read into a fresh stream, which then gives the whole forward's outputs
    let mut rng = Rng::new(21);
    let (steps, batch) = (9, 2);
    let x: Vec<f64> = (0..steps * batch * 3).map(|_| rng.normal()).collect();
    for (cell, bidirectional) in [(CellKind::Lstm, false), (CellKind::Lstm, true), (CellKind::Jordan, false)] {
        let c = config(cell, bidirectional, FusionKind::FuserLstm, HeadKind::Gaussian);
        let model = SequenceModel::<f64>::new(c, 5).unwrap();
        let whole = model.forward(&SequenceBatch { x: &x, steps, batch, lengths: None }).unwrap();
        let mut first = model.stream(batch).unwrap();
        for t in 0..4 {
            first.step(&x[t * batch * 3..(t + 1) * batch * 3]).unwrap();
        }
        let carried = first.carried();
        assert_eq!(carried.fuser.is_some(), bidirectional);
        let mut resumed = model.stream(batch).unwrap();
        resumed.restore(&carried).unwrap();
        for t in 4..steps {
            let out = resumed.step(&x[t * batch * 3..(t + 1) * batch * 3]).unwrap();
            let want = &whole.mean[t * batch * 2..(t + 1) * batch * 2];
            assert!(
                out.mean.iter().zip(want).all(|(a, b)| (a - b).abs() <= 1e-12),
                "{cell:?} bi={bidirectional}: step {t}"
            );
        }
        // a state of another shape is refused (a GRU's carries no c; a Jordan encoder's is
        // shaped as a GRU's, which shapes alone cannot tell)
        if cell == CellKind::Lstm {
            let gru = config(CellKind::GruResetAfter, false, FusionKind::Concat, HeadKind::Linear);
            let other = SequenceModel::<f64>::new(gru, 5).unwrap().stream(batch).unwrap().carried();
            assert!(model.stream(batch).unwrap().restore(&other).unwrap_err().to_string().contains("c of layer 0"));
        }
    }
}
