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

use crate::cell::{CellGrads, CellWeights, GatedCell};
use crate::layer_norm::{layer_norm_backward, layer_norm_forward};
use crate::real::Real;

/// The LSTM cell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lstm;

/// Cache row layout: `[i f g o | tanh(c̃) | â_i â_f â_g â_o | ĉ | rstd×4, rstd_c]`
/// (the parts after `tanh(c̃)` only with layer norm).
const ACT: usize = 0;
const TANH_C: usize = 4;
const GATE_HAT: usize = 5;
const CELL_HAT: usize = 9;
const RSTD: usize = 10;

impl GatedCell for Lstm {
    const GATES: usize = 4;
    const HAS_CELL_STATE: bool = true;

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

    #[inline(always)]
    fn forward_row<T: Real>(
        &self,
        hidden: usize,
        proj_x: &[T],
        proj_h: &mut [T],
        weights: &CellWeights<'_, T>,
        _h_prev: &[T],
        c_prev: &[T],
        h_out: &mut [T],
        c_out: &mut [T],
        cache: &mut [T],
    ) {
        let n = hidden;
        let g = 4 * n;
        let a = &mut proj_h[..g];
        for (v, &x) in a.iter_mut().zip(proj_x) {
            *v += x;
        }
        if let Some(norm) = &weights.norm {
            for k in 0..4 {
                let hat = &mut cache[(GATE_HAT + k) * n..(GATE_HAT + k + 1) * n];
                hat.copy_from_slice(&a[k * n..(k + 1) * n]);
                let rstd = layer_norm_forward(hat, &norm.gates[k * n..(k + 1) * n], &mut a[k * n..(k + 1) * n]);
                cache[RSTD * n + k] = rstd;
            }
        }
        for j in 0..g {
            let pre = a[j] + weights.b_ih[j] + weights.b_hh[j];
            cache[ACT + j] = if (2 * n..3 * n).contains(&j) { pre.tanh() } else { pre.sigmoid() };
        }
        // c_t = f ⊙ c_{t−1} + i ⊙ g
        for j in 0..n {
            c_out[j] = cache[n + j] * c_prev[j] + cache[j] * cache[2 * n + j];
        }
        match &weights.norm {
            Some(norm) => {
                // LN(c_t) = γ_c ⊙ ĉ + β_c; h_out holds γ_c ⊙ ĉ until h_t overwrites it
                let (gamma, beta) = norm.cell.split_at(n);
                let c_hat = &mut cache[CELL_HAT * n..(CELL_HAT + 1) * n];
                c_hat.copy_from_slice(c_out);
                cache[RSTD * n + 4] = layer_norm_forward(c_hat, gamma, h_out);
                for j in 0..n {
                    cache[TANH_C * n + j] = (h_out[j] + beta[j]).tanh();
                }
            }
            None => {
                for j in 0..n {
                    cache[TANH_C * n + j] = c_out[j].tanh();
                }
            }
        }
        // h_t = o ⊙ tanh(c_t)
        for j in 0..n {
            h_out[j] = cache[3 * n + j] * cache[TANH_C * n + j];
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
        d_proj_x: &mut [T],
        d_proj_h: &mut [T],
        dh_prev: &mut [T],
        dc_prev: &mut [T],
        grads: &mut CellGrads<'_, T>,
    ) {
        let n = hidden;
        let (i, f, gg, o) = (&cache[..n], &cache[n..2 * n], &cache[2 * n..3 * n], &cache[3 * n..4 * n]);
        let tanh_c = &cache[TANH_C * n..(TANH_C + 1) * n];
        // inverts h_t = o ⊙ tanh(c̃): ∂c̃ through tanh, ∂o
        let d_c_total = &mut dh_prev[..n]; // scratch; zeroed before return
        for j in 0..n {
            d_c_total[j] = dh[j] * o[j] * (T::ONE - tanh_c[j] * tanh_c[j]);
        }
        match &weights.norm {
            Some(norm) => {
                let (gamma, _) = norm.cell.split_at(n);
                let (d_gamma, d_beta) = grads.norm_cell.split_at_mut(n);
                for j in 0..n {
                    d_beta[j] += d_c_total[j];
                }
                let c_hat = &cache[CELL_HAT * n..(CELL_HAT + 1) * n];
                let rstd = cache[RSTD * n + 4];
                layer_norm_backward(d_c_total, c_hat, rstd, gamma, d_gamma);
                for j in 0..n {
                    d_c_total[j] += dc[j];
                }
            }
            None => {
                for j in 0..n {
                    d_c_total[j] += dc[j];
                }
            }
        }
        // inverts c_t = f ⊙ c_{t−1} + i ⊙ g and the gate activations
        for j in 0..n {
            let dct = d_c_total[j];
            dc_prev[j] = dct * f[j];
            d_proj_h[j] = dct * gg[j] * i[j] * (T::ONE - i[j]);
            d_proj_h[n + j] = dct * c_prev[j] * f[j] * (T::ONE - f[j]);
            d_proj_h[2 * n + j] = dct * i[j] * (T::ONE - gg[j] * gg[j]);
            d_proj_h[3 * n + j] = dh[j] * tanh_c[j] * o[j] * (T::ONE - o[j]);
        }
        for j in 0..4 * n {
            grads.b_ih[j] += d_proj_h[j];
            grads.b_hh[j] += d_proj_h[j];
        }
        if let Some(norm) = &weights.norm {
            for k in 0..4 {
                let r = k * n..(k + 1) * n;
                let hat = &cache[(GATE_HAT + k) * n..(GATE_HAT + k + 1) * n];
                layer_norm_backward(
                    &mut d_proj_h[r.clone()],
                    hat,
                    cache[RSTD * n + k],
                    &norm.gates[r.clone()],
                    &mut grads.norm_gates[r],
                );
            }
        }
        d_proj_x[..4 * n].copy_from_slice(&d_proj_h[..4 * n]);
        dh_prev.iter_mut().for_each(|v| *v = T::ZERO);
    }
}
