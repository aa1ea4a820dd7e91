//! Error metrics pooled over scored entries (the deck's figure of merit is the micro MSE).

use serde::Serialize;

use crate::data::Standardizer;

/// Accumulates squared and absolute errors over scored entries, per signal, in
/// standardised and original units.
#[derive(Clone, Debug)]
pub struct ErrorAccumulator {
    sq: Vec<f64>,
    abs: Vec<f64>,
    sq_orig: Vec<f64>,
    abs_orig: Vec<f64>,
    count: Vec<u64>,
    /// Per signal: scored entries with a σ, and those inside ±2σ.
    banded: Vec<u64>,
    inside: Vec<u64>,
}

/// Micro (pooled) MSE and MAE over scored entries, and the MSE of each signal.
#[derive(Clone, Debug, Serialize)]
pub struct Metrics {
    pub scored: u64,
    pub micro_mse: f64,
    pub mae: f64,
    pub micro_mse_original: f64,
    pub mae_original: f64,
    pub per_signal_mse: Vec<f64>,
    pub per_signal_mse_original: Vec<f64>,
    /// Fraction of the scored entries within ±2σ of the prediction, where a σ was given
    /// ([`ErrorAccumulator::add_with_sigma`]; 95.4 % if calibrated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage_2sigma: Option<f64>,
    /// The same per signal (empty without σ).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_signal_coverage_2sigma: Vec<f64>,
}

impl ErrorAccumulator {
    pub fn new(channels: usize) -> Self {
        let z = vec![0.0; channels];
        ErrorAccumulator {
            sq: z.clone(),
            abs: z.clone(),
            sq_orig: z.clone(),
            abs_orig: z,
            count: vec![0; channels],
            banded: vec![0; channels],
            inside: vec![0; channels],
        }
    }

    /// [`ErrorAccumulator::add`], each entry with its σ (standardised, as `pred`),
    /// counting the scored entries within ±2σ.
    pub fn add_with_sigma(&mut self, pred: &[f32], target: &[f32], mask: &[f32], sigma: &[f32], scaler: &Standardizer) {
        self.add(pred, target, mask, scaler);
        let c = self.count.len();
        for (k, ((&p, &t), &m)) in pred.iter().zip(target).zip(mask).enumerate() {
            if m != 0.0 {
                self.inside[k % c] += ((p - t).abs() <= 2.0 * sigma[k]) as u64;
                self.banded[k % c] += 1;
            }
        }
    }

    /// Adds rows of `[C]` standardised predictions and targets; `mask` selects scored entries.
    pub fn add(&mut self, pred: &[f32], target: &[f32], mask: &[f32], scaler: &Standardizer) {
        let c = self.count.len();
        for (k, ((&p, &t), &m)) in pred.iter().zip(target).zip(mask).enumerate() {
            if m == 0.0 {
                continue;
            }
            let j = k % c;
            let e = (p - t) as f64;
            let e_orig = e * scaler.std[j] as f64;
            self.sq[j] += e * e;
            self.abs[j] += e.abs();
            self.sq_orig[j] += e_orig * e_orig;
            self.abs_orig[j] += e_orig.abs();
            self.count[j] += 1;
        }
    }

    pub fn finish(&self) -> Metrics {
        let n: u64 = self.count.iter().sum();
        let banded: u64 = self.banded.iter().sum();
        let total = |v: &[f64]| v.iter().sum::<f64>() / n.max(1) as f64;
        let per = |v: &[f64]| v.iter().zip(&self.count).map(|(s, &c)| s / c.max(1) as f64).collect();
        Metrics {
            scored: n,
            micro_mse: total(&self.sq),
            mae: total(&self.abs),
            micro_mse_original: total(&self.sq_orig),
            mae_original: total(&self.abs_orig),
            per_signal_mse: per(&self.sq),
            per_signal_mse_original: per(&self.sq_orig),
            coverage_2sigma: (banded > 0).then(|| self.inside.iter().sum::<u64>() as f64 / banded as f64),
            per_signal_coverage_2sigma: match banded {
                0 => Vec::new(),
                _ => self.inside.iter().zip(&self.banded).map(|(&i, &b)| i as f64 / b.max(1) as f64).collect(),
            },
        }
    }
}
