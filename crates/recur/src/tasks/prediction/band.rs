//! A forecast's band from the head's positive outputs ([`Spread`]): σ = 1/√λ̂ of a
//! Gaussian head (the band ±2σ), or a quantile head's distances down to the 2.275 % and up
//! to the 97.725 % quantile; and quantiles of sample paths, for bands past a model's
//! direct steps.

use std::ops::Range;

use crate::data::Standardizer;
use crate::tasks::calibration::BandCalibration;
use crate::tasks::metrics::ErrorAccumulator;

/// softplus⁻¹(y) = ln(eʸ − 1), for y > 0.
pub(super) fn inverse_softplus(y: f64) -> f64 {
    y + (-(-y).exp_m1()).ln()
}

/// σ = 1/√λ̂ of each of `values` forecasts, whose precisions `precision` each cover a
/// block of `values / precision.len()` consecutive ones (empty without precisions).
pub(super) fn sigma_per_value(precision: &[f32], values: usize) -> Vec<f32> {
    if precision.is_empty() {
        return Vec::new();
    }
    let block = values / precision.len();
    precision.iter().flat_map(|l| std::iter::repeat_n(1.0 / l.sqrt(), block)).collect()
}

/// Whether a head's positive outputs for `values` forecasts are a quantile head's
/// distances, two per value (a Gaussian head's precisions number at most one per value:
/// they split the outputs into blocks).
pub(super) fn are_quantile_distances(positive: &[f32], values: usize) -> bool {
    positive.len() == 2 * values && values > 0
}

/// The band of each of a run of standardised forecast values, from the head's positive
/// outputs ([`super::Uncertainty`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) enum Spread {
    #[default]
    None,
    /// σ of each value (a Gaussian head): the band is ±2σ.
    Sigma(Vec<f32>),
    /// The distances from each value down to its 2.275 % and up to its 97.725 % quantile.
    Quantiles { below: Vec<f32>, above: Vec<f32> },
}

impl Spread {
    /// Of `values` forecasts in rows of `outputs`, from the head's positive outputs of
    /// those rows: a quantile head's are twice as many as the values (each row's O
    /// distances below, then its O above), a Gaussian head's precisions at most as many.
    pub(super) fn of(positive: &[f32], values: usize, outputs: usize) -> Spread {
        if positive.is_empty() {
            return Spread::None;
        }
        if !are_quantile_distances(positive, values) {
            return Spread::Sigma(sigma_per_value(positive, values));
        }
        let side =
            |offset: usize| (0..values).map(|i| positive[i / outputs * 2 * outputs + offset + i % outputs]).collect();
        Spread::Quantiles { below: side(0), above: side(outputs) }
    }

    /// Each of its vectors through `f` (e.g. a selection of values).
    pub(super) fn map(&self, f: impl Fn(&[f32]) -> Vec<f32>) -> Spread {
        match self {
            Spread::None => Spread::None,
            Spread::Sigma(s) => Spread::Sigma(f(s)),
            Spread::Quantiles { below, above } => Spread::Quantiles { below: f(below), above: f(above) },
        }
    }

    /// Every value's reach scaled by its conformal factor κ (value i of `[H, C]` row by
    /// row: [`BandCalibration::factor`]); itself without a calibration.
    pub(super) fn calibrated(self, calibration: Option<&BandCalibration>) -> Spread {
        self.calibrated_rows(calibration, usize::MAX)
    }

    /// [`Spread::calibrated`] for forecasts of `per_forecast` values each, one after
    /// another (value i scaled by κ of i mod `per_forecast`).
    pub(super) fn calibrated_rows(self, calibration: Option<&BandCalibration>, per_forecast: usize) -> Spread {
        let Some(calibration) = calibration else { return self };
        let scale = |v: &[f32]| v.iter().enumerate().map(|(i, &d)| d * calibration.factor(i % per_forecast)).collect();
        self.map(scale)
    }

    /// The band's edges around the first values of `z` that have one, standardised.
    pub(super) fn edges(&self, z: &[f32]) -> (Vec<f32>, Vec<f32>) {
        match self {
            Spread::None => (Vec::new(), Vec::new()),
            Spread::Sigma(s) => s.iter().zip(z).map(|(&s, &z)| (z - 2.0 * s, z + 2.0 * s)).unzip(),
            Spread::Quantiles { below, above } => {
                below.iter().zip(above).zip(z).map(|((&b, &a), &z)| (z - b, z + a)).unzip()
            }
        }
    }

    /// The scales of a draw below and above each value, σ·ε on ε's side: σ both ways for a
    /// Gaussian; d⁻/2 and d⁺/2 for a quantile band (the split normal whose 2.275 % and
    /// 97.725 % quantiles are its edges). None without a band.
    pub(super) fn draw_scales(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        match self {
            Spread::None => None,
            Spread::Sigma(s) => Some((s.clone(), s.clone())),
            Spread::Quantiles { below, above } => {
                let half = |v: &[f32]| v.iter().map(|d| 0.5 * d).collect();
                Some((half(below), half(above)))
            }
        }
    }

    /// Adds standardised forecasts `pred` of `target` (`mask`: the scored ones), values
    /// `at` of this spread's, to `acc` with their band.
    pub(super) fn add_to(
        &self,
        acc: &mut ErrorAccumulator,
        at: Range<usize>,
        pred: &[f32],
        target: &[f32],
        mask: &[f32],
        scaler: &Standardizer,
    ) {
        match self {
            Spread::None => acc.add(pred, target, mask, scaler),
            Spread::Sigma(s) => acc.add_with_sigma(pred, target, mask, &s[at], scaler),
            Spread::Quantiles { .. } => {
                let (low, high) = self.map(|v| v[at.clone()].to_vec()).edges(pred);
                acc.add_with_band(pred, target, mask, &low, &high, scaler)
            }
        }
    }
}

/// The `q` quantiles of `values` (reordered), linearly interpolated between the order
/// statistics around q·(n − 1); each found by selection, not a sort.
pub(super) fn quantiles<const K: usize>(values: &mut [f32], q: [f64; K]) -> [f32; K] {
    let last = values.len().saturating_sub(1);
    q.map(|q| {
        let at = q * last as f64;
        let below = at.floor() as usize;
        let (_, &mut low, above) = values.select_nth_unstable_by(below, f32::total_cmp);
        let high = above.iter().copied().min_by(f32::total_cmp).unwrap_or(low);
        low + (at - at.floor()) as f32 * (high - low)
    })
}
