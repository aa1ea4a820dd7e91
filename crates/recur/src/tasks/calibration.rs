//! Split-conformal calibration of forecast bands (Vovk, Gammerman & Shafer 2005; for bands
//! with a learned, uneven width, the normalised scores of Lei et al. 2018 and Romano et al.
//! 2019). On a part the model never trained on (the validation part), every scored forecast
//! x̂ with band [l, h] and truth t gives a score, the distance outside the forecast in units
//! of the band's own reach on that side:
//!
//! ```text
//! s = (t − x̂) / (h − x̂)   if t ≥ x̂,    s = (x̂ − t) / (x̂ − l)   otherwise,
//! κ = the ⌈(n + 1)(1 − α)⌉-th smallest of the n scores,
//! ```
//!
//! one κ per step ahead and signal; the calibrated band is [x̂ − κ(x̂ − l), x̂ + κ(h − x̂)].
//! If the scores of new forecasts are exchangeable with the fitted ones it holds the truth
//! with probability at least 1 − α, whatever the model; κ > 1 widens a band that held too
//! little, κ < 1 narrows one that held too much, and each band keeps its shape (its
//! unevenness, its width from step to step). α = 0.0455, where ±2σ lies for a Gaussian.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::{read_json_if_present, write_json_atomically};

/// The file a run folder keeps its calibration in (`recur calibrate` writes it; `recur
/// eval`, `predict` and `stream` apply it).
pub const CALIBRATION_FILE: &str = "calibration.json";

/// Conformal scale factors κ of a band, `[steps, C]` row by row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BandCalibration {
    /// The signals, in the order of each row of `scale`.
    pub signals: Vec<String>,
    /// κ per step ahead (1, 2, …) and signal; a step past the last row keeps the model's band.
    pub scale: Vec<f32>,
    /// How many scores each κ was fitted on.
    pub scores: Vec<usize>,
    /// Sample paths behind the bands past the model's direct steps (0: none).
    pub paths: usize,
}

impl BandCalibration {
    /// κ of each `(step, signal)` from its scores ([`conformal_quantile`] at coverage
    /// 1 − `alpha`); `scores[h·C + j]` holds those of h + 1 steps ahead, signal j.
    ///
    /// # Errors
    /// A step and signal with no score.
    pub fn fit(signals: Vec<String>, mut scores: Vec<Vec<f32>>, alpha: f64, paths: usize) -> Result<Self> {
        let c = signals.len();
        if let Some(i) = scores.iter().position(Vec::is_empty) {
            return Err(Error::invalid(
                "band calibration",
                format!("no scored forecast of `{}` {} steps ahead in the calibration part", signals[i % c], i / c + 1),
            ));
        }
        let counts = scores.iter().map(Vec::len).collect();
        let scale: Vec<f32> = scores.iter_mut().map(|s| conformal_quantile(s, alpha)).collect();
        if let Some(i) = scale.iter().position(|k| !k.is_finite()) {
            return Err(Error::invalid(
                "band calibration",
                format!(
                    "the band of `{}` {} steps ahead has no reach on a side its truths fall on; no factor widens it",
                    signals[i % c],
                    i / c + 1
                ),
            ));
        }
        Ok(BandCalibration { signals, scale, scores: counts, paths })
    }

    /// Steps ahead calibrated.
    pub fn steps(&self) -> usize {
        self.scale.len() / self.signals.len().max(1)
    }

    /// κ of value `i` of a forecast `[H, C]` row by row (1 past the calibrated steps).
    pub fn factor(&self, i: usize) -> f32 {
        self.scale.get(i).copied().unwrap_or(1.0)
    }

    /// [`BandCalibration::factor`] of an optional calibration (1 without one).
    pub fn factor_or_one(calibration: Option<&Self>, i: usize) -> f32 {
        calibration.map_or(1.0, |k| k.factor(i))
    }

    /// Refuses a calibration fitted for other signals than a model's `signals`.
    ///
    /// # Errors
    /// Its signals differ, named both.
    pub fn check_signals(calibration: Option<&Self>, signals: &[String]) -> Result<()> {
        match calibration.filter(|k| k.signals != signals) {
            Some(k) => {
                Err(Error::invalid("calibration", format!("fitted for {:?}, the model reads {:?}", k.signals, signals)))
            }
            None => Ok(()),
        }
    }

    /// The calibration kept in run folder `dir`, if there is one.
    ///
    /// # Errors
    /// A file that cannot be read or parsed (named), or one fitted for other signals.
    pub fn load_from_run(dir: &Path, signals: &[String]) -> Result<Option<Self>> {
        let path = dir.join(CALIBRATION_FILE);
        let Some(calibration) = read_json_if_present::<BandCalibration>(&path)? else { return Ok(None) };
        let bad = |why: String| Error::Format { path: path.clone(), why };
        if let Some(k) = calibration.scale.iter().find(|k| !(k.is_finite() && **k >= 0.0)) {
            return Err(bad(format!("a factor of {k}; each must be a non-negative number")));
        }
        if calibration.signals != signals || !calibration.scale.len().is_multiple_of(signals.len().max(1)) {
            return Err(bad(format!(
                "fitted for the signals {:?} ({} factors), the run has {:?}",
                calibration.signals,
                calibration.scale.len(),
                signals
            )));
        }
        Ok(Some(calibration))
    }

    /// Writes it into run folder `dir`, atomically.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save_to_run(&self, dir: &Path) -> Result<()> {
        write_json_atomically(&dir.join(CALIBRATION_FILE), self, "band calibration")
    }
}

/// The ⌈(n + 1)(1 − α)⌉-th smallest of the n `scores` (reordered), the largest when that
/// rank passes n: the split-conformal quantile.
pub fn conformal_quantile(scores: &mut [f32], alpha: f64) -> f32 {
    let n = scores.len();
    let rank = (((n + 1) as f64) * (1.0 - alpha)).ceil() as usize;
    let at = rank.clamp(1, n.max(1)) - 1;
    *scores.select_nth_unstable_by(at, f32::total_cmp).1
}

/// The score of truth `t` against forecast `x` and its band [`low`, `high`] (see the
/// module): 0 at the forecast, 1 on an edge; a side of zero reach scores 0 for a truth on
/// the forecast, +∞ beyond it.
pub fn band_score(x: f32, low: f32, high: f32, t: f32) -> f32 {
    let (distance, reach) = if t >= x { (t - x, high - x) } else { (x - t, x - low) };
    match distance {
        0.0 => 0.0,
        _ if reach > 0.0 => distance / reach,
        _ => f32::INFINITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conformal_quantile_is_the_ceil_rank_order_statistic() {
        // synthetic: n = 99 scores 1..=99; at α = 0.1, rank ⌈100·0.9⌉ = 90
        let mut scores: Vec<f32> = (1..=99).rev().map(|v| v as f32).collect();
        assert_eq!(conformal_quantile(&mut scores, 0.1), 90.0);
        // n = 10 at α = 0.0455: rank ⌈11·0.9545⌉ = 11 > n, the largest
        let mut few: Vec<f32> = (0..10).map(|v| v as f32).collect();
        assert_eq!(conformal_quantile(&mut few, 0.0455), 9.0);
        assert_eq!(band_score(1.0, 0.0, 3.0, 2.0), 0.5);
        assert_eq!(band_score(1.0, 0.0, 3.0, -1.0), 2.0);
        assert_eq!((band_score(1.0, 1.0, 3.0, 1.0), band_score(1.0, 1.0, 3.0, 0.5)), (0.0, f32::INFINITY));
    }

    #[test]
    fn fitting_needs_a_score_everywhere_and_a_run_folder_keeps_it() {
        let signals = vec!["a".to_string(), "b".to_string()];
        let err = BandCalibration::fit(signals.clone(), vec![vec![1.0], vec![]], 0.05, 0).unwrap_err().to_string();
        assert!(err.contains("`b` 1 steps ahead"), "{err}");
        let fitted = BandCalibration::fit(signals.clone(), vec![vec![0.5, 2.0], vec![1.5]], 0.05, 0).unwrap();
        assert_eq!((fitted.scale.clone(), fitted.scores.clone(), fitted.steps()), (vec![2.0, 1.5], vec![2, 1], 1));
        assert_eq!((fitted.factor(1), fitted.factor(2)), (1.5, 1.0));
        let scratch = tempfile::Builder::new().prefix("recur-calibration-").tempdir().unwrap();
        let dir = scratch.path();
        assert_eq!(BandCalibration::load_from_run(dir, &signals).unwrap(), None);
        fitted.save_to_run(dir).unwrap();
        assert_eq!(BandCalibration::load_from_run(dir, &signals).unwrap(), Some(fitted.clone()));
        let err = BandCalibration::load_from_run(dir, &["a".to_string()]).unwrap_err().to_string();
        assert!(err.contains(CALIBRATION_FILE) && err.contains("the run has"), "{err}");
        let negative = BandCalibration { scale: vec![2.0, -1.0], ..fitted };
        negative.save_to_run(dir).unwrap();
        let err = BandCalibration::load_from_run(dir, &signals).unwrap_err().to_string();
        assert!(err.contains("a factor of -1"), "{err}");
        let err = BandCalibration::fit(signals.clone(), vec![vec![f32::INFINITY], vec![1.0]], 0.05, 0).unwrap_err();
        assert!(err.to_string().contains("`a` 1 steps ahead has no reach"), "{err}");
    }
}
