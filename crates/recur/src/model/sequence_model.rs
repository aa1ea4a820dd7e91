//! An encoder → fusion → head model, with the deck's two couplings of a bidirectional
//! encoder. The two directions are two independent unidirectional stacks (the backward
//! one reads each sequence reversed within its own length), fused after:
//!
//! - **coupled**: z_t = fuse(h→_t, h←_t); offline, it reads the future.
//! - **decoupled** (Twin Networks, Serdyuk et al. 2018): the backward stack is a teacher.
//!   Training is joint: the student path z_t = fuse(h→_t, ĥ←_t) with ĥ←_t = A h→_t + a,
//!   plus α‖ĥ←_t − sg(h←_t)‖² (sg: the teacher's states are constants for the student),
//!   and the teacher path fuse(sg(h→_t), h←_t) through the same fusion and head, which
//!   trains the teacher. At inference only the student runs: causal and streamable.
//!
//! Without a backward stack the model is unidirectional: z_t = h→_t.

use recur_kernels::Real;
use serde::{Deserialize, Serialize};

use super::fusion::{Fusion, FusionCache, FusionKind};
use super::head::{Head, HeadKind, HeadOutput};
use crate::error::{Error, Result};
use crate::heads::Linear;
use crate::losses::twin_loss;
use crate::rng::Rng;
use crate::rnn::{InitialState, InputGradient, InputGrads, Rnn, RnnCache, RnnConfig, RnnOutput, SequenceBatch};
use crate::tensor::Tensor;

/// How the two directions are trained and used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Coupling {
    Coupled,
    Decoupled,
}

/// A whole model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The encoder; `bidirectional` adds the backward stack.
    pub encoder: RnnConfig,
    pub coupling: Coupling,
    /// α of the twin loss (decoupled only).
    pub twin_weight: f64,
    pub fusion: FusionKind,
    pub head: HeadKind,
    /// O: values predicted per step.
    pub outputs: usize,
    /// P: precisions per step of a Gaussian head, λ̂_p shared by the O / P consecutive
    /// outputs of block p (1: one λ̂ per step, the deck's; a direct forecast has one per
    /// step ahead); for a quantile head, 2·O distances.
    #[serde(default = "one_precision")]
    pub precisions: usize,
    /// λ̂ = softplus(W_λ sg(z_t) + b_λ): the precision reads z_t as a constant, so its loss
    /// trains W_λ and b_λ alone and the rest of the model learns from the mean's loss only
    /// (a forecast's band; the deck's reconstruction trains through λ̂).
    #[serde(default)]
    pub detach_precision: bool,
}

fn one_precision() -> usize {
    1
}

/// The user-facing model choices of a run (the input width, head and output width come
/// from the task).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    pub cell: crate::rnn::CellKind,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub bidirectional: bool,
    pub coupling: Coupling,
    pub fusion: FusionKind,
    pub twin_weight: f64,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            cell: crate::rnn::CellKind::GruResetAfter,
            hidden_size: 64,
            num_layers: 1,
            bidirectional: false,
            coupling: Coupling::Coupled,
            fusion: FusionKind::Concat,
            twin_weight: 0.5,
        }
    }
}

impl ModelConfig {
    /// A bidirectional encoder trained teacher–student (a twin map, a causal student).
    pub fn is_decoupled(&self) -> bool {
        self.encoder.bidirectional && self.coupling == Coupling::Decoupled
    }
}

impl ModelSection {
    /// The model for `input_size` features per step and `outputs` values per step.
    pub fn model_config(&self, input_size: usize, head: HeadKind, outputs: usize) -> ModelConfig {
        ModelConfig {
            encoder: RnnConfig {
                cell: self.cell,
                input_size,
                hidden_size: self.hidden_size,
                num_layers: self.num_layers,
                bidirectional: self.bidirectional,
                ..RnnConfig::default()
            },
            coupling: self.coupling,
            twin_weight: self.twin_weight,
            fusion: self.fusion,
            head,
            outputs,
            precisions: 1,
            detach_precision: false,
        }
    }
}

/// Encoder branches, twin map, fusion and head. Gradients live in a zeroed clone
/// ([`SequenceModel::zeros_like`]), so parameters and gradients share names and order.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceModel<T = f32> {
    config: ModelConfig,
    pub forward_branch: Rnn<T>,
    pub backward_branch: Option<Rnn<T>>,
    /// ĥ← = A h→ + a (decoupled only), `A: [H, H]`.
    pub twin: Option<Linear<T>>,
    pub fusion: Option<Fusion<T>>,
    pub head: Head<T>,
    /// Run the two branches on two threads (see [`SequenceModel::set_threads`]).
    parallel_branches: bool,
}

/// What a training forward produces, per step (`N = T·B` rows).
#[derive(Clone, Debug)]
pub struct ModelOutputs<T> {
    /// The path used at inference (coupled, or the decoupled student).
    pub student: HeadOutput<T>,
    /// The decoupled teacher path (None otherwise).
    pub teacher: Option<HeadOutput<T>>,
    /// α‖ĥ← − h←‖² averaged over active rows (0 unless decoupled).
    pub twin_loss: f64,
}

/// What backward needs from [`SequenceModel::forward_train`].
pub struct ModelCache<T> {
    steps: usize,
    batch: usize,
    lengths: Option<Vec<usize>>,
    x: Vec<T>,
    x_reversed: Vec<T>,
    forward_cache: RnnCache<T>,
    backward_cache: Option<RnnCache<T>>,
    h_forward: Vec<T>,
    h_backward: Vec<T>,
    z_student: Vec<T>,
    z_teacher: Vec<T>,
    fusion_student: Option<FusionCache<T>>,
    fusion_teacher: Option<FusionCache<T>>,
    /// ∂(twin loss)/∂ĥ←, computed in forward (it depends on forward values only).
    d_estimate_twin: Vec<T>,
    /// The rows of `[T·B, ·]` the head read ([`HeadSteps::Last`]); `z_*` hold only those.
    head_rows: Option<Vec<usize>>,
    /// The forward stack's `(h_n, c_n)`, `[L, B, H]` each (`c_n` empty without a cell state).
    final_state: (Vec<T>, Vec<T>),
}

impl<T> ModelCache<T> {
    /// g_t of a gated fusion on the student path, `[T, B, H]` (empty otherwise).
    pub fn gate_values(&self) -> &[T] {
        self.fusion_student.as_ref().map_or(&[], |c| c.gate_values())
    }

    /// The forward stack's state after each sequence's own last step, `(h_n, c_n)`: the
    /// state a stream carries into its next chunk (`c_n` empty without a cell state).
    pub fn final_state(&self) -> (&[T], &[T]) {
        (&self.final_state.0, &self.final_state.1)
    }

    /// The student path's fuser RNN state after each sequence's own last step (see
    /// [`FusionCache::fuser_final_state`]; empty without a fuser RNN): what a stream
    /// carries into its next chunk as [`Continuation::fuser`].
    pub fn fuser_final_state(&self) -> (&[T], &[T]) {
        self.fusion_student.as_ref().map_or((&[], &[]), FusionCache::fuser_final_state)
    }
}

/// Where a training forward of a chunk of streams starts (truncated BPTT): the forward
/// stack's state carried from the chunk before (`InitialState::default()` at a stream's
/// start), and which streams ended before this chunk. Such a stream runs one padded step
/// (a sequence has at least one); it takes no part in the twin loss, and its task's mask
/// leaves its outputs out. The backward stack of a decoupled model (the teacher) reads
/// the chunk only, from its end, from its own initial state.
#[derive(Clone, Copy, Debug, Default)]
pub struct Continuation<'a, T> {
    pub state: InitialState<'a, T>,
    /// One flag per stream (`None`: none has ended).
    pub ended: Option<&'a [bool]>,
    /// A fuser RNN's state carried from the chunk before ([`ModelCache::fuser_final_state`];
    /// the default: its zero state), where both paths' fusers start; a constant of the
    /// chunk's backward. Ignored by the other fusions.
    pub fuser: InitialState<'a, T>,
}

/// The two branches' states over a batch (`[T, B, H]` each, the backward one in
/// forward time order) and their caches.
struct BranchStates<T> {
    h_forward: Vec<T>,
    /// The forward stack's `(h_n, c_n)`.
    final_state: (Vec<T>, Vec<T>),
    h_backward: Vec<T>,
    x_reversed: Vec<T>,
    forward_cache: RnnCache<T>,
    backward_cache: Option<RnnCache<T>>,
}

/// Reverses each row of `x: [T, B, W]` within its own length (zeros past it); an involution.
pub fn reverse_within_lengths<T: Real>(x: &[T], steps: usize, batch: usize, lengths: Option<&[usize]>) -> Vec<T> {
    let width = x.len() / (steps * batch).max(1);
    let mut out = vec![T::ZERO; x.len()];
    for b in 0..batch {
        let len = lengths.map_or(steps, |l| l[b]);
        for t in 0..len {
            let (src, dst) = (((len - 1 - t) * batch + b) * width, (t * batch + b) * width);
            out[dst..dst + width].copy_from_slice(&x[src..src + width]);
        }
    }
    out
}

fn add_into<T: Real>(a: &mut [T], b: &[T]) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Which paths a training forward runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Paths {
    /// Every path training needs (a decoupled model's teacher and twin loss too).
    All,
    /// The path inference runs.
    Inference,
}

/// Which steps the head reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HeadSteps {
    /// Every step: outputs `[T·B, O]`.
    #[default]
    All,
    /// Each sequence's own last step (`length − 1`): outputs `[B, O]`. For tasks that score
    /// only that step (prediction), so the head and its backward cost B rows, not T·B.
    Last,
    /// Every step from this one on: outputs `[(T − s)·B, O]`. For a stream scored only
    /// after a warm-up (the training part a validation stream runs through first).
    From(usize),
}

impl HeadSteps {
    /// The rows of `[T·B, ·]` the head reads (`None`: all of them, in order).
    fn rows(self, steps: usize, batch: usize, lengths: Option<&[usize]>) -> Option<Vec<usize>> {
        match self {
            HeadSteps::All => None,
            HeadSteps::Last => {
                Some((0..batch).map(|b| (lengths.map_or(steps, |l| l[b]).max(1) - 1) * batch + b).collect())
            }
            HeadSteps::From(first) => Some((first.min(steps) * batch..steps * batch).collect()),
        }
    }
}

/// Whether a fusion runs on the head's rows only: a pointwise one under a head that reads
/// some rows (a fuser RNN needs every step).
fn fuses_at_head_rows<T: Real>(fusion: Option<&Fusion<T>>, rows: Option<&[usize]>) -> bool {
    rows.is_some() && fusion.is_some_and(Fusion::is_pointwise)
}

/// z at the head's rows (all rows when `rows` is `None`) and the fusion's cache, for the
/// states `f, b: [T·B, H]`: fused on those rows only when `at_head_rows`, else on every
/// step (a fuser RNN from `fuser_state`) and then narrowed.
fn fuse_for_head<T: Real>(
    fusion: &Fusion<T>,
    (f, b): (&[T], &[T]),
    input: &SequenceBatch<'_, T>,
    rows: Option<&[usize]>,
    at_head_rows: bool,
    fuser_state: &InitialState<'_, T>,
) -> Result<(Vec<T>, FusionCache<T>)> {
    let (steps, batch) = (input.steps, input.batch);
    let h = f.len() / (steps * batch).max(1);
    if at_head_rows {
        let (f, b) = (select_rows(f.to_vec(), rows, h), select_rows(b.to_vec(), rows, h));
        fusion.forward(&f, &b, 1, f.len() / h.max(1), None, fuser_state)
    } else {
        let (z, fc) = fusion.forward(f, b, steps, batch, input.lengths, fuser_state)?;
        let width = z.len() / (steps * batch).max(1);
        Ok((select_rows(z, rows, width), fc))
    }
}

/// Rows `rows` of `x: [N, W]`, or all of it.
fn select_rows<T: Real>(x: Vec<T>, rows: Option<&[usize]>, width: usize) -> Vec<T> {
    match rows {
        None => x,
        Some(rows) => rows.iter().flat_map(|&r| x[r * width..(r + 1) * width].iter().copied()).collect(),
    }
}

/// The inverse of [`select_rows`] for gradients: `d` of the selected rows placed in `[N, W]`, zeros elsewhere.
fn expand_rows<T: Real>(d: Vec<T>, rows: Option<&[usize]>, width: usize, total_rows: usize) -> Vec<T> {
    match rows {
        None => d,
        Some(rows) => {
            let mut out = vec![T::ZERO; total_rows * width];
            for (chunk, &r) in d.chunks_exact(width).zip(rows) {
                out[r * width..(r + 1) * width].copy_from_slice(chunk);
            }
            out
        }
    }
}

impl<T: Real> SequenceModel<T> {
    /// A fresh model drawn from `seed`.
    ///
    /// # Errors
    /// An invalid encoder config or a zero output width.
    pub fn new(config: ModelConfig, seed: u64) -> Result<Self> {
        if config.outputs == 0 {
            return Err(Error::invalid("outputs", "a model predicts at least one value per step"));
        }
        if config.head == HeadKind::Quantile && config.precisions != 2 * config.outputs {
            return Err(Error::invalid(
                "precisions",
                format!(
                    "a quantile head has two distances for each of its {} outputs, not {}",
                    config.outputs, config.precisions
                ),
            ));
        }
        if config.head != HeadKind::Quantile
            && (config.precisions == 0 || !config.outputs.is_multiple_of(config.precisions))
        {
            return Err(Error::invalid(
                "precisions",
                format!("{} precisions do not split {} outputs into equal blocks", config.precisions, config.outputs),
            ));
        }
        let mut rng = Rng::new(seed);
        let branch = RnnConfig { bidirectional: false, ..config.encoder.clone() };
        let forward_branch = Rnn::new(branch.clone(), rng.next_u64())?;
        let bidirectional = config.encoder.bidirectional;
        let backward_branch = if bidirectional { Some(Rnn::new(branch, rng.next_u64())?) } else { None };
        let h = config.encoder.hidden_size;
        let twin = config.is_decoupled().then(|| Linear::new(h, h, &mut rng));
        let fusion = if bidirectional { Some(Fusion::new(config.fusion, h, rng.next_u64())?) } else { None };
        let width = fusion.as_ref().map_or(h, Fusion::output_size);
        let mut head = Head::new(config.head, width, config.outputs, config.precisions, &mut rng);
        head.detach_precision = config.detach_precision;
        let mut model =
            SequenceModel { config, forward_branch, backward_branch, twin, fusion, head, parallel_branches: false };
        model.set_threads(1);
        Ok(model)
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Threads for the encoder branches.
    /// With 2 or more threads and two branches, the branches run side by side, each on
    /// half of the threads.
    /// On one thread the branches run one after another, their kept rows sharing the
    /// core's caches ([`Rnn::set_cache_sharers`]).
    pub fn set_threads(&mut self, threads: usize) {
        let per_branch = if self.backward_branch.is_some() && threads >= 2 { threads / 2 } else { threads };
        self.parallel_branches = self.backward_branch.is_some() && threads >= 2;
        let sharers = if self.backward_branch.is_some() && !self.parallel_branches { 2 } else { 1 };
        self.forward_branch.set_threads(per_branch);
        self.forward_branch.set_cache_sharers(sharers);
        if let Some(b) = &mut self.backward_branch {
            b.set_threads(per_branch);
            b.set_cache_sharers(sharers);
        }
    }

    /// This model with no training noise — every dropout off and no twin loss — so that
    /// [`SequenceModel::forward_train`] computes what inference computes and backward
    /// differentiates exactly that (gradient diagnostics of a trained model).
    pub fn without_training_noise(&self) -> Self {
        let mut model = self.clone();
        model.config.encoder = self.config.encoder.without_dropout();
        model.config.twin_weight = 0.0;
        model.forward_branch = self.forward_branch.without_dropout();
        model.backward_branch = self.backward_branch.as_ref().map(Rnn::without_dropout);
        model
    }

    /// Whether inference reads only the past (unidirectional or decoupled).
    pub fn is_causal(&self) -> bool {
        self.backward_branch.is_none() || self.config.coupling == Coupling::Decoupled
    }

    /// Every parameter with its name (`forward.weight_ih_l0`, `backward.…`, `twin.weight`,
    /// `fusion.gate.weight`, `head.mean.weight`, …), mutably, in a fixed order.
    pub fn named_mut(&mut self) -> Vec<(String, &mut Tensor<T>)> {
        let mut out: Vec<(String, &mut Tensor<T>)> =
            self.forward_branch.named_mut().into_iter().map(|(n, t)| (format!("forward.{n}"), t)).collect();
        if let Some(b) = &mut self.backward_branch {
            out.extend(b.named_mut().into_iter().map(|(n, t)| (format!("backward.{n}"), t)));
        }
        if let Some(l) = &mut self.twin {
            out.push(("twin.weight".into(), &mut l.weight));
            out.push(("twin.bias".into(), &mut l.bias));
        }
        if let Some(f) = &mut self.fusion {
            out.extend(f.named_mut().into_iter().map(|(n, t)| (format!("fusion.{n}"), t)));
        }
        out.push(("head.mean.weight".into(), &mut self.head.mean.weight));
        out.push(("head.mean.bias".into(), &mut self.head.mean.bias));
        if let Some(p) = &mut self.head.precision {
            out.push(("head.precision.weight".into(), &mut p.weight));
            out.push(("head.precision.bias".into(), &mut p.bias));
        }
        out
    }

    /// A copy with every parameter zero: the gradient buffer of this model.
    pub fn zeros_like(&self) -> Self {
        let mut z = self.clone();
        for (_, t) in z.named_mut() {
            t.data.iter_mut().for_each(|v| *v = T::ZERO);
        }
        z
    }

    /// Number of scalar parameters.
    pub fn num_parameters(&self) -> usize {
        let linear = |l: &Linear<T>| l.weight.len() + l.bias.len();
        self.forward_branch.num_parameters()
            + self.backward_branch.as_ref().map_or(0, Rnn::num_parameters)
            + self.twin.as_ref().map_or(0, linear)
            + self
                .fusion
                .as_ref()
                .map_or(0, |f| f.gate.as_ref().map_or(0, linear) + f.fuser.as_ref().map_or(0, Rnn::num_parameters))
            + linear(&self.head.mean)
            + self.head.precision.as_ref().map_or(0, linear)
    }

    /// Runs the forward stack from `initial`, and the backward one (from its own initial
    /// state) when `with_backward` (training keeps caches).
    /// `recycled`: caches of an earlier step whose buffers training may reuse.
    fn branches(
        &self,
        input: &SequenceBatch<'_, T>,
        initial: &InitialState<'_, T>,
        seed: Option<u64>,
        with_backward: bool,
        recycled: (RnnCache<T>, RnnCache<T>),
    ) -> Result<BranchStates<T>> {
        type Ran<T> = (RnnOutput<T>, Option<RnnCache<T>>);
        let run = |branch: &Rnn<T>,
                   x: &SequenceBatch<'_, T>,
                   state: &InitialState<'_, T>,
                   seed: Option<u64>,
                   mut cache: RnnCache<T>|
         -> Result<Ran<T>> {
            Ok(match seed {
                Some(s) => {
                    let out = branch.forward_train_reusing(x, state, s, &mut cache)?;
                    (out, Some(cache))
                }
                None => (branch.forward(x, state)?, None),
            })
        };
        let (forward_recycled, backward_recycled) = recycled;
        let backward = self.backward_branch.as_ref().filter(|_| with_backward);
        let x_reversed = match backward {
            Some(_) => reverse_within_lengths(input.x, input.steps, input.batch, input.lengths),
            None => Vec::new(),
        };
        let reversed = SequenceBatch { x: &x_reversed, ..*input };
        let backward_seed = seed.map(|s| s ^ 0x9e37_79b9);
        // the backward branch's states back in forward time order, on rayon's pool
        let run_backward = |branch: &Rnn<T>| {
            run(branch, &reversed, &InitialState::default(), backward_seed, backward_recycled).map(|(out, cache)| {
                (reverse_within_lengths(&out.output, input.steps, input.batch, input.lengths), cache)
            })
        };
        let run_forward = || run(&self.forward_branch, input, initial, seed, forward_recycled);
        let (forward_result, backward_result) = match backward {
            Some(branch) if self.parallel_branches => {
                let (mine, other) = rayon::join(run_forward, || run_backward(branch));
                (mine, Some(other))
            }
            Some(branch) => (run_forward(), Some(run_backward(branch))),
            None => (run_forward(), None),
        };
        let (RnnOutput { output: h_forward, h_n, c_n }, forward_cache) = forward_result?;
        let forward_cache = forward_cache.unwrap_or_default();
        let (h_backward, backward_cache) = backward_result.transpose()?.unwrap_or_default();
        Ok(BranchStates { h_forward, final_state: (h_n, c_n), h_backward, x_reversed, forward_cache, backward_cache })
    }

    /// Inference: per-step outputs `[T·B, O]` (and λ̂ `[T·B, P]` for a Gaussian head). A
    /// decoupled model runs only its forward stack here.
    ///
    /// # Errors
    /// Inputs that do not fit the encoder.
    pub fn forward(&self, input: &SequenceBatch<'_, T>) -> Result<HeadOutput<T>> {
        self.forward_at(input, HeadSteps::All)
    }

    /// [`SequenceModel::forward`] with the head on the chosen steps only.
    ///
    /// # Errors
    /// Inputs that do not fit the encoder.
    pub fn forward_at(&self, input: &SequenceBatch<'_, T>, head_steps: HeadSteps) -> Result<HeadOutput<T>> {
        let BranchStates { h_forward, h_backward, .. } = self.branches(
            input,
            &InitialState::default(),
            None,
            self.twin.is_none(),
            (RnnCache::default(), RnnCache::default()),
        )?;
        let rows = head_steps.rows(input.steps, input.batch, input.lengths);
        let rows = rows.as_deref();
        let selective = fuses_at_head_rows(self.fusion.as_ref(), rows);
        let z = match (&self.fusion, &self.twin) {
            (None, _) => select_rows(h_forward, rows, self.config.encoder.hidden_size),
            (Some(fusion), None) => {
                fuse_for_head(fusion, (&h_forward, &h_backward), input, rows, selective, &InitialState::default())?.0
            }
            (Some(fusion), Some(twin)) => {
                let estimate = twin.forward(&h_forward)?;
                fuse_for_head(fusion, (&h_forward, &estimate), input, rows, selective, &InitialState::default())?.0
            }
        };
        self.head.forward(&z)
    }

    /// Training forward: every path's outputs, the twin loss, and the cache for backward.
    ///
    /// # Errors
    /// Inputs that do not fit the encoder.
    pub fn forward_train(&self, input: &SequenceBatch<'_, T>, seed: u64) -> Result<(ModelOutputs<T>, ModelCache<T>)> {
        self.forward_train_reusing(input, seed, None)
    }

    /// [`SequenceModel::forward_train`] reusing the encoder buffers of an earlier step's
    /// cache (a training loop allocates its large buffers once).
    ///
    /// # Errors
    /// Inputs that do not fit the encoder.
    pub fn forward_train_reusing(
        &self,
        input: &SequenceBatch<'_, T>,
        seed: u64,
        previous: Option<ModelCache<T>>,
    ) -> Result<(ModelOutputs<T>, ModelCache<T>)> {
        self.forward_train_at(input, seed, previous, HeadSteps::All)
    }

    /// [`SequenceModel::forward_train_reusing`] with the head on the chosen steps only
    /// (every path's outputs then have one row per chosen step).
    ///
    /// # Errors
    /// Inputs that do not fit the encoder.
    pub fn forward_train_at(
        &self,
        input: &SequenceBatch<'_, T>,
        seed: u64,
        previous: Option<ModelCache<T>>,
        head_steps: HeadSteps,
    ) -> Result<(ModelOutputs<T>, ModelCache<T>)> {
        self.forward_train_from(input, &Continuation::default(), seed, previous, head_steps, Paths::All)
    }

    /// A training forward of one chunk of streams (truncated BPTT), the head on every
    /// step: [`SequenceModel::forward_train_reusing`] with the forward stack starting from
    /// the state `from` carries. [`ModelCache::final_state`] is the state to carry on, and
    /// [`SequenceModel::backward_to_state`] gives ∂L/∂ of the state it started from.
    ///
    /// # Errors
    /// Inputs or a state that do not fit the encoder, or `ended` not one flag per stream.
    pub fn forward_train_continuing(
        &self,
        input: &SequenceBatch<'_, T>,
        from: &Continuation<'_, T>,
        seed: u64,
        previous: Option<ModelCache<T>>,
    ) -> Result<(ModelOutputs<T>, ModelCache<T>)> {
        if from.ended.is_some_and(|e| e.len() != input.batch) {
            return Err(Error::invalid(
                "ended streams",
                format!("{} flags for {} streams", from.ended.map_or(0, <[bool]>::len), input.batch),
            ));
        }
        self.forward_train_from(input, from, seed, previous, HeadSteps::All, Paths::All)
    }

    /// A training forward of the path inference runs, and of nothing else: for a decoupled
    /// model its student alone — the forward stack, the twin map, the fusion and the head —
    /// its teacher (the backward stack) not run and no twin loss; for any other model
    /// [`SequenceModel::forward_train_continuing`] with the head on `head_steps`. Backward
    /// then takes no teacher gradient. For the gradients of a deployed model's outputs
    /// (how far back it reads), at half the cost for a decoupled one.
    ///
    /// # Errors
    /// As [`SequenceModel::forward_train_continuing`].
    pub fn forward_train_inference_path(
        &self,
        input: &SequenceBatch<'_, T>,
        from: &Continuation<'_, T>,
        seed: u64,
        head_steps: HeadSteps,
    ) -> Result<(ModelOutputs<T>, ModelCache<T>)> {
        self.forward_train_from(input, from, seed, None, head_steps, Paths::Inference)
    }

    fn forward_train_from(
        &self,
        input: &SequenceBatch<'_, T>,
        from: &Continuation<'_, T>,
        seed: u64,
        previous: Option<ModelCache<T>>,
        head_steps: HeadSteps,
        paths: Paths,
    ) -> Result<(ModelOutputs<T>, ModelCache<T>)> {
        let (steps, batch) = (input.steps, input.batch);
        let recycled = previous.map_or_else(
            || (RnnCache::default(), RnnCache::default()),
            |p| (p.forward_cache, p.backward_cache.unwrap_or_default()),
        );
        // a decoupled model's inference path does not read its backward stack
        let student_only = paths == Paths::Inference && self.twin.is_some();
        let BranchStates { h_forward, final_state, h_backward, x_reversed, forward_cache, backward_cache } =
            self.branches(input, &from.state, Some(seed), !student_only, recycled)?;
        let mut cache = ModelCache {
            steps,
            batch,
            lengths: input.lengths.map(<[usize]>::to_vec),
            x: input.x.to_vec(),
            x_reversed,
            forward_cache,
            backward_cache,
            h_forward,
            h_backward,
            z_student: Vec::new(),
            z_teacher: Vec::new(),
            fusion_student: None,
            fusion_teacher: None,
            d_estimate_twin: Vec::new(),
            head_rows: head_steps.rows(steps, batch, input.lengths),
            final_state,
        };
        let rows = cache.head_rows.clone();
        let selective = fuses_at_head_rows(self.fusion.as_ref(), rows.as_deref());
        let h = self.config.encoder.hidden_size;
        let fuse = |fusion: &Fusion<T>, f: &[T], b: &[T]| {
            fuse_for_head(fusion, (f, b), input, rows.as_deref(), selective, &from.fuser)
        };
        let mut teacher = None;
        let mut twin_value = 0.0;
        match (&self.fusion, &self.twin) {
            (None, _) => cache.z_student = select_rows(cache.h_forward.clone(), rows.as_deref(), h),
            (Some(fusion), None) => {
                let (z, fc) = fuse(fusion, &cache.h_forward, &cache.h_backward)?;
                (cache.z_student, cache.fusion_student) = (z, Some(fc));
            }
            (Some(fusion), Some(twin)) if student_only => {
                let estimate = twin.forward(&cache.h_forward)?;
                let (z, fc) = fuse(fusion, &cache.h_forward, &estimate)?;
                (cache.z_student, cache.fusion_student) = (z, Some(fc));
            }
            (Some(fusion), Some(twin)) => {
                let estimate = twin.forward(&cache.h_forward)?;
                let live = |n: usize| {
                    let b = n % batch;
                    input.lengths.is_none_or(|l| n / batch < l[b]) && from.ended.is_none_or(|e| !e[b])
                };
                let active: Vec<T> = (0..steps * batch).map(|n| if live(n) { T::ONE } else { T::ZERO }).collect();
                let (value, d_estimate) = twin_loss(&estimate, &cache.h_backward, &active, self.config.twin_weight);
                (twin_value, cache.d_estimate_twin) = (value, d_estimate);
                let (z, fc) = fuse(fusion, &cache.h_forward, &estimate)?;
                (cache.z_student, cache.fusion_student) = (z, Some(fc));
                let (z, fc) = fuse(fusion, &cache.h_forward, &cache.h_backward)?;
                (cache.z_teacher, cache.fusion_teacher) = (z, Some(fc));
                teacher = Some(self.head.forward(&cache.z_teacher)?);
            }
        }
        let student = self.head.forward(&cache.z_student)?;
        Ok((ModelOutputs { student, teacher, twin_loss: twin_value }, cache))
    }

    /// Exact backward of the loss `L(student) + L(teacher) + twin`: `d_student` (and
    /// `d_teacher` when decoupled) are (∂L/∂x̂, ∂L/∂λ̂) per step (∂L/∂λ̂ empty for a
    /// linear head). Accumulates into `grads` (from [`SequenceModel::zeros_like`]) and
    /// returns ∂L/∂x `[T, B, D]`.
    ///
    /// # Errors
    /// Gradients whose shapes disagree with the forward.
    pub fn backward(
        &self,
        cache: &mut ModelCache<T>,
        d_student: (&[T], &[T]),
        d_teacher: Option<(&[T], &[T])>,
        grads: &mut SequenceModel<T>,
    ) -> Result<Vec<T>> {
        self.backward_with(cache, d_student, d_teacher, grads, InputGradient::Compute)
    }

    /// [`SequenceModel::backward`], computing ∂L/∂x only when asked (training on data
    /// needs the parameters' gradients only); the returned `d_x` is empty otherwise.
    ///
    /// # Errors
    /// As [`SequenceModel::backward`].
    pub fn backward_with(
        &self,
        cache: &mut ModelCache<T>,
        d_student: (&[T], &[T]),
        d_teacher: Option<(&[T], &[T])>,
        grads: &mut SequenceModel<T>,
        input_gradient: InputGradient,
    ) -> Result<Vec<T>> {
        Ok(self.backward_to_state(cache, d_student, d_teacher, grads, input_gradient)?.d_x)
    }

    /// [`SequenceModel::backward_with`], also returning ∂L/∂h0 and ∂L/∂c0 of the state the
    /// forward stack started from (`[L, B, H]`; what truncated BPTT hands to the chunk
    /// before).
    ///
    /// # Errors
    /// As [`SequenceModel::backward`].
    pub fn backward_to_state(
        &self,
        cache: &mut ModelCache<T>,
        d_student: (&[T], &[T]),
        d_teacher: Option<(&[T], &[T])>,
        grads: &mut SequenceModel<T>,
        input_gradient: InputGradient,
    ) -> Result<InputGrads<T>> {
        let (steps, batch) = (cache.steps, cache.batch);
        let lengths = cache.lengths.clone();
        let rows = steps * batch;
        let head_rows = cache.head_rows.as_deref();
        let (z_width, h) = (self.head.mean.weight.shape[1], self.config.encoder.hidden_size);
        let selective = fuses_at_head_rows(self.fusion.as_ref(), head_rows);
        // ∂z at the head's rows → (∂f, ∂b) over all `[T·B, H]` rows, through a fusion that ran
        // on those rows only, or on all of them
        let unfuse = |fusion: &Fusion<T>, fc: &mut FusionCache<T>, dz: Vec<T>, g: &mut Fusion<T>| {
            let (df, db) = if selective {
                fusion.backward(fc, &dz, g)?
            } else {
                fusion.backward(fc, &expand_rows(dz, head_rows, z_width, rows), g)?
            };
            let expand = |d: Vec<T>| if selective { expand_rows(d, head_rows, h, rows) } else { d };
            Ok::<_, Error>((expand(df), expand(db)))
        };
        let dz_student = self.head.backward(&cache.z_student, d_student.0, d_student.1, &mut grads.head)?;
        let (dh_forward, dh_backward) = match (&self.fusion, &self.twin) {
            (None, _) => (expand_rows(dz_student, head_rows, z_width, rows), None),
            (Some(fusion), None) => {
                let fc = cache.fusion_student.as_mut().expect("coupled fusion cache");
                let (df, db) = unfuse(fusion, fc, dz_student, grads.fusion.as_mut().expect("fusion grads"))?;
                (df, Some(db))
            }
            (Some(fusion), Some(twin)) => {
                let fusion_grads = grads.fusion.as_mut().expect("fusion grads");
                let fc = cache.fusion_student.as_mut().expect("student fusion cache");
                let (mut df, mut d_estimate) = unfuse(fusion, fc, dz_student, fusion_grads)?;
                add_into(&mut d_estimate, &cache.d_estimate_twin);
                let via_twin =
                    twin.backward(&cache.h_forward, &d_estimate, grads.twin.as_mut().expect("twin grads"))?;
                add_into(&mut df, &via_twin);
                let db = match (cache.fusion_teacher.as_mut(), d_teacher) {
                    (Some(ft), Some(d_teacher)) => {
                        let dz_teacher =
                            self.head.backward(&cache.z_teacher, d_teacher.0, d_teacher.1, &mut grads.head)?;
                        // the student's states are constants on the teacher path: drop ∂/∂h→
                        Some(unfuse(fusion, ft, dz_teacher, fusion_grads)?.1)
                    }
                    // the inference path alone ran: no teacher, nothing through the backward stack
                    (None, None) => None,
                    (Some(_), None) => {
                        return Err(Error::invalid("backward", "a decoupled model needs the teacher path's gradient"))
                    }
                    (None, Some(_)) => {
                        return Err(Error::invalid("backward", "the forward ran the student path only: no teacher"))
                    }
                };
                (df, db)
            }
        };
        let input = SequenceBatch { x: &cache.x, steps, batch, lengths: lengths.as_deref() };
        let reversed = SequenceBatch { x: &cache.x_reversed, steps, batch, lengths: lengths.as_deref() };
        let SequenceModel { forward_branch: forward_grads, backward_branch: backward_grads, .. } = grads;
        let (forward_cache, backward_cache) = (&mut cache.forward_cache, &mut cache.backward_cache);
        let mut run_forward = || {
            let grads = forward_grads.cells_mut();
            self.forward_branch.backward_with(&input, forward_cache, &dh_forward, None, None, grads, input_gradient)
        };
        let mut run_backward = || -> Result<Option<Vec<T>>> {
            match (&self.backward_branch, &dh_backward) {
                (Some(branch), Some(db)) => {
                    let db_reversed = reverse_within_lengths(db, steps, batch, lengths.as_deref());
                    let branch_grads = backward_grads.as_mut().expect("backward branch grads").cells_mut();
                    let bwd_cache = backward_cache.as_mut().expect("backward branch cache");
                    let d = branch.backward_with(
                        &reversed,
                        bwd_cache,
                        &db_reversed,
                        None,
                        None,
                        branch_grads,
                        input_gradient,
                    )?;
                    Ok(Some(reverse_within_lengths(&d.d_x, steps, batch, lengths.as_deref())))
                }
                _ => Ok(None),
            }
        };
        let (d, d_reversed) = if self.parallel_branches {
            rayon::join(run_forward, run_backward)
        } else {
            (run_forward(), run_backward())
        };
        let mut d = d?;
        if let Some(extra) = d_reversed? {
            add_into(&mut d.d_x, &extra);
        }
        Ok(d)
    }
}
