//! Prediction, the deck's first task: from a window of L steps, predict every signal's
//! value at the window's last timestamp. The model reads steps 0..L−2 as
//! `[z_t ⊙ m_t, m_t]` (standardised values and their observation mask, so missingness is
//! information, never filled in) and its head's output at the last input step is x̂_{L−1}.
//! Loss: masked MSE over the observed target entries. With `residual` (the default) the
//! head predicts the change from each signal's last observation in the window,
//! x̂ = x_last + head(z), so an untrained model starts at persistence.

use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::metrics::{ErrorAccumulator, Metrics};
use crate::data::{PreparedSeries, Standardizer};
use crate::error::{Error, Result};
use crate::losses::masked_mse;
use crate::model::{HeadKind, HeadOutput, HeadSteps, ModelConfig, ModelSection, ModelStream, SequenceModel};
use crate::rng::Rng;
use crate::rnn::SequenceBatch;
use crate::train::{train, Task, TrainConfig, TrainReport};

/// A prediction run besides its data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PredictionConfig {
    pub model: ModelSection,
    /// L: steps per window, the last being the one predicted.
    pub window: usize,
    /// Predict the change from the last observation instead of the value.
    pub residual: bool,
    pub train: TrainConfig,
}

impl Default for PredictionConfig {
    fn default() -> Self {
        PredictionConfig { model: ModelSection::default(), window: 24, residual: true, train: TrainConfig::default() }
    }
}

impl PredictionConfig {
    /// The model for `channels` signals: it reads `[z ⊙ m, m]` and predicts every signal.
    pub fn model_config(&self, channels: usize) -> ModelConfig {
        self.model.model_config(2 * channels, HeadKind::Linear, channels)
    }
}

/// A batch of windows: `x: [L−1, B, 2C]`; `target, mask, base: [B, C]` for the last step.
pub struct PredictionBatch {
    x: Vec<f32>,
    steps: usize,
    batch: usize,
    target: Vec<f32>,
    mask: Vec<f32>,
    /// Added to the head's output (the last observations, or zeros).
    base: Vec<f32>,
}

/// Each signal's last observed standardised value in steps `start..start+steps`, or 0 (the
/// training mean) if the window never saw it.
fn last_observations(series: &PreparedSeries, start: usize, steps: usize) -> Vec<f32> {
    let c = series.grid.channels();
    (0..c)
        .map(|j| {
            (start..start + steps)
                .rev()
                .find(|&n| series.grid.observed[n * c + j])
                .map_or(0.0, |n| series.grid.values[n * c + j])
        })
        .collect()
}

/// Windows of `window − 1` input steps from each start; the target is the step after
/// them when it exists in the series (else zeros with mask 0: a forecast past the end).
fn make_batch(series: &PreparedSeries, starts: &[usize], window: usize, residual: bool) -> PredictionBatch {
    let c = series.grid.channels();
    let (steps, b) = (window - 1, starts.len());
    let mut x = vec![0.0f32; steps * b * 2 * c];
    let mut target = vec![0.0f32; b * c];
    let mut mask = vec![0.0f32; b * c];
    let mut base = Vec::with_capacity(b * c);
    for (row, &s) in starts.iter().enumerate() {
        for t in 0..steps {
            let at = (t * b + row) * 2 * c;
            for j in 0..c {
                let k = (s + t) * c + j;
                let m = series.grid.observed[k] as u8 as f32;
                x[at + j] = series.grid.values[k] * m;
                x[at + c + j] = m;
            }
        }
        let last = (s + window - 1) * c;
        if last + c <= series.grid.observed.len() {
            for j in 0..c {
                mask[row * c + j] = series.grid.observed[last + j] as u8 as f32;
                target[row * c + j] = series.grid.values[last + j];
            }
        }
        if residual {
            base.extend(last_observations(series, s, steps));
        } else {
            base.extend(std::iter::repeat_n(0.0, c));
        }
    }
    PredictionBatch { x, steps, batch: b, target, mask, base }
}

/// Standardised predictions `[B, C]` from the head's output at the last step
/// ([`HeadSteps::Last`]: the head reads nothing else).
fn predictions(out: &HeadOutput<f32>, batch: &PredictionBatch) -> Vec<f32> {
    debug_assert_eq!(out.mean.len(), batch.base.len());
    out.mean.iter().zip(&batch.base).map(|(p, b)| p + b).collect()
}

/// Prediction as a [`Task`] for the trainer.
pub struct PredictionTask<'a> {
    pub series: &'a PreparedSeries,
    pub window: usize,
    pub residual: bool,
    train_starts: Vec<usize>,
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
        Ok(PredictionTask { series, window, residual, train_starts })
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
            acc.add(&predictions(&out, &batch), &batch.target, &batch.mask, &self.series.scaler);
        }
        Ok(acc.finish())
    }
}

impl PredictionTask<'_> {
    /// The forecast of the step after the end of each entity, from its last `window − 1`
    /// steps, in original units: (entity, `[C]`). Entities shorter than that are skipped.
    ///
    /// # Errors
    /// A model that does not fit.
    pub fn forecast(&self, model: &SequenceModel<f32>) -> Result<Vec<(String, Vec<f32>)>> {
        let inputs = self.window - 1;
        let mut out = Vec::new();
        for (name, steps) in &self.series.entities {
            if steps.len() < inputs {
                continue;
            }
            let batch = make_batch(self.series, &[steps.end - inputs], self.window, self.residual);
            let z = predictions(&model.forward_at(&self.input(&batch), HeadSteps::Last)?, &batch);
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
        if values.len() != c {
            return Err(Error::Shape { tensor: "step values".into(), expected: vec![c], got: vec![values.len()] });
        }
        for (j, v) in values.iter().enumerate() {
            let z = match v {
                Some(v) if !v.is_finite() => {
                    return Err(Error::invalid(format!("signal `{}`", self.signals[j]), format!("{v} is not finite")));
                }
                Some(v) => Some(self.scaler.apply(j, *v)),
                None => None,
            };
            (self.x[j], self.x[c + j]) = z.map_or((0.0, 0.0), |z| (z, 1.0));
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
}

impl Task for PredictionTask<'_> {
    type Batch = PredictionBatch;

    fn train_len(&self) -> usize {
        self.train_starts.len()
    }

    fn make_batch(&self, indices: &[usize], _rng: &mut Rng) -> PredictionBatch {
        let starts: Vec<usize> = indices.iter().map(|&i| self.train_starts[i]).collect();
        make_batch(self.series, &starts, self.window, self.residual)
    }

    fn input<'b>(&self, batch: &'b PredictionBatch) -> SequenceBatch<'b, f32> {
        SequenceBatch { x: &batch.x, steps: batch.steps, batch: batch.batch, lengths: None }
    }

    fn head_steps(&self) -> HeadSteps {
        HeadSteps::Last
    }

    fn loss(&self, out: &HeadOutput<f32>, batch: &PredictionBatch) -> (f64, Vec<f32>, Vec<f32>) {
        let (loss, d_last) = masked_mse(&predictions(out, batch), &batch.target, &batch.mask);
        (loss, d_last, Vec::new())
    }

    fn validate(&self, model: &SequenceModel<f32>) -> Result<f64> {
        Ok(self.evaluate(model, &self.series.validation)?.micro_mse)
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
    for &s in &starts {
        let last = (s + window - 1) * c;
        let target = &series.grid.values[last..last + c];
        let mask: Vec<f32> = series.grid.observed[last..last + c].iter().map(|&o| o as u8 as f32).collect();
        locf.add(&last_observations(series, s, window - 1), target, &mask, &series.scaler);
        mean.add(&vec![0.0; c], target, &mask, &series.scaler);
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
    let task = PredictionTask::new(series, config.window, config.residual)?;
    train(&task, &config.model_config(series.grid.channels()), &config.train, run_dir, false, None)
}
