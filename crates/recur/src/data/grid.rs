//! Alignment of irregular timestamps onto a regular grid (GRU-D style inputs): per bin
//! and signal the value x, the observation mask m and the time since the last
//! observation δ. Empty bins stay missing; nothing is filled in.

use super::series::{Clock, TimeSeries};
use crate::error::{Error, Result};

/// How several observations falling in one bin become one value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    #[default]
    Mean,
    Last,
}

/// A series on a regular grid: bin `n` covers `[start + n·bin, start + (n+1)·bin)`.
/// `values`, `observed`, `delta` are `[N, C]`; `delta` counts bins since the signal was
/// last observed (0 where observed, growing across gaps; bins before the first
/// observation count from the start).
#[derive(Clone, Debug, PartialEq)]
pub struct GridSeries {
    pub signals: Vec<String>,
    pub start: i64,
    /// What `start` counts from.
    pub clock: Clock,
    pub bin_seconds: i64,
    pub values: Vec<f32>,
    pub observed: Vec<bool>,
    pub delta: Vec<f32>,
}

impl GridSeries {
    pub fn len(&self) -> usize {
        self.observed.len() / self.signals.len().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.observed.is_empty()
    }

    pub fn channels(&self) -> usize {
        self.signals.len()
    }
}

/// Puts `series` on a grid of `bin_seconds`, starting at its first timestamp.
///
/// # Errors
/// A non-positive bin width, or a grid that would exceed 100 million cells.
pub fn align_to_grid(series: &TimeSeries, bin_seconds: i64, aggregation: Aggregation) -> Result<GridSeries> {
    if bin_seconds <= 0 {
        return Err(Error::invalid("bin width", format!("{bin_seconds} s; it must be positive")));
    }
    let c = series.channels();
    let start = series.timestamps.first().copied().unwrap_or(0);
    let end = series.timestamps.last().copied().unwrap_or(0);
    let n = ((end - start) / bin_seconds + 1) as usize;
    if n.saturating_mul(c) > 100_000_000 {
        return Err(Error::invalid(
            "bin width",
            format!("{bin_seconds} s gives {n} bins × {c} signals; choose a wider bin"),
        ));
    }
    let mut sums = vec![0.0f64; n * c];
    let mut counts = vec![0u32; n * c];
    for (row, &ts) in series.timestamps.iter().enumerate() {
        let bin = ((ts - start) / bin_seconds) as usize;
        for j in 0..c {
            if series.observed[row * c + j] {
                let v = series.values[row * c + j] as f64;
                let k = bin * c + j;
                match aggregation {
                    Aggregation::Mean => sums[k] += v,
                    Aggregation::Last => sums[k] = v,
                }
                counts[k] += 1;
            }
        }
    }
    let mut values = vec![0.0f32; n * c];
    let mut observed = vec![false; n * c];
    for k in 0..n * c {
        if counts[k] > 0 {
            values[k] = match aggregation {
                Aggregation::Mean => (sums[k] / counts[k] as f64) as f32,
                Aggregation::Last => sums[k] as f32,
            };
            observed[k] = true;
        }
    }
    let delta = bins_since_observed(&observed, c);
    Ok(GridSeries { signals: series.signals.clone(), start, clock: series.clock, bin_seconds, values, observed, delta })
}

/// δ for a mask `[N, C]`: bins since each signal was last observed (0 where it is, and
/// counting from the first bin before any observation).
pub(crate) fn bins_since_observed(observed: &[bool], channels: usize) -> Vec<f32> {
    let mut delta = vec![0.0f32; observed.len()];
    for j in 0..channels {
        let mut since = 0.0f32;
        for (b, k) in (j..observed.len()).step_by(channels.max(1)).enumerate() {
            if observed[k] {
                since = 0.0;
            } else if b > 0 {
                since += 1.0;
            }
            delta[k] = since;
        }
    }
    delta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irregular_points_fall_in_their_bins_and_gaps_stay_missing() {
        // Synthetic (unit test): one signal observed at 0 s, 10 s, 20 s and 130 s on 60 s bins.
        let s = TimeSeries {
            signals: vec!["a".into()],
            timestamps: vec![0, 10, 20, 130],
            values: vec![1.0, 2.0, 3.0, 7.0],
            observed: vec![true, true, true, true],
            marked: vec![0],
            clock: Clock::Calendar,
        };
        let g = align_to_grid(&s, 60, Aggregation::Mean).unwrap();
        assert_eq!(g.values, vec![2.0, 0.0, 7.0]);
        assert_eq!(g.observed, vec![true, false, true]);
        assert_eq!(g.delta, vec![0.0, 1.0, 0.0]);
        let g = align_to_grid(&s, 60, Aggregation::Last).unwrap();
        assert_eq!(g.values[0], 3.0);
    }
}
