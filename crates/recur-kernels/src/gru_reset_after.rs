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

use crate::cell::{add_assign, CellGrads, CellWeights, GatedCell};
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
        // r, z pre-activations: W_i x + W_h h, summed; n's two products stay apart.
        add_assign(&mut proj_h[..2 * n], &proj_x[..2 * n]);
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
        // every buffer sliced to its length first: the loops then carry no bounds checks
        // and vectorise (indexing `cache[HN * n + j]` kept them scalar)
        let (gates, rest) = cache.split_at_mut(2 * n);
        let (pre, bias) = (&proj_h[..2 * n], &bias[..2 * n]);
        for j in 0..2 * n {
            gates[j] = (pre[j] + bias[j]).sigmoid();
        }
        let (r, z) = gates.split_at(n);
        let (cand, rest) = rest.split_at_mut(n);
        let hn = &mut rest[(HN - 3) * n..(HN - 2) * n];
        let (p_hn, b_hn, b_in) = (&proj_h[2 * n..3 * n], &weights.b_hh[2 * n..3 * n], &weights.b_ih[2 * n..3 * n]);
        let (h_prev, h_out) = (&h_prev[..n], &mut h_out[..n]);
        for j in 0..n {
            hn[j] = p_hn[j] + b_hn[j];
            // n_t = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
            cand[j] = (h_out[j] + b_in[j] + r[j] * hn[j]).tanh();
            // h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
            h_out[j] = (T::ONE - z[j]) * cand[j] + z[j] * h_prev[j];
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
        // every buffer sliced to its length first: the loops then carry no bounds checks
        // and vectorise (indexing `cache[HN * n + j]` kept them scalar)
        let (r, z, cand, hn) = (&cache[..n], &cache[n..2 * n], &cache[2 * n..3 * n], &cache[HN * n..(HN + 1) * n]);
        let (dh, h_prev, dh_prev) = (&dh[..n], &h_prev[..n], &mut dh_prev[..n]);
        let [da_r, da_z, d_hn] = split_mut(&mut d_proj_h[..3 * n], n);
        let da_n = &mut d_proj_x[..n];
        for j in 0..n {
            // inverts h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
            let d_cand = dh[j] * (T::ONE - z[j]);
            let dz = dh[j] * (h_prev[j] - cand[j]);
            dh_prev[j] = dh[j] * z[j];
            // inverts n_t = tanh(xn + b_in + r ⊙ hn)
            let d_a = d_cand * (T::ONE - cand[j] * cand[j]);
            let dr = d_a * hn[j];
            d_hn[j] = d_a * r[j];
            da_r[j] = dr * r[j] * (T::ONE - r[j]);
            da_z[j] = dz * z[j] * (T::ONE - z[j]);
            da_n[j] = d_a;
        }
        // ∂b of r and z into b_ih alone (shared blocks); the candidate's two biases apart
        let (db_ih, db_hh) = (&mut grads.b_ih[..3 * n], &mut grads.b_hh[2 * n..3 * n]);
        add_assign(&mut db_ih[..n], da_r);
        add_assign(&mut db_ih[n..2 * n], da_z);
        add_assign(&mut db_ih[2 * n..], da_n);
        add_assign(db_hh, d_hn);
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
