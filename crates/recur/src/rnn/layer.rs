//! A stacked, optionally bidirectional recurrent encoder over the fused kernels.
//!
//! Layer k reads `[T,B,D_k]` (`D_0 = D`, `D_k = dirs·H` above) and writes
//! `[T,B,dirs·H]`, the directions side by side as in PyTorch (`[h→_t; h←_t]`).
//! Between layers, dropout with a fresh mask per element and step (PyTorch's `dropout`);
//! inside each layer, variational dropout with one mask per sequence on the layer's
//! input (d_x) and on the recurrent state (d_h), the same at every step and in backward.
//! The two directions of a bidirectional layer run on two threads when allowed.

use recur_kernels::gru_reset_before::{self, GruResetBeforeCache};
use recur_kernels::jordan::{JordanCache, JordanGrads, JordanWeights};
use recur_kernels::sequence::{self, GatedCache};
use recur_kernels::{
    Activation, Dims, Elman, GatedCell, GruResetAfter, Jordan, Lstm, OutputActivation, Real, SequenceGradIn,
    SequenceGradOut, SequenceOptions, SequenceOutput, Threads,
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

/// `output: [T,B,dirs·H]` (zero past each length), `h_n, c_n: [L·dirs,B,H]` taken at
/// each row's own last step (`c_n` empty without a cell state).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RnnOutput<T> {
    pub output: Vec<T>,
    pub h_n: Vec<T>,
    pub c_n: Vec<T>,
}

/// Gradients with respect to the inputs of a forward: `d_x: [T,B,D]`, `d_h0, d_c0: [L·dirs,B,H]`.
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

struct DirectionRun<T> {
    cache: DirectionCache<T>,
    input_mask: Vec<T>,
    state_mask: Vec<T>,
}

struct LayerCache<T> {
    input: Vec<T>,
    directions: Vec<DirectionRun<T>>,
    /// Dropout mask applied to this layer's output before the next layer (empty: none).
    output_mask: Vec<T>,
}

/// What [`Rnn::backward`] needs from [`Rnn::forward_train`].
pub struct RnnCache<T> {
    steps: usize,
    batch: usize,
    layers: Vec<LayerCache<T>>,
}

/// The encoder: config plus parameters, one [`CellParams`] per layer and direction
/// (index `k·dirs + dir`, PyTorch's order).
#[derive(Clone, Debug, PartialEq)]
pub struct Rnn<T = f32> {
    config: RnnConfig,
    cells: Vec<CellParams<T>>,
    threads: usize,
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
        Ok(Rnn { config, cells, threads: 1 })
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
            learned.data.iter().copied().cycle().take(batch * h).collect()
        }
    }

    /// Inference: no dropout, nothing kept for backward.
    ///
    /// # Errors
    /// Shapes that disagree with the config, lengths outside `1..=T`, non-finite values.
    pub fn forward(&self, input: &SequenceBatch<'_, T>, state: &InitialState<'_, T>) -> Result<RnnOutput<T>> {
        self.run(input, state, None).map(|(out, _)| out)
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
        self.run(input, state, Some(seed)).map(|(out, cache)| (out, cache.expect("training forward keeps a cache")))
    }

    fn run(
        &self,
        input: &SequenceBatch<'_, T>,
        state: &InitialState<'_, T>,
        seed: Option<u64>,
    ) -> Result<(RnnOutput<T>, Option<RnnCache<T>>)> {
        self.validate_input(input, state)?;
        let cfg = &self.config;
        let (steps, batch, h, dirs) = (input.steps, input.batch, cfg.hidden_size, cfg.directions());
        let train = seed.is_some();
        let mut rng = Rng::new(seed.unwrap_or(0));
        let plane = batch * h;
        let mut h_n = vec![T::ZERO; cfg.num_layers * dirs * plane];
        let mut c_n = if cfg.cell.has_cell_state() { vec![T::ZERO; h_n.len()] } else { Vec::new() };
        let mut layer_input = input.x.to_vec();
        let mut layers = Vec::new();
        let (direction_threads, product_threads) = self.thread_split();

        for k in 0..cfg.num_layers {
            let width = if k == 0 { cfg.input_size } else { cfg.output_size() };
            let dims = Dims { steps, batch, input: width, hidden: h };
            let masks: Vec<(Vec<T>, Vec<T>)> = (0..dirs)
                .map(|_| {
                    if train {
                        (
                            mask_values(&mut rng, batch * width, cfg.input_dropout),
                            mask_values(&mut rng, batch * h, cfg.state_dropout),
                        )
                    } else {
                        (Vec::new(), Vec::new())
                    }
                })
                .collect();
            let inits: Vec<(Vec<T>, Vec<T>)> = (0..dirs)
                .map(|d| {
                    let i = k * dirs + d;
                    let c0 = if cfg.cell.has_cell_state() {
                        self.initial_state_of(state.c0, i, batch, true)
                    } else {
                        Vec::new()
                    };
                    (self.initial_state_of(state.h0, i, batch, false), c0)
                })
                .collect();
            let run_direction = |d: usize| {
                let options = SequenceOptions {
                    reverse: d == 1,
                    lengths: input.lengths,
                    input_mask: (!masks[d].0.is_empty()).then_some(&masks[d].0[..]),
                    state_mask: (!masks[d].1.is_empty()).then_some(&masks[d].1[..]),
                    threads: Threads(product_threads),
                };
                direction_forward(
                    cfg.cell,
                    &self.cells[k * dirs + d],
                    dims,
                    &layer_input,
                    &inits[d].0,
                    &inits[d].1,
                    &options,
                    train,
                )
            };
            let results: Vec<(SequenceOutput<T>, Option<DirectionCache<T>>)> = if dirs == 2 && direction_threads {
                std::thread::scope(|s| {
                    let reverse = s.spawn(|| run_direction(1));
                    let forward = run_direction(0);
                    vec![forward, reverse.join().expect("reverse direction panicked")]
                })
            } else {
                (0..dirs).map(run_direction).collect()
            };

            let mut output = vec![T::ZERO; steps * batch * dirs * h];
            let mut directions = Vec::new();
            for (d, ((out, cache), (input_mask, state_mask))) in results.into_iter().zip(masks).enumerate() {
                interleave(&out.output, &mut output, d, dirs, h);
                let i = k * dirs + d;
                h_n[i * plane..(i + 1) * plane].copy_from_slice(&out.h_n);
                if cfg.cell.has_cell_state() {
                    c_n[i * plane..(i + 1) * plane].copy_from_slice(&out.c_n);
                }
                if let Some(cache) = cache {
                    directions.push(DirectionRun { cache, input_mask, state_mask });
                }
            }
            let output_mask = if train && k + 1 < cfg.num_layers {
                mask_values(&mut rng, output.len(), cfg.dropout)
            } else {
                Vec::new()
            };
            let next_input = if output_mask.is_empty() {
                output
            } else {
                output.iter().zip(&output_mask).map(|(&v, &m)| v * m).collect()
            };
            if train {
                layers.push(LayerCache {
                    input: std::mem::replace(&mut layer_input, next_input),
                    directions,
                    output_mask,
                });
            } else {
                layer_input = next_input;
            }
        }
        let cache = train.then_some(RnnCache { steps, batch, layers });
        Ok((RnnOutput { output: layer_input, h_n, c_n }, cache))
    }

    /// (run the two directions on two threads, threads per large product)
    fn thread_split(&self) -> (bool, usize) {
        if self.config.bidirectional && self.threads >= 2 {
            (true, (self.threads / 2).max(1))
        } else {
            (false, self.threads)
        }
    }

    /// Exact BPTT through the whole stack. `d_output: [T,B,dirs·H]`, `d_h_n, d_c_n:
    /// [L·dirs,B,H]` (or `None` for zero). Parameter gradients accumulate into `grads`
    /// (from [`Rnn::zero_grads`]); input gradients are returned.
    ///
    /// # Errors
    /// Gradient shapes that disagree with the forward, or non-finite gradients.
    pub fn backward(
        &self,
        input: &SequenceBatch<'_, T>,
        cache: &RnnCache<T>,
        d_output: &[T],
        d_h_n: Option<&[T]>,
        d_c_n: Option<&[T]>,
        grads: &mut [CellParams<T>],
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
        let mut d_above = d_output.to_vec();
        let (direction_threads, product_threads) = self.thread_split();

        for k in (0..cfg.num_layers).rev() {
            let layer = &cache.layers[k];
            let width = if k == 0 { cfg.input_size } else { cfg.output_size() };
            let dims = Dims { steps, batch, input: width, hidden: h };
            let layer_grads = &mut grads[k * dirs..(k + 1) * dirs];
            let per_direction: Vec<Vec<T>> = (0..dirs).map(|d| deinterleave(&d_above, d, dirs, h)).collect();
            let (d_h0_layer, d_c0_layer) = (
                &mut d_h0[k * dirs * plane..(k + 1) * dirs * plane],
                if d_c0.is_empty() { &mut [][..] } else { &mut d_c0[k * dirs * plane..(k + 1) * dirs * plane] },
            );
            let mut jobs: Vec<_> = layer_grads
                .iter_mut()
                .zip(d_h0_layer.chunks_mut(plane))
                .zip(d_c0_layer.chunks_mut(plane).map(Some).chain(std::iter::repeat_with(|| None)))
                .enumerate()
                .map(|(d, ((g, dh0), dc0))| (d, g, dh0, dc0.unwrap_or(&mut [])))
                .collect();
            let run_direction = |(d, g, dh0, dc0): &mut (usize, &mut CellParams<T>, &mut [T], &mut [T])| {
                let d = *d;
                let i = k * dirs + d;
                let run = &layer.directions[d];
                let options = SequenceOptions {
                    reverse: d == 1,
                    lengths: input.lengths,
                    input_mask: (!run.input_mask.is_empty()).then_some(&run.input_mask[..]),
                    state_mask: (!run.state_mask.is_empty()).then_some(&run.state_mask[..]),
                    threads: Threads(product_threads),
                };
                let mut d_x = vec![T::ZERO; steps * batch * width];
                let grad_in = SequenceGradIn {
                    d_output: &per_direction[d],
                    d_h_n: &d_h_n[i * plane..(i + 1) * plane],
                    d_c_n: if d_c_n.is_empty() { &[] } else { &d_c_n[i * plane..(i + 1) * plane] },
                };
                direction_backward(
                    cfg.cell,
                    &self.cells[i],
                    dims,
                    &layer.input,
                    &options,
                    &run.cache,
                    grad_in,
                    &mut d_x,
                    dh0,
                    dc0,
                    g,
                );
                d_x
            };
            let d_inputs: Vec<Vec<T>> = if dirs == 2 && direction_threads {
                let (first, second) = jobs.split_at_mut(1);
                std::thread::scope(|s| {
                    let reverse = s.spawn(|| run_direction(&mut second[0]));
                    let forward = run_direction(&mut first[0]);
                    vec![forward, reverse.join().expect("reverse direction panicked")]
                })
            } else {
                jobs.iter_mut().map(run_direction).collect()
            };
            let mut d_in = d_inputs[0].clone();
            for other in &d_inputs[1..] {
                for (a, &b) in d_in.iter_mut().zip(other) {
                    *a += b;
                }
            }
            if k > 0 {
                let below_mask = &cache.layers[k - 1].output_mask;
                if !below_mask.is_empty() {
                    for (v, &m) in d_in.iter_mut().zip(below_mask) {
                        *v *= m;
                    }
                }
            }
            d_above = d_in;
        }
        // Learned initial states receive the batch sum of ∂L/∂h0 (when no h0 was given).
        for (i, g) in grads.iter_mut().enumerate() {
            for (learned, d_all) in [(&mut g.initial_h, &d_h0), (&mut g.initial_c, &d_c0)] {
                if learned.is_empty() {
                    continue;
                }
                for row in d_all[i * plane..(i + 1) * plane].chunks(h) {
                    for (a, &b) in learned.data.iter_mut().zip(row) {
                        *a += b;
                    }
                }
            }
        }
        Ok(InputGrads { d_x: d_above, d_h0, d_c0 })
    }
}

/// `dst[t,b, d·H..(d+1)·H] = src[t,b,:]`
fn interleave<T: Real>(src: &[T], dst: &mut [T], d: usize, dirs: usize, h: usize) {
    for (row_out, row_in) in dst.chunks_exact_mut(dirs * h).zip(src.chunks_exact(h)) {
        row_out[d * h..(d + 1) * h].copy_from_slice(row_in);
    }
}

fn deinterleave<T: Real>(src: &[T], d: usize, dirs: usize, h: usize) -> Vec<T> {
    src.chunks_exact(dirs * h).flat_map(|row| row[d * h..(d + 1) * h].iter().copied()).collect()
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
    keep: bool,
) -> (SequenceOutput<T>, Option<DirectionCache<T>>) {
    fn gated<C: GatedCell, T: Real>(
        cell: &C,
        p: &CellParams<T>,
        dims: Dims,
        x: &[T],
        h0: &[T],
        c0: &[T],
        o: &SequenceOptions<'_, T>,
        keep: bool,
    ) -> (SequenceOutput<T>, Option<DirectionCache<T>>) {
        let mut cache = keep.then(GatedCache::default);
        let out = sequence::forward(cell, dims, x, h0, c0, &p.cell_weights(), o, cache.as_mut());
        (out, cache.map(DirectionCache::Gated))
    }
    match kind {
        CellKind::ElmanTanh => gated(&Elman { activation: Activation::Tanh }, p, dims, x, h0, c0, options, keep),
        CellKind::ElmanRelu => gated(&Elman { activation: Activation::Relu }, p, dims, x, h0, c0, options, keep),
        CellKind::Lstm => gated(&Lstm, p, dims, x, h0, c0, options, keep),
        CellKind::GruResetAfter => gated(&GruResetAfter, p, dims, x, h0, c0, options, keep),
        CellKind::GruResetBefore => {
            let mut cache = keep.then(GruResetBeforeCache::default);
            let out = gru_reset_before::forward(dims, x, h0, &p.cell_weights(), options, cache.as_mut());
            (out, cache.map(DirectionCache::ResetBefore))
        }
        CellKind::Jordan => {
            let mut cache = keep.then(JordanCache::default);
            let out = jordan_of(dims.hidden).forward(dims, x, h0, None, &jordan_weights(p), options, cache.as_mut());
            (SequenceOutput { output: out.output, h_n: out.y_n, c_n: Vec::new() }, cache.map(DirectionCache::Jordan))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn direction_backward<T: Real>(
    kind: CellKind,
    p: &CellParams<T>,
    dims: Dims,
    x: &[T],
    options: &SequenceOptions<'_, T>,
    cache: &DirectionCache<T>,
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
