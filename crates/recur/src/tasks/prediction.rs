//! Prediction, the deck's first task: from a window of L steps, predict every signal's
//! value at the window's last timestamp. The model reads steps 0..L−2 as
//! `[z_t ⊙ m_t, m_t]` (standardised values and their observation mask, so missingness is
//! information, never filled in) and its head's output at the last input step is x̂_{L−1}.
//! Loss: masked MSE over the observed target entries. With `residual` (the default) the
//! head predicts the change from each signal's last observation in the window,
//! x̂ = x_last + head(z), so an untrained model starts at persistence.
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

use super::metrics::{ErrorAccumulator, Metrics};
use super::StreamTraining;
use crate::data::{PreparedSeries, Standardizer};
use crate::error::{Error, Result};
use crate::losses::masked_mse;
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
    pub train: TrainConfig,
}

impl Default for PredictionConfig {
    fn default() -> Self {
        PredictionConfig {
            model: ModelSection::default(),
            window: 24,
            residual: true,
            stream: None,
            train: TrainConfig::default(),
        }
    }
}

impl PredictionConfig {
    /// The model for `channels` signals: it reads `[z ⊙ m, m]` and predicts every signal.
    pub fn model_config(&self, channels: usize) -> ModelConfig {
        self.model.model_config(2 * channels, HeadKind::Linear, channels)
    }
}

/// A batch of windows, `x: [L−1, B, 2C]` with `target, mask, base: [B, C]` for the step
/// after the last; or of streams, `x: [T, B, 2C]` with `target, mask, base: [T, B, C]`,
/// row (t, b) for the step after input step t.
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

/// A batch of streams, one per range of input steps (each at most `steps` long; a shorter
/// one is padded with zeros, mask 0, and given its length), every step's next step its
/// target (mask 0 past the series' end). With `residual`, row (t, b)'s base is each
/// signal's last observation among input steps t − reach + 1 ..= t of its entity (as
/// [`PredictionStream`] keeps it; the windows' rule for a window ending at t).
fn make_stream_batch(
    series: &PreparedSeries,
    streams: &[Range<usize>],
    steps: usize,
    reach: usize,
    residual: bool,
) -> PredictionBatch {
    let c = series.grid.channels();
    let (b, n) = (streams.len(), series.grid.len());
    let mut x = vec![0.0f32; steps * b * 2 * c];
    let (mut target, mut mask, mut base) =
        (vec![0.0f32; steps * b * c], vec![0.0f32; steps * b * c], vec![0.0f32; steps * b * c]);
    let (values, observed) = (&series.grid.values, &series.grid.observed);
    for (row, stream) in streams.iter().enumerate() {
        let s = stream.start;
        let mut last: Vec<Option<(f32, usize)>> = vec![None; c];
        let see = |k: usize, last: &mut [Option<(f32, usize)>]| {
            for j in 0..c {
                if observed[k * c + j] {
                    last[j] = Some((values[k * c + j], k));
                }
            }
        };
        for k in series.entity_of(s).start.max((s + 1).saturating_sub(reach))..s {
            see(k, &mut last);
        }
        for t in 0..stream.len().min(steps) {
            let k = s + t;
            see(k, &mut last);
            let at = (t * b + row) * c;
            for j in 0..c {
                let m = observed[k * c + j] as u8 as f32;
                x[2 * at + j] = values[k * c + j] * m;
                x[2 * at + c + j] = m;
                if k + 1 < n {
                    mask[at + j] = observed[(k + 1) * c + j] as u8 as f32;
                    target[at + j] = values[(k + 1) * c + j];
                }
                match last[j] {
                    Some((v, seen)) if residual && k - seen < reach => base[at + j] = v,
                    _ => {}
                }
            }
        }
    }
    let lengths = streams.iter().any(|r| r.len() < steps).then(|| streams.iter().map(|r| r.len().min(steps)).collect());
    PredictionBatch { x, steps, batch: b, target, mask, base, lengths }
}

/// Windows of `window − 1` input steps from each start, the step after them the target
/// (zeros with mask 0 past the series' end: a forecast): a batch of streams that long,
/// with only its last step's target, mask and base (each signal's last observation in the
/// window, or 0, the training mean, if the window never saw it).
fn make_batch(series: &PreparedSeries, starts: &[usize], window: usize, residual: bool) -> PredictionBatch {
    let windows: Vec<Range<usize>> = starts.iter().map(|&s| s..s + window - 1).collect();
    let mut batch = make_stream_batch(series, &windows, window - 1, window - 1, residual);
    let last = (window - 2) * starts.len() * series.grid.channels();
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
}

impl<'a> PredictionTask<'a> {
    /// # Errors
    /// A window shorter than 2 steps or longer than the training or validation part.
    pub fn new(series: &'a PreparedSeries, window: usize, residual: bool) -> Result<Self> {
        if window < 2 {
            return Err(Error::invalid("window", "a prediction window needs at least 2 steps"));
        }
        series.window_starts(&series.validation, window, 1, "validation")?;
        let train_starts = series.window_starts(&series.train, window, 1, "training")?;
        Ok(PredictionTask { series, window, residual, train_starts, train_streams: Vec::new(), stream: None })
    }

    /// The task as [`PredictionConfig`] sets it: on windows, or on streams.
    ///
    /// # Errors
    /// As [`PredictionTask::new`] and [`PredictionTask::on_streams`].
    pub fn from_config(series: &'a PreparedSeries, config: &PredictionConfig) -> Result<Self> {
        let task = PredictionTask::new(series, config.window, config.residual)?;
        match config.stream {
            Some(stream) => task.on_streams(stream),
            None => Ok(task),
        }
    }

    /// Trains on streams instead of windows: the input steps of each training range (every
    /// step but its last, which only has a target) cut into consecutive streams of
    /// `stream.steps` steps, the last of a range shorter (a batch runs each stream to its
    /// own length), validated by [`PredictionTask::evaluate_streamed`].
    ///
    /// # Errors
    /// A bad truncation, or a training part without two steps in a range.
    pub fn on_streams(mut self, stream: StreamTraining) -> Result<Self> {
        stream.truncation().check()?;
        let inputs = self.series.train.iter().map(|r| r.start..r.end.saturating_sub(1).max(r.start));
        self.train_streams = super::cut_into_streams(inputs, stream.steps);
        if self.train_streams.is_empty() {
            return Err(Error::invalid("task.stream", "no training range has a step and the step after it"));
        }
        self.stream = Some(stream);
        Ok(self)
    }

    /// Metrics of `model` on every window of `part`.
    ///
    /// # Errors
    /// A part shorter than a window.
    pub fn evaluate(&self, model: &SequenceModel<f32>, part: &[Range<usize>]) -> Result<Metrics> {
        let starts = self.series.window_starts(part, self.window, 1, "evaluated")?;
        let mut acc = ErrorAccumulator::new(self.series.grid.channels());
        for chunk in starts.chunks(512) {
            let batch = make_batch(self.series, chunk, self.window, self.residual);
            let out = model.forward_at(&self.input(&batch), HeadSteps::Last)?;
            acc.add(&predictions(&out.mean, &batch.base), &batch.target, &batch.mask, &self.series.scaler);
        }
        Ok(acc.finish())
    }

    /// Metrics of a causal `model` run as it is deployed: over each entity from its first
    /// step, its state carried throughout, scored on the same entries of `part` as
    /// [`PredictionTask::evaluate`] (the step after every window inside the part).
    ///
    /// # Errors
    /// A model that cannot stream (coupled bidirectional), a part shorter than a window.
    pub fn evaluate_streamed(&self, model: &SequenceModel<f32>, part: &[Range<usize>]) -> Result<Metrics> {
        self.series.window_starts(part, self.window, 1, "evaluated")?;
        let mut acc = ErrorAccumulator::new(self.series.grid.channels());
        for r in part.iter().filter(|r| r.len() >= self.window) {
            let (pred, batch, rows) = self.streamed(model, r.start + self.window - 1..r.end)?;
            acc.add(&pred, &batch.target[rows.clone()], &batch.mask[rows], &self.series.scaler);
        }
        Ok(acc.finish())
    }

    /// Standardised forecasts of the steps `targets` (inside one entity) by a causal `model`
    /// run from the entity's first step: `[n, C]`, and the stream batch with the rows of
    /// its targets and masks that belong to them.
    fn streamed(
        &self,
        model: &SequenceModel<f32>,
        targets: Range<usize>,
    ) -> Result<(Vec<f32>, PredictionBatch, Range<usize>)> {
        if !model.is_causal() {
            return Err(Error::invalid("streamed evaluation", "a coupled bidirectional model reads the future"));
        }
        let from = self.series.entity_of(targets.start).start;
        let c = self.series.grid.channels();
        // input steps from..targets.end − 1, row t forecasting step from + t + 1
        let inputs = from..targets.end - 1;
        let batch =
            make_stream_batch(self.series, std::slice::from_ref(&inputs), inputs.len(), self.window - 1, self.residual);
        let out = model.forward(&self.input(&batch))?;
        let rows = (targets.start - 1 - from) * c..batch.steps * c;
        Ok((predictions(&out.mean[rows.clone()], &batch.base[rows.clone()]), batch, rows))
    }

    /// Forecasts of the consecutive steps `targets` of one entity, each at least `window −
    /// 1` steps after its start, standardised `[n, C]`: the model's (streamed from the
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
        let windows = make_batch(self.series, &starts, self.window, true);
        let model = if model.is_causal() {
            self.streamed(model, targets)?.0
        } else {
            let batch = make_batch(self.series, &starts, self.window, self.residual);
            predictions(&model.forward_at(&self.input(&batch), HeadSteps::Last)?.mean, &batch.base)
        };
        Ok(Forecasts { model, persistence: windows.base, truth: windows.target, observed: windows.mask })
    }
}

/// A horizon of at least one step.
fn check_horizon(horizon: usize) -> Result<()> {
    if horizon == 0 {
        return Err(Error::invalid("horizon", "forecasts reach at least one step ahead"));
    }
    Ok(())
}

/// Closed-loop forecasts scored 1..=horizon steps ahead (see
/// [`PredictionTask::evaluate_horizon`]); index h − 1 holds h steps ahead.
pub struct HorizonScores {
    /// The model, fed its own forecasts after the origin.
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
    /// Metrics of a causal `model` forecasting 1..=`horizon` steps ahead in closed loop.
    /// The model runs as deployed, over each entity from its first step with its state
    /// carried; from every origin n whose next step [`PredictionTask::evaluate`] scores
    /// in `part`, a copy of the stream is fed its own forecasts as the observed values of
    /// every signal for the steps after n, and the forecast of step n + h is scored
    /// against the truth there (targets inside the part only). One step ahead this is
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
        check_horizon(horizon)?;
        self.series.window_starts(part, self.window, 1, "evaluated")?;
        let (c, reach, scaler) = (self.series.grid.channels(), self.window - 1, &self.series.scaler);
        let (values, observed) = (&self.series.grid.values, &self.series.grid.observed);
        let mut ours = vec![ErrorAccumulator::new(c); horizon];
        let (mut persistence, mut seasonal) = (ours.clone(), ours.clone());
        let day = 86_400 / self.series.grid.bin_seconds.max(1);
        let period = (86_400 % self.series.grid.bin_seconds.max(1) == 0 && day >= 2).then_some(day as usize);
        for r in part.iter().filter(|r| r.len() >= self.window) {
            let mut live = self.stream(model)?;
            let mut last: Vec<Option<(f32, usize)>> = vec![None; c];
            let entity = self.series.entity_of(r.start);
            for n in entity.start..r.end - 1 {
                let seen = self.series.original_step(n);
                for j in (0..c).filter(|&j| observed[n * c + j]) {
                    last[j] = Some((values[n * c + j], n));
                }
                if n + 1 < r.start + reach {
                    live.step(&seen)?;
                    continue;
                }
                let steps_ahead = horizon.min(r.end - 1 - n);
                let ahead = live.step_ahead(&seen, steps_ahead)?;
                let carried: Vec<f32> =
                    last.iter().map(|l| l.filter(|&(_, at)| n - at < reach).map_or(0.0, |(v, _)| v)).collect();
                for (h, forecast) in (1..=steps_ahead).zip(ahead.chunks_exact(c)) {
                    let k = n + h;
                    let mask: Vec<f32> = (0..c).map(|j| observed[k * c + j] as u8 as f32).collect();
                    let truth = &values[k * c..(k + 1) * c];
                    let ours_z: Vec<f32> = forecast.iter().enumerate().map(|(j, &v)| scaler.apply(j, v)).collect();
                    ours[h - 1].add(&ours_z, truth, &mask, scaler);
                    persistence[h - 1].add(&carried, truth, &mask, scaler);
                    if let Some(p) = period {
                        // k − m·p ≤ n for the smallest m ≥ 1: ⌈h / p⌉ periods back
                        let back = k.checked_sub(h.div_ceil(p) * p).filter(|&b| b >= entity.start);
                        let same_time: Vec<f32> = (0..c)
                            .map(|j| match back.filter(|&b| observed[b * c + j]) {
                                Some(b) => values[b * c + j],
                                None => carried[j],
                            })
                            .collect();
                        seasonal[h - 1].add(&same_time, truth, &mask, scaler);
                    }
                }
            }
        }
        let finish = |acc: &[ErrorAccumulator]| acc.iter().map(ErrorAccumulator::finish).collect();
        Ok(HorizonScores {
            model: finish(&ours),
            persistence: finish(&persistence),
            seasonal: period.map(|p| (p, finish(&seasonal))),
        })
    }

    /// Closed-loop forecasts of the `horizon` steps after the end of each entity, in
    /// original units: (entity, `[horizon, C]` row by row). A causal `model` runs over the
    /// whole entity with its state carried, then is fed its own forecasts as the observed
    /// values of every signal. One step ahead, for a task trained on streams, this is
    /// [`PredictionTask::forecast`].
    ///
    /// # Errors
    /// A zero horizon, a model that cannot stream.
    pub fn forecast_ahead(&self, model: &SequenceModel<f32>, horizon: usize) -> Result<Vec<(String, Vec<f32>)>> {
        check_horizon(horizon)?;
        let mut out = Vec::new();
        for (name, steps) in &self.series.entities {
            let mut live = self.stream(model)?;
            let Some(last) = steps.clone().last() else { continue };
            for n in steps.start..last {
                live.step(&self.series.original_step(n))?;
            }
            out.push((name.clone(), live.step_ahead(&self.series.original_step(last), horizon)?));
        }
        Ok(out)
    }
}

/// Forecasts of consecutive steps, standardised `[n, C]` each (see [`PredictionTask::forecasts`]).
pub struct Forecasts {
    pub model: Vec<f32>,
    /// Last observation carried forward (0, the training mean, where the window saw none).
    pub persistence: Vec<f32>,
    pub truth: Vec<f32>,
    /// 1 where the truth was observed.
    pub observed: Vec<f32>,
}

impl PredictionTask<'_> {
    /// The forecast of the step after the end of each entity, in original units: (entity,
    /// `[C]`). From its last `window − 1` steps (entities shorter than that are skipped), or,
    /// for a task trained on streams, from the whole entity with the state carried, as the
    /// model was trained and is deployed.
    ///
    /// # Errors
    /// A model that does not fit.
    pub fn forecast(&self, model: &SequenceModel<f32>) -> Result<Vec<(String, Vec<f32>)>> {
        let inputs = self.window - 1;
        let mut out = Vec::new();
        for (name, steps) in &self.series.entities {
            let z = match self.stream {
                Some(_) => {
                    let batch =
                        make_stream_batch(self.series, std::slice::from_ref(steps), steps.len(), inputs, self.residual);
                    let mean = model.forward(&self.input(&batch))?.mean;
                    let last = (batch.steps - 1) * self.series.grid.channels()..;
                    predictions(&mean[last.clone()], &batch.base[last])
                }
                None if steps.len() < inputs => continue,
                None => {
                    let batch = make_batch(self.series, &[steps.end - inputs], self.window, self.residual);
                    predictions(&model.forward_at(&self.input(&batch), HeadSteps::Last)?.mean, &batch.base)
                }
            };
            out.push((name.clone(), z.iter().enumerate().map(|(j, &v)| self.series.scaler.invert(j, v)).collect()));
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
        let c = self.series.grid.channels();
        Ok(PredictionStream {
            stream: model.stream(1)?,
            scaler: self.series.scaler.clone(),
            signals: self.series.grid.signals.clone(),
            reach: self.window - 1,
            residual: self.residual,
            last: vec![None; c],
            steps: 0,
            x: vec![0.0; 2 * c],
        })
    }
}

/// One live series through a causal prediction model, one grid step at a time (see
/// [`PredictionTask::stream`]).
#[derive(Clone)]
pub struct PredictionStream<'m> {
    stream: ModelStream<'m, f32>,
    scaler: Standardizer,
    signals: Vec<String>,
    /// Steps back in which a last observation counts (`window − 1`).
    reach: usize,
    residual: bool,
    /// Per signal: (standardised value, step) of its last observation.
    last: Vec<Option<(f32, usize)>>,
    steps: usize,
    x: Vec<f32>,
}

impl PredictionStream<'_> {
    /// The signals, in the order [`PredictionStream::step`] takes and returns them.
    pub fn signals(&self) -> &[String] {
        &self.signals
    }

    /// Feeds the values of one grid step (original units; `None` where missing) and
    /// returns the forecast of the next step, in original units.
    ///
    /// # Errors
    /// A step with the wrong number of signals or a non-finite value (named).
    pub fn step(&mut self, values: &[Option<f32>]) -> Result<Vec<f32>> {
        let c = self.signals.len();
        let z = super::encode_step(values, &self.signals, &self.scaler, &mut self.x)?;
        for (j, z) in z.into_iter().enumerate() {
            if let Some(z) = z {
                self.last[j] = Some((z, self.steps));
            }
        }
        let out = self.stream.step(&self.x)?;
        let now = self.steps;
        self.steps += 1;
        Ok((0..c)
            .map(|j| {
                let base = match self.last[j] {
                    Some((z, at)) if self.residual && now - at < self.reach => z,
                    _ => 0.0,
                };
                self.scaler.invert(j, out.mean[j] + base)
            })
            .collect())
    }

    /// [`PredictionStream::step`], then `horizon − 1` more steps in closed loop on a copy
    /// of the stream (each forecast fed back as the observed values of every signal; this
    /// stream's state moves by the one real step only): the forecasts of the next
    /// `horizon` steps (at least one), `[horizon, C]` row by row, in original units.
    ///
    /// # Errors
    /// As [`PredictionStream::step`].
    pub fn step_ahead(&mut self, values: &[Option<f32>], horizon: usize) -> Result<Vec<f32>> {
        let mut forecast = self.step(values)?;
        let mut ahead = Vec::with_capacity(horizon * forecast.len());
        ahead.extend_from_slice(&forecast);
        let mut roll = (horizon > 1).then(|| self.clone());
        for _ in 1..horizon {
            let fed: Vec<Option<f32>> = forecast.iter().map(|&v| Some(v)).collect();
            forecast = roll.as_mut().expect("a copy for two or more steps").step(&fed)?;
            ahead.extend_from_slice(&forecast);
        }
        Ok(ahead)
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
                make_stream_batch(self.series, &streams, stream.steps, self.window - 1, self.residual)
            }
            None => {
                let starts: Vec<usize> = indices.iter().map(|&i| self.train_starts[i]).collect();
                make_batch(self.series, &starts, self.window, self.residual)
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
        let row = batch.batch * self.series.grid.channels();
        let rows = steps.start * row..steps.end * row;
        let pred = predictions(&out.mean, &batch.base[rows.clone()]);
        let (loss, d) = masked_mse(&pred, &batch.target[rows.clone()], &batch.mask[rows]);
        Ok((loss, d, Vec::new()))
    }

    fn loss(&self, out: &HeadOutput<f32>, batch: &PredictionBatch) -> (f64, Vec<f32>, Vec<f32>) {
        let (loss, d_last) = masked_mse(&predictions(&out.mean, &batch.base), &batch.target, &batch.mask);
        (loss, d_last, Vec::new())
    }

    fn validate(&self, model: &SequenceModel<f32>) -> Result<f64> {
        let part = &self.series.validation;
        Ok(match self.stream {
            Some(_) => self.evaluate_streamed(model, part)?,
            None => self.evaluate(model, part)?,
        }
        .micro_mse)
    }
}

/// Baselines on the same windows and entries: last observation carried forward within
/// the input window (the training mean where a window never saw the signal) and the
/// training mean (0 in standardised units).
///
/// # Errors
/// A part shorter than a window.
pub fn prediction_baselines(
    series: &PreparedSeries,
    part: &[Range<usize>],
    window: usize,
) -> Result<Vec<(&'static str, Metrics)>> {
    let c = series.grid.channels();
    let starts = series.window_starts(part, window, 1, "evaluated")?;
    let mut locf = ErrorAccumulator::new(c);
    let mut mean = ErrorAccumulator::new(c);
    for chunk in starts.chunks(512) {
        // the residual base is each window's last observations: LOCF's forecast
        let batch = make_batch(series, chunk, window, true);
        locf.add(&batch.base, &batch.target, &batch.mask, &series.scaler);
        mean.add(&vec![0.0; batch.base.len()], &batch.target, &batch.mask, &series.scaler);
    }
    Ok(vec![("last observation carried forward", locf.finish()), ("training mean", mean.finish())])
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
