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

use crate::cell::{activate3, add_assign, CellGrads, CellWeights, GatedCell};
use crate::layer_norm::{layer_norm_backward_many, layer_norm_moments_of_sums, normalize_into, split, split_mut};
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
        // every buffer sliced to its length first: the loops then carry no bounds checks
        // and vectorise (indexing `cache[HN * n + j]` kept them scalar)
        let (gates, rest) = cache.split_at_mut(2 * n);
        let (cand, rest) = rest.split_at_mut(n);
        let (hn, rest) = rest[(HN - 3) * n..].split_at_mut(n);
        let (p_rz, p_n) = proj_h[..3 * n].split_at(2 * n);
        let (x_rz, x_n) = proj_x[..3 * n].split_at(2 * n);
        let (b_rz, b_in, b_hn) = (&bias[..2 * n], &weights.b_ih[2 * n..3 * n], &weights.b_hh[2 * n..3 * n]);
        let (h_prev, h_out) = (&h_prev[..n], &mut h_out[..n]);
        match &weights.norm {
            None => {
                // r, z = σ(W_i x + W_h h + b): the two products summed where they are read
                activate3(gates, p_rz, x_rz, b_rz, T::sigmoid);
                for j in 0..n {
                    hn[j] = p_n[j] + b_hn[j];
                    h_out[j] = x_n[j] + b_in[j];
                }
            }
            Some(norm) => {
                // moments of r's and z's summed products and of the candidate's two
                // products, side by side; then each normalised and carried on in one pass
                let (hats, stats) = rest[(HAT - 4) * n..].split_at_mut(4 * n);
                let rstd = &mut stats[(RSTD - HAT - 4) * n..(RSTD - HAT - 4) * n + 4];
                let [p_r, p_z] = split(p_rz, n);
                let [x_r, x_z] = split(x_rz, n);
                let mean =
                    layer_norm_moments_of_sums::<T, 4>([p_r, p_z, x_n, p_n], [Some(x_r), Some(x_z), None, None], rstd);
                let [g_r, g_z, g_nx, g_nh] = split(&norm.gates[..4 * n], n);
                let [hat_r, hat_z, hat_nx, hat_nh] = split_mut(hats, n);
                let [b_r, b_z] = split(b_rz, n);
                let (act_r, act_z) = gates.split_at_mut(n);
                normalize_into(act_r, hat_r, p_r, Some(x_r), mean[0], rstd[0], g_r, b_r, T::sigmoid);
                normalize_into(act_z, hat_z, p_z, Some(x_z), mean[1], rstd[1], g_z, b_z, T::sigmoid);
                // LN(W_in x) + b_in and LN(W_hn h) + b_hn
                normalize_into(h_out, hat_nx, x_n, None, mean[2], rstd[2], g_nx, b_in, |v| v);
                normalize_into(hn, hat_nh, p_n, None, mean[3], rstd[3], g_nh, b_hn, |v| v);
            }
        }
        // n_t = tanh(x_n + b_in + r ⊙ h_n), x_n + b_in already in h_out; h_t = (1 − z) ⊙ n_t + z ⊙ h_{t−1}
        let (r, z) = gates.split_at(n);
        for j in 0..n {
            cand[j] = (h_out[j] + r[j] * hn[j]).tanh();
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
        let [db_r, db_z, db_in] = split_mut(&mut grads.b_ih[..3 * n], n);
        let db_hn = &mut grads.b_hh[2 * n..3 * n];
        match &weights.norm {
            // with layer norm, accumulated in the norm's first pass
            Some(norm) => layer_norm_backward_many::<T, 4>(
                [da_r, da_z, da_n, d_hn],
                split(&cache[HAT * n..(HAT + 4) * n], n),
                &cache[RSTD * n..RSTD * n + 4],
                split(&norm.gates[..4 * n], n),
                split_mut(&mut grads.norm_gates[..4 * n], n),
                [Some(db_r), Some(db_z), Some(db_in), Some(db_hn)],
            ),
            None => {
                add_assign(db_r, da_r);
                add_assign(db_z, da_z);
                add_assign(db_in, da_n);
                add_assign(db_hn, d_hn);
            }
        }
    }
}
