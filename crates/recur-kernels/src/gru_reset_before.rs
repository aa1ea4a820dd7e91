//! GRU with the reset gate applied *before* the recurrent product: the deck's
//! equation (Cho et al. 2014), gate order r, z, n as in PyTorch's layout:
//!
//! z_t = σ(W_xz x_t + W_hz h_{t−1} + b_z)              (update gate)
//! r_t = σ(W_xr x_t + W_hr h_{t−1} + b_r)              (reset gate)
//! h̃_t = tanh(W_xh x_t + W_hh (r_t ⊙ h_{t−1}) + b_h)   (candidate content)
//! h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t               (the deck's update)
//!
//! Each bias is `b_ih + b_hh`. The step needs two recurrent products — `[r z]` from
//! `h_{t−1}`, then the candidate from `r_t ⊙ h_{t−1}` — so it has its own time loop.
//! With layer norm every gate normalises its summed pre-activation. With a state mask
//! d_h, both products read d_h ⊙ h_{t−1}; the update's h_{t−1} is unmasked.

use crate::cell::{CellGrads, CellWeights, SequenceOptions};
use crate::layer_norm::{layer_norm_backward, layer_norm_forward};
use crate::matmul::{gemm, Mat, Threads, Transposed};
use crate::real::Real;
use crate::sequence::{
    apply_row_mask, copy_masked, input_grads, is_active, masked_input, time_of, Dims, SequenceGradIn, SequenceGradOut,
    SequenceOutput,
};
use crate::simd::vectorized;

/// The GRU cell, reset gate before the recurrent product (the deck's form).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GruResetBefore;

/// Layer-norm gain vectors: r, z, n.
pub const NORM_GATE_CHUNKS: usize = 3;

/// Cache row layout `[r z h̃ | â_r â_z â_n | rstd×3]`.
const HAT: usize = 3;
const RSTD: usize = 6;

fn cache_width(hidden: usize, normalized: bool) -> usize {
    if normalized {
        RSTD * hidden + 3
    } else {
        HAT * hidden
    }
}

/// What backward needs; written by [`forward`] only.
#[derive(Clone, Debug, Default)]
pub struct GruResetBeforeCache<T> {
    dims: Option<Dims>,
    /// `[T+1,B,H]` processing order, `states[0] = h0`.
    states: Vec<T>,
    /// `[T,B,H]` `r_t ⊙ (d_h ⊙ h_{t−1})`, the candidate product's input.
    reset_state: Vec<T>,
    /// `[T,B,W]`.
    rows: Vec<T>,
}

/// Gate pre-activations `a` (`[G]` for one row) → r, z (with their layer norm), stored in `cache`.
#[inline(always)]
fn gates_forward<T: Real>(n: usize, a: &mut [T], weights: &CellWeights<'_, T>, cache: &mut [T]) {
    if let Some(norm) = &weights.norm {
        for k in 0..2 {
            let hat = &mut cache[(HAT + k) * n..(HAT + k + 1) * n];
            cache[RSTD * n + k] = layer_norm_forward(&mut a[k * n..(k + 1) * n], &norm.gates[k * n..(k + 1) * n], hat);
        }
    }
    // slices of their loop's length: no bounds checks, so the loops vectorise
    let (a, b_ih, b_hh, gates) = (&a[..2 * n], &weights.b_ih[..2 * n], &weights.b_hh[..2 * n], &mut cache[..2 * n]);
    for j in 0..2 * n {
        gates[j] = (a[j] + b_ih[j] + b_hh[j]).sigmoid();
    }
}

/// Candidate pre-activation `a_n: [H]` → h̃ and h_t.
#[inline(always)]
fn candidate_forward<T: Real>(
    n: usize,
    a_n: &mut [T],
    weights: &CellWeights<'_, T>,
    h_prev: &[T],
    h_out: &mut [T],
    cache: &mut [T],
) {
    if let Some(norm) = &weights.norm {
        let hat = &mut cache[(HAT + 2) * n..(HAT + 3) * n];
        cache[RSTD * n + 2] = layer_norm_forward(a_n, &norm.gates[2 * n..3 * n], hat);
    }
    let (b_in, b_hn) = (&weights.b_ih[2 * n..3 * n], &weights.b_hh[2 * n..3 * n]);
    let (gates, rest) = cache.split_at_mut(2 * n);
    let (z, cand) = (&gates[n..], &mut rest[..n]);
    let (a_n, h_prev, h_out) = (&a_n[..n], &h_prev[..n], &mut h_out[..n]);
    for j in 0..n {
        cand[j] = (a_n[j] + b_in[j] + b_hn[j]).tanh();
        h_out[j] = (T::ONE - z[j]) * h_prev[j] + z[j] * cand[j];
    }
}

/// Runs a whole sequence forward; see [`crate::sequence::forward`] for the contract
/// (same shapes, `G = 3H`, no cell state).
#[allow(clippy::too_many_arguments)]
pub fn forward<T: Real>(
    dims: Dims,
    x: &[T],
    h0: &[T],
    weights: &CellWeights<'_, T>,
    options: &SequenceOptions<'_, T>,
    cache: Option<&mut GruResetBeforeCache<T>>,
) -> SequenceOutput<T> {
    let Dims { steps, batch, input, hidden: n } = dims;
    let g = 3 * n;
    let plane = batch * n;
    let width = cache_width(n, weights.norm.is_some());
    assert_eq!(x.len(), steps * batch * input, "x must be [T,B,D]");
    assert_eq!(h0.len(), plane, "h0 must be [B,H]");
    assert_eq!(weights.w_ih.len(), g * input);
    assert_eq!(weights.w_hh.len(), g * n);
    options.check(batch, input, n, steps);

    let mut masked = Vec::new();
    let x_used = masked_input(x, options.input_mask, batch, input, &mut masked);
    let mut proj_x = vec![T::ZERO; steps * batch * g];
    gemm(
        &mut proj_x,
        Mat::new(x_used, steps * batch, input),
        Mat::new(weights.w_ih, g, input).t(),
        false,
        options.threads,
    );

    let keep = cache.is_some();
    let mut states = vec![T::ZERO; (steps + 1) * plane];
    states[..plane].copy_from_slice(h0);
    let mut reset_state = vec![T::ZERO; if keep { steps * plane } else { plane }];
    let mut rows = vec![T::ZERO; if keep { steps * batch * width } else { batch * width }];
    let mut output = vec![T::ZERO; steps * plane];
    let (w_rz_t, w_n_t) =
        (Transposed::of(&weights.w_hh[..2 * n * n], 2 * n, n), Transposed::of(&weights.w_hh[2 * n * n..], n, n));
    let (w_rz, w_n) = (w_rz_t.view(), w_n_t.view());
    let mut proj_rz = vec![T::ZERO; batch * 2 * n];
    let mut proj_n = vec![T::ZERO; plane];
    let mut h_in = vec![T::ZERO; plane];
    let mut a = vec![T::ZERO; g];

    for s in 0..steps {
        let t = time_of(s, steps, options.reverse);
        let (before, after) = states.split_at_mut((s + 1) * plane);
        let h_prev_all = &before[s * plane..];
        let h_cur_all = &mut after[..plane];
        copy_masked(&mut h_in, h_prev_all, options.state_mask);
        gemm(&mut proj_rz, Mat::new(&h_in, batch, n), w_rz, false, Threads(1));
        let rs_base = if keep { s * plane } else { 0 };
        let rows_base = if keep { s * batch * width } else { 0 };
        let px = &proj_x[t * batch * g..(t + 1) * batch * g];
        let rs = &mut reset_state[rs_base..rs_base + plane];
        vectorized(
            #[inline(always)]
            || {
                for b in 0..batch {
                    let hs = b * n..(b + 1) * n;
                    if !is_active(options.lengths, b, t) {
                        rs[hs].iter_mut().for_each(|v| *v = T::ZERO);
                        continue;
                    }
                    let cache_row = &mut rows[rows_base + b * width..rows_base + (b + 1) * width];
                    let (x_rz, h_rz, a_rz) =
                        (&px[b * g..b * g + 2 * n], &proj_rz[b * 2 * n..(b + 1) * 2 * n], &mut a[..2 * n]);
                    for j in 0..2 * n {
                        a_rz[j] = x_rz[j] + h_rz[j];
                    }
                    gates_forward(n, &mut a, weights, cache_row);
                    let (r, h_in, rs) = (&cache_row[..n], &h_in[hs.clone()], &mut rs[hs]);
                    for j in 0..n {
                        rs[j] = r[j] * h_in[j];
                    }
                }
            },
        );
        gemm(&mut proj_n, Mat::new(rs, batch, n), w_n, false, Threads(1));
        let out_t = &mut output[t * plane..(t + 1) * plane];
        vectorized(
            #[inline(always)]
            || {
                for b in 0..batch {
                    let hs = b * n..(b + 1) * n;
                    if !is_active(options.lengths, b, t) {
                        h_cur_all[hs.clone()].copy_from_slice(&h_prev_all[hs]);
                        continue;
                    }
                    let cache_row = &mut rows[rows_base + b * width..rows_base + (b + 1) * width];
                    let (a_n, x_n, h_n) = (&mut a[..n], &px[b * g + 2 * n..(b + 1) * g], &proj_n[hs.clone()]);
                    for j in 0..n {
                        a_n[j] = x_n[j] + h_n[j];
                    }
                    candidate_forward(n, a_n, weights, &h_prev_all[hs.clone()], &mut h_cur_all[hs.clone()], cache_row);
                    out_t[hs.clone()].copy_from_slice(&h_cur_all[hs]);
                }
            },
        );
    }
    let h_n = states[steps * plane..].to_vec();
    if let Some(cache) = cache {
        *cache = GruResetBeforeCache { dims: Some(dims), states, reset_state, rows };
    }
    SequenceOutput { output, h_n, c_n: Vec::new() }
}

/// Exact BPTT through [`forward`]; accumulates into `out`.
///
/// # Panics
/// If `cache` was not filled by a training forward of the same shape.
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Real>(
    dims: Dims,
    x: &[T],
    weights: &CellWeights<'_, T>,
    options: &SequenceOptions<'_, T>,
    cache: &GruResetBeforeCache<T>,
    grad_in: SequenceGradIn<'_, T>,
    out: SequenceGradOut<'_, T>,
) {
    assert_eq!(cache.dims, Some(dims), "backward needs the cache of a training forward of the same shape");
    let Dims { steps, batch, hidden: n, .. } = dims;
    let g = 3 * n;
    let plane = batch * n;
    let width = cache_width(n, weights.norm.is_some());
    let SequenceGradOut { d_x, d_h0, weights: grads, .. } = out;
    let CellGrads { w_ih: d_w_ih, w_hh: d_w_hh, b_ih: d_b_ih, b_hh: d_b_hh, norm_gates: d_norm, .. } = grads;
    let w_rz = Mat::new(&weights.w_hh[..2 * n * n], 2 * n, n);
    let w_n = Mat::new(&weights.w_hh[2 * n * n..], n, n);

    let mut d_proj_x = vec![T::ZERO; steps * batch * g];
    // [T,B,2H] ∂P_rz and [T,B,H] ∂P_n, processing order, for the weight products.
    let mut d_proj_rz = vec![T::ZERO; steps * batch * 2 * n];
    let mut d_proj_n = vec![T::ZERO; steps * plane];
    let mut dh_carry = grad_in.d_h_n.to_vec();
    let mut dh_next = vec![T::ZERO; plane];
    let mut d_reset_state = vec![T::ZERO; plane];
    let mut d_h_in = vec![T::ZERO; plane];
    let mut h_in = vec![T::ZERO; plane];

    for s in (0..steps).rev() {
        let t = time_of(s, steps, options.reverse);
        let h_prev_all = &cache.states[s * plane..(s + 1) * plane];
        copy_masked(&mut h_in, h_prev_all, options.state_mask);
        let rows = &cache.rows[s * batch * width..(s + 1) * batch * width];
        let dpx = &mut d_proj_x[t * batch * g..(t + 1) * batch * g];
        let dpn = &mut d_proj_n[s * plane..(s + 1) * plane];
        let dprz = &mut d_proj_rz[s * batch * 2 * n..(s + 1) * batch * 2 * n];
        let dy = &grad_in.d_output[t * plane..(t + 1) * plane];
        // inverts h_t = (1 − z) ⊙ h_{t−1} + z ⊙ h̃ and h̃ = tanh(a_n + b)
        vectorized(
            #[inline(always)]
            || {
                for b in 0..batch {
                    let hs = b * n..(b + 1) * n;
                    if !is_active(options.lengths, b, t) {
                        dpx[b * g..(b + 1) * g].iter_mut().for_each(|v| *v = T::ZERO);
                        dpn[hs.clone()].iter_mut().for_each(|v| *v = T::ZERO);
                        dh_next[hs.clone()].copy_from_slice(&dh_carry[hs]);
                        continue;
                    }
                    let row = &rows[b * width..(b + 1) * width];
                    let (z, cand) = (&row[n..2 * n], &row[2 * n..3 * n]);
                    let (dy, dh_carry, dh_next, h_prev) =
                        (&dy[hs.clone()], &dh_carry[hs.clone()], &mut dh_next[hs.clone()], &h_prev_all[hs.clone()]);
                    // dz kept in dprz's z block until the gate backward
                    let (dz, da_n) = (&mut dprz[b * 2 * n + n..(b + 1) * 2 * n], &mut dpn[hs.clone()]);
                    let (db_in, db_hn) = (&mut d_b_ih[2 * n..3 * n], &mut d_b_hh[2 * n..3 * n]);
                    for j in 0..n {
                        let dh = dy[j] + dh_carry[j];
                        dh_next[j] = dh * (T::ONE - z[j]);
                        let d_cand = dh * z[j];
                        dz[j] = dh * (cand[j] - h_prev[j]);
                        let da = d_cand * (T::ONE - cand[j] * cand[j]);
                        db_in[j] += da;
                        db_hn[j] += da;
                        da_n[j] = da;
                    }
                    if let Some(norm) = &weights.norm {
                        layer_norm_backward(
                            &mut dpn[hs.clone()],
                            &row[(HAT + 2) * n..(HAT + 3) * n],
                            row[RSTD * n + 2],
                            &norm.gates[2 * n..3 * n],
                            &mut d_norm[2 * n..3 * n],
                            None,
                        );
                    }
                    dpx[b * g + 2 * n..(b + 1) * g].copy_from_slice(&dpn[hs]);
                }
            },
        );
        // ∂(r ⊙ h_in) = ∂P_n · W_hn
        gemm(&mut d_reset_state, Mat::new(dpn, batch, n), w_n, false, Threads(1));
        vectorized(
            #[inline(always)]
            || {
                for b in 0..batch {
                    if !is_active(options.lengths, b, t) {
                        dprz[b * 2 * n..(b + 1) * 2 * n].iter_mut().for_each(|v| *v = T::ZERO);
                        d_h_in[b * n..(b + 1) * n].iter_mut().for_each(|v| *v = T::ZERO);
                        continue;
                    }
                    let row = &rows[b * width..(b + 1) * width];
                    let hs = b * n..(b + 1) * n;
                    let (r, z) = (&row[..n], &row[n..2 * n]);
                    let (d_rs, d_h_in, h_in) = (&d_reset_state[hs.clone()], &mut d_h_in[hs.clone()], &h_in[hs]);
                    let (da_r, da_z) = dprz[b * 2 * n..(b + 1) * 2 * n].split_at_mut(n);
                    for j in 0..n {
                        d_h_in[j] = d_rs[j] * r[j];
                        da_r[j] = d_rs[j] * h_in[j] * r[j] * (T::ONE - r[j]);
                        da_z[j] = da_z[j] * z[j] * (T::ONE - z[j]);
                    }
                    let (d_rz, db_ih, db_hh) =
                        (&dprz[b * 2 * n..(b + 1) * 2 * n], &mut d_b_ih[..2 * n], &mut d_b_hh[..2 * n]);
                    for j in 0..2 * n {
                        db_ih[j] += d_rz[j];
                        db_hh[j] += d_rz[j];
                    }
                    if let Some(norm) = &weights.norm {
                        for k in 0..2 {
                            let r = k * n..(k + 1) * n;
                            let grad = &mut dprz[b * 2 * n + k * n..b * 2 * n + (k + 1) * n];
                            layer_norm_backward(
                                grad,
                                &row[(HAT + k) * n..(HAT + k + 1) * n],
                                row[RSTD * n + k],
                                &norm.gates[r.clone()],
                                &mut d_norm[r],
                                None,
                            );
                        }
                    }
                    dpx[b * g..b * g + 2 * n].copy_from_slice(&dprz[b * 2 * n..(b + 1) * 2 * n]);
                }
            },
        );
        // ∂h_in += ∂P_rz · W_hrz;  ∂h_{t−1} += ∂h_in ⊙ d_h
        gemm(&mut d_h_in, Mat::new(dprz, batch, 2 * n), w_rz, true, Threads(1));
        if let Some(m) = options.state_mask {
            apply_row_mask(&mut d_h_in, m);
        }
        for (d, &v) in dh_next.iter_mut().zip(&d_h_in) {
            *d += v;
        }
        std::mem::swap(&mut dh_carry, &mut dh_next);
    }
    for (d, &v) in d_h0.iter_mut().zip(&dh_carry) {
        *d += v;
    }
    let rows_n = steps * batch;
    let mut masked_h = Vec::new();
    let h_used = masked_input(&cache.states[..rows_n * n], options.state_mask, batch, n, &mut masked_h);
    let (d_w_rz, d_w_n) = d_w_hh.split_at_mut(2 * n * n);
    gemm(d_w_rz, Mat::new(&d_proj_rz, rows_n, 2 * n).t(), Mat::new(h_used, rows_n, n), true, options.threads);
    gemm(d_w_n, Mat::new(&d_proj_n, rows_n, n).t(), Mat::new(&cache.reset_state, rows_n, n), true, options.threads);
    input_grads(dims, x, weights.w_ih, options, Mat::new(&d_proj_x, steps * batch, g), Some(d_w_ih), d_x);
}

/// Advances `h: [B,H]` by one step of `x: [B,D]` (inference; no cache kept).
pub fn step<T: Real>(batch: usize, input: usize, hidden: usize, x: &[T], h: &mut [T], weights: &CellWeights<'_, T>) {
    let dims = Dims { steps: 1, batch, input, hidden };
    let out = forward(dims, x, h, weights, &SequenceOptions::default(), None);
    h.copy_from_slice(&out.h_n);
}
