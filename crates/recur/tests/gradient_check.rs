//! Central-difference gradient checks of the whole encoder in f64, for every cell ×
//! {uni, bi} × {1, 2 layers} × {plain, layer norm, variational dropout (fixed masks),
//! variable lengths, learned initial state}.
//!
//! Loss: L = Σ output⊙P + Σ h_n⊙P_h (+ Σ c_n⊙P_c) with random probes P, the loss the
//! PyTorch fixtures use. Every parameter, input and initial-state entry is checked.

use recur::rnn::{CellKind, InitialState, Rnn, RnnConfig, SequenceBatch};
use recur::Rng;

const EPS: f64 = 1e-6;

#[derive(Clone, Copy, Debug)]
enum Variant {
    Plain,
    LayerNorm,
    VariationalDropout,
    Lengths,
    LearnedInitialState,
}

struct Problem {
    rnn: Rnn<f64>,
    x: Vec<f64>,
    h0: Option<Vec<f64>>,
    c0: Option<Vec<f64>>,
    lengths: Option<Vec<usize>>,
    probe: Vec<f64>,
    probe_h: Vec<f64>,
    probe_c: Vec<f64>,
    steps: usize,
    batch: usize,
}

const MASK_SEED: u64 = 99;

impl Problem {
    fn new(cell: CellKind, bidirectional: bool, num_layers: usize, variant: Variant, seed: u64) -> Self {
        let (steps, batch, d, h) = (5, 3, 3, 4);
        let config = RnnConfig {
            cell,
            input_size: d,
            hidden_size: h,
            num_layers,
            bidirectional,
            layer_norm: matches!(variant, Variant::LayerNorm),
            input_dropout: if matches!(variant, Variant::VariationalDropout) { 0.3 } else { 0.0 },
            state_dropout: if matches!(variant, Variant::VariationalDropout) { 0.3 } else { 0.0 },
            dropout: if matches!(variant, Variant::VariationalDropout) { 0.3 } else { 0.0 },
            learn_initial_state: matches!(variant, Variant::LearnedInitialState),
        };
        let mut rnn = Rnn::<f64>::new(config.clone(), seed).unwrap();
        let mut rng = Rng::new(seed + 1);
        // Perturb norm gains and learned states away from their 1/0 initial values so
        // that their gradients are generic.
        for c in rnn.cells_mut() {
            c.for_each_mut(|_, t| t.data.iter_mut().for_each(|v| *v += 0.3 * rng.normal()));
        }
        let mut normal = |n: usize, s: f64| (0..n).map(|_| s * rng.normal()).collect::<Vec<f64>>();
        let states = num_layers * config.directions() * batch * h;
        let x = normal(steps * batch * d, 1.0);
        let explicit_state = !matches!(variant, Variant::LearnedInitialState);
        let h0 = explicit_state.then(|| normal(states, 0.5));
        let c0 = (explicit_state && cell.has_cell_state()).then(|| normal(states, 0.5));
        let probe = normal(steps * batch * config.output_size(), 1.0);
        let probe_h = normal(states, 1.0);
        let probe_c = normal(states, 1.0);
        let lengths = matches!(variant, Variant::Lengths).then(|| vec![steps, 2, 4]);
        Problem { rnn, x, h0, c0, lengths, probe, probe_h, probe_c, steps, batch }
    }

    fn loss(&self, rnn: &Rnn<f64>, x: &[f64], h0: Option<&[f64]>, c0: Option<&[f64]>) -> f64 {
        let input = SequenceBatch { x, steps: self.steps, batch: self.batch, lengths: self.lengths.as_deref() };
        let (out, _) = rnn.forward_train(&input, &InitialState { h0, c0 }, MASK_SEED).unwrap();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        dot(&out.output, &self.probe) + dot(&out.h_n, &self.probe_h) + dot(&out.c_n, &self.probe_c)
    }

    /// Returns (what, index, analytic, numeric) of every entry outside tolerance.
    fn check(&self) -> Vec<(String, usize, f64, f64)> {
        let input =
            SequenceBatch { x: &self.x, steps: self.steps, batch: self.batch, lengths: self.lengths.as_deref() };
        let state = InitialState { h0: self.h0.as_deref(), c0: self.c0.as_deref() };
        let (_, mut cache) = self.rnn.forward_train(&input, &state, MASK_SEED).unwrap();
        let mut grads = self.rnn.zero_grads();
        let has_c = self.rnn.config().cell.has_cell_state();
        let d = self
            .rnn
            .backward(
                &input,
                &mut cache,
                &self.probe,
                Some(&self.probe_h),
                has_c.then_some(&self.probe_c[..]),
                &mut grads,
            )
            .unwrap();
        let mut bad = Vec::new();
        let mut compare = |what: String, i: usize, analytic: f64, numeric: f64| {
            if (analytic - numeric).abs() > 1e-6 + 1e-5 * numeric.abs() {
                bad.push((what, i, analytic, numeric));
            }
        };
        // Parameters.
        for (ci, g) in grads.iter().enumerate() {
            g.for_each(|field, gt| {
                for i in 0..gt.len() {
                    let mut plus = self.rnn.clone();
                    let mut minus = self.rnn.clone();
                    plus.cells_mut()[ci].for_each_mut(|f, t| {
                        if f == field {
                            t.data[i] += EPS
                        }
                    });
                    minus.cells_mut()[ci].for_each_mut(|f, t| {
                        if f == field {
                            t.data[i] -= EPS
                        }
                    });
                    let numeric = (self.loss(&plus, &self.x, self.h0.as_deref(), self.c0.as_deref())
                        - self.loss(&minus, &self.x, self.h0.as_deref(), self.c0.as_deref()))
                        / (2.0 * EPS);
                    compare(self.rnn.param_name(ci, field), i, gt.data[i], numeric);
                }
            });
        }
        // Inputs and given initial states.
        let mut vectors: Vec<(&str, &Vec<f64>, &Vec<f64>)> = vec![("x", &self.x, &d.d_x)];
        if let Some(h0) = &self.h0 {
            vectors.push(("h0", h0, &d.d_h0));
        }
        if let Some(c0) = &self.c0 {
            vectors.push(("c0", c0, &d.d_c0));
        }
        for (what, base, analytic) in vectors {
            for i in 0..base.len() {
                let eval = |delta: f64| {
                    let mut v = base.clone();
                    v[i] += delta;
                    match what {
                        "x" => self.loss(&self.rnn, &v, self.h0.as_deref(), self.c0.as_deref()),
                        "h0" => self.loss(&self.rnn, &self.x, Some(&v), self.c0.as_deref()),
                        _ => self.loss(&self.rnn, &self.x, self.h0.as_deref(), Some(&v)),
                    }
                };
                compare(what.to_string(), i, analytic[i], (eval(EPS) - eval(-EPS)) / (2.0 * EPS));
            }
        }
        bad
    }
}

fn check_cell(cell: CellKind) {
    let mut failures = Vec::new();
    let mut cases = 0;
    for bidirectional in [false, true] {
        for layers in [1, 2] {
            for variant in [
                Variant::Plain,
                Variant::LayerNorm,
                Variant::VariationalDropout,
                Variant::Lengths,
                Variant::LearnedInitialState,
            ] {
                let problem = Problem::new(cell, bidirectional, layers, variant, 17 + cases as u64);
                cases += 1;
                for (what, i, a, n) in problem.check().into_iter().take(3) {
                    failures.push(format!(
                        "{cell:?} bi={bidirectional} layers={layers} {variant:?}: {what}[{i}] analytic {a:.9} numeric {n:.9}"
                    ));
                }
            }
        }
    }
    println!("{cell:?}: {cases} gradient-check cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn gradient_check_elman_tanh() {
    check_cell(CellKind::ElmanTanh);
}

#[test]
fn gradient_check_elman_relu() {
    check_cell(CellKind::ElmanRelu);
}

#[test]
fn gradient_check_jordan() {
    check_cell(CellKind::Jordan);
}

#[test]
fn gradient_check_lstm() {
    check_cell(CellKind::Lstm);
}

#[test]
fn gradient_check_gru_reset_after() {
    check_cell(CellKind::GruResetAfter);
}

#[test]
fn gradient_check_gru_reset_before() {
    check_cell(CellKind::GruResetBefore);
}
