//! From grids to model-ready windows: one or several entities (stations, ICU records…)
//! stacked in time, a split into training, validation and test parts — chronological
//! within each entity, or by whole entities — per-signal standardisation fitted on the
//! training part only, and sliding windows that never cross an entity or a split.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::grid::{bins_since_observed, GridSeries};
use crate::error::{Error, Result};

/// Fractions for training and validation (the rest is the test part).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SplitFractions {
    pub train: f64,
    pub validation: f64,
    /// With several entities: split each entity in time, or assign whole entities.
    pub by: SplitBy,
}

/// How several entities are split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitBy {
    /// Every entity contributes its first 60 % to training, and so on.
    #[default]
    Time,
    /// The first 60 % of the entities are training entities, and so on (e.g. patients).
    Entity,
}

impl Default for SplitFractions {
    /// The deck's 60 / 20 / 20.
    fn default() -> Self {
        SplitFractions { train: 0.6, validation: 0.2, by: SplitBy::Time }
    }
}

/// Per-signal affine map to zero mean and unit variance, fitted on observed training entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Standardizer {
    /// # Errors
    /// A signal with no observation, or a constant one, in the fitted rows (named).
    pub fn fit(grid: &GridSeries, rows: &[Range<usize>]) -> Result<Self> {
        let c = grid.channels();
        let mut mean = Vec::with_capacity(c);
        let mut std = Vec::with_capacity(c);
        for j in 0..c {
            let vals: Vec<f64> = rows
                .iter()
                .flat_map(|r| r.clone())
                .filter(|&n| grid.observed[n * c + j])
                .map(|n| grid.values[n * c + j] as f64)
                .collect();
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

/// Standardised entities stacked in time (`values` standardised, 0 where missing), and
/// the steps of each part as ranges that never cross an entity.
#[derive(Clone, Debug)]
pub struct PreparedSeries {
    pub grid: GridSeries,
    pub scaler: Standardizer,
    /// Each entity's name and steps in `grid`.
    pub entities: Vec<(String, Range<usize>)>,
    pub train: Vec<Range<usize>>,
    pub validation: Vec<Range<usize>>,
    pub test: Vec<Range<usize>>,
    /// Per signal: observed values treated as missing by [`PreparedSeries::from_entities_screened`].
    pub screened: Vec<usize>,
}

/// The robust spread of a sample: 1.4826·MAD (median absolute deviation around the
/// median), which equals σ for normal data and ignores a minority of wild values.
/// Returns (median, spread); `None` for an empty sample.
pub fn robust_spread(values: &mut [f64]) -> Option<(f64, f64)> {
    let median = |v: &mut [f64]| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        }
    };
    if values.is_empty() {
        return None;
    }
    let m = median(values);
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    Some((m, 1.4826 * median(&mut deviations)))
}

impl PreparedSeries {
    /// One series (one entity).
    ///
    /// # Errors
    /// As [`PreparedSeries::from_entities`].
    pub fn new(grid: GridSeries, split: SplitFractions) -> Result<Self> {
        Self::from_entities(vec![(String::new(), grid)], split)
    }

    /// Several entities with the same signals and bin width, e.g. one file per station or
    /// one grid per patient.
    ///
    /// # Errors
    /// Fractions outside (0, 1) or summing past 1, entities whose signals or bins differ
    /// (named), too few entities to split by entity, or a signal that cannot be standardised.
    pub fn from_entities(entities: Vec<(String, GridSeries)>, split: SplitFractions) -> Result<Self> {
        Self::from_entities_screened(entities, split, 0.0)
    }

    /// [`PreparedSeries::from_entities`], first treating as missing every observed value
    /// further than `limit` robust standard deviations ([`robust_spread`], per signal,
    /// fitted on the training part) from its signal's training median, in every part:
    /// sensor faults and unit errors that a squared error would otherwise be about. The
    /// counts are in `screened`; the mask and δ follow. `limit = 0` keeps every value; a
    /// signal whose training values are mostly equal (spread 0) is left as it is.
    ///
    /// # Errors
    /// As [`PreparedSeries::from_entities`], and a negative or non-finite `limit`.
    pub fn from_entities_screened(
        entities: Vec<(String, GridSeries)>,
        split: SplitFractions,
        limit: f64,
    ) -> Result<Self> {
        if !(limit.is_finite() && limit >= 0.0) {
            return Err(Error::invalid("outlier_mads", format!("{limit}: 0 (off) or a positive number is needed")));
        }
        if !(split.train > 0.0 && split.validation >= 0.0 && split.train + split.validation < 1.0) {
            return Err(Error::invalid("split", format!("{split:?}: train > 0 and train + validation < 1 are needed")));
        }
        let Some((_, first)) = entities.first() else {
            return Err(Error::invalid("data", "no entity"));
        };
        let (signals, bin) = (first.signals.clone(), first.bin_seconds);
        if let Some((name, g)) = entities.iter().find(|(_, g)| g.signals != signals || g.bin_seconds != bin) {
            return Err(Error::invalid(
                format!("entity `{name}`"),
                format!(
                    "its signals {:?} or bin {} s differ from the first entity's {:?}, {} s",
                    g.signals, g.bin_seconds, signals, bin
                ),
            ));
        }
        let mut grid = GridSeries {
            signals,
            start: first.start,
            bin_seconds: bin,
            values: Vec::new(),
            observed: Vec::new(),
            delta: Vec::new(),
        };
        let mut spans = Vec::new();
        for (name, g) in &entities {
            let start = grid.len();
            grid.values.extend_from_slice(&g.values);
            grid.observed.extend_from_slice(&g.observed);
            grid.delta.extend_from_slice(&g.delta);
            spans.push((name.clone(), start..grid.len()));
        }
        let (mut train, mut validation, mut test) = (Vec::new(), Vec::new(), Vec::new());
        match split.by {
            SplitBy::Time => {
                for (_, r) in &spans {
                    let n = r.len();
                    let a = r.start + (n as f64 * split.train) as usize;
                    let b = r.start + (n as f64 * (split.train + split.validation)) as usize;
                    train.push(r.start..a);
                    validation.push(a..b);
                    test.push(b..r.end);
                }
            }
            SplitBy::Entity => {
                let n = spans.len();
                let a = (n as f64 * split.train).round() as usize;
                let b = (n as f64 * (split.train + split.validation)).round() as usize;
                if a == 0 || b == a || b >= n {
                    return Err(Error::invalid("split", format!("{n} entities are too few to split by entity")));
                }
                for (i, (_, r)) in spans.iter().enumerate() {
                    let part = if i < a {
                        &mut train
                    } else if i < b {
                        &mut validation
                    } else {
                        &mut test
                    };
                    part.push(r.clone());
                }
            }
        }
        let c = grid.channels();
        let mut screened = vec![0usize; c];
        if limit > 0.0 {
            for (j, count) in screened.iter_mut().enumerate() {
                let mut sample: Vec<f64> = train
                    .iter()
                    .flat_map(|r| r.clone())
                    .filter(|&n| grid.observed[n * c + j])
                    .map(|n| f64::from(grid.values[n * c + j]))
                    .collect();
                let Some((median, spread)) = robust_spread(&mut sample).filter(|&(_, s)| s > 0.0) else {
                    continue;
                };
                for k in (j..grid.values.len()).step_by(c) {
                    if grid.observed[k] && (f64::from(grid.values[k]) - median).abs() > limit * spread {
                        (grid.observed[k], grid.values[k]) = (false, 0.0);
                        *count += 1;
                    }
                }
            }
            for (_, r) in &spans {
                let delta = bins_since_observed(&grid.observed[r.start * c..r.end * c], c);
                grid.delta[r.start * c..r.end * c].copy_from_slice(&delta);
            }
        }
        let scaler = Standardizer::fit(&grid, &train)?;
        for (k, v) in grid.values.iter_mut().enumerate() {
            *v = if grid.observed[k] { scaler.apply(k % c, *v) } else { 0.0 };
        }
        Ok(PreparedSeries { grid, scaler, entities: spans, train, validation, test, screened })
    }

    /// Grid step `n` as a live feed would give it: each signal's value in original units,
    /// `None` where missing (what [`crate::tasks::PredictionStream::step`] takes).
    pub fn original_step(&self, n: usize) -> Vec<Option<f32>> {
        let c = self.grid.channels();
        (0..c)
            .map(|j| self.grid.observed[n * c + j].then(|| self.scaler.invert(j, self.grid.values[n * c + j])))
            .collect()
    }

    /// The steps of the entity that holds `step` (empty past the last step).
    pub fn entity_of(&self, step: usize) -> Range<usize> {
        self.entities.iter().find(|(_, r)| r.contains(&step)).map_or(step..step, |(_, r)| r.clone())
    }

    /// Start indices of windows of `length` inside the segments of `part`, every `stride`
    /// steps within each segment.
    ///
    /// # Errors
    /// A window longer than every segment of the part.
    pub fn window_starts(&self, part: &[Range<usize>], length: usize, stride: usize, name: &str) -> Result<Vec<usize>> {
        let starts: Vec<usize> = part
            .iter()
            .filter(|r| length > 0 && r.len() >= length)
            .flat_map(|r| (r.start..=r.end - length).step_by(stride.max(1)))
            .collect();
        if starts.is_empty() {
            let longest = part.iter().map(|r| r.len()).max().unwrap_or(0);
            return Err(Error::invalid(
                "window length",
                format!("{length} steps, but the {name} part has only {longest} steps (in its longest entity)"),
            ));
        }
        Ok(starts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic signal: a sine with one wild value (a unit error) in its test part and
    /// a second, ordinary signal.
    fn grid_with_spike() -> GridSeries {
        let n = 100;
        let mut values = Vec::new();
        for t in 0..n {
            let wave = (t as f32 * 0.3).sin();
            values.push(if t == 90 { 1000.0 } else { wave });
            values.push(t as f32);
        }
        let observed = vec![true; 2 * n];
        let delta = bins_since_observed(&observed, 2);
        GridSeries { signals: vec!["s".into(), "ramp".into()], start: 0, bin_seconds: 60, values, observed, delta }
    }

    #[test]
    fn values_far_outside_the_training_spread_become_missing_with_their_delta() {
        let kept = PreparedSeries::from_entities(vec![("e".into(), grid_with_spike())], SplitFractions::default());
        let kept = kept.unwrap();
        assert_eq!(kept.screened, [0, 0]);
        assert!(kept.grid.observed[90 * 2]);

        let screened = PreparedSeries::from_entities_screened(
            vec![("e".into(), grid_with_spike())],
            SplitFractions::default(),
            10.0,
        )
        .unwrap();
        assert_eq!(screened.screened, [1, 0], "the spike only; the ramp stays whole");
        assert!(!screened.grid.observed[90 * 2] && screened.grid.values[90 * 2] == 0.0);
        assert_eq!(screened.grid.delta[90 * 2], 1.0);
        assert_eq!(screened.grid.delta[91 * 2], 0.0);
        assert_eq!(screened.scaler, kept.scaler, "fitted on the training part, where there was nothing to screen");

        let err = PreparedSeries::from_entities_screened(
            vec![("e".into(), grid_with_spike())],
            SplitFractions::default(),
            -1.0,
        );
        assert!(err.unwrap_err().to_string().contains("outlier_mads"));
    }

    #[test]
    fn robust_spread_is_sigma_for_normal_data_and_ignores_a_wild_minority() {
        let mut rng = crate::Rng::new(3);
        let mut sample: Vec<f64> = (0..20_000).map(|_| 5.0 + 2.0 * rng.normal()).collect();
        let (median, spread) = robust_spread(&mut sample.clone()).unwrap();
        assert!((median - 5.0).abs() < 0.05 && (spread - 2.0).abs() < 0.05, "{median} {spread}");
        sample.extend(std::iter::repeat_n(1e6, 200));
        let (median, spread) = robust_spread(&mut sample).unwrap();
        assert!((median - 5.0).abs() < 0.1 && (spread - 2.0).abs() < 0.1, "1 % wild values: {median} {spread}");
    }
}
