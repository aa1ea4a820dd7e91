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
//! signal's flags at most a given number of steps apart into one [`Episode`].
//!
//! [`inject_faults`] puts faults of a given size, in training standard deviations, into a
//! seeded fraction of the observed values: spikes, stuck sensors, drifts ([`FaultKind`]);
//! [`Detection`] then scores a detector by the ranks it gives the values changed against
//! those left alone (ROC AUC, average precision) and by what a threshold flags, and
//! [`EventDetection`] by how many faults it finds and how many steps after each began.

mod episodes;

pub use episodes::{episodes, Episode};

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::calibration::band_score;
use super::prediction::{persistence_mse, Forecast, LastObserved, PredictionStream, PredictionTask};
use super::reconstruction::{ReconstructionStream, ReconstructionTask};
use crate::data::{PreparedSeries, Standardizer};
use crate::error::{Error, Result};
use crate::io::{read_json_if_present, write_json_atomically};
use crate::model::SequenceModel;
use crate::rng::Rng;

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

/// How [`PredictionTask::surprises`] and [`ReconstructionTask::surprises`] score and guard:
/// withholding above `guard` (none: never), each detector's scores of each target times
/// its alarm scale (none: as defined), a prediction model without a band banded by
/// ±2·`sigma` per target (standardised; empty: measured on the validation part), and the
/// flatline rule in units of `equal_runs` per target (empty: measured on the training part,
/// or on data the run has not seen, on the part scored).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Screening {
    pub guard: Option<f32>,
    pub scales: Option<AlarmScales>,
    pub sigma: Vec<f32>,
    pub equal_runs: Vec<f32>,
}

impl Screening {
    /// Detector `d`'s factor per target (empty: 1).
    fn scale(&self, d: Detector) -> Vec<f32> {
        self.scales.as_ref().map_or(Vec::new(), |s| s.of(d).to_vec())
    }
}

/// Per target, each detector's factor on its scores that puts a fraction `rate` of the
/// values of a part it was not trained on (the validation part, scored unguarded) above
/// `threshold`: `threshold` over the scores' (1 − rate) quantile there. Scaled so, every
/// signal and every detector raises alarms at the same rate on that part, and one
/// threshold serves them all; pooled rankings compare like with like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmScales {
    pub rate: f64,
    pub threshold: f32,
    /// `[detector][target]`, detectors in [`Detector::ALL`]'s order.
    pub factors: Vec<Vec<f32>>,
}

impl AlarmScales {
    /// From `scored` (values of `targets` targets, unguarded, unscaled).
    ///
    /// # Errors
    /// A rate outside (0, 1), a threshold that is not positive.
    pub fn fit(scored: &[ScoredValue], targets: usize, rate: f64, threshold: f32) -> Result<AlarmScales> {
        if !(rate > 0.0 && rate < 1.0) {
            return Err(Error::invalid("alarm rate", format!("{rate}: a fraction of the values, above 0 and below 1")));
        }
        if threshold.is_nan() || threshold <= 0.0 {
            return Err(Error::invalid("alarm threshold", format!("{threshold}: a positive score")));
        }
        let factor = |d: Detector, t: usize| {
            let mut scores: Vec<f32> = scored.iter().filter(|v| v.target == t).map(|v| d.of(v)).collect();
            if scores.is_empty() {
                return 1.0;
            }
            let at = (((1.0 - rate) * scores.len() as f64) as usize).min(scores.len() - 1);
            let q = *scores.select_nth_unstable_by(at, f32::total_cmp).1;
            if q > 0.0 && q.is_finite() {
                threshold / q
            } else {
                1.0
            }
        };
        let factors = Detector::ALL.iter().map(|&d| (0..targets).map(|t| factor(d, t)).collect()).collect();
        Ok(AlarmScales { rate, threshold, factors })
    }

    /// Detector `d`'s factor per target.
    pub fn of(&self, d: Detector) -> &[f32] {
        &self.factors[Detector::ALL.iter().position(|&x| x == d).unwrap_or_default()]
    }

    /// The score, as the detector defines it, above which `d` flags target `t`'s values.
    pub fn raw_threshold(&self, d: Detector, t: usize) -> f32 {
        self.threshold / self.of(d)[t]
    }
}

/// The file of a run folder that keeps [`KeptAlarms`].
pub const ALARMS_FILE: &str = "alarms.json";

/// What scoring a run's values takes from its validation part, kept in its run folder
/// ([`ALARMS_FILE`], written by `recur detect --alarm-rate`) so that `recur stream --flag`
/// flags as `recur detect` does, from the run folder alone, and `recur detect` on data the
/// run has not seen (no validation part there) as on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeptAlarms {
    /// The targets scored, in order.
    pub signals: Vec<String>,
    pub scales: AlarmScales,
    /// A prediction model without a band: the RMS of its one-step errors per target on the
    /// validation part (standardised), its band ±2·sigma; empty for a model with one.
    pub sigma: Vec<f32>,
    /// The factors of the band calibration the scales were fitted under (empty: none): a
    /// calibration since then changes the model's scores, and the scales no longer fit them.
    pub calibration: Vec<f32>,
    /// Each target's training runs of equal readings, their 95 % quantile
    /// ([`equal_run_quantiles`]): the flatline rule live (empty: not).
    #[serde(default)]
    pub equal_runs: Vec<f32>,
}

impl KeptAlarms {
    /// The screening of a detector guarded at `guard` (none: never) with these scales.
    pub fn screening(&self, guard: Option<f32>) -> Screening {
        Screening {
            guard,
            scales: Some(self.scales.clone()),
            sigma: self.sigma.clone(),
            equal_runs: self.equal_runs.clone(),
        }
    }

    /// The flatline rule live with these run quantiles and scales (none without the
    /// quantiles), a gap of at most `reach` steps not breaking a run.
    pub fn flatline_rule(&self, reach: usize) -> Option<FlatlineRule> {
        (!self.equal_runs.is_empty())
            .then(|| FlatlineRule::new(self.equal_runs.clone(), self.scales.of(Detector::Flatline).to_vec(), reach))
    }

    /// Those kept in run folder `dir`, if any, for the run's `signals` scored under the
    /// band calibration factors `calibration` (empty: none).
    ///
    /// # Errors
    /// A file that cannot be read or parsed, or holds factors that are not positive numbers,
    /// or was fitted for other signals or under another calibration (each named, with the
    /// file and how to fit them anew).
    pub fn load_from_run(dir: &Path, signals: &[String], calibration: &[f32]) -> Result<Option<KeptAlarms>> {
        let path = dir.join(ALARMS_FILE);
        let Some(kept) = read_json_if_present::<KeptAlarms>(&path)? else { return Ok(None) };
        let refit = format!("`recur detect --run {} --alarm-rate RATE` fits them anew", dir.display());
        let bad = |why: String| Error::Format { path: path.clone(), why: format!("{why}; {refit}") };
        if kept.signals != signals {
            return Err(bad(format!("fitted for the signals {:?}; the run scores {signals:?}", kept.signals)));
        }
        let p = signals.len();
        let (rate, threshold) = (kept.scales.rate, kept.scales.threshold);
        if !(rate > 0.0 && rate < 1.0 && threshold > 0.0 && threshold.is_finite()) {
            return Err(bad(format!("rate {rate} and threshold {threshold}: a rate in (0, 1), a positive threshold")));
        }
        let positive = |v: &[f32]| v.iter().all(|x| x.is_finite() && *x > 0.0);
        let factors = &kept.scales.factors;
        if factors.len() != Detector::ALL.len() || factors.iter().any(|f| f.len() != p || !positive(f)) {
            return Err(bad(format!(
                "factors: {} detectors × {p} signals of positive numbers expected",
                Detector::ALL.len()
            )));
        }
        if !(kept.sigma.is_empty() || (kept.sigma.len() == p && positive(&kept.sigma))) {
            return Err(bad(format!("sigma: none, or {p} positive numbers expected")));
        }
        if !(kept.equal_runs.is_empty() || (kept.equal_runs.len() == p && positive(&kept.equal_runs))) {
            return Err(bad(format!("equal_runs: none, or {p} positive numbers expected")));
        }
        if kept.calibration != calibration {
            let since = match (kept.calibration.is_empty(), calibration.is_empty()) {
                (true, _) => "fitted on the band before it was calibrated",
                (false, true) => "fitted on a calibrated band; the run has no calibration now",
                (false, false) => "fitted under another band calibration than the run has now",
            };
            return Err(bad(since.to_string()));
        }
        Ok(Some(kept))
    }

    /// Writes them into run folder `dir`, atomically.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save_to_run(&self, dir: &Path) -> Result<()> {
        write_json_atomically(&dir.join(ALARMS_FILE), self, "alarm scales")
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
        let mut out = vec![None; values.len()];
        for j in (0..values.len()).filter(|&j| values[j].is_some()) {
            let mut hidden = values.to_vec();
            let x = hidden[j].take().unwrap_or_default();
            let r = stream.clone().step(&hidden)?[j];
            out[j] = Some(Surprise::of(x, (r.value, r.low, r.high), |v| self.scaler.apply(j, v)));
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

/// [`inject_faults`] into `series` among the observed values of `signals` at the steps of
/// `scored`, then each detector's [`Detections`] of the faults among the values `score`
/// scores on the faulty copy, flagging above `threshold`.
fn detect_faults(
    series: &PreparedSeries,
    (scored, signals): (&[Range<usize>], &[usize]),
    (faults, seed): (Faults, u64),
    threshold: f32,
    score: impl Fn(&PreparedSeries) -> Result<Vec<ScoredValue>>,
) -> Result<Detections> {
    let (faulty, events) = inject_faults(series, scored, signals, faults, seed)?;
    let values = score(&faulty)?;
    let labels = injected_labels(&values, &events, signals);
    let mut detections = Detections::of(&values, &labels, signals.len(), threshold)?;
    detections.events =
        Detector::ALL.map(|d| (d, EventDetection::of(&values, &events, signals, d, threshold))).to_vec();
    detections.events_at_false_alarm_rate =
        Detector::ALL.map(|d| (d, EventDetection::at_false_alarm_rate(&values, &events, signals, d, 0.001))).to_vec();
    Ok(detections)
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

/// The run of equal readings of one signal that each observed value ends: 1, or one more
/// than the last value's where it equals it and was seen at most `reach` steps before.
#[derive(Clone, Copy, Debug, Default)]
struct RunOfEqual {
    last: Option<(f32, usize)>,
    run: usize,
}

impl RunOfEqual {
    fn see(&mut self, x: f32, k: usize, reach: usize) -> usize {
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

    /// The score of target `t`'s value `x` (original units) observed at step `k` (steps
    /// counted as the stream counts them, increasing).
    pub fn score(&mut self, t: usize, x: f32, k: usize) -> f32 {
        let run = self.runs[t].see(x, k, self.reach);
        2.0 * run as f32 / self.quantiles[t] * self.scale.get(t).copied().unwrap_or(1.0)
    }
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

/// A kind of fault [`inject_faults`] puts into real data, sized in training standard
/// deviations (SDs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// One value moved up or down by the size.
    Spike,
    /// A sensor frozen for `steps` steps: from a value on, the observed values of the next
    /// `steps − 1` steps read it — chosen where the truth moves at least the size away from
    /// it meanwhile (a frozen reading of a steady signal is no fault).
    Stuck { steps: usize },
    /// An offset growing linearly, up or down, to the size over `steps` steps: a sensor
    /// drifting out of calibration.
    Drift { steps: usize },
}

impl FaultKind {
    /// Its name, as `recur detect --fault` takes it.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Spike => "spike",
            FaultKind::Stuck { .. } => "stuck",
            FaultKind::Drift { .. } => "drift",
        }
    }

    /// The steps one fault spans.
    pub fn steps(self) -> usize {
        match self {
            FaultKind::Spike => 1,
            FaultKind::Stuck { steps } | FaultKind::Drift { steps } => steps,
        }
    }
}

/// Faults to inject: of `kind`, `size` training SDs, in about a fraction `rate` of the
/// observed values (a lasting fault counting each value it changes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Faults {
    pub kind: FaultKind,
    pub rate: f64,
    pub size: f32,
}

/// One fault injected: its signal, the steps it spans, and those whose value it changed.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultEvent {
    pub signal: usize,
    pub steps: Range<usize>,
    pub changed: Vec<usize>,
}

/// A copy of `series` with [`Faults`] in the observed values of `signals` (indices) at the
/// steps of `part`, chosen from `seed`, each value changed in its standardised units (in
/// original units through the fitted scaler, so that both views agree; lifted to a signal's
/// floor); the faults, in (step, signal) order. Spikes: round(rate × those values) of
/// them. Lasting faults: within a range of `part`, one signal's faults never overlapping,
/// round(rate × those values / steps) of them or as many as fit.
///
/// # Errors
/// A rate outside (0, 1), a size that is not positive and finite, a lasting fault of fewer
/// than 2 steps, no signal, no observed value to change.
pub fn inject_faults(
    series: &PreparedSeries,
    part: &[Range<usize>],
    signals: &[usize],
    faults: Faults,
    seed: u64,
) -> Result<(PreparedSeries, Vec<FaultEvent>)> {
    let Faults { kind, rate, size } = faults;
    if !(rate > 0.0 && rate < 1.0) {
        return Err(Error::invalid("fault rate", format!("{rate}: a fraction of the values, above 0 and below 1")));
    }
    if !(size > 0.0 && size.is_finite()) {
        return Err(Error::invalid("fault size", format!("{size}: a positive number of standard deviations")));
    }
    let steps = kind.steps();
    if kind != FaultKind::Spike && steps < 2 {
        return Err(Error::invalid("fault length", format!("{steps} steps: a lasting fault spans at least 2")));
    }
    let c = series.grid.channels();
    let observed = |k: usize, j: usize| series.grid.observed[k * c + j];
    // a fault's first step, its range's end
    let mut candidates: Vec<(usize, usize, usize)> = part
        .iter()
        .flat_map(|r| r.clone().map(move |k| (k, r.end)))
        .filter(|&(k, end)| k + steps <= end)
        .flat_map(|(k, end)| signals.iter().map(move |&j| (k, j, end)))
        .filter(|&(k, j, _)| observed(k, j))
        .collect();
    if candidates.is_empty() && steps > 1 {
        let longest = part.iter().map(|r| r.len()).max().unwrap_or(0);
        return Err(Error::invalid(
            "faults",
            format!("a fault of {steps} steps fits in no range of the part scored (the longest has {longest} steps)"),
        ));
    }
    let count = (rate * candidates.len() as f64 / steps as f64).round() as usize;
    if signals.is_empty() || count == 0 {
        return Err(Error::invalid(
            "faults",
            format!("{} observed values of {} signals: none to change at rate {rate}", candidates.len(), signals.len()),
        ));
    }
    let mut rng = Rng::new(seed);
    rng.shuffle(&mut candidates);
    let mut faulted = series.clone();
    let mut set = |k: usize, j: usize, original: f32| {
        faulted.original[k * c + j] = original;
        faulted.grid.values[k * c + j] = series.scaler.apply(j, original);
    };
    let z = |k: usize, j: usize| series.grid.values[k * c + j];
    let moved = |k: usize, j: usize, by: f32| series.scaler.invert(j, z(k, j) + by);
    let mut events = Vec::with_capacity(count);
    if kind == FaultKind::Spike {
        candidates.truncate(count);
        candidates.sort_unstable();
        for &(k, j, _) in &candidates {
            let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
            set(k, j, moved(k, j, sign * size));
            events.push(FaultEvent { signal: j, steps: k..k + 1, changed: vec![k] });
        }
        return Ok((faulted, events));
    }
    let mut taken = vec![false; series.grid.values.len()];
    for (k, j, _) in candidates {
        if events.len() == count {
            break;
        }
        let window = k..k + steps;
        if window.clone().any(|n| taken[n * c + j]) {
            continue;
        }
        let changed: Vec<(usize, f32)> = match kind {
            FaultKind::Stuck { .. } => {
                let moved = window.clone().skip(1).filter(|&n| observed(n, j)).map(|n| (z(n, j) - z(k, j)).abs());
                if moved.fold(0.0f32, f32::max) < size {
                    continue;
                }
                // the frozen reading itself, not its round trip through the scaler
                let frozen = series.original[k * c + j];
                window.clone().skip(1).filter(|&n| observed(n, j) && z(n, j) != z(k, j)).map(|n| (n, frozen)).collect()
            }
            _ => {
                let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
                let offset = |n: usize| sign * size * (n - k + 1) as f32 / steps as f32;
                window.clone().filter(|&n| observed(n, j)).map(|n| (n, moved(n, j, offset(n)))).collect()
            }
        };
        for n in window.clone() {
            taken[n * c + j] = true;
        }
        for &(n, v) in &changed {
            set(n, j, v);
        }
        events.push(FaultEvent { signal: j, steps: window, changed: changed.iter().map(|&(n, _)| n).collect() });
    }
    if events.is_empty() {
        return Err(Error::invalid("faults", format!("no place for a {} fault of {steps} steps", kind.name())));
    }
    events.sort_unstable_by_key(|e| (e.steps.start, e.signal));
    Ok((faulted, events))
}

/// Whether each of `scored` holds a value a fault of `events` changed, its target the
/// signal `index[target]`.
fn injected_labels(scored: &[ScoredValue], events: &[FaultEvent], index: &[usize]) -> Vec<bool> {
    let changed: HashSet<(usize, usize)> =
        events.iter().flat_map(|e| e.changed.iter().map(|&k| (k, e.signal))).collect();
    scored.iter().map(|v| changed.contains(&(v.step, index[v.target]))).collect()
}

/// Each detector's [`Detection`] of the faults `faults` labels among `scored`: pooled over
/// every target, and for each of `targets` targets alone (None where a target has no fault
/// or nothing else), flagging above `threshold`.
pub struct Detections {
    pub pooled: Vec<(Detector, Detection)>,
    /// `[target][detector]`, detectors in [`Detector::ALL`]'s order.
    pub per_target: Vec<Vec<Option<Detection>>>,
    /// Each detector's [`EventDetection`] of the faults (empty where not known), flagging
    /// above the threshold, and above the score of its 1 in 1,000 values outside the faults.
    pub events: Vec<(Detector, EventDetection)>,
    pub events_at_false_alarm_rate: Vec<(Detector, EventDetection)>,
}

impl Detections {
    /// # Errors
    /// As [`Detection::of`] for the pooled values.
    pub fn of(scored: &[ScoredValue], faults: &[bool], targets: usize, threshold: f32) -> Result<Detections> {
        let detect = |d: Detector, keep: &dyn Fn(&ScoredValue) -> bool| {
            let (scores, labels): (Vec<f32>, Vec<bool>) =
                scored.iter().zip(faults).filter(|(v, _)| keep(v)).map(|(v, &f)| (d.of(v), f)).unzip();
            Detection::of(&scores, &labels, threshold)
        };
        let pooled = Detector::ALL.iter().map(|&d| Ok((d, detect(d, &|_| true)?))).collect::<Result<_>>()?;
        let per_target =
            (0..targets).map(|t| Detector::ALL.iter().map(|&d| detect(d, &|v| v.target == t).ok()).collect()).collect();
        Ok(Detections { pooled, per_target, events: Vec::new(), events_at_false_alarm_rate: Vec::new() })
    }
}

/// How well a detector's scores find the faults among values labelled fault or not.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// The chance that a fault outscores a value left alone (ties count half): ROC AUC.
    pub auc: f64,
    /// The mean, over the faults, of the precision among the values scoring at least as
    /// much as each (ties resolved as a threshold would: together).
    pub average_precision: f64,
    /// Values scoring above the threshold, and faults among them.
    pub flagged: usize,
    pub flagged_faults: usize,
    /// Faults, and values in all.
    pub faults: usize,
    pub values: usize,
}

impl Detection {
    /// Of `scores` with `faults` labels, flagging those above `threshold`.
    ///
    /// # Errors
    /// Scores and labels of different lengths, a NaN score, no fault or no value left
    /// alone (nothing to rank).
    pub fn of(scores: &[f32], faults: &[bool], threshold: f32) -> Result<Detection> {
        if scores.len() != faults.len() {
            return Err(Error::invalid("detection", format!("{} scores for {} labels", scores.len(), faults.len())));
        }
        if scores.iter().any(|s| s.is_nan()) {
            return Err(Error::invalid("detection", "a NaN score"));
        }
        let positives = faults.iter().filter(|&&f| f).count();
        let negatives = faults.len() - positives;
        if positives == 0 || negatives == 0 {
            return Err(Error::invalid(
                "detection",
                format!("{positives} faults and {negatives} values left alone: both are needed"),
            ));
        }
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        // walk down the scores a tie at a time: the faults below each tie and the AP sum
        let (mut above_pos, mut above_neg, mut auc, mut ap) = (0usize, 0usize, 0.0f64, 0.0f64);
        let mut i = 0;
        while i < order.len() {
            let tie = scores[order[i]];
            let end = i + order[i..].iter().take_while(|&&o| scores[o] == tie).count();
            let pos = order[i..end].iter().filter(|&&o| faults[o]).count();
            let neg = (end - i) - pos;
            // each fault of the tie outscores the values left alone below it, ties half
            auc += pos as f64 * ((negatives - above_neg - neg) as f64 + 0.5 * neg as f64);
            above_pos += pos;
            above_neg += neg;
            ap += pos as f64 * above_pos as f64 / (above_pos + above_neg) as f64;
            i = end;
        }
        let flagged: Vec<bool> = scores.iter().map(|&s| s > threshold).collect();
        Ok(Detection {
            auc: auc / (positives as f64 * negatives as f64),
            average_precision: ap / positives as f64,
            flagged: flagged.iter().filter(|&&f| f).count(),
            flagged_faults: flagged.iter().zip(faults).filter(|(&f, &l)| f && l).count(),
            faults: positives,
            values: faults.len(),
        })
    }

    /// Faults among the values flagged (1 with none flagged).
    pub fn precision(&self) -> f64 {
        match self.flagged {
            0 => 1.0,
            n => self.flagged_faults as f64 / n as f64,
        }
    }

    /// Faults flagged, of all.
    pub fn recall(&self) -> f64 {
        self.flagged_faults as f64 / self.faults as f64
    }
}

/// Every (step, signal) within a fault of `events`.
fn fault_steps(events: &[FaultEvent]) -> HashSet<(usize, usize)> {
    events.iter().flat_map(|e| e.steps.clone().map(|k| (k, e.signal))).collect()
}

/// How soon a detector finds each fault (of any length) and what it flags besides.
#[derive(Clone, Debug, PartialEq)]
pub struct EventDetection {
    pub events: usize,
    /// For each fault found (a value of its signal within its steps scored above the
    /// threshold), the steps from its first step to that value's.
    pub delays: Vec<usize>,
    /// Values outside every fault's steps (of its signal), and those of them flagged.
    pub clean: usize,
    pub clean_flagged: usize,
}

impl EventDetection {
    /// Of `d`'s scores of `scored` (its targets the signals `index[target]`) for `events`,
    /// flagging above `threshold`.
    pub fn of(scored: &[ScoredValue], events: &[FaultEvent], index: &[usize], d: Detector, threshold: f32) -> Self {
        let within = fault_steps(events);
        let flagged: HashSet<(usize, usize)> =
            scored.iter().filter(|v| d.of(v) > threshold).map(|v| (v.step, index[v.target])).collect();
        let clean = scored.iter().filter(|v| !within.contains(&(v.step, index[v.target])));
        let (clean, clean_flagged) = clean.fold((0, 0), |(n, f), v| (n + 1, f + usize::from(d.of(v) > threshold)));
        let delays = events
            .iter()
            .filter_map(|e| e.steps.clone().find(|&k| flagged.contains(&(k, e.signal))).map(|k| k - e.steps.start))
            .collect();
        EventDetection { events: events.len(), delays, clean, clean_flagged }
    }

    /// Of `d`'s scores as [`EventDetection::of`], flagging above the score that a fraction
    /// `rate` of the values outside the faults exceed: each detector at the same false-alarm
    /// rate, whatever its scale.
    pub fn at_false_alarm_rate(
        scored: &[ScoredValue],
        events: &[FaultEvent],
        index: &[usize],
        d: Detector,
        rate: f64,
    ) -> Self {
        let within = fault_steps(events);
        let mut clean: Vec<f32> =
            scored.iter().filter(|v| !within.contains(&(v.step, index[v.target]))).map(|v| d.of(v)).collect();
        let threshold = match clean.len() {
            0 => f32::INFINITY,
            n => *clean.select_nth_unstable_by(((1.0 - rate) * n as f64) as usize % n, f32::total_cmp).1,
        };
        Self::of(scored, events, index, d, threshold)
    }

    /// The faults found, of all.
    pub fn found(&self) -> f64 {
        self.delays.len() as f64 / self.events.max(1) as f64
    }

    /// The median steps to a fault's first flag, among those found.
    pub fn median_delay(&self) -> Option<f64> {
        median_steps(self.delays.clone())
    }

    /// The values outside the faults flagged, per 1,000.
    pub fn false_alarms_per_1000(&self) -> f64 {
        1000.0 * self.clean_flagged as f64 / self.clean.max(1) as f64
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
pub(crate) mod tests {
    use super::*;
    use crate::model::ModelSection;
    use crate::tasks::prediction::tests::ramps;
    use crate::tasks::{PredictionConfig, ReconstructionConfig, Uncertainty};

    /// A value of step `step` and target `target` scored `scores` by the model,
    /// persistence, the level and the flatline rule, nothing else known of it (synthetic).
    pub(crate) fn scored_value(step: usize, target: usize, scores: [f32; 4]) -> ScoredValue {
        let [surprise, persistence, level, flatline] = scores;
        let (value, expected, low, high) = (0.0, 0.0, 0.0, 0.0);
        ScoredValue { step, target, value, expected, low, high, surprise, persistence, level, flatline }
    }

    #[test]
    fn each_observed_test_value_is_scored_against_the_streamed_forecast_made_before_it() {
        // synthetic ramps, an untrained model with a Gaussian band: every score by hand
        // from `recur stream`'s path
        let data = ramps();
        let config = PredictionConfig { uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
        let model = SequenceModel::<f32>::new(config.model_config(2), 3).unwrap();
        let (window, c) = (12, 2);
        let task = PredictionTask::new(&data, window, true).unwrap();
        let scored = task.surprises(&model, &data.test, &Screening::default()).unwrap();
        assert_eq!(scored.len() as u64, task.evaluate_streamed(&model, &data.test).unwrap().scored);
        let persistence_rms: Vec<f32> = task.persistence_variance(1).iter().map(|v| v.sqrt() as f32).collect();
        let (test, z) = (data.test[0].clone(), &data.grid.values);
        let mut stream = task.stream(&model).unwrap();
        let mut expected = Vec::new();
        for n in 0..test.end - 1 {
            let forecast = stream.step_forecast(&data.original_step(n), 1).unwrap();
            let k = n + 1;
            for j in (0..c).filter(|&j| k >= test.start + window - 1 && data.grid.observed[k * c + j]) {
                let x_hat = data.scaler.apply(j, forecast.values[j]);
                let last = (n + 2 - window..=n).rev().find(|&m| data.grid.observed[m * c + j]);
                let carried = last.map_or(0.0, |m| z[m * c + j]);
                expected.push((k, j, (z[k * c + j] - x_hat).abs() / forecast.sigma_standardised[j], {
                    (z[k * c + j] - carried).abs() / persistence_rms[j]
                }));
            }
        }
        assert_eq!(scored.len(), expected.len());
        for (v, &(k, j, surprise, persistence)) in scored.iter().zip(&expected) {
            assert_eq!((v.step, v.target, v.value), (k, j, data.original[k * c + j]));
            assert!((v.surprise - surprise).abs() < 1e-3 * surprise.max(1.0), "{v:?}: {surprise}");
            assert!((v.persistence - persistence).abs() < 1e-5 * persistence.max(1.0), "{v:?}: {persistence}");
            assert_eq!(v.level, z[k * c + j].abs());
            assert!(v.low < v.expected && v.expected < v.high, "{v:?}");
        }
    }

    #[test]
    fn the_guard_withholds_a_surprising_value_once_but_takes_a_change_that_lasts() {
        // synthetic ramps, an untrained model with a band; `a` jumps far out at step 30
        // alone and from step 40 on
        let data = ramps();
        let config = PredictionConfig { uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
        let model = SequenceModel::<f32>::new(config.model_config(2), 3).unwrap();
        let task = PredictionTask::new(&data, 12, true).unwrap();
        let mut stream = task.stream(&model).unwrap();
        let mut sentinel = Sentinel::new(&stream, Some(4.0), Vec::new()).unwrap();
        let (mut unguarded_stream, mut unguarded_flags) = (task.stream(&model).unwrap(), Vec::new());
        let mut unguarded = Sentinel::new(&unguarded_stream, None, Vec::new()).unwrap();
        let (mut withheld, mut flagged) = (Vec::new(), Vec::new());
        for n in 0..45 {
            let mut values = data.original_step(n);
            if n == 30 || n >= 40 {
                values[0] = Some(1e4);
            }
            let seen = values.clone();
            let mut read = values.clone();
            if unguarded.screen(&mut read)[0].is_some_and(|s| s.surprise > 4.0) {
                unguarded_flags.push(n);
            }
            assert_eq!(read, seen, "no guard, nothing withheld");
            unguarded.expect(&unguarded_stream.step_forecast(&read, 1).unwrap());
            let surprises = sentinel.screen(&mut values);
            assert_eq!(surprises[0].is_some(), n > 0, "nothing is expected of the first step");
            if let Some(s) = surprises[0] {
                assert_eq!(s.withheld, values[0].is_none());
                assert_eq!(values[1], seen[1], "b is never far from its forecast here");
                if s.withheld {
                    withheld.push(n);
                }
                if s.surprise > 4.0 {
                    flagged.push(n);
                }
            }
            sentinel.expect(&stream.step_forecast(&values, 1).unwrap());
        }
        // the spike and the jump withheld once; the jump's second step flagged but taken,
        // and the new level then expected (the residual head forecasts from it); unguarded,
        // the step after the spike is flagged too, against a forecast from the spike
        assert_eq!(withheld, [30, 40]);
        assert_eq!(flagged, [30, 40, 41]);
        assert_eq!(unguarded_flags, [30, 31, 40]);
        assert!(Sentinel::new(&stream, Some(0.0), Vec::new()).is_err());
        let plain = SequenceModel::<f32>::new(PredictionConfig::default().model_config(2), 3).unwrap();
        assert!(Sentinel::new(&task.stream(&plain).unwrap(), None, Vec::new()).is_err());
    }

    #[test]
    fn a_causal_reconstruction_scores_each_value_with_it_alone_hidden() {
        // synthetic ramps, an untrained causal reconstruction: every score by hand from
        // `recur stream`'s path, each value hidden in a copy of the stream's state
        let data = ramps();
        let config =
            ReconstructionConfig { model: ModelSection::default(), window: 12, residual: false, ..Default::default() };
        let model = SequenceModel::<f32>::new(config.model_config(2), 3).unwrap();
        let task = ReconstructionTask::new(&data, config).unwrap();
        let scored = task.surprises(&model, &data.test, &Screening::default()).unwrap();
        let (c, test) = (2, data.test[0].clone());
        let observed =
            test.clone().flat_map(|k| (0..c).map(move |j| (k, j))).filter(|&(k, j)| data.grid.observed[k * c + j]);
        assert_eq!(scored.iter().map(|v| (v.step, v.target)).collect::<Vec<_>>(), observed.collect::<Vec<_>>());
        let mut live = task.stream(&model).unwrap();
        let mut scored = scored.iter();
        for k in 0..test.end {
            let values = data.original_step(k);
            for j in (0..c).filter(|&j| k >= test.start && values[j].is_some()) {
                let mut hidden = values.clone();
                hidden[j] = None;
                let r = live.clone().step(&hidden).unwrap()[j];
                let z = |v: f32| data.scaler.apply(j, v);
                let surprise = 2.0 * band_score(z(r.value), z(r.low), z(r.high), data.grid.values[k * c + j]);
                let v = scored.next().unwrap();
                assert_eq!((v.expected, v.low, v.high), (r.value, r.low, r.high));
                assert!((v.surprise - surprise).abs() <= 1e-4 * surprise.max(1.0), "{v:?}: {surprise}");
            }
            live.step(&values).unwrap();
        }
    }

    #[test]
    fn alarm_scales_put_the_rate_asked_for_above_the_threshold_and_scale_every_detector() {
        // synthetic: 1,000 values of each of two targets, scores k/1000 (target 0) and
        // 3k/1000 (target 1) for every detector
        let value = |k: usize, t: usize| scored_value(k, t, [(k * (1 + 2 * t)) as f32 / 1000.0; 4]);
        let scored: Vec<ScoredValue> = (0..1000).flat_map(|k| [value(k, 0), value(k, 1)]).collect();
        let scales = AlarmScales::fit(&scored, 2, 0.01, 4.0).unwrap();
        for d in Detector::ALL {
            for t in 0..2 {
                let above = scored.iter().filter(|v| v.target == t && d.of(v) * scales.of(d)[t] > 4.0).count();
                assert_eq!(above, 9, "{d:?} {t}: the ten largest, but the quantile itself");
                assert!((scales.raw_threshold(d, t) - 0.99 * (1 + 2 * t) as f32).abs() < 1e-5);
            }
        }
        assert!(AlarmScales::fit(&scored, 2, 1.0, 4.0).is_err() && AlarmScales::fit(&scored, 2, 0.01, 0.0).is_err());

        // every detector's scores of each target, times its factor, as the guard sees them
        let data = ramps();
        let config = PredictionConfig { uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
        let model = SequenceModel::<f32>::new(config.model_config(2), 3).unwrap();
        let task = PredictionTask::new(&data, 12, true).unwrap();
        let plain = task.surprises(&model, &data.test, &Screening::default()).unwrap();
        let factors = vec![vec![2.0, 3.0], vec![5.0, 7.0], vec![11.0, 13.0], vec![17.0, 19.0]];
        let scales = Some(AlarmScales { rate: 0.01, threshold: 4.0, factors });
        let scaled =
            task.surprises(&model, &data.test, &Screening { guard: None, scales, ..Screening::default() }).unwrap();
        for (p, s) in plain.iter().zip(&scaled) {
            let f = [2.0, 3.0][p.target];
            assert_eq!(
                (s.surprise, s.persistence, s.level, s.flatline),
                (
                    p.surprise * f,
                    p.persistence * [5.0, 7.0][p.target],
                    p.level * [11.0, 13.0][p.target],
                    p.flatline * [17.0, 19.0][p.target]
                )
            );
        }
        let fitted = task.alarm_scales(&model, 0.05, 4.0).unwrap();
        let validation = task.surprises(&model, &data.validation, &Screening::default()).unwrap();
        assert_eq!(fitted, AlarmScales::fit(&validation, 2, 0.05, 4.0).unwrap());
    }

    #[test]
    fn kept_alarms_come_back_as_written_and_a_file_that_does_not_fit_the_run_is_refused_by_name() {
        let scratch = tempfile::Builder::new().prefix("recur-kept-alarms-").tempdir().unwrap();
        let dir = scratch.path();
        let signals = vec!["a".to_string(), "b|c".to_string()];
        assert_eq!(KeptAlarms::load_from_run(dir, &signals, &[]).unwrap(), None);
        let kept = KeptAlarms {
            signals: signals.clone(),
            scales: AlarmScales { rate: 0.005, threshold: 4.0, factors: vec![vec![1.5, 0.5]; 4] },
            sigma: vec![0.3, 0.2],
            calibration: vec![1.1, 0.9],
            equal_runs: vec![3.0, 1.0],
        };
        kept.save_to_run(dir).unwrap();
        assert_eq!(KeptAlarms::load_from_run(dir, &signals, &[1.1, 0.9]).unwrap().as_ref(), Some(&kept));
        assert_eq!(
            kept.screening(Some(4.0)),
            Screening {
                guard: Some(4.0),
                scales: Some(kept.scales.clone()),
                sigma: vec![0.3, 0.2],
                equal_runs: vec![3.0, 1.0]
            }
        );
        let refused = |signals: &[String], calibration: &[f32]| {
            KeptAlarms::load_from_run(dir, signals, calibration).unwrap_err().to_string()
        };
        let e = refused(&signals[..1], &[1.1, 0.9]);
        assert!(e.contains("alarms.json") && e.contains("fitted for the signals"), "{e}");
        assert!(refused(&signals, &[]).contains("fitted on a calibrated band; the run has no calibration now"));
        assert!(refused(&signals, &[1.0, 1.0]).contains("another band calibration"));
        for bad in [
            KeptAlarms { sigma: vec![0.3], ..kept.clone() },
            KeptAlarms { sigma: vec![0.3, f32::NAN], ..kept.clone() },
            KeptAlarms { equal_runs: vec![3.0, 0.0], ..kept.clone() },
            KeptAlarms {
                scales: AlarmScales { factors: vec![vec![1.0, 0.0]; 4], ..kept.scales.clone() },
                ..kept.clone()
            },
            KeptAlarms {
                scales: AlarmScales { factors: vec![vec![1.0, 1.0]; 3], ..kept.scales.clone() },
                ..kept.clone()
            },
            KeptAlarms { scales: AlarmScales { rate: 1.0, ..kept.scales.clone() }, ..kept.clone() },
        ] {
            bad.save_to_run(dir).unwrap();
            let e = refused(&signals, &[1.1, 0.9]);
            assert!(e.contains("alarms.json") && e.contains("expected") || e.contains("a rate in (0, 1)"), "{e}");
        }
        assert!(refused(&signals, &[]).contains("--alarm-rate RATE` fits them anew"));
        std::fs::write(dir.join(ALARMS_FILE), "{").unwrap();
        assert!(refused(&signals, &[]).contains("alarms.json"));
    }

    #[test]
    fn the_flatline_rule_counts_the_run_of_equal_readings_across_short_gaps_against_trainings_runs() {
        // synthetic ramps (every training reading differs from the one before: runs of 1,
        // the 95 % quantile 1); `a` frozen at 50 over steps 89..95 of the test part, `b`
        // (missing every third step) at −80 over 88..97
        let mut data = ramps();
        let c = data.grid.channels();
        for (j, steps, x) in [(0, 89..95, 50.0f32), (1, 88..97, -80.0)] {
            for k in steps.filter(|&k| data.grid.observed[k * c + j]) {
                data.original[k * c + j] = x;
                data.grid.values[k * c + j] = data.scaler.apply(j, x);
            }
        }
        let config = PredictionConfig { uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
        let model = SequenceModel::<f32>::new(config.model_config(2), 3).unwrap();
        let task = PredictionTask::new(&data, 12, true).unwrap();
        let scored = task.surprises(&model, &data.test, &Screening::default()).unwrap();
        let flatline = |k: usize, t: usize| scored.iter().find(|v| (v.step, v.target) == (k, t)).unwrap().flatline;
        // scored from step 91 (the test part's 80 + window − 1)
        for (k, run) in [(91, 3), (92, 4), (94, 6), (95, 1), (96, 1)] {
            assert_eq!(flatline(k, 0), 2.0 * run as f32, "a at {k}");
        }
        // b observed at 88, 89, 91, 92, 94, 95, 97: the gaps at 90, 93 and 96 do not break it
        for (k, run) in [(91, 3), (92, 4), (94, 5), (95, 6), (97, 1), (98, 1)] {
            assert_eq!(flatline(k, 1), 2.0 * run as f32, "b at {k}");
        }
        // scaled as every detector is
        let scales = AlarmScales {
            rate: 0.01,
            threshold: 4.0,
            factors: vec![vec![1.0, 1.0]; 3].into_iter().chain([vec![0.5, 3.0]]).collect(),
        };
        let screening = Screening { scales: Some(scales), ..Screening::default() };
        let scaled = task.surprises(&model, &data.test, &screening).unwrap();
        for (v, w) in scored.iter().zip(&scaled) {
            assert_eq!(w.flatline, v.flatline * [0.5, 3.0][v.target]);
        }
    }

    #[test]
    fn a_model_without_a_band_is_banded_by_its_validation_errors() {
        // synthetic ramps, an untrained model without a band: ±2 × its validation RMS
        let data = ramps();
        let model = SequenceModel::<f32>::new(PredictionConfig::default().model_config(2), 3).unwrap();
        let task = PredictionTask::new(&data, 12, true).unwrap();
        let rms = task.evaluate_streamed(&model, &data.validation).unwrap().per_signal_mse;
        for v in task.surprises(&model, &data.test, &Screening::default()).unwrap() {
            let half = data.scaler.apply(v.target, v.high) - data.scaler.apply(v.target, v.expected);
            assert!((f64::from(half) - 2.0 * rms[v.target].sqrt()).abs() < 1e-4, "{v:?}");
        }
        let mut unseen = data.clone();
        (unseen.train, unseen.validation) = (Vec::new(), Vec::new());
        let err = PredictionTask::new(&unseen, 12, true)
            .unwrap()
            .surprises(&model, &data.test, &Screening::default())
            .unwrap_err();
        assert!(err.to_string().contains("task.uncertainty"), "{err}");
    }

    #[test]
    fn spikes_move_the_chosen_share_of_observed_values_by_their_size_and_nothing_else() {
        let data = ramps();
        let c = data.grid.channels();
        let spikes = Faults { kind: FaultKind::Spike, rate: 0.1, size: 3.0 };
        let inject = |faults: Faults, seed: u64| inject_faults(&data, &data.test, &[1], faults, seed);
        let (spiked, events) = inject(spikes, 5).unwrap();
        let at: Vec<(usize, usize)> = events.iter().map(|e| (e.steps.start, e.signal)).collect();
        assert!(events.iter().all(|e| e.steps.len() == 1 && e.changed == [e.steps.start]));
        let observed = data.test[0].clone().filter(|&k| data.grid.observed[k * c + 1]).count();
        assert_eq!(at.len(), (0.1 * observed as f64).round() as usize);
        for i in 0..data.grid.values.len() {
            let (k, j) = (i / c, i % c);
            let moved = (spiked.grid.values[i] - data.grid.values[i]).abs();
            match at.binary_search(&(k, j)) {
                Ok(_) => {
                    assert!(j == 1 && data.test[0].contains(&k) && data.grid.observed[i]);
                    assert!((moved - 3.0).abs() < 1e-4, "{k} {j}: {moved}");
                    assert!((data.scaler.apply(j, spiked.original[i]) - spiked.grid.values[i]).abs() < 1e-6);
                }
                Err(_) => assert_eq!((moved, spiked.original[i]), (0.0, data.original[i])),
            }
        }
        assert_eq!(inject(spikes, 5).unwrap().1, events);
        assert_ne!(inject(spikes, 6).unwrap().1, events);
        for bad in [
            Faults { rate: 0.0, ..spikes },
            Faults { size: -1.0, ..spikes },
            Faults { kind: FaultKind::Drift { steps: 1 }, ..spikes },
        ] {
            assert!(inject(bad, 5).is_err());
        }
        assert!(inject_faults(&data, &data.test, &[], spikes, 5).is_err());
        let e = inject(Faults { kind: FaultKind::Stuck { steps: 40 }, ..spikes }, 5).unwrap_err().to_string();
        assert!(
            e.contains("a fault of 40 steps fits in no range of the part scored (the longest has 20 steps)"),
            "{e}"
        );
    }

    #[test]
    fn a_stuck_sensor_repeats_a_value_the_truth_leaves_and_a_drift_grows_to_its_size() {
        // synthetic ramps: every signal moves every step, so a frozen value departs from it
        let data = ramps();
        let c = data.grid.channels();
        let signals = [0, 1];
        for kind in [FaultKind::Stuck { steps: 6 }, FaultKind::Drift { steps: 6 }] {
            // a step moves `a` by 0.06 training SDs: 6 steps by more than 0.2
            let faults = Faults { kind, rate: 0.5, size: 0.2 };
            let (faulty, events) = inject_faults(&data, &data.test, &signals, faults, 3).unwrap();
            let values: usize = data.test.iter().map(|r| r.len()).sum::<usize>() * 2;
            assert!(events.len() >= 2 && events.len() <= (0.5 * values as f64 / 6.0).round() as usize);
            let mut changed = HashSet::new();
            for e in &events {
                assert_eq!(e.steps.len(), 6);
                assert!(data.test.iter().any(|r| r.start <= e.steps.start && e.steps.end <= r.end));
                let z = |k: usize| data.grid.values[k * c + e.signal];
                let f = |k: usize| faulty.grid.values[k * c + e.signal];
                for &k in &e.changed {
                    changed.insert((k, e.signal));
                    match kind {
                        FaultKind::Stuck { .. } => {
                            // the very reading frozen, as the flatline rule compares readings
                            let at = |series: &PreparedSeries, n: usize| series.original[n * c + e.signal];
                            assert_eq!(at(&faulty, k), at(&data, e.steps.start));
                            assert!((f(k) - z(e.steps.start)).abs() < 1e-5);
                        }
                        _ => {
                            let grown = 0.2 * (k - e.steps.start + 1) as f32 / 6.0;
                            assert!(((f(k) - z(k)).abs() - grown).abs() < 1e-4, "{k}");
                        }
                    }
                }
                if let FaultKind::Stuck { .. } = kind {
                    let left = e.changed.iter().map(|&k| (z(k) - z(e.steps.start)).abs()).fold(0.0, f32::max);
                    assert!(left >= 0.2 && !e.changed.contains(&e.steps.start), "{e:?}");
                }
            }
            // one signal's faults never overlap, and nothing else moved
            for (a, b) in events.iter().zip(events.iter().skip(1)) {
                assert!(a.signal != b.signal || a.steps.end <= b.steps.start || b.steps.end <= a.steps.start);
            }
            for i in 0..data.grid.values.len() {
                if !changed.contains(&(i / c, i % c)) {
                    assert_eq!(faulty.original[i], data.original[i]);
                }
            }
        }
    }

    #[test]
    fn a_fault_is_found_at_its_first_flag_and_the_flags_outside_faults_are_counted() {
        let event = |signal: usize, steps: Range<usize>| FaultEvent { signal, changed: steps.clone().collect(), steps };
        let events = [event(0, 10..14), event(1, 20..24), event(0, 30..34)];
        let value = |step: usize, target: usize, surprise: f32| scored_value(step, target, [surprise, 0.0, 0.0, 0.0]);
        let mut scored: Vec<ScoredValue> = (0..40).flat_map(|k| [value(k, 0, 1.0), value(k, 1, 1.0)]).collect();
        scored[2 * 12].surprise = 5.0; // the first fault at its third step
        scored[2 * 20 + 1].surprise = 5.0; // the second at its first
        scored[2 * 5].surprise = 5.0; // a clean value
        scored[2 * 20].surprise = 5.0; // signal 0 at step 20: outside its faults
        let found = EventDetection::of(&scored, &events, &[0, 1], Detector::Model, 4.0);
        assert_eq!((found.events, found.delays.clone()), (3, vec![2, 0]));
        assert_eq!((found.clean, found.clean_flagged), (80 - 12, 2));
        assert_eq!(found.median_delay(), Some(1.0));
        assert!((found.found() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(EventDetection::of(&scored, &events, &[0, 1], Detector::Level, 4.0).median_delay(), None);
    }

    /// ROC AUC by counting every (fault, value left alone) pair, ties half.
    fn auc_by_pairs(scores: &[f32], faults: &[bool]) -> f64 {
        let (mut won, mut pairs) = (0.0, 0.0);
        for i in (0..faults.len()).filter(|&i| faults[i]) {
            for j in (0..faults.len()).filter(|&j| !faults[j]) {
                pairs += 1.0;
                won += match scores[i].total_cmp(&scores[j]) {
                    std::cmp::Ordering::Greater => 1.0,
                    std::cmp::Ordering::Equal => 0.5,
                    std::cmp::Ordering::Less => 0.0,
                };
            }
        }
        won / pairs
    }

    #[test]
    fn detection_ranks_as_counting_pairs_and_thresholds_as_counting_flags() {
        // synthetic scores with ties across the labels
        let mut rng = Rng::new(3);
        for _ in 0..50 {
            let n = 2 + rng.below(40);
            let scores: Vec<f32> = (0..n).map(|_| rng.below(6) as f32).collect();
            let mut faults: Vec<bool> = (0..n).map(|_| rng.uniform() < 0.3).collect();
            (faults[0], faults[1]) = (true, false);
            let d = Detection::of(&scores, &faults, 2.5).unwrap();
            assert!((d.auc - auc_by_pairs(&scores, &faults)).abs() < 1e-12);
            assert_eq!(d.flagged, scores.iter().filter(|&&s| s > 2.5).count());
            let flagged_faults = scores.iter().zip(&faults).filter(|(&s, &f)| s > 2.5 && f).count();
            assert_eq!(
                (d.flagged_faults, d.faults, d.values),
                (flagged_faults, faults.iter().filter(|&&f| f).count(), n)
            );
        }
    }

    #[test]
    fn average_precision_is_one_when_faults_rank_first_and_counts_a_tie_together() {
        let faults = [true, true, false, false];
        let d = Detection::of(&[9.0, 8.0, 1.0, 0.0], &faults, 5.0).unwrap();
        assert_eq!((d.auc, d.average_precision, d.precision(), d.recall()), (1.0, 1.0, 1.0, 1.0));
        // all four tied: any threshold takes all, precision 1/2 for each fault
        let d = Detection::of(&[1.0; 4], &faults, 0.5).unwrap();
        assert_eq!((d.auc, d.average_precision), (0.5, 0.5));
        // the faults second and fourth: (1/2 + 2/4) / 2
        let d = Detection::of(&[4.0, 3.0, 2.0, 1.0], &[false, true, false, true], 0.0).unwrap();
        assert!((d.average_precision - 0.5).abs() < 1e-12 && (d.auc - 0.25).abs() < 1e-12);
        assert!(Detection::of(&[1.0, 2.0], &[true, true], 0.0).is_err());
        assert!(Detection::of(&[f32::NAN, 2.0], &[true, false], 0.0).is_err());
        assert!(Detection::of(&[1.0], &[true, false], 0.0).is_err());
    }
}
