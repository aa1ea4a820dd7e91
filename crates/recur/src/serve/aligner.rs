//! One entity's rows, at their own times, onto the run's grid as training aligned them.

use serde::{Deserialize, Serialize};

use crate::data::{Aggregation, Clock, LiveGrid, LiveGridState};
use crate::error::Result;

/// A complete grid step: its bin's start (seconds since the Unix epoch, or since the
/// entity's start) and each signal's value (`None`: none in the bin).
pub type GridStep = (i64, Vec<Option<f32>>);

/// Rows at their own times onto a grid of `bin` seconds, as training read and aligned them:
/// one clock; a wide feed's times increasing, a long feed's values of one signal at one
/// time averaged first (the long reader's rule); each complete bin handed on.
pub struct FeedAligner {
    grid: LiveGrid,
    clock: Option<Clock>,
    /// The rows of the latest time, gathered before they go onto the grid.
    pending: Option<SameTime>,
}

/// What a [`FeedAligner`] holds between rows ([`FeedAligner::state`]): the open bin, the
/// clock, the rows of the latest time.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AlignerState {
    grid: LiveGridState,
    clock: Option<Clock>,
    pending: Option<SameTime>,
}

impl FeedAligner {
    /// An aligner of `signals` signals onto bins of `bin_seconds`, aggregated as `aggregation`.
    ///
    /// # Errors
    /// A non-positive bin width.
    pub fn new(signals: usize, bin_seconds: i64, aggregation: Aggregation) -> Result<Self> {
        Ok(FeedAligner { grid: LiveGrid::new(signals, bin_seconds, aggregation)?, clock: None, pending: None })
    }

    /// Adds a row at `at` on `clock` with each signal's `values` (`None`: none in the row);
    /// rows of one time are averaged where `same_time_averaged` (a long feed), refused
    /// otherwise. The bins its time completes, oldest first; otherwise why not.
    pub fn add(
        &mut self,
        (at, clock): (i64, Clock),
        values: &[Option<f64>],
        same_time_averaged: bool,
    ) -> Result<Vec<GridStep>, String> {
        if *self.clock.get_or_insert(clock) != clock {
            let first = self.clock.map_or("", Clock::description);
            return Err(format!("{}, but the rows before hold {first}", clock.description()));
        }
        let mut completed = Vec::new();
        match &mut self.pending {
            Some(p) if at == p.time && same_time_averaged => p.add(values),
            Some(p) if at <= p.time => {
                let what = if at == p.time { "duplicate" } else { "decreasing" };
                return Err(format!("{what} time (rows must come in time order)"));
            }
            _ => {
                if let Some(p) = self.pending.take() {
                    self.push(p.time, &p.values(), &mut completed)?;
                }
                // the new time completes the bins before its own
                self.push(at, &vec![None; values.len()], &mut completed)?;
                self.pending = Some(SameTime::new(at, values));
            }
        }
        Ok(completed)
    }

    /// What its rows' times count from (calendar time before the first row).
    pub fn clock(&self) -> Clock {
        self.clock.unwrap_or_default()
    }

    /// The latest row's time, if a row came.
    pub fn latest(&self) -> Option<i64> {
        self.pending.as_ref().map(|p| p.time)
    }

    /// What it holds between rows, to go on from later ([`FeedAligner::restore`]).
    pub fn state(&self) -> AlignerState {
        AlignerState { grid: self.grid.state(), clock: self.clock, pending: self.pending.clone() }
    }

    /// Goes on from `state`; otherwise why not, the aligner as it was.
    pub fn restore(&mut self, state: AlignerState) -> Result<(), String> {
        let signals = self.grid.channels();
        if let Some(p) = state.pending.as_ref().filter(|p| p.sums.len() != signals) {
            return Err(format!("rows of {} signals pending; the run reads {signals}", p.sums.len()));
        }
        self.grid.restore(&state.grid).map_err(|e| e.to_string())?;
        (self.clock, self.pending) = (state.clock, state.pending);
        Ok(())
    }

    /// Ends the feed: the bins left, its last among them.
    pub fn finish(&mut self) -> Vec<GridStep> {
        let mut completed = Vec::new();
        if let Some(p) = self.pending.take() {
            // after every earlier time: the grid takes it
            let _ = self.push(p.time, &p.values(), &mut completed);
        }
        self.grid.finish(|start, step| completed.push((start, step.to_vec())));
        completed
    }

    fn push(&mut self, time: i64, values: &[Option<f32>], completed: &mut Vec<GridStep>) -> Result<(), String> {
        self.grid.push(time, values, |start, step| completed.push((start, step.to_vec()))).map_err(|e| e.to_string())
    }
}

/// The rows of one time before they go onto the grid: each signal's values summed, to be
/// averaged as the long reader averages several values of one signal at one time.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SameTime {
    time: i64,
    sums: Vec<(f64, u32)>,
}

impl SameTime {
    fn new(time: i64, values: &[Option<f64>]) -> Self {
        let mut row = SameTime { time, sums: vec![(0.0, 0); values.len()] };
        row.add(values);
        row
    }

    fn add(&mut self, values: &[Option<f64>]) {
        for (slot, v) in self.sums.iter_mut().zip(values) {
            if let Some(v) = v {
                *slot = (slot.0 + v, slot.1 + 1);
            }
        }
    }

    /// Each signal's mean at this time (`None`: no value).
    fn values(&self) -> Vec<Option<f32>> {
        self.sums.iter().map(|&(sum, n)| (n > 0).then(|| (sum / f64::from(n)) as f32)).collect()
    }
}
