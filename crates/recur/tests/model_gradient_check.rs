//! Whole-model central-difference checks in f64: every fusion × coupling × {LSTM, GRU}
//! × {linear head + masked MSE, Gaussian head + NLL}, with variable lengths and
//! variational dropout; the loss is student + teacher + twin, as in training, with the
//! decoupled model's stop-gradients (see `surrogate`). And the causality of decoupled models.

use crate::common::surrogate;
use recur::losses::{gaussian_nll, masked_mse};
use recur::model::{Coupling, FusionKind, HeadKind, ModelConfig, SequenceModel};
use recur::rnn::{CellKind, RnnConfig, SequenceBatch};
use recur::Rng;

const SEED: u64 = 5;

struct Problem {
    x: Vec<f64>,
    target: Vec<f64>,
    mask: Vec<f64>,
    lengths: Vec<usize>,
    steps: usize,
    batch: usize,
    outputs: usize,
}

fn task_loss(
    model: &SequenceModel<f64>,
    head: &recur::model::HeadOutput<f64>,
    p: &Problem,
) -> (f64, Vec<f64>, Vec<f64>) {
    match model.config().head {
        HeadKind::Linear => {
            let (l, d) = masked_mse(&head.mean, &p.target, &p.mask);
            (l, d, Vec::new())
        }
        // one λ̂ per block of outputs
        HeadKind::Gaussian => {
            gaussian_nll(&head.mean, &p.target, &p.mask, &head.precision, p.outputs / model.config().precisions)
        }
        // its positive branch is the Gaussian's (the same Head::backward); its loss holds x̂
        // constant, which these whole-model differences cannot (checked in losses.rs)
        HeadKind::Quantile => unreachable!("quantile heads are not in these checks"),
    }
}

/// The student's and the teacher's λ̂, held fixed.
type Precisions = (Vec<f64>, Option<Vec<f64>>);

/// (student loss, teacher loss, twin loss); with `fixed`, the losses read those λ̂ instead
/// of the model's (a detached precision: λ̂ is a constant for every other parameter).
fn losses(model: &SequenceModel<f64>, p: &Problem, fixed: Option<&Precisions>) -> (f64, f64, f64) {
    let input = SequenceBatch { x: &p.x, steps: p.steps, batch: p.batch, lengths: Some(&p.lengths) };
    let (mut out, _) = model.forward_train(&input, SEED).unwrap();
    if let Some((student, teacher)) = fixed {
        out.student.precision.clone_from(student);
        if let (Some(t), Some(out)) = (teacher, out.teacher.as_mut()) {
            out.precision.clone_from(t);
        }
    }
    let teacher = out.teacher.as_ref().map_or(0.0, |t| task_loss(model, t, p).0);
    (task_loss(model, &out.student, p).0, teacher, out.twin_loss)
}

fn config(cell: CellKind, coupling: Coupling, fusion: FusionKind, head: HeadKind, bidirectional: bool) -> ModelConfig {
    ModelConfig {
        encoder: RnnConfig {
            cell,
            input_size: 3,
            hidden_size: 4,
            num_layers: 2,
            bidirectional,
            input_dropout: 0.2,
            state_dropout: 0.2,
            ..RnnConfig::default()
        },
        coupling,
        twin_weight: 0.7,
        fusion,
        head,
        outputs: 2,
        precisions: 1,
        detach_precision: false,
    }
}

fn check(config: ModelConfig, seed: u64) -> Vec<String> {
    let mut model = SequenceModel::<f64>::new(config.clone(), seed).unwrap();
    let mut rng = Rng::new(seed + 100);
    let (steps, batch) = (5, 3);
    let p = Problem {
        x: (0..steps * batch * 3).map(|_| rng.normal()).collect(),
        target: (0..steps * batch * 2).map(|_| rng.normal()).collect(),
        mask: (0..steps * batch * 2).map(|i| if i % 5 == 3 { 0.0 } else { 1.0 }).collect(),
        lengths: vec![5, 2, 4],
        steps,
        batch,
        outputs: 2,
    };
    // outputs past a row's length are not scored
    let mut p = p;
    for n in 0..steps * batch {
        if n / batch >= p.lengths[n % batch] {
            p.mask[n * 2] = 0.0;
            p.mask[n * 2 + 1] = 0.0;
        }
    }
    let input = SequenceBatch { x: &p.x, steps, batch, lengths: Some(&p.lengths) };
    let (out, mut cache) = model.forward_train(&input, SEED).unwrap();
    let fixed = config
        .detach_precision
        .then(|| (out.student.precision.clone(), out.teacher.as_ref().map(|t| t.precision.clone())));
    let (_, ds_mean, ds_prec) = task_loss(&model, &out.student, &p);
    let teacher = out.teacher.as_ref().map(|t| task_loss(&model, t, &p));
    let mut grads = model.zeros_like();
    model
        .backward(&mut cache, (&ds_mean, &ds_prec), teacher.as_ref().map(|t| (&t.1[..], &t.2[..])), &mut grads)
        .unwrap();
    let analytic: Vec<(String, Vec<f64>)> = grads.named_mut().into_iter().map(|(n, t)| (n, t.data.clone())).collect();
    let mut failures = Vec::new();
    for (k, (name, g)) in analytic.iter().enumerate() {
        for (i, &analytic) in g.iter().enumerate() {
            let eval = |delta: f64, m: &mut SequenceModel<f64>| {
                m.named_mut()[k].1.data[i] += delta;
                let fixed = fixed.as_ref().filter(|_| !name.starts_with("head.precision"));
                let l = surrogate(m.twin.is_some(), name, losses(m, &p, fixed));
                m.named_mut()[k].1.data[i] -= delta;
                l
            };
            let numeric = (eval(1e-6, &mut model) - eval(-1e-6, &mut model)) / 2e-6;
            if (numeric - analytic).abs() > 1e-6 + 1e-5 * numeric.abs() {
                failures.push(format!("{config:?}: {name}[{i}] analytic {analytic:.9} numeric {numeric:.9}"));
                break;
            }
        }
    }
    failures
}

#[test]
fn gradient_check_every_fusion_coupling_cell_and_head() {
    let mut failures = Vec::new();
    let mut cases = 0;
    for cell in [CellKind::Lstm, CellKind::GruResetAfter] {
        for coupling in [Coupling::Coupled, Coupling::Decoupled] {
            for fusion in FusionKind::ALL {
                for head in [HeadKind::Linear, HeadKind::Gaussian] {
                    failures.extend(check(config(cell, coupling, fusion, head, true), cases));
                    cases += 1;
                }
            }
        }
        for head in [HeadKind::Linear, HeadKind::Gaussian] {
            failures.extend(check(config(cell, Coupling::Coupled, FusionKind::Concat, head, false), cases));
            cases += 1;
        }
        // a precision per output (a direct forecast's), reading z as a constant or not
        for (coupling, bidirectional) in [(Coupling::Coupled, false), (Coupling::Decoupled, true)] {
            for detach_precision in [false, true] {
                let per_block = config(cell, coupling, FusionKind::Concat, HeadKind::Gaussian, bidirectional);
                failures.extend(check(ModelConfig { precisions: 2, detach_precision, ..per_block }, cases));
                cases += 1;
            }
        }
    }
    println!("{cases} whole-model gradient checks");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn decoupled_model_is_causal_and_coupled_is_not() {
    let mut rng = Rng::new(3);
    let (steps, batch) = (8, 2);
    let x: Vec<f64> = (0..steps * batch * 3).map(|_| rng.normal()).collect();
    for fusion in FusionKind::ALL {
        for coupling in [Coupling::Decoupled, Coupling::Coupled] {
            let model = SequenceModel::<f64>::new(
                config(CellKind::GruResetAfter, coupling, fusion, HeadKind::Gaussian, true),
                1,
            )
            .unwrap();
            assert_eq!(model.is_causal(), coupling == Coupling::Decoupled);
            let before = model.forward(&SequenceBatch { x: &x, steps, batch, lengths: None }).unwrap();
            for t in 0..steps - 1 {
                let mut changed = x.clone();
                for v in &mut changed[(t + 1) * batch * 3..] {
                    *v += 1.0;
                }
                let after = model.forward(&SequenceBatch { x: &changed, steps, batch, lengths: None }).unwrap();
                let upto = (t + 1) * batch * 2;
                let same = before.mean[..upto] == after.mean[..upto]
                    && before.precision[..(t + 1) * batch] == after.precision[..(t + 1) * batch];
                match coupling {
                    Coupling::Decoupled => assert!(same, "{fusion:?}: decoupled outputs at or before t={t} changed"),
                    Coupling::Coupled => {
                        assert!(!same, "{fusion:?}: coupled outputs at or before t={t} ignored the future")
                    }
                }
            }
        }
    }
}

#[test]
fn a_bidirectional_model_on_two_threads_matches_one_thread() {
    let mut rng = Rng::new(9);
    let (steps, batch) = (6, 20);
    let x: Vec<f64> = (0..steps * batch * 3).map(|_| rng.normal()).collect();
    let target: Vec<f64> = (0..steps * batch * 2).map(|_| rng.normal()).collect();
    let mask = vec![1.0; target.len()];
    let lengths: Vec<usize> = (0..batch).map(|b| 1 + b % steps).collect();
    for coupling in [Coupling::Coupled, Coupling::Decoupled] {
        let one =
            SequenceModel::<f64>::new(config(CellKind::Lstm, coupling, FusionKind::Gated, HeadKind::Linear, true), 2)
                .unwrap();
        let mut two = one.clone();
        two.set_threads(2);
        let mut results = Vec::new();
        for model in [&one, &two] {
            let input = SequenceBatch { x: &x, steps, batch, lengths: Some(&lengths) };
            let (out, mut cache) = model.forward_train(&input, 4).unwrap();
            let (_, d) = masked_mse(&out.student.mean, &target, &mask);
            let dt = out.teacher.as_ref().map(|t| masked_mse(&t.mean, &target, &mask).1);
            let mut grads = model.zeros_like();
            let dx = model.backward(&mut cache, (&d, &[]), dt.as_ref().map(|d| (&d[..], &[][..])), &mut grads).unwrap();
            let flat: Vec<f64> = grads.named_mut().into_iter().flat_map(|(_, t)| t.data.clone()).collect();
            results.push((out.student.mean, dx, flat));
        }
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-12 * (1.0 + y.abs()));
        assert!(close(&results[0].0, &results[1].0), "{coupling:?}: outputs");
        assert!(close(&results[0].1, &results[1].1), "{coupling:?}: input gradients");
        assert!(close(&results[0].2, &results[1].2), "{coupling:?}: parameter gradients");
    }
}

/// The head on each sequence's last step only (prediction) gives exactly those rows of
/// the all-steps outputs, and the same gradients as an all-steps loss that reads only them.
#[test]
fn head_on_chosen_steps_equals_all_steps_restricted_to_them() {
    use recur::model::HeadSteps;
    let mut rng = Rng::new(11);
    let (steps, batch, outputs) = (7, 5, 2);
    let x: Vec<f64> = (0..steps * batch * 3).map(|_| rng.normal()).collect();
    let target: Vec<f64> = (0..batch * outputs).map(|_| rng.normal()).collect();
    let lengths = [7, 3, 1, 7, 5];
    let last: Vec<usize> = (0..batch).map(|b| (lengths[b] - 1) * batch + b).collect();
    // pointwise fusions then run on the head's rows only; a fuser RNN still on every step
    let cases = [Coupling::Coupled, Coupling::Decoupled].into_iter().flat_map(|c| {
        [FusionKind::Gated, FusionKind::Concat, FusionKind::Product, FusionKind::FuserGru].map(|f| (c, f))
    });
    for (coupling, fusion) in cases {
        let model =
            SequenceModel::<f64>::new(config(CellKind::GruResetAfter, coupling, fusion, HeadKind::Linear, true), 3)
                .unwrap();
        let input = SequenceBatch { x: &x, steps, batch, lengths: Some(&lengths) };
        let pick = |all: &[f64]| -> Vec<f64> {
            last.iter().flat_map(|&r| all[r * outputs..(r + 1) * outputs].iter().copied()).collect()
        };
        // all steps, the loss reading the last rows only
        let (out, mut cache) = model.forward_train(&input, 4).unwrap();
        let spread = |d: &[f64]| {
            let mut full = vec![0.0; steps * batch * outputs];
            for (chunk, &r) in d.chunks_exact(outputs).zip(&last) {
                full[r * outputs..(r + 1) * outputs].copy_from_slice(chunk);
            }
            full
        };
        let ones = vec![1.0; target.len()];
        let d_all = spread(&masked_mse(&pick(&out.student.mean), &target, &ones).1);
        let dt_all = out.teacher.as_ref().map(|t| spread(&masked_mse(&pick(&t.mean), &target, &ones).1));
        let mut grads_all = model.zeros_like();
        let dx_all = model
            .backward(&mut cache, (&d_all, &[]), dt_all.as_ref().map(|d| (&d[..], &[][..])), &mut grads_all)
            .unwrap();
        // the head on the last steps
        let (out_last, mut cache) = model.forward_train_at(&input, 4, None, HeadSteps::Last).unwrap();
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-12 * (1.0 + y.abs()));
        assert!(close(&out_last.student.mean, &pick(&out.student.mean)), "{coupling:?} {fusion:?}: outputs");
        let (at_last, all) = (model.forward_at(&input, HeadSteps::Last).unwrap(), model.forward(&input).unwrap());
        assert!(close(&at_last.mean, &pick(&all.mean)), "{coupling:?} {fusion:?}: inference outputs");
        // and from a step on: the rows of every step from it
        let from = model.forward_at(&input, HeadSteps::From(2)).unwrap();
        assert!(close(&from.mean, &all.mean[2 * batch * outputs..]), "{coupling:?} {fusion:?}: from step 2");
        let d = masked_mse(&out_last.student.mean, &target, &ones).1;
        let dt = out_last.teacher.as_ref().map(|t| masked_mse(&t.mean, &target, &ones).1);
        let mut grads = model.zeros_like();
        let dx = model.backward(&mut cache, (&d, &[]), dt.as_ref().map(|d| (&d[..], &[][..])), &mut grads).unwrap();
        assert!(close(&dx, &dx_all), "{coupling:?} {fusion:?}: input gradients");
        for ((name, g), (_, g_all)) in grads.named_mut().into_iter().zip(grads_all.named_mut()) {
            assert!(close(&g.data, &g_all.data), "{coupling:?} {fusion:?}: gradient of {name}");
        }
    }
}
