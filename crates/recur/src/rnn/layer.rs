//! A stacked, optionally bidirectional recurrent encoder over the fused kernels.
//!
//! Layer k reads `[T,B,D_k]` (`D_0 = D`, `D_k = dirs·H` above) and writes
//! `[T,B,dirs·H]`, the directions side by side as in PyTorch (`[h→_t; h←_t]`).
//! Between layers, dropout with a fresh mask per element and step (PyTorch's `dropout`);
//! inside each layer, variational dropout with one mask per sequence on the layer's
//! input (d_x) and on the recurrent state (d_h), the same at every step and in backward.
//! With several threads, the two directions of a bidirectional layer, and parts of the
//! batch (rows are independent through time), run as separate jobs on rayon's pool.

use std::borrow::Cow;
use std::ops::Range;

use recur_kernels::gru_reset_before::{self, GruResetBeforeCache};
use recur_kernels::jordan::{JordanCache, JordanGrads, JordanWeights};
use recur_kernels::sequence::{self, GatedCache};
use recur_kernels::{
    Activation, Dims, Elman, GruResetAfter, Jordan, Lstm, OutputActivation, Real, SequenceGradIn, SequenceGradOut,
    SequenceOptions, SequenceOutput, Threads,
};

use super::config::{CellKind, RnnConfig};
use super::params::CellParams;
use crate::error::{check_finite, check_len, Error, Result};
use crate::rng::Rng;

/// A batch of sequences: `x: [T,B,D]` time-major, optional `lengths: [B]` in `1..=T`.
#[derive(Clone, Copy, Debug)]
pub struct SequenceBatch<'a, T> {
    pub x: &'a [T],
    pub steps: usize,
    pub batch: usize,
    pub lengths: Option<&'a [usize]>,
}

/// Initial states `[L·dirs, B, H]`; `None` means the learned initial state if the
/// config asks for one, zero otherwise.
#[derive(Clone, Copy, Debug, Default)]
pub struct InitialState<'a, T> {
    pub h0: Option<&'a [T]>,
    pub c0: Option<&'a [T]>,
}

impl<T> InitialState<'_, T> {
    /// A state `(h, c)` a stream carried from its chunk before (`c` empty without a cell
    /// state), or, `None`, the layer's own initial state.
    pub fn carried(state: &Option<(Vec<T>, Vec<T>)>) -> InitialState<'_, T> {
        match state {
            Some((h, c)) => InitialState { h0: Some(h), c0: (!c.is_empty()).then_some(&c[..]) },
            None => InitialState { h0: None, c0: None },
        }
    }
}

/// `output: [T,B,dirs·H]` (zero past each length), `h_n, c_n: [L·dirs,B,H]` taken at
/// each row's own last step (`c_n` empty without a cell state).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RnnOutput<T> {
    pub output: Vec<T>,
    pub h_n: Vec<T>,
    pub c_n: Vec<T>,
}

/// Whether a backward computes ∂L/∂x of the input sequence: training on data needs
/// only the parameters' gradients (PyTorch skips ∂x when the input does not require
/// grad); a layer under another layer, or a gradient check, needs ∂x.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InputGradient {
    #[default]
    Compute,
    Skip,
}

/// Gradients with respect to the inputs of a forward: `d_x: [T,B,D]` (empty when
/// skipped, see [`InputGradient`]), `d_h0, d_c0: [L·dirs,B,H]`.
#[derive(Clone, Debug, Default)]
pub struct InputGrads<T> {
    pub d_x: Vec<T>,
    pub d_h0: Vec<T>,
    pub d_c0: Vec<T>,
}

enum DirectionCache<T> {
    Gated(GatedCache<T>),
    ResetBefore(GruResetBeforeCache<T>),
    Jordan(JordanCache<T>),
}

impl<T: Real> DirectionCache<T> {
    fn gated(slot: &mut Option<Self>) -> &mut GatedCache<T> {
        if !matches!(slot, Some(DirectionCache::Gated(_))) {
            *slot = Some(DirectionCache::Gated(GatedCache::default()));
        }
        match slot {
            Some(DirectionCache::Gated(c)) => c,
            _ => unreachable!(),
        }
    }

    fn reset_before(slot: &mut Option<Self>) -> &mut GruResetBeforeCache<T> {
        if !matches!(slot, Some(DirectionCache::ResetBefore(_))) {
            *slot = Some(DirectionCache::ResetBefore(GruResetBeforeCache::default()));
        }
        match slot {
            Some(DirectionCache::ResetBefore(c)) => c,
            _ => unreachable!(),
        }
    }

    fn jordan(slot: &mut Option<Self>) -> &mut JordanCache<T> {
        if !matches!(slot, Some(DirectionCache::Jordan(_))) {
            *slot = Some(DirectionCache::Jordan(JordanCache::default()));
        }
        match slot {
            Some(DirectionCache::Jordan(c)) => c,
            _ => unreachable!(),
        }
    }
}

/// One job of a layer: one direction over one part of the batch's rows.
struct DirectionRun<T> {
    cache: Option<DirectionCache<T>>,
    /// The job's rows of the layer input `[T, rows, D_k]`.
    input: Vec<T>,
    input_mask: Vec<T>,
    state_mask: Vec<T>,
}

impl<T> Default for DirectionRun<T> {
    fn default() -> Self {
        DirectionRun { cache: None, input: Vec::new(), input_mask: Vec::new(), state_mask: Vec::new() }
    }
}

struct LayerCache<T> {
    /// Jobs in order direction-major: `d·parts + p`.
    directions: Vec<DirectionRun<T>>,
    /// Dropout mask applied to this layer's output before the next layer (empty: none).
    output_mask: Vec<T>,
}

impl<T> Default for LayerCache<T> {
    fn default() -> Self {
        LayerCache { directions: Vec::new(), output_mask: Vec::new() }
    }
}

/// What [`Rnn::backward`] needs from [`Rnn::forward_train`]. Handing the same cache
/// to the next [`Rnn::forward_train_reusing`] reuses its buffers.
pub struct RnnCache<T> {
    steps: usize,
    batch: usize,
    layers: Vec<LayerCache<T>>,
    /// Whether the forward was given h0 and c0 (a learned initial state given way to
    /// them gets no gradient).
    given: (bool, bool),
}

impl<T> Default for RnnCache<T> {
    fn default() -> Self {
        RnnCache { steps: 0, batch: 0, layers: Vec::new(), given: (false, false) }
    }
}

/// The encoder: config plus parameters, one [`CellParams`] per layer and direction
/// (index `k·dirs + dir`, PyTorch's order).
#[derive(Clone, Debug, PartialEq)]
pub struct Rnn<T = f32> {
    config: RnnConfig,
    cells: Vec<CellParams<T>>,
    threads: usize,
    /// Layers (this one included) whose jobs run one after another on the same cores
    /// between a training forward and its backward, their kept rows sharing the caches
    /// (see [`Rnn::set_cache_sharers`]).
    cache_sharers: usize,
}

fn mask_values<T: Real>(rng: &mut Rng, len: usize, p: f64) -> Vec<T> {
    if p <= 0.0 {
        return Vec::new();
    }
    let keep = 1.0 - p;
    let scale = T::from_f64(1.0 / keep);
    (0..len).map(|_| if rng.uniform() < keep { scale } else { T::ZERO }).collect()
}

impl<T: Real> Rnn<T> {
    /// A fresh encoder with PyTorch's initialisation drawn from `seed`.
    ///
    /// # Errors
    /// An invalid config.
    pub fn new(config: RnnConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = Rng::new(seed);
        let dirs = config.directions();
        let cells = (0..config.num_layers * dirs)
            .map(|i| {
                let input = if i / dirs == 0 { config.input_size } else { config.output_size() };
                CellParams::init(&config, input, &mut rng)
            })
            .collect();
        Ok(Rnn { config, cells, threads: 1, cache_sharers: 1 })
    }

    pub fn config(&self) -> &RnnConfig {
        &self.config
    }

    pub fn cells(&self) -> &[CellParams<T>] {
        &self.cells
    }

    pub fn cells_mut(&mut self) -> &mut [CellParams<T>] {
        &mut self.cells
    }

    /// This encoder with every dropout off (between layers, on inputs, on the state): its
    /// training forward then computes the inference values, and backward their exact
    /// gradient.
    pub fn without_dropout(&self) -> Self {
        Rnn { config: self.config.without_dropout(), ..self.clone() }
    }

    /// Zeroed gradient buffers shaped like the parameters.
    pub fn zero_grads(&self) -> Vec<CellParams<T>> {
        self.cells.iter().map(CellParams::zeros_like).collect()
    }

    /// Threads the encoder may use (directions in parallel, large products split).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// How many layers, this one included, run their training forwards one after another
    /// on the same cores before their backwards (the two branches of a bidirectional model
    /// on one thread: 2). Their kept rows share the cores' caches, so it counts towards the
    /// layer-norm row layout as the jobs of one layer do (`SequenceOptions::jobs_per_core`).
    /// Speed only: results are the same bits either way.
    pub fn set_cache_sharers(&mut self, layers: usize) {
        self.cache_sharers = layers.max(1);
    }

    pub fn cache_sharers(&self) -> usize {
        self.cache_sharers
    }

    /// The PyTorch name of a parameter: `weight_ih_l1_reverse`.
    pub fn param_name(&self, index: usize, field: &str) -> String {
        let dirs = self.config.directions();
        let suffix = if index % dirs == 1 { "_reverse" } else { "" };
        format!("{field}_l{}{suffix}", index / dirs)
    }

    /// Number of scalar parameters.
    pub fn num_parameters(&self) -> usize {
        let mut n = 0;
        for c in &self.cells {
            c.for_each(|_, t| n += t.len());
        }
        n
    }

    pub(crate) fn validate_input(&self, input: &SequenceBatch<'_, T>, state: &InitialState<'_, T>) -> Result<()> {
        let (t, b, d) = (input.steps, input.batch, self.config.input_size);
        if t == 0 || b == 0 {
            return Err(Error::invalid(
                "input",
                format!("a batch needs at least one step and one row, got T={t}, B={b}"),
            ));
        }
        check_len("input", input.x, &[t, b, d])?;
        check_finite("input", input.x)?;
        if let Some(lengths) = input.lengths {
            check_len("lengths", lengths, &[b])?;
            if let Some((row, &len)) = lengths.iter().enumerate().find(|(_, &l)| l == 0 || l > t) {
                return Err(Error::invalid("lengths", format!("row {row} has length {len}, must lie in 1..={t}")));
            }
        }
        let state_shape = [self.config.num_layers * self.config.directions(), b, self.config.hidden_size];
        if let Some(h0) = state.h0 {
            check_len("h0", h0, &state_shape)?;
            check_finite("h0", h0)?;
        }
        if let Some(c0) = state.c0 {
            if !self.config.cell.has_cell_state() {
                return Err(Error::invalid("c0", format!("{:?} has no cell state", self.config.cell)));
            }
            check_len("c0", c0, &state_shape)?;
            check_finite("c0", c0)?;
        }
        Ok(())
    }

    /// `[B,H]` initial state of layer-direction `index`: given, learned, or zero.
    pub(crate) fn initial_state_of(&self, given: Option<&[T]>, index: usize, batch: usize, cell_state: bool) -> Vec<T> {
        let h = self.config.hidden_size;
        if let Some(all) = given {
            return all[index * batch * h..(index + 1) * batch * h].to_vec();
        }
        let learned = if cell_state { &self.cells[index].initial_c } else { &self.cells[index].initial_h };
        if learned.is_empty() {
            vec![T::ZERO; batch * h]
        } else {
            learned.data.repeat(batch)
        }
    }

    /// Inference: no dropout, nothing kept for backward.
    ///
    /// # Errors
    /// Shapes that disagree with the config, lengths outside `1..=T`, non-finite values.
    pub fn forward(&self, input: &SequenceBatch<'_, T>, state: &InitialState<'_, T>) -> Result<RnnOutput<T>> {
        self.run(input, state, None, None)
    }

    /// Training forward: dropout masks drawn from `seed` (the same seed gives the same
    /// masks), and the cache [`Rnn::backward`] needs.
    ///
    /// # Errors
    /// As [`Rnn::forward`].
    pub fn forward_train(
        &self,
        input: &SequenceBatch<'_, T>,
        state: &InitialState<'_, T>,
        seed: u64,
    ) -> Result<(RnnOutput<T>, RnnCache<T>)> {
        let mut cache = RnnCache::default();
        let out = self.forward_train_reusing(input, state, seed, &mut cache)?;
        Ok((out, cache))
    }

    /// [`Rnn::forward_train`] writing into an existing cache (from an earlier step), so a
    /// training loop allocates its large buffers once.
    ///
    /// # Errors
    /// As [`Rnn::forward`].
    pub fn forward_train_reusing(
        &self,
        input: &SequenceBatch<'_, T>,
        state: &InitialState<'_, T>,
        seed: u64,
        cache: &mut RnnCache<T>,
    ) -> Result<RnnOutput<T>> {
        self.run(input, state, Some(seed), Some(cache))
    }

    fn run(
        &self,
        input: &SequenceBatch<'_, T>,
        state: &InitialState<'_, T>,
        seed: Option<u64>,
        mut cache: Option<&mut RnnCache<T>>,
    ) -> Result<RnnOutput<T>> {
        self.validate_input(input, state)?;
        let cfg = &self.config;
        let (steps, batch, h, dirs) = (input.steps, input.batch, cfg.hidden_size, cfg.directions());
        let mut rng = Rng::new(seed.unwrap_or(0));
        let plane = batch * h;
        let mut h_n = vec![T::ZERO; cfg.num_layers * dirs * plane];
        let mut c_n = if cfg.cell.has_cell_state() { vec![T::ZERO; h_n.len()] } else { Vec::new() };
        let mut layer_input: Cow<'_, [T]> = Cow::Borrowed(input.x);
        let parts = self.batch_parts(batch);
        let product_threads = (self.threads / (dirs * parts.len())).max(1);
        if let Some(c) = cache.as_deref_mut() {
            c.steps = steps;
            c.batch = batch;
            c.given = (state.h0.is_some(), state.c0.is_some());
            c.layers.resize_with(cfg.num_layers, LayerCache::default);
        }

        for k in 0..cfg.num_layers {
            let width = if k == 0 { cfg.input_size } else { cfg.output_size() };
            // Masks are drawn for the whole batch in a fixed order, so they do not depend
            // on how the batch is split across threads.
            let masks: Vec<(Vec<T>, Vec<T>)> = (0..dirs)
                .map(|_| match seed {
                    Some(_) => (
                        mask_values(&mut rng, batch * width, cfg.input_dropout),
                        mask_values(&mut rng, batch * h, cfg.state_dropout),
                    ),
                    None => (Vec::new(), Vec::new()),
                })
                .collect();
            let mut runs: Vec<DirectionRun<T>> = match cache.as_deref_mut() {
                Some(c) => std::mem::take(&mut c.layers[k].directions),
                None => Vec::new(),
            };
            runs.resize_with(dirs * parts.len(), DirectionRun::default);
            let keep = cache.is_some();
            let whole = runs.len() == 1;
            let mut output = if whole { Vec::new() } else { vec![T::ZERO; steps * batch * dirs * h] };
            // Each job writes its outputs into the layer's itself: its rows of it, its
            // direction's columns, in (t, b) order; the fused cells as they compute them,
            // the others from their own output (jobs on threads of their own then copy side
            // by side, not one after another after them: S2 LSTM inference on 2 threads, 8
            // alternating runs of `profile_step` each, median 1.52 → 1.42 s unidirectional,
            // 2.69 → 2.54 s bidirectional). One job over the whole batch in one direction
            // returns its own output, which is the layer's.
            let mut destinations: Vec<Vec<&mut [T]>> = runs.iter().map(|_| Vec::new()).collect();
            if !whole {
                for (i, row) in output.chunks_exact_mut(h).enumerate() {
                    let (b, d) = ((i / dirs) % batch, i % dirs);
                    let part = parts.iter().position(|r| r.contains(&b)).expect("the parts cover the batch");
                    destinations[d * parts.len() + part].push(row);
                }
            }
            let mut jobs: Vec<ForwardJob<'_, T>> = runs
                .iter_mut()
                .zip(destinations)
                .enumerate()
                .map(|(j, (run, rows_out))| (j / parts.len(), parts[j % parts.len()].clone(), run, rows_out))
                .collect();
            // the jobs a thread runs one after another keep their rows in its core's caches,
            // beside those of the layers that share the core
            let jobs_per_core = jobs.len().div_ceil(self.threads.max(1)) * self.cache_sharers;
            let run_job = |(d, rows, run, rows_out): &mut ForwardJob<'_, T>| {
                let (d, i) = (*d, k * dirs + *d);
                let rows = rows.clone();
                let b = rows.len();
                let (input_mask, state_mask) = &masks[d];
                run.input_mask = gather_rows(input_mask, 1, batch, width, rows.clone());
                run.state_mask = gather_rows(state_mask, 1, batch, h, rows.clone());
                // the whole batch is the layer input itself: no copy unless backward keeps it
                let x: Cow<'_, [T]> = if b == batch {
                    Cow::Borrowed(&layer_input)
                } else {
                    Cow::Owned(gather_rows(&layer_input, steps, batch, width, rows.clone()))
                };
                let h0 = gather_rows(&self.initial_state_of(state.h0, i, batch, false), 1, batch, h, rows.clone());
                let c0 = if cfg.cell.has_cell_state() {
                    gather_rows(&self.initial_state_of(state.c0, i, batch, true), 1, batch, h, rows.clone())
                } else {
                    Vec::new()
                };
                let lengths = input.lengths.map(|l| l[rows.clone()].to_vec());
                let options = SequenceOptions {
                    reverse: d == 1,
                    lengths: lengths.as_deref(),
                    input_mask: (!run.input_mask.is_empty()).then_some(&run.input_mask[..]),
                    state_mask: (!run.state_mask.is_empty()).then_some(&run.state_mask[..]),
                    threads: Threads(product_threads),
                    jobs_per_core,
                };
                let dims = Dims { steps, batch: b, input: width, hidden: h };
                let slot = keep.then_some(&mut run.cache);
                let out = direction_forward(cfg.cell, &self.cells[i], dims, &x, &h0, &c0, &options, slot, rows_out);
                if keep {
                    run.input = x.into_owned();
                }
                out
            };
            let results = run_jobs(&mut jobs, self.threads, run_job);
            let jobs: Vec<(usize, Range<usize>)> = jobs.into_iter().map(|(d, rows, _, _)| (d, rows)).collect();
            for ((d, rows), out) in jobs.iter().zip(results) {
                let i = k * dirs + d;
                if whole {
                    output = out.output;
                }
                scatter_rows(&out.h_n, &mut h_n[i * plane..(i + 1) * plane], 1, batch, rows.clone(), 0, h, false);
                if cfg.cell.has_cell_state() {
                    scatter_rows(&out.c_n, &mut c_n[i * plane..(i + 1) * plane], 1, batch, rows.clone(), 0, h, false);
                }
            }
            let output_mask = if seed.is_some() && k + 1 < cfg.num_layers {
                mask_values(&mut rng, output.len(), cfg.dropout)
            } else {
                Vec::new()
            };
            layer_input = Cow::Owned(if output_mask.is_empty() {
                output
            } else {
                output.iter().zip(&output_mask).map(|(&v, &m)| v * m).collect()
            });
            if let Some(c) = cache.as_deref_mut() {
                c.layers[k] = LayerCache { directions: runs, output_mask };
            }
        }
        Ok(RnnOutput { output: layer_input.into_owned(), h_n, c_n })
    }

    /// Row ranges a batch is split into: rows are independent through time, so each
    /// part of each direction runs as its own job on its own thread.
    fn batch_parts(&self, batch: usize) -> Vec<Range<usize>> {
        const MIN_ROWS_PER_PART: usize = 8;
        let jobs_per_direction = (self.threads / self.config.directions()).max(1);
        let parts = jobs_per_direction.min(batch / MIN_ROWS_PER_PART).max(1);
        (0..parts).map(|p| p * batch / parts..(p + 1) * batch / parts).collect()
    }

    /// Exact BPTT through the whole stack. `d_output: [T,B,dirs·H]`, `d_h_n, d_c_n:
    /// [L·dirs,B,H]` (or `None` for zero). Parameter gradients accumulate into `grads`
    /// (from [`Rnn::zero_grads`]); input gradients are returned. The cache's scratch
    /// buffers are reused; it stays valid for another backward.
    ///
    /// # Errors
    /// Gradient shapes that disagree with the forward, or non-finite gradients.
    pub fn backward(
        &self,
        input: &SequenceBatch<'_, T>,
        cache: &mut RnnCache<T>,
        d_output: &[T],
        d_h_n: Option<&[T]>,
        d_c_n: Option<&[T]>,
        grads: &mut [CellParams<T>],
    ) -> Result<InputGrads<T>> {
        self.backward_with(input, cache, d_output, d_h_n, d_c_n, grads, InputGradient::Compute)
    }

    /// [`Rnn::backward`], computing ∂L/∂x only when `input_gradient` asks for it (the
    /// layers above the first always pass theirs down).
    ///
    /// # Errors
    /// As [`Rnn::backward`].
    #[allow(clippy::too_many_arguments)]
    pub fn backward_with(
        &self,
        input: &SequenceBatch<'_, T>,
        cache: &mut RnnCache<T>,
        d_output: &[T],
        d_h_n: Option<&[T]>,
        d_c_n: Option<&[T]>,
        grads: &mut [CellParams<T>],
        input_gradient: InputGradient,
    ) -> Result<InputGrads<T>> {
        let cfg = &self.config;
        let (steps, batch, h, dirs) = (cache.steps, cache.batch, cfg.hidden_size, cfg.directions());
        if steps != input.steps || batch != input.batch {
            return Err(Error::Shape {
                tensor: "input".into(),
                expected: vec![cache.steps, cache.batch],
                got: vec![input.steps, input.batch],
            });
        }
        if cache.layers.len() != cfg.num_layers {
            return Err(Error::invalid("cache", "it does not come from a training forward of this model"));
        }
        let plane = batch * h;
        let state_shape = [cfg.num_layers * dirs, batch, h];
        check_len("d_output", d_output, &[steps, batch, dirs * h])?;
        check_finite("d_output", d_output)?;
        let zeros = vec![T::ZERO; cfg.num_layers * dirs * plane];
        let d_h_n = d_h_n.unwrap_or(&zeros);
        check_len("d_h_n", d_h_n, &state_shape)?;
        let d_c_n = if cfg.cell.has_cell_state() { d_c_n.unwrap_or(&zeros) } else { &[] };
        if cfg.cell.has_cell_state() {
            check_len("d_c_n", d_c_n, &state_shape)?;
        }
        if grads.len() != self.cells.len() {
            return Err(Error::invalid(
                "grads",
                format!("{} gradient sets for {} layer-directions", grads.len(), self.cells.len()),
            ));
        }
        let mut d_h0 = vec![T::ZERO; cfg.num_layers * dirs * plane];
        let mut d_c0 = vec![T::ZERO; if cfg.cell.has_cell_state() { d_h0.len() } else { 0 }];
        let mut d_above: Cow<'_, [T]> = Cow::Borrowed(d_output);
        let parts = self.batch_parts(batch);
        let product_threads = (self.threads / (dirs * parts.len())).max(1);
        if cache.layers.iter().any(|l| l.directions.len() != dirs * parts.len()) {
            return Err(Error::invalid("cache", "it was made with another thread count; run forward again"));
        }

        for k in (0..cfg.num_layers).rev() {
            let width = if k == 0 { cfg.input_size } else { cfg.output_size() };
            let d_in_len = if k == 0 && input_gradient == InputGradient::Skip { 0 } else { steps * batch * width };
            let layer = &mut cache.layers[k];
            let mut jobs: Vec<(usize, Range<usize>, &mut DirectionRun<T>)> = layer
                .directions
                .iter_mut()
                .enumerate()
                .map(|(j, run)| (j / parts.len(), parts[j % parts.len()].clone(), run))
                .collect();
            let d_above_ref = &d_above;
            let run_job = |(d, rows, run): &mut (usize, Range<usize>, &mut DirectionRun<T>)| {
                let (d, i) = (*d, k * dirs + *d);
                let rows = rows.clone();
                let b = rows.len();
                let own =
                    |all: &[T]| if all.is_empty() { Vec::new() } else { gather_rows(all, 1, batch, h, rows.clone()) };
                // one direction over the whole batch reads the gradient from above as it is
                let d_out: Cow<'_, [T]> = if dirs == 1 && b == batch {
                    Cow::Borrowed(d_above_ref)
                } else {
                    Cow::Owned(gather_columns_rows(d_above_ref, steps, batch, d * h, h, dirs * h, rows.clone()))
                };
                let (dhn, dcn) = (
                    own(&d_h_n[i * plane..(i + 1) * plane]),
                    own(if d_c_n.is_empty() { &[] } else { &d_c_n[i * plane..(i + 1) * plane] }),
                );
                let lengths = input.lengths.map(|l| l[rows.clone()].to_vec());
                // (the row layout is the forward's, kept in the cache)
                let options = SequenceOptions {
                    reverse: d == 1,
                    lengths: lengths.as_deref(),
                    input_mask: (!run.input_mask.is_empty()).then_some(&run.input_mask[..]),
                    state_mask: (!run.state_mask.is_empty()).then_some(&run.state_mask[..]),
                    threads: Threads(product_threads),
                    ..SequenceOptions::default()
                };
                let dims = Dims { steps, batch: b, input: width, hidden: h };
                let mut part = JobGrads {
                    d_x: vec![T::ZERO; d_in_len / batch * b],
                    d_h0: vec![T::ZERO; b * h],
                    d_c0: vec![T::ZERO; if cfg.cell.has_cell_state() { b * h } else { 0 }],
                    params: self.cells[i].zeros_like(),
                };
                let grad_in = SequenceGradIn { d_output: &d_out, d_h_n: &dhn, d_c_n: &dcn };
                let direction_cache = run.cache.as_mut().expect("a training forward fills every job's cache");
                direction_backward(
                    cfg.cell,
                    &self.cells[i],
                    dims,
                    &run.input,
                    &options,
                    direction_cache,
                    grad_in,
                    &mut part.d_x,
                    &mut part.d_h0,
                    &mut part.d_c0,
                    &mut part.params,
                );
                part
            };
            let results = run_jobs(&mut jobs, self.threads, run_job);
            let mut d_in = vec![T::ZERO; d_in_len];
            for ((d, rows, _), part) in jobs.iter().zip(results) {
                let i = k * dirs + d;
                if !d_in.is_empty() {
                    scatter_rows(&part.d_x, &mut d_in, steps, batch, rows.clone(), 0, width, true);
                }
                scatter_rows(&part.d_h0, &mut d_h0[i * plane..(i + 1) * plane], 1, batch, rows.clone(), 0, h, false);
                if cfg.cell.has_cell_state() {
                    scatter_rows(
                        &part.d_c0,
                        &mut d_c0[i * plane..(i + 1) * plane],
                        1,
                        batch,
                        rows.clone(),
                        0,
                        h,
                        false,
                    );
                }
                for ((_, g), (_, p)) in grads[i].named_mut().zip(part.params.named()) {
                    for (a, &b) in g.data.iter_mut().zip(&p.data) {
                        *a += b;
                    }
                }
            }
            if k > 0 {
                for (v, &m) in d_in.iter_mut().zip(&cache.layers[k - 1].output_mask) {
                    *v *= m;
                }
            }
            d_above = Cow::Owned(d_in);
        }
        // Learned initial states receive the batch sum of ∂L/∂h0 (when no h0 was given).
        let (given_h0, given_c0) = cache.given;
        for (i, g) in grads.iter_mut().enumerate() {
            for (learned, d_all, given) in [(&mut g.initial_h, &d_h0, given_h0), (&mut g.initial_c, &d_c0, given_c0)] {
                if learned.is_empty() || given {
                    continue;
                }
                for row in d_all[i * plane..(i + 1) * plane].chunks(h) {
                    for (a, &b) in learned.data.iter_mut().zip(row) {
                        *a += b;
                    }
                }
            }
        }
        Ok(InputGrads { d_x: d_above.into_owned(), d_h0, d_c0 })
    }
}

/// A forward job: its direction, its rows of the batch, its run, and its rows of the
/// layer's output to write its own into (none when it runs alone: its output is the layer's).
type ForwardJob<'a, T> = (usize, Range<usize>, &'a mut DirectionRun<T>, Vec<&'a mut [T]>);

/// What one job's backward produces, for its rows.
struct JobGrads<T> {
    d_x: Vec<T>,
    d_h0: Vec<T>,
    d_c0: Vec<T>,
    params: CellParams<T>,
}

/// Runs every job (as many as `threads` allows, see [`Rnn::batch_parts`]) on rayon's
/// persistent pool, and returns their results in job order. A thread spawned per call
/// cost more than the work it took over: every new thread allocated and faulted in the
/// gemm crate's per-thread packing buffers again (S1 LSTM inference on 2 threads ran
/// 0.47 s per 1000 calls spawning, 0.32 s on the pool; 1 thread 0.48 s). All jobs go
/// to the pool's threads: keeping the first on the calling thread measured slower in
/// training (S1 LSTM, 2 threads: 0.87 s against 0.78 s).
fn run_jobs<J: Send, R: Send>(jobs: &mut [J], threads: usize, run: impl Fn(&mut J) -> R + Sync) -> Vec<R> {
    if threads < 2 || jobs.len() < 2 {
        return jobs.iter_mut().map(run).collect();
    }
    let mut results: Vec<Option<R>> = jobs.iter().map(|_| None).collect();
    rayon::scope(|s| {
        for (job, result) in jobs.iter_mut().zip(results.iter_mut()) {
            let run = &run;
            s.spawn(move |_| *result = Some(run(job)));
        }
    });
    results.into_iter().map(|r| r.expect("every job ran")).collect()
}

/// Rows `rows` of `src: [steps, batch, width]` as a contiguous `[steps, rows.len(), width]`
/// (empty stays empty).
fn gather_rows<T: Real>(src: &[T], steps: usize, batch: usize, width: usize, rows: Range<usize>) -> Vec<T> {
    gather_columns_rows(src, steps, batch, 0, width, width, rows)
}

/// Columns `offset..offset+width` of rows `rows` of `src: [steps, batch, stride]`.
fn gather_columns_rows<T: Real>(
    src: &[T],
    steps: usize,
    batch: usize,
    offset: usize,
    width: usize,
    stride: usize,
    rows: Range<usize>,
) -> Vec<T> {
    if src.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(steps * rows.len() * width);
    for t in 0..steps {
        for b in rows.clone() {
            let at = (t * batch + b) * stride + offset;
            out.extend_from_slice(&src[at..at + width]);
        }
    }
    out
}

/// Writes (or adds, with `add`) `part: [steps, rows.len(), width]` into columns
/// `offset..offset+width` of rows `rows` of `dst: [steps, batch, stride]`.
#[allow(clippy::too_many_arguments)]
fn scatter_rows<T: Real>(
    part: &[T],
    dst: &mut [T],
    steps: usize,
    batch: usize,
    rows: Range<usize>,
    offset: usize,
    stride: usize,
    add: bool,
) {
    let width = part.len() / (steps * rows.len()).max(1);
    for (chunk, (t, b)) in part.chunks_exact(width).zip((0..steps).flat_map(|t| rows.clone().map(move |b| (t, b)))) {
        let at = (t * batch + b) * stride + offset;
        let target = &mut dst[at..at + width];
        if add {
            for (a, &v) in target.iter_mut().zip(chunk) {
                *a += v;
            }
        } else {
            target.copy_from_slice(chunk);
        }
    }
}

/// The Jordan layer of an encoder: φ = tanh, ψ = identity, O = H.
pub(crate) fn jordan_of(hidden: usize) -> Jordan {
    Jordan { hidden_activation: Activation::Tanh, output_activation: OutputActivation::Identity, output: hidden }
}

pub(crate) fn jordan_weights<T: Real>(p: &CellParams<T>) -> JordanWeights<'_, T> {
    JordanWeights {
        w_ih: &p.weight_ih.data,
        w_ch: &p.weight_hh.data,
        b_h: &p.bias_ih.data,
        w_hy: &p.weight_hy.data,
        b_y: &p.bias_hy.data,
        norm: (!p.gate_norm_weight.is_empty()).then_some(&p.gate_norm_weight.data[..]),
    }
}

#[allow(clippy::too_many_arguments)]
fn direction_forward<T: Real>(
    kind: CellKind,
    p: &CellParams<T>,
    dims: Dims,
    x: &[T],
    h0: &[T],
    c0: &[T],
    options: &SequenceOptions<'_, T>,
    slot: Option<&mut Option<DirectionCache<T>>>,
    rows_out: &mut [&mut [T]],
) -> SequenceOutput<T> {
    let w = p.cell_weights();
    fn gated<T: Real>(slot: Option<&mut Option<DirectionCache<T>>>) -> Option<&mut GatedCache<T>> {
        slot.map(DirectionCache::gated)
    }
    let given = !rows_out.is_empty();
    let to = given.then_some(&mut *rows_out);
    let mut out = match kind {
        CellKind::ElmanTanh => {
            let cell = Elman { activation: Activation::Tanh };
            sequence::forward(&cell, dims, x, h0, c0, &w, options, gated(slot), to)
        }
        CellKind::ElmanRelu => {
            let cell = Elman { activation: Activation::Relu };
            sequence::forward(&cell, dims, x, h0, c0, &w, options, gated(slot), to)
        }
        CellKind::Lstm => sequence::forward(&Lstm, dims, x, h0, c0, &w, options, gated(slot), to),
        CellKind::GruResetAfter => sequence::forward(&GruResetAfter, dims, x, h0, c0, &w, options, gated(slot), to),
        CellKind::GruResetBefore => {
            gru_reset_before::forward(dims, x, h0, &w, options, slot.map(DirectionCache::reset_before))
        }
        CellKind::Jordan => {
            let cache = slot.map(DirectionCache::jordan);
            let out = jordan_of(dims.hidden).forward(dims, x, h0, None, &jordan_weights(p), options, cache);
            SequenceOutput { output: out.output, h_n: out.y_n, c_n: Vec::new() }
        }
    };
    // the cells with drivers of their own return their output: copied to the rows given
    if given && !out.output.is_empty() {
        for (target, row) in rows_out.iter_mut().zip(out.output.chunks_exact(dims.hidden)) {
            target.copy_from_slice(row);
        }
        out.output = Vec::new();
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn direction_backward<T: Real>(
    kind: CellKind,
    p: &CellParams<T>,
    dims: Dims,
    x: &[T],
    options: &SequenceOptions<'_, T>,
    cache: &mut DirectionCache<T>,
    grad_in: SequenceGradIn<'_, T>,
    d_x: &mut [T],
    d_h0: &mut [T],
    d_c0: &mut [T],
    g: &mut CellParams<T>,
) {
    let weights = p.cell_weights();
    match (kind, cache) {
        (CellKind::Jordan, DirectionCache::Jordan(c)) => {
            let grads = JordanGrads {
                w_ih: &mut g.weight_ih.data,
                w_ch: &mut g.weight_hh.data,
                b_h: &mut g.bias_ih.data,
                w_hy: &mut g.weight_hy.data,
                b_y: &mut g.bias_hy.data,
                norm: &mut g.gate_norm_weight.data,
            };
            jordan_of(dims.hidden).backward(
                dims,
                x,
                false,
                &jordan_weights(p),
                options,
                c,
                grad_in.d_output,
                &[],
                grad_in.d_h_n,
                d_x,
                d_h0,
                grads,
            );
        }
        (CellKind::GruResetBefore, DirectionCache::ResetBefore(c)) => {
            let out = SequenceGradOut { d_x, d_h0, d_c0, weights: g.cell_grads() };
            gru_reset_before::backward(dims, x, &weights, options, c, grad_in, out);
        }
        (kind, DirectionCache::Gated(c)) => {
            let out = SequenceGradOut { d_x, d_h0, d_c0, weights: g.cell_grads() };
            match kind {
                CellKind::ElmanTanh => sequence::backward(
                    &Elman { activation: Activation::Tanh },
                    dims,
                    x,
                    &weights,
                    options,
                    c,
                    grad_in,
                    out,
                ),
                CellKind::ElmanRelu => sequence::backward(
                    &Elman { activation: Activation::Relu },
                    dims,
                    x,
                    &weights,
                    options,
                    c,
                    grad_in,
                    out,
                ),
                CellKind::Lstm => sequence::backward(&Lstm, dims, x, &weights, options, c, grad_in, out),
                _ => sequence::backward(&GruResetAfter, dims, x, &weights, options, c, grad_in, out),
            }
        }
        _ => unreachable!("a cache always matches the cell that wrote it"),
    }
}
