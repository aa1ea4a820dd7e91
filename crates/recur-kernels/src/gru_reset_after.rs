//! GRU with the reset gate applied *after* the recurrent product (PyTorch's and
//! cuDNN's convention, the default), gate order r, z, n:
//!
//! r_t = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)
//! z_t = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)
//! n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t−1} + b_hn))
//! h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}
//!
//! With layer norm: r and z normalise their summed pre-activation; the candidate
//! normalises its two products separately, n_t = tanh(LN(W_in x_t) + b_in +
//! r_t ⊙ (LN(W_hn h_{t−1}) + b_hn)), so that r_t still scales only the recurrent part.
//! (The deck's reset-before form is [`crate::gru_reset_before`].)

use crate::cell::{CellGrads, CellWeights, GatedCell};
use crate::layer_norm::{layer_norm_backward_many, layer_norm_forward_many, split, split_mut};
use crate::real::Real;

/// The GRU cell, reset gate after the recurrent product.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GruResetAfter;

/// Cache row layout: `[r z n | W_hn h + b_hn | â_r â_z â_nx â_nh | rstd×4]`
/// (the last two parts only with layer norm).
const HN: usize = 3;
const HAT: usize = 4;
const RSTD: usize = 8;

impl GatedCell for GruResetAfter {
    const GATES: usize = 3;
    const HAS_CELL_STATE: bool = false;
    const SHARED_GATES: usize = 2;

    fn norm_gate_chunks(&self) -> usize {
        4
    }

    fn cache_width(&self, hidden: usize, normalized: bool) -> usize {
        if normalized {
            RSTD * hidden + 4
        } else {
            HAT * hidden
        }
    }

    #[inline(always)]
    fn forward_row<T: Real>(
        &self,
        hidden: usize,
        proj_x: &[T],
        proj_h: &mut [T],
        weights: &CellWeights<'_, T>,
        bias: &[T],
        h_prev: &[T],
        _c_prev: &[T],
        h_out: &mut [T],
        _c_out: &mut [T],
        cache: &mut [T],
    ) {
        let n = hidden;
        let (b_ih, b_hh) = (weights.b_ih, weights.b_hh);
        // r, z pre-activations: W_i x + W_h h, summed; n's two products stay apart.
        for j in 0..2 * n {
            proj_h[j] += proj_x[j];
        }
        // xn: the candidate's input product, kept in h_out until the end.
        h_out[..n].copy_from_slice(&proj_x[2 * n..3 * n]);
        if let Some(norm) = &weights.norm {
            // r, z, the candidate's input and recurrent products, normalised side by side
            let (hats, rest) = cache[HAT * n..].split_at_mut(4 * n);
            let [r, z, hn] = split_mut(&mut proj_h[..3 * n], n);
            layer_norm_forward_many::<T, 4>(
                [r, z, &mut h_out[..n], hn],
                split(&norm.gates[..4 * n], n),
                split_mut(hats, n),
                &mut rest[(RSTD - HAT - 4) * n..(RSTD - HAT - 4) * n + 4],
            );
        }
        for j in 0..2 * n {
            cache[j] = (proj_h[j] + bias[j]).sigmoid();
        }
        for j in 0..n {
            let hn = proj_h[2 * n + j] + b_hh[2 * n + j];
            cache[HN * n + j] = hn;
            // n_t = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
            let cand = (h_out[j] + b_ih[2 * n + j] + cache[j] * hn).tanh();
            cache[2 * n + j] = cand;
            // h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
            let z = cache[n + j];
            h_out[j] = (T::ONE - z) * cand + z * h_prev[j];
        }
    }

    #[inline(always)]
    fn backward_row<T: Real>(
        &self,
        hidden: usize,
        dh: &[T],
        _dc: &[T],
        cache: &[T],
        h_prev: &[T],
        _c_prev: &[T],
        _h_cur: &[T],
        weights: &CellWeights<'_, T>,
        d_proj_x: &mut [T],
        d_proj_h: &mut [T],
        dh_prev: &mut [T],
        _dc_prev: &mut [T],
        grads: &mut CellGrads<'_, T>,
    ) {
        let n = hidden;
        for j in 0..n {
            let (r, z, cand, hn) = (cache[j], cache[n + j], cache[2 * n + j], cache[HN * n + j]);
            // inverts h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
            let d_cand = dh[j] * (T::ONE - z);
            let dz = dh[j] * (h_prev[j] - cand);
            dh_prev[j] = dh[j] * z;
            // inverts n_t = tanh(xn + b_in + r ⊙ hn)
            let da_n = d_cand * (T::ONE - cand * cand);
            let dr = da_n * hn;
            let d_hn = da_n * r;
            let da_r = dr * r * (T::ONE - r);
            let da_z = dz * z * (T::ONE - z);
            d_proj_h[j] = da_r;
            d_proj_h[n + j] = da_z;
            d_proj_h[2 * n + j] = d_hn;
            d_proj_x[j] = da_n;
        }
        for j in 0..2 * n {
            grads.b_ih[j] += d_proj_h[j];
        }
        for j in 0..n {
            grads.b_ih[2 * n + j] += d_proj_x[j];
            grads.b_hh[2 * n + j] += d_proj_h[2 * n + j];
        }
        if let Some(norm) = &weights.norm {
            let [r, z, hn] = split_mut(&mut d_proj_h[..3 * n], n);
            layer_norm_backward_many::<T, 4>(
                [r, z, &mut d_proj_x[..n], hn],
                split(&cache[HAT * n..(HAT + 4) * n], n),
                &cache[RSTD * n..RSTD * n + 4],
                split(&norm.gates[..4 * n], n),
                split_mut(&mut grads.norm_gates[..4 * n], n),
            );
        }
    }
}
