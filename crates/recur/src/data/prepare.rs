//! From a grid to model-ready windows: a chronological split, per-signal
//! standardisation fitted on the training part only, and sliding windows that never
//! cross a split boundary.

use std::ops::Range;

use super::grid::GridSeries;
use crate::error::{Error, Result};

/// Fractions of the series, in time order, for training, validation and test.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SplitFractions {
    pub train: f64,
    pub validation: f64,
}

impl Default for SplitFractions {
    /// The deck's 60 / 20 / 20.
    fn default() -> Self {
        SplitFractions { train: 0.6, validation: 0.2 }
    }
}

/// Per-signal affine map to zero mean and unit variance, fitted on observed training entries.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Standardizer {
    /// # Errors
    /// A signal with no observation, or a constant one, in the fitted rows (named).
    pub fn fit(grid: &GridSeries, rows: Range<usize>) -> Result<Self> {
        let c = grid.channels();
        let mut mean = Vec::with_capacity(c);
        let mut std = Vec::with_capacity(c);
        for j in 0..c {
            let vals: Vec<f64> =
                rows.clone().filter(|&n| grid.observed[n * c + j]).map(|n| grid.values[n * c + j] as f64).collect();
            if vals.is_empty() {
                return Err(Error::invalid(
                    format!("signal `{}`", grid.signals[j]),
                    "it is never observed in the training part",
                ));
            }
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / vals.len() as f64;
            if var.sqrt() < 1e-12 * m.abs().max(1.0) {
                return Err(Error::invalid(
                    format!("signal `{}`", grid.signals[j]),
                    format!("it is constant ({m}) in the training part; drop it"),
                ));
            }
            mean.push(m as f32);
            std.push(var.sqrt() as f32);
        }
        Ok(Standardizer { mean, std })
    }

    pub fn apply(&self, signal: usize, v: f32) -> f32 {
        (v - self.mean[signal]) / self.std[signal]
    }

    pub fn invert(&self, signal: usize, z: f32) -> f32 {
        z * self.std[signal] + self.mean[signal]
    }
}

/// A standardised grid split in time: `values` standardised (0 where missing).
#[derive(Clone, Debug)]
pub struct PreparedSeries {
    pub grid: GridSeries,
    pub scaler: Standardizer,
    pub train: Range<usize>,
    pub validation: Range<usize>,
    pub test: Range<usize>,
}

impl PreparedSeries {
    /// # Errors
    /// Fractions outside (0, 1) or summing past 1, or a signal that cannot be standardised.
    pub fn new(mut grid: GridSeries, split: SplitFractions) -> Result<Self> {
        let n = grid.len();
        if !(split.train > 0.0 && split.validation >= 0.0 && split.train + split.validation < 1.0) {
            return Err(Error::invalid("split", format!("{split:?}: train > 0 and train + validation < 1 are needed")));
        }
        let a = (n as f64 * split.train) as usize;
        let b = (n as f64 * (split.train + split.validation)) as usize;
        let scaler = Standardizer::fit(&grid, 0..a)?;
        let c = grid.channels();
        for (k, v) in grid.values.iter_mut().enumerate() {
            *v = if grid.observed[k] { scaler.apply(k % c, *v) } else { 0.0 };
        }
        Ok(PreparedSeries { grid, scaler, train: 0..a, validation: a..b, test: b..n })
    }

    /// Start indices of every window of `length` inside `part`.
    ///
    /// # Errors
    /// A window longer than the part.
    pub fn window_starts(&self, part: &Range<usize>, length: usize, name: &str) -> Result<Vec<usize>> {
        if length == 0 || part.len() < length {
            return Err(Error::invalid(
                "window length",
                format!("{length} steps, but the {name} part has only {} steps", part.len()),
            ));
        }
        Ok((part.start..=part.end - length).collect())
    }
}
