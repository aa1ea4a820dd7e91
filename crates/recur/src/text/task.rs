//! The hierarchical text classification task end to end: a seeded train / validation /
//! test split of a labelled corpus, the vocabulary from the training text, HARNN trained
//! with AdamW (warm-up + cosine, clipping, early stopping on the validation micro-F1
//! restoring the best weights, a progress bar), and every method scored on the same
//! test documents: HARNN, TF-IDF + logistic regression, TF-IDF + gradient-boosted trees,
//! and the majority class.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use indicatif::ProgressBar;
use rayon::prelude::*;

use serde::{Deserialize, Serialize};

use super::baseline::{
    arg_max, per_level_predictions, BoostedTrees, BoostingConfig, LogisticConfig, SoftmaxRegression, SparseRow, TfIdf,
};
use super::classify::TextClassifier;
use super::corpus::{split_indices, Hierarchy, LabeledCorpus};
use super::harnn::{decide, harnn_loss_in_batch, Harnn, HarnnConfig, HarnnLoss, HarnnOutput, PaddedTokens};
use super::metrics::{multilabel_scores, LabelScores};
use super::vocab::Vocabulary;
use crate::error::{Error, Result};
use crate::io::{write_atomically, TensorFile};
use crate::optim::{clip_grad_norm, AdamW, AdamWConfig, ParamSlot};
use crate::plot::{BarChart, LineChart, Series, Style};
use crate::rng::Rng;
use crate::train::checkpoint::{json, mismatch, read_optimizer, read_weights, write_checkpoint, BEST, MODEL};
use crate::train::{json_lines, progress_bar, PlateauState, Schedule, ScheduleKind};

/// Every choice of a text run; each key has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextTaskConfig {
    /// Words kept from the start of each document.
    pub max_tokens: usize,
    /// A word enters the vocabulary if it occurs this often in the training text.
    pub min_count: usize,
    pub max_words: usize,
    pub validation: f64,
    pub test: f64,
    pub split_seed: u64,
    pub embedding_size: usize,
    pub hidden_size: usize,
    pub attention_size: usize,
    pub fc_size: usize,
    /// The global scores' share of the final score.
    pub beta: f64,
    /// Variational dropout on the BiLSTM's input and recurrent state.
    pub input_dropout: f64,
    pub state_dropout: f64,
    /// λ of the hierarchy-violation penalty.
    pub hierarchy_penalty: f64,
    /// Decision threshold on the final scores (arg-max fallback per level).
    pub threshold: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub warmup_steps: usize,
    /// Global gradient-norm clipping.
    pub clip: f64,
    /// Epochs without a better validation micro-F1 before stopping.
    pub patience: usize,
    pub seed: u64,
    /// From 2: the two shards of each training batch, and the batches of a prediction,
    /// side by side on two threads (the same bits as on one).
    pub threads: usize,
    /// Full-batch iterations of each level's logistic regression.
    pub baseline_iterations: usize,
    /// Rounds of the gradient-boosted trees baseline (0 leaves it out), their depth, and
    /// the bins of each word's TF-IDF values their splits search (1: whether it occurs).
    pub boosting_rounds: usize,
    pub boosting_depth: usize,
    pub boosting_bins: usize,
}

impl Default for TextTaskConfig {
    fn default() -> Self {
        TextTaskConfig {
            max_tokens: 100,
            min_count: 2,
            max_words: 30_000,
            validation: 0.1,
            test: 0.2,
            split_seed: 0,
            embedding_size: 64,
            hidden_size: 64,
            attention_size: 64,
            fc_size: 128,
            beta: 0.5,
            input_dropout: 0.25,
            state_dropout: 0.25,
            hierarchy_penalty: 1.0,
            threshold: 0.5,
            epochs: 25,
            batch_size: 32,
            lr: 5e-3,
            weight_decay: 1e-4,
            warmup_steps: 50,
            clip: 5.0,
            patience: 4,
            seed: 0,
            threads: 2,
            baseline_iterations: 150,
            boosting_rounds: 60,
            boosting_depth: 4,
            boosting_bins: 1,
        }
    }
}

/// One method's scores on the test documents: per level, then over all classes.
#[derive(Clone, Debug, Serialize)]
pub struct MethodScores {
    pub method: String,
    pub levels: Vec<LabelScores>,
    pub overall: LabelScores,
}

/// One line of the training log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextEpoch {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_violation: f64,
    pub validation_micro_f1: f64,
    pub lr: f64,
    pub seconds: f64,
}

/// What a text run produces.
pub struct TextOutcome {
    pub hierarchy: Hierarchy,
    pub vocabulary: Vocabulary,
    pub model: Harnn<f32>,
    /// Documents in the train, validation and test parts.
    pub sizes: [usize; 3],
    pub epochs: Vec<TextEpoch>,
    pub best_epoch: usize,
    pub methods: Vec<MethodScores>,
    /// Test documents whose predicted classes break the tree (a class without its parent).
    pub hierarchy_violations: usize,
}

impl TextOutcome {
    /// The trained model as a classifier of new text (what the run folder stores).
    pub fn classifier(&self, config: &TextTaskConfig) -> TextClassifier {
        TextClassifier {
            model: self.model.clone(),
            vocabulary: self.vocabulary.clone(),
            level_names: self.hierarchy.level_names.clone(),
            classes: self.hierarchy.classes.clone(),
            max_tokens: config.max_tokens,
            threshold: config.threshold,
        }
    }
}

/// Documents of one part, encoded.
struct Part {
    texts: Vec<String>,
    tokens: Vec<Vec<u32>>,
    labels: Vec<Vec<usize>>,
    targets: Vec<bool>,
}

impl Part {
    fn new(corpus: &LabeledCorpus, indices: &[usize], vocab: &Vocabulary, max_tokens: usize) -> Part {
        Part {
            texts: indices.iter().map(|&i| corpus.documents[i].text.clone()).collect(),
            tokens: indices.iter().map(|&i| vocab.encode(&corpus.documents[i].text, max_tokens)).collect(),
            labels: indices.iter().map(|&i| corpus.documents[i].labels.clone()).collect(),
            targets: indices.iter().flat_map(|&i| corpus.label_row(i)).collect(),
        }
    }

    fn len(&self) -> usize {
        self.tokens.len()
    }
}

impl Part {
    /// The documents `members` as one padded batch.
    fn batch(&self, members: &[usize]) -> PaddedTokens {
        PaddedTokens::new(&members.iter().map(|&i| &self.tokens[i][..]).collect::<Vec<_>>())
    }
}

/// Mini-batches of similar lengths (less padding to run through the BiLSTM): the
/// shuffled documents are sorted by length within windows of 16 batches, cut into
/// batches, and the batches shuffled.
fn length_bucketed_batches(part: &Part, batch_size: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..part.len()).collect();
    rng.shuffle(&mut order);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for window in order.chunks_mut(batch_size * 16) {
        window.sort_by_key(|&i| part.tokens[i].len());
        batches.extend(window.chunks(batch_size).map(<[usize]>::to_vec));
    }
    rng.shuffle(&mut batches);
    batches
}

/// The model's final scores for every document of `part`, in order; batches of similar
/// lengths, run side by side on rayon's pool when `threads ≥ 2` (each batch's scores are
/// the same bits either way).
fn predict_scores(model: &Harnn<f32>, part: &Part, batch_size: usize, threads: usize) -> Result<Vec<f32>> {
    let total = model.config().total_classes();
    let mut order: Vec<usize> = (0..part.len()).collect();
    order.sort_by_key(|&i| part.tokens[i].len());
    let batches: Vec<&[usize]> = order.chunks(batch_size.max(1)).collect();
    let forward = |members: &&[usize]| model.forward(&part.batch(members).view()).map(|out| out.scores);
    let outputs: Vec<Vec<f32>> = match threads >= 2 {
        true => batches.par_iter().map(forward).collect::<Result<_>>()?,
        false => batches.iter().map(forward).collect::<Result<_>>()?,
    };
    let mut scores = vec![0.0f32; part.len() * total];
    for (members, out) in batches.iter().zip(&outputs) {
        for (b, &i) in members.iter().enumerate() {
            scores[i * total..(i + 1) * total].copy_from_slice(&out[b * total..(b + 1) * total]);
        }
    }
    Ok(scores)
}

/// The documents of a training batch are split into this many shards, each run forward
/// and backward into its gradient buffer of its own — side by side on two threads when
/// the task has them — and the buffers summed. A fixed number, whatever the threads, so
/// that a run gives the same bits on one thread as on two.
const SHARDS: usize = 2;

/// The batch's loss (total, violation) and its gradient in `shard_grads[0]`: the documents
/// `members` dealt into [`SHARDS`] shards in turn (the batch is sorted by length, so each
/// shard gets the same mix of lengths), shard `s` forward with its own dropout seed
/// (`seed` for the first) and backward into `shard_grads[s]`, then the buffers summed in
/// shard order. `loss_of(output, targets, batch_documents)` is a shard's loss as part of a
/// batch of so many documents.
fn batch_gradients(
    model: &Harnn<f32>,
    part: &Part,
    members: &[usize],
    seed: u64,
    shard_grads: &mut [Harnn<f32>; SHARDS],
    threads: usize,
    loss_of: &(impl Fn(&HarnnOutput<f32>, &[f32], usize) -> Result<HarnnLoss<f32>> + Sync),
) -> Result<(f64, f64)> {
    let total = model.config().total_classes();
    let shard = |s: usize, grads: &mut Harnn<f32>| -> Result<(f64, f64)> {
        for (_, g) in grads.named_mut() {
            g.data.iter_mut().for_each(|v| *v = 0.0);
        }
        let docs: Vec<usize> = members.iter().copied().skip(s).step_by(SHARDS).collect();
        if docs.is_empty() {
            return Ok((0.0, 0.0));
        }
        let targets: Vec<f32> = docs
            .iter()
            .flat_map(|&i| part.targets[i * total..(i + 1) * total].iter().map(|&t| f32::from(u8::from(t))))
            .collect();
        let shard_seed = seed ^ (s as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let (out, mut cache) = model.forward_train(&part.batch(&docs).view(), shard_seed)?;
        let loss = loss_of(&out, &targets, members.len())?;
        model.backward(&mut cache, &loss.d_local_logits, &loss.d_global_logits, grads)?;
        Ok((loss.total, loss.violation))
    };
    let [first, second] = shard_grads;
    let (a, b) = match threads >= 2 {
        true => rayon::join(|| shard(0, first), || shard(1, second)),
        false => (shard(0, first), shard(1, second)),
    };
    let ((total_a, violation_a), (total_b, violation_b)) = (a?, b?);
    for ((_, sum), (_, g)) in first.named_mut().into_iter().zip(second.named_mut()) {
        sum.data.iter_mut().zip(&g.data).for_each(|(s, &g)| *s += g);
    }
    Ok((total_a + total_b, violation_a + violation_b))
}

/// Scores of multi-hot `predicted` against `truth`, per level and overall.
fn score_levels(method: &str, predicted: &[bool], truth: &[bool], hierarchy: &Hierarchy) -> MethodScores {
    let total = hierarchy.total();
    let levels = hierarchy
        .offsets()
        .iter()
        .zip(hierarchy.sizes())
        .map(|(&start, size)| multilabel_scores(predicted, truth, total, start..start + size))
        .collect();
    MethodScores { method: method.to_string(), levels, overall: multilabel_scores(predicted, truth, total, 0..total) }
}

/// Multi-hot rows from one class per level and document (`per_level[h][doc]`).
fn one_class_per_level(per_level: &[Vec<usize>], hierarchy: &Hierarchy, documents: usize) -> Vec<bool> {
    let (total, offsets) = (hierarchy.total(), hierarchy.offsets());
    let mut rows = vec![false; documents * total];
    for (h, classes) in per_level.iter().enumerate() {
        for (doc, &c) in classes.iter().enumerate() {
            rows[doc * total + offsets[h] + c] = true;
        }
    }
    rows
}

/// Documents with a chosen class whose parent is not chosen.
fn count_violations(predicted: &[bool], hierarchy: &Hierarchy) -> usize {
    let edges = hierarchy.edges();
    predicted
        .chunks_exact(hierarchy.total().max(1))
        .filter(|row| edges.iter().any(|&(child, parent)| row[child] && !row[parent]))
        .count()
}

/// Where a run keeps its checkpoint, whether it continues from one, and where this call
/// stops (to interrupt a run; the checkpoint lets it continue).
#[derive(Clone, Copy, Debug, Default)]
pub struct TextRunOptions<'a> {
    /// The run folder: `checkpoint.safetensors` and `epochs.jsonl` after every epoch.
    pub dir: Option<&'a Path>,
    /// Continue from the folder's checkpoint, if there is one.
    pub resume: bool,
    /// End training after this many epochs in total.
    pub stop_after: Option<usize>,
    /// Score HARNN only (the baselines depend on the split, not on the seed: a run over
    /// several seeds fits them once).
    pub skip_baselines: bool,
}

/// The training loop's state between epochs, as the checkpoint stores it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TextTrainState {
    epochs_done: usize,
    step: usize,
    rng: Rng,
    /// −1 before the first epoch.
    best_f1: f64,
    best_epoch: usize,
    since_best: usize,
    optimizer_step: u64,
    log: Vec<TextEpoch>,
    stopped_early: bool,
}

const CHECKPOINT: &str = "checkpoint.safetensors";

fn save_text_checkpoint(
    path: &Path,
    model: &mut Harnn<f32>,
    best: &mut Harnn<f32>,
    optimizer: &AdamW,
    state: &TextTrainState,
    config: &TextTaskConfig,
) -> Result<()> {
    let metadata = HashMap::from([
        ("recur.harnn_config".to_string(), json("model config", model.config())?),
        ("recur.text_config".to_string(), json("text config", config)?),
        ("recur.text_state".to_string(), json("training state", state)?),
    ]);
    write_checkpoint(path, model.named_mut(), best.named_mut(), optimizer, metadata)
}

/// The model, best model, optimizer and loop state of a checkpoint made by the same
/// model and text configuration.
fn load_text_checkpoint(
    path: &Path,
    model: &Harnn<f32>,
    config: &TextTaskConfig,
) -> Result<(Harnn<f32>, Harnn<f32>, AdamW, TextTrainState)> {
    let file = TensorFile::read(path)?;
    if &file.meta::<HarnnConfig>("recur.harnn_config")? != model.config() {
        return Err(mismatch(path, "model (vocabulary or class tree)"));
    }
    if &file.meta::<TextTaskConfig>("recur.text_config")? != config {
        return Err(mismatch(path, "text configuration"));
    }
    let state: TextTrainState = file.meta("recur.text_state")?;
    let (mut current, mut best) = (model.clone(), model.clone());
    read_weights(&file, MODEL, current.named_mut())?;
    read_weights(&file, BEST, best.named_mut())?;
    let optimizer = read_optimizer(&file, adamw_config(config), state.optimizer_step)?;
    Ok((current, best, optimizer, state))
}

fn adamw_config(config: &TextTaskConfig) -> AdamWConfig {
    AdamWConfig { lr: config.lr, weight_decay: config.weight_decay, ..AdamWConfig::default() }
}

/// Trains `model` on `train` and leaves it at its best weights on `validation`; returns
/// the epoch log and the best epoch. With a run folder, a checkpoint after every epoch
/// from which a resumed run ends bit-identical to an uninterrupted one.
fn train_harnn(
    model: &mut Harnn<f32>,
    train: &Part,
    validation: &Part,
    hierarchy: &Hierarchy,
    config: &TextTaskConfig,
    options: TextRunOptions<'_>,
) -> Result<(Vec<TextEpoch>, usize)> {
    let (levels, edges, total) = (hierarchy.sizes(), hierarchy.edges(), hierarchy.total());
    let checkpoint = options.dir.map(|d| d.join(CHECKPOINT));
    if let Some(dir) = options.dir {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    }
    let (mut current, mut best, mut optimizer, mut state) =
        match checkpoint.as_deref().filter(|p| options.resume && p.exists()) {
            Some(path) => load_text_checkpoint(path, model, config)?,
            None => {
                let state = TextTrainState {
                    epochs_done: 0,
                    step: 0,
                    rng: Rng::new(config.seed ^ 0x7e47),
                    best_f1: -1.0,
                    best_epoch: 0,
                    since_best: 0,
                    optimizer_step: 0,
                    log: Vec::new(),
                    stopped_early: false,
                };
                (model.clone(), model.clone(), AdamW::new(adamw_config(config)), state)
            }
        };
    // the shards of a batch run on threads of their own, each encoder on one
    current.set_threads(1);
    let mut shard_grads: [Harnn<f32>; SHARDS] = std::array::from_fn(|_| current.zeros_like());
    let loss_of = |out: &HarnnOutput<f32>, targets: &[f32], batch_documents: usize| {
        harnn_loss_in_batch(out, targets, &levels, &edges, config.beta, config.hierarchy_penalty, batch_documents)
    };
    let steps_per_epoch = train.len().div_ceil(config.batch_size);
    let schedule = Schedule {
        base: config.lr,
        warmup_steps: config.warmup_steps,
        total_steps: steps_per_epoch * config.epochs,
        kind: ScheduleKind::Cosine { floor: 0.05 },
    };
    let last_epoch = options.stop_after.unwrap_or(config.epochs).min(config.epochs);
    let bar = progress_bar((last_epoch.saturating_sub(state.epochs_done) * steps_per_epoch) as u64, "HARNN");
    while state.epochs_done < last_epoch && !state.stopped_early {
        let epoch = state.epochs_done + 1;
        let epoch_start = Instant::now();
        let (mut loss_sum, mut violation_sum, mut docs) = (0.0, 0.0, 0usize);
        let mut lr = config.lr;
        for members in length_bucketed_batches(train, config.batch_size, &mut state.rng) {
            let seed = config.seed.wrapping_add(state.step as u64);
            let (loss_total, loss_violation) =
                batch_gradients(&current, train, &members, seed, &mut shard_grads, config.threads, &loss_of)?;
            {
                let mut all: Vec<&mut [f32]> =
                    shard_grads[0].named_mut().into_iter().map(|(_, t)| &mut t.data[..]).collect();
                clip_grad_norm(&mut all, config.clip);
            }
            lr = schedule.lr(state.step, epoch, &PlateauState::new());
            let mut slots: Vec<ParamSlot<'_>> = current
                .named_mut()
                .into_iter()
                .zip(shard_grads[0].named_mut())
                .map(|((name, t), (_, g))| ParamSlot {
                    value: &mut t.data,
                    grad: &g.data,
                    decay: !name.ends_with("bias"),
                })
                .collect();
            optimizer.step_on(lr, &mut slots, config.threads);
            loss_sum += loss_total * members.len() as f64;
            violation_sum += loss_violation * members.len() as f64;
            docs += members.len();
            state.step += 1;
            bar.inc(1);
        }
        let val_scores = predict_scores(&current, validation, config.batch_size, config.threads)?;
        let predicted = decide(&val_scores, &levels, config.threshold);
        let f1 = multilabel_scores(&predicted, &validation.targets, total, 0..total).micro_f1;
        bar.set_message(format!("epoch {epoch}: loss {:.3}, validation micro-F1 {f1:.4}", loss_sum / docs as f64));
        state.log.push(TextEpoch {
            epoch,
            train_loss: loss_sum / docs as f64,
            train_violation: violation_sum / docs as f64,
            validation_micro_f1: f1,
            lr,
            seconds: epoch_start.elapsed().as_secs_f64(),
        });
        if f1 > state.best_f1 {
            (state.best_f1, state.best_epoch, state.since_best) = (f1, epoch, 0);
            best = current.clone();
        } else {
            state.since_best += 1;
            state.stopped_early = state.since_best >= config.patience;
        }
        state.epochs_done = epoch;
        state.optimizer_step = optimizer.step;
        if let (Some(dir), Some(path)) = (options.dir, checkpoint.as_deref()) {
            save_text_checkpoint(path, &mut current, &mut best, &optimizer, &state, config)?;
            write_atomically(&dir.join("epochs.jsonl"), json_lines(&state.log).as_bytes())?;
        }
    }
    bar.finish_and_clear();
    *model = best;
    Ok((state.log, state.best_epoch))
}

/// A baseline at one level: from the training documents' classes there (`labels`, of
/// `classes`) to the test documents' predicted classes, advancing the bar by the
/// baseline's steps per level.
type LevelFit<'a> = dyn Fn(&[usize], usize, &ProgressBar) -> Vec<usize> + Sync + 'a;

/// The baselines' scores on `test`: TF-IDF + logistic regression, TF-IDF + boosted trees
/// (unless `boosting_rounds` is 0), the majority class; each fitted on `train`.
fn baseline_scores(
    train: &Part,
    test: &Part,
    vocabulary: &Vocabulary,
    hierarchy: &Hierarchy,
    config: &TextTaskConfig,
) -> Vec<MethodScores> {
    let levels = hierarchy.sizes();
    let tfidf = TfIdf::fit(vocabulary, train.texts.iter().map(String::as_str));
    let features =
        |part: &Part| -> Vec<SparseRow> { part.texts.iter().map(|t| tfidf.transform(vocabulary, t)).collect() };
    let (train_rows, test_rows) = (features(train), features(test));
    let features_n = vocabulary.len();
    let mut methods = Vec::new();
    let mut score = |method: &str, steps: usize, fit: &LevelFit<'_>| {
        let bar = progress_bar((levels.len() * steps) as u64, method);
        let per_level = per_level_predictions(&train.labels, &levels, |labels, classes| fit(labels, classes, &bar));
        bar.finish_and_clear();
        let predicted = one_class_per_level(&per_level, hierarchy, test.len());
        methods.push(score_levels(method, &predicted, &test.targets, hierarchy));
    };
    let logistic =
        LogisticConfig { iterations: config.baseline_iterations, threads: config.threads, ..LogisticConfig::default() };
    score("TF-IDF + logistic regression", logistic.iterations, &|labels, classes, bar| {
        SoftmaxRegression::fit(&train_rows, labels, features_n, classes, logistic, bar).predict(&test_rows)
    });
    if config.boosting_rounds > 0 {
        let boosting = BoostingConfig {
            rounds: config.boosting_rounds,
            max_depth: config.boosting_depth,
            max_bins: config.boosting_bins,
            ..BoostingConfig::default()
        };
        score("TF-IDF + boosted trees", boosting.rounds, &|labels, classes, bar| {
            BoostedTrees::fit(&train_rows, labels, features_n, classes, boosting, bar).predict(&test_rows)
        });
    }
    score("majority class", 0, &|labels, classes, _| {
        let mut counts = vec![0usize; classes];
        labels.iter().for_each(|&l| counts[l] += 1);
        vec![arg_max(&counts); test.len()]
    });
    methods
}

/// Runs the task on `corpus`, in memory.
///
/// # Errors
/// An invalid configuration, or a corpus too small to split.
pub fn run_text_task(corpus: &LabeledCorpus, config: &TextTaskConfig) -> Result<TextOutcome> {
    run_text_task_in(corpus, config, TextRunOptions::default())
}

/// Runs the task on `corpus`, checkpointing into (and resuming from) a run folder as
/// `options` say.
///
/// # Errors
/// As [`run_text_task`], plus an unwritable folder or a checkpoint made by another
/// configuration or corpus.
pub fn run_text_task_in(
    corpus: &LabeledCorpus,
    config: &TextTaskConfig,
    options: TextRunOptions<'_>,
) -> Result<TextOutcome> {
    let hierarchy = corpus.hierarchy.clone();
    let [train_idx, val_idx, test_idx] =
        split_indices(corpus.documents.len(), config.validation, config.test, config.split_seed)?;
    if train_idx.is_empty() || val_idx.is_empty() || test_idx.is_empty() {
        return Err(Error::invalid(
            "corpus",
            format!(
                "{} document(s) cannot be split into non-empty train, validation and test parts",
                corpus.documents.len()
            ),
        ));
    }
    if config.batch_size == 0 || config.epochs == 0 {
        return Err(Error::invalid("batch_size / epochs", "must be at least 1"));
    }
    let vocabulary = Vocabulary::build(
        train_idx.iter().map(|&i| corpus.documents[i].text.as_str()),
        config.min_count,
        config.max_words,
    );
    let [train, validation, test] =
        [&train_idx, &val_idx, &test_idx].map(|idx| Part::new(corpus, idx, &vocabulary, config.max_tokens));
    let levels = hierarchy.sizes();
    let mut model = Harnn::<f32>::new(
        HarnnConfig {
            vocab_size: vocabulary.len(),
            embedding_size: config.embedding_size,
            hidden_size: config.hidden_size,
            attention_size: config.attention_size,
            fc_size: config.fc_size,
            levels: levels.clone(),
            beta: config.beta,
            input_dropout: config.input_dropout,
            state_dropout: config.state_dropout,
        },
        config.seed,
    )?;
    let (epochs, best_epoch) = train_harnn(&mut model, &train, &validation, &hierarchy, config, options)?;
    let test_scores = predict_scores(&model, &test, config.batch_size, config.threads)?;
    let harnn_predicted = decide(&test_scores, &levels, config.threshold);
    let hierarchy_violations = count_violations(&harnn_predicted, &hierarchy);
    let mut methods = vec![score_levels("HARNN", &harnn_predicted, &test.targets, &hierarchy)];
    if !options.skip_baselines {
        methods.extend(baseline_scores(&train, &test, &vocabulary, &hierarchy, config));
    }
    Ok(TextOutcome {
        hierarchy,
        vocabulary,
        model,
        sizes: [train.len(), validation.len(), test.len()],
        epochs,
        best_epoch,
        methods,
        hierarchy_violations,
    })
}

/// The scores as a Markdown table: micro-F1 of each level, then micro and macro P/R/F1
/// and subset accuracy over all classes.
pub fn text_score_table(outcome: &TextOutcome) -> String {
    let headers: Vec<String> =
        outcome.hierarchy.level_names.iter().map(|n| format!("F1 {:<4}", crate::report::markdown_cell(n))).collect();
    let widths: Vec<usize> = headers.iter().map(|h| h.chars().count().max(7)).collect();
    let mut out = format!("| {:<30} |", "method");
    for (h, &w) in headers.iter().zip(&widths) {
        out.push_str(&format!(" {h:<w$} |"));
    }
    out.push_str(" micro P | micro R | micro F1 | macro P | macro R | macro F1 | subset acc |\n");
    out.push_str(&format!("|{}|", "-".repeat(32)));
    for &w in &widths {
        out.push_str(&format!("{}:|", "-".repeat(w + 1)));
    }
    out.push_str("--------:|--------:|---------:|--------:|--------:|---------:|-----------:|\n");
    for m in &outcome.methods {
        out.push_str(&format!("| {:<30} |", m.method));
        for (l, &w) in m.levels.iter().zip(&widths) {
            out.push_str(&format!(" {:>w$.4} |", l.micro_f1));
        }
        let o = &m.overall;
        out.push_str(&format!(
            " {:>7.4} | {:>7.4} | {:>8.4} | {:>7.4} | {:>7.4} | {:>8.4} | {:>10.4} |\n",
            o.micro_precision,
            o.micro_recall,
            o.micro_f1,
            o.macro_precision,
            o.macro_recall,
            o.macro_f1,
            o.subset_accuracy
        ));
    }
    out
}

/// HARNN over several seeds (`runs`, each from [`run_text_task_in`]) as a Markdown table:
/// each seed's micro-F1 per level and overall, macro-F1 and subset accuracy, then their
/// mean ± standard deviation (n − 1), then the baselines of the first run that has them.
pub fn seed_table(runs: &[(u64, TextOutcome)]) -> String {
    let Some((_, first)) = runs.first() else { return String::new() };
    let names = &first.hierarchy.level_names;
    let columns: Vec<String> = names
        .iter()
        .map(|n| format!("F1 {}", crate::report::markdown_cell(n)))
        .chain(["micro F1", "macro F1", "subset acc"].map(String::from))
        .collect();
    let values = |m: &MethodScores| -> Vec<f64> {
        m.levels
            .iter()
            .map(|l| l.micro_f1)
            .chain([m.overall.micro_f1, m.overall.macro_f1, m.overall.subset_accuracy])
            .collect()
    };
    let mut out = format!(
        "| {:<30} | {} |\n",
        "method",
        columns.iter().map(|c| format!("{c:>15}")).collect::<Vec<_>>().join(" | ")
    );
    out.push_str(&format!("|{}|{}\n", "-".repeat(32), "----------------:|".repeat(columns.len())));
    let row = |name: &str, cells: Vec<String>| format!("| {name:<30} | {} |\n", cells.join(" | "));
    let harnn: Vec<Vec<f64>> = runs.iter().map(|(_, o)| values(&o.methods[0])).collect();
    for ((seed, _), v) in runs.iter().zip(&harnn) {
        out.push_str(&row(&format!("HARNN, seed {seed}"), v.iter().map(|x| format!("{x:>15.4}")).collect()));
    }
    let n = harnn.len() as f64;
    let stats: Vec<String> = (0..columns.len())
        .map(|k| {
            let mean = harnn.iter().map(|v| v[k]).sum::<f64>() / n;
            let var = harnn.iter().map(|v| (v[k] - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            format!("{:>15}", format!("{mean:.4} ± {:.4}", var.sqrt()))
        })
        .collect();
    out.push_str(&row(&format!("HARNN, mean ± std of {}", runs.len()), stats));
    if let Some((_, with)) = runs.iter().find(|(_, o)| o.methods.len() > 1) {
        for m in &with.methods[1..] {
            out.push_str(&row(&m.method, values(m).iter().map(|x| format!("{x:>15.4}")).collect()));
        }
    }
    out
}

/// Writes a text run folder, each file atomically: `text.toml` (the configuration),
/// `metrics.json`, `epochs.jsonl`, `model.safetensors` and `vocabulary.txt` (see
/// [`TextClassifier`]), `scores.png` (micro-F1 per level and method), `loss.png` and `validation.png` (per epoch).
///
/// # Errors
/// The folder is not writable.
pub fn write_text_run(dir: &Path, config: &TextTaskConfig, outcome: &TextOutcome) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    write_atomically(&dir.join("text.toml"), toml::to_string_pretty(config).unwrap_or_default().as_bytes())?;
    let report = serde_json::json!({
        "sizes": { "train": outcome.sizes[0], "validation": outcome.sizes[1], "test": outcome.sizes[2] },
        "levels": outcome.hierarchy.level_names,
        "classes": outcome.hierarchy.sizes(),
        "vocabulary": outcome.vocabulary.len(),
        "parameters": outcome.model.num_parameters(),
        "best_epoch": outcome.best_epoch,
        "hierarchy_violations": outcome.hierarchy_violations,
        "methods": outcome.methods,
    });
    let text = serde_json::to_string_pretty(&report).map_err(|e| Error::invalid("report", e.to_string()))?;
    write_atomically(&dir.join("metrics.json"), text.as_bytes())?;
    write_atomically(&dir.join("epochs.jsonl"), json_lines(&outcome.epochs).as_bytes())?;
    outcome.classifier(config).save(dir)?;
    let names = &outcome.hierarchy.level_names;
    let methods = &outcome.methods;
    BarChart {
        title: "micro-F1 on the test documents, per level and method".into(),
        y_label: "micro-F1".into(),
        bars: names
            .iter()
            .enumerate()
            .flat_map(|(h, n)| {
                methods.iter().map(move |m| (format!("{n} {}", short(&m.method)), m.levels[h].micro_f1, 0.0))
            })
            .collect(),
        group: methods.len(),
        y_max: None,
    }
    .save(&dir.join("scores.png"), 900, 420)?;
    let curve = |f: fn(&TextEpoch) -> f64| outcome.epochs.iter().map(|e| (e.epoch as f64, f(e))).collect();
    let chart = |title: &str, y_label: &str, log_y: bool, name: &str, points| LineChart {
        title: title.into(),
        x_label: "epoch".into(),
        y_label: y_label.into(),
        log_y,
        series: vec![Series { name: name.into(), points, style: Style::Line }],
        bands: Vec::new(),
    };
    chart("HARNN training loss (per document)", "loss", true, "training loss", curve(|e| e.train_loss)).save(
        &dir.join("loss.png"),
        640,
        360,
    )?;
    chart(
        "HARNN on the validation documents",
        "micro-F1",
        false,
        "validation micro-F1",
        curve(|e| e.validation_micro_f1),
    )
    .save(&dir.join("validation.png"), 640, 360)
}

fn short(method: &str) -> &str {
    method.split_whitespace().next().unwrap_or(method)
}
