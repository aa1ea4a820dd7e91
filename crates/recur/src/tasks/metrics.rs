//! Error metrics pooled over scored entries (the deck's figure of merit is the micro MSE).

use serde::Serialize;

use crate::data::Standardizer;

/// Accumulates squared and absolute errors over scored entries, per signal, in
/// standardised units (of the signal itself, also where the model reads ln(1 + x):
/// [`Standardizer::error`]) and original units.
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
    /// Per signal: Σ of the bands' widths, and of their interval scores.
    width: Vec<f64>,
    interval: Vec<f64>,
}

/// α of the ±2σ band in its interval score (the probability outside it if calibrated).
pub const BAND_ALPHA: f64 = 0.0455;

/// Micro (pooled) MSE and MAE over scored entries, and the MSE of each signal.
#[derive(Clone, Debug, Default, Serialize)]
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
    /// The ±2σ band's mean width, in the units of `mae` (how sharp the band is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band_width_2sigma: Option<f64>,
    /// The band's mean interval score (Gneiting & Raftery 2007, a proper score: width +
    /// (2/α)·distance of the truth outside the band, α = 0.0455), in the same units; lower
    /// is better, and neither too wide nor too narrow a band can win it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_score_2sigma: Option<f64>,
    /// Per signal: its scored entries and MAE (standardised and original), and its band's
    /// mean width and interval score (empty without a band): with the per-signal fields
    /// above, each signal's metrics alone ([`Metrics::of_signal`]).
    pub per_signal_scored: Vec<u64>,
    pub per_signal_mae: Vec<f64>,
    pub per_signal_mae_original: Vec<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_signal_band_width_2sigma: Vec<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_signal_interval_score_2sigma: Vec<f64>,
}

impl Metrics {
    /// The metrics of signal `j` alone, as if it were the only one scored.
    pub fn of_signal(&self, j: usize) -> Metrics {
        let one = |v: &[f64]| v.get(j).map(|&x| vec![x]).unwrap_or_default();
        let at = |v: &[f64]| v.get(j).copied();
        Metrics {
            scored: self.per_signal_scored[j],
            micro_mse: self.per_signal_mse[j],
            mae: self.per_signal_mae[j],
            micro_mse_original: self.per_signal_mse_original[j],
            mae_original: self.per_signal_mae_original[j],
            per_signal_mse: one(&self.per_signal_mse),
            per_signal_mse_original: one(&self.per_signal_mse_original),
            coverage_2sigma: at(&self.per_signal_coverage_2sigma),
            per_signal_coverage_2sigma: one(&self.per_signal_coverage_2sigma),
            band_width_2sigma: at(&self.per_signal_band_width_2sigma),
            interval_score_2sigma: at(&self.per_signal_interval_score_2sigma),
            per_signal_scored: vec![self.per_signal_scored[j]],
            per_signal_mae: one(&self.per_signal_mae),
            per_signal_mae_original: one(&self.per_signal_mae_original),
            per_signal_band_width_2sigma: one(&self.per_signal_band_width_2sigma),
            per_signal_interval_score_2sigma: one(&self.per_signal_interval_score_2sigma),
        }
    }
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
            width: vec![0.0; channels],
            interval: vec![0.0; channels],
        }
    }

    /// [`ErrorAccumulator::add`], each entry with its σ (standardised, as `pred`),
    /// counting the scored entries within ±2σ and scoring the band.
    pub fn add_with_sigma(&mut self, pred: &[f32], target: &[f32], mask: &[f32], sigma: &[f32], scaler: &Standardizer) {
        self.add(pred, target, mask, scaler);
        let c = self.count.len();
        for (k, ((&p, &t), &m)) in pred.iter().zip(target).zip(mask).enumerate() {
            if m != 0.0 {
                let (j, p64, s) = (k % c, f64::from(p), 2.0 * f64::from(sigma[k]));
                let inside = match scaler.floor_of(j) {
                    None => (p - t).abs() <= 2.0 * sigma[k],
                    Some(_) => scaler.holds(j, p64 - s, p64 + s, t),
                };
                self.add_band(j, inside, scaler.band_miss(j, p64 - s, p64 + s, t));
            }
        }
    }

    /// [`ErrorAccumulator::add`], each entry with a band `[low, high]` meant to hold it with
    /// the ±2σ band's probability (standardised, as `pred`; e.g. sampled quantiles).
    pub fn add_with_band(
        &mut self,
        pred: &[f32],
        target: &[f32],
        mask: &[f32],
        low: &[f32],
        high: &[f32],
        scaler: &Standardizer,
    ) {
        self.add(pred, target, mask, scaler);
        let c = self.count.len();
        for (k, (&t, &m)) in target.iter().zip(mask).enumerate() {
            if m != 0.0 {
                let (j, low, high) = (k % c, f64::from(low[k]), f64::from(high[k]));
                self.add_band(j, scaler.holds(j, low, high, t), scaler.band_miss(j, low, high, t));
            }
        }
    }

    /// One scored entry's band: whether it held the truth, (its width, the truth's distance outside).
    fn add_band(&mut self, j: usize, inside: bool, (width, miss): (f64, f64)) {
        self.inside[j] += inside as u64;
        self.banded[j] += 1;
        self.width[j] += width;
        self.interval[j] += width + 2.0 / BAND_ALPHA * miss;
    }

    /// Adds rows of `[C]` standardised predictions and targets; `mask` selects scored entries.
    pub fn add(&mut self, pred: &[f32], target: &[f32], mask: &[f32], scaler: &Standardizer) {
        let c = self.count.len();
        for (k, ((&p, &t), &m)) in pred.iter().zip(target).zip(mask).enumerate() {
            if m == 0.0 {
                continue;
            }
            let j = k % c;
            let (e, e_orig) = scaler.error(j, p, t);
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
        let per_banded = |v: &[f64]| match banded {
            0 => Vec::new(),
            _ => v.iter().zip(&self.banded).map(|(s, &b)| s / b.max(1) as f64).collect(),
        };
        Metrics {
            scored: n,
            micro_mse: total(&self.sq),
            mae: total(&self.abs),
            micro_mse_original: total(&self.sq_orig),
            mae_original: total(&self.abs_orig),
            per_signal_mse: per(&self.sq),
            per_signal_mse_original: per(&self.sq_orig),
            coverage_2sigma: (banded > 0).then(|| self.inside.iter().sum::<u64>() as f64 / banded as f64),
            per_signal_coverage_2sigma: per_banded(&self.inside.iter().map(|&i| i as f64).collect::<Vec<_>>()),
            band_width_2sigma: (banded > 0).then(|| self.width.iter().sum::<f64>() / banded as f64),
            interval_score_2sigma: (banded > 0).then(|| self.interval.iter().sum::<f64>() / banded as f64),
            per_signal_scored: self.count.clone(),
            per_signal_mae: per(&self.abs),
            per_signal_mae_original: per(&self.abs_orig),
            per_signal_band_width_2sigma: per_banded(&self.width),
            per_signal_interval_score_2sigma: per_banded(&self.interval),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_scores_its_coverage_width_and_interval_score() {
        // synthetic: two signals with spreads 2 and 10; standardised p, t and σ = 0.5
        let scaler = Standardizer {
            mean: vec![0.0, 5.0],
            std: vec![2.0, 10.0],
            log1p: Vec::new(),
            score_std: Vec::new(),
            floor: Vec::new(),
            screen: Vec::new(),
        };
        let mut acc = ErrorAccumulator::new(2);
        // signal 0: inside (|p − t| = 0.5 ≤ 1); signal 1: 2 outside the band's top (p + 1 = 1, t = 3)
        let (pred, target, sigma) = ([0.0, 0.0, 9.0, 9.0], [0.5, 3.0, 0.0, 0.0], [0.5; 4]);
        acc.add_with_sigma(&pred, &target, &[1.0, 1.0, 0.0, 0.0], &sigma, &scaler);
        let m = acc.finish();
        assert_eq!((m.scored, m.coverage_2sigma, m.per_signal_coverage_2sigma.clone()), (2, Some(0.5), vec![1.0, 0.0]));
        assert_eq!(m.band_width_2sigma, Some(2.0));
        let want = (2.0 + (2.0 + 2.0 / BAND_ALPHA * 2.0)) / 2.0;
        assert!((m.interval_score_2sigma.unwrap() - want).abs() < 1e-12, "{:?}", m.interval_score_2sigma);
        // errors in standardised and original units
        assert_eq!((m.micro_mse, m.per_signal_mse_original.clone()), ((0.25 + 9.0) / 2.0, vec![1.0, 900.0]));
        // signal 1 alone: as if scored alone
        let mut alone = ErrorAccumulator::new(1);
        let one = |v: [f32; 4]| [v[1], v[3]];
        alone.add_with_sigma(&one(pred), &one(target), &[1.0, 0.0], &[0.5; 2], &scaler.select(&[1]));
        let (of, alone) = (m.of_signal(1), alone.finish());
        assert_eq!(format!("{of:?}"), format!("{alone:?}"));
        assert_eq!((of.scored, of.coverage_2sigma, of.micro_mse), (1, Some(0.0), 9.0));
        // without σ: no band scores
        let mut plain = ErrorAccumulator::new(2);
        plain.add(&pred, &target, &[1.0; 4], &scaler);
        let m = plain.finish();
        assert_eq!((m.coverage_2sigma, m.band_width_2sigma, m.interval_score_2sigma), (None, None, None));
    }
}
