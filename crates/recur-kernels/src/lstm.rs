//! Long short-term memory (Hochreiter & Schmidhuber 1997), gate order i, f, g, o:
//!
//! i_t = σ(W_xi x_t + W_hi h_{t−1} + b_i)      (input gate)
//! f_t = σ(W_xf x_t + W_hf h_{t−1} + b_f)      (forget gate)
//! g_t = c̃_t = tanh(W_xc x_t + W_hc h_{t−1} + b_c)   (candidate content)
//! o_t = σ(W_xo x_t + W_ho h_{t−1} + b_o)      (output gate)
//! c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t
//! h_t = o_t ⊙ tanh(c_t)
//!
//! With layer norm (Ba et al. 2016) each gate's pre-activation becomes
//! LN(W_x x_t + W_h h_{t−1}) + b, and h_t = o_t ⊙ tanh(LN(c_t)) with LN(c) = γ_c⊙ĉ + β_c.

use crate::cell::{activate3, add_assign, CellGrads, CellWeights, GatedCell, NormWeights};
use crate::layer_norm::{
    layer_norm_backward, layer_norm_backward_many, layer_norm_moments_many, layer_norm_moments_of_sums,
    normalize_in_place, normalize_into, split, split_mut,
};
use crate::real::Real;

/// The LSTM cell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lstm;

/// Cache row layout, in units of H: `[i f g o | tanh(c̃) | â_i â_f â_g â_o | ĉ | rstd×4, rstd_c]`
/// (the parts after `tanh(c̃)` only with layer norm); c̃ = LN(c_t) or c_t.
const TANH_C: usize = 4;
const GATE_HAT: usize = 5;
const CELL_HAT: usize = 9;
const RSTD: usize = 10;

/// The compact layer-norm row, for sequences whose rows outgrow the caches: only
/// `[â_i â_f â_g â_o | ĉ | rstd×4, rstd_c]`, half the bytes; backward recomputes the gates
/// φ(γ⊙â + b) and tanh(γ_c⊙ĉ + β_c) from it (the same operations on the same values: the
/// same bits).
const COMPACT_CELL_HAT: usize = 4;
const COMPACT_RSTD: usize = 5;

impl GatedCell for Lstm {
    const GATES: usize = 4;
    const HAS_CELL_STATE: bool = true;
    const SHARED_GATES: usize = 4;

    fn norm_gate_chunks(&self) -> usize {
        4
    }

    fn cache_width(&self, hidden: usize, normalized: bool) -> usize {
        if normalized {
            RSTD * hidden + 5
        } else {
            GATE_HAT * hidden
        }
    }

    fn compact_cache_width(&self, hidden: usize, normalized: bool) -> Option<usize> {
        normalized.then_some(COMPACT_RSTD * hidden + 5)
    }

    #[inline(always)]
    fn forward_row<T: Real>(
        &self,
        hidden: usize,
        proj_x: &[T],
        proj_h: &mut [T],
        weights: &CellWeights<'_, T>,
        bias: &[T],
        _h_prev: &[T],
        c_prev: &[T],
        h_out: &mut [T],
        c_out: &mut [T],
        cache: &mut [T],
    ) {
        let n = hidden;
        let g = 4 * n;
        if let (Some(norm), true) = (&weights.norm, cache.len() < RSTD * n + 5) {
            return forward_row_compact(n, proj_x, proj_h, norm, bias, c_prev, h_out, c_out, cache);
        }
        // a = W_x x_t + W_h h_{t−1}, summed where it is read, never stored
        let (a, proj_x, bias) = (&proj_h[..g], &proj_x[..g], &bias[..g]);
        let (acts, rest) = cache.split_at_mut(TANH_C * n);
        let phi = gate_activation::<T>;
        match &weights.norm {
            Some(norm) => {
                // â = (a − μ)·rstd per gate, kept for backward, and φ(γ⊙â + b) in the same pass
                let (hats, stats) = rest[(GATE_HAT - TANH_C) * n..].split_at_mut(4 * n);
                let mean =
                    layer_norm_moments_of_sums::<T, 4>(split(a, n), split(proj_x, n).map(Some), &mut stats[n..n + 4]);
                for k in 0..4 {
                    let r = k * n..(k + 1) * n;
                    let (a, x, gamma, bias) =
                        (&a[r.clone()], &proj_x[r.clone()], &norm.gates[r.clone()], &bias[r.clone()]);
                    normalize_into(
                        &mut acts[r.clone()],
                        &mut hats[r],
                        a,
                        Some(x),
                        mean[k],
                        stats[n + k],
                        gamma,
                        bias,
                        phi(k),
                    );
                }
            }
            None => {
                for k in 0..4 {
                    let r = k * n..(k + 1) * n;
                    activate3(&mut acts[r.clone()], &a[r.clone()], &proj_x[r.clone()], &bias[r], phi(k));
                }
            }
        }
        let (i, f, gg, o) = (&acts[..n], &acts[n..2 * n], &acts[2 * n..3 * n], &acts[3 * n..g]);
        let (c_prev, c_out, h_out) = (&c_prev[..n], &mut c_out[..n], &mut h_out[..n]);
        let (tanh_c, rest) = rest.split_at_mut(n);
        match &weights.norm {
            None => {
                // c_t = f ⊙ c_{t−1} + i ⊙ g,  h_t = o ⊙ tanh(c_t), in one pass
                for j in 0..n {
                    let c = f[j] * c_prev[j] + i[j] * gg[j];
                    c_out[j] = c;
                    tanh_c[j] = c.tanh();
                    h_out[j] = o[j] * tanh_c[j];
                }
            }
            Some(norm) => {
                // c_t = f ⊙ c_{t−1} + i ⊙ g
                for j in 0..n {
                    c_out[j] = f[j] * c_prev[j] + i[j] * gg[j];
                }
                // tanh(LN(c_t)), LN(c_t) = γ_c ⊙ ĉ + β_c, normalised and activated in one pass
                let (gamma, beta) = (&norm.cell[..n], &norm.cell[n..2 * n]);
                let (c_hat, stats) = rest[(CELL_HAT - GATE_HAT) * n..].split_at_mut(n);
                let [m] = layer_norm_moments_many::<T, 1>([&c_out[..n]], &mut stats[4..5]);
                normalize_into(&mut tanh_c[..n], c_hat, c_out, None, m, stats[4], gamma, beta, T::tanh);
                // h_t = o ⊙ tanh(c̃_t)
                for j in 0..n {
                    h_out[j] = o[j] * tanh_c[j];
                }
            }
        }
    }

    #[inline(always)]
    fn backward_row<T: Real>(
        &self,
        hidden: usize,
        dh: &[T],
        dc: &[T],
        cache: &[T],
        _h_prev: &[T],
        c_prev: &[T],
        _h_cur: &[T],
        weights: &CellWeights<'_, T>,
        _d_proj_x: &mut [T],
        d_proj_h: &mut [T],
        dh_prev: &mut [T],
        dc_prev: &mut [T],
        grads: &mut CellGrads<'_, T>,
    ) {
        let n = hidden;
        let g = 4 * n;
        if let (Some(norm), true) = (&weights.norm, cache.len() < RSTD * n + 5) {
            return backward_row_compact(n, dh, dc, cache, c_prev, weights, norm, d_proj_h, dh_prev, dc_prev, grads);
        }
        let (i, f, gg, o) = (&cache[..n], &cache[n..2 * n], &cache[2 * n..3 * n], &cache[3 * n..g]);
        let tanh_c = &cache[TANH_C * n..(TANH_C + 1) * n];
        let (dh, dc, c_prev, dc_prev) = (&dh[..n], &dc[..n], &c_prev[..n], &mut dc_prev[..n]);
        let Some(norm) = &weights.norm else {
            // without layer norm, one pass: ∂c_t = ∂h_t ⊙ o ⊙ (1 − tanh²(c_t)) + ∂c from t+1,
            // then the gates' pre-activations and their bias; h_{t−1} reaches h_t only
            // through the recurrent product, so ∂h_{t−1} starts at zero
            let (da_i, rest) = d_proj_h[..g].split_at_mut(n);
            let (da_f, rest) = rest.split_at_mut(n);
            let (da_g, da_o) = rest.split_at_mut(n);
            for j in 0..n {
                let dct = dh[j] * o[j] * (T::ONE - tanh_c[j] * tanh_c[j]) + dc[j];
                dc_prev[j] = dct * f[j];
                dh_prev[j] = T::ZERO;
                [da_i[j], da_f[j], da_g[j], da_o[j]] =
                    gate_derivatives(dct, dh[j], [i[j], f[j], gg[j], o[j]], c_prev[j], tanh_c[j]);
            }
            add_assign(&mut grads.b_ih[..g], &d_proj_h[..g]);
            return;
        };
        // inverts h_t = o ⊙ tanh(c̃): ∂c̃ through tanh (dh_prev is scratch; zeroed before return)
        let d_c_total = &mut dh_prev[..n];
        for j in 0..n {
            d_c_total[j] = dh[j] * o[j] * (T::ONE - tanh_c[j] * tanh_c[j]);
        }
        // inverts c̃ = γ_c ⊙ ĉ + β_c
        let (d_gamma, d_beta) = grads.norm_cell.split_at_mut(n);
        let c_hat = &cache[CELL_HAT * n..(CELL_HAT + 1) * n];
        layer_norm_backward(d_c_total, c_hat, cache[RSTD * n + 4], &norm.cell[..n], d_gamma, Some(d_beta));
        // inverts c_t = f ⊙ c_{t−1} + i ⊙ g and the gate activations
        let (da_i, rest) = d_proj_h[..g].split_at_mut(n);
        let (da_f, rest) = rest.split_at_mut(n);
        let (da_g, da_o) = rest.split_at_mut(n);
        for j in 0..n {
            let dct = d_c_total[j] + dc[j];
            dc_prev[j] = dct * f[j];
            [da_i[j], da_f[j], da_g[j], da_o[j]] =
                gate_derivatives(dct, dh[j], [i[j], f[j], gg[j], o[j]], c_prev[j], tanh_c[j]);
        }
        // ∂b (the gates' shift after the norm) accumulated in the norm's first pass
        layer_norm_backward_many::<T, 4>(
            split_mut(&mut d_proj_h[..g], n),
            split(&cache[GATE_HAT * n..(GATE_HAT + 4) * n], n),
            &cache[RSTD * n..RSTD * n + 4],
            split(&norm.gates[..g], n),
            split_mut(&mut grads.norm_gates[..g], n),
            split_mut(&mut grads.b_ih[..g], n).map(Some),
        );
        d_c_total.iter_mut().for_each(|v| *v = T::ZERO);
    }
}

/// [`Lstm::forward_row`] with layer norm into a compact row `[â ×4 | ĉ | rstd ×5]`: the
/// gates φ(γ⊙â + b) are written over a in W_h h_{t−1}'s row (read there once, not read
/// again) and tanh(c̃) into h_t's row.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_row_compact<T: Real>(
    n: usize,
    proj_x: &[T],
    proj_h: &mut [T],
    norm: &NormWeights<'_, T>,
    bias: &[T],
    c_prev: &[T],
    h_out: &mut [T],
    c_out: &mut [T],
    cache: &mut [T],
) {
    let g = 4 * n;
    let (proj_x, bias, acts) = (&proj_x[..g], &bias[..g], &mut proj_h[..g]);
    let (c_prev, c_out, h_out) = (&c_prev[..n], &mut c_out[..n], &mut h_out[..n]);
    let (hats, rest) = cache.split_at_mut(COMPACT_CELL_HAT * n);
    let (c_hat, stats) = rest.split_at_mut(n);
    let mean = layer_norm_moments_of_sums::<T, 4>(split(acts, n), split(proj_x, n).map(Some), &mut stats[..4]);
    for k in 0..4 {
        let r = k * n..(k + 1) * n;
        let phi = gate_activation::<T>(k);
        let (x, gamma, bias) = (&proj_x[r.clone()], &norm.gates[r.clone()], &bias[r.clone()]);
        normalize_in_place(&mut acts[r.clone()], &mut hats[r], x, mean[k], stats[k], gamma, bias, phi);
    }
    let (i, f, gg, o) = (&acts[..n], &acts[n..2 * n], &acts[2 * n..3 * n], &acts[3 * n..g]);
    for j in 0..n {
        c_out[j] = f[j] * c_prev[j] + i[j] * gg[j];
    }
    let (gamma, beta) = (&norm.cell[..n], &norm.cell[n..2 * n]);
    let [m] = layer_norm_moments_many::<T, 1>([&c_out[..n]], &mut stats[4..5]);
    normalize_into(h_out, c_hat, c_out, None, m, stats[4], gamma, beta, T::tanh);
    for j in 0..n {
        h_out[j] *= o[j];
    }
}

/// [`Lstm::backward_row`] with layer norm from a compact row: the forward's gates
/// φ(γ⊙â + b_ih + b_hh) are recomputed into the row of their gradients and tanh(c̃) =
/// tanh(γ_c⊙ĉ + β_c) into ∂c_{t−1}'s, each then overwritten by its own derivative.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_row_compact<T: Real>(
    n: usize,
    dh: &[T],
    dc: &[T],
    cache: &[T],
    c_prev: &[T],
    weights: &CellWeights<'_, T>,
    norm: &NormWeights<'_, T>,
    d_proj_h: &mut [T],
    dh_prev: &mut [T],
    dc_prev: &mut [T],
    grads: &mut CellGrads<'_, T>,
) {
    let g = 4 * n;
    let (dh, dc, c_prev, dc_prev) = (&dh[..n], &dc[..n], &c_prev[..n], &mut dc_prev[..n]);
    let hats = &cache[..COMPACT_CELL_HAT * n];
    let c_hat = &cache[COMPACT_CELL_HAT * n..(COMPACT_CELL_HAT + 1) * n];
    let rstd = &cache[COMPACT_RSTD * n..COMPACT_RSTD * n + 5];
    let (gamma_c, beta_c) = (&norm.cell[..n], &norm.cell[n..2 * n]);
    let acts = &mut d_proj_h[..g];
    for k in 0..4 {
        let r = k * n..(k + 1) * n;
        let phi = gate_activation::<T>(k);
        let (act, hat, gamma) = (&mut acts[r.clone()], &hats[r.clone()], &norm.gates[r.clone()]);
        let (b_ih, b_hh) = (&weights.b_ih[r.clone()], &weights.b_hh[r]);
        for j in 0..n {
            act[j] = phi(gamma[j] * hat[j] + (b_ih[j] + b_hh[j]));
        }
    }
    for j in 0..n {
        dc_prev[j] = (gamma_c[j] * c_hat[j] + beta_c[j]).tanh();
    }
    // as in Lstm::backward_row with layer norm, the gates and tanh(c̃) read from where
    // they were recomputed
    let d_c_total = &mut dh_prev[..n];
    for j in 0..n {
        d_c_total[j] = dh[j] * acts[3 * n + j] * (T::ONE - dc_prev[j] * dc_prev[j]);
    }
    let (d_gamma, d_beta) = grads.norm_cell.split_at_mut(n);
    layer_norm_backward(d_c_total, c_hat, rstd[4], gamma_c, d_gamma, Some(d_beta));
    let (da_i, rest) = acts.split_at_mut(n);
    let (da_f, rest) = rest.split_at_mut(n);
    let (da_g, da_o) = rest.split_at_mut(n);
    for j in 0..n {
        let dct = d_c_total[j] + dc[j];
        let (i, f, gg, o, tanh_c) = (da_i[j], da_f[j], da_g[j], da_o[j], dc_prev[j]);
        dc_prev[j] = dct * f;
        [da_i[j], da_f[j], da_g[j], da_o[j]] = gate_derivatives(dct, dh[j], [i, f, gg, o], c_prev[j], tanh_c);
    }
    layer_norm_backward_many::<T, 4>(
        split_mut(&mut d_proj_h[..g], n),
        split(hats, n),
        &rstd[..4],
        split(&norm.gates[..g], n),
        split_mut(&mut grads.norm_gates[..g], n),
        split_mut(&mut grads.b_ih[..g], n).map(Some),
    );
    d_c_total.iter_mut().for_each(|v| *v = T::ZERO);
}

/// The activation of gate `k` (order i, f, g, o): i, f, o = σ(·), g = tanh(·).
#[inline(always)]
fn gate_activation<T: Real>(k: usize) -> fn(T) -> T {
    if k == 2 {
        T::tanh
    } else {
        T::sigmoid
    }
}

/// One unit's `[∂a_i, ∂a_f, ∂a_g, ∂a_o]` from ∂c_t (all of it, through h_t and from t+1)
/// and ∂h_t: inverts c_t = f ⊙ c_{t−1} + i ⊙ g, h_t = o ⊙ tanh(c̃_t) and the activations
/// (σ' = σ(1 − σ), tanh' = 1 − tanh²).
#[inline(always)]
fn gate_derivatives<T: Real>(dct: T, dh: T, [i, f, g, o]: [T; 4], c_prev: T, tanh_c: T) -> [T; 4] {
    [
        dct * g * i * (T::ONE - i),
        dct * c_prev * f * (T::ONE - f),
        dct * i * (T::ONE - g * g),
        dh * tanh_c * o * (T::ONE - o),
    ]
}
