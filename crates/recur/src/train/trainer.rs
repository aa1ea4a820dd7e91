//! One training loop for every task: shuffled mini-batches, AdamW with decoupled weight
//! decay, warm-up then a schedule, global-norm clipping (the pre-clip norm is logged),
//! early stopping on the validation score restoring the best weights, a progress bar with
//! ETA, a JSON-lines epoch log, and checkpoints written atomically after every epoch from
//! which a run resumes exactly (weights, best weights, optimizer moments, schedule, RNG,
//! epoch, early-stopping counters): a resumed run ends bit-identical to an uninterrupted one.
//! A decoupled model's paths learn jointly, or the teacher's first
//! ([`TrainConfig::teacher_epochs`]).

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::checkpoint::{json, mismatch, read_optimizer, read_weights, write_checkpoint, BEST, MODEL};
use super::schedule::{PlateauState, Schedule, ScheduleKind};
use super::truncated::{TruncatedStreams, Truncation};
use super::{json_lines, model_gradients, model_slots_with, progress_bar};
use crate::error::{Error, Result};
use crate::io::{write_atomically, TensorFile};
use crate::model::{HeadOutput, HeadSteps, ModelConfig, SequenceModel};
use crate::optim::{clip_grad_norm, AdamW, AdamWConfig};
use crate::rng::Rng;
use crate::rnn::{InputGradient, SequenceBatch};

/// What the trainer needs from a task.
pub trait Task {
    type Batch;
    /// Number of training examples.
    fn train_len(&self) -> usize;
    /// The batch of training examples `indices`; `rng` draws whatever the task randomises
    /// (e.g. which values are hidden).
    fn make_batch(&self, indices: &[usize], rng: &mut Rng) -> Self::Batch;
    /// The model's input for a batch.
    fn input<'a>(&self, batch: &'a Self::Batch) -> SequenceBatch<'a, f32>;
    /// The steps the loss reads (the head runs on those only).
    fn head_steps(&self) -> HeadSteps {
        HeadSteps::All
    }
    /// Loss on one path's outputs and its gradients (∂L/∂x̂, ∂L/∂λ̂; the latter empty for
    /// a linear head).
    fn loss(&self, out: &HeadOutput<f32>, batch: &Self::Batch) -> (f64, Vec<f32>, Vec<f32>);
    /// Truncated BPTT: `Some` makes every training example a stream of `steps` steps, and
    /// a batch of them runs k1 steps per optimizer update with the state carried between
    /// updates (see [`Truncation`]); the loss is then read chunk by chunk through
    /// [`Task::chunk_loss`].
    fn truncation(&self) -> Option<Truncation> {
        None
    }
    /// Under truncated BPTT: the loss on the head's outputs for the stream steps `steps`
    /// of a batch (rows time-major, `[steps, B]`) and its gradients.
    ///
    /// # Errors
    /// A task without a [`Task::truncation`] has none (the default).
    fn chunk_loss(
        &self,
        out: &HeadOutput<f32>,
        batch: &Self::Batch,
        steps: Range<usize>,
    ) -> Result<(f64, Vec<f32>, Vec<f32>)> {
        let _ = (out, batch, steps);
        Err(Error::invalid("truncated BPTT", "this task does not read its loss chunk by chunk"))
    }
    /// Validation score of a model (lower is better).
    ///
    /// # Errors
    /// Whatever evaluation can fail on.
    fn validate(&self, model: &SequenceModel<f32>) -> Result<f64>;
    /// Sets what the task knows about a fresh model's parameters before its first update
    /// (not on resume). None by default.
    fn initialize(&self, model: &mut SequenceModel<f32>) {
        let _ = model;
    }
}

/// Training hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: AdamWConfig,
    /// Fraction of all steps spent warming the learning rate up linearly.
    pub warmup_fraction: f64,
    pub schedule: ScheduleKind,
    /// Global gradient-norm clip c (‖g‖₂ ≤ c); 0 disables it.
    pub clip_norm: f64,
    /// Epochs without a better validation score before stopping.
    pub patience: usize,
    /// Cap on batches per epoch (0: the whole training set each epoch).
    pub max_batches_per_epoch: usize,
    /// Apply weight decay to biases, norm gains and initial states too (default: matrices only).
    pub decay_all_parameters: bool,
    /// A decoupled model's teacher trained first (SPEC §2: "trained first, or jointly"):
    /// for this many epochs only the teacher's path learns (the backward stack, fusion and
    /// head, from the teacher's loss), then only the student's (the forward stack, twin
    /// map, fusion and head, from the student's loss and the twin loss towards the now
    /// fixed teacher), with a fresh optimizer. Early stopping and the best weights count
    /// from the student's epochs. 0: both at once (the default).
    pub teacher_epochs: usize,
    pub seed: u64,
    pub threads: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 30,
            batch_size: 64,
            optimizer: AdamWConfig { lr: 1e-3, weight_decay: 1e-4, ..AdamWConfig::default() },
            warmup_fraction: 0.05,
            schedule: ScheduleKind::default(),
            clip_norm: 1.0,
            patience: 20,
            max_batches_per_epoch: 0,
            decay_all_parameters: false,
            teacher_epochs: 0,
            seed: 1,
            threads: 1,
        }
    }
}

/// One line of the epoch log (no wall times: logs of equal runs are identical).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_loss: f64,
    pub validation: f64,
    /// Mean pre-clip global gradient norm.
    pub grad_norm: f64,
    pub lr: f64,
}

/// Which of a decoupled model's paths an epoch trains (see [`TrainConfig::teacher_epochs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Every parameter, from every loss.
    Joint,
    /// The teacher's path only: backward stack, fusion and head.
    Teacher,
    /// The student's path only: forward stack, twin map, fusion and head.
    Student,
}

impl Phase {
    fn of(config: &TrainConfig, epoch: usize) -> Phase {
        match config.teacher_epochs {
            0 => Phase::Joint,
            n if epoch <= n => Phase::Teacher,
            _ => Phase::Student,
        }
    }

    /// Whether the parameter `name` (as [`SequenceModel::named_mut`] names it) learns.
    fn trains(self, name: &str) -> bool {
        match self {
            Phase::Joint => true,
            Phase::Teacher => !name.starts_with("forward.") && !name.starts_with("twin."),
            Phase::Student => !name.starts_with("backward."),
        }
    }
}

/// Everything besides tensors that a resumed run needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct TrainState {
    epochs_done: usize,
    step: usize,
    rng: Rng,
    /// +∞ until an epoch counts (JSON writes it as null).
    #[serde(deserialize_with = "infinity_if_null")]
    best_score: f64,
    best_epoch: usize,
    since_best: usize,
    plateau: PlateauState,
    optimizer_step: u64,
    log: Vec<EpochLog>,
    stopped_early: bool,
}

/// A score written by serde_json, which writes +∞ as null.
fn infinity_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

/// The outcome: the best model (by validation score) and the log.
pub struct TrainReport {
    pub model: SequenceModel<f32>,
    pub log: Vec<EpochLog>,
    pub best_epoch: usize,
    pub best_score: f64,
}

const CHECKPOINT: &str = "checkpoint.safetensors";

fn batches_per_epoch(config: &TrainConfig, examples: usize) -> usize {
    let all = examples.div_ceil(config.batch_size.max(1));
    if config.max_batches_per_epoch > 0 {
        all.min(config.max_batches_per_epoch)
    } else {
        all
    }
}

/// Trains a fresh model for `task` (or resumes the run in `run_dir` when `resume` and a
/// checkpoint is there). With `run_dir`, writes `checkpoint.safetensors` and
/// `epochs.jsonl` after every epoch, atomically. `stop_after` ends this call after that
/// many epochs in total (to interrupt a run; the checkpoint lets it continue).
///
/// # Errors
/// A bad config or task, an unwritable or unreadable run folder, a checkpoint made by a
/// different model or training config.
pub fn train<T: Task + Sync>(
    task: &T,
    model_config: &ModelConfig,
    config: &TrainConfig,
    run_dir: Option<&Path>,
    resume: bool,
    stop_after: Option<usize>,
) -> Result<TrainReport> {
    // The loop runs on one of rayon's threads, which the layers' jobs use too: the loop's
    // thread then takes part in them instead of leaving the pool's workers spinning
    // against it for the two cores between steps (`recur demo`, 2 runs each: 17.4–18.5 s
    // on the pool, 18.5–20.0 s with the loop called directly). The caller's progress
    // setting goes with it.
    let progress = super::progress();
    rayon::scope(|_| {
        super::set_progress(progress);
        training_loop(task, model_config, config, run_dir, resume, stop_after)
    })
}

/// [`train`]'s body, run on rayon's pool.
fn training_loop<T: Task>(
    task: &T,
    model_config: &ModelConfig,
    config: &TrainConfig,
    run_dir: Option<&Path>,
    resume: bool,
    stop_after: Option<usize>,
) -> Result<TrainReport> {
    if task.train_len() == 0 || config.batch_size == 0 {
        return Err(Error::invalid("training", "no training example, or a zero batch size"));
    }
    if config.teacher_epochs > 0 && (!model_config.is_decoupled() || config.teacher_epochs >= config.epochs) {
        return Err(Error::invalid(
            "train.teacher_epochs",
            format!(
                "{} epochs of teacher first need a decoupled model and fewer than the {} epochs of the run",
                config.teacher_epochs, config.epochs
            ),
        ));
    }
    let truncation = task.truncation();
    let batches = batches_per_epoch(config, task.train_len());
    // optimizer updates per epoch: one per batch, or one per k1 steps of a batch of streams
    let per_epoch = batches * truncation.map_or(1, |t| t.updates());
    let total = per_epoch * config.epochs;
    let schedule = Schedule {
        base: config.optimizer.lr,
        warmup_steps: ((total as f64 * config.warmup_fraction) as usize).max(1),
        total_steps: total,
        kind: config.schedule,
    };
    if let Some(dir) = run_dir {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    }
    let checkpoint = run_dir.map(|d| d.join(CHECKPOINT));
    let (mut model, mut best, mut opt, mut state) = match checkpoint.as_deref().filter(|p| resume && p.exists()) {
        Some(path) => load_checkpoint(path, model_config, config)?,
        None => {
            let mut model = SequenceModel::<f32>::new(model_config.clone(), config.seed)?;
            task.initialize(&mut model);
            model.set_threads(config.threads);
            let state = TrainState {
                epochs_done: 0,
                step: 0,
                rng: Rng::new(config.seed ^ 0x7a1),
                best_score: f64::INFINITY,
                best_epoch: 0,
                since_best: 0,
                plateau: PlateauState::new(),
                optimizer_step: 0,
                log: Vec::new(),
                stopped_early: false,
            };
            (model.clone(), model, AdamW::new(config.optimizer), state)
        }
    };
    model.set_threads(config.threads);
    let mut order: Vec<usize> = (0..task.train_len()).collect();
    let last_epoch = stop_after.unwrap_or(config.epochs).min(config.epochs);
    let bar = progress_bar(((last_epoch.saturating_sub(state.epochs_done)) * per_epoch) as u64, "train");
    while state.epochs_done < last_epoch && !state.stopped_early {
        let epoch = state.epochs_done + 1;
        let phase = Phase::of(config, epoch);
        if phase == Phase::Student && epoch == config.teacher_epochs + 1 {
            // the student starts with its own optimizer, as a second training would
            opt = AdamW::new(config.optimizer);
        }
        order.sort_unstable();
        state.rng.shuffle(&mut order);
        let (mut loss_sum, mut norm_sum) = (0.0, 0.0);
        let mut recycled = None;
        let mut grads = model.zeros_like();
        for chunk in order.chunks(config.batch_size).take(batches) {
            let batch = task.make_batch(chunk, &mut state.rng);
            let mut streams = truncation.map(|t| TruncatedStreams::new(&model, t, chunk.len())).transpose()?;
            for u in 0..truncation.map_or(1, |t| t.updates()) {
                for (_, g) in grads.named_mut() {
                    g.data.fill(0.0);
                }
                let seed = state.rng.next_u64();
                let input = task.input(&batch);
                // the forward of one update: a window of the batch, or a chunk of its streams
                let (mut student, mut teacher, twin_loss, mut cache) = match streams.as_mut() {
                    None => {
                        let (out, cache) = model.forward_train_at(&input, seed, recycled.take(), task.head_steps())?;
                        let student = task.loss(&out.student, &batch);
                        let teacher = out.teacher.as_ref().map(|t| task.loss(t, &batch));
                        (student, teacher, out.twin_loss, Some(cache))
                    }
                    Some(streams) => {
                        let out = streams.forward(&model, &input, u, seed)?;
                        let student = task.chunk_loss(&out.head, &batch, out.steps.clone())?;
                        let teacher =
                            out.teacher.as_ref().map(|t| task.chunk_loss(t, &batch, out.steps.clone())).transpose()?;
                        (student, teacher, out.twin_loss, None)
                    }
                };
                // a path that does not learn in this phase sends no gradient
                let loss = match phase {
                    Phase::Joint => student.0 + twin_loss + teacher.as_ref().map_or(0.0, |t| t.0),
                    Phase::Teacher => {
                        student.1.fill(0.0);
                        student.2.fill(0.0);
                        teacher.as_ref().map_or(0.0, |t| t.0)
                    }
                    Phase::Student => {
                        if let Some(t) = teacher.as_mut() {
                            t.1.fill(0.0);
                            t.2.fill(0.0);
                        }
                        student.0 + twin_loss
                    }
                };
                let d_student = (&student.1[..], &student.2[..]);
                let d_teacher = teacher.as_ref().map(|t| (&t.1[..], &t.2[..]));
                match (streams.as_mut(), cache.as_mut()) {
                    (Some(streams), _) => streams.backward(&model, &input, d_student, d_teacher, &mut grads)?,
                    (None, Some(cache)) => {
                        model.backward_with(cache, d_student, d_teacher, &mut grads, InputGradient::Skip)?;
                    }
                    (None, None) => unreachable!("a window's forward keeps its cache"),
                }
                recycled = cache;
                // the twin loss reaches the student's parameters while the teacher learns alone
                if phase != Phase::Joint {
                    for (name, g) in grads.named_mut() {
                        if !phase.trains(&name) {
                            g.data.fill(0.0);
                        }
                    }
                }
                let norm = if config.clip_norm > 0.0 {
                    clip_grad_norm(&mut model_gradients(&mut grads), config.clip_norm)
                } else {
                    clip_grad_norm(&mut model_gradients(&mut grads), f64::INFINITY)
                };
                let lr = schedule.lr(state.step, epoch, &state.plateau);
                opt.step(
                    lr,
                    &mut model_slots_with(&mut model, &mut grads, config.decay_all_parameters, |n| phase.trains(n)),
                );
                state.step += 1;
                loss_sum += loss;
                norm_sum += norm;
                bar.inc(1);
            }
        }
        let validation = task.validate(&model)?;
        let entry = EpochLog {
            epoch,
            train_loss: loss_sum / per_epoch as f64,
            validation,
            grad_norm: norm_sum / per_epoch as f64,
            lr: schedule.lr(state.step.saturating_sub(1), epoch, &state.plateau),
        };
        bar.set_message(format!("epoch {epoch}: train {:.4}, validation {:.4}", entry.train_loss, validation));
        state.log.push(entry);
        // the validation score is the inference path's: the student's, which the teacher's
        // epochs leave as it was
        if phase != Phase::Teacher {
            state.plateau.observe(config.schedule, validation);
            if validation < state.best_score {
                (state.best_score, state.best_epoch, state.since_best) = (validation, epoch, 0);
                best = model.clone();
            } else {
                state.since_best += 1;
                state.stopped_early = state.since_best >= config.patience;
            }
        }
        state.epochs_done = epoch;
        state.optimizer_step = opt.step;
        if let (Some(dir), Some(path)) = (run_dir, checkpoint.as_deref()) {
            save_checkpoint(path, &mut model, &mut best, &opt, &state, model_config, config)?;
            write_atomically(&dir.join("epochs.jsonl"), json_lines(&state.log).as_bytes())?;
        }
    }
    bar.finish_and_clear();
    Ok(TrainReport { model: best, log: state.log, best_epoch: state.best_epoch, best_score: state.best_score })
}

fn save_checkpoint(
    path: &Path,
    model: &mut SequenceModel<f32>,
    best: &mut SequenceModel<f32>,
    opt: &AdamW,
    state: &TrainState,
    model_config: &ModelConfig,
    config: &TrainConfig,
) -> Result<()> {
    let metadata = HashMap::from([
        ("recur.model_config".to_string(), json("model config", model_config)?),
        ("recur.train_config".to_string(), json("train config", config)?),
        ("recur.train_state".to_string(), json("train state", state)?),
    ]);
    write_checkpoint(path, model.named_mut(), best.named_mut(), opt, metadata)
}

type Restored = (SequenceModel<f32>, SequenceModel<f32>, AdamW, TrainState);

fn load_checkpoint(path: &Path, model_config: &ModelConfig, config: &TrainConfig) -> Result<Restored> {
    let file = TensorFile::read(path)?;
    if &file.meta::<ModelConfig>("recur.model_config")? != model_config {
        return Err(mismatch(path, "model config"));
    }
    if &file.meta::<TrainConfig>("recur.train_config")? != config {
        return Err(mismatch(path, "training config"));
    }
    let state: TrainState = file.meta("recur.train_state")?;
    let restore = |prefix: &str| -> Result<SequenceModel<f32>> {
        let mut m = SequenceModel::<f32>::new(model_config.clone(), 0)?;
        read_weights(&file, prefix, m.named_mut())?;
        Ok(m)
    };
    let (model, best) = (restore(MODEL)?, restore(BEST)?);
    let opt = read_optimizer(&file, config.optimizer, state.optimizer_step)?;
    Ok((model, best, opt, state))
}
