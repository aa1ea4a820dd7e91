//! From grids to model-ready windows: one or several entities (stations, ICU records…)
//! stacked in time, a split into training, validation and test parts — chronological
//! within each entity, or by whole entities — per-signal standardisation fitted on the
//! training part only, and sliding windows that never cross an entity or a split.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::grid::GridSeries;
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
        let scaler = Standardizer::fit(&grid, &train)?;
        let c = grid.channels();
        for (k, v) in grid.values.iter_mut().enumerate() {
            *v = if grid.observed[k] { scaler.apply(k % c, *v) } else { 0.0 };
        }
        Ok(PreparedSeries { grid, scaler, entities: spans, train, validation, test })
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
