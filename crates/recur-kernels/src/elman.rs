//! Elman's simple recurrent network (SRN, 1990), the deck's "RNN padrão":
//!
//! h_t = φ(W_xh x_t + W_hh h_{t−1} + b_h),  φ ∈ {tanh, ReLU}
//!
//! In PyTorch's layout `W_xh` is `weight_ih` and `b_h = b_ih + b_hh`. With layer norm:
//! h_t = φ(LN(W_xh x_t + W_hh h_{t−1}) + b_h).

use crate::cell::{CellGrads, CellWeights, GatedCell};
use crate::layer_norm::{layer_norm_backward, layer_norm_moments_many, normalize_into};
use crate::real::Real;

/// φ of an Elman cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Tanh,
    Relu,
}

impl Activation {
    #[inline(always)]
    pub fn apply<T: Real>(self, a: T) -> T {
        match self {
            Activation::Tanh => a.tanh(),
            Activation::Relu => a.relu(),
        }
    }

    /// φ'(a) from the output y = φ(a): 1 − y² for tanh, 1 if y > 0 else 0 for ReLU.
    #[inline(always)]
    pub fn derivative_from_output<T: Real>(self, y: T) -> T {
        match self {
            Activation::Tanh => T::ONE - y * y,
            Activation::Relu => {
                if y > T::ZERO {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
        }
    }
}

/// The Elman cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elman {
    pub activation: Activation,
}

impl GatedCell for Elman {
    const GATES: usize = 1;
    const HAS_CELL_STATE: bool = false;
    const SHARED_GATES: usize = 1;

    fn norm_gate_chunks(&self) -> usize {
        1
    }

    /// With layer norm: `[â (H), rstd (1)]`; without: nothing (h_t itself suffices).
    fn cache_width(&self, hidden: usize, normalized: bool) -> usize {
        if normalized {
            hidden + 1
        } else {
            0
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
        _h_prev: &[T],
        _c_prev: &[T],
        h_out: &mut [T],
        _c_out: &mut [T],
        cache: &mut [T],
    ) {
        // a = W_xh x_t + W_hh h_{t−1}
        let a = &mut proj_h[..hidden];
        for (v, &x) in a.iter_mut().zip(proj_x) {
            *v += x;
        }
        let (bias, h_out) = (&bias[..hidden], &mut h_out[..hidden]);
        match &weights.norm {
            // h_t = φ(LN(a) + b_h), normalised and activated in one pass
            Some(norm) => {
                let (a_hat, rstd) = cache.split_at_mut(hidden);
                let [mean] = layer_norm_moments_many::<T, 1>([a], rstd);
                let phi = |v| self.activation.apply(v);
                normalize_into(h_out, a_hat, a, None, mean, rstd[0], &norm.gates[..hidden], bias, phi);
            }
            // h_t = φ(a + b_h)
            None => {
                for j in 0..hidden {
                    h_out[j] = self.activation.apply(a[j] + bias[j]);
                }
            }
        }
    }

    #[inline(always)]
    fn backward_row<T: Real>(
        &self,
        hidden: usize,
        dh: &[T],
        _dc: &[T],
        cache: &[T],
        _h_prev: &[T],
        _c_prev: &[T],
        h_cur: &[T],
        weights: &CellWeights<'_, T>,
        _d_proj_x: &mut [T],
        d_proj_h: &mut [T],
        dh_prev: &mut [T],
        _dc_prev: &mut [T],
        grads: &mut CellGrads<'_, T>,
    ) {
        // inverts h_t = φ(a + b_h): ∂a = ∂h ⊙ φ'(a)
        let (dh, h_cur, d_a, d_b) =
            (&dh[..hidden], &h_cur[..hidden], &mut d_proj_h[..hidden], &mut grads.b_ih[..hidden]);
        for j in 0..hidden {
            let da = dh[j] * self.activation.derivative_from_output(h_cur[j]);
            d_a[j] = da;
            d_b[j] += da;
        }
        if let Some(norm) = &weights.norm {
            let (a_hat, rstd) = cache.split_at(hidden);
            layer_norm_backward(
                &mut d_proj_h[..hidden],
                a_hat,
                rstd[0],
                &norm.gates[..hidden],
                &mut grads.norm_gates[..hidden],
                None,
            );
        }
        dh_prev.iter_mut().for_each(|v| *v = T::ZERO);
    }
}
