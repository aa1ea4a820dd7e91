//! Prediction, the deck's first task: from a window of L steps, predict every signal's
//! value at the window's last timestamp. The model reads steps 0..L−2 as
//! `[z_t ⊙ m_t, m_t]` (standardised values and their observation mask, so missingness is
//! information, never filled in) and its head's output at the last input step is x̂_{L−1}.
//! Loss: masked MSE over the observed target entries. With `residual` (the default) the
//! head predicts the change from each signal's last observation in the window,
//! x̂ = x_last + head(z), so an untrained model starts at persistence.
//!
//! With `steps_ahead` S > 1 the forecast is direct (multi-output): the head reads the
//! same state and predicts the next S steps at once, block h − 1 of its S·C outputs being
//! x̂_{t+h} (as a change from the same last observation), and the loss pools the observed
//! targets of all S steps. A one-step model reaches further only in closed loop, fed its
//! own forecasts, where its errors compound; a direct model never reads its own output.
//! Targets never reach past the end of the part a window or stream belongs to.
//!
//! With `targets` (a subset of the signals, [`Targets`]) the model still reads every
//! signal, but forecasts and is scored on those alone: a pollutant from the weather, a
//! machine's discharge temperature from its other sensors. Such a model cannot run in
//! closed loop (it never forecasts the other signals it reads), so it reaches only as far
//! as it forecasts directly.
//!
//! With `uncertainty` the head is the deck's Gaussian one with a precision λ̂ for every
//! value it forecasts (each signal at each step ahead; the deck's λ̂_t is one per step, but
//! a λ̂ shared by signals of different volatility covers the smooth ones too widely and the
//! gusty ones too narrowly: on Beijing 100 % for temperature and pressure, 82 % for wind
//! speed), learned by the Gaussian NLL with the forecasts and the state held fixed (the
//! forecasts keep the MSE: see the task's loss), so every forecast comes with σ = 1/√λ̂
//! and a ±2σ band, whose coverage the evaluation reports.
//!
//! A model trained on windows starts every window from a zero state, but deployed on a
//! live stream (`recur stream`) it carries its state from the first step on. With
//! [`StreamTraining`] the model is trained as it is deployed instead: the training part
//! is cut into long streams, the head predicts the next step at every step, and truncated
//! BPTT (k1, k2) carries the state through each stream. [`PredictionTask::evaluate_streamed`]
//! scores either kind of model that way, on the same entries as the windows.

use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::calibration::{band_score, BandCalibration};
use super::metrics::{ErrorAccumulator, Metrics, BAND_ALPHA};
use super::{StepClock, StreamTraining};
use crate::classic::gradients::LookBack;
use crate::data::{Clock, FittedScaler, PreparedSeries, Standardizer};
use crate::error::{Error, Result};
use crate::losses::{gaussian_nll_precision, masked_mse, quantile_band};
use crate::model::{HeadKind, HeadOutput, HeadSteps, ModelConfig, ModelSection, ModelStream, SequenceModel};
use crate::rng::Rng;
use crate::rnn::SequenceBatch;
use crate::train::{train, Task, TrainConfig, TrainReport, Truncation};

/// A prediction run besides its data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PredictionConfig {
    pub model: ModelSection,
    /// L: steps per window, the last being the one predicted.
    pub window: usize,
    /// Predict the change from the last observation instead of the value.
    pub residual: bool,
    /// Train on long streams with truncated BPTT instead of on windows.
    pub stream: Option<StreamTraining>,
    /// S: steps forecast directly from every state (1: the next step only).
    pub steps_ahead: usize,
    /// The forecasts' band, if any: a Gaussian head or a quantile head.
    pub uncertainty: Uncertainty,
    /// The calendar inputs read after the signals' ([`crate::data::Calendar::width`]; the
    /// data's calendar).
    pub calendar_inputs: usize,
    /// The signals forecast and scored ([`Targets`]; empty: every signal). The model reads
    /// every signal either way.
    pub targets: Vec<String>,
    pub train: TrainConfig,
}

/// The band a prediction model gives each forecast value (`task.uncertainty`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Uncertainty {
    /// No band (`false`).
    #[default]
    None,
    /// ±2σ, σ = 1/√λ̂ from a learned precision per value trained with the Gaussian NLL
    /// (`true` or `"gaussian"`): symmetric around the forecast.
    Gaussian,
    /// From the value's 2.275 % to its 97.725 % quantile (where ±2σ lies for a Gaussian),
    /// each edge a learned distance from the forecast trained with the pinball loss
    /// (`"quantile"`): no shape assumed, uneven where the errors are skewed.
    Quantile,
}

impl Uncertainty {
    pub fn is_some(self) -> bool {
        self != Uncertainty::None
    }
}

impl Serialize for Uncertainty {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Uncertainty::None => s.serialize_bool(false),
            Uncertainty::Gaussian => s.serialize_bool(true),
            Uncertainty::Quantile => s.serialize_str("quantile"),
        }
    }
}

impl<'de> Deserialize<'de> for Uncertainty {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Band;
        impl serde::de::Visitor<'_> for Band {
            type Value = Uncertainty;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("false, true (\"gaussian\") or \"quantile\"")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> std::result::Result<Uncertainty, E> {
                Ok(if v { Uncertainty::Gaussian } else { Uncertainty::None })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Uncertainty, E> {
                match v {
                    "none" => Ok(Uncertainty::None),
                    "gaussian" => Ok(Uncertainty::Gaussian),
                    "quantile" => Ok(Uncertainty::Quantile),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(Band)
    }
}

impl Default for PredictionConfig {
    fn default() -> Self {
        PredictionConfig {
            model: ModelSection::default(),
            window: 24,
            residual: true,
            stream: None,
            steps_ahead: 1,
            uncertainty: Uncertainty::None,
            calendar_inputs: 0,
            targets: Vec::new(),
            train: TrainConfig::default(),
        }
    }
}

impl PredictionConfig {
    /// The model for `channels` signals: it reads `[z ⊙ m, m]` (and the calendar inputs)
    /// and predicts every target (every signal, or the `targets`) `steps_ahead` steps
    /// ahead (with `uncertainty`, each value with its precision or its two quantile
    /// distances).
    pub fn model_config(&self, channels: usize) -> ModelConfig {
        let forecast = if self.targets.is_empty() { channels } else { self.targets.len() };
        let (inputs, outputs) = (2 * channels + self.calendar_inputs, self.steps_ahead * forecast);
        let banded = |head, precisions| ModelConfig {
            precisions,
            detach_precision: true,
            ..self.model.model_config(inputs, head, outputs)
        };
        match self.uncertainty {
            Uncertainty::Gaussian => banded(HeadKind::Gaussian, outputs),
            Uncertainty::Quantile => banded(HeadKind::Quantile, 2 * outputs),
            Uncertainty::None => self.model.model_config(inputs, HeadKind::Linear, outputs),
        }
    }
}

/// The signals a prediction model forecasts (`task.targets`), P of the C it reads: their
/// indices among the data's signals, in the data's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Targets {
    index: Vec<usize>,
    names: Vec<String>,
    /// The data's standardisation of them alone ([`Standardizer::select`]).
    scaler: Standardizer,
}

impl Targets {
    /// `wanted` among `signals` (empty: every signal), standardised as `scaler` (of every
    /// signal) standardises them.
    ///
    /// # Errors
    /// A name that is not one of the signals, or one named twice.
    pub fn among(signals: &[String], scaler: &Standardizer, wanted: &[String]) -> Result<Self> {
        for (i, name) in wanted.iter().enumerate() {
            if !signals.contains(name) {
                return Err(Error::invalid(
                    "task.targets",
                    format!("no signal `{name}` in the data; its signals are {}", signals.join(", ")),
                ));
            }
            if wanted[..i].contains(name) {
                return Err(Error::invalid("task.targets", format!("`{name}` is named twice")));
            }
        }
        let index: Vec<usize> =
            (0..signals.len()).filter(|&j| wanted.is_empty() || wanted.contains(&signals[j])).collect();
        Ok(Targets { names: index.iter().map(|&j| signals[j].clone()).collect(), scaler: scaler.select(&index), index })
    }

    /// P, the signals forecast.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether none is (never, for targets that [`Targets::among`] gives from signals).
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Their indices among the data's signals, ascending.
    pub fn indices(&self) -> &[usize] {
        &self.index
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The standardisation of the targets alone, target i at index i.
    pub fn scaler(&self) -> &Standardizer {
        &self.scaler
    }

    /// Whether they are all `channels` signals the model reads: then its forecasts can be
    /// fed back to it (a closed loop).
    fn are_every_signal(&self, channels: usize) -> bool {
        self.index.len() == channels
    }
}

/// A batch of windows, `x: [L−1, B, 2C + K]` with `target, mask, base: [B, S·P]` for the S
/// steps after the last; or of streams, `x: [T, B, 2C + K]` with `target, mask, base:
/// [T, B, S·P]`, row (t, b) for the S steps after input step t (K: the calendar inputs; P:
/// the targets).
pub struct PredictionBatch {
    x: Vec<f32>,
    steps: usize,
    batch: usize,
    target: Vec<f32>,
    mask: Vec<f32>,
    /// Added to the head's output (the last observations, or zeros).
    base: Vec<f32>,
    /// Each stream's length, where they differ.
    lengths: Option<Vec<usize>>,
}

/// Each signal's last observation as a series is read step by step, and whether it still
/// counts `reach` steps on: the residual base of a forecast, and persistence's forecast.
#[derive(Clone, Debug)]
pub(super) struct LastObserved {
    /// Per signal: (value, step) of its last observation.
    last: Vec<Option<(f32, usize)>>,
    reach: usize,
}

impl LastObserved {
    pub(super) fn new(channels: usize, reach: usize) -> Self {
        LastObserved { last: vec![None; channels], reach }
    }

    /// Signal `j` observed as `value` at `step`.
    pub(super) fn see(&mut self, j: usize, value: f32, step: usize) {
        self.last[j] = Some((value, step));
    }

    /// Every signal observed at grid step `k` of `series`.
    fn see_step(&mut self, series: &PreparedSeries, k: usize) {
        let c = self.last.len();
        for j in (0..c).filter(|&j| series.grid.observed[k * c + j]) {
            self.see(j, series.grid.values[k * c + j], k);
        }
    }

    /// Signal `j`'s last observation, if it lies fewer than `reach` steps before `now`.
    pub(super) fn within(&self, j: usize, now: usize) -> Option<f32> {
        self.last[j].filter(|&(_, at)| now - at < self.reach).map(|(v, _)| v)
    }
}

/// Persistence's mean squared error in standardised units over the ranges of `part`, for
/// each step ahead h = 1..=`ahead` and signal of `signals` (`[ahead, P]`): step k + h
/// against the signal's last observation at or before k within `reach` steps (0, the
/// mean, if none), over the observed k + h inside k's range (1 where none).
pub(super) fn persistence_mse(
    series: &PreparedSeries,
    part: &[Range<usize>],
    signals: &[usize],
    reach: usize,
    ahead: usize,
) -> Vec<f64> {
    let (c, p) = (series.grid.channels(), signals.len());
    let (values, observed) = (&series.grid.values, &series.grid.observed);
    let (mut sum, mut count) = (vec![0.0f64; ahead * p], vec![0u64; ahead * p]);
    for r in part {
        let mut last = LastObserved::new(c, reach);
        for k in r.clone() {
            last.see_step(series, k);
            for h in (1..=ahead).take_while(|h| k + h < r.end) {
                for (i, &j) in signals.iter().enumerate().filter(|(_, &j)| observed[(k + h) * c + j]) {
                    let base = last.within(j, k).unwrap_or(0.0);
                    let e = f64::from(values[(k + h) * c + j] - base);
                    sum[(h - 1) * p + i] += e * e;
                    count[(h - 1) * p + i] += 1;
                }
            }
        }
    }
    sum.iter().zip(&count).map(|(s, &n)| if n > 0 { s / n as f64 } else { 1.0 }).collect()
}

/// A batch of streams, one per range of input steps (each at most `steps` long; a shorter
/// one is padded with zeros, mask 0, and given its length), input step t's targets the
/// `ahead` steps after it, block h − 1 for step t + h, of the signals `targets` (indices;
/// mask 0 from the end of the part the stream's range belongs to, `part_end`, on). With
/// `residual`, row (t, b)'s base, the same in every block, is each target's last
/// observation among input steps t − reach + 1 ..= t of its entity (as
/// [`PredictionStream`] keeps it; the windows' rule for a window ending at t).
fn make_stream_batch(
    series: &PreparedSeries,
    streams: &[Range<usize>],
    steps: usize,
    reach: usize,
    residual: bool,
    ahead: usize,
    targets: &[usize],
    part_end: impl Fn(usize) -> usize,
) -> PredictionBatch {
    let (c, p) = (series.grid.channels(), targets.len());
    let (b, row_width, width) = (streams.len(), ahead * p, 2 * c + series.calendar.width());
    let mut x = vec![0.0f32; steps * b * width];
    let rows = steps * b * row_width;
    let (mut target, mut mask, mut base) = (vec![0.0f32; rows], vec![0.0f32; rows], vec![0.0f32; rows]);
    let (values, observed) = (&series.grid.values, &series.grid.observed);
    for (row, stream) in streams.iter().enumerate() {
        let (s, end) = (stream.start, part_end(stream.start));
        let mut last = LastObserved::new(c, reach);
        for k in series.entity_of(s).start.max((s + 1).saturating_sub(reach))..s {
            last.see_step(series, k);
        }
        for t in 0..stream.len().min(steps) {
            let k = s + t;
            last.see_step(series, k);
            let xi = (t * b + row) * width;
            for j in 0..c {
                let m = observed[k * c + j] as u8 as f32;
                x[xi + j] = values[k * c + j] * m;
                x[xi + c + j] = m;
            }
            series.write_calendar(k, &mut x[xi + 2 * c..xi + width]);
            for h in 1..=ahead {
                let at = (t * b + row) * row_width + (h - 1) * p;
                for (i, &j) in targets.iter().enumerate() {
                    if k + h < end {
                        mask[at + i] = observed[(k + h) * c + j] as u8 as f32;
                        target[at + i] = values[(k + h) * c + j];
                    }
                    if let Some(v) = last.within(j, k).filter(|_| residual) {
                        base[at + i] = v;
                    }
                }
            }
        }
    }
    let lengths = streams.iter().any(|r| r.len() < steps).then(|| streams.iter().map(|r| r.len().min(steps)).collect());
    PredictionBatch { x, steps, batch: b, target, mask, base, lengths }
}

/// The end of the range of `part` holding `step` (the step after it where none does).
fn part_end(part: &[Range<usize>], step: usize) -> usize {
    part.iter().find(|r| r.contains(&step)).map_or(step + 1, |r| r.end)
}

/// Windows of `window − 1` input steps from each start inside `part`, the `ahead` steps
/// after them the targets (of the signals `targets` only; zeros with mask 0 from the end
/// of the start's range of `part`: a forecast): a batch of streams that long, with only its
/// last step's targets, masks and base (each target's last observation in the window, or
/// 0, the training mean, if the window never saw it).
fn make_batch(
    series: &PreparedSeries,
    part: &[Range<usize>],
    starts: &[usize],
    window: usize,
    (residual, ahead): (bool, usize),
    targets: &[usize],
) -> PredictionBatch {
    let windows: Vec<Range<usize>> = starts.iter().map(|&s| s..s + window - 1).collect();
    let reach = window - 1;
    let mut batch = make_stream_batch(series, &windows, reach, reach, residual, ahead, targets, |s| part_end(part, s));
    let last = (window - 2) * starts.len() * ahead * targets.len();
    for v in [&mut batch.target, &mut batch.mask, &mut batch.base] {
        v.drain(..last);
    }
    batch
}

/// Standardised predictions `[B, C]` from the head's output at the last step
/// ([`HeadSteps::Last`]: the head reads nothing else).
fn predictions(mean: &[f32], base: &[f32]) -> Vec<f32> {
    debug_assert_eq!(mean.len(), base.len());
    mean.iter().zip(base).map(|(p, b)| p + b).collect()
}

/// Prediction as a [`Task`] for the trainer.
pub struct PredictionTask<'a> {
    pub series: &'a PreparedSeries,
    pub window: usize,
    pub residual: bool,
    train_starts: Vec<usize>,
    /// Under [`StreamTraining`]: the training streams' input steps.
    train_streams: Vec<Range<usize>>,
    stream: Option<StreamTraining>,
    /// S: steps each training target reaches ahead (see [`PredictionTask::forecasting`]).
    steps_ahead: usize,
    /// Conformal scale factors its streams apply to every band
    /// ([`PredictionTask::with_calibration`]).
    pub(super) calibration: Option<BandCalibration>,
    /// The signals forecast ([`PredictionTask::with_targets`]; every one unless told).
    targets: Targets,
}

impl<'a> PredictionTask<'a> {
    /// On data a run has not seen ([`PreparedSeries::is_unseen`]) the task evaluates and
    /// forecasts; it has nothing to train on.
    ///
    /// # Errors
    /// A window shorter than 2 steps or longer than the training or validation part.
    pub fn new(series: &'a PreparedSeries, window: usize, residual: bool) -> Result<Self> {
        if window < 2 {
            return Err(Error::invalid("window", "a prediction window needs at least 2 steps"));
        }
        let train_starts = match series.is_unseen() {
            true => Vec::new(),
            false => {
                series.window_starts(&series.validation, window, 1, "validation")?;
                series.window_starts(&series.train, window, 1, "training")?
            }
        };
        Ok(PredictionTask {
            series,
            window,
            residual,
            train_starts,
            train_streams: Vec::new(),
            stream: None,
            steps_ahead: 1,
            calibration: None,
            targets: Targets::among(&series.grid.signals, &series.scaler, &[])?,
        })
    }

    /// The task forecasting the signals named `targets` alone (empty: every signal), from
    /// every signal ([`Targets`]).
    ///
    /// # Errors
    /// A name that is not one of the data's signals, or one named twice.
    pub fn with_targets(mut self, targets: &[String]) -> Result<Self> {
        self.targets = Targets::among(&self.series.grid.signals, &self.series.scaler, targets)?;
        Ok(self)
    }

    /// The signals forecast.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// The task with its forecasts' bands scaled by `calibration` (fitted by
    /// [`PredictionTask::calibrate_bands`]; `None`: the model's own bands).
    pub fn with_calibration(mut self, calibration: Option<BandCalibration>) -> Self {
        self.calibration = calibration;
        self
    }

    /// Trains a direct forecast of the next `steps_ahead` steps from every state (see the
    /// module's documentation). Evaluation reads S from the model it is given.
    ///
    /// # Errors
    /// Zero steps ahead.
    pub fn forecasting(mut self, steps_ahead: usize) -> Result<Self> {
        if steps_ahead == 0 {
            return Err(Error::invalid("task.steps_ahead", "a forecast reaches at least one step ahead"));
        }
        self.steps_ahead = steps_ahead;
        Ok(self)
    }

    /// Persistence's mean squared error in standardised units on the training part, for
    /// each step ahead h = 1..=`ahead` and target (`[ahead, P]`): step k + h against the
    /// last observation at or before k within `window − 1` steps (0, the mean, if none),
    /// over the observed k + h inside k's range.
    pub fn persistence_variance(&self, ahead: usize) -> Vec<f64> {
        persistence_mse(self.series, &self.series.train, &self.targets.index, self.window - 1, ahead)
    }

    /// S of a model for this series: its outputs per step over the targets.
    ///
    /// # Errors
    /// Outputs that are not a whole number of steps of every target.
    pub fn steps_ahead_of(&self, model: &SequenceModel<f32>) -> Result<usize> {
        steps_ahead_for(model, self.targets.len())
    }

    /// The task as [`PredictionConfig`] sets it: on windows, or on streams.
    ///
    /// # Errors
    /// As [`PredictionTask::new`], [`PredictionTask::with_targets`] and
    /// [`PredictionTask::on_streams`]; a config reading other calendar inputs than the data
    /// has.
    pub fn from_config(series: &'a PreparedSeries, config: &PredictionConfig) -> Result<Self> {
        super::check_calendar_inputs(series, config.calendar_inputs)?;
        let task = PredictionTask::new(series, config.window, config.residual)?
            .with_targets(&config.targets)?
            .forecasting(config.steps_ahead)?;
        match config.stream {
            Some(stream) => task.on_streams(stream),
            None => Ok(task),
        }
    }

    /// Trains on streams instead of windows: the input steps of each training range (every
    /// step but its last, which only has a target) cut into consecutive streams of
    /// `stream.steps` steps, the last of a range shorter (a batch runs each stream to its
    /// own length), validated by [`PredictionTask::evaluate_streamed`]. On data the run has
    /// not seen there is nothing to train on: the task forecasts as the model was trained,
    /// over each whole entity ([`PredictionTask::forecast`]).
    ///
    /// # Errors
    /// A bad truncation, or a training part without two steps in a range.
    pub fn on_streams(mut self, stream: StreamTraining) -> Result<Self> {
        stream.truncation().check()?;
        if !self.series.is_unseen() {
            let inputs = self.series.train.iter().map(|r| r.start..r.end.saturating_sub(1).max(r.start));
            self.train_streams = super::cut_into_streams(inputs, stream.steps);
            if self.train_streams.is_empty() {
                return Err(Error::invalid("task.stream", "no training range has a step and the step after it"));
            }
        }
        self.stream = Some(stream);
        Ok(self)
    }

    /// How far back `model`'s forecast reads ([`LookBack`]), over `count` stretches of
    /// `steps` input steps from `part` (named `part_name` in errors), each inside one of its
    /// ranges and their starts spread evenly over every place one fits (fewer where fewer
    /// fit), read as the model reads them; the probes drawn from `seed`. It measures the
    /// network: a residual forecast's base, the last observation, adds no gradient of its
    /// own.
    ///
    /// # Errors
    /// A part with no range of `steps` steps, or a model that reads the future.
    pub fn look_back(
        &self,
        model: &SequenceModel<f32>,
        (part_name, part): (&str, &[Range<usize>]),
        steps: usize,
        count: usize,
        seed: u64,
    ) -> Result<LookBack> {
        super::look_back_over(self.series, model, (part_name, part), (steps, count, seed), |stretches| {
            make_stream_batch(self.series, stretches, steps, 1, false, 1, &[], |s| part_end(part, s)).x
        })
    }

    /// Metrics of `model` on every window of `part`: of its forecasts of the step after
    /// each window.
    ///
    /// # Errors
    /// A part shorter than a window, a model that does not fit.
    pub fn evaluate(&self, model: &SequenceModel<f32>, part: &[Range<usize>]) -> Result<Metrics> {
        Ok(self.evaluate_ahead(model, part)?.swap_remove(0))
    }

    /// [`PredictionTask::evaluate`] for each of the S steps a direct `model` forecasts:
    /// index h − 1 holds the forecasts of the h-th step after each window (targets inside
    /// `part` only).
    ///
    /// # Errors
    /// As [`PredictionTask::evaluate`].
    pub fn evaluate_ahead(&self, model: &SequenceModel<f32>, part: &[Range<usize>]) -> Result<Vec<Metrics>> {
        let ahead = self.steps_ahead_of(model)?;
        let starts = self.series.window_starts(part, self.window, 1, "evaluated")?;
        let mut acc = vec![ErrorAccumulator::new(self.targets.len()); ahead];
        for chunk in starts.chunks(512) {
            let batch = make_batch(self.series, part, chunk, self.window, (self.residual, ahead), &self.targets.index);
            let out = model.forward_at(&self.input(&batch), HeadSteps::Last)?;
            let pred = predictions(&out.mean, &batch.base);
            self.add_blocks(&mut acc, &pred, &batch.target, &batch.mask, &out.precision);
        }
        Ok(acc.iter().map(ErrorAccumulator::finish).collect())
    }

    /// Adds rows of S blocks of `[P]` to the accumulators of the S steps ahead, each value
    /// with its band where `positive` (the head's λ̂ or quantile distances of the rows) is
    /// not empty.
    fn add_blocks(&self, acc: &mut [ErrorAccumulator], pred: &[f32], target: &[f32], mask: &[f32], positive: &[f32]) {
        let (c, scaler) = (self.targets.len(), &self.targets.scaler);
        let spread =
            Spread::of(positive, pred.len(), acc.len() * c).calibrated_rows(self.calibration.as_ref(), acc.len() * c);
        for (i, ((p, t), m)) in pred.chunks_exact(c).zip(target.chunks_exact(c)).zip(mask.chunks_exact(c)).enumerate() {
            spread.add_to(&mut acc[i % acc.len()], i * c..(i + 1) * c, p, t, m, scaler);
        }
    }

    /// Metrics of a causal `model` run as it is deployed: over each entity from its first
    /// step, its state carried throughout, scored on the same entries of `part` as
    /// [`PredictionTask::evaluate`] (the step after every window inside the part).
    ///
    /// # Errors
    /// A model that cannot stream (coupled bidirectional), a part shorter than a window.
    pub fn evaluate_streamed(&self, model: &SequenceModel<f32>, part: &[Range<usize>]) -> Result<Metrics> {
        Ok(self.evaluate_streamed_ahead(model, part)?.swap_remove(0))
    }

    /// [`PredictionTask::evaluate_streamed`] for each of the S steps a direct `model`
    /// forecasts, as [`PredictionTask::evaluate_ahead`].
    ///
    /// # Errors
    /// As [`PredictionTask::evaluate_streamed`].
    pub fn evaluate_streamed_ahead(&self, model: &SequenceModel<f32>, part: &[Range<usize>]) -> Result<Vec<Metrics>> {
        let ahead = self.steps_ahead_of(model)?;
        self.series.window_starts(part, self.window, 1, "evaluated")?;
        let mut acc = vec![ErrorAccumulator::new(self.targets.len()); ahead];
        for r in part.iter().filter(|r| r.len() >= self.window) {
            let targets = r.start + self.window - 1..r.end;
            let Streamed { pred, precision, batch, rows } = self.streamed(model, targets)?;
            self.add_blocks(&mut acc, &pred, &batch.target[rows.clone()], &batch.mask[rows], &precision);
        }
        Ok(acc.iter().map(ErrorAccumulator::finish).collect())
    }

    /// Standardised forecasts from the steps before `targets` (inside one entity) by a
    /// causal `model` run from the entity's first step: `[n, S·P]`, row i forecasting
    /// `targets.start + i` and the S − 1 steps after it; the head's precisions of those rows
    /// (empty without a Gaussian head); and the stream batch with the rows of its targets
    /// and masks that belong to them (none after `targets`).
    fn streamed(&self, model: &SequenceModel<f32>, targets: Range<usize>) -> Result<Streamed> {
        if !model.is_causal() {
            return Err(Error::invalid("streamed evaluation", "a coupled bidirectional model reads the future"));
        }
        let ahead = self.steps_ahead_of(model)?;
        let from = self.series.entity_of(targets.start).start;
        let row = ahead * self.targets.len();
        // input steps from..targets.end − 1, row t forecasting from step from + t + 1 on
        let inputs = from..targets.end - 1;
        let batch = make_stream_batch(
            self.series,
            std::slice::from_ref(&inputs),
            inputs.len(),
            self.window - 1,
            self.residual,
            ahead,
            &self.targets.index,
            |_| targets.end,
        );
        // the head on the scored steps only: the state runs through the steps before them
        let first = targets.start - 1 - from;
        let out = model.forward_at(&self.input(&batch), HeadSteps::From(first))?;
        let rows = first * row..batch.steps * row;
        let pred = predictions(&out.mean, &batch.base[rows.clone()]);
        Ok(Streamed { pred, precision: out.precision, batch, rows })
    }

    /// Forecasts of the consecutive steps `targets` of one entity, each at least `window −
    /// 1` steps after its start, standardised `[n, P]` (P: the targets): the model's (streamed from the
    /// entity's first step when it is causal, from each step's window otherwise), last
    /// observation carried forward's, and the truth with its observation mask.
    ///
    /// # Errors
    /// Steps outside one entity or too close to its start, a model that does not fit.
    pub fn forecasts(&self, model: &SequenceModel<f32>, targets: Range<usize>) -> Result<Forecasts> {
        let entity = self.series.entity_of(targets.start);
        let inputs = self.window - 1;
        if targets.is_empty() || targets.start < entity.start + inputs || targets.end > entity.end {
            return Err(Error::invalid(
                "forecasts",
                format!("steps {targets:?} are not inside one entity, {inputs} steps after its start"),
            ));
        }
        let starts: Vec<usize> = (targets.start - inputs..targets.end - inputs).collect();
        let part = std::slice::from_ref(&entity);
        let windows = make_batch(self.series, part, &starts, self.window, (true, 1), &self.targets.index);
        let (ahead, c) = (self.steps_ahead_of(model)?, self.targets.len());
        let (all, precision) = if model.is_causal() {
            let Streamed { pred, precision, .. } = self.streamed(model, targets)?;
            (pred, precision)
        } else {
            let batch =
                make_batch(self.series, part, &starts, self.window, (self.residual, ahead), &self.targets.index);
            let out = model.forward_at(&self.input(&batch), HeadSteps::Last)?;
            (predictions(&out.mean, &batch.base), out.precision)
        };
        let next_step = |v: &[f32]| v.chunks_exact(ahead * c).flat_map(|row| &row[..c]).copied().collect();
        let spread = Spread::of(&precision, all.len(), ahead * c).map(next_step);
        let model: Vec<f32> = next_step(&all);
        let (low, high) = spread.edges(&model);
        Ok(Forecasts { model, low, high, persistence: windows.base, truth: windows.target, observed: windows.mask })
    }
}

/// softplus⁻¹(y) = ln(eʸ − 1), for y > 0.
fn inverse_softplus(y: f64) -> f64 {
    y + (-(-y).exp_m1()).ln()
}

/// σ = 1/√λ̂ of each of `values` forecasts, whose precisions `precision` each cover a
/// block of `values / precision.len()` consecutive ones (empty without precisions).
fn sigma_per_value(precision: &[f32], values: usize) -> Vec<f32> {
    if precision.is_empty() {
        return Vec::new();
    }
    let block = values / precision.len();
    precision.iter().flat_map(|l| std::iter::repeat_n(1.0 / l.sqrt(), block)).collect()
}

/// Whether a head's positive outputs for `values` forecasts are a quantile head's
/// distances, two per value (a Gaussian head's precisions number at most one per value:
/// they split the outputs into blocks).
fn are_quantile_distances(positive: &[f32], values: usize) -> bool {
    positive.len() == 2 * values && values > 0
}

/// The band of each of a run of standardised forecast values, from the head's positive
/// outputs ([`Uncertainty`]).
#[derive(Clone, Debug, Default, PartialEq)]
enum Spread {
    #[default]
    None,
    /// σ of each value (a Gaussian head): the band is ±2σ.
    Sigma(Vec<f32>),
    /// The distances from each value down to its 2.275 % and up to its 97.725 % quantile.
    Quantiles { below: Vec<f32>, above: Vec<f32> },
}

impl Spread {
    /// Of `values` forecasts in rows of `outputs`, from the head's positive outputs of
    /// those rows: a quantile head's are twice as many as the values (each row's O
    /// distances below, then its O above), a Gaussian head's precisions at most as many.
    fn of(positive: &[f32], values: usize, outputs: usize) -> Spread {
        if positive.is_empty() {
            return Spread::None;
        }
        if !are_quantile_distances(positive, values) {
            return Spread::Sigma(sigma_per_value(positive, values));
        }
        let side =
            |offset: usize| (0..values).map(|i| positive[i / outputs * 2 * outputs + offset + i % outputs]).collect();
        Spread::Quantiles { below: side(0), above: side(outputs) }
    }

    /// Each of its vectors through `f` (e.g. a selection of values).
    fn map(&self, f: impl Fn(&[f32]) -> Vec<f32>) -> Spread {
        match self {
            Spread::None => Spread::None,
            Spread::Sigma(s) => Spread::Sigma(f(s)),
            Spread::Quantiles { below, above } => Spread::Quantiles { below: f(below), above: f(above) },
        }
    }

    /// Every value's reach scaled by its conformal factor κ (value i of `[H, C]` row by
    /// row: [`BandCalibration::factor`]); itself without a calibration.
    fn calibrated(self, calibration: Option<&BandCalibration>) -> Spread {
        self.calibrated_rows(calibration, usize::MAX)
    }

    /// [`Spread::calibrated`] for forecasts of `per_forecast` values each, one after
    /// another (value i scaled by κ of i mod `per_forecast`).
    fn calibrated_rows(self, calibration: Option<&BandCalibration>, per_forecast: usize) -> Spread {
        let Some(calibration) = calibration else { return self };
        let scale = |v: &[f32]| v.iter().enumerate().map(|(i, &d)| d * calibration.factor(i % per_forecast)).collect();
        self.map(scale)
    }

    /// The band's edges around the first values of `z` that have one, standardised.
    fn edges(&self, z: &[f32]) -> (Vec<f32>, Vec<f32>) {
        match self {
            Spread::None => (Vec::new(), Vec::new()),
            Spread::Sigma(s) => s.iter().zip(z).map(|(&s, &z)| (z - 2.0 * s, z + 2.0 * s)).unzip(),
            Spread::Quantiles { below, above } => {
                below.iter().zip(above).zip(z).map(|((&b, &a), &z)| (z - b, z + a)).unzip()
            }
        }
    }

    /// The scales of a draw below and above each value, σ·ε on ε's side: σ both ways for a
    /// Gaussian; d⁻/2 and d⁺/2 for a quantile band (the split normal whose 2.275 % and
    /// 97.725 % quantiles are its edges). None without a band.
    fn draw_scales(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        match self {
            Spread::None => None,
            Spread::Sigma(s) => Some((s.clone(), s.clone())),
            Spread::Quantiles { below, above } => {
                let half = |v: &[f32]| v.iter().map(|d| 0.5 * d).collect();
                Some((half(below), half(above)))
            }
        }
    }

    /// Adds standardised forecasts `pred` of `target` (`mask`: the scored ones), values
    /// `at` of this spread's, to `acc` with their band.
    fn add_to(
        &self,
        acc: &mut ErrorAccumulator,
        at: Range<usize>,
        pred: &[f32],
        target: &[f32],
        mask: &[f32],
        scaler: &Standardizer,
    ) {
        match self {
            Spread::None => acc.add(pred, target, mask, scaler),
            Spread::Sigma(s) => acc.add_with_sigma(pred, target, mask, &s[at], scaler),
            Spread::Quantiles { .. } => {
                let (low, high) = self.map(|v| v[at.clone()].to_vec()).edges(pred);
                acc.add_with_band(pred, target, mask, &low, &high, scaler)
            }
        }
    }
}

/// What [`PredictionTask::streamed`] returns.
struct Streamed {
    pred: Vec<f32>,
    precision: Vec<f32>,
    batch: PredictionBatch,
    rows: Range<usize>,
}

/// A horizon of at least one step.
fn check_horizon(horizon: usize) -> Result<()> {
    if horizon == 0 {
        return Err(Error::invalid("horizon", "forecasts reach at least one step ahead"));
    }
    Ok(())
}

/// How [`PredictionStream::step_ahead`] reaches `horizon` steps ahead with a model that
/// forecasts `direct` steps from each state, in words.
pub fn horizon_method(direct: usize, horizon: usize) -> String {
    match direct {
        s if horizon <= s => format!("direct: the model's own {s} forecasts from each streamed state"),
        1 => "closed loop: streamed, then fed its own forecasts".to_string(),
        s => format!("direct for {s} steps from each streamed state, then closed loop (fed its own forecasts)"),
    }
}

/// A grouping of forecasts by the local time of the step they forecast (UTC plus the
/// data's calendar offset, [`crate::data::Calendar`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeGroup {
    /// 24 groups, 00 to 23.
    HourOfDay,
    /// 7 groups, Monday to Sunday.
    Weekday,
    /// 12 groups, January to December.
    Month,
}

impl TimeGroup {
    pub const ALL: [TimeGroup; 3] = [TimeGroup::HourOfDay, TimeGroup::Weekday, TimeGroup::Month];

    /// Its name: `hour`, `weekday`, `month` (`recur eval --by`, its tables and files).
    pub fn name(self) -> &'static str {
        match self {
            TimeGroup::HourOfDay => "hour",
            TimeGroup::Weekday => "weekday",
            TimeGroup::Month => "month",
        }
    }

    /// The grouping of that [`TimeGroup::name`].
    pub fn named(name: &str) -> Option<TimeGroup> {
        TimeGroup::ALL.into_iter().find(|g| g.name() == name)
    }

    /// The groups' names, in order.
    pub fn labels(self) -> Vec<String> {
        match self {
            TimeGroup::HourOfDay => (0..24).map(|h| format!("{h:02}")).collect(),
            TimeGroup::Weekday => ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].map(String::from).to_vec(),
            TimeGroup::Month => ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
                .map(String::from)
                .to_vec(),
        }
    }

    /// The group of local time `seconds` (since 1970-01-01).
    fn of(self, seconds: i64) -> usize {
        match self {
            TimeGroup::HourOfDay => crate::data::calendar::hour_of_day(seconds),
            TimeGroup::Weekday => crate::data::calendar::weekday(seconds),
            TimeGroup::Month => crate::data::calendar::month(seconds),
        }
    }

    /// The group of grid step k of `series`, by its local time (UTC plus the data's
    /// calendar offset).
    ///
    /// # Errors
    /// Data whose times are elapsed since each entity's start (no time of day).
    pub fn of_steps(self, series: &PreparedSeries) -> Result<impl Fn(usize) -> usize + '_> {
        if series.grid.clock != Clock::Calendar {
            return Err(Error::invalid(
                "errors by time",
                format!("the data's times are {}: they have no time of day", series.grid.clock.description()),
            ));
        }
        let offset = series.calendar.utc_offset_seconds;
        Ok(move |k| self.of(series.step_time(k) + offset))
    }
}

/// Errors by the local time of the step scored (a prediction's forecast one step ahead,
/// [`PredictionTask::evaluate_by_time`]; a reconstruction's hidden value,
/// [`crate::tasks::ReconstructionTask::evaluate_by_time`]): per group (index as
/// [`TimeGroup::labels`]), the model's and its task's first baseline's (`baseline`:
/// persistence, or linear interpolation).
pub struct ErrorsByTime {
    pub group: TimeGroup,
    pub model: Vec<Metrics>,
    pub baseline_name: String,
    pub baseline: Vec<Metrics>,
}

/// Forecasts scored 1..=horizon steps ahead (see
/// [`PredictionTask::evaluate_horizon`]); index h − 1 holds h steps ahead.
pub struct HorizonScores {
    /// The model's forecasts from the origin (direct, then fed its own forecasts).
    pub model: Vec<Metrics>,
    /// Persistence: each signal's last observation at the origin (within the window's
    /// reach; the training mean if none), the same forecast for every step ahead.
    pub persistence: Vec<Metrics>,
    /// Seasonal persistence, when the grid divides a day into whole steps (`period` of
    /// them): step k forecast by step k − m·period, the latest such step at or before the
    /// origin, where observed (persistence's forecast where not).
    pub seasonal: Option<(usize, Vec<Metrics>)>,
}

impl PredictionTask<'_> {
    /// Metrics of a causal `model` forecasting 1..=`horizon` steps ahead. The model runs
    /// as deployed, over each entity from its first step with its state carried; from
    /// every origin n whose next step [`PredictionTask::evaluate`] scores in `part`, its
    /// forecasts of the steps after n ([`PredictionStream::step_ahead`]: direct for the S
    /// steps it forecasts, then in closed loop, fed its own forecasts) are scored against
    /// the truth there (targets inside the part only). One step ahead this is
    /// [`PredictionTask::evaluate_streamed`] and persistence is the windows' last
    /// observation carried forward.
    ///
    /// # Errors
    /// A zero horizon, a model that cannot stream, a part shorter than a window.
    pub fn evaluate_horizon(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        horizon: usize,
    ) -> Result<HorizonScores> {
        self.evaluate_horizon_sampled(model, part, horizon, 0, 0)
    }

    /// [`PredictionTask::evaluate_horizon`], the steps past the direct ones with the band of
    /// `paths` sample paths ([`PredictionStream::step_forecast_sampled`], drawn from
    /// `seed`) where `paths` > 0: the same forecasts, and the band's coverage and interval
    /// score at every step ahead.
    ///
    /// # Errors
    /// As [`PredictionTask::evaluate_horizon`]; paths for a model without σ.
    pub fn evaluate_horizon_sampled(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        horizon: usize,
        paths: usize,
        seed: u64,
    ) -> Result<HorizonScores> {
        let (c, p, scaler) = (self.series.grid.channels(), self.targets.len(), &self.targets.scaler);
        let (values, observed) = (&self.series.grid.values, &self.series.grid.observed);
        let mut ours = vec![ErrorAccumulator::new(p); horizon];
        let (mut persistence, mut seasonal) = (ours.clone(), ours.clone());
        let day = 86_400 / self.series.grid.bin_seconds.max(1);
        let period = (86_400 % self.series.grid.bin_seconds.max(1) == 0 && day >= 2).then_some(day as usize);
        let standardised = |row: &[f32]| scaler.apply_row(row);
        let sampling = (horizon, paths, seed);
        self.forecasts_from_origins(model, part, sampling, self.calibration.as_ref(), |n, entity, ahead, carried| {
            for (h, forecast) in (1..=ahead.values.len() / p).zip(ahead.values.chunks_exact(p)) {
                let k = n + h;
                let (truth, mask) = self.truth_at(k);
                let ours_z = standardised(forecast);
                let row = (h - 1) * p..h * p;
                // a floor lifts the forecast in `values`, so its band is read from its edges
                let sigma = ahead.sigma_standardised.get(row.clone()).filter(|_| !scaler.has_floor());
                match (sigma, ahead.low.get(row.clone())) {
                    (Some(s), _) => ours[h - 1].add_with_sigma(&ours_z, &truth, &mask, s, scaler),
                    (None, Some(low)) => {
                        let (low, high) = (standardised(low), standardised(&ahead.high[row]));
                        ours[h - 1].add_with_band(&ours_z, &truth, &mask, &low, &high, scaler)
                    }
                    (None, None) => ours[h - 1].add(&ours_z, &truth, &mask, scaler),
                }
                persistence[h - 1].add(carried, &truth, &mask, scaler);
                if let Some(p) = period {
                    // k − m·p ≤ n for the smallest m ≥ 1: ⌈h / p⌉ periods back
                    let back = k.checked_sub(h.div_ceil(p) * p).filter(|&b| b >= entity.start);
                    let same_time: Vec<f32> = (self.targets.index.iter().enumerate())
                        .map(|(i, &j)| match back.filter(|&b| observed[b * c + j]) {
                            Some(b) => values[b * c + j],
                            None => carried[i],
                        })
                        .collect();
                    seasonal[h - 1].add(&same_time, &truth, &mask, scaler);
                }
            }
            Ok(())
        })?;
        let finish = |acc: &[ErrorAccumulator]| acc.iter().map(ErrorAccumulator::finish).collect();
        Ok(HorizonScores {
            model: finish(&ours),
            persistence: finish(&persistence),
            seasonal: period.map(|p| (p, finish(&seasonal))),
        })
    }

    /// A causal `model`'s forecasts one step ahead over `part`, as deployed (streamed, as
    /// [`PredictionTask::evaluate_horizon`] runs it; its bands scaled by the task's
    /// calibration), and persistence's, scored by the local time of the step forecast: when
    /// in the day or the week a model errs (a shift change, the morning rush). The groups
    /// pool to [`PredictionTask::evaluate_horizon`]'s one step ahead.
    ///
    /// # Errors
    /// Data whose times are elapsed since each entity's start (no time of day); as
    /// [`PredictionTask::evaluate_horizon`].
    pub fn evaluate_by_time(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        group: TimeGroup,
    ) -> Result<ErrorsByTime> {
        let group_of = group.of_steps(self.series)?;
        let (p, scaler) = (self.targets.len(), &self.targets.scaler);
        let groups = group.labels().len();
        let (mut ours, mut persistence) =
            (vec![ErrorAccumulator::new(p); groups], vec![ErrorAccumulator::new(p); groups]);
        self.forecasts_from_origins(model, part, (1, 0, 0), self.calibration.as_ref(), |n, _, ahead, carried| {
            let k = n + 1;
            let g = group_of(k);
            let (truth, mask) = self.truth_at(k);
            ours[g].add(&scaler.apply_row(&ahead.values[..p]), &truth, &mask, scaler);
            persistence[g].add(carried, &truth, &mask, scaler);
            Ok(())
        })?;
        let finish = |acc: &[ErrorAccumulator]| acc.iter().map(ErrorAccumulator::finish).collect();
        Ok(ErrorsByTime {
            group,
            model: finish(&ours),
            baseline_name: "persistence".into(),
            baseline: finish(&persistence),
        })
    }

    /// Grid step `k`'s standardised values of the targets and their mask (1 where
    /// observed): what a forecast of the step is scored against.
    pub(super) fn truth_at(&self, k: usize) -> (Vec<f32>, Vec<f32>) {
        let (c, grid) = (self.series.grid.channels(), &self.series.grid);
        let at = self.targets.index.iter().map(|&j| k * c + j);
        (at.clone().map(|i| grid.values[i]).collect(), at.map(|i| grid.observed[i] as u8 as f32).collect())
    }

    /// Split-conformal factors for the bands of a causal `model` with a band, 1..=`horizon`
    /// steps ahead (past the direct steps from `paths` sample paths, drawn from `seed`),
    /// fitted on `part` — one the model did not train on, the validation part — as
    /// [`PredictionTask::evaluate_horizon_sampled`] forecasts it (see
    /// [`crate::tasks::calibration`]); this task's own calibration is not applied to them.
    ///
    /// # Errors
    /// As [`PredictionTask::evaluate_horizon_sampled`]; a model without a band; a horizon
    /// past the direct steps without paths; a step and signal never scored.
    pub fn calibrate_bands(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        horizon: usize,
        paths: usize,
        seed: u64,
    ) -> Result<BandCalibration> {
        if !model.config().head.has_positive_branch() {
            return Err(Error::invalid("band calibration", "the model has no band (task.uncertainty)"));
        }
        let direct = self.steps_ahead_of(model)?;
        if horizon > direct && paths == 0 {
            return Err(Error::invalid(
                "band calibration",
                format!("{horizon} steps ahead: past the model's {direct} direct steps a band needs sample paths"),
            ));
        }
        let (c, p, scaler) = (self.series.grid.channels(), self.targets.len(), &self.targets.scaler);
        let (values, observed) = (&self.series.grid.values, &self.series.grid.observed);
        let mut scores = vec![Vec::new(); horizon * p];
        self.forecasts_from_origins(model, part, (horizon, paths, seed), None, |n, _, ahead, _| {
            for (i, ((&x, &low), &high)) in ahead.values.iter().zip(&ahead.low).zip(&ahead.high).enumerate() {
                let (k, t) = (n + 1 + i / p, i % p);
                let j = self.targets.index[t];
                if observed[k * c + j] {
                    let z = |v: f32| scaler.apply(t, v);
                    scores[i].push(band_score(z(x), z(low), z(high), values[k * c + j]));
                }
            }
            Ok(())
        })?;
        BandCalibration::fit(self.targets.names.clone(), scores, BAND_ALPHA, paths)
    }

    /// Runs `model` as deployed over each range of `part` (its entity from the first step,
    /// the state carried; its bands scaled by `calibration`) and hands every origin n whose
    /// next step it scores — with the range of its entity, its forecast of the next
    /// min(`horizon` ≥ 1, steps left in the range) steps
    /// ([`PredictionStream::step_forecast_with_paths`] with `paths`, drawn from `seed`) and
    /// each target's last observation within the window, standardised — to `visit`.
    fn forecasts_from_origins(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        (horizon, paths, seed): (usize, usize, u64),
        calibration: Option<&BandCalibration>,
        mut visit: impl FnMut(usize, &Range<usize>, &Forecast, &[f32]) -> Result<()>,
    ) -> Result<()> {
        check_horizon(horizon)?;
        let mut rng = Rng::new(seed);
        self.series.window_starts(part, self.window, 1, "evaluated")?;
        let (c, reach) = (self.series.grid.channels(), self.window - 1);
        for r in part.iter().filter(|r| r.len() >= self.window) {
            let mut live = self.stream_with(model, calibration)?;
            let mut last = LastObserved::new(c, reach);
            let entity = self.series.entity_of(r.start);
            live.at(self.series.step_time(entity.start));
            for n in entity.start..r.end - 1 {
                let seen = self.series.original_step(n);
                last.see_step(self.series, n);
                if n + 1 < r.start + reach {
                    live.step(&seen)?;
                    continue;
                }
                let steps_ahead = horizon.min(r.end - 1 - n);
                let ahead = live.step_forecast_with_paths(&seen, steps_ahead, paths, &mut rng)?;
                let carried: Vec<f32> = self.targets.index.iter().map(|&j| last.within(j, n).unwrap_or(0.0)).collect();
                visit(n, &entity, &ahead, &carried)?;
            }
        }
        Ok(())
    }

    /// Forecasts of the `horizon` steps after the end of each entity, in original units:
    /// (entity, its forecast). A causal `model` runs over the whole entity with its state
    /// carried, then forecasts as [`PredictionStream::step_forecast`] does. One step ahead,
    /// for a task trained on streams, this is [`PredictionTask::forecast`].
    ///
    /// # Errors
    /// A zero horizon, a model that cannot stream.
    pub fn forecast_ahead(&self, model: &SequenceModel<f32>, horizon: usize) -> Result<Vec<(String, Forecast)>> {
        self.forecast_ahead_sampled(model, horizon, 0, 0)
    }

    /// [`PredictionTask::forecast_ahead`], with the band of `paths` sample paths past the
    /// direct steps where `paths` > 0 ([`PredictionStream::step_forecast_sampled`], drawn
    /// from `seed`).
    ///
    /// # Errors
    /// As [`PredictionTask::forecast_ahead`]; paths for a model without σ.
    pub fn forecast_ahead_sampled(
        &self,
        model: &SequenceModel<f32>,
        horizon: usize,
        paths: usize,
        seed: u64,
    ) -> Result<Vec<(String, Forecast)>> {
        check_horizon(horizon)?;
        let mut rng = Rng::new(seed);
        let mut out = Vec::new();
        for (name, steps) in &self.series.entities {
            let mut live = self.stream(model)?;
            let Some(last) = steps.clone().last() else { continue };
            live.at(self.series.step_time(steps.start));
            for n in steps.start..last {
                live.step(&self.series.original_step(n))?;
            }
            let step = self.series.original_step(last);
            out.push((name.clone(), live.step_forecast_with_paths(&step, horizon, paths, &mut rng)?));
        }
        Ok(out)
    }
}

/// Forecasts of consecutive steps, standardised `[n, P]` each, P the targets (see
/// [`PredictionTask::forecasts`]).
pub struct Forecasts {
    pub model: Vec<f32>,
    /// Each forecast's band, standardised `[n, P]` (empty without one): ±2σ, or from
    /// its 2.275 % to its 97.725 % quantile.
    pub low: Vec<f32>,
    pub high: Vec<f32>,
    /// Last observation carried forward (0, the training mean, where the window saw none).
    pub persistence: Vec<f32>,
    pub truth: Vec<f32>,
    /// 1 where the truth was observed.
    pub observed: Vec<f32>,
}

impl PredictionTask<'_> {
    /// The forecast of the step after the end of each entity, in original units: (entity,
    /// `[P]` of the targets and its σ where the model has a Gaussian head). From its last `window − 1`
    /// steps (entities shorter than that are skipped), or, for a task trained on streams,
    /// from the whole entity with the state carried, as the model was trained and is
    /// deployed.
    ///
    /// # Errors
    /// A model that does not fit.
    pub fn forecast(&self, model: &SequenceModel<f32>) -> Result<Vec<(String, Forecast)>> {
        let (inputs, ahead, c) = (self.window - 1, self.steps_ahead_of(model)?, self.targets.len());
        let (scaler, targets) = (&self.targets.scaler, &self.targets.index);
        let mut out = Vec::new();
        for (name, steps) in &self.series.entities {
            let entity = std::slice::from_ref(steps);
            let (z, precision) = match self.stream {
                Some(_) => {
                    let (len, residual) = (steps.len(), self.residual);
                    let batch =
                        make_stream_batch(self.series, entity, len, inputs, residual, ahead, targets, |_| steps.end);
                    let out = model.forward(&self.input(&batch))?;
                    let last = (batch.steps - 1) * ahead * c..;
                    let precision = out.precision[out.precision.len() / batch.steps * (batch.steps - 1)..].to_vec();
                    (predictions(&out.mean[last.clone()], &batch.base[last]), precision)
                }
                None if steps.len() < inputs => continue,
                None => {
                    let start = [steps.end - inputs];
                    let batch = make_batch(self.series, entity, &start, self.window, (self.residual, ahead), targets);
                    let out = model.forward_at(&self.input(&batch), HeadSteps::Last)?;
                    (predictions(&out.mean, &batch.base), out.precision)
                }
            };
            let spread = Spread::of(&precision, z.len(), ahead * c).map(|v| v[..c].to_vec());
            let spread = spread.calibrated(self.calibration.as_ref());
            out.push((name.clone(), Forecast::from_standardised(&z[..c], &spread, scaler)));
        }
        Ok(out)
    }
}

impl PredictionTask<'_> {
    /// A stream through `model` for one live series: each [`PredictionStream::step`]
    /// takes the newest grid step and forecasts the next, as the windows of training do
    /// (input `[z ⊙ m, m]`; with `residual`, the change from each signal's last
    /// observation in the last `window − 1` steps), but with the state carried from the
    /// first step instead of restarted for every window.
    ///
    /// # Errors
    /// A model that cannot stream (coupled bidirectional).
    pub fn stream<'m>(&self, model: &'m SequenceModel<f32>) -> Result<PredictionStream<'m>> {
        self.stream_with(model, self.calibration.as_ref())
    }

    /// [`PredictionTask::stream`] with its bands scaled by `calibration`.
    fn stream_with<'m>(
        &self,
        model: &'m SequenceModel<f32>,
        calibration: Option<&BandCalibration>,
    ) -> Result<PredictionStream<'m>> {
        let fitted = FittedScaler::of(self.series);
        let task = PredictionConfig {
            window: self.window,
            residual: self.residual,
            targets: self.targets.names.clone(),
            ..PredictionConfig::default()
        };
        PredictionStream::new(model, &fitted, &task, calibration.cloned())
    }
}

/// Forecasts of the steps after one, in original units: `values: [H, P]` row by row (P:
/// the targets), and for the first of them that have one (`[h, P]`, h ≤ H; empty without a band) the band,
/// `low` and `high` in original units (±2σ, [`Standardizer::band`], or the 2.275 % and
/// 97.725 % quantiles; skewed for the signals read as ln(1 + x)), and, from a Gaussian
/// head, σ = 1/√λ̂ itself, standardised.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Forecast {
    pub values: Vec<f32>,
    pub low: Vec<f32>,
    pub high: Vec<f32>,
    pub sigma_standardised: Vec<f32>,
}

impl Forecast {
    /// From standardised forecasts `z: [H, P]` and the spread of their first rows (`scaler`:
    /// the targets').
    fn from_standardised(z: &[f32], spread: &Spread, scaler: &Standardizer) -> Self {
        let c = scaler.mean.len();
        // the edges mapped back one by one: skewed for the signals read as ln(1 + x)
        let original = |v: &[f32]| v.iter().enumerate().map(|(i, &v)| scaler.invert(i % c, v)).collect();
        let (low, high) = spread.edges(z);
        let (values, low, high) = (original(z), original(&low), original(&high));
        let sigma_standardised = match spread {
            Spread::Sigma(sigma) => sigma.clone(),
            _ => Vec::new(),
        };
        Forecast { values, low, high, sigma_standardised }
    }

    /// Keeps the first `steps` rows of `c` values (and of the band).
    fn truncate(&mut self, steps: usize, c: usize) {
        for v in [&mut self.values, &mut self.low, &mut self.high, &mut self.sigma_standardised] {
            v.truncate(steps * c);
        }
    }
}

/// One live series through a causal prediction model, one grid step at a time (see
/// [`PredictionTask::stream`]).
#[derive(Clone)]
pub struct PredictionStream<'m> {
    stream: ModelStream<'m, f32>,
    /// S: steps the model forecasts from each state.
    ahead: usize,
    /// Linear (no band), Gaussian (forecasts with σ) or quantile.
    head: HeadKind,
    scaler: Standardizer,
    signals: Vec<String>,
    /// The signals forecast, every one or some ([`Targets`]).
    targets: Targets,
    residual: bool,
    /// Each signal's last observation (standardised), counting `window − 1` steps on.
    last: LastObserved,
    steps: usize,
    x: Vec<f32>,
    calibration: Option<BandCalibration>,
    clock: StepClock,
}

/// S, the steps `model` forecasts from each state, for `c` targets.
///
/// # Errors
/// Outputs per step that are not a multiple of `c`.
fn steps_ahead_for(model: &SequenceModel<f32>, c: usize) -> Result<usize> {
    let outputs = model.config().outputs;
    if outputs == 0 || c == 0 || !outputs.is_multiple_of(c) {
        return Err(Error::invalid(
            "model",
            format!(
                "{outputs} outputs per step are not a forecast of the {c} target signals one or more steps ahead \
                 (task.targets)"
            ),
        ));
    }
    Ok(outputs / c)
}

impl<'m> PredictionStream<'m> {
    /// A stream through a trained causal `model` without its data: the signals and
    /// standardisation it was trained with (`fitted`, kept in its run folder), its `task`'s
    /// `window` (≥ 2), `residual` and `targets` (the other settings are not read), and its
    /// bands' `calibration` if any — what [`PredictionTask::stream`] builds from the data,
    /// and what a program serving the model builds from the run folder alone
    /// ([`crate::run::RunConfig::prediction`] gives `task`).
    ///
    /// # Errors
    /// A window under 2 steps, targets that are not among the signals, a model whose
    /// outputs are not forecasts of the targets, a model that cannot stream (coupled
    /// bidirectional), a calibration for other signals.
    pub fn new(
        model: &'m SequenceModel<f32>,
        fitted: &FittedScaler,
        task: &PredictionConfig,
        calibration: Option<BandCalibration>,
    ) -> Result<Self> {
        let (c, window) = (fitted.signals.len(), task.window);
        if window < 2 {
            return Err(Error::invalid("window", "a prediction window needs at least 2 steps"));
        }
        let clock = StepClock::of(fitted);
        let inputs = 2 * c + clock.width();
        if model.config().encoder.input_size != inputs {
            return Err(Error::invalid(
                "model",
                format!(
                    "it reads {} inputs per step; {c} signals give 2 × {c} (values and mask){}",
                    model.config().encoder.input_size,
                    super::calendar_clause(&fitted.calendar)
                ),
            ));
        }
        let targets = Targets::among(&fitted.signals, &fitted.scaler, &task.targets)?;
        BandCalibration::check_signals(calibration.as_ref(), &targets.names)?;
        Ok(PredictionStream {
            ahead: steps_ahead_for(model, targets.len())?,
            head: model.config().head,
            stream: model.stream(1)?,
            scaler: fitted.scaler.clone(),
            signals: fitted.signals.clone(),
            targets,
            residual: task.residual,
            last: LastObserved::new(c, window - 1),
            steps: 0,
            x: vec![0.0; inputs],
            calibration,
            clock,
        })
    }
}

impl PredictionStream<'_> {
    /// The signals, in the order [`PredictionStream::step`] takes them.
    pub fn signals(&self) -> &[String] {
        &self.signals
    }

    /// The signals forecast, in the order [`PredictionStream::step`] returns them: every
    /// signal, or the run's `task.targets` in the signals' order.
    pub fn targets(&self) -> &[String] {
        &self.targets.names
    }

    /// Whether the model reads calendar inputs: then the stream needs the time of the
    /// step it is fed next ([`PredictionStream::at`]) before its first step.
    pub fn reads_calendar(&self) -> bool {
        !self.clock.calendar.is_empty()
    }

    /// The next step fed is at `time` (seconds since the Unix epoch, UTC: its bin's start);
    /// each step after it one grid step later, unless given again.
    pub fn at(&mut self, time: i64) {
        self.clock.at(time);
    }

    /// Feeds the values of one grid step (original units; `None` where missing) and
    /// returns the forecast of the targets at the next step, in original units.
    ///
    /// # Errors
    /// A step with the wrong number of signals or a non-finite value (named); a model that
    /// reads the calendar and no time given ([`PredictionStream::at`]).
    pub fn step(&mut self, values: &[Option<f32>]) -> Result<Vec<f32>> {
        let mut next = self.step_direct(values)?.values;
        next.truncate(self.targets.len());
        Ok(next)
    }

    /// S: the steps the model forecasts directly from each state.
    pub fn steps_ahead(&self) -> usize {
        self.ahead
    }

    /// Whether forecasts come with σ (a Gaussian head).
    pub fn has_sigma(&self) -> bool {
        self.head == HeadKind::Gaussian
    }

    /// The signals forecast, with their indices and standardisation.
    pub(super) fn target_set(&self) -> &Targets {
        &self.targets
    }

    /// Whether forecasts come with a band (a Gaussian or a quantile head).
    pub fn has_band(&self) -> bool {
        self.head.has_positive_branch()
    }

    /// [`PredictionStream::step`], returning all S steps the model forecasts directly,
    /// `[S, P]` row by row, with their band.
    fn step_direct(&mut self, values: &[Option<f32>]) -> Result<Forecast> {
        let (z, spread) = self.step_direct_standardised(values)?;
        Ok(Forecast::from_standardised(&z, &spread.calibrated(self.calibration.as_ref()), &self.targets.scaler))
    }

    /// [`PredictionStream::step_direct`], standardised: z `[S, P]` and its spread.
    fn step_direct_standardised(&mut self, values: &[Option<f32>]) -> Result<(Vec<f32>, Spread)> {
        let c = self.signals.len();
        let z = super::encode_step(values, &self.signals, &self.scaler, &mut self.x)?;
        self.clock.write_next(&mut self.x[2 * c..])?;
        for (j, z) in z.into_iter().enumerate() {
            if let Some(z) = z {
                self.last.see(j, z, self.steps);
            }
        }
        let out = self.stream.step(&self.x)?;
        let now = self.steps;
        self.steps += 1;
        let p = self.targets.len();
        let z: Vec<f32> = (0..self.ahead * p)
            .map(|i| {
                let base = match self.last.within(self.targets.index[i % p], now) {
                    Some(z) if self.residual => z,
                    _ => 0.0,
                };
                out.mean[i] + base
            })
            .collect();
        let spread = Spread::of(&out.precision, out.mean.len(), out.mean.len());
        Ok((z, spread))
    }

    /// Feeds one real step and returns the forecasts of the next `horizon` steps (at
    /// least one), `[horizon, P]` row by row, in original units. The first S come directly
    /// from the model; past them a copy of the stream runs in closed loop (each step fed
    /// the forecast of it made the step before, as the observed values of every signal;
    /// this stream's state moves by the one real step only), each fed step adding its
    /// furthest forecast. With S = 1 this is the plain closed loop.
    ///
    /// # Errors
    /// As [`PredictionStream::step`]; a horizon past the direct steps of a model that
    /// forecasts only some of the signals it reads (refused before the step is fed).
    pub fn step_ahead(&mut self, values: &[Option<f32>], horizon: usize) -> Result<Vec<f32>> {
        Ok(self.step_forecast(values, horizon)?.values)
    }

    /// [`PredictionStream::step_ahead`] with the band for the direct steps (a Gaussian or
    /// a quantile head): the closed loop's forecasts get none, its inputs being forecasts
    /// the model's band never learned to doubt ([`PredictionStream::step_forecast_sampled`] bands
    /// them by sampling).
    ///
    /// # Errors
    /// As [`PredictionStream::step`].
    pub fn step_forecast(&mut self, values: &[Option<f32>], horizon: usize) -> Result<Forecast> {
        self.check_reach(horizon)?;
        let direct = self.step_direct(values)?;
        self.closed_loop(direct, horizon)
    }

    /// Refuses a `horizon` the stream cannot reach: past the model's direct steps it runs
    /// in closed loop, which needs a forecast of every signal it reads.
    fn check_reach(&self, horizon: usize) -> Result<()> {
        if horizon > self.ahead && !self.targets.are_every_signal(self.signals.len()) {
            return Err(Error::invalid(
                "horizon",
                format!(
                    "{horizon} steps ahead: the model forecasts {} of the {} signals it reads (task.targets) \
                     {} steps ahead, and past them a closed loop would need the others; train it with \
                     task.steps_ahead = {horizon}",
                    self.targets.len(),
                    self.signals.len(),
                    self.ahead
                ),
            ));
        }
        Ok(())
    }

    /// `direct`, this stream's forecast of its next S steps, to `horizon` rows: cut, or
    /// continued in closed loop by a copy of the stream (see [`PredictionStream::step_ahead`]).
    fn closed_loop(&self, mut ahead: Forecast, horizon: usize) -> Result<Forecast> {
        // past the direct steps the targets are every signal (`check_reach`)
        let c = self.targets.len();
        let mut latest = ahead.values.clone();
        ahead.truncate(horizon.min(self.ahead), c);
        let mut roll = (horizon > self.ahead).then(|| self.clone());
        while ahead.values.len() < horizon * c {
            let fed: Vec<Option<f32>> = latest[..c].iter().map(|&v| Some(v)).collect();
            latest = roll.as_mut().expect("a copy past the direct forecasts").step_direct(&fed)?.values;
            ahead.values.extend_from_slice(&latest[(self.ahead - 1) * c..]);
        }
        Ok(ahead)
    }

    /// [`PredictionStream::step_forecast_sampled`] with `paths` sample paths, or without
    /// any (`paths` = 0) [`PredictionStream::step_forecast`].
    ///
    /// # Errors
    /// As theirs.
    pub fn step_forecast_with_paths(
        &mut self,
        values: &[Option<f32>],
        horizon: usize,
        paths: usize,
        rng: &mut Rng,
    ) -> Result<Forecast> {
        match paths {
            0 => self.step_forecast(values, horizon),
            _ => self.step_forecast_sampled(values, horizon, paths, rng),
        }
    }

    /// [`PredictionStream::step_forecast`] with a band past the direct steps too, sampled (a
    /// model with a band): `paths` copies of the stream's state run on in closed loop, each
    /// fed at every step a draw from the distribution of its own forecast of that step
    /// (z + σε for every signal, ε ~ N(0, 1) from `rng`) — ancestral sampling, as DeepAR
    /// (Salinas et al. 2020) — and each further step gets a draw from every path's furthest
    /// forecast; its band is their 2.275 % and 97.725 % quantiles, where ±2σ lies for a
    /// Gaussian (skewed where the fed errors compound unevenly). A quantile band's draws
    /// come from the split normal with its median at the forecast, σ = d⁻/2 below and
    /// σ = d⁺/2 above (z + (d/2)·ε, d the distance on ε's side), whose 2.275 % and 97.725 %
    /// quantiles are the band's own edges. The forecasts and the direct steps' bands are
    /// [`PredictionStream::step_forecast`]'s; `low`, `high` then cover every row.
    ///
    /// # Errors
    /// As [`PredictionStream::step`]; a model without a band, or no path, when the horizon
    /// reaches past the direct steps.
    pub fn step_forecast_sampled(
        &mut self,
        values: &[Option<f32>],
        horizon: usize,
        paths: usize,
        rng: &mut Rng,
    ) -> Result<Forecast> {
        self.check_reach(horizon)?;
        let banded = self.has_band();
        if horizon > self.ahead && (!banded || paths == 0) {
            return Err(Error::invalid(
                "sampled band",
                format!(
                    "{}: sample paths need a model with a band (task.uncertainty) and at least one path",
                    if banded { "no path" } else { "the model has no band" }
                ),
            ));
        }
        let (c, s) = (self.signals.len(), self.ahead);
        let (z, spread) = self.step_direct_standardised(values)?;
        let calibrated = spread.clone().calibrated(self.calibration.as_ref());
        let mut ahead = self.closed_loop(Forecast::from_standardised(&z, &calibrated, &self.scaler), horizon)?;
        let Some((down, up)) = spread.draw_scales() else { return Ok(ahead) };
        if horizon <= s {
            return Ok(ahead);
        }
        let mut stream = self.stream.replicated(paths);
        // every path's latest forecast, z, and the scales of its draws below and above: [paths, S·C]
        let (mut mean, mut down, mut up) = (z.repeat(paths), down.repeat(paths), up.repeat(paths));
        let draw = |mean: f32, down: f32, up: f32, e: f32| mean + (if e < 0.0 { down } else { up }) * e;
        let width = self.x.len();
        let (mut x, mut fed, mut draws) = (vec![0.0f32; paths * width], vec![0.0f32; paths * c], vec![0.0f32; paths]);
        let mut noise = vec![0.0f32; 2 * paths * c];
        for h in s..horizon {
            rng.fill_normal(&mut noise);
            let (feed_noise, draw_noise) = noise.split_at(paths * c);
            for k in 0..paths {
                for j in 0..c {
                    let i = k * s * c + j;
                    fed[k * c + j] = self.scaler.lift(j, draw(mean[i], down[i], up[i], feed_noise[k * c + j]));
                    (x[k * width + j], x[k * width + c + j]) = (fed[k * c + j], 1.0);
                }
                self.clock.write_ahead(h - s, &mut x[k * width + 2 * c..(k + 1) * width]);
            }
            let out = stream.step(&x)?;
            (down, up) = Spread::of(&out.precision, out.mean.len(), s * c).draw_scales().expect("a band");
            for (i, (m, &o)) in mean.iter_mut().zip(&out.mean).enumerate() {
                // every signal was observed at the fed step: each path's own draw is the base
                *m = o + if self.residual { fed[i / (s * c) * c + i % c] } else { 0.0 };
            }
            for j in 0..c {
                for (k, d) in draws.iter_mut().enumerate() {
                    let i = k * s * c + (s - 1) * c + j;
                    *d = draw(mean[i], down[i], up[i], draw_noise[k * c + j]);
                }
                let [mut low, mut high] = quantiles(&mut draws, [0.02275, 0.97725]);
                if let Some(calibration) = &self.calibration {
                    // around the forecast of the step, standardised
                    let (x, k) = (self.scaler.apply(j, ahead.values[h * c + j]), calibration.factor(h * c + j));
                    (low, high) = (x - k * (x - low), x + k * (high - x));
                }
                ahead.low.push(self.scaler.invert(j, low));
                ahead.high.push(self.scaler.invert(j, high));
            }
        }
        Ok(ahead)
    }
}

/// The `q` quantiles of `values` (reordered), linearly interpolated between the order
/// statistics around q·(n − 1); each found by selection, not a sort.
fn quantiles<const K: usize>(values: &mut [f32], q: [f64; K]) -> [f32; K] {
    let last = values.len().saturating_sub(1);
    q.map(|q| {
        let at = q * last as f64;
        let below = at.floor() as usize;
        let (_, &mut low, above) = values.select_nth_unstable_by(below, f32::total_cmp);
        let high = above.iter().copied().min_by(f32::total_cmp).unwrap_or(low);
        low + (at - at.floor()) as f32 * (high - low)
    })
}

impl PredictionTask<'_> {
    /// The masked MSE of the forecasts x̂ = base + head output; with a Gaussian head, plus
    /// the deck's NLL for λ̂ alone: L = MSE(x̂) + NLL(sg(x̂), λ̂), with the head's precision
    /// reading sg(z) ([`ModelConfig::detach_precision`]); with a quantile head, plus the
    /// pinball loss of its band's edges sg(x̂) ∓ d ([`quantile_band`]), the distances reading
    /// sg(z) too. Returns `(L, ∂L/∂x̂, ∂L/∂λ̂ or ∂L/∂d)`. The
    /// forecasts then learn what they would without σ (they differ only through the global
    /// gradient clipping, whose norm counts λ̂'s gradients: on Beijing, 24 hours direct, the
    /// same micro MSE and MAE to 4 digits at every hour ahead). Measured with temporary
    /// changes (not kept) on Beijing, 24 hours direct, the alternatives cost accuracy: the
    /// NLL through x̂ too
    /// (the deck's reconstruction loss), with a λ̂ per step shared by the signals, lets the
    /// forecasts fit the calm hours and give up on the volatile ones (micro MSE 0.2036
    /// one hour ahead against 0.1877, 0.7179 a day ahead against 0.6598); λ̂ trained
    /// through z, 0.1916 and 0.6663.
    fn forecast_loss(
        &self,
        out: &HeadOutput<f32>,
        base: &[f32],
        target: &[f32],
        mask: &[f32],
    ) -> (f64, Vec<f32>, Vec<f32>) {
        let pred = predictions(&out.mean, base);
        let (mse, d_mean) = masked_mse(&pred, target, mask);
        if out.precision.is_empty() {
            return (mse, d_mean, Vec::new());
        }
        if are_quantile_distances(&out.precision, pred.len()) {
            let outputs = self.steps_ahead * self.targets.len();
            let (band, d_distances) = quantile_band(&pred, target, mask, &out.precision, outputs, BAND_ALPHA);
            return (mse + band, d_mean, d_distances);
        }
        let block = pred.len() / out.precision.len();
        let (nll, d_precision) = gaussian_nll_precision(&pred, target, mask, &out.precision, block);
        (mse + nll, d_mean, d_precision)
    }
}

impl Task for PredictionTask<'_> {
    type Batch = PredictionBatch;

    fn train_len(&self) -> usize {
        if self.stream.is_some() {
            self.train_streams.len()
        } else {
            self.train_starts.len()
        }
    }

    fn make_batch(&self, indices: &[usize], _rng: &mut Rng) -> PredictionBatch {
        match self.stream {
            Some(stream) => {
                let streams: Vec<Range<usize>> = indices.iter().map(|&i| self.train_streams[i].clone()).collect();
                make_stream_batch(
                    self.series,
                    &streams,
                    stream.steps,
                    self.window - 1,
                    self.residual,
                    self.steps_ahead,
                    &self.targets.index,
                    |s| part_end(&self.series.train, s),
                )
            }
            None => {
                let starts: Vec<usize> = indices.iter().map(|&i| self.train_starts[i]).collect();
                let (train, output) = (&self.series.train, (self.residual, self.steps_ahead));
                make_batch(self.series, train, &starts, self.window, output, &self.targets.index)
            }
        }
    }

    fn input<'b>(&self, batch: &'b PredictionBatch) -> SequenceBatch<'b, f32> {
        SequenceBatch { x: &batch.x, steps: batch.steps, batch: batch.batch, lengths: batch.lengths.as_deref() }
    }

    fn head_steps(&self) -> HeadSteps {
        if self.stream.is_some() {
            HeadSteps::All
        } else {
            HeadSteps::Last
        }
    }

    fn truncation(&self) -> Option<Truncation> {
        self.stream.map(|s| s.truncation())
    }

    fn chunk_loss(
        &self,
        out: &HeadOutput<f32>,
        batch: &PredictionBatch,
        steps: Range<usize>,
    ) -> Result<(f64, Vec<f32>, Vec<f32>)> {
        let row = batch.batch * self.steps_ahead * self.targets.len();
        let rows = steps.start * row..steps.end * row;
        Ok(self.forecast_loss(out, &batch.base[rows.clone()], &batch.target[rows.clone()], &batch.mask[rows]))
    }

    fn loss(&self, out: &HeadOutput<f32>, batch: &PredictionBatch) -> (f64, Vec<f32>, Vec<f32>) {
        self.forecast_loss(out, &batch.base, &batch.target, &batch.mask)
    }

    /// A Gaussian head starts with persistence's own error band: each precision's bias at
    /// softplus⁻¹(1 / v), v the mean squared change of its signal over its steps ahead on
    /// the training part ([`PredictionTask::persistence_variance`]); with the residual
    /// head's outputs near 0 the fresh model forecasts persistence with that band. (From
    /// λ̂ ≈ 1, softplus growing λ̂ only linearly in its input, the bands stayed wider on
    /// Beijing: 98.8 % covered one hour ahead against 97.4 %, the smooth signals 100 %.)
    ///
    /// A quantile head starts the same way: both distances of each value at 2√v, where
    /// persistence's ±2σ band would reach.
    fn initialize(&self, model: &mut SequenceModel<f32>) {
        let outputs = model.config().outputs;
        let Some(precision) = model.head.precision.as_mut() else { return };
        let (c, bias) = (self.targets.len(), &mut precision.bias.data);
        if !self.residual || !outputs.is_multiple_of(c) {
            return;
        }
        let variance = self.persistence_variance(outputs / c);
        if bias.len() == outputs {
            for (b, v) in bias.iter_mut().zip(variance) {
                *b = inverse_softplus(1.0 / v.max(1e-6)) as f32;
            }
        } else if bias.len() == 2 * outputs {
            for (i, b) in bias.iter_mut().enumerate() {
                *b = inverse_softplus(2.0 * variance[i % outputs].max(1e-6).sqrt()) as f32;
            }
        }
    }

    /// The micro MSE on the validation part, averaged over the S steps ahead.
    fn validate(&self, model: &SequenceModel<f32>) -> Result<f64> {
        let part = &self.series.validation;
        let ahead = match self.stream {
            Some(_) => self.evaluate_streamed_ahead(model, part)?,
            None => self.evaluate_ahead(model, part)?,
        };
        Ok(ahead.iter().map(|m| m.micro_mse).sum::<f64>() / ahead.len() as f64)
    }
}

impl PredictionTask<'_> {
    /// Baselines on the entries [`PredictionTask::evaluate`] scores: last observation
    /// carried forward within the input window (the training mean where a window never saw
    /// the target) and the training mean (0 in standardised units).
    ///
    /// # Errors
    /// A part shorter than a window.
    pub fn baselines(&self, part: &[Range<usize>]) -> Result<Vec<(&'static str, Metrics)>> {
        let (scaler, targets) = (&self.targets.scaler, &self.targets.index);
        let starts = self.series.window_starts(part, self.window, 1, "evaluated")?;
        let mut locf = ErrorAccumulator::new(targets.len());
        let mut mean = ErrorAccumulator::new(targets.len());
        for chunk in starts.chunks(512) {
            // the residual base is each window's last observations: LOCF's forecast
            let batch = make_batch(self.series, part, chunk, self.window, (true, 1), targets);
            locf.add(&batch.base, &batch.target, &batch.mask, scaler);
            mean.add(&vec![0.0; batch.base.len()], &batch.target, &batch.mask, scaler);
        }
        Ok(vec![("last observation carried forward", locf.finish()), ("training mean", mean.finish())])
    }
}

/// Trains a prediction model (checkpoints and the epoch log in `run_dir` when given).
///
/// # Errors
/// As [`PredictionTask::new`] and [`train`].
pub fn train_prediction(
    series: &PreparedSeries,
    config: &PredictionConfig,
    run_dir: Option<&Path>,
) -> Result<TrainReport> {
    let task = PredictionTask::from_config(series, config)?;
    train(&task, &config.model_config(series.grid.channels()), &config.train, run_dir, false, None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::grid::bins_since_observed;
    use crate::data::{Calendar, CalendarCycle, Clock, GridSeries, SplitFractions};
    use recur_kernels::Real;

    /// Synthetic: two ramps over 100 steps, the second signal missing at every third step;
    /// split 60 / 20 / 20 in time.
    pub(crate) fn ramps() -> PreparedSeries {
        ramps_screened(0.0)
    }

    /// [`ramps`] with the outlier screen at `limit` robust SDs (0: off).
    fn ramps_screened(limit: f64) -> PreparedSeries {
        let n = 100;
        let values: Vec<f32> = (0..n).flat_map(|t| [t as f32, 100.0 - 2.0 * t as f32]).collect();
        let observed: Vec<bool> = (0..n).flat_map(|t| [true, t % 3 != 0]).collect();
        let delta = bins_since_observed(&observed, 2);
        let (signals, clock) = (vec!["a".into(), "b".into()], Clock::Calendar);
        let grid = GridSeries { signals, start: 0, clock, bin_seconds: 60, values, observed, delta };
        let entities = vec![("e".into(), grid)];
        PreparedSeries::from_entities_screened(entities, SplitFractions::default(), limit, &[], &Default::default())
            .unwrap()
    }

    #[test]
    fn a_stream_takes_out_what_the_training_outlier_screen_took_out() {
        // synthetic: the ramps screened at 5 robust SDs; a wild value of `a` in the feed is
        // read as missing, as training read such values, while an ordinary one is read
        let data = ramps_screened(5.0);
        let model = SequenceModel::<f32>::new(PredictionConfig::default().model_config(2), 3).unwrap();
        let task = PredictionTask::new(&data, 12, true).unwrap();
        let feed = |fifth: Option<f32>| -> Vec<Vec<f32>> {
            let mut stream = task.stream(&model).unwrap();
            (0..10)
                .map(|t| {
                    let a = if t == 5 { fifth } else { Some(t as f32) };
                    stream.step(&[a, Some(100.0 - 2.0 * t as f32)]).unwrap()
                })
                .collect()
        };
        assert_eq!(feed(Some(1.0e6)), feed(None), "a wild value is a gap");
        assert_ne!(feed(Some(5.0)), feed(None), "an ordinary value is read");
        // and the screen travels with the run folder's scaler
        let fitted = FittedScaler::of(&data);
        let text = serde_json::to_string(&fitted).unwrap();
        assert_eq!(serde_json::from_str::<FittedScaler>(&text).unwrap(), fitted);
        assert!(fitted.scaler.screens_out(0, 1.0e6));
    }

    #[test]
    fn direct_targets_are_the_steps_ahead_and_stop_at_the_end_of_the_part() {
        let series = ramps();
        assert_eq!((series.train.len(), series.train[0].clone()), (1, 0..60));
        let (c, g) = (2, &series.grid);
        // window of 5 from step 50: inputs 50..=53, targets 54..=61, training part ends at 60
        let direct = make_batch(&series, &series.train, &[50], 5, (true, 8), &[0, 1]);
        let next = make_batch(&series, &series.train, &[50], 5, (true, 1), &[0, 1]);
        assert_eq!(direct.x, next.x);
        for h in 1..=8 {
            let (k, block) = (53 + h, (h - 1) * c..h * c);
            for j in 0..c {
                let (at, inside) = (block.start + j, k < 60);
                let observed = inside && g.observed[k * c + j];
                assert_eq!(direct.mask[at], observed as u8 as f32, "step {k} signal {j}");
                assert_eq!(direct.target[at], if inside { g.values[k * c + j] } else { 0.0 });
                // the same base, each signal's last observation in the window, in every block
                assert_eq!(direct.base[at], next.base[j]);
            }
        }
        assert_eq!(direct.target[..c], next.target[..]);
        assert_eq!(direct.mask[..c], next.mask[..]);
        // signal b was last observed at step 53 (53 % 3 != 0); at step 51 for a window to 51
        assert_eq!(next.base[1], g.values[53 * c + 1]);

        // a stream: row t's block h is row t + h − 1's next step
        let stream = make_stream_batch(&series, std::slice::from_ref(&(10..40)), 30, 4, true, 5, &[0, 1], |s| {
            part_end(&series.train, s)
        });
        let at = |t: usize, h: usize, j: usize| (t * 5 + h - 1) * c + j;
        for t in 0..26 {
            for h in 1..=5 {
                for j in 0..c {
                    assert_eq!(stream.target[at(t, h, j)], stream.target[at(t + h - 1, 1, j)]);
                    assert_eq!(stream.mask[at(t, h, j)], stream.mask[at(t + h - 1, 1, j)]);
                    assert_eq!(stream.base[at(t, h, j)], stream.base[at(t, 1, j)]);
                }
            }
        }
    }

    #[test]
    fn a_fresh_gaussian_head_starts_with_persistences_error_band() {
        let series = ramps();
        let task = PredictionTask::new(&series, 5, true).unwrap().forecasting(3).unwrap();
        // signal a, always observed, changes by 1 / std each step: persistence h steps ahead
        // misses by h / std
        let v = task.persistence_variance(3);
        let std = series.scaler.std[0] as f64;
        for h in 1..=3 {
            let want = (h as f64 / std).powi(2);
            assert!((v[(h - 1) * 2] / want - 1.0).abs() < 1e-4, "h = {h}: {} against {want}", v[(h - 1) * 2]);
        }
        for y in [1e-3, 0.5, 1.0, 40.0, 1e4] {
            let back = inverse_softplus(y).softplus();
            assert!((back / y - 1.0).abs() < 1e-9, "softplus(softplus⁻¹({y})) = {back}");
        }
        let config =
            PredictionConfig { steps_ahead: 3, uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
        let mut model = SequenceModel::<f32>::new(config.model_config(2), 1).unwrap();
        task.initialize(&mut model);
        let precision = model.head.precision.as_ref().unwrap();
        for (b, v) in precision.bias.data.iter().zip(&v) {
            assert!((f64::from(*b).softplus() * v - 1.0).abs() < 1e-3, "λ̂ = 1 / v at a zero state");
        }
        assert!(model.config().detach_precision && model.config().precisions == 6);
    }

    #[test]
    fn sample_paths_band_the_closed_loop_and_collapse_onto_it_without_noise() {
        // synthetic ramps; a 2-step direct model with σ, 6 steps ahead (4 in closed loop)
        let series = ramps();
        let task = PredictionTask::new(&series, 5, true).unwrap();
        let config =
            PredictionConfig { steps_ahead: 2, uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
        let mut model = SequenceModel::<f32>::new(config.model_config(2), 4).unwrap();
        let steps: Vec<Vec<Option<f32>>> = (0..12).map(|n| series.original_step(n)).collect();
        let run = |task: &PredictionTask, model: &SequenceModel<f32>, paths: usize, seed: u64| {
            let mut live = task.stream(model).unwrap();
            let mut rng = Rng::new(seed);
            let mut last = Forecast::default();
            for step in &steps {
                last = live.step_forecast_sampled(step, 6, paths, &mut rng).unwrap();
            }
            last
        };
        let plain_of = |task: &PredictionTask, model: &SequenceModel<f32>| {
            let mut live = task.stream(model).unwrap();
            steps.iter().map(|s| live.step_forecast(s, 6).unwrap()).last().unwrap()
        };
        let plain = plain_of(&task, &model);
        let sampled = run(&task, &model, 64, 1);
        // the forecasts and the direct steps' bands are step_forecast's; a band for every row
        assert_eq!(
            (sampled.values.clone(), sampled.sigma_standardised.clone()),
            (plain.values.clone(), plain.sigma_standardised.clone())
        );
        assert_eq!((sampled.low[..4].to_vec(), sampled.high[..4].to_vec()), (plain.low.clone(), plain.high.clone()));
        assert_eq!((sampled.low.len(), sampled.high.len()), (12, 12));
        assert!(sampled.low.iter().zip(&sampled.high).all(|(l, h)| l < h));
        assert_eq!(run(&task, &model, 64, 1), sampled, "the same seed, the same band");
        assert_ne!(run(&task, &model, 64, 2).low, sampled.low);
        // σ → 0 (λ̂ ≈ 1e8): every path is the closed loop fed its means, the band its forecast
        model.head.precision.as_mut().unwrap().bias.data.fill(1e8);
        let collapses = |task: &PredictionTask, model: &SequenceModel<f32>| {
            let (plain, tight) = (plain_of(task, model), run(task, model, 8, 1));
            for (k, ((&v, &low), &high)) in plain.values.iter().zip(&tight.low).zip(&tight.high).enumerate().skip(4) {
                let scale = series.scaler.std[k % 2];
                assert!(
                    (low - v).abs() < 1e-3 * scale && (high - v).abs() < 1e-3 * scale,
                    "row {}: {low} {v} {high}",
                    k / 2
                );
            }
            plain
        };
        collapses(&task, &model);
        // a floor above every value of b: the closed loop is fed b's forecasts lifted to it, and
        // so must every path be, or a's band leaves a's closed-loop forecast
        let mut floored = series.clone();
        floored.scaler.floor = vec![None, Some(200.0)];
        let task = PredictionTask::new(&floored, 5, true).unwrap();
        let plain = collapses(&task, &model);
        let b: Vec<f32> = plain.values.iter().skip(1).step_by(2).copied().collect();
        assert!(b.iter().all(|&b| b >= 200.0) && b[0] == 200.0, "the floor binds: {b:?}");
        // paths need a band
        let linear = SequenceModel::<f32>::new(PredictionConfig::default().model_config(2), 1).unwrap();
        let mut live = task.stream(&linear).unwrap();
        let err = live.step_forecast_sampled(&steps[0], 3, 10, &mut Rng::new(0)).unwrap_err().to_string();
        assert!(err.contains("the model has no band") && err.contains("task.uncertainty"), "{err}");
        let err = task.stream(&model).unwrap().step_forecast_sampled(&steps[0], 3, 0, &mut Rng::new(0)).unwrap_err();
        assert!(err.to_string().contains("no path"), "{err}");
    }

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let mut v = [4.0f32, 0.0, 3.0, 1.0, 2.0];
        assert_eq!(quantiles(&mut v, [0.0, 0.5, 1.0, 0.125]), [0.0, 2.0, 4.0, 0.5]);
        assert_eq!(quantiles(&mut [7.0f32], [0.02275, 0.97725]), [7.0, 7.0]);
    }

    #[test]
    fn a_direct_stream_gives_its_steps_with_sigma_and_refuses_bad_input_by_name() {
        let series = ramps();
        let task = PredictionTask::new(&series, 5, true).unwrap();
        let config =
            PredictionConfig { steps_ahead: 3, uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
        let model = SequenceModel::<f32>::new(config.model_config(2), 1).unwrap();
        let mut live = task.stream(&model).unwrap();
        assert_eq!((live.steps_ahead(), live.has_sigma()), (3, true));
        let step = series.original_step(10);
        // 5 steps: 3 direct with σ, 2 in closed loop without
        let f = live.step_forecast(&step, 5).unwrap();
        assert_eq!((f.values.len(), f.sigma_standardised.len(), f.low.len(), f.high.len()), (10, 6, 6, 6));
        assert!(f.sigma_standardised.iter().all(|s| s.is_finite() && *s > 0.0));
        for (k, (&low, &high)) in f.low.iter().zip(&f.high).enumerate() {
            let (v, s) = (f.values[k], 2.0 * f.sigma_standardised[k] * series.scaler.std[k % 2]);
            assert!(low < v && v < high, "{low} < {v} < {high}");
            assert!((high - v - s).abs() < 1e-4 * s && (v - low - s).abs() < 1e-4 * s, "symmetric: ±{s}");
        }
        // the direct steps do not depend on how far the rollout goes
        let mut again = task.stream(&model).unwrap();
        assert_eq!(again.step_forecast(&step, 2).unwrap().values, f.values[..4]);
        let err = live.step_forecast(&[Some(1.0)], 2).err().unwrap();
        assert!(err.to_string().contains("step values"), "{err}");
        let err = live.step_forecast(&[Some(f32::NAN), None], 2).err().unwrap();
        assert!(err.to_string().contains("signal `a`"), "{err}");
        let scratch = tempfile::Builder::new().prefix("recur-ahead-chart-").tempdir().unwrap();
        let out = scratch.path().join("ahead.png");
        let chart = |entity: &str, forecast: &Forecast, signal: usize| {
            crate::report::save_forecast_ahead_chart(&series, entity, (forecast, task.targets()), signal, 20, &out)
        };
        assert!(chart("nobody", &f, 0).err().unwrap().to_string().contains("no entity `nobody`"));
        assert!(chart("e", &f, 7).err().unwrap().to_string().contains("no target 7"));
        let odd = Forecast { values: vec![1.0; 3], ..Forecast::default() };
        assert!(chart("e", &odd, 0).err().unwrap().to_string().contains("not whole steps of 2 target signals"));
        chart("e", &f, 1).unwrap();
        assert!(std::fs::read(&out).unwrap().starts_with(b"\x89PNG"));
    }

    #[test]
    fn windowed_and_streamed_scores_scale_each_steps_band_by_the_tasks_calibration() {
        // synthetic ramps; a direct 3-step model with σ, its bands scaled ×2 one step ahead
        // and ×½ two and three steps ahead (two signals)
        let series = ramps();
        let task = PredictionTask::new(&series, 5, true).unwrap().forecasting(3).unwrap();
        let config =
            PredictionConfig { steps_ahead: 3, uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
        let mut model = SequenceModel::<f32>::new(config.model_config(2), 1).unwrap();
        task.initialize(&mut model);
        let scale = vec![2.0, 2.0, 0.5, 0.5, 0.5, 0.5];
        let calibration = BandCalibration {
            signals: series.grid.signals.clone(),
            scale: scale.clone(),
            scores: vec![10; 6],
            paths: 0,
        };
        let calibrated =
            PredictionTask::new(&series, 5, true).unwrap().forecasting(3).unwrap().with_calibration(Some(calibration));
        for (plain, scaled) in [
            (task.evaluate_ahead(&model, &series.test), calibrated.evaluate_ahead(&model, &series.test)),
            (
                task.evaluate_streamed_ahead(&model, &series.test),
                calibrated.evaluate_streamed_ahead(&model, &series.test),
            ),
        ] {
            let (plain, scaled) = (plain.unwrap(), scaled.unwrap());
            for (h, (p, s)) in plain.iter().zip(&scaled).enumerate() {
                assert_eq!((p.micro_mse, p.scored), (s.micro_mse, s.scored), "the errors do not change");
                let ratio = s.band_width_2sigma.unwrap() / p.band_width_2sigma.unwrap();
                assert!((ratio - f64::from(scale[2 * h])).abs() < 1e-5, "{} steps ahead: {ratio}", h + 1);
            }
        }
    }

    #[test]
    fn a_quantile_head_starts_at_persistences_band_and_serves_uneven_bands_that_never_cross() {
        // synthetic ramps; a direct 3-step model with a quantile band
        let series = ramps();
        let task = PredictionTask::new(&series, 5, true).unwrap().forecasting(3).unwrap();
        let config =
            PredictionConfig { steps_ahead: 3, uncertainty: Uncertainty::Quantile, ..PredictionConfig::default() };
        let model_config = config.model_config(2);
        assert_eq!((model_config.head, model_config.precisions, model_config.outputs), (HeadKind::Quantile, 12, 6));
        let mut model = SequenceModel::<f32>::new(model_config.clone(), 1).unwrap();
        task.initialize(&mut model);
        // both distances of every value start where persistence's ±2σ would reach
        let v = task.persistence_variance(3);
        let bias = &model.head.precision.as_ref().unwrap().bias.data;
        for (i, b) in bias.iter().enumerate() {
            let want = 2.0 * v[i % 6].sqrt();
            assert!((f64::from(b.softplus()) / want - 1.0).abs() < 1e-4, "{i}: {} against {want}", b.softplus());
        }
        // one side moved: the band follows it, uneven, and never crosses its forecast
        for b in &mut model.head.precision.as_mut().unwrap().bias.data[6..] {
            *b += 1.5;
        }
        let mut live = task.stream(&model).unwrap();
        assert_eq!((live.has_band(), live.has_sigma()), (true, false));
        let f = live.step_forecast(&series.original_step(10), 5).unwrap();
        assert_eq!((f.values.len(), f.sigma_standardised.len(), f.low.len(), f.high.len()), (10, 0, 6, 6));
        for (k, (&low, &high)) in f.low.iter().zip(&f.high).enumerate() {
            let v = f.values[k];
            assert!(low < v && v < high && high - v > 1.5 * (v - low), "{k}: {low} < {v} < {high}");
        }
        // scored with its band; sample paths past the direct steps, the direct ones as they were
        let scores = task.evaluate_ahead(&model, &series.test).unwrap();
        assert!(scores.iter().all(|m| m.coverage_2sigma.is_some() && m.interval_score_2sigma.unwrap() > 0.0));
        let (mut a, mut b) = (task.stream(&model).unwrap(), task.stream(&model).unwrap());
        let (plain, sampled) = (
            a.step_forecast(&series.original_step(10), 5).unwrap(),
            b.step_forecast_sampled(&series.original_step(10), 5, 200, &mut Rng::new(1)).unwrap(),
        );
        assert_eq!((sampled.values.clone(), sampled.low.len()), (plain.values.clone(), 10));
        assert_eq!((&sampled.low[..6], &sampled.high[..6]), (&plain.low[..], &plain.high[..]));
        assert!((6..10).all(|k| sampled.low[k] < sampled.high[k] && sampled.low[k].is_finite()));
        // the split normal's draws: the band's edges are their 2.275 % and 97.725 % quantiles
        let spread = Spread::Quantiles { below: vec![0.5], above: vec![2.0] };
        let (down, up) = spread.draw_scales().unwrap();
        let mut noise = vec![0.0f32; 200_000];
        Rng::new(5).fill_normal(&mut noise);
        let mut draws: Vec<f32> = noise.iter().map(|&e| 1.0 + if e < 0.0 { down[0] } else { up[0] } * e).collect();
        let [low, median, high] = quantiles(&mut draws, [0.02275, 0.5, 0.97725]);
        assert!(
            (low - 0.5).abs() < 0.01 && (median - 1.0).abs() < 0.01 && (high - 3.0).abs() < 0.03,
            "{low} {median} {high}"
        );
        // the head's shape is checked
        let wrong = ModelConfig { precisions: 6, ..model_config };
        let err = SequenceModel::<f32>::new(wrong, 1).err().unwrap();
        assert!(err.to_string().contains("two distances for each of its 6 outputs, not 6"), "{err}");
    }

    #[test]
    fn the_band_setting_reads_true_false_and_names_and_writes_back_as_read() {
        #[derive(Debug, Deserialize, Serialize, PartialEq)]
        struct Task {
            uncertainty: Uncertainty,
        }
        for (text, want) in [
            ("uncertainty = false", Uncertainty::None),
            ("uncertainty = true", Uncertainty::Gaussian),
            ("uncertainty = \"gaussian\"", Uncertainty::Gaussian),
            ("uncertainty = \"quantile\"", Uncertainty::Quantile),
            ("uncertainty = \"none\"", Uncertainty::None),
        ] {
            let task: Task = toml::from_str(text).unwrap();
            assert_eq!(task.uncertainty, want, "{text}");
            assert_eq!(toml::from_str::<Task>(&toml::to_string(&task).unwrap()).unwrap(), task);
        }
        assert_eq!(toml::to_string(&Task { uncertainty: Uncertainty::Gaussian }).unwrap().trim(), "uncertainty = true");
        for bad in ["uncertainty = \"normal\"", "uncertainty = 2"] {
            let err = toml::from_str::<Task>(bad).unwrap_err().to_string();
            assert!(err.contains("expected false, true (\"gaussian\") or \"quantile\""), "{bad}: {err}");
        }
    }

    #[test]
    fn a_task_forecasting_some_signals_reads_them_all_and_scores_those_alone() {
        // synthetic ramps: `b` alone forecast 2 steps ahead with a band, from `a` and `b`
        let series = ramps();
        let config = PredictionConfig {
            window: 5,
            steps_ahead: 2,
            uncertainty: Uncertainty::Gaussian,
            targets: vec!["b".into()],
            ..PredictionConfig::default()
        };
        let model_config = config.model_config(2);
        assert_eq!((model_config.encoder.input_size, model_config.outputs, model_config.precisions), (4, 2, 2));
        let model = SequenceModel::<f32>::new(model_config, 3).unwrap();
        let task = PredictionTask::from_config(&series, &config).unwrap();
        assert_eq!((task.targets().names(), task.targets().indices()), (&["b".to_string()][..], &[1][..]));
        assert_eq!(task.targets().scaler().mean, [series.scaler.mean[1]]);

        // the inputs are every signal's; the targets, masks and bases b's entries of the
        // task forecasting both
        let every =
            PredictionTask::from_config(&series, &PredictionConfig { targets: Vec::new(), ..config.clone() }).unwrap();
        let mut rng = Rng::new(0);
        let (one, both) = (task.make_batch(&[0, 7, 20], &mut rng), every.make_batch(&[0, 7, 20], &mut rng));
        assert_eq!(one.x, both.x);
        for (one, both) in [(&one.target, &both.target), (&one.mask, &both.mask), (&one.base, &both.base)] {
            assert_eq!(*one, both.chunks_exact(2).map(|ab| ab[1]).collect::<Vec<f32>>());
        }
        // persistence and the mean score as b's own entries of the full task's
        for ((name, one), (_, both)) in
            task.baselines(&series.test).unwrap().iter().zip(&every.baselines(&series.test).unwrap())
        {
            assert!((one.micro_mse - both.per_signal_mse[1]).abs() < 1e-9, "{name}");
            assert!((one.micro_mse_original - both.per_signal_mse_original[1]).abs() < 1e-6, "{name}");
        }
        // a fresh Gaussian head starts at persistence's band of b
        let variance = task.persistence_variance(2);
        assert_eq!(variance.len(), 2);
        assert!((variance[0] - every.persistence_variance(2)[1]).abs() < 1e-12);

        // the stream forecasts b as the whole sequence does, scored against b's truth
        let forecasts = task.forecasts(&model, 10..40).unwrap();
        let truth: Vec<f32> = (10..40).map(|n| series.grid.values[n * 2 + 1]).collect();
        assert_eq!((forecasts.model.len(), forecasts.truth.clone()), (30, truth));
        let mut live = task.stream(&model).unwrap();
        assert_eq!((live.signals().len(), live.targets()), (2, &["b".to_string()][..]));
        for n in 0..39 {
            let (z, _) = live.step_direct_standardised(&series.original_step(n)).unwrap();
            assert_eq!(z.len(), 2);
            if n + 1 >= 10 {
                assert!((z[0] - forecasts.model[n + 1 - 10]).abs() < 1e-5, "step {n}");
            }
        }
        let f = live.step_forecast(&series.original_step(39), 2).unwrap();
        assert_eq!((f.values.len(), f.low.len(), f.sigma_standardised.len()), (2, 2, 2));
        // past the direct steps a closed loop would need `a`: refused before the step is fed
        let unmoved = live.clone();
        let err = live.step_forecast(&series.original_step(40), 3).err().unwrap().to_string();
        assert!(err.contains("forecasts 1 of the 2 signals it reads") && err.contains("task.steps_ahead = 3"), "{err}");
        let err = live.step_forecast_sampled(&series.original_step(40), 3, 10, &mut rng).err().unwrap().to_string();
        assert!(err.contains("task.steps_ahead = 3"), "{err}");
        assert_eq!(
            live.step(&series.original_step(40)).unwrap(),
            unmoved.clone().step(&series.original_step(40)).unwrap()
        );
        let horizon = task.evaluate_horizon(&model, &series.test, 2).unwrap();
        assert_eq!(horizon.model[1].per_signal_mse.len(), 1);
        assert!(task.evaluate_horizon(&model, &series.test, 3).is_err());

        for (targets, why) in
            [(vec!["c"], "no signal `c` in the data; its signals are a, b"), (vec!["b", "b"], "`b` is named twice")]
        {
            let targets: Vec<String> = targets.into_iter().map(String::from).collect();
            let err = PredictionTask::new(&series, 5, true).unwrap().with_targets(&targets).err().unwrap().to_string();
            assert!(err.contains("task.targets") && err.contains(why), "{err}");
        }
    }

    #[test]
    fn zero_steps_ahead_and_a_model_of_the_wrong_width_are_refused() {
        let series = ramps();
        let task = PredictionTask::new(&series, 5, true).unwrap();
        let err = PredictionTask::new(&series, 5, true).unwrap().forecasting(0).err().unwrap();
        assert!(err.to_string().contains("steps_ahead"), "{err}");
        let config = PredictionConfig::default();
        let odd = config.model.model_config(4, HeadKind::Linear, 3);
        let model = SequenceModel::<f32>::new(odd, 1).unwrap();
        let err = task.steps_ahead_of(&model).err().unwrap();
        assert!(err.to_string().contains("3 outputs per step"), "{err}");
        let direct = PredictionConfig { steps_ahead: 3, ..config }.model_config(2);
        let model = SequenceModel::<f32>::new(direct, 1).unwrap();
        assert_eq!(task.steps_ahead_of(&model).unwrap(), 3);
    }

    /// Synthetic: the ramps on an hourly grid from 2024-01-01 00:00 UTC (a Monday), read
    /// with the day and week calendar inputs.
    fn ramps_with_calendar() -> (PreparedSeries, Calendar) {
        let mut series = ramps();
        series.grid.bin_seconds = 3600;
        series.grid.start = 1_704_067_200;
        series.entity_starts = vec![series.grid.start];
        let calendar = Calendar::new(&[CalendarCycle::Day, CalendarCycle::Week], 0.0).unwrap();
        (series.with_calendar(calendar.clone()).unwrap(), calendar)
    }

    #[test]
    fn calendar_inputs_are_each_steps_phases_in_batches_and_in_a_stream() {
        let (series, calendar) = ramps_with_calendar();
        let (c, k) = (2, calendar.width());
        let width = 2 * c + k;
        // a stream from step 10: row t reads step 10 + t's phases after its values and mask
        let batch = make_stream_batch(&series, std::slice::from_ref(&(10..40)), 30, 11, true, 1, &[0, 1], |s| {
            part_end(&series.train, s)
        });
        let mut expected = vec![0.0f32; k];
        for t in 0..30 {
            calendar.write(series.grid.start + (10 + t as i64) * 3600, &mut expected);
            assert_eq!(batch.x[t * width + 2 * c..(t + 1) * width], expected[..], "step {}", 10 + t);
        }
        // hour 13 of the first Monday: the day's phase 13/24
        let day = f64::from(batch.x[3 * width + 2 * c]).atan2(f64::from(batch.x[3 * width + 2 * c + 1]));
        assert!((day.rem_euclid(std::f64::consts::TAU) / std::f64::consts::TAU - 13.0 / 24.0).abs() < 1e-6);

        // the model reads them: a stream given each step's time forecasts as the whole
        // sequence does, and another time of day gives other forecasts
        let config = PredictionConfig { calendar_inputs: k, ..PredictionConfig::default() };
        let model = SequenceModel::<f32>::new(config.model_config(c), 5).unwrap();
        let task = PredictionTask::from_config(&series, &PredictionConfig { window: 12, ..config.clone() }).unwrap();
        let whole = make_stream_batch(&series, std::slice::from_ref(&(0..40)), 40, 11, true, 1, &[0, 1], |s| {
            part_end(&series.train, s)
        });
        let out = model.forward_at(&task.input(&whole), HeadSteps::All).unwrap();
        let sequence = predictions(&out.mean, &whole.base);
        let streamed = |shift: i64| -> Vec<f32> {
            let mut live = task.stream(&model).unwrap();
            assert!(live.reads_calendar());
            live.at(series.step_time(0) + shift);
            (0..40).flat_map(|n| live.step_direct_standardised(&series.original_step(n)).unwrap().0).collect()
        };
        let own = streamed(0);
        assert!(own.iter().zip(&sequence).all(|(a, b)| (a - b).abs() < 1e-5), "{own:?}\n{sequence:?}");
        let later = streamed(6 * 3600);
        assert!(own.iter().zip(&later).any(|(a, b)| (a - b).abs() > 1e-4), "six hours later reads other phases");

        // closed loop: the copy past the direct step reads the phases of the steps it runs on
        let mut live = task.stream(&model).unwrap();
        live.at(series.step_time(0));
        for n in 0..20 {
            live.step(&series.original_step(n)).unwrap();
        }
        let mut by_hand = live.clone();
        let ahead = live.step_ahead(&series.original_step(20), 3).unwrap();
        let mut fed = by_hand.step(&series.original_step(20)).unwrap();
        for h in 1..3 {
            fed = by_hand.step(&fed.iter().map(|&v| Some(v)).collect::<Vec<_>>()).unwrap();
            assert_eq!(ahead[h * c..(h + 1) * c], fed[..], "step {h} ahead");
        }

        // without a time the stream cannot read the calendar, and says so
        let err = task.stream(&model).unwrap().step(&series.original_step(0)).unwrap_err().to_string();
        assert!(err.contains("reads the calendar (day sin, day cos, week sin, week cos)"), "{err}");
        // a config without the calendar inputs does not fit the data
        let err = PredictionTask::from_config(&series, &PredictionConfig::default()).err().unwrap().to_string();
        assert!(err.contains("reads 0 per step, the data has 4"), "{err}");
        // nor does a model of another width stream
        let plain = SequenceModel::<f32>::new(PredictionConfig::default().model_config(c), 5).unwrap();
        let err = task.stream(&plain).err().unwrap().to_string();
        assert!(err.contains("and 4 calendar inputs (day sin"), "{err}");
    }

    #[test]
    fn a_runs_calendar_travels_in_its_scaler_file_and_older_files_read_without_one() {
        let (series, calendar) = ramps_with_calendar();
        let fitted = FittedScaler::of(&series);
        assert_eq!(fitted.calendar, calendar);
        let text = serde_json::to_string(&fitted).unwrap();
        assert_eq!(serde_json::from_str::<FittedScaler>(&text).unwrap(), fitted);
        let plain = FittedScaler::of(&ramps());
        let older = serde_json::to_string(&plain).unwrap();
        assert!(!older.contains("calendar"), "{older}");
        assert_eq!(serde_json::from_str::<FittedScaler>(&older).unwrap().calendar, Calendar::default());
        let moved = FittedScaler { bin_seconds: 3600, ..plain }.difference(&fitted).unwrap();
        assert!(moved.contains("calendar inputs [] at UTC+0 s → [day sin, day cos, week sin, week cos]"), "{moved}");
        // elapsed times (PhysioNet's H:MM) have no time of day
        let mut elapsed = ramps();
        elapsed.grid.clock = Clock::Elapsed;
        let err = elapsed.with_calendar(calendar).err().unwrap().to_string();
        assert!(err.contains("data.calendar") && err.contains("not calendar times"), "{err}");
    }

    #[test]
    fn errors_by_time_group_the_streamed_forecasts_and_pool_to_the_horizons_first_step() {
        // synthetic: the ramps from Monday 2024-01-01 00:00 UTC, hourly, read at UTC+2
        let (mut series, _) = ramps_with_calendar();
        series.calendar.utc_offset_seconds = 7200;
        let c = 2;
        let config = PredictionConfig { calendar_inputs: 4, window: 6, ..PredictionConfig::default() };
        let model = SequenceModel::<f32>::new(config.model_config(c), 9).unwrap();
        let task = PredictionTask::from_config(&series, &config).unwrap();
        let pooled = task.evaluate_horizon(&model, &series.test, 1).unwrap();
        for group in TimeGroup::ALL {
            let by = task.evaluate_by_time(&model, &series.test, group).unwrap();
            assert_eq!(by.model.len(), group.labels().len());
            for (all, parts) in [(&pooled.model[0], &by.model), (&pooled.persistence[0], &by.baseline)] {
                let scored: u64 = parts.iter().map(|m| m.scored).sum();
                let squares: f64 = parts.iter().map(|m| m.micro_mse * m.scored as f64).sum();
                assert_eq!(scored, all.scored, "{group:?}");
                assert!((squares / scored as f64 - all.micro_mse).abs() < 1e-9, "{group:?}");
            }
        }
        // the test part (steps 80..100, a window of 6) forecasts steps 85..=99: hours 13..=27
        // UTC, 15..=29 local, on Thursday (day 3) and Friday
        let by_hour = task.evaluate_by_time(&model, &series.test, TimeGroup::HourOfDay).unwrap();
        let hours: Vec<usize> = (0..24).filter(|&h| by_hour.model[h].scored > 0).collect();
        let expected: Vec<usize> = (0..24).filter(|h| !(6..15).contains(h)).collect();
        assert_eq!(hours, expected);
        let by_day = task.evaluate_by_time(&model, &series.test, TimeGroup::Weekday).unwrap();
        let days: Vec<usize> = (0..7).filter(|&d| by_day.model[d].scored > 0).collect();
        assert_eq!(days, [3, 4], "Thursday and Friday");
        assert_eq!(TimeGroup::Weekday.labels()[3], "Thu");
        let by_month = task.evaluate_by_time(&model, &series.test, TimeGroup::Month).unwrap();
        assert!(by_month.model.iter().enumerate().all(|(m, e)| (e.scored > 0) == (m == 0)), "all in January");
        let mut elapsed = ramps();
        elapsed.grid.clock = Clock::Elapsed;
        let task = PredictionTask::new(&elapsed, 6, true).unwrap();
        let plain = SequenceModel::<f32>::new(PredictionConfig::default().model_config(c), 9).unwrap();
        let err = task.evaluate_by_time(&plain, &elapsed.test, TimeGroup::HourOfDay).err().unwrap().to_string();
        assert!(err.contains("no time of day"), "{err}");
    }
}
