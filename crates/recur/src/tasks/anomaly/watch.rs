//! The whole live watch of a causal run: each arriving value of its targets scored by the
//! model's detector ([`Sentinel`] for a prediction run, [`ReconstructionSentinel`] for a
//! reconstruction run; a value above the threshold withheld from the model) and, where the
//! run keeps its training runs of equal readings ([`KeptAlarms`]), by the flatline rule;
//! each flag of either put into its signal's episode as it happens ([`EpisodeTracker`]).
//! What `recur stream --flag` runs, and a program of its own needs (`examples/watch_run.rs`).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tasks::{LiveAnswer, LiveStream};

use super::{EpisodeTracker, FlatlineRule, KeptAlarms, ReconstructionSentinel, Sentinel, Surprise};

/// A live stream's alarms, step by step: [`Watch::screen`] a step's values before the stream
/// reads them, then [`Watch::expect`] the stream's answer to them.
#[derive(Clone, Debug)]
pub struct Watch {
    threshold: f32,
    targets: Vec<String>,
    sentinel: WatchSentinel,
    /// The flatline rule, and each target's signal.
    flatline: Option<(FlatlineRule, Vec<usize>)>,
    tracker: EpisodeTracker,
    steps: usize,
    counts: Vec<WatchCounts>,
}

/// The model's detector of either task.
#[derive(Clone, Debug)]
enum WatchSentinel {
    Forecast(Sentinel),
    Reconstruction(ReconstructionSentinel),
}

/// A step as the watch scored it, per target.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WatchStep {
    /// The model's surprise at the value (`None`: no value, or nothing to score it against
    /// yet); `withheld` where the model was fed a gap instead.
    pub surprises: Vec<Option<Surprise>>,
    /// The flatline rule's score of the value (`None`: no value kept by training's outlier
    /// screen); empty without the rule.
    pub flatline: Vec<Option<f32>>,
    /// Whether either scored the value above the threshold.
    pub flagged: Vec<bool>,
    /// The targets whose alarm episode begins at this step.
    pub new_alarms: Vec<usize>,
}

/// What a [`Watch`] carries from step to step, to go on later where it left off
/// ([`Watch::state`], [`Watch::restore`]); per target where a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WatchState {
    /// The steps screened, and what was flagged in them.
    pub steps: usize,
    pub counts: Vec<WatchCounts>,
    /// Whether the value of the last step was withheld from the model.
    pub withheld: Vec<bool>,
    /// A prediction's detector: the forecast expected of the next step and its band,
    /// standardised (none yet: `None`; empty for a reconstruction's).
    pub expected: Vec<Option<(f32, f32, f32)>>,
    /// The flatline rule: the last reading with its step, and the run of equal readings it
    /// ended (empty without the rule).
    pub runs: Vec<(Option<(f32, usize)>, usize)>,
    /// The step of the last flag.
    pub last_flags: Vec<Option<usize>>,
}

/// One target's count of what a watch has seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchCounts {
    /// Values the model scored above the threshold.
    pub flagged: usize,
    /// Of those, the values withheld from the model.
    pub withheld: usize,
    /// Values the flatline rule scored above the threshold.
    pub flatline: usize,
    /// Alarm episodes begun.
    pub episodes: usize,
}

impl Watch {
    /// For `live`'s targets: flagging a value scored above `threshold` (σ of its band, after
    /// the `kept` alarm scales where the run keeps them), the model fed a gap instead unless
    /// the signal's value the step before was withheld too; a model without a band banded by
    /// the validation RMS of its errors kept with the scales; the flatline rule where they
    /// keep the training runs, a gap of at most `reach` steps (the window's `window − 1`) not
    /// breaking a run; a target's flags at most `join` steps apart one episode.
    ///
    /// # Errors
    /// A threshold that is not positive, a `join` of 0, a prediction model without a band
    /// and no kept errors to band it by, scales kept for other targets.
    pub fn new(
        live: &LiveStream,
        threshold: f32,
        join: usize,
        kept: Option<&KeptAlarms>,
        reach: usize,
    ) -> Result<Watch> {
        if join == 0 {
            return Err(Error::invalid("join", "0 steps: flags on consecutive steps are one episode at join 1"));
        }
        let targets = live.targets().to_vec();
        if let Some(kept) = kept.filter(|k| k.signals != targets) {
            return Err(Error::invalid(
                "alarm scales",
                format!("fitted for the signals {:?}; the stream answers for {targets:?}", kept.signals),
            ));
        }
        let scale = kept.map_or(Vec::new(), |k| k.scales.of(super::Detector::Model).to_vec());
        let sentinel = match live {
            LiveStream::Prediction(s) => {
                let sigma = kept.map_or(Vec::new(), |k| k.sigma.clone());
                WatchSentinel::Forecast(Sentinel::new(s, Some(threshold), sigma)?.scaled(scale))
            }
            LiveStream::Reconstruction(s) => {
                WatchSentinel::Reconstruction(ReconstructionSentinel::new(s, Some(threshold))?.scaled(scale))
            }
        };
        let signals: Vec<usize> = targets.iter().filter_map(|t| live.signals().iter().position(|s| s == t)).collect();
        let flatline = kept.and_then(|k| k.flatline_rule(reach)).map(|rule| (rule, signals));
        let p = targets.len();
        Ok(Watch {
            threshold,
            targets,
            sentinel,
            flatline,
            tracker: EpisodeTracker::new(join),
            steps: 0,
            counts: vec![WatchCounts::default(); p],
        })
    }

    /// The targets watched, in the order of a [`WatchStep`]'s entries.
    pub fn targets(&self) -> &[String] {
        &self.targets
    }

    /// The score above which a value is flagged (and withheld from the model).
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The steps two flags of a target may lie apart and be one episode.
    pub fn join(&self) -> usize {
        self.tracker.join()
    }

    /// Whether the flatline rule watches too (the run keeps its training runs).
    pub fn has_flatline(&self) -> bool {
        self.flatline.is_some()
    }

    /// Per target, what it has flagged so far.
    pub fn counts(&self) -> &[WatchCounts] {
        &self.counts
    }

    /// What it carries from step to step, to go on from later ([`Watch::restore`]).
    pub fn state(&self) -> WatchState {
        let (withheld, expected) = match &self.sentinel {
            WatchSentinel::Forecast(s) => (s.guard.withheld.clone(), s.expected.clone()),
            WatchSentinel::Reconstruction(s) => (s.guard.withheld.clone(), Vec::new()),
        };
        WatchState {
            steps: self.steps,
            counts: self.counts.clone(),
            withheld,
            expected,
            runs: self.flatline.as_ref().map_or(Vec::new(), |(rule, _)| rule.runs()),
            last_flags: self.tracker.last_flags().to_vec(),
        }
    }

    /// Goes on from `state`: what [`Watch::state`] gave, of a watch of the same targets, task
    /// and flatline rule (its threshold and join may differ: they are settings, not state).
    ///
    /// # Errors
    /// A state that does not fit the watch (named: its lists' lengths, a flatline rule's
    /// runs without one or the other way round, a non-finite value, steps not yet
    /// screened). The watch is then as it was.
    pub fn restore(&mut self, state: &WatchState) -> Result<()> {
        let p = self.targets.len();
        let unfit =
            |what: &str| Error::invalid("watch state", format!("{what} does not fit this watch of {p} targets"));
        let forecast = matches!(self.sentinel, WatchSentinel::Forecast(_));
        let expected_fits = match forecast {
            true => {
                state.expected.len() == p
                    && state.expected.iter().flatten().all(|&(x, l, h)| [x, l, h].iter().all(|v| v.is_finite()))
            }
            false => state.expected.is_empty(),
        };
        if state.counts.len() != p || state.withheld.len() != p || !expected_fits || state.last_flags.len() > p {
            return Err(unfit("its counts, withheld values, forecasts or flags"));
        }
        let mut watch = self.clone();
        let runs_fit = match watch.flatline.as_mut() {
            Some((rule, _)) => rule.restore_runs(&state.runs, state.steps),
            None => state.runs.is_empty(),
        };
        if !runs_fit {
            return Err(unfit("the flatline rule's runs"));
        }
        if !watch.tracker.restore_last_flags(&state.last_flags, state.steps) {
            return Err(unfit("a flag at a step not yet screened"));
        }
        match &mut watch.sentinel {
            WatchSentinel::Forecast(s) => {
                s.guard.withheld.clone_from(&state.withheld);
                s.expected.clone_from(&state.expected);
            }
            WatchSentinel::Reconstruction(s) => s.guard.withheld.clone_from(&state.withheld),
        }
        (watch.steps, watch.counts) = (state.steps, state.counts.clone());
        *self = watch;
        Ok(())
    }

    /// Scores the next step's `values` (every signal of `live`, original units, `None` where
    /// missing) before `live` reads them, and sets to `None` those withheld from the model:
    /// feed `live` the values as left, then give its answer to [`Watch::expect`]. The flatline
    /// rule reads the values training's outlier screen keeps.
    ///
    /// # Errors
    /// A step `live` would refuse (the wrong number of signals, a value it cannot read:
    /// named); a prediction's watch on a reconstruction stream or the other way round; a
    /// reconstruction's step that fails. The watch is then as it was.
    pub fn screen(&mut self, live: &LiveStream, values: &mut [Option<f32>]) -> Result<WatchStep> {
        let scaler = live.scaler();
        crate::tasks::check_step(values, live.signals(), scaler)?;
        // the flatline rule reads the values as they arrived, the model's detector first
        // (it alone may fail, and nothing has moved then)
        let arrived = values.to_vec();
        let surprises = match (&mut self.sentinel, live) {
            (WatchSentinel::Forecast(sentinel), LiveStream::Prediction(_)) => sentinel.screen(values),
            (WatchSentinel::Reconstruction(sentinel), LiveStream::Reconstruction(s)) => sentinel.screen(s, values)?,
            _ => return Err(Error::invalid("watch", "opened on a stream of the other task")),
        };
        let step = self.steps;
        let flatline: Vec<Option<f32>> = match self.flatline.as_mut() {
            Some((rule, signals)) => signals
                .iter()
                .enumerate()
                .map(|(t, &j)| arrived[j].filter(|&x| !scaler.screens_out(j, x)).map(|x| rule.score(t, x, step)))
                .collect(),
            None => Vec::new(),
        };
        self.steps += 1;
        let mut out = WatchStep { flagged: vec![false; self.targets.len()], ..WatchStep::default() };
        for (t, s) in surprises.iter().enumerate() {
            let by_model = s.is_some_and(|s| s.surprise > self.threshold);
            let by_flatline = flatline.get(t).copied().flatten().is_some_and(|f| f > self.threshold);
            let count = &mut self.counts[t];
            count.flagged += usize::from(by_model);
            count.withheld += usize::from(s.is_some_and(|s| s.withheld));
            count.flatline += usize::from(by_flatline);
            out.flagged[t] = by_model || by_flatline;
            if out.flagged[t] && self.tracker.begins(t, step) {
                count.episodes += 1;
                out.new_alarms.push(t);
            }
        }
        out.surprises = surprises;
        out.flatline = flatline;
        Ok(out)
    }

    /// The stream's `answer` to the step just screened: a forecast is what the next step's
    /// values are scored against (a reconstruction's detector needs none).
    pub fn expect(&mut self, answer: &LiveAnswer) {
        if let (WatchSentinel::Forecast(sentinel), LiveAnswer::Forecast(f)) = (&mut self.sentinel, answer) {
            sentinel.expect(f);
        }
    }
}
