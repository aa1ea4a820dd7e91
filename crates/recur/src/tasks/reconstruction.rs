//! Reconstruction with missingness diffusion, the deck's second task. During training,
//! observed values are hidden on purpose by a corruption whose strength s ~ U(0, 1) is
//! drawn per window (a diffusion-like schedule): isolated points at rate s·p, and about
//! s·g contiguous gaps of up to s·f·L steps, each across a random subset of up to ⌈s·C⌉
//! signals. The model reads the corrupted window `[z ⊙ m̃, m̃]` and its Gaussian head
//! gives x̂_t and a precision λ̂_t at every step; the loss is the deck's NLL over the
//! hidden entries. Evaluation hides values the same way with a fixed seed, so every
//! method is scored on the same hidden entries, whose ground truth is known.
//!
//! With `residual` (the default) the model also reads the linear interpolation of the
//! visible values (`[z ⊙ m̃, m̃, x̃_interp]`) and its head predicts a correction,
//! x̂ = x̃_interp + W z + b: scale comes from the data (the test part of a series can be far
//! outside the training range), and the network learns where interpolation is wrong.

use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::calibration::{band_score, BandCalibration};
use super::metrics::{ErrorAccumulator, Metrics, BAND_ALPHA};
use super::prediction::{ErrorsByTime, TimeGroup};
use super::{LiveState, StepClock, StreamTraining};
use crate::classic::gradients::LookBack;
use crate::data::{FittedScaler, PreparedSeries, Standardizer};
use crate::error::{Error, Result};
use crate::losses::gaussian_nll;
use crate::model::{HeadKind, HeadOutput, ModelConfig, ModelSection, ModelStream, SequenceModel};
use crate::rng::Rng;
use crate::rnn::SequenceBatch;
use crate::train::{train, Task, TrainConfig, TrainReport, Truncation};

/// The corruption process.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MissingnessDiffusion {
    /// p: isolated points are hidden at rate s·p.
    pub point_rate: f64,
    /// g: about s·g gaps per window.
    pub gaps: f64,
    /// f: a gap spans up to s·f·L steps.
    pub gap_fraction: f64,
}

impl Default for MissingnessDiffusion {
    fn default() -> Self {
        MissingnessDiffusion { point_rate: 0.3, gaps: 3.0, gap_fraction: 0.4 }
    }
}

impl MissingnessDiffusion {
    /// Which observed entries of a `[L, C]` window to hide (at least one when any is observed).
    pub fn hide(&self, observed: &[bool], steps: usize, channels: usize, rng: &mut Rng) -> Vec<bool> {
        let s = rng.uniform();
        let mut hidden = vec![false; observed.len()];
        for (h, &o) in hidden.iter_mut().zip(observed) {
            *h = o && rng.uniform() < s * self.point_rate;
        }
        let gaps = (s * self.gaps + rng.uniform()).floor() as usize;
        for _ in 0..gaps {
            let longest = ((s * self.gap_fraction * steps as f64).ceil() as usize).clamp(1, steps);
            let len = 1 + rng.below(longest);
            let start = rng.below(steps - len + 1);
            let mut signals: Vec<usize> = (0..channels).collect();
            rng.shuffle(&mut signals);
            let count = 1 + rng.below(((s * channels as f64).ceil() as usize).max(1));
            for &j in &signals[..count.min(channels)] {
                for t in start..start + len {
                    hidden[t * channels + j] |= observed[t * channels + j];
                }
            }
        }
        if !hidden.iter().any(|&h| h) {
            let candidates: Vec<usize> = (0..observed.len()).filter(|&k| observed[k]).collect();
            if !candidates.is_empty() {
                hidden[candidates[rng.below(candidates.len())]] = true;
            }
        }
        hidden
    }
}

/// A reconstruction run besides its data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconstructionConfig {
    pub model: ModelSection,
    /// L: steps per window.
    pub window: usize,
    /// Training windows start every `stride` steps.
    pub stride: usize,
    pub corruption: MissingnessDiffusion,
    /// Seed of the evaluation corruption (the same hidden entries for every method).
    pub evaluation_seed: u64,
    /// Read the interpolated series and predict a correction to it.
    pub residual: bool,
    /// Train on long streams with truncated BPTT instead of on windows (the corruption
    /// still drawn per `window` steps).
    pub stream: Option<StreamTraining>,
    /// The calendar inputs read after the signals' ([`crate::data::Calendar::width`]; the
    /// data's calendar).
    pub calendar_inputs: usize,
    pub train: TrainConfig,
}

impl Default for ReconstructionConfig {
    fn default() -> Self {
        ReconstructionConfig {
            model: ModelSection { bidirectional: true, ..ModelSection::default() },
            window: 48,
            stride: 4,
            corruption: MissingnessDiffusion::default(),
            evaluation_seed: 2024,
            residual: true,
            stream: None,
            calendar_inputs: 0,
            train: TrainConfig { patience: 50, ..TrainConfig::default() },
        }
    }
}

impl ReconstructionConfig {
    /// The model for `channels` signals: it reads `[z ⊙ m̃, m̃]` (and the interpolation
    /// when residual, then the calendar inputs) and gives a mean per signal and a precision
    /// per step.
    pub fn model_config(&self, channels: usize) -> ModelConfig {
        let inputs = if self.residual { 3 } else { 2 } * channels + self.calendar_inputs;
        self.model.model_config(inputs, HeadKind::Gaussian, channels)
    }
}

/// Corrupted windows: `x: [L, B, 2C or 3C]`; `target, hidden, interpolated, carried:
/// [L, B, C]` (hidden: 0/1, the entries to reconstruct).
pub struct ReconstructionBatch {
    pub x: Vec<f32>,
    pub steps: usize,
    pub batch: usize,
    pub target: Vec<f32>,
    pub hidden: Vec<f32>,
    /// What the model saw (observed and not hidden).
    pub visible: Vec<bool>,
    /// The baselines from the visible values.
    pub interpolated: Vec<f32>,
    pub carried: Vec<f32>,
    residual: bool,
    /// Each row's length, where they differ (streams).
    lengths: Option<Vec<usize>>,
}

/// Windows of `window` steps at `starts`, with values hidden by `corruption` (none hidden
/// without one).
fn make_batch(
    series: &PreparedSeries,
    starts: &[usize],
    window: usize,
    corruption: Option<&MissingnessDiffusion>,
    residual: bool,
    rng: &mut Rng,
) -> ReconstructionBatch {
    let rows: Vec<Range<usize>> = starts.iter().map(|&s| s..s + window).collect();
    make_rows(series, &rows, window, window, corruption, residual, rng)
}

/// One row per range of steps (at most `steps` long; a shorter one is padded, nothing
/// visible or hidden there, and given its length), with values hidden by `corruption`
/// drawn per consecutive `segment` steps (a window's length: a stream is corrupted as the
/// windows it is made of would be).
fn make_rows(
    series: &PreparedSeries,
    rows: &[Range<usize>],
    window: usize,
    segment: usize,
    corruption: Option<&MissingnessDiffusion>,
    residual: bool,
    rng: &mut Rng,
) -> ReconstructionBatch {
    let c = series.grid.channels();
    let b = rows.len();
    let signal_inputs = if residual { 3 * c } else { 2 * c };
    let width = signal_inputs + series.calendar.width();
    let mut batch = ReconstructionBatch {
        x: vec![0.0; window * b * width],
        steps: window,
        batch: b,
        target: vec![0.0; window * b * c],
        hidden: vec![0.0; window * b * c],
        visible: vec![false; window * b * c],
        interpolated: Vec::new(),
        carried: Vec::new(),
        residual,
        lengths: rows.iter().any(|r| r.len() < window).then(|| rows.iter().map(|r| r.len().min(window)).collect()),
    };
    for (row, range) in rows.iter().enumerate() {
        let (s, len) = (range.start, range.len().min(window));
        let observed = &series.grid.observed[s * c..(s + len) * c];
        let hide: Vec<bool> = match corruption {
            Some(process) => observed
                .chunks(segment.max(1) * c)
                .flat_map(|part| process.hide(part, part.len() / c, c, rng))
                .collect(),
            None => vec![false; observed.len()],
        };
        for t in 0..len {
            for j in 0..c {
                let (k, at) = ((s + t) * c + j, (t * b + row) * c + j);
                let seen = observed[t * c + j] && !hide[t * c + j];
                batch.visible[at] = seen;
                batch.target[at] = series.grid.values[k];
                batch.hidden[at] = hide[t * c + j] as u8 as f32;
                let xi = (t * b + row) * width;
                batch.x[xi + j] = if seen { series.grid.values[k] } else { 0.0 };
                batch.x[xi + c + j] = seen as u8 as f32;
            }
            let xi = (t * b + row) * width;
            series.write_calendar(s + t, &mut batch.x[xi + signal_inputs..xi + width]);
        }
    }
    (batch.interpolated, batch.carried) = baselines(&batch, c);
    if residual {
        for n in 0..window * b {
            batch.x[n * width + 2 * c..n * width + 3 * c].copy_from_slice(&batch.interpolated[n * c..(n + 1) * c]);
        }
    }
    batch
}

/// The model's reconstruction: the head's mean, plus the interpolation when residual.
fn reconstruction(out: &HeadOutput<f32>, batch: &ReconstructionBatch) -> Vec<f32> {
    if batch.residual {
        out.mean.iter().zip(&batch.interpolated).map(|(m, i)| m + i).collect()
    } else {
        out.mean.clone()
    }
}

/// Reconstruction as a [`Task`].
pub struct ReconstructionTask<'a> {
    pub series: &'a PreparedSeries,
    pub config: ReconstructionConfig,
    /// The training windows' steps, or the training streams' (each range of the training
    /// part cut into streams of `stream.steps`, the last of a range shorter).
    train_rows: Vec<Range<usize>>,
    /// Conformal factors of each signal's band, σ ↦ κ_j σ ([`ReconstructionTask::with_calibration`]).
    pub(super) calibration: Option<BandCalibration>,
}

/// Metrics of a method on the hidden entries, and (for the model) the fraction of hidden
/// truths inside x̂ ± 2/√λ̂.
#[derive(Clone, Debug, Serialize)]
pub struct ReconstructionScore {
    pub name: String,
    pub metrics: Metrics,
    pub coverage_2sigma: Option<f64>,
}

impl ReconstructionTask<'_> {
    /// A stream through a causal `model` for one live series: each
    /// [`ReconstructionStream::step`] takes the newest grid step and returns every signal's
    /// reconstruction at that step with its σ = 1/√λ̂, the state carried: missing values
    /// filled as they happen, with an uncertainty.
    ///
    /// # Errors
    /// A residual config (it reads the interpolation between observations, which needs
    /// the next one), or a model that reads the future (coupled bidirectional).
    pub fn stream<'m>(&self, model: &'m SequenceModel<f32>) -> Result<ReconstructionStream<'m>> {
        let fitted = FittedScaler::of(self.series);
        ReconstructionStream::new(model, &fitted, self.config.residual, self.calibration.clone())
    }

    /// The task with each signal's band scaled by `calibration` (fitted by
    /// [`ReconstructionTask::calibrate_bands`]; `None`: the model's own λ̂).
    pub fn with_calibration(mut self, calibration: Option<BandCalibration>) -> Self {
        self.calibration = calibration;
        self
    }

    /// κ of signal `j`'s band (1 without a calibration).
    fn band_factor(&self, j: usize) -> f32 {
        BandCalibration::factor_or_one(self.calibration.as_ref(), j)
    }

    /// σ of signal `j`'s value at a step with precision λ̂: κ_j / √λ̂.
    fn sigma(&self, j: usize, precision: f32) -> f32 {
        band_sigma(self.band_factor(j), precision)
    }

    /// Split-conformal factors for each signal's ±2σ band (one step: the band of every
    /// reconstructed value), fitted on the entries [`ReconstructionTask::evaluate`] hides in
    /// `part` — one the model did not train on, the validation part (see
    /// [`crate::tasks::calibration`]; this task's own calibration is not applied to them).
    ///
    /// # Errors
    /// A part shorter than a window, a model that does not fit, a signal never hidden.
    pub fn calibrate_bands(&self, model: &SequenceModel<f32>, part: &[Range<usize>]) -> Result<BandCalibration> {
        let c = self.series.grid.channels();
        let mut scores = vec![Vec::new(); c];
        for batch in &self.evaluation_batches(part)? {
            let (x_hat, precision) = self.reconstruct(model, batch)?;
            for (k, ((&p, &t), _)) in
                x_hat.iter().zip(&batch.target).zip(&batch.hidden).enumerate().filter(|(_, (_, &h))| h > 0.0)
            {
                let sigma = band_sigma(1.0, precision[k / c]);
                scores[k % c].push(band_score(p, p - 2.0 * sigma, p + 2.0 * sigma, t));
            }
        }
        BandCalibration::fit(self.series.grid.signals.clone(), scores, BAND_ALPHA, 0)
    }

    /// The entries [`ReconstructionTask::evaluate`] hides in `part`, on the whole grid
    /// `[N, C]` (from its windows, which tile each range of the part).
    ///
    /// # Errors
    /// A part shorter than a window.
    pub fn evaluation_hidden(&self, part: &[Range<usize>]) -> Result<Vec<bool>> {
        let (window, c) = (self.config.window, self.series.grid.channels());
        let mut hidden = vec![false; self.series.grid.observed.len()];
        for (chunk, batch) in self.evaluation_windows(part)? {
            for (row, &s) in chunk.iter().enumerate() {
                for t in 0..window {
                    for j in 0..c {
                        hidden[(s + t) * c + j] |= batch.hidden[(t * batch.batch + row) * c + j] > 0.0;
                    }
                }
            }
        }
        Ok(hidden)
    }

    /// Metrics of a streamable `model` (see [`ReconstructionTask::stream`]) run as it is
    /// deployed: over each entity from its first step, its state carried throughout, with
    /// the entries [`ReconstructionTask::evaluate`] hides in `part` hidden, and scored on
    /// them (the same entries as the windows and the baselines).
    ///
    /// # Errors
    /// A model or config that cannot stream, a part shorter than a window.
    pub fn evaluate_streamed(&self, model: &SequenceModel<f32>, part: &[Range<usize>]) -> Result<Metrics> {
        Ok(self.streamed_grouped(model, part, 1, |_| 0)?.swap_remove(0).finish())
    }

    /// [`ReconstructionTask::evaluate_streamed`] of each entity apart, on the entries
    /// [`ReconstructionTask::evaluate_by_entity`] scores it on: (entity index, metrics).
    ///
    /// # Errors
    /// As [`ReconstructionTask::evaluate_streamed`].
    pub fn evaluate_streamed_by_entity(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
    ) -> Result<Vec<(usize, Metrics)>> {
        let entities = self.series.entities.len();
        let grouped = self.streamed_grouped(model, part, entities, |start| self.series.entity_index(start))?;
        Ok(grouped.iter().map(ErrorAccumulator::finish).enumerate().filter(|(_, m)| m.scored > 0).collect())
    }

    /// The errors of [`ReconstructionTask::evaluate_streamed`] in `groups` groups, the
    /// range of `part` starting at step s in group `group_of(s)`.
    fn streamed_grouped(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        groups: usize,
        group_of: impl Fn(usize) -> usize,
    ) -> Result<Vec<ErrorAccumulator>> {
        if self.config.residual || !model.is_causal() {
            return Err(Error::invalid("streamed evaluation", "the model or its input reads the future"));
        }
        let (window, c) = (self.config.window, self.series.grid.channels());
        let hidden = self.evaluation_hidden(part)?;
        let (values, observed) = (&self.series.grid.values, &self.series.grid.observed);
        let mut acc = vec![ErrorAccumulator::new(c); groups];
        for r in part.iter().filter(|r| r.len() >= window) {
            let steps = self.series.entity_of(r.start).start..r.end;
            let width = 2 * c + self.series.calendar.width();
            let mut x = vec![0.0f32; steps.len() * width];
            for (t, k) in steps.clone().enumerate() {
                for j in 0..c {
                    let seen = observed[k * c + j] && !hidden[k * c + j];
                    (x[t * width + j], x[t * width + c + j]) = if seen { (values[k * c + j], 1.0) } else { (0.0, 0.0) };
                }
                self.series.write_calendar(k, &mut x[t * width + 2 * c..(t + 1) * width]);
            }
            let out = model.forward(&SequenceBatch { x: &x, steps: steps.len(), batch: 1, lengths: None })?;
            let scored = (r.start - steps.start) * c..steps.len() * c;
            let mask: Vec<f32> = hidden[r.start * c..r.end * c].iter().map(|&h| h as u8 as f32).collect();
            acc[group_of(r.start)].add(&out.mean[scored], &values[r.start * c..r.end * c], &mask, &self.series.scaler);
        }
        Ok(acc)
    }
}

/// One live series through a causal reconstruction model, one grid step at a time (see
/// [`ReconstructionTask::stream`]).
#[derive(Clone)]
pub struct ReconstructionStream<'m> {
    stream: ModelStream<'m, f32>,
    scaler: Standardizer,
    signals: Vec<String>,
    x: Vec<f32>,
    /// κ of each signal's band.
    band_factors: Vec<f32>,
    clock: StepClock,
    /// The steps fed.
    steps: usize,
}

impl<'m> ReconstructionStream<'m> {
    /// A stream through a trained causal reconstruction `model` without its data: the
    /// signals and standardisation it was trained with (`fitted`, kept in its run folder),
    /// whether it reads the interpolation (`residual`: it cannot stream), and its bands'
    /// `calibration` if any — what [`ReconstructionTask::stream`] builds from the data.
    ///
    /// # Errors
    /// A residual model, a model that does not read the signals' values and mask, one that
    /// cannot stream (coupled bidirectional), a calibration for other signals.
    pub fn new(
        model: &'m SequenceModel<f32>,
        fitted: &FittedScaler,
        residual: bool,
        calibration: Option<BandCalibration>,
    ) -> Result<Self> {
        if residual {
            return Err(Error::invalid(
                "stream",
                "this reconstruction reads the linear interpolation between observations, which needs the next one; train with task.residual = false (and a causal model) to stream",
            ));
        }
        let c = fitted.signals.len();
        let clock = StepClock::of(fitted);
        let inputs = model.config().encoder.input_size;
        if inputs != 2 * c + clock.width() || model.config().outputs != c {
            return Err(Error::invalid(
                "model",
                format!(
                    "it reads {inputs} inputs and writes {} outputs per step; {c} signals need 2 × {c}{} and {c}",
                    model.config().outputs,
                    super::calendar_clause(&fitted.calendar)
                ),
            ));
        }
        BandCalibration::check_signals(calibration.as_ref(), &fitted.signals)?;
        Ok(ReconstructionStream {
            stream: model.stream(1)?,
            scaler: fitted.scaler.clone(),
            signals: fitted.signals.clone(),
            x: vec![0.0; 2 * c + clock.width()],
            band_factors: (0..c).map(|j| BandCalibration::factor_or_one(calibration.as_ref(), j)).collect(),
            clock,
            steps: 0,
        })
    }
}

impl ReconstructionStream<'_> {
    /// The signals, in the order [`ReconstructionStream::step`] takes and returns them.
    pub fn signals(&self) -> &[String] {
        &self.signals
    }

    /// Whether the model reads calendar inputs: then the stream needs the time of the
    /// step it is fed next ([`ReconstructionStream::at`]) before its first step.
    pub fn reads_calendar(&self) -> bool {
        !self.clock.calendar.is_empty()
    }

    /// The next step fed is at `time` (seconds since the Unix epoch, UTC: its bin's start);
    /// each step after it one grid step later, unless given again.
    pub fn at(&mut self, time: i64) {
        self.clock.at(time);
    }

    /// The standardisation of its signals.
    pub fn scaler(&self) -> &Standardizer {
        &self.scaler
    }

    /// What it carries from step to step: the model's states, the steps fed, the next
    /// step's time ([`ReconstructionStream::restore`] goes on from it).
    pub fn state(&self) -> LiveState {
        LiveState { model: self.stream.carried(), steps: self.steps, last: Vec::new(), next_time: self.clock.next }
    }

    /// Goes on from `state` ([`ReconstructionStream::state`] of a stream of the same run).
    ///
    /// # Errors
    /// Another model's state (named), a non-finite value, last observations (a
    /// prediction stream's). The stream is then as it was.
    pub fn restore(&mut self, state: &LiveState) -> Result<()> {
        if !state.last.is_empty() {
            return Err(Error::invalid("live state", "a prediction stream's (it keeps last observations)"));
        }
        let mut stream = self.stream.clone();
        stream.restore(&state.model)?;
        (self.stream, self.steps, self.clock.next) = (stream, state.steps, state.next_time);
        Ok(())
    }

    /// Feeds the values of one grid step (original units; `None` where missing) and
    /// returns each signal's reconstruction at this step with its ±2σ band, in original units.
    ///
    /// # Errors
    /// A step with the wrong number of signals or a non-finite value (named); a model that
    /// reads the calendar and no time given ([`ReconstructionStream::at`]).
    pub fn step(&mut self, values: &[Option<f32>]) -> Result<Vec<Reconstructed>> {
        super::encode_step(values, &self.signals, &self.scaler, &mut self.x)?;
        let c = self.signals.len();
        self.clock.write_next(&mut self.x[2 * c..])?;
        let out = self.stream.step(&self.x)?;
        self.steps += 1;
        let precision = out.precision.first().copied().ok_or_else(|| {
            Error::invalid("stream", "the model has no precision head (a reconstruction model has a Gaussian one)")
        })?;
        Ok((0..self.signals.len())
            .map(|j| {
                let (low, high) = self.scaler.band(j, out.mean[j], band_sigma(self.band_factors[j], precision));
                Reconstructed { value: self.scaler.invert(j, out.mean[j]), low, high }
            })
            .collect())
    }
}

impl ReconstructionStream<'_> {
    /// Each observed signal `j` of the next step's `values` reconstructed with its value
    /// alone hidden (the other signals of the step read), as [`ReconstructionStream::step`]
    /// would on `values` with `values[j]` missing (up to the rounding of a batched matrix
    /// product, ~1e-6 relative): all of them in one batched step through copies of the
    /// stream's state, about twice as fast as one step each; the stream itself does not
    /// move. `None` where a signal has no value.
    ///
    /// # Errors
    /// As [`ReconstructionStream::step`].
    pub fn each_hidden(&self, values: &[Option<f32>]) -> Result<Vec<Option<Reconstructed>>> {
        let c = self.signals.len();
        // the step as read (its values checked), then one copy per observed signal with its
        // value and mask zeroed: as the step reads with that value missing
        let mut row = self.x.clone();
        super::encode_step(values, &self.signals, &self.scaler, &mut row)?;
        self.clock.write_calendar_of_next(&mut row[2 * c..])?;
        let observed: Vec<usize> = (0..c).filter(|&j| values[j].is_some()).collect();
        if observed.is_empty() {
            return Ok(vec![None; c]);
        }
        let width = row.len();
        let mut x = row.repeat(observed.len());
        for (r, &j) in observed.iter().enumerate() {
            (x[r * width + j], x[r * width + c + j]) = (0.0, 0.0);
        }
        let out = self.stream.replicated(observed.len()).step(&x)?;
        let precision_of = |r: usize| {
            out.precision.get(r).copied().ok_or_else(|| {
                Error::invalid("stream", "the model has no precision head (a reconstruction model has a Gaussian one)")
            })
        };
        let mut each = vec![None; c];
        for (r, &j) in observed.iter().enumerate() {
            let mean = out.mean[r * c + j];
            let (low, high) = self.scaler.band(j, mean, band_sigma(self.band_factors[j], precision_of(r)?));
            each[j] = Some(Reconstructed { value: self.scaler.invert(j, mean), low, high });
        }
        Ok(each)
    }
}

/// One signal's reconstruction at a streamed step and its ±2σ band ([`crate::data::Standardizer::band`]),
/// in original units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reconstructed {
    pub value: f32,
    pub low: f32,
    pub high: f32,
}

/// σ of a reconstructed value with precision λ̂ and its signal's conformal factor κ
/// (1 uncalibrated): κ / √λ̂ — for evaluation, filling and streaming alike.
fn band_sigma(factor: f32, precision: f32) -> f32 {
    factor / precision.sqrt()
}

impl<'a> ReconstructionTask<'a> {
    /// On data a run has not seen ([`PreparedSeries::is_unseen`]) the task evaluates and
    /// fills; it has nothing to train on.
    ///
    /// # Errors
    /// A window longer than a part; a config reading other calendar inputs than the data has.
    pub fn new(series: &'a PreparedSeries, config: ReconstructionConfig) -> Result<Self> {
        super::check_calendar_inputs(series, config.calendar_inputs)?;
        if series.is_unseen() {
            series.window_starts(&series.test, config.window, config.window, "test")?;
            return Ok(ReconstructionTask { series, config, train_rows: Vec::new(), calibration: None });
        }
        series.window_starts(&series.validation, config.window, config.window, "validation")?;
        series.window_starts(&series.test, config.window, config.window, "test")?;
        let train_rows = match config.stream {
            None => series
                .window_starts(&series.train, config.window, config.stride, "training")?
                .into_iter()
                .map(|s| s..s + config.window)
                .collect(),
            Some(stream) => {
                stream.truncation().check()?;
                super::cut_into_streams(series.train.iter().cloned(), stream.steps)
            }
        };
        if train_rows.is_empty() {
            return Err(Error::invalid("task.stream", "the training part is empty"));
        }
        Ok(ReconstructionTask { series, config, train_rows, calibration: None })
    }

    /// The evaluation batches of `part`: non-overlapping windows, corrupted with the fixed
    /// seed, [`EVALUATION_BATCH`] windows each.
    ///
    /// # Errors
    /// A part shorter than a window.
    pub fn evaluation_batches(&self, part: &[Range<usize>]) -> Result<Vec<ReconstructionBatch>> {
        Ok(self.evaluation_windows(part)?.into_iter().map(|(_, batch)| batch).collect())
    }

    /// [`ReconstructionTask::evaluation_batches`], each with the grid steps its windows start
    /// at (row by row).
    fn evaluation_windows(&self, part: &[Range<usize>]) -> Result<Vec<(Vec<usize>, ReconstructionBatch)>> {
        let window = self.config.window;
        let starts: Vec<usize> = self.series.window_starts(part, window, window, "evaluated")?;
        let mut rng = Rng::new(self.config.evaluation_seed);
        let (corruption, residual) = (Some(&self.config.corruption), self.config.residual);
        Ok(starts
            .chunks(EVALUATION_BATCH)
            .map(|chunk| (chunk.to_vec(), make_batch(self.series, chunk, window, corruption, residual, &mut rng)))
            .collect())
    }

    /// The model's reconstruction x̂ `[L, B, C]` and precision λ̂ `[L, B]` of a batch.
    ///
    /// # Errors
    /// A model that does not fit the batch.
    pub fn reconstruct(&self, model: &SequenceModel<f32>, batch: &ReconstructionBatch) -> Result<(Vec<f32>, Vec<f32>)> {
        let out = model.forward(&self.input(batch))?;
        Ok((reconstruction(&out, batch), out.precision))
    }

    /// Every step of `steps` (inside one entity) reconstructed from all its observations:
    /// (x̂ `[N, C]` standardised, each value's σ `[N, C]`: 1/√λ̂ of its step, times its
    /// signal's calibration factor). Windows tile the steps; the last one is aligned to
    /// the end.
    ///
    /// # Errors
    /// Fewer steps than a window, or a model that does not fit.
    pub fn fill(&self, model: &SequenceModel<f32>, steps: Range<usize>) -> Result<(Vec<f32>, Vec<f32>)> {
        let (window, c) = (self.config.window, self.series.grid.channels());
        let starts = self.series.window_starts(std::slice::from_ref(&steps), window, window, "filled")?;
        let mut starts = starts;
        if starts.last().is_some_and(|&s| s + window < steps.end) {
            starts.push(steps.end - window);
        }
        let mut x_hat = vec![0.0f32; steps.len() * c];
        let mut sigma = vec![0.0f32; steps.len() * c];
        let mut rng = Rng::new(0);
        for chunk in starts.chunks(256) {
            let batch = make_batch(self.series, chunk, window, None, self.config.residual, &mut rng);
            let (mean, precision) = self.reconstruct(model, &batch)?;
            for (row, &s) in chunk.iter().enumerate() {
                for t in 0..window {
                    let n = s + t - steps.start;
                    let at = t * batch.batch + row;
                    x_hat[n * c..(n + 1) * c].copy_from_slice(&mean[at * c..(at + 1) * c]);
                    for j in 0..c {
                        sigma[n * c + j] = self.sigma(j, precision[at]);
                    }
                }
            }
        }
        Ok((x_hat, sigma))
    }

    /// How far back a causal `model`'s reconstruction of the last step of a stretch reads
    /// ([`LookBack`]), over `count` stretches of `steps` steps from `part` spread as
    /// [`crate::tasks::PredictionTask::look_back`] spreads them, read as a stream reads the
    /// data: nothing hidden on purpose. The probe is on the reconstructed values (the
    /// precision adds none of its own).
    ///
    /// # Errors
    /// A residual task (the interpolation input reads the next observation), a part with no
    /// range of `steps` steps, or a model that reads the future.
    pub fn look_back(
        &self,
        model: &SequenceModel<f32>,
        (part_name, part): (&str, &[Range<usize>]),
        steps: usize,
        count: usize,
        seed: u64,
    ) -> Result<LookBack> {
        if self.config.residual {
            return Err(Error::invalid(
                "task.residual",
                "the interpolation input reads the next observation: the reconstruction is not causal",
            ));
        }
        super::look_back_over(self.series, model, (part_name, part), (steps, count, seed), |stretches| {
            make_rows(self.series, stretches, steps, steps, None, false, &mut Rng::new(0)).x
        })
    }

    /// The model and the baselines on `part`, all on the same hidden entries.
    ///
    /// # Errors
    /// A part shorter than a window, or a model that does not fit.
    pub fn evaluate(
        &self,
        model: Option<&SequenceModel<f32>>,
        part: &[Range<usize>],
    ) -> Result<Vec<ReconstructionScore>> {
        Ok(self.evaluate_grouped(model, part, 1, |_| 0)?.swap_remove(0))
    }

    /// [`ReconstructionTask::evaluate`] of each entity apart: (entity index, its scores) for
    /// each entity with a window in `part`. The values hidden are those `evaluate` hides in
    /// the whole part, so the entities' scores pool to its (each hidden value is scored
    /// once either way).
    ///
    /// # Errors
    /// As [`ReconstructionTask::evaluate`].
    pub fn evaluate_by_entity(
        &self,
        model: Option<&SequenceModel<f32>>,
        part: &[Range<usize>],
    ) -> Result<Vec<(usize, Vec<ReconstructionScore>)>> {
        let entities = self.series.entities.len();
        let grouped = self.evaluate_grouped(model, part, entities, |k| self.series.entity_index(k))?;
        Ok(grouped.into_iter().enumerate().filter(|(_, scores)| scores[0].metrics.scored > 0).collect())
    }

    /// The model's errors on the values [`ReconstructionTask::evaluate`] hides in `part`,
    /// and linear interpolation's, by the local time of the step each value was hidden at
    /// (its hour, weekday or month): when in the day a gap is hard to fill. The groups pool
    /// to `evaluate`'s scores.
    ///
    /// # Errors
    /// Data whose times are elapsed since each entity's start (no time of day); as
    /// [`ReconstructionTask::evaluate`].
    pub fn evaluate_by_time(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        group: TimeGroup,
    ) -> Result<ErrorsByTime> {
        let grouped = self.evaluate_grouped(Some(model), part, group.labels().len(), group.of_steps(self.series)?)?;
        let (model, baseline) = grouped.into_iter().map(|g| (g[0].metrics.clone(), g[1].metrics.clone())).unzip();
        Ok(ErrorsByTime { group, model, baseline_name: "linear interpolation".into(), baseline })
    }

    /// The scores of [`ReconstructionTask::evaluate`] in `groups` groups, a value hidden at
    /// grid step k scored in group `group_of(k)`.
    fn evaluate_grouped(
        &self,
        model: Option<&SequenceModel<f32>>,
        part: &[Range<usize>],
        groups: usize,
        group_of: impl Fn(usize) -> usize,
    ) -> Result<Vec<Vec<ReconstructionScore>>> {
        let (c, scaler) = (self.series.grid.channels(), &self.series.scaler);
        const BASELINES: [&str; 3] = ["linear interpolation", "last observation carried forward", "training mean"];
        // per group: the model's accumulator, then the baselines'
        let mut acc = vec![vec![ErrorAccumulator::new(c); 1 + BASELINES.len()]; groups];
        for (chunk, batch) in &self.evaluation_windows(part)? {
            let zeros = vec![0.0; batch.target.len()];
            let ours = match model {
                Some(m) => {
                    let out = m.forward(&self.input(batch))?;
                    let sigma: Vec<f32> =
                        out.precision.iter().flat_map(|&l| (0..c).map(move |j| self.sigma(j, l))).collect();
                    Some((reconstruction(&out, batch), sigma))
                }
                None => None,
            };
            // in the batch's own order, step by step, so that one group sums as one pass would
            for t in 0..batch.steps {
                for (row, &start) in chunk.iter().enumerate() {
                    let acc = &mut acc[group_of(start + t)];
                    let at = (t * batch.batch + row) * c..(t * batch.batch + row + 1) * c;
                    let (target, hidden) = (&batch.target[at.clone()], &batch.hidden[at.clone()]);
                    if let Some((x_hat, sigma)) = &ours {
                        acc[0].add_with_sigma(&x_hat[at.clone()], target, hidden, &sigma[at.clone()], scaler);
                    }
                    acc[1].add(&batch.interpolated[at.clone()], target, hidden, scaler);
                    acc[2].add(&batch.carried[at.clone()], target, hidden, scaler);
                    acc[3].add(&zeros[at], target, hidden, scaler);
                }
            }
        }
        let name = model.map(|m| {
            format!("{}{:?}", if m.config().encoder.bidirectional { "Bi" } else { "" }, m.config().encoder.cell)
        });
        Ok(acc
            .into_iter()
            .map(|group| {
                let mut group = group.into_iter().map(|a| a.finish());
                let ours = group.next().expect("the model's accumulator");
                let mut scores: Vec<ReconstructionScore> = name
                    .iter()
                    .map(|name| ReconstructionScore {
                        name: name.clone(),
                        coverage_2sigma: ours.coverage_2sigma,
                        metrics: ours.clone(),
                    })
                    .collect();
                scores.extend(BASELINES.iter().zip(group).map(|(name, metrics)| ReconstructionScore {
                    name: name.to_string(),
                    metrics,
                    coverage_2sigma: None,
                }));
                scores
            })
            .collect())
    }
}

/// Windows per evaluation batch.
pub const EVALUATION_BATCH: usize = 256;

/// Linear interpolation between the nearest visible values before and after (carrying
/// the one side when the other is missing, the training mean when neither exists), and
/// last observation carried forward (the training mean before the first visible value),
/// per row and signal of a batch; `[L, B, C]`.
fn baselines(batch: &ReconstructionBatch, c: usize) -> (Vec<f32>, Vec<f32>) {
    let (steps, b) = (batch.steps, batch.batch);
    let mut interp = vec![0.0f32; batch.target.len()];
    let mut locf = vec![0.0f32; batch.target.len()];
    let at = |t: usize, row: usize, j: usize| (t * b + row) * c + j;
    for row in 0..b {
        for j in 0..c {
            let seen: Vec<usize> = (0..steps).filter(|&t| batch.visible[at(t, row, j)]).collect();
            // one sweep: `next` indexes the first seen step ≥ t (a search per step from
            // both ends was quadratic in the window, 7 % of the demo's time)
            let mut next = 0;
            for t in 0..steps {
                let k = at(t, row, j);
                while next < seen.len() && seen[next] < t {
                    next += 1;
                }
                let after = seen.get(next).copied();
                let before = if after == Some(t) { after } else { next.checked_sub(1).map(|p| seen[p]) };
                locf[k] = before.map_or(0.0, |s| batch.target[at(s, row, j)]);
                interp[k] = match (before, after) {
                    (Some(p), Some(n)) if p == n => batch.target[at(p, row, j)],
                    (Some(p), Some(n)) => {
                        let w = (t - p) as f32 / (n - p) as f32;
                        (1.0 - w) * batch.target[at(p, row, j)] + w * batch.target[at(n, row, j)]
                    }
                    (Some(p), None) => batch.target[at(p, row, j)],
                    (None, Some(n)) => batch.target[at(n, row, j)],
                    (None, None) => 0.0,
                };
            }
        }
    }
    (interp, locf)
}

impl Task for ReconstructionTask<'_> {
    type Batch = ReconstructionBatch;

    fn train_len(&self) -> usize {
        self.train_rows.len()
    }

    fn make_batch(&self, indices: &[usize], rng: &mut Rng) -> ReconstructionBatch {
        let rows: Vec<Range<usize>> = indices.iter().map(|&i| self.train_rows[i].clone()).collect();
        let (window, corruption) = (self.config.window, Some(&self.config.corruption));
        let steps = self.config.stream.map_or(window, |s| s.steps);
        make_rows(self.series, &rows, steps, window, corruption, self.config.residual, rng)
    }

    fn truncation(&self) -> Option<Truncation> {
        self.config.stream.map(|s| s.truncation())
    }

    fn chunk_loss(
        &self,
        out: &HeadOutput<f32>,
        batch: &ReconstructionBatch,
        steps: Range<usize>,
    ) -> Result<(f64, Vec<f32>, Vec<f32>)> {
        let (c, b) = (self.series.grid.channels(), batch.batch);
        let rows = steps.start * b * c..steps.end * b * c;
        let mean = match batch.residual {
            true => out.mean.iter().zip(&batch.interpolated[rows.clone()]).map(|(m, i)| m + i).collect(),
            false => out.mean.clone(),
        };
        Ok(gaussian_nll(&mean, &batch.target[rows.clone()], &batch.hidden[rows], &out.precision, c))
    }

    fn input<'b>(&self, batch: &'b ReconstructionBatch) -> SequenceBatch<'b, f32> {
        SequenceBatch { x: &batch.x, steps: batch.steps, batch: batch.batch, lengths: batch.lengths.as_deref() }
    }

    fn loss(&self, out: &HeadOutput<f32>, batch: &ReconstructionBatch) -> (f64, Vec<f32>, Vec<f32>) {
        // x̂ = base + mean, so ∂L/∂mean = ∂L/∂x̂
        gaussian_nll(
            &reconstruction(out, batch),
            &batch.target,
            &batch.hidden,
            &out.precision,
            self.series.grid.channels(),
        )
    }

    fn validate(&self, model: &SequenceModel<f32>) -> Result<f64> {
        if self.config.stream.is_some() && !self.config.residual {
            return Ok(self.evaluate_streamed(model, &self.series.validation)?.micro_mse);
        }
        let c = self.series.grid.channels();
        let mut acc = ErrorAccumulator::new(c);
        for batch in self.evaluation_batches(&self.series.validation)? {
            let out = model.forward(&self.input(&batch))?;
            acc.add(&reconstruction(&out, &batch), &batch.target, &batch.hidden, &self.series.scaler);
        }
        Ok(acc.finish().micro_mse)
    }
}

/// Trains a reconstruction model (checkpoints and the epoch log in `run_dir` when given).
///
/// # Errors
/// As [`ReconstructionTask::new`] and [`train`].
pub fn train_reconstruction(
    series: &PreparedSeries,
    config: &ReconstructionConfig,
    run_dir: Option<&Path>,
) -> Result<TrainReport> {
    let task = ReconstructionTask::new(series, config.clone())?;
    train(&task, &config.model_config(series.grid.channels()), &config.train, run_dir, false, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Synthetic values, laid out [steps, rows, channels] like a batch.
    fn batch(target: Vec<f32>, visible: Vec<bool>, steps: usize, rows: usize) -> ReconstructionBatch {
        ReconstructionBatch {
            x: Vec::new(),
            steps,
            batch: rows,
            hidden: vec![0.0; target.len()],
            target,
            visible,
            interpolated: Vec::new(),
            carried: Vec::new(),
            residual: false,
            lengths: None,
        }
    }

    #[test]
    fn baselines_interpolate_between_and_carry_from_the_visible_steps() {
        // one row, two channels: the first seen at steps 1 and 4, the second never
        let (steps, c) = (6, 2);
        let target: Vec<f32> = (0..steps).flat_map(|t| [t as f32 + 1.0, 10.0 * (t as f32 + 1.0)]).collect();
        let seen = [false, true, false, false, true, false];
        let visible: Vec<bool> = (0..steps).flat_map(|t| [seen[t], false]).collect();
        let (interp, locf) = baselines(&batch(target, visible, steps, 1), c);
        let channel = |v: &[f32], j: usize| (0..steps).map(|t| v[t * c + j]).collect::<Vec<_>>();
        // before the first seen step: the next one; between: linear; after the last: the last
        assert_eq!(channel(&interp, 0), [2.0, 2.0, 3.0, 4.0, 5.0, 5.0]);
        assert_eq!(channel(&locf, 0), [0.0, 2.0, 2.0, 2.0, 5.0, 5.0]);
        assert_eq!(channel(&interp, 1), [0.0; 6]);
        assert_eq!(channel(&locf, 1), [0.0; 6]);
    }

    /// Synthetic: two waves over 200 hourly steps from 2024-01-01 00:00 UTC, the second
    /// missing at every fourth step, read with the day's calendar inputs.
    fn waves_with_calendar() -> PreparedSeries {
        use crate::data::{Calendar, CalendarCycle, Clock, GridSeries, SplitFractions};
        let n = 200;
        let values: Vec<f32> = (0..n).flat_map(|t| [(t as f32 * 0.26).sin(), (t as f32 * 0.1).cos() * 3.0]).collect();
        let observed: Vec<bool> = (0..n).flat_map(|t| [true, t % 4 != 0]).collect();
        let delta = crate::data::grid::bins_since_observed(&observed, 2);
        let grid = GridSeries {
            signals: vec!["a".into(), "b".into()],
            start: 1_704_067_200,
            clock: Clock::Calendar,
            bin_seconds: 3600,
            values,
            observed,
            delta,
        };
        let calendar = Calendar::new(&[CalendarCycle::Day], 0.0).unwrap();
        PreparedSeries::new(grid, SplitFractions::default()).unwrap().with_calendar(calendar).unwrap()
    }

    #[test]
    fn calendar_inputs_follow_the_interpolation_and_a_stream_reads_them_at_its_times() {
        let series = waves_with_calendar();
        let (c, k) = (2, series.calendar.width());
        let mut phases = vec![0.0f32; k];
        // residual: [z ⊙ m̃, m̃, interpolation, calendar] per step
        let batch = make_rows(&series, std::slice::from_ref(&(20..32)), 12, 12, None, true, &mut Rng::new(0));
        let width = 3 * c + k;
        for t in 0..12 {
            let row = &batch.x[t * width..(t + 1) * width];
            assert_eq!(row[2 * c..3 * c], batch.interpolated[t * c..(t + 1) * c], "step {t}");
            series.write_calendar(20 + t, &mut phases);
            assert_eq!(row[3 * c..], phases[..], "step {t}");
        }

        // a causal reconstruction streamed from the first step, told its time, reconstructs
        // as the whole sequence does
        let config = ReconstructionConfig {
            model: ModelSection::default(),
            window: 12,
            residual: false,
            calendar_inputs: k,
            ..ReconstructionConfig::default()
        };
        let model = SequenceModel::<f32>::new(config.model_config(c), 7).unwrap();
        let task = ReconstructionTask::new(&series, config.clone()).unwrap();
        let whole = make_rows(&series, std::slice::from_ref(&(0..60)), 60, 60, None, false, &mut Rng::new(0));
        let out = model.forward(&SequenceBatch { x: &whole.x, steps: 60, batch: 1, lengths: None }).unwrap();
        let mut live = task.stream(&model).unwrap();
        assert!(live.reads_calendar());
        live.at(series.step_time(0));
        for n in 0..60 {
            let filled = live.step(&series.original_step(n)).unwrap();
            for (j, r) in filled.iter().enumerate() {
                let expected = series.scaler.invert(j, out.mean[n * c + j]);
                assert!((r.value - expected).abs() <= 1e-5 * expected.abs().max(1.0), "step {n} signal {j}");
            }
        }
        let err = task.stream(&model).unwrap().step(&series.original_step(0)).unwrap_err().to_string();
        assert!(err.contains("reads the calendar (day sin, day cos)"), "{err}");
        let err =
            ReconstructionTask::new(&series, ReconstructionConfig { calendar_inputs: 0, ..config }).err().unwrap();
        assert!(err.to_string().contains("reads 0 per step, the data has 2"), "{err}");
    }

    #[test]
    fn errors_by_time_and_by_entity_split_the_hidden_values_and_pool_to_the_whole_score() {
        // synthetic waves, 200 hours from a Monday: the test part's hidden values by the hour
        // of their step (and in one entity)
        let series = waves_with_calendar();
        let config = ReconstructionConfig { window: 12, calendar_inputs: 2, ..ReconstructionConfig::default() };
        let model = SequenceModel::<f32>::new(config.model_config(2), 7).unwrap();
        let task = ReconstructionTask::new(&series, config).unwrap();
        let whole = task.evaluate(Some(&model), &series.test).unwrap();
        let by_hour = task.evaluate_by_time(&model, &series.test, TimeGroup::HourOfDay).unwrap();
        assert_eq!((by_hour.model.len(), by_hour.baseline_name.as_str()), (24, "linear interpolation"));
        for (all, groups) in [(&whole[0].metrics, &by_hour.model), (&whole[1].metrics, &by_hour.baseline)] {
            let scored: u64 = groups.iter().map(|m| m.scored).sum();
            assert_eq!(scored, all.scored);
            let pooled = groups.iter().map(|m| m.micro_mse * m.scored as f64).sum::<f64>() / scored as f64;
            assert!((pooled - all.micro_mse).abs() < 1e-9 * all.micro_mse, "{pooled} against {}", all.micro_mse);
        }
        // each hour holds the values hidden at that hour of the day: hidden and counted by hand
        let hidden = task.evaluation_hidden(&series.test).unwrap();
        for (hour, m) in by_hour.model.iter().enumerate() {
            let count = (0..series.grid.len())
                .filter(|&k| (series.step_time(k) / 3600) % 24 == hour as i64)
                .map(|k| (0..2).filter(|&j| hidden[k * 2 + j] && series.grid.observed[k * 2 + j]).count() as u64)
                .sum::<u64>();
            assert_eq!(m.scored, count, "hour {hour}");
        }
        let by_entity = task.evaluate_by_entity(Some(&model), &series.test).unwrap();
        assert_eq!(by_entity.len(), 1);
        assert_eq!(by_entity[0].1[0].metrics.micro_mse.to_bits(), whole[0].metrics.micro_mse.to_bits());
        let mut elapsed = series.clone();
        elapsed.grid.clock = crate::data::Clock::Elapsed;
        let task = ReconstructionTask::new(&elapsed, task.config.clone()).unwrap();
        let err = task.evaluate_by_time(&model, &elapsed.test, TimeGroup::Weekday).err().unwrap().to_string();
        assert!(err.contains("no time of day"), "{err}");
    }
}
