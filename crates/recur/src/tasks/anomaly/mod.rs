//! Anomalies: how surprising each observed value is to a causal model — its forecast made
//! before the value was seen, or its reconstruction with the value hidden — and how well
//! that finds faults injected on purpose into real data.
//!
//! A target's value x observed at step k is scored against the model's streamed forecast
//! x̂ of step k, made at step k − 1, and its band [l, u] (calibrated where the run has a
//! calibration), all standardised:
//!
//!   s = 2 (x − x̂) / (u − x̂)  where x ≥ x̂,   s = 2 (x̂ − x) / (x̂ − l)  otherwise
//!
//! (2 × [`band_score`]): a value on an edge of the band scores 2, and under a Gaussian
//! band (u − x̂ = 2σ) s = |x − x̂| / σ, the value's distance from its forecast in σ. A model
//! without a band is given ±2 × the RMS of its own one-step errors on the validation part,
//! per signal. Two detectors without a model score the same values in the same units:
//! persistence, |x_k − x_last| / √(persistence's mean squared error on the training part;
//! on data the run has not seen, on the part scored), and the level, |z(x)| under the
//! training part's standardisation (the 3σ rule). A third, for sensors that freeze: the
//! flatline rule, the run of equal readings a value ends (a gap of at most the model's
//! reach not breaking it) over half the training part's 95 % quantile of such runs — 2 at
//! that quantile, as on a band's edge ([`FlatlineRule`]).
//!
//! A causal reconstruction scores x against its reconstruction x̂ of step k with x alone
//! hidden — the other signals of step k read — and the band of its λ̂, by the same s
//! ([`ReconstructionSentinel`]): a value wrong given the others at the same time.
//!
//! A detector deployed reads what it scores: a fault read as the truth makes the next
//! value look wrong too. With a guard G, a value scored above G is withheld from what the
//! detector reads next — the model is fed a gap there, persistence keeps the value before —
//! unless its signal's value the step before was withheld as well, so that a change that
//! lasts is taken rather than flagged for ever ([`Sentinel`], live in `recur stream
//! --flag`). On Beijing the guard lifts the model's average precision on injected spikes
//! from 0.48 to 0.87 (`tests/beijing_anomalies.rs`).
//!
//! Bands differ in their tails from signal to signal, so a pooled ranking mixes scales;
//! [`AlarmScales`] put every detector and signal on one: the fraction of the validation
//! part's values above the threshold ([`Screening`]).
//!
//! Flags close together are one event to whoever answers them: [`episodes`] joins a
//! signal's flags at most a given number of steps apart into one [`Episode`]; live, a
//! [`Watch`] runs the model's detector and the flatline rule over a stream and says, step by
//! step, which signals' episodes begin.
//!
//! [`inject_faults`] puts faults of a given size, in training standard deviations, into a
//! seeded fraction of the observed values: spikes, stuck sensors, drifts ([`FaultKind`]);
//! [`Detection`] then scores a detector by the ranks it gives the values changed against
//! those left alone (ROC AUC, average precision) and by what a threshold flags, and
//! [`EventDetection`] by how many faults it finds and how many steps after each began, and
//! [`AlarmCount`] by how many of its alarms (its flags as episodes) lead to a fault.

mod alarms;
mod episodes;
mod faults;
mod flatline;
mod watch;

pub use alarms::{AlarmScales, KeptAlarms, Screening, ALARMS_FILE};
pub use episodes::{episodes, Episode, EpisodeTracker, JOIN};
pub use faults::{inject_faults, AlarmCount, Detection, Detections, EventDetection, FaultEvent, FaultKind, Faults};
pub use flatline::{equal_run_quantiles, FlatlineRule};
pub use watch::{Watch, WatchCounts, WatchState, WatchStep};

use faults::detect_faults;

use std::ops::Range;

use super::calibration::band_score;
use super::prediction::{persistence_mse, Forecast, LastObserved, PredictionStream, PredictionTask};
use super::reconstruction::{ReconstructionStream, ReconstructionTask};
use crate::data::{PreparedSeries, Standardizer};
use crate::error::{Error, Result};
use crate::model::SequenceModel;

/// One observed value of a target, scored by the four detectors (see the module).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoredValue {
    /// Its grid step.
    pub step: usize,
    /// Its target (an index into [`PredictionTask::targets`]).
    pub target: usize,
    /// The value, the value expected (the forecast made the step before, or the
    /// reconstruction with the value hidden) and its band, in original units.
    pub value: f32,
    pub expected: f32,
    pub low: f32,
    pub high: f32,
    /// The model's surprise s, in σ.
    pub surprise: f32,
    /// Persistence's, in σ of its training errors.
    pub persistence: f32,
    /// The level's, |z(x)|.
    pub level: f32,
    /// The flatline rule's: the run of equal readings the value ends, 2 at the training
    /// part's 95 % quantile of such runs.
    pub flatline: f32,
}

impl ScoredValue {
    /// Whether it is an alarm: the model's surprise or the flatline rule's above
    /// `threshold` (persistence and the level are baselines to compare with, not alarms).
    pub fn is_flagged(&self, threshold: f32) -> bool {
        self.surprise > threshold || self.flatline > threshold
    }
}

/// The detectors [`ScoredValue`] holds, in the order tables show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detector {
    Model,
    Persistence,
    Level,
    Flatline,
}

impl Detector {
    pub const ALL: [Detector; 4] = [Detector::Model, Detector::Persistence, Detector::Level, Detector::Flatline];

    pub fn name(self) -> &'static str {
        match self {
            Detector::Model => "model (its band)",
            Detector::Persistence => "persistence (x against the last value, in its training RMS)",
            Detector::Level => "level (z, the 3-sigma rule)",
            Detector::Flatline => "flatline (a run of equal readings, 2 at its training 95 % quantile)",
        }
    }

    /// Its name in a table's column.
    pub fn short_name(self) -> &'static str {
        match self {
            Detector::Model => "model",
            Detector::Persistence => "persistence",
            Detector::Level => "level",
            Detector::Flatline => "flatline",
        }
    }

    /// The score this detector gave `v`.
    pub fn of(self, v: &ScoredValue) -> f32 {
        match self {
            Detector::Model => v.surprise,
            Detector::Persistence => v.persistence,
            Detector::Level => v.level,
            Detector::Flatline => v.flatline,
        }
    }
}

/// A value's surprise and what it was scored against, in original units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Surprise {
    /// s, in σ of the band (2 on its edge).
    pub surprise: f32,
    /// The value expected (a forecast, or a reconstruction) and its band.
    pub expected: f32,
    pub low: f32,
    pub high: f32,
    /// Whether the guard withheld the value from the stream.
    pub withheld: bool,
}

impl Surprise {
    /// Of value `x` against `expected` (value, low, high), all in original units, scored
    /// in the standardised units `z` maps them to (not yet withheld).
    fn of(x: f32, (value, low, high): (f32, f32, f32), z: impl Fn(f32) -> f32) -> Surprise {
        let surprise = 2.0 * band_score(z(value), z(low), z(high), z(x));
        Surprise { surprise, expected: value, low, high, withheld: false }
    }
}

/// The model's detector, live: each arriving value of the targets scored against the
/// stream's forecast of its step made the step before ([`Sentinel::expect`]), and with a
/// guard G, a value scored above G withheld — fed to the stream as missing — unless the
/// same signal's value was withheld the step before (a change that lasts is taken). What
/// `recur stream --flag G` runs, and [`PredictionTask::surprises`] over a part.
#[derive(Clone, Debug)]
pub struct Sentinel {
    /// Each target's signal, and the targets' standardisation.
    index: Vec<usize>,
    scaler: Standardizer,
    guard: Guard,
    /// A model without a band: each target's constant half-band over 2 (standardised).
    sigma: Vec<f32>,
    /// The forecast of the next step and its band, standardised, per target.
    expected: Vec<Option<(f32, f32, f32)>>,
}

/// The guard of the module, and a detector's alarm scale: which targets' values the
/// detector withheld at its last step.
#[derive(Clone, Debug)]
struct Guard {
    threshold: Option<f32>,
    /// Each target's factor on the detector's scores ([`AlarmScales`]; empty: 1).
    scale: Vec<f32>,
    withheld: Vec<bool>,
}

impl Guard {
    /// For `targets` targets, withholding above `threshold` (none: never).
    ///
    /// # Errors
    /// A threshold that is not positive.
    fn new(threshold: Option<f32>, targets: usize) -> Result<Guard> {
        if let Some(g) = threshold.filter(|g| g.is_nan() || *g <= 0.0) {
            return Err(Error::invalid("guard", format!("{g}: a positive surprise, in σ")));
        }
        Ok(Guard { threshold, scale: Vec::new(), withheld: vec![false; targets] })
    }

    /// Target `t`'s value of this step, scored `score` (`None`: no value, or none scored):
    /// its score times the target's scale, and whether it is withheld — that score above the
    /// threshold, its value the step before not withheld.
    fn judge(&mut self, t: usize, score: Option<f32>) -> (Option<f32>, bool) {
        let score = score.map(|s| s * self.scale.get(t).copied().unwrap_or(1.0));
        let withhold = match (score, self.threshold) {
            (Some(s), Some(g)) => s > g && !self.withheld[t],
            _ => false,
        };
        self.withheld[t] = withhold;
        (score, withhold)
    }

    /// A surprise judged ([`Guard::judge`]): scaled, and marked withheld where it is.
    fn judge_surprise(&mut self, t: usize, scored: Option<Surprise>) -> Option<Surprise> {
        let (surprise, withheld) = self.judge(t, scored.map(|s| s.surprise));
        scored.zip(surprise).map(|(s, surprise)| Surprise { surprise, withheld, ..s })
    }
}

impl Sentinel {
    /// For `stream`'s targets; `sigma`: a model without a band is given ±2·sigma per target
    /// (standardised; empty for a model with one).
    ///
    /// # Errors
    /// A model without a band and no sigma for each target; a guard that is not positive.
    pub fn new(stream: &PredictionStream, guard: Option<f32>, sigma: Vec<f32>) -> Result<Sentinel> {
        let targets = stream.target_set();
        let p = targets.len();
        if !stream.has_band() && sigma.len() != p {
            return Err(Error::invalid(
                "anomaly scores",
                "the model has no band (task.uncertainty) to score values against",
            ));
        }
        Ok(Sentinel {
            index: targets.indices().to_vec(),
            scaler: targets.scaler().clone(),
            guard: Guard::new(guard, p)?,
            sigma: if stream.has_band() { Vec::new() } else { sigma },
            expected: vec![None; p],
        })
    }

    /// Its surprises multiplied by `scale` per target ([`AlarmScales`]), before the guard
    /// judges them.
    pub fn scaled(mut self, scale: Vec<f32>) -> Self {
        self.guard.scale = scale;
        self
    }

    /// Scores a step's `values` (every signal, original units, `None` where missing)
    /// against the forecast expected for it, per target (`None`: no value, or nothing
    /// expected yet), and sets to `None` in `values` those the guard withholds.
    pub fn screen(&mut self, values: &mut [Option<f32>]) -> Vec<Option<Surprise>> {
        let mut out = vec![None; self.index.len()];
        for (t, &j) in self.index.iter().enumerate() {
            let scored = values[j].zip(self.expected[t]).map(|(x, (x_hat, low, high))| {
                let original = |v: f32| self.scaler.invert(t, v);
                let (forecast, low, high) = (original(x_hat), original(low), original(high));
                Surprise::of(x, (forecast, low, high), |v| self.scaler.apply(t, v))
            });
            out[t] = self.guard.judge_surprise(t, scored);
            if out[t].is_some_and(|s| s.withheld) {
                values[j] = None;
            }
        }
        out
    }

    /// The stream's `forecast` (its first step) as what the next step's values are scored
    /// against.
    pub fn expect(&mut self, forecast: &Forecast) {
        for (t, slot) in self.expected.iter_mut().enumerate() {
            let x_hat = self.scaler.apply(t, forecast.values[t]);
            let (low, high) = match self.sigma.get(t) {
                Some(&s) => (x_hat - 2.0 * s, x_hat + 2.0 * s),
                None => (self.scaler.apply(t, forecast.low[t]), self.scaler.apply(t, forecast.high[t])),
            };
            *slot = Some((x_hat, low, high));
        }
    }
}

impl PredictionTask<'_> {
    /// Every observed value of the targets at the steps of `part` that
    /// [`PredictionTask::evaluate_streamed`] scores, in step order, scored by the four
    /// detectors of the module against a causal `model` run as deployed (its band
    /// calibrated by the task's calibration, if any). With `guard` G, a value a detector
    /// scores above G is withheld from what it reads next, once ([`Sentinel`]; the model's
    /// from its entity's first step, as `recur stream --flag G` runs), so that a fault is
    /// not read as the truth the step after it.
    ///
    /// # Errors
    /// A model that cannot stream; a model without a band on data without a validation
    /// part (unseen data: nothing to size its errors on); as
    /// [`PredictionTask::evaluate_streamed`].
    pub fn surprises(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        screening: &Screening,
    ) -> Result<Vec<ScoredValue>> {
        let sigma = match (model.config().head.has_positive_branch(), screening.sigma.is_empty()) {
            (true, _) => Vec::new(),
            (false, true) => self.validation_rms(model)?,
            (false, false) => screening.sigma.clone(),
        };
        self.series.window_starts(part, self.window, 1, "evaluated")?;
        let (index, reach) = (self.targets().indices(), self.window - 1);
        let open = |time: i64| {
            let mut live = self.stream(model)?;
            live.at(time);
            let sentinel = Sentinel::new(&live, screening.guard, sigma.clone())?;
            Ok((live, sentinel.scaled(screening.scale(Detector::Model))))
        };
        score_ranges(self.series, part, (index, reach, reach), screening, open, |(live, sentinel), values| {
            let scored = sentinel.screen(values);
            sentinel.expect(&live.step_forecast(values, 1)?);
            Ok(scored)
        })
    }

    /// Faults injected among the values [`PredictionTask::surprises`] scores over `part`
    /// (the targets' observed values, from each range's `window − 1`-th step on;
    /// [`inject_faults`]), then each detector's [`Detections`] of them, flagging above
    /// `threshold` (and with `guard`, withholding above it).
    ///
    /// # Errors
    /// As [`inject_faults`] and [`PredictionTask::surprises`].
    pub fn detect_faults(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        injection: (Faults, u64),
        (threshold, screening): (f32, &Screening),
    ) -> Result<Detections> {
        let scored: Vec<Range<usize>> =
            part.iter().filter(|r| r.len() >= self.window).map(|r| r.start + self.window - 1..r.end).collect();
        detect_faults(self.series, (&scored, self.targets().indices()), injection, threshold, |faulty| {
            PredictionTask::new(faulty, self.window, self.residual)?
                .with_targets(self.targets().names())?
                .with_calibration(self.calibration.clone())
                .surprises(model, part, screening)
        })
    }

    /// [`AlarmScales`] fitted on the validation part, scored unguarded, unscaled.
    ///
    /// # Errors
    /// Data without a validation part (data the run has not seen); as
    /// [`PredictionTask::surprises`] and [`AlarmScales::fit`].
    pub fn alarm_scales(&self, model: &SequenceModel<f32>, rate: f64, threshold: f32) -> Result<AlarmScales> {
        self.alarm_scales_under(model, (rate, threshold), &Screening::default())
    }

    /// [`AlarmScales`] fitted on the validation part scored under `screening`.
    fn alarm_scales_under(
        &self,
        model: &SequenceModel<f32>,
        (rate, threshold): (f64, f32),
        screening: &Screening,
    ) -> Result<AlarmScales> {
        check_validation(self.series, self.window)?;
        let scored = self.surprises(model, &self.series.validation, screening)?;
        AlarmScales::fit(&scored, self.targets().len(), rate, threshold)
    }

    /// What a stream of this run needs to flag as [`PredictionTask::surprises`] does
    /// ([`KeptAlarms`]): the alarm scales, a model without a band's validation RMS (measured
    /// once, and the scales fitted under it), the task's calibration, the targets' training
    /// runs of equal readings.
    ///
    /// # Errors
    /// As [`PredictionTask::alarm_scales`], and for a model without a band, as its
    /// validation RMS.
    pub fn alarms_to_keep(&self, model: &SequenceModel<f32>, rate: f64, threshold: f32) -> Result<KeptAlarms> {
        check_validation(self.series, self.window)?;
        let sigma = match model.config().head.has_positive_branch() {
            true => Vec::new(),
            false => self.validation_rms(model)?,
        };
        let screening = Screening { sigma: sigma.clone(), ..Screening::default() };
        Ok(KeptAlarms {
            signals: self.targets().names().to_vec(),
            scales: self.alarm_scales_under(model, (rate, threshold), &screening)?,
            sigma,
            calibration: self.calibration.as_ref().map_or(Vec::new(), |c| c.scale.clone()),
            equal_runs: equal_run_quantiles(self.series, &self.series.train, self.targets().indices(), self.window - 1),
        })
    }

    /// The RMS of a causal `model`'s one-step errors per target on the validation part,
    /// standardised: a model without a band is banded by ±2 × it.
    fn validation_rms(&self, model: &SequenceModel<f32>) -> Result<Vec<f32>> {
        check_validation(self.series, self.window).map_err(|_| {
            Error::invalid(
                "anomaly scores",
                "the model has no band (task.uncertainty) and the data no validation part to size its errors on; \
                 score the run's own data, or train the run with task.uncertainty = true",
            )
        })?;
        let metrics = self.evaluate_streamed(model, &self.series.validation)?;
        Ok(metrics.per_signal_mse.iter().map(|m| m.sqrt() as f32).collect())
    }
}

/// [`Sentinel`] for a causal reconstruction: each arriving value scored against the
/// stream's reconstruction of it with that value alone hidden (the other signals of its
/// step read), in a copy of the stream's state, and guarded alike. What `recur stream
/// --flag G` runs on a reconstruction run, and [`ReconstructionTask::surprises`] over a
/// part.
#[derive(Clone, Debug)]
pub struct ReconstructionSentinel {
    scaler: Standardizer,
    guard: Guard,
}

impl ReconstructionSentinel {
    /// For `stream`'s signals, withholding above `guard` (none: never).
    ///
    /// # Errors
    /// A guard that is not positive.
    pub fn new(stream: &ReconstructionStream, guard: Option<f32>) -> Result<ReconstructionSentinel> {
        Ok(ReconstructionSentinel {
            scaler: stream.scaler().clone(),
            guard: Guard::new(guard, stream.signals().len())?,
        })
    }

    /// Its surprises multiplied by `scale` per signal ([`AlarmScales`]), before the guard
    /// judges them.
    pub fn scaled(mut self, scale: Vec<f32>) -> Self {
        self.guard.scale = scale;
        self
    }

    /// Scores a step's `values` (every signal, original units, `None` where missing)
    /// before `stream` reads them, per signal (`None`: no value), and sets to `None` in
    /// `values` those the guard withholds; `stream` itself does not move.
    ///
    /// # Errors
    /// As [`ReconstructionStream::step`].
    pub fn screen(
        &mut self,
        stream: &ReconstructionStream,
        values: &mut [Option<f32>],
    ) -> Result<Vec<Option<Surprise>>> {
        let reconstructed = stream.each_hidden(values)?;
        let mut out = vec![None; values.len()];
        for (j, r) in reconstructed.iter().enumerate() {
            if let (Some(x), Some(r)) = (values[j], r) {
                out[j] = Some(Surprise::of(x, (r.value, r.low, r.high), |v| self.scaler.apply(j, v)));
            }
        }
        for (j, s) in out.iter_mut().enumerate() {
            *s = self.guard.judge_surprise(j, *s);
            if s.is_some_and(|s| s.withheld) {
                values[j] = None;
            }
        }
        Ok(out)
    }
}

impl ReconstructionTask<'_> {
    /// Every observed value at the steps of `part`, in step order, scored by the four
    /// detectors of the module, the model's against a causal reconstruction `model`'s
    /// reconstruction of it with that value alone hidden — the other signals of its step
    /// and every step before read, as [`ReconstructionStream`] reads them live — and its
    /// band (calibrated by the task's calibration, if any): a value wrong given the others
    /// at the same time, which a forecast cannot see ([`ReconstructionSentinel`]). Guarded
    /// as [`PredictionTask::surprises`] guards (from the entity's first step).
    ///
    /// # Errors
    /// A model that cannot stream (one reading the interpolation, or coupled
    /// bidirectional); a guard that is not positive.
    pub fn surprises(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        screening: &Screening,
    ) -> Result<Vec<ScoredValue>> {
        let c = self.series.grid.channels();
        let every: Vec<usize> = (0..c).collect();
        let open = |time: i64| {
            let mut live = self.stream(model)?;
            live.at(time);
            let sentinel = ReconstructionSentinel::new(&live, screening.guard)?;
            Ok((live, sentinel.scaled(screening.scale(Detector::Model))))
        };
        let reach = self.config.window - 1;
        score_ranges(self.series, part, (&every, 0, reach), screening, open, |(live, sentinel), values| {
            let scored = sentinel.screen(live, values)?;
            live.step(values)?;
            Ok(scored)
        })
    }

    /// Faults injected among the values [`ReconstructionTask::surprises`] scores over
    /// `part` (every observed value; [`inject_faults`]), then each detector's
    /// [`Detections`] of them, flagging above `threshold` (and with `guard`, withholding
    /// above it).
    ///
    /// # Errors
    /// As [`inject_faults`] and [`ReconstructionTask::surprises`].
    pub fn detect_faults(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        injection: (Faults, u64),
        (threshold, screening): (f32, &Screening),
    ) -> Result<Detections> {
        let every: Vec<usize> = (0..self.series.grid.channels()).collect();
        detect_faults(self.series, (part, &every), injection, threshold, |faulty| {
            ReconstructionTask::new(faulty, self.config.clone())?
                .with_calibration(self.calibration.clone())
                .surprises(model, part, screening)
        })
    }

    /// [`AlarmScales`] fitted on the validation part, scored unguarded, unscaled.
    ///
    /// # Errors
    /// Data without a validation part (data the run has not seen); as
    /// [`ReconstructionTask::surprises`] and [`AlarmScales::fit`].
    pub fn alarm_scales(&self, model: &SequenceModel<f32>, rate: f64, threshold: f32) -> Result<AlarmScales> {
        check_validation(self.series, 1)?;
        let scored = self.surprises(model, &self.series.validation, &Screening::default())?;
        AlarmScales::fit(&scored, self.series.grid.channels(), rate, threshold)
    }

    /// What a stream of this run needs to flag as [`ReconstructionTask::surprises`] does
    /// ([`KeptAlarms`]): the alarm scales, the task's calibration, every signal's training
    /// runs of equal readings.
    ///
    /// # Errors
    /// As [`ReconstructionTask::alarm_scales`].
    pub fn alarms_to_keep(&self, model: &SequenceModel<f32>, rate: f64, threshold: f32) -> Result<KeptAlarms> {
        let every: Vec<usize> = (0..self.series.grid.channels()).collect();
        Ok(KeptAlarms {
            signals: self.series.grid.signals.clone(),
            scales: self.alarm_scales(model, rate, threshold)?,
            sigma: Vec::new(),
            calibration: self.calibration.as_ref().map_or(Vec::new(), |c| c.scale.clone()),
            equal_runs: equal_run_quantiles(self.series, &self.series.train, &every, self.config.window - 1),
        })
    }
}

/// A live detector (a stream and its sentinel) through each range of `part` longer than
/// `skip` steps: opened fresh by `open` told the time of its entity's first step, and fed
/// every step from there, `screen` scoring the step's values of the targets `index` (every
/// signal, in original units; it may withhold some) and moving the stream past them. The
/// values scored from each range's start + `skip` on, in step order, with the level's,
/// persistence's and the flatline rule's scores of them (a last observation, or a run,
/// reaching `reach` steps back; [`BaselineScores`]), guarded and scaled as `screening` says.
///
/// # Errors
/// As `open` and `screen`.
fn score_ranges<D>(
    series: &PreparedSeries,
    part: &[Range<usize>],
    (index, skip, reach): (&[usize], usize, usize),
    screening: &Screening,
    open: impl Fn(i64) -> Result<D>,
    mut screen: impl FnMut(&mut D, &mut [Option<f32>]) -> Result<Vec<Option<Surprise>>>,
) -> Result<Vec<ScoredValue>> {
    let (c, level_scale) = (series.grid.channels(), screening.scale(Detector::Level));
    let mut out = Vec::new();
    for r in part.iter().filter(|r| r.len() > skip) {
        let entity = series.entity_of(r.start);
        let mut detector = open(series.step_time(entity.start))?;
        for k in entity.start..r.end {
            let mut values = series.original_step(k);
            let scored = screen(&mut detector, &mut values)?;
            if k < r.start + skip {
                continue;
            }
            for (t, s) in scored.iter().enumerate() {
                let Some(s) = s else { continue };
                let i = k * c + index[t];
                out.push(ScoredValue {
                    step: k,
                    target: t,
                    value: series.original[i],
                    expected: s.expected,
                    low: s.low,
                    high: s.high,
                    surprise: s.surprise,
                    persistence: 0.0,
                    level: series.grid.values[i].abs() * level_scale.get(t).copied().unwrap_or(1.0),
                    flatline: 0.0,
                });
            }
        }
    }
    BaselineScores { index, reach, scored_from: skip }.fill(series, part, screening, &mut out)?;
    Ok(out)
}

/// A validation part with a range of at least `steps` steps, or an error saying that
/// what needs one (sizing errors, fitting alarm scales) needs the run's own data.
fn check_validation(series: &PreparedSeries, steps: usize) -> Result<()> {
    match series.validation.iter().any(|r| r.len() >= steps) {
        true => Ok(()),
        false => Err(Error::invalid(
            "validation part",
            "none in data a run has not seen: alarm scales and a band-free model's errors are fitted on the run's own",
        )),
    }
}

/// Persistence's and the flatline rule's scores of the values a detector scored over a
/// part, in its order (see [`BaselineScores::fill`]).
struct BaselineScores<'i> {
    /// Each target's signal.
    index: &'i [usize],
    /// How far back a last observation counts (the window's `window − 1`).
    reach: usize,
    /// The steps of each range scored are those from its start + `scored_from` on.
    scored_from: usize,
}

impl BaselineScores<'_> {
    /// Sets each of `scored`'s persistence score: |z − the target's last observation within
    /// `reach` steps| / √(persistence's one-step MSE on the training part; on data a run has
    /// not seen, over `part`), guarded as [`Sentinel`] guards (from the entity's first
    /// step): a value withheld is not kept as the last observation; and its flatline score,
    /// 2 × the run of equal readings it ends (from the entity's first step, unguarded) / the
    /// 95 % quantile of such runs on the same part as persistence's errors (or those the
    /// screening keeps).
    ///
    /// # Errors
    /// `scored` does not hold exactly the observed targets of the steps scored.
    fn fill(
        &self,
        series: &PreparedSeries,
        part: &[Range<usize>],
        screening: &Screening,
        scored: &mut [ScoredValue],
    ) -> Result<()> {
        let sized_on = if series.train.is_empty() { part } else { &series.train };
        let mse = persistence_mse(series, sized_on, self.index, self.reach, 1);
        let rms: Vec<f32> = mse.iter().map(|v| v.sqrt() as f32).collect();
        let runs = match screening.equal_runs.is_empty() {
            true => equal_run_quantiles(series, sized_on, self.index, self.reach),
            false => screening.equal_runs.clone(),
        };
        let (c, p) = (series.grid.channels(), self.index.len());
        let mut next = scored.iter_mut();
        for r in part.iter().filter(|r| r.len() > self.scored_from) {
            let mut last = LastObserved::new(c, self.reach);
            let mut flatline = FlatlineRule::new(runs.clone(), screening.scale(Detector::Flatline), self.reach);
            let mut guard = Guard::new(screening.guard, p)?;
            guard.scale = screening.scale(Detector::Persistence);
            for k in series.entity_of(r.start).start..r.end {
                for (t, &j) in self.index.iter().enumerate() {
                    if !series.grid.observed[k * c + j] {
                        guard.judge(t, None);
                        continue;
                    }
                    let z = series.grid.values[k * c + j];
                    let carried = k.checked_sub(1).and_then(|n| last.within(j, n)).unwrap_or(0.0);
                    let (s, withheld) = guard.judge(t, Some((z - carried).abs() / rms[t]));
                    let s = s.unwrap_or_default();
                    if !withheld {
                        last.see(j, z, k);
                    }
                    let equal = flatline.score(t, series.original[k * c + j], k);
                    if k >= r.start + self.scored_from {
                        let v = next.next().filter(|v| (v.step, v.target) == (k, t));
                        let v = v.ok_or_else(|| Error::invalid("persistence scores", "not the values scored"))?;
                        v.persistence = s;
                        v.flatline = equal;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The median of a count of steps (the mean of the middle two of an even number); none of
/// none.
pub fn median_steps(mut steps: Vec<usize>) -> Option<f64> {
    steps.sort_unstable();
    match steps.len() {
        0 => None,
        n if n % 2 == 1 => Some(steps[n / 2] as f64),
        n => Some((steps[n / 2 - 1] + steps[n / 2]) as f64 / 2.0),
    }
}

#[cfg(test)]
pub(crate) mod tests;
