//! The whole-sequence driver shared by the cells whose step is "one recurrent
//! product, then pointwise work" (Elman, LSTM, GRU reset-after).
//!
//! Legend: `T` steps, `B` batch rows, `D` input width, `H` hidden width,
//! `G = GATES·H` gate width, `W` a cell's per-row cache width.
//!
//! Forward, for one direction of one layer:
//! 1. `X̃ = (d_x ⊙ x)`, `P_x = X̃ · W_ihᵀ` for a block of steps at a time (about 256 KB,
//!    still in L2 when its steps read it);
//! 2. per step `s` (time `t = s`, or `T−1−s` in reverse): `P_h = (d_h ⊙ h_{s−1}) · W_hhᵀ`
//!    (W_hh transposed once per sequence, so that gemm reads it without packing), then
//!    the cell's fused pointwise update of every active row;
//! 3. rows past their sequence length keep their state (PyTorch's packed semantics: the
//!    reverse direction therefore starts at each row's own last step) and output zero.
//!
//! Backward walks the steps in the opposite order, gets `∂L/∂P_x` and `∂L/∂P_h` from
//! the cell (∂P_x only for the gates where it differs, [`GatedCell::SHARED_GATES`]),
//! and after the loop forms every weight gradient with one product each:
//! `∂W_ih += ∂P_xᵀ · X̃`, `∂W_hh += ∂P_hᵀ · (d_h ⊙ H_prev)`, `∂x += (∂P_x · W_ih) ⊙ d_x`
//! (skipped when ∂x is not asked for); where every gate takes both products (LSTM, Elman),
//! ∂W_hh and ∂W_ih come from one product over `[H̃_prev | X̃]`. Scratch buffers are reused
//! between calls and never zeroed: every value is written before it is read.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cell::{add_assign, summed_bias, CellGrads, CellWeights, GatedCell, SequenceOptions};
use crate::matmul::{gemm, Mat, Threads, Transposed};
use crate::real::Real;
use crate::simd::{prefetch, vectorized};

/// Sizes of one direction of one layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// `T`, steps.
    pub steps: usize,
    /// `B`, batch rows.
    pub batch: usize,
    /// `D`, input width.
    pub input: usize,
    /// `H`, hidden width.
    pub hidden: usize,
}

/// What forward returns: `output: [T,B,H]` in time order (zero past each row's length),
/// `h_n: [B,H]`, `c_n: [B,H]` (empty for cells without a cell state).
#[derive(Clone, Debug, Default)]
pub struct SequenceOutput<T> {
    pub output: Vec<T>,
    pub h_n: Vec<T>,
    pub c_n: Vec<T>,
}

/// Everything backward needs from a training forward. Written only by
/// [`forward`]; must be passed as-is to [`backward`] with the same inputs. Passing the
/// same cache to the next forward reuses its buffers (no allocation, no page faults).
#[derive(Clone, Debug, Default)]
pub struct GatedCache<T> {
    dims: Option<Dims>,
    /// `[T+1, B, H]` hidden states in processing order; `states[0] = h0`.
    states: Vec<T>,
    /// `[T+1, B, H]` cell states likewise (cell-state cells only).
    cells: Vec<T>,
    /// `[T, B, W]` the cell's per-row cache, processing order.
    rows: Vec<T>,
    /// Scratch reused across calls: `[T,B,G]` input products (forward), then their gradients (backward).
    proj: Vec<T>,
    /// Scratch: `[T,B,G]` recurrent-product gradients (backward).
    d_proj_h: Vec<T>,
    /// W, the row layout the training forward chose ([`row_width`]).
    width: usize,
}

/// Bytes of input products ([`forward`]) computed in one block of steps: about half of a
/// core's L2 cache, so that the block is still there when its steps read it.
const INPUT_BLOCK_BYTES: usize = 256 * 1024;

/// Bytes of kept cache rows on one core above which a cell's compact layout is used (see
/// [`GatedCell::compact_cache_width`]; a job's rows times [`SequenceOptions::jobs_per_core`]);
/// [`set_compact_rows_above_bytes`] changes it. Measured on the LSTM with layer norm and
/// dropout, whose compact row is half the full one, 1000 training steps at S1
/// (`profile_step lstm train [bi] [t2] ln vd compact|full`, under `/usr/bin/time`): one
/// direction on a core (4.9 MB of full rows) runs faster in full, 1.54 s against 1.68–1.71
/// s compact (and 0.91–0.93 against 0.97–1.04 s with the batch split over two threads);
/// both directions of a bidirectional layer on one thread (9.8 MB) run faster compact,
/// 3.49–3.51 s against 3.72–3.73 s (on two threads, a direction each, alike: 1.82–1.90
/// against 1.87–1.88 s); at S2 (39 MB) compact, 2.03–2.16 s against 2.23–2.30 s per 100.
static COMPACT_ROWS_ABOVE_BYTES: AtomicUsize = AtomicUsize::new(8 << 20);

/// Sets the size of the kept rows on one core above which cells keep their compact row
/// layout. Results do not depend on it (backward recomputes what the compact rows leave out
/// with the forward's own operations: the same bits); tests set 0 to run that layout on
/// small shapes, `usize::MAX` to keep every row in full.
pub fn set_compact_rows_above_bytes(bytes: usize) {
    COMPACT_ROWS_ABOVE_BYTES.store(bytes, Ordering::Relaxed);
}

/// The per-row cache width a training forward keeps for `dims` (and backward reads), with
/// `jobs_per_core` such jobs keeping theirs in one core's caches.
fn row_width<C: GatedCell, T>(cell: &C, dims: Dims, normalized: bool, jobs_per_core: usize) -> usize {
    let full = cell.cache_width(dims.hidden, normalized);
    let bytes = dims.steps * dims.batch * full * std::mem::size_of::<T>() * jobs_per_core.max(1);
    match cell.compact_cache_width(dims.hidden, normalized) {
        Some(compact) if bytes > COMPACT_ROWS_ABOVE_BYTES.load(Ordering::Relaxed) => compact,
        _ => full,
    }
}

/// The first `n` values of a scratch buffer, grown if it is shorter and never shrunk or
/// cleared: only for buffers whose every value is written before it is read. Zeroing tens
/// of megabytes per call cost 10 % of a training step; shrinking would zero again whenever
/// a buffer alternates sizes (the input products of a forward, then their gradients).
pub(crate) fn reuse<T: Real>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() < n {
        v.resize(n, T::ZERO);
    }
    &mut v[..n]
}

/// Gradients flowing into one direction from above: `d_output: [T,B,H]`, `d_h_n`, `d_c_n: [B,H]`
/// (`d_c_n` empty for cells without a cell state).
pub struct SequenceGradIn<'a, T> {
    pub d_output: &'a [T],
    pub d_h_n: &'a [T],
    pub d_c_n: &'a [T],
}

/// Where backward accumulates (`+=`; zeroing is the caller's job):
/// `d_x: [T,B,D]` (empty: not computed), `d_h0, d_c0: [B,H]`, and the weight gradients.
pub struct SequenceGradOut<'a, T> {
    pub d_x: &'a mut [T],
    pub d_h0: &'a mut [T],
    pub d_c0: &'a mut [T],
    pub weights: CellGrads<'a, T>,
}

#[inline(always)]
pub(crate) fn time_of(step: usize, steps: usize, reverse: bool) -> usize {
    if reverse {
        steps - 1 - step
    } else {
        step
    }
}

#[inline(always)]
pub(crate) fn is_active(lengths: Option<&[usize]>, row: usize, time: usize) -> bool {
    lengths.is_none_or(|l| time < l[row])
}

/// `x̃ = d_x ⊙ x` broadcast over time, or `x` itself without a mask. `x: [T,B,D]`, `mask: [B,D]`.
pub(crate) fn masked_input<'a, T: Real>(
    x: &'a [T],
    mask: Option<&[T]>,
    rows_per_step: usize,
    width: usize,
    buffer: &'a mut Vec<T>,
) -> &'a [T] {
    match mask {
        None => x,
        Some(m) => {
            buffer.resize(x.len(), T::ZERO);
            mask_rows_into(buffer, x, &m[..rows_per_step * width]);
            buffer
        }
    }
}

/// `y ⊙= mask` row-wise, `y: [N·B, W]`, `mask: [B, W]`. (These mask loops run once or
/// twice per step with variational dropout, so they run inside [`vectorized`] at the
/// CPU's vector width: `profile_step gru train vd`, 0.941 → 0.923 s per 1000 S1 calls.)
pub(crate) fn apply_row_mask<T: Real>(y: &mut [T], mask: &[T]) {
    vectorized(
        #[inline(always)]
        || {
            for chunk in y.chunks_exact_mut(mask.len()) {
                for (v, &k) in chunk.iter_mut().zip(mask) {
                    *v *= k;
                }
            }
        },
    )
}

/// `out = x ⊙ mask` row-wise, `x, out: [N·B, W]`, `mask: [B, W]`.
pub(crate) fn mask_rows_into<T: Real>(out: &mut [T], x: &[T], mask: &[T]) {
    masked_rows(out, x, mask, |o, p| *o = p);
}

/// `out = x ⊙ mask` row-wise where a mask is given, else a copy of `x` (a state some
/// later step reads again, masked or not).
pub(crate) fn copy_masked<T: Real>(out: &mut [T], x: &[T], mask: Option<&[T]>) {
    match mask {
        Some(m) => mask_rows_into(out, x, m),
        None => out.copy_from_slice(x),
    }
}

/// `y += x ⊙ mask` row-wise, shapes as [`mask_rows_into`].
fn add_masked_rows<T: Real>(y: &mut [T], x: &[T], mask: &[T]) {
    masked_rows(y, x, mask, |o, p| *o += p);
}

/// `combine(y, x ⊙ mask)` row-wise, shapes as [`mask_rows_into`].
#[inline(always)]
fn masked_rows<T: Real>(y: &mut [T], x: &[T], mask: &[T], combine: impl Fn(&mut T, T)) {
    vectorized(
        #[inline(always)]
        || {
            for (y, x) in y.chunks_exact_mut(mask.len()).zip(x.chunks_exact(mask.len())) {
                for ((o, &v), &k) in y.iter_mut().zip(x).zip(mask) {
                    combine(o, v * k);
                }
            }
        },
    )
}

/// The plane at `prev` (read) and the one at `cur` (written) of a `[N, plane]` buffer;
/// both empty when the buffer is (cells without a cell state).
fn prev_and_current<T>(buf: &mut [T], prev: usize, cur: usize, plane: usize) -> (&[T], &mut [T]) {
    if buf.is_empty() {
        return (&[], &mut []);
    }
    if prev < cur {
        let (a, b) = buf.split_at_mut(cur);
        (&a[prev..prev + plane], &mut b[..plane])
    } else {
        let (a, b) = buf.split_at_mut(prev);
        (&b[..plane], &mut a[cur..cur + plane])
    }
}

/// Runs a whole sequence forward.
///
/// `x: [T,B,D]`, `h0, c0: [B,H]` (`c0` ignored without a cell state). With `cache`
/// `Some`, keeps what [`backward`] needs; with `None` keeps nothing (inference). With
/// `rows_out` `Some`, h_t of row b goes to `rows_out[t·B + b]` (each `[H]`; zeros past the
/// row's length) and the returned output is empty: a bidirectional layer's `[T, B, 2H]`
/// columns, or a batch part's rows of the layer's output, written where they belong
/// instead of copied there afterwards.
///
/// # Panics
/// If a buffer's length disagrees with `dims` (the library validates before calling).
#[allow(clippy::too_many_arguments)]
pub fn forward<C: GatedCell, T: Real>(
    cell: &C,
    dims: Dims,
    x: &[T],
    h0: &[T],
    c0: &[T],
    weights: &CellWeights<'_, T>,
    options: &SequenceOptions<'_, T>,
    cache: Option<&mut GatedCache<T>>,
    rows_out: Option<&mut [&mut [T]]>,
) -> SequenceOutput<T> {
    let Dims { steps, batch, input, hidden } = dims;
    let g = C::GATES * hidden;
    check_common(cell, dims, x, h0, c0, weights, options);

    let keep = cache.is_some();
    let normalized = weights.norm.is_some();
    // inference keeps one row, in the full layout (nothing to save by recomputing)
    let width = match keep {
        true => row_width::<C, T>(cell, dims, normalized, options.jobs_per_core),
        false => cell.cache_width(hidden, normalized),
    };
    let mut local = GatedCache::default();
    let store = cache.unwrap_or(&mut local);
    store.width = width;
    let GatedCache { states, cells, rows, proj, .. } = store;
    let mut masked = Vec::new();
    let x_used = masked_input(x, options.input_mask, batch, input, &mut masked);
    // W_x x_t for a block of steps at a time: a block stays in cache until its steps read it
    let block = (INPUT_BLOCK_BYTES / (batch * g * std::mem::size_of::<T>()).max(1)).clamp(1, steps.max(1));
    let proj_x = reuse(proj, block * batch * g);
    let mut block_start = 0;

    let plane = batch * hidden;
    let planes = if keep { steps + 1 } else { 2 };
    let states = reuse(states, planes * plane);
    let cells = reuse(cells, if C::HAS_CELL_STATE { planes * plane } else { 0 });
    let rows = reuse(rows, if keep { steps * batch * width } else { width });
    states[..plane].copy_from_slice(h0);
    if C::HAS_CELL_STATE {
        cells[..plane].copy_from_slice(c0);
    }
    let mut output = Vec::new();
    let mut rows_out: Vec<&mut [T]> = match rows_out {
        Some(rows) => rows.iter_mut().map(|r| &mut **r).collect(),
        None => {
            output = vec![T::ZERO; steps * plane];
            output.chunks_exact_mut(hidden.max(1)).collect()
        }
    };
    assert_eq!(rows_out.len(), steps * batch, "one output row per step and sequence");
    let mut proj_h = vec![T::ZERO; batch * g];
    let mut h_in = vec![T::ZERO; plane];
    let slot = |s: usize| if keep { s } else { s % 2 };
    let w_hh_t = Transposed::of(weights.w_hh, g, hidden);
    let mut bias = Vec::new();
    summed_bias(weights, &mut bias);

    for s in 0..steps {
        let t = time_of(s, steps, options.reverse);
        let (prev, cur) = (slot(s) * plane, slot(s + 1) * plane);
        let h_prev_all: &[T] = &states[prev..prev + plane];
        let h_for_product: &[T] = match options.state_mask {
            Some(m) => {
                mask_rows_into(&mut h_in, h_prev_all, &m[..plane]);
                &h_in
            }
            None => h_prev_all,
        };
        gemm(&mut proj_h, Mat::new(h_for_product, batch, hidden), w_hh_t.view(), false, Threads(1));

        let (h_prev_all, h_cur_all) = prev_and_current(states, prev, cur, plane);
        let (c_prev_all, c_cur_all) = prev_and_current(cells, prev, cur, plane);
        let out_t = &mut rows_out[t * batch..(t + 1) * batch];
        if s % block == 0 {
            let len = block.min(steps - s);
            block_start = if options.reverse { steps - s - len } else { s };
            let rows = block_start * batch..(block_start + len) * batch;
            let x_block = &x_used[rows.start * input..rows.end * input];
            let w_ih = Mat::new(weights.w_ih, g, input).t();
            gemm(proj_x, Mat::new(x_block, rows.len(), input), w_ih, false, options.threads);
        }
        let px = &proj_x[(t - block_start) * batch * g..(t - block_start + 1) * batch * g];
        let row_cache_base = if keep { s * batch * width } else { 0 };
        vectorized(
            #[inline(always)]
            || {
                for b in 0..batch {
                    let hs = b * hidden..(b + 1) * hidden;
                    if !is_active(options.lengths, b, t) {
                        h_cur_all[hs.clone()].copy_from_slice(&h_prev_all[hs.clone()]);
                        if C::HAS_CELL_STATE {
                            c_cur_all[hs.clone()].copy_from_slice(&c_prev_all[hs.clone()]);
                        }
                        out_t[b].fill(T::ZERO);
                        continue;
                    }
                    let cache_row = if keep {
                        &mut rows[row_cache_base + b * width..row_cache_base + (b + 1) * width]
                    } else {
                        &mut rows[..width]
                    };
                    let (c_prev, c_out): (&[T], &mut [T]) = if C::HAS_CELL_STATE {
                        (&c_prev_all[hs.clone()], &mut c_cur_all[hs.clone()])
                    } else {
                        (&[], &mut [])
                    };
                    cell.forward_row(
                        hidden,
                        &px[b * g..(b + 1) * g],
                        &mut proj_h[b * g..(b + 1) * g],
                        weights,
                        &bias,
                        &h_prev_all[hs.clone()],
                        c_prev,
                        &mut h_cur_all[hs.clone()],
                        c_out,
                        cache_row,
                    );
                    out_t[b].copy_from_slice(&h_cur_all[hs]);
                }
            },
        );
    }

    let last = slot(steps) * plane;
    let h_n = states[last..last + plane].to_vec();
    let c_n = if C::HAS_CELL_STATE { cells[last..last + plane].to_vec() } else { Vec::new() };
    store.dims = keep.then_some(dims);
    SequenceOutput { output, h_n, c_n }
}

/// Backpropagates through a whole sequence: exact BPTT.
///
/// `x`, `weights`, `options` must be those given to the [`forward`] that filled `cache`
/// (whose scratch buffers backward reuses). Gradients are accumulated into `out` (`+=`).
///
/// # Panics
/// If `cache` was not filled by a training forward with the same `dims`.
pub fn backward<C: GatedCell, T: Real>(
    cell: &C,
    dims: Dims,
    x: &[T],
    weights: &CellWeights<'_, T>,
    options: &SequenceOptions<'_, T>,
    cache: &mut GatedCache<T>,
    grad_in: SequenceGradIn<'_, T>,
    out: SequenceGradOut<'_, T>,
) {
    assert_eq!(cache.dims, Some(dims), "backward needs the cache of a training forward of the same shape");
    let GatedCache { states, cells, rows, proj, d_proj_h, width, .. } = cache;
    let width = *width;
    let Dims { steps, batch, hidden, .. } = dims;
    let g = C::GATES * hidden;
    let plane = batch * hidden;
    let SequenceGradOut { d_x, d_h0, d_c0, weights: mut grads } = out;
    assert_eq!(grad_in.d_output.len(), steps * plane);
    assert_eq!(grad_in.d_h_n.len(), plane);

    // ∂P_x only for the gate blocks where it differs from ∂P_h
    let shared = C::SHARED_GATES * hidden;
    let gx = g - shared;
    let d_proj_x = reuse(proj, steps * batch * gx);
    let d_proj_h = reuse(d_proj_h, steps * batch * g);
    let mut dh_carry = grad_in.d_h_n.to_vec();
    let mut dc_carry = if C::HAS_CELL_STATE { grad_in.d_c_n.to_vec() } else { Vec::new() };
    let mut dh_next = vec![T::ZERO; plane];
    let mut dc_next = vec![T::ZERO; dc_carry.len()];
    let mut dh_row = vec![T::ZERO; hidden];
    let mut from_product = vec![T::ZERO; plane];
    // Even and odd rows accumulate their bias and gain gradients into two sets, added at
    // the end: consecutive rows then do not wait on each other's read-modify-writes.
    let mut row_sets = [RowGrads::zeros_like(&grads), RowGrads::zeros_like(&grads)];
    let [even, odd] = &mut row_sets;
    let mut row_grads = [even.view(), odd.view()];

    for s in (0..steps).rev() {
        let t = time_of(s, steps, options.reverse);
        let h_prev_all = &states[s * plane..(s + 1) * plane];
        let h_cur_all = &states[(s + 1) * plane..(s + 2) * plane];
        let dpx = &mut d_proj_x[t * batch * gx..(t + 1) * batch * gx];
        let dph = &mut d_proj_h[s * batch * g..(s + 1) * batch * g];
        let dy = &grad_in.d_output[t * plane..(t + 1) * plane];
        vectorized(
            #[inline(always)]
            || {
                for b in 0..batch {
                    let hs = b * hidden..(b + 1) * hidden;
                    let gs = b * g..(b + 1) * g;
                    let xs = b * gx..(b + 1) * gx;
                    if !is_active(options.lengths, b, t) {
                        dpx[xs].iter_mut().for_each(|v| *v = T::ZERO);
                        dph[gs].iter_mut().for_each(|v| *v = T::ZERO);
                        dh_next[hs.clone()].copy_from_slice(&dh_carry[hs.clone()]);
                        if C::HAS_CELL_STATE {
                            dc_next[hs.clone()].copy_from_slice(&dc_carry[hs]);
                        }
                        continue;
                    }
                    for ((d, &a), &c) in dh_row.iter_mut().zip(&dy[hs.clone()]).zip(&dh_carry[hs.clone()]) {
                        *d = a + c;
                    }
                    let (c_prev, dc, dc_prev): (&[T], &[T], &mut [T]) = if C::HAS_CELL_STATE {
                        (
                            &cells[s * plane..(s + 1) * plane][hs.clone()],
                            &dc_carry[hs.clone()],
                            &mut dc_next[hs.clone()],
                        )
                    } else {
                        (&[], &[], &mut [])
                    };
                    // the rows' caches outgrow L2 and are read backwards in time: fetch the next one now
                    let next =
                        if b + 1 < batch { Some(s * batch + b + 1) } else { s.checked_sub(1).map(|p| p * batch) };
                    if let Some(r) = next {
                        prefetch(&rows[r * width..(r + 1) * width]);
                    }
                    cell.backward_row(
                        hidden,
                        &dh_row,
                        dc,
                        &rows[(s * batch + b) * width..(s * batch + b + 1) * width],
                        &h_prev_all[hs.clone()],
                        c_prev,
                        &h_cur_all[hs.clone()],
                        weights,
                        &mut dpx[xs],
                        &mut dph[gs],
                        &mut dh_next[hs],
                        dc_prev,
                        &mut row_grads[b % 2],
                    );
                }
            },
        );
        // ∂L/∂h_{s−1} += (∂P_h · W_hh) ⊙ d_h   (inverts P_h = (d_h ⊙ h_{s−1}) · W_hhᵀ)
        let w_hh = Mat::new(weights.w_hh, g, hidden);
        match options.state_mask {
            None => gemm(&mut dh_next, Mat::new(dph, batch, g), w_hh, true, Threads(1)),
            Some(m) => {
                gemm(&mut from_product, Mat::new(dph, batch, g), w_hh, false, Threads(1));
                add_masked_rows(&mut dh_next, &from_product, &m[..plane]);
            }
        }
        std::mem::swap(&mut dh_carry, &mut dh_next);
        std::mem::swap(&mut dc_carry, &mut dc_next);
    }
    for set in &row_sets {
        set.add_into(&mut grads, C::SHARED_GATES * hidden);
    }
    for (d, &v) in d_h0.iter_mut().zip(&dh_carry) {
        *d += v;
    }
    if C::HAS_CELL_STATE {
        for (d, &v) in d_c0.iter_mut().zip(&dc_carry) {
            *d += v;
        }
    }

    let n = steps * batch;
    let mut masked_h = Vec::new();
    let h_used = masked_input(&states[..n * hidden], options.state_mask, batch, hidden, &mut masked_h);
    let input = dims.input;
    let (w_shared, w_rest) = weights.w_ih.split_at(shared * input);
    let (d_w_shared, d_w_rest) = grads.w_ih.split_at_mut(shared * input);
    // the blocks after the shared ones, ∂P_x in time order
    if gx > 0 {
        input_grads(dims, x, w_rest, options, Mat::new(d_proj_x, n, gx), Some(d_w_rest), d_x);
    }
    // the shared blocks, from ∂P_h: the leading columns of each row, in processing order
    let reversed;
    let x_processed = match options.reverse {
        true => {
            reversed = reverse_time(x, steps);
            &reversed[..]
        }
        false => x,
    };
    // (zero-width states or inputs, which the library refuses, take the two products)
    let d_w_shared = match gx == 0 && hidden > 0 && input > 0 {
        true => {
            let joined = reuse(proj, n * (hidden + input));
            joint_weight_gradients(dims, Mat::new(d_proj_h, n, g), h_used, x_processed, options, joined, &mut grads);
            None
        }
        false => {
            gemm(grads.w_hh, Mat::new(d_proj_h, n, g).t(), Mat::new(h_used, n, hidden), true, options.threads);
            Some(d_w_shared)
        }
    };
    if shared > 0 {
        let d_shared = Mat::strided(d_proj_h, n, shared, g);
        if !options.reverse {
            input_grads(dims, x, w_shared, options, d_shared, d_w_shared, d_x);
        } else {
            // processing order is the reverse of time: give ∂x in that order, then turn it round
            let mut d_x_processed = vec![T::ZERO; d_x.len()];
            input_grads(dims, x_processed, w_shared, options, d_shared, d_w_shared, &mut d_x_processed);
            for (d, v) in d_x.iter_mut().zip(reverse_time(&d_x_processed, steps)) {
                *d += v;
            }
        }
    }
}

/// `[∂W_hh | ∂W_ih] += ∂P_hᵀ · [H̃_prev | X̃]` for a cell whose every gate block takes both
/// products (`GatedCell::SHARED_GATES == GATES`): one product over the `T·B` rows joined side
/// by side into `joined` (`[T·B, H + D]`, processing order), not `∂P_hᵀ·H̃_prev` and then the
/// narrow `∂P_hᵀ·X̃`. ∂P_h is then packed once, and the D input columns run at the wide
/// product's rate: at S2 (`∂P_h: [7680, 512]`, H = 128, D = 12, one AVX2 thread) the two
/// weight gradients take 0.95 of the time of the two products apart, copies included (the
/// median of 25 alternating pairs, two runs; 0.96–0.98 at S1: `cargo run --release -p
/// recur-kernels --example joint_weight_gradients`); in `perf` of `profile_step lstm train
/// s2` their samples fell by 8 % against the per-step products', about 2.5 % of the step.
/// `d_proj_h: [T·B, G]`; `h_used: [T·B, H]` and `x_processed: [T·B, D]` in processing
/// order, `h_used` already masked; `grads.w_hh: [G, H]`, `grads.w_ih: [G, D]`.
///
/// # Panics
/// If `joined` is shorter than `T·B·(H + D)`, or `H` or `D` is zero.
pub fn joint_weight_gradients<T: Real>(
    dims: Dims,
    d_proj_h: Mat<'_, T>,
    h_used: &[T],
    x_processed: &[T],
    options: &SequenceOptions<'_, T>,
    joined: &mut [T],
    grads: &mut CellGrads<'_, T>,
) {
    let Dims { steps, batch, input, hidden } = dims;
    let (n, g, k) = (steps * batch, d_proj_h.cols(), hidden + input);
    let mut masked = Vec::new();
    let x_used = masked_input(x_processed, options.input_mask, batch, input, &mut masked);
    for ((row, h), x) in joined.chunks_exact_mut(k).zip(h_used.chunks_exact(hidden)).zip(x_used.chunks_exact(input)) {
        row[..hidden].copy_from_slice(h);
        row[hidden..].copy_from_slice(x);
    }
    let mut product = vec![T::ZERO; g * k];
    gemm(&mut product, d_proj_h.t(), Mat::new(joined, n, k), false, options.threads);
    let (d_w_hh, d_w_ih) = (&mut grads.w_hh[..g * hidden], &mut grads.w_ih[..g * input]);
    for ((row, d_hh), d_ih) in
        product.chunks_exact(k).zip(d_w_hh.chunks_exact_mut(hidden)).zip(d_w_ih.chunks_exact_mut(input))
    {
        add_assign(d_hh, &row[..hidden]);
        add_assign(d_ih, &row[hidden..]);
    }
}

/// The gradients [`GatedCell::backward_row`] accumulates per row (biases, gains).
struct RowGrads<T> {
    b_ih: Vec<T>,
    b_hh: Vec<T>,
    norm_gates: Vec<T>,
    norm_cell: Vec<T>,
}

impl<T: Real> RowGrads<T> {
    fn zeros_like(g: &CellGrads<'_, T>) -> Self {
        let zeros = |v: &[T]| vec![T::ZERO; v.len()];
        RowGrads {
            b_ih: zeros(g.b_ih),
            b_hh: zeros(g.b_hh),
            norm_gates: zeros(g.norm_gates),
            norm_cell: zeros(g.norm_cell),
        }
    }

    /// A [`CellGrads`] over these buffers, with no weight matrices (rows never touch them).
    fn view(&mut self) -> CellGrads<'_, T> {
        CellGrads {
            w_ih: &mut [],
            w_hh: &mut [],
            b_ih: &mut self.b_ih,
            b_hh: &mut self.b_hh,
            norm_gates: &mut self.norm_gates,
            norm_cell: &mut self.norm_cell,
        }
    }

    /// Adds these sums into `g`, and the first `shared` bias values also into `g.b_hh`
    /// (rows write ∂b of the shared gate blocks to `b_ih` alone).
    fn add_into(&self, g: &mut CellGrads<'_, T>, shared: usize) {
        add_assign(&mut g.b_hh[..shared], &self.b_ih[..shared]);
        for (to, from) in [
            (&mut *g.b_ih, &self.b_ih),
            (&mut *g.b_hh, &self.b_hh),
            (&mut *g.norm_gates, &self.norm_gates),
            (&mut *g.norm_cell, &self.norm_cell),
        ] {
            add_assign(to, from);
        }
    }
}

/// `[T, ·]` with its time steps in reverse order (an empty input stays empty).
fn reverse_time<T: Real>(x: &[T], steps: usize) -> Vec<T> {
    let plane = x.len() / steps.max(1);
    let mut out = Vec::with_capacity(x.len());
    // a step at a time: one copy each, where a flattened iterator copied value by value
    for step in x.chunks_exact(plane.max(1)).rev() {
        out.extend_from_slice(step);
    }
    out
}

/// The input-side products after the time loop, shared by every cell:
/// `∂W_ih += ∂P_xᵀ·X̃` and `∂x += (∂P_x·W_ih) ⊙ d_x` for `∂P_x: [T·B, K]` rows in the
/// order of `x` and `w_ih, ∂W_ih: [K, D]` (all gates, or some blocks of them);
/// `d_w_ih` `None` skips ∂W_ih (formed with ∂W_hh, [`joint_weight_gradients`]), an empty
/// `d_x` skips ∂x (an input that needs no gradient, like the data).
#[allow(clippy::too_many_arguments)]
pub(crate) fn input_grads<T: Real>(
    dims: Dims,
    x: &[T],
    w_ih: &[T],
    options: &SequenceOptions<'_, T>,
    d_proj_x: Mat<'_, T>,
    d_w_ih: Option<&mut [T]>,
    d_x: &mut [T],
) {
    let Dims { steps, batch, input, .. } = dims;
    let (n, g) = (steps * batch, d_proj_x.cols());
    if let Some(d_w_ih) = d_w_ih {
        let mut masked = Vec::new();
        let x_used = masked_input(x, options.input_mask, batch, input, &mut masked);
        gemm(d_w_ih, d_proj_x.t(), Mat::new(x_used, n, input), true, options.threads);
    }
    if d_x.is_empty() {
        return;
    }
    match options.input_mask {
        None => gemm(d_x, d_proj_x, Mat::new(w_ih, g, input), true, options.threads),
        Some(m) => {
            let mut dx = vec![T::ZERO; n * input];
            gemm(&mut dx, d_proj_x, Mat::new(w_ih, g, input), false, options.threads);
            let plane = batch * input;
            for (d_step, step) in d_x.chunks_exact_mut(plane).zip(dx.chunks_exact(plane)) {
                for ((d, &v), &k) in d_step.iter_mut().zip(step).zip(&m[..plane]) {
                    *d += v * k;
                }
            }
        }
    }
}

fn check_common<C: GatedCell, T: Real>(
    cell: &C,
    dims: Dims,
    x: &[T],
    h0: &[T],
    c0: &[T],
    weights: &CellWeights<'_, T>,
    options: &SequenceOptions<'_, T>,
) {
    let Dims { steps, batch, input, hidden } = dims;
    let g = C::GATES * hidden;
    assert_eq!(x.len(), steps * batch * input, "x must be [T,B,D]");
    assert_eq!(h0.len(), batch * hidden, "h0 must be [B,H]");
    if C::HAS_CELL_STATE {
        assert_eq!(c0.len(), batch * hidden, "c0 must be [B,H]");
    }
    assert_eq!(weights.w_ih.len(), g * input, "w_ih must be [G,D]");
    assert_eq!(weights.w_hh.len(), g * hidden, "w_hh must be [G,H]");
    assert_eq!(weights.b_ih.len(), g);
    assert_eq!(weights.b_hh.len(), g);
    if let Some(norm) = &weights.norm {
        assert_eq!(norm.gates.len(), cell.norm_gate_chunks() * hidden);
    }
    options.check(batch, input, hidden, steps);
}

/// Carried state and reusable buffers for streaming one step at a time
/// (no allocation per step).
#[derive(Clone, Debug, Default)]
pub struct StepWorkspace<T> {
    proj_x: Vec<T>,
    proj_h: Vec<T>,
    h_next: Vec<T>,
    c_next: Vec<T>,
    scratch: Vec<T>,
    bias: Vec<T>,
}

/// Advances the state by one step: `x: [B,D]`, `h, c: [B,H]` in-out (the carried state).
pub fn step<C: GatedCell, T: Real>(
    cell: &C,
    batch: usize,
    input: usize,
    hidden: usize,
    x: &[T],
    h: &mut [T],
    c: &mut [T],
    weights: &CellWeights<'_, T>,
    work: &mut StepWorkspace<T>,
) {
    let g = C::GATES * hidden;
    let width = cell.cache_width(hidden, weights.norm.is_some());
    work.proj_x.resize(batch * g, T::ZERO);
    work.proj_h.resize(batch * g, T::ZERO);
    work.h_next.resize(batch * hidden, T::ZERO);
    work.c_next.resize(if C::HAS_CELL_STATE { batch * hidden } else { 0 }, T::ZERO);
    work.scratch.resize(width, T::ZERO);
    gemm(&mut work.proj_x, Mat::new(x, batch, input), Mat::new(weights.w_ih, g, input).t(), false, Threads(1));
    gemm(&mut work.proj_h, Mat::new(h, batch, hidden), Mat::new(weights.w_hh, g, hidden).t(), false, Threads(1));
    summed_bias(weights, &mut work.bias);
    let StepWorkspace { proj_x, proj_h, h_next, c_next, scratch, bias } = work;
    vectorized(
        #[inline(always)]
        || {
            for b in 0..batch {
                let hs = b * hidden..(b + 1) * hidden;
                let (c_prev, c_out): (&[T], &mut [T]) =
                    if C::HAS_CELL_STATE { (&c[hs.clone()], &mut c_next[hs.clone()]) } else { (&[], &mut []) };
                cell.forward_row(
                    hidden,
                    &proj_x[b * g..(b + 1) * g],
                    &mut proj_h[b * g..(b + 1) * g],
                    weights,
                    bias,
                    &h[hs.clone()],
                    c_prev,
                    &mut h_next[hs],
                    c_out,
                    scratch,
                );
            }
        },
    );
    h.copy_from_slice(h_next);
    if C::HAS_CELL_STATE {
        c.copy_from_slice(c_next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lstm::Lstm;

    /// Synthetic values in [−0.5, 0.5) (unit test data, not a claim about real data).
    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 37 + seed * 101) % 97) as f32 / 97.0 - 0.5).collect()
    }

    /// One product over `[H̃_prev | X̃]` adds to ∂W_hh and ∂W_ih what the two products apart
    /// give, `∂P_hᵀ·H̃_prev` and `∂P_hᵀ·(d_x ⊙ x)` summed naively over the rows, the masked input
    /// included (T·B = 320 rows: the gemm crate's path for weight gradients).
    #[test]
    fn joint_weight_gradients_add_both_products() {
        let dims = Dims { steps: 40, batch: 8, input: 3, hidden: 20 };
        let (n, g, h, d) = (dims.steps * dims.batch, 4 * dims.hidden, dims.hidden, dims.input);
        let f64s = |len: usize, seed: usize| values(len, seed).into_iter().map(f64::from).collect::<Vec<f64>>();
        let (d_proj_h, h_used, x) = (f64s(n * g, 1), f64s(n * h, 2), f64s(n * d, 3));
        let input_mask: Vec<f64> = (0..dims.batch * d).map(|i| if i % 3 == 1 { 0.0 } else { 1.25 }).collect();
        let options = SequenceOptions { input_mask: Some(&input_mask[..]), ..SequenceOptions::default() };
        let (start_hh, start_ih) = (f64s(g * h, 4), f64s(g * d, 5));
        let (mut w_hh, mut w_ih) = (start_hh.clone(), start_ih.clone());
        let mut joined = vec![f64::NAN; n * (h + d)];
        let grads = &mut CellGrads::matrices(&mut w_ih, &mut w_hh);
        joint_weight_gradients(dims, Mat::new(&d_proj_h, n, g), &h_used, &x, &options, &mut joined, grads);
        for k in 0..g {
            for j in 0..h {
                let want = start_hh[k * h + j] + (0..n).map(|r| d_proj_h[r * g + k] * h_used[r * h + j]).sum::<f64>();
                assert!((w_hh[k * h + j] - want).abs() < 1e-9, "∂W_hh[{k}, {j}]");
            }
            for j in 0..d {
                let masked = |r: usize| x[r * d + j] * input_mask[(r % dims.batch) * d + j];
                let want = start_ih[k * d + j] + (0..n).map(|r| d_proj_h[r * g + k] * masked(r)).sum::<f64>();
                assert!((w_ih[k * d + j] - want).abs() < 1e-9, "∂W_ih[{k}, {j}]");
            }
        }
    }

    /// Rows given to forward, here every other `H` columns of a `[T, B, 2H]` buffer full of
    /// NaN (as a bidirectional layer gives its reverse direction's), hold exactly the output
    /// forward returns of its own, zeros past each row's length included; nothing else of the
    /// buffer is written.
    #[test]
    fn rows_given_receive_the_output_forward_returns_of_its_own() {
        let dims = Dims { steps: 5, batch: 3, input: 2, hidden: 4 };
        let (g, h) = (4 * dims.hidden, dims.hidden);
        let (w_ih, w_hh, b_ih, b_hh) = (values(g * dims.input, 1), values(g * h, 2), values(g, 3), values(g, 4));
        let weights = CellWeights { w_ih: &w_ih, w_hh: &w_hh, b_ih: &b_ih, b_hh: &b_hh, norm: None };
        let x = values(dims.steps * dims.batch * dims.input, 5);
        let (h0, c0) = (values(dims.batch * h, 6), values(dims.batch * h, 7));
        let lengths = [5, 2, 4];
        for reverse in [false, true] {
            let options = SequenceOptions { reverse, lengths: Some(&lengths[..]), ..SequenceOptions::default() };
            let own = forward(&Lstm, dims, &x, &h0, &c0, &weights, &options, None, None);
            let mut layer = vec![f32::NAN; dims.steps * dims.batch * 2 * h];
            let mut rows: Vec<&mut [f32]> = layer.chunks_exact_mut(h).skip(1).step_by(2).collect();
            let given = forward(&Lstm, dims, &x, &h0, &c0, &weights, &options, None, Some(&mut rows));
            assert!(given.output.is_empty());
            assert_eq!((given.h_n, given.c_n), (own.h_n, own.c_n));
            let written: Vec<f32> = layer.chunks_exact(h).skip(1).step_by(2).flatten().copied().collect();
            assert_eq!(written, own.output, "reverse={reverse}");
            assert!(layer.chunks_exact(h).step_by(2).flatten().all(|v| v.is_nan()), "the other columns untouched");
            assert!(own.output[(dims.batch + 1) * h..(dims.batch + 2) * h].iter().any(|&v| v != 0.0));
            assert!(own.output[(2 * dims.batch + 1) * h..(2 * dims.batch + 2) * h].iter().all(|&v| v == 0.0));
        }
    }
}
