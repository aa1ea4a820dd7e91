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
