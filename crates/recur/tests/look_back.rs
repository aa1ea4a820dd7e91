//! `classic::gradients::probe_gradients` and `look_back` against finite differences and
//! the exact Jacobian. Models and sequences are random (synthetic by design: these test
//! the measurement, not a claim about data).

use recur::classic::gradients::{look_back, probe_gradients, LookBack};
use recur::model::{Continuation, Coupling, FusionKind, HeadKind, HeadSteps, ModelConfig, SequenceModel};
use recur::rnn::{CellKind, InitialState, RnnConfig, SequenceBatch};
use recur::Rng;

const D: usize = 3;
const H: usize = 4;
const O: usize = 2;

fn model(cell: CellKind, layers: usize, coupling: Coupling, head: HeadKind, seed: u64) -> SequenceModel<f64> {
    let bidirectional = coupling == Coupling::Decoupled;
    let config = ModelConfig {
        encoder: RnnConfig {
            cell,
            input_size: D,
            hidden_size: H,
            num_layers: layers,
            bidirectional,
            // training noise the measurement must leave out
            dropout: if layers > 1 { 0.3 } else { 0.0 },
            input_dropout: 0.2,
            state_dropout: 0.2,
            layer_norm: layers > 1,
            ..RnnConfig::default()
        },
        coupling,
        twin_weight: if bidirectional { 0.5 } else { 0.0 },
        fusion: if bidirectional { FusionKind::Gated } else { FusionKind::Concat },
        head,
        outputs: O,
        precisions: 1,
        detach_precision: false,
    };
    SequenceModel::new(config, seed).unwrap()
}

/// vᵀ ŷ_T summed over the sequences, by inference.
fn probed_output(model: &SequenceModel<f64>, x: &[f64], steps: usize, batch: usize, probe: &[f64]) -> f64 {
    let out = model.forward_at(&SequenceBatch { x, steps, batch, lengths: None }, HeadSteps::Last).unwrap();
    out.mean.iter().zip(probe).map(|(y, v)| y * v).sum()
}

/// A state (h, c).
type State = (Vec<f64>, Vec<f64>);

/// (h, c) of the forward stack and a fuser RNN's (h, c) after the first `t` steps of `x`
/// (zeros, and the fuser's initial state, at t = 0), by the model without training noise.
type States = (State, Option<State>);
fn states_after(model: &SequenceModel<f64>, x: &[f64], t: usize, batch: usize) -> States {
    let c = &model.config().encoder;
    let plane = c.num_layers * batch * c.hidden_size;
    if t == 0 {
        let c0 = vec![0.0; if c.cell.has_cell_state() { plane } else { 0 }];
        return ((vec![0.0; plane], c0), None);
    }
    let quiet = model.without_training_noise();
    let prefix = SequenceBatch { x: &x[..t * batch * D], steps: t, batch, lengths: None };
    let (_, cache) = quiet.forward_train_continuing(&prefix, &Continuation::default(), 0, None).unwrap();
    let (h, c) = cache.final_state();
    let (fh, fc) = cache.fuser_final_state();
    ((h.to_vec(), c.to_vec()), (!fh.is_empty()).then(|| (fh.to_vec(), fc.to_vec())))
}

/// vᵀ ŷ_T of the model restarted on `rest` from the stack's state `(h, c)` and the fuser's.
fn probed_output_from(
    model: &SequenceModel<f64>,
    rest: &[f64],
    (steps, batch): (usize, usize),
    (state, fuser): (&State, &Option<State>),
    probe: &[f64],
) -> f64 {
    let quiet = model.without_training_noise();
    let state = Some(state.clone());
    let from = Continuation { state: InitialState::carried(&state), ended: None, fuser: InitialState::carried(fuser) };
    let input = SequenceBatch { x: rest, steps, batch, lengths: None };
    let (out, _) = quiet.forward_train_continuing(&input, &from, 0, None).unwrap();
    out.student.mean[(steps - 1) * batch * O..].iter().zip(probe).map(|(y, v)| y * v).sum()
}

#[test]
fn probe_gradients_match_finite_differences() {
    let (steps, batch) = (6, 2);
    let cases = [
        (CellKind::GruResetAfter, 1, Coupling::Coupled, HeadKind::Linear),
        (CellKind::Lstm, 2, Coupling::Coupled, HeadKind::Gaussian),
        (CellKind::ElmanTanh, 2, Coupling::Coupled, HeadKind::Linear),
        (CellKind::GruResetBefore, 1, Coupling::Decoupled, HeadKind::Gaussian),
        (CellKind::Lstm, 1, Coupling::Decoupled, HeadKind::Linear),
        (CellKind::GruResetAfter, 1, Coupling::Decoupled, HeadKind::Linear),
    ];
    for (i, (cell, layers, coupling, head)) in cases.into_iter().enumerate() {
        let mut model = model(cell, layers, coupling, head, 10 + i as u64);
        if i == cases.len() - 1 {
            // a fuser RNN, whose own state the restarts carry
            let mut config = model.config().clone();
            config.fusion = FusionKind::FuserLstm;
            model = SequenceModel::new(config, 10 + i as u64).unwrap();
        }
        let mut rng = Rng::new(20 + i as u64);
        let x: Vec<f64> = (0..steps * batch * D).map(|_| rng.normal()).collect();
        let probe: Vec<f64> = (0..batch * O).map(|_| rng.normal()).collect();
        let g = probe_gradients(&model, &SequenceBatch { x: &x, steps, batch, lengths: None }, &probe).unwrap();
        let eps = 1e-6;
        let case = format!("{cell:?}, {layers} layer(s), {coupling:?}, {head:?}");
        for n in 0..x.len() {
            let (mut up, mut down) = (x.clone(), x.clone());
            up[n] += eps;
            down[n] -= eps;
            let fd = (probed_output(&model, &up, steps, batch, &probe)
                - probed_output(&model, &down, steps, batch, &probe))
                / (2.0 * eps);
            assert!((fd - g.d_x[n]).abs() < 1e-7 * (1.0 + fd.abs()), "{case}: d_x[{n}] {} vs {fd}", g.d_x[n]);
        }
        assert_eq!(g.d_state.len(), steps, "{case}");
        let plane = layers * batch * H;
        for k in 1..=steps {
            let t = steps - k;
            let (state, fuser) = states_after(&model, &x, t, batch);
            let rest = &x[t * batch * D..];
            let d = &g.d_state[k - 1];
            assert_eq!(d.len(), plane, "{case}");
            for (n, &want) in d.iter().enumerate() {
                let (mut up, mut down) = (state.clone(), state.clone());
                up.0[n] += eps;
                down.0[n] -= eps;
                let fd = (probed_output_from(&model, rest, (k, batch), (&up, &fuser), &probe)
                    - probed_output_from(&model, rest, (k, batch), (&down, &fuser), &probe))
                    / (2.0 * eps);
                assert!((fd - want).abs() < 1e-7 * (1.0 + fd.abs()), "{case}: distance {k}, d_h[{n}] {want} vs {fd}");
            }
        }
    }
}

#[test]
fn look_back_estimates_the_jacobians_frobenius_norm() {
    // the same sequence many times over, one Gaussian probe each: the root mean square of
    // vᵀJ over the copies tends to ‖J‖_F, computed here exactly from one-hot probes
    let (steps, copies) = (5, 4000);
    let model = model(CellKind::Lstm, 1, Coupling::Coupled, HeadKind::Linear, 3);
    let mut rng = Rng::new(4);
    let one: Vec<f64> = (0..steps * D).map(|_| rng.normal()).collect();
    let mut x = vec![0.0; steps * copies * D];
    for t in 0..steps {
        for b in 0..copies {
            x[(t * copies + b) * D..(t * copies + b + 1) * D].copy_from_slice(&one[t * D..(t + 1) * D]);
        }
    }
    let estimate = look_back(&model, &SequenceBatch { x: &x, steps, batch: copies, lengths: None }, 5).unwrap();
    let mut exact_inputs = vec![0.0; steps * D];
    let mut exact_state = vec![0.0; steps];
    for o in 0..O {
        let mut probe = vec![0.0; O];
        probe[o] = 1.0;
        let g = probe_gradients(&model, &SequenceBatch { x: &one, steps, batch: 1, lengths: None }, &probe).unwrap();
        for k in 0..steps {
            for j in 0..D {
                exact_inputs[k * D + j] += g.d_x[(steps - 1 - k) * D + j].powi(2);
            }
            exact_state[k] += g.d_state[k].iter().map(|v| v * v).sum::<f64>();
        }
    }
    for (what, got, exact) in [("inputs", &estimate.inputs, &exact_inputs), ("state", &estimate.state, &exact_state)] {
        for (n, (g, e)) in got.iter().zip(exact.iter()).enumerate() {
            let e = e.sqrt();
            assert!((g - e).abs() <= 0.06 * e + 1e-12, "{what}[{n}]: estimate {g} vs exact {e}");
        }
    }
}

#[test]
fn steps_holding_and_fades_below_read_the_curve() {
    // squared sensitivity per step back: 4, 3, 2, 1 (total 10), over two inputs
    let root = |v: f64| (v / 2.0).sqrt();
    let inputs = [4.0, 3.0, 2.0, 1.0].iter().flat_map(|&v| [root(v), root(v)]).collect();
    let reach = LookBack { steps: 4, sequences: 1, input_size: 2, state: vec![1.0; 4], inputs };
    assert!((reach.all_inputs(1) - 3f64.sqrt()).abs() < 1e-12);
    assert_eq!(reach.steps_holding(0.4), 1);
    assert_eq!(reach.steps_holding(0.41), 2);
    assert_eq!(reach.steps_holding(0.9), 3);
    assert_eq!(reach.steps_holding(0.95), 4);
    assert_eq!(reach.steps_holding(1.0), 4);
    // √ of those: 2, 1.73, 1.41, 1
    assert_eq!(reach.fades_below(0.9), 1);
    assert_eq!(reach.fades_below(0.6), 3);
    assert_eq!(reach.fades_below(0.4), 4);
}

#[test]
fn a_coupled_bidirectional_model_or_a_wrong_probe_is_refused() {
    let mut rng = Rng::new(1);
    let x: Vec<f64> = (0..4 * D).map(|_| rng.normal()).collect();
    let input = SequenceBatch { x: &x, steps: 4, batch: 1, lengths: None };
    let mut coupled = model(CellKind::GruResetAfter, 1, Coupling::Decoupled, HeadKind::Linear, 1);
    let mut config = coupled.config().clone();
    config.coupling = Coupling::Coupled;
    config.twin_weight = 0.0;
    coupled = SequenceModel::new(config.clone(), 1).unwrap();
    let err = probe_gradients(&coupled, &input, &[1.0, 0.0]).unwrap_err().to_string();
    assert!(err.contains("future"), "{err}");
    config.coupling = Coupling::Decoupled;
    config.fusion = FusionKind::FuserGru;
    let fuser = SequenceModel::new(config, 1).unwrap();
    let err = probe_gradients(&fuser, &input, &[1.0]).unwrap_err().to_string();
    assert!(err.contains("probe"), "{err}");
}

/// A decoupled model's inference path (its student alone, `forward_train_inference_path`)
/// gives the gradients of its output that the full training forward gives with a zero
/// teacher gradient and no twin loss, for every fusion (the teacher's part was zeros);
/// backward then refuses a teacher gradient, and the full forward still needs one.
#[test]
fn the_inference_path_of_a_decoupled_model_gives_the_full_forwards_gradients() {
    let (steps, batch) = (7, 3);
    let mut rng = Rng::new(5);
    let x: Vec<f64> = (0..steps * batch * D).map(|_| rng.normal()).collect();
    let input = SequenceBatch { x: &x, steps, batch, lengths: None };
    for fusion in [FusionKind::Concat, FusionKind::Gated, FusionKind::FuserGru, FusionKind::Sum] {
        let mut config = model(CellKind::Lstm, 1, Coupling::Decoupled, HeadKind::Gaussian, 3).config().clone();
        config.fusion = fusion;
        let quiet = SequenceModel::<f64>::new(config, 3).unwrap().without_training_noise();
        let probe: Vec<f64> = (0..steps * batch * O).map(|_| rng.normal()).collect();
        let (full, mut full_cache) = quiet.forward_train_at(&input, 0, None, HeadSteps::All).unwrap();
        let (student, mut cache) =
            quiet.forward_train_inference_path(&input, &Continuation::default(), 0, HeadSteps::All).unwrap();
        assert_eq!(student.student.mean, full.student.mean, "{fusion:?}: the same outputs");
        assert!(student.teacher.is_none() && student.twin_loss == 0.0);
        let zeros = |v: &[f64]| vec![0.0; v.len()];
        let (d_precision, teacher) = (zeros(&full.student.precision), full.teacher.as_ref().unwrap());
        let teacher_zeros = (zeros(&teacher.mean), zeros(&teacher.precision));
        let mut grads = quiet.zeros_like();
        let d_full = quiet
            .backward(&mut full_cache, (&probe, &d_precision), Some((&teacher_zeros.0, &teacher_zeros.1)), &mut grads)
            .unwrap();
        let mut grads = quiet.zeros_like();
        let d_student = quiet.backward(&mut cache, (&probe, &d_precision), None, &mut grads).unwrap();
        assert!(d_full.iter().zip(&d_student).all(|(a, b)| (a - b).abs() <= 1e-12 * a.abs().max(1.0)), "{fusion:?}");

        let (_, mut cache) =
            quiet.forward_train_inference_path(&input, &Continuation::default(), 0, HeadSteps::All).unwrap();
        let err = quiet
            .backward(&mut cache, (&probe, &d_precision), Some((&teacher_zeros.0, &teacher_zeros.1)), &mut grads)
            .unwrap_err();
        assert!(err.to_string().contains("student path only"), "{err}");
        let (_, mut full_cache) = quiet.forward_train_at(&input, 0, None, HeadSteps::All).unwrap();
        let err = quiet.backward(&mut full_cache, (&probe, &d_precision), None, &mut grads).unwrap_err();
        assert!(err.to_string().contains("needs the teacher path's gradient"), "{err}");
    }
}
