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

/// vᵀ ŷ_T of the model restarted from state `(h, c)` on `rest`.
fn probed_output_from(
    model: &SequenceModel<f64>,
    rest: &[f64],
    steps: usize,
    batch: usize,
    state: (&[f64], &[f64]),
    probe: &[f64],
) -> f64 {
    let quiet = model.without_training_noise();
    let from = InitialState { h0: Some(state.0), c0: (!state.1.is_empty()).then_some(state.1) };
    let input = SequenceBatch { x: rest, steps, batch, lengths: None };
    let (out, _) = quiet.forward_train_continuing(&input, &Continuation { state: from, ended: None }, 0, None).unwrap();
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
    ];
    for (i, (cell, layers, coupling, head)) in cases.into_iter().enumerate() {
        let model = model(cell, layers, coupling, head, 10 + i as u64);
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
        let has_c = cell.has_cell_state();
        for k in 1..=steps {
            let t = steps - k;
            // the state after t steps, by inference of the forward stack
            let (h, c) = if t == 0 {
                (vec![0.0; plane], vec![0.0; if has_c { plane } else { 0 }])
            } else {
                let prefix = SequenceBatch { x: &x[..t * batch * D], steps: t, batch, lengths: None };
                let out = model.forward_branch.forward(&prefix, &InitialState::default()).unwrap();
                (out.h_n, out.c_n)
            };
            let rest = &x[t * batch * D..];
            let d = &g.d_state[k - 1];
            assert_eq!(d.len(), plane, "{case}");
            for n in 0..plane {
                let (mut up, mut down) = (h.clone(), h.clone());
                up[n] += eps;
                down[n] -= eps;
                let fd = (probed_output_from(&model, rest, k, batch, (&up, &c), &probe)
                    - probed_output_from(&model, rest, k, batch, (&down, &c), &probe))
                    / (2.0 * eps);
                assert!((fd - d[n]).abs() < 1e-7 * (1.0 + fd.abs()), "{case}: distance {k}, d_h[{n}] {} vs {fd}", d[n]);
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
fn a_fuser_or_a_coupled_bidirectional_model_is_answered_plainly() {
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
    let g = probe_gradients(&fuser, &input, &[1.0, 0.0]).unwrap();
    assert_eq!(g.d_x.len(), x.len());
    assert!(g.d_state.is_empty(), "a restart would drop the fuser's state");
    let err = probe_gradients(&fuser, &input, &[1.0]).unwrap_err().to_string();
    assert!(err.contains("probe"), "{err}");
}
