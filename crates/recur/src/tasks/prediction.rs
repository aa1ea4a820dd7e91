//! Prediction, the deck's first task: from a window of L steps, predict every signal's
//! value at the window's last timestamp. The model reads steps 0..L−2 as
//! `[z_t ⊙ m_t, m_t]` (standardised values and their observation mask, so missingness is
//! information, never filled in) and a linear head on the last hidden state gives x̂_{L−1}.
//! Loss: masked MSE over the observed target entries. With `residual` (the default) the
//! head predicts the change from each signal's last observation in the window,
//! x̂ = x_last + W h + b, so an untrained model starts at persistence and learns corrections.

use serde::{Deserialize, Serialize};

use super::metrics::{ErrorAccumulator, Metrics};
use crate::data::PreparedSeries;
use crate::error::{Error, Result};
use crate::heads::Linear;
use crate::losses::masked_mse;
use crate::optim::{clip_grad_norm, AdamW, AdamWConfig};
use crate::rng::Rng;
use crate::rnn::{CellKind, InitialState, Rnn, RnnCache, RnnConfig, SequenceBatch};
use crate::train::{encoder_and_head_slots, progress_bar, WarmupCosine};

/// Everything a prediction run needs besides the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PredictionConfig {
    pub cell: CellKind,
    pub hidden_size: usize,
    pub num_layers: usize,
    /// L: steps per window, the last being the one predicted.
    pub window: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: AdamWConfig,
    /// Fraction of all steps spent warming the learning rate up.
    pub warmup_fraction: f64,
    /// Global gradient-norm clip c (‖g‖₂ ≤ c).
    pub clip_norm: f64,
    /// Epochs without a better validation loss before stopping (the best weights are kept).
    pub patience: usize,
    /// Cap on training windows per epoch (drawn at random each epoch); 0: all.
    pub max_train_windows: usize,
    /// Predict the change from the last observation instead of the value.
    pub residual: bool,
    pub seed: u64,
    pub threads: usize,
}

impl Default for PredictionConfig {
    fn default() -> Self {
        PredictionConfig {
            cell: CellKind::GruResetAfter,
            hidden_size: 64,
            num_layers: 1,
            window: 24,
            epochs: 30,
            batch_size: 64,
            optimizer: AdamWConfig { lr: 1e-3, weight_decay: 1e-4, ..AdamWConfig::default() },
            warmup_fraction: 0.05,
            clip_norm: 1.0,
            patience: 20,
            max_train_windows: 0,
            residual: true,
            seed: 1,
            threads: 1,
        }
    }
}

/// An encoder and the head on its last hidden state.
#[derive(Clone, Debug)]
pub struct PredictionModel {
    pub encoder: Rnn<f32>,
    pub head: Linear<f32>,
    /// Whether the head's output is added to the last observation.
    pub residual: bool,
}

/// One epoch of the log.
#[derive(Clone, Debug, Serialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_loss: f64,
    pub validation_mse: f64,
    pub grad_norm: f64,
    pub lr: f64,
}

/// What a training run returns: the best model (by validation micro MSE) and the log.
pub struct TrainedPrediction {
    pub model: PredictionModel,
    pub log: Vec<EpochLog>,
    pub best_epoch: usize,
}

/// A batch of windows: `x: [L−1, B, 2C]`, `target, mask, last_observed: [B, C]`.
struct Batch {
    x: Vec<f32>,
    target: Vec<f32>,
    mask: Vec<f32>,
    /// Each signal's last observation in the input steps (0, the training mean, if none).
    last_observed: Vec<f32>,
}

/// Each signal's last observed standardised value in steps `start..start+steps`, or 0.
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

fn make_batch(series: &PreparedSeries, starts: &[usize], window: usize) -> Batch {
    let c = series.grid.channels();
    let (steps, b) = (window - 1, starts.len());
    let mut x = vec![0.0f32; steps * b * 2 * c];
    let mut target = vec![0.0f32; b * c];
    let mut mask = vec![0.0f32; b * c];
    let mut last_observed = Vec::with_capacity(b * c);
    for (row, &s) in starts.iter().enumerate() {
        last_observed.extend(last_observations(series, s, steps));
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
        for j in 0..c {
            mask[row * c + j] = series.grid.observed[last + j] as u8 as f32;
            target[row * c + j] = series.grid.values[last + j];
        }
    }
    Batch { x, target, mask, last_observed }
}

impl PredictionModel {
    /// # Errors
    /// An invalid encoder config.
    pub fn new(config: &PredictionConfig, channels: usize) -> Result<Self> {
        let encoder_config = RnnConfig {
            cell: config.cell,
            input_size: 2 * channels,
            hidden_size: config.hidden_size,
            num_layers: config.num_layers,
            ..RnnConfig::default()
        };
        let mut encoder = Rnn::new(encoder_config, config.seed)?;
        encoder.set_threads(config.threads);
        let mut head = Linear::new(config.hidden_size, channels, &mut Rng::new(config.seed ^ 0x5eed));
        if config.residual {
            // Start exactly at persistence: the correction is learned from zero.
            head.weight.data.iter_mut().for_each(|w| *w *= 0.1);
            head.bias.data.iter_mut().for_each(|b| *b = 0.0);
        }
        Ok(PredictionModel { encoder, head, residual: config.residual })
    }

    /// Standardised predictions `[B, C]` for the windows starting at `starts`.
    ///
    /// # Errors
    /// Windows that do not fit the encoder.
    pub fn predict(&self, series: &PreparedSeries, starts: &[usize], window: usize) -> Result<Vec<f32>> {
        let batch = make_batch(series, starts, window);
        let input = SequenceBatch { x: &batch.x, steps: window - 1, batch: starts.len(), lengths: None };
        let out = self.encoder.forward(&input, &InitialState::default())?;
        let h = self.encoder.config().output_size();
        let mut pred = self.head.forward(&out.output[(window - 2) * starts.len() * h..])?;
        self.add_base(&mut pred, &batch);
        Ok(pred)
    }

    fn add_base(&self, pred: &mut [f32], batch: &Batch) {
        if self.residual {
            for (p, &base) in pred.iter_mut().zip(&batch.last_observed) {
                *p += base;
            }
        }
    }

    /// Metrics of the model on the windows of `part`.
    ///
    /// # Errors
    /// A part shorter than a window.
    pub fn evaluate(&self, series: &PreparedSeries, part: &std::ops::Range<usize>, window: usize) -> Result<Metrics> {
        let starts = series.window_starts(part, window, "evaluated")?;
        let mut acc = ErrorAccumulator::new(series.grid.channels());
        for chunk in starts.chunks(512) {
            let pred = self.predict(series, chunk, window)?;
            let batch = make_batch(series, chunk, window);
            acc.add(&pred, &batch.target, &batch.mask, &series.scaler);
        }
        Ok(acc.finish())
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
    part: &std::ops::Range<usize>,
    window: usize,
) -> Result<Vec<(&'static str, Metrics)>> {
    let c = series.grid.channels();
    let starts = series.window_starts(part, window, "evaluated")?;
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

/// Trains a prediction model with AdamW, warm-up + cosine, clipping and early stopping.
///
/// # Errors
/// A window longer than a split part, or an invalid config.
pub fn train_prediction(series: &PreparedSeries, config: &PredictionConfig) -> Result<TrainedPrediction> {
    if config.window < 2 {
        return Err(Error::invalid("window", "a prediction window needs at least 2 steps"));
    }
    let c = series.grid.channels();
    let mut train_starts = series.window_starts(&series.train, config.window, "training")?;
    series.window_starts(&series.validation, config.window, "validation")?;
    let mut model = PredictionModel::new(config, c)?;
    let mut rng = Rng::new(config.seed);
    let per_epoch = if config.max_train_windows > 0 {
        config.max_train_windows.min(train_starts.len())
    } else {
        train_starts.len()
    };
    let batches_per_epoch = per_epoch.div_ceil(config.batch_size);
    let total = batches_per_epoch * config.epochs;
    let schedule = WarmupCosine {
        base: config.optimizer.lr,
        warmup_steps: ((total as f64 * config.warmup_fraction) as usize).max(1),
        total_steps: total,
        floor: 0.05,
    };
    let mut opt = AdamW::new(config.optimizer);
    let mut cache = RnnCache::default();
    let bar = progress_bar(total as u64, "train");
    let (mut best, mut best_epoch, mut best_mse, mut since_best) = (model.clone(), 0, f64::INFINITY, 0);
    let mut log = Vec::new();
    let mut step = 0;
    let h = model.encoder.config().output_size();
    let steps = config.window - 1;
    for epoch in 1..=config.epochs {
        rng.shuffle(&mut train_starts);
        let (mut loss_sum, mut norm_sum) = (0.0, 0.0);
        for chunk in train_starts[..per_epoch].chunks(config.batch_size) {
            let b = chunk.len();
            let batch = make_batch(series, chunk, config.window);
            let input = SequenceBatch { x: &batch.x, steps, batch: b, lengths: None };
            let out =
                model.encoder.forward_train_reusing(&input, &InitialState::default(), rng.next_u64(), &mut cache)?;
            let last = &out.output[(steps - 1) * b * h..];
            let mut pred = model.head.forward(last)?;
            model.add_base(&mut pred, &batch);
            let (loss, d_pred) = masked_mse(&pred, &batch.target, &batch.mask);
            let mut head_grads = model.head.zeros_like();
            let d_last = model.head.backward(last, &d_pred, &mut head_grads)?;
            let mut d_output = vec![0.0f32; out.output.len()];
            d_output[(steps - 1) * b * h..].copy_from_slice(&d_last);
            let mut grads = model.encoder.zero_grads();
            model.encoder.backward(&input, &mut cache, &d_output, None, None, &mut grads)?;
            let mut views: Vec<&mut [f32]> =
                grads.iter_mut().flat_map(|g| g.named_mut().map(|(_, t)| &mut t.data[..])).collect();
            views.push(&mut head_grads.weight.data);
            views.push(&mut head_grads.bias.data);
            let norm = clip_grad_norm(&mut views, config.clip_norm);
            let lr = schedule.lr(step);
            opt.step(lr, &mut encoder_and_head_slots(&mut model.encoder, &mut model.head, &grads, &head_grads));
            step += 1;
            loss_sum += loss;
            norm_sum += norm;
            bar.inc(1);
        }
        let validation = model.evaluate(series, &series.validation, config.window)?;
        let entry = EpochLog {
            epoch,
            train_loss: loss_sum / batches_per_epoch as f64,
            validation_mse: validation.micro_mse,
            grad_norm: norm_sum / batches_per_epoch as f64,
            lr: schedule.lr(step.saturating_sub(1)),
        };
        bar.set_message(format!(
            "epoch {epoch}: train {:.4}, validation {:.4}",
            entry.train_loss, entry.validation_mse
        ));
        log.push(entry);
        if validation.micro_mse < best_mse {
            (best, best_epoch, best_mse, since_best) = (model.clone(), epoch, validation.micro_mse, 0);
        } else {
            since_best += 1;
            if since_best >= config.patience {
                break;
            }
        }
    }
    bar.finish_and_clear();
    Ok(TrainedPrediction { model: best, log, best_epoch })
}
