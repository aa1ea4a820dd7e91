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
    let mut values = Vec::with_capacity(n * c);
    let mut observed = Vec::with_capacity(n * c);
    let mut keep = |_: i64, step: &[Option<f32>]| {
        values.extend(step.iter().map(|v| v.unwrap_or(0.0)));
        observed.extend(step.iter().map(Option::is_some));
    };
    let mut grid = LiveGrid::new(c, bin_seconds, aggregation)?;
    let mut row = vec![None; c];
    for (n, &time) in series.timestamps.iter().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = series.observed[n * c + j].then(|| series.values[n * c + j]);
        }
        grid.push(time, &row, &mut keep)?;
    }
    grid.finish(&mut keep);
    let delta = bins_since_observed(&observed, c);
    Ok(GridSeries { signals: series.signals.clone(), start, clock: series.clock, bin_seconds, values, observed, delta })
}

/// What a [`LiveGrid`] carries between rows: the open bin's start and, per signal, the sum
/// (or, aggregating by the last, the value) and count of its observations in it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LiveGridState {
    pub open: Option<i64>,
    pub sums: Vec<f64>,
    pub counts: Vec<u32>,
}

/// [`align_to_grid`] for rows that arrive one at a time, in time order (a live feed, or a
/// series read whole): the grid starts at the first row's time, bin `n` covering
/// `[start + n·bin, start + (n+1)·bin)`; a bin is complete once a row at or past its end
/// arrives (or the feed ends), and then each complete bin — and every empty one up to the
/// new row's — is handed on, oldest first, as each signal's aggregate (`None`: no value).
pub struct LiveGrid {
    bin_seconds: i64,
    aggregation: Aggregation,
    /// The open bin's start; `None` before the first row.
    open: Option<i64>,
    sums: Vec<f64>,
    counts: Vec<u32>,
    step: Vec<Option<f32>>,
}

impl LiveGrid {
    /// An empty grid of `channels` signals.
    ///
    /// # Errors
    /// A non-positive bin width.
    pub fn new(channels: usize, bin_seconds: i64, aggregation: Aggregation) -> Result<Self> {
        if bin_seconds <= 0 {
            return Err(Error::invalid("bin width", format!("{bin_seconds} s; it must be positive")));
        }
        Ok(LiveGrid {
            bin_seconds,
            aggregation,
            open: None,
            sums: vec![0.0; channels],
            counts: vec![0; channels],
            step: vec![None; channels],
        })
    }

    /// The signals it aggregates.
    pub fn channels(&self) -> usize {
        self.sums.len()
    }

    /// The open bin's start (`None` before the first row).
    pub fn open_bin(&self) -> Option<i64> {
        self.open
    }

    /// The open bin and what it has gathered, to go on from later ([`LiveGrid::restore`]).
    pub fn state(&self) -> LiveGridState {
        LiveGridState { open: self.open, sums: self.sums.clone(), counts: self.counts.clone() }
    }

    /// Goes on from `state` ([`LiveGrid::state`] of a grid of as many signals).
    ///
    /// # Errors
    /// Another number of signals, or a sum that is not finite. The grid is then as it was.
    pub fn restore(&mut self, state: &LiveGridState) -> Result<()> {
        let c = self.channels();
        for (what, len) in [("sums", state.sums.len()), ("counts", state.counts.len())] {
            if len != c {
                return Err(Error::Shape { tensor: format!("grid state's {what}"), expected: vec![c], got: vec![len] });
            }
        }
        if state.sums.iter().any(|s| !s.is_finite()) {
            return Err(Error::invalid("grid state", "a sum that is not finite"));
        }
        self.open = state.open;
        self.sums.clone_from(&state.sums);
        self.counts.clone_from(&state.counts);
        Ok(())
    }

    /// Adds one row's observations at `time` (`None` where a signal has none), first
    /// handing `complete` (bin start, values) every bin that `time` completes.
    ///
    /// # Errors
    /// A row before the open bin (rows out of time order).
    pub fn push(
        &mut self,
        time: i64,
        row: &[Option<f32>],
        mut complete: impl FnMut(i64, &[Option<f32>]),
    ) -> Result<()> {
        let mut start = *self.open.get_or_insert(time);
        if time < start {
            return Err(Error::invalid(
                "time",
                format!("{time} s is before the grid step that began at {start} s: rows must come in time order"),
            ));
        }
        while time >= start + self.bin_seconds {
            self.complete(start, &mut complete);
            start += self.bin_seconds;
        }
        self.open = Some(start);
        for (j, value) in row.iter().enumerate() {
            if let Some(v) = *value {
                match self.aggregation {
                    Aggregation::Mean => self.sums[j] += f64::from(v),
                    Aggregation::Last => self.sums[j] = f64::from(v),
                }
                self.counts[j] += 1;
            }
        }
        Ok(())
    }

    /// Ends the feed: hands `complete` the open bin, if a row opened one.
    pub fn finish(&mut self, mut complete: impl FnMut(i64, &[Option<f32>])) {
        if let Some(start) = self.open.take() {
            self.complete(start, &mut complete);
        }
    }

    /// Hands on the bin starting at `start` and empties it.
    fn complete(&mut self, start: i64, complete: &mut impl FnMut(i64, &[Option<f32>])) {
        for ((cell, sum), count) in self.step.iter_mut().zip(&mut self.sums).zip(&mut self.counts) {
            *cell = match (*count, self.aggregation) {
                (0, _) => None,
                (k, Aggregation::Mean) => Some((*sum / f64::from(k)) as f32),
                (_, Aggregation::Last) => Some(*sum as f32),
            };
            (*sum, *count) = (0.0, 0);
        }
        complete(start, &self.step);
    }
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

    #[test]
    fn a_live_grid_hands_on_each_bin_once_the_next_row_passes_its_end() {
        // Synthetic: two signals on 60 s bins; a row at 200 s completes bins 0 (0-60 s), 1
        // (empty) and 2 (120-180 s) at once
        let mut grid = LiveGrid::new(2, 60, Aggregation::Mean).unwrap();
        let mut out: Vec<(i64, Vec<Option<f32>>)> = Vec::new();
        let mut keep = |start: i64, step: &[Option<f32>]| out.push((start, step.to_vec()));
        grid.push(0, &[Some(1.0), None], &mut keep).unwrap();
        grid.push(30, &[Some(3.0), Some(5.0)], &mut keep).unwrap();
        grid.push(150, &[None, Some(7.0)], &mut keep).unwrap();
        assert_eq!(grid.open_bin(), Some(120));
        grid.push(200, &[Some(9.0), None], &mut keep).unwrap();
        let err = grid.push(170, &[Some(1.0), None], &mut keep).unwrap_err().to_string();
        assert!(err.contains("before the grid step that began at 180 s"), "{err}");
        grid.finish(&mut keep);
        assert_eq!(
            out,
            [
                (0, vec![Some(2.0), Some(5.0)]),
                (60, vec![None, None]),
                (120, vec![None, Some(7.0)]),
                (180, vec![Some(9.0), None])
            ]
        );
        assert!(LiveGrid::new(1, 0, Aggregation::Mean).is_err());
    }

    #[test]
    fn aligned_series_match_binning_each_observation_by_its_index() {
        // Synthetic: random irregular times and gaps, against the definition (bin n holds
        // the times in [start + n·bin, start + (n+1)·bin); mean or last of each signal)
        let mut rng = crate::Rng::new(7);
        for case in 0..50 {
            let (c, bin) = (1 + rng.below(3), 1 + rng.below(120) as i64);
            let mut t = rng.below(1000) as i64;
            let mut s = TimeSeries {
                signals: (0..c).map(|j| format!("s{j}")).collect(),
                timestamps: Vec::new(),
                values: Vec::new(),
                observed: Vec::new(),
                marked: vec![0; c],
                clock: Clock::Calendar,
            };
            for _ in 0..1 + rng.below(200) {
                s.timestamps.push(t);
                for _ in 0..c {
                    s.observed.push(rng.uniform() < 0.7);
                    s.values.push(rng.normal() as f32);
                }
                let longest = if rng.uniform() < 0.1 { 1000 } else { 60 };
                t += 1 + rng.below(longest) as i64;
            }
            for aggregation in [Aggregation::Mean, Aggregation::Last] {
                let g = align_to_grid(&s, bin, aggregation).unwrap();
                let start = s.timestamps[0];
                let n = ((s.timestamps[s.len() - 1] - start) / bin + 1) as usize;
                assert_eq!(g.len(), n, "case {case}");
                for k in 0..n {
                    for j in 0..c {
                        let inside: Vec<f32> = (0..s.len())
                            .filter(|&r| (s.timestamps[r] - start) / bin == k as i64 && s.observed[r * c + j])
                            .map(|r| s.values[r * c + j])
                            .collect();
                        let expected = match aggregation {
                            Aggregation::Mean => (!inside.is_empty()).then(|| {
                                (inside.iter().map(|&v| f64::from(v)).sum::<f64>() / inside.len() as f64) as f32
                            }),
                            Aggregation::Last => inside.last().copied(),
                        };
                        let got = g.observed[k * c + j].then_some(g.values[k * c + j]);
                        assert_eq!(got, expected, "case {case}, bin {k}, signal {j}");
                    }
                }
            }
        }
    }
}
