//! The flatline rule, for sensors that freeze: the run of equal readings a value ends
//! ([`equal_run_quantiles`]), scored against the training part's ([`FlatlineRule`]).

use std::ops::Range;

use crate::data::PreparedSeries;

/// The run of equal readings of one signal that each observed value ends: 1, or one more
/// than the last value's where it equals it and was seen at most `reach` steps before.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RunOfEqual {
    last: Option<(f32, usize)>,
    run: usize,
}

impl RunOfEqual {
    pub(super) fn see(&mut self, x: f32, k: usize, reach: usize) -> usize {
        self.run = match self.last {
            Some((v, n)) if v == x && k - n <= reach => self.run + 1,
            _ => 1,
        };
        self.last = Some((x, k));
        self.run
    }
}

/// Each of `index`'s signals' 95 % quantile of the runs of equal readings (original
/// units; a gap of at most `reach` steps not breaking a run) its observed values end over
/// `part` (at least 1): the flatline rule's unit.
pub fn equal_run_quantiles(series: &PreparedSeries, part: &[Range<usize>], index: &[usize], reach: usize) -> Vec<f32> {
    let c = series.grid.channels();
    index
        .iter()
        .map(|&j| {
            let mut runs: Vec<usize> = Vec::new();
            for r in part {
                let mut run = RunOfEqual::default();
                for k in r.clone().filter(|&k| series.grid.observed[k * c + j]) {
                    runs.push(run.see(series.original[k * c + j], k, reach));
                }
            }
            if runs.is_empty() {
                return 1.0;
            }
            let at = ((0.95 * runs.len() as f64) as usize).min(runs.len() - 1);
            (*runs.select_nth_unstable(at).1).max(1) as f32
        })
        .collect()
}

/// The flatline rule of the module over a stream of steps: per target, 2 × the run of
/// equal readings its value ends / the target's quantile ([`equal_run_quantiles`]), times
/// its alarm scale. What [`PredictionTask::surprises`] scores, and `recur stream --flag`
/// live.
///
/// [`PredictionTask::surprises`]: crate::tasks::PredictionTask::surprises
#[derive(Clone, Debug)]
pub struct FlatlineRule {
    quantiles: Vec<f32>,
    /// Each target's alarm scale (empty: 1).
    scale: Vec<f32>,
    reach: usize,
    runs: Vec<RunOfEqual>,
}

impl FlatlineRule {
    /// For targets of those run-length `quantiles`, a gap of at most `reach` steps not
    /// breaking a run; scores times `scale` per target (empty: 1).
    pub fn new(quantiles: Vec<f32>, scale: Vec<f32>, reach: usize) -> Self {
        let runs = vec![RunOfEqual::default(); quantiles.len()];
        FlatlineRule { quantiles, scale, reach, runs }
    }

    /// Per target, the last reading with its step, and the run of equal readings it ended.
    pub(super) fn runs(&self) -> Vec<(Option<(f32, usize)>, usize)> {
        self.runs.iter().map(|r| (r.last, r.run)).collect()
    }

    /// Goes on from `runs` ([`FlatlineRule::runs`]) after `steps` steps: whether they fit
    /// (one per target, finite readings at steps fed); if not, nothing changes.
    pub(super) fn restore_runs(&mut self, runs: &[(Option<(f32, usize)>, usize)], steps: usize) -> bool {
        let fits = |&(last, _): &(Option<(f32, usize)>, usize)| last.is_none_or(|(x, k)| x.is_finite() && k < steps);
        if runs.len() != self.runs.len() || !runs.iter().all(fits) {
            return false;
        }
        self.runs = runs.iter().map(|&(last, run)| RunOfEqual { last, run }).collect();
        true
    }

    /// The score of target `t`'s value `x` (original units) observed at step `k` (steps
    /// counted as the stream counts them, increasing).
    pub fn score(&mut self, t: usize, x: f32, k: usize) -> f32 {
        let run = self.runs[t].see(x, k, self.reach);
        2.0 * run as f32 / self.quantiles[t] * self.scale.get(t).copied().unwrap_or(1.0)
    }
}
