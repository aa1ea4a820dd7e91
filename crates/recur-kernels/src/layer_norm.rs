//! Layer normalisation of one gate pre-activation (Ba et al. 2016), as the deck writes it:
//!
//! LN(a) = γ ⊙ (a − μ) / √(σ² + ε),  μ, σ² the mean and (biased) variance of `a` over its H units.
//!
//! The shift β is the gate's own bias `b`, added by the caller after normalisation:
//! i_t = σ(LN(W_i[h_{t−1}, x_t]) + b_i).

use crate::real::Real;

/// ε inside the square root, PyTorch's `nn.LayerNorm` default.
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// Normalises `a` in place to â = (a − μ)/√(σ²+ε), writes γ⊙â to `out`, and returns
/// 1/√(σ²+ε) (what backward needs besides â).
///
/// `a`, `gamma`, `out`: `[H]`.
#[inline(always)]
pub fn layer_norm_forward<T: Real>(a: &mut [T], gamma: &[T], out: &mut [T]) -> T {
    let n = T::from_f64(a.len() as f64);
    let mut sum = T::ZERO;
    for &v in a.iter() {
        sum += v;
    }
    let mean = sum / n;
    let mut var = T::ZERO;
    for &v in a.iter() {
        let d = v - mean;
        var += d * d;
    }
    let rstd = T::ONE / (var / n + T::from_f64(LAYER_NORM_EPS)).sqrt();
    for ((v, &g), o) in a.iter_mut().zip(gamma).zip(out.iter_mut()) {
        *v = (*v - mean) * rstd;
        *o = g * *v;
    }
    rstd
}

/// Inverts [`layer_norm_forward`] in place: `d` holds ∂L/∂(γ⊙â) on entry and
/// ∂L/∂a = rstd·(dâ − mean(dâ) − â·mean(dâ⊙â)) on return, where dâ = d⊙γ;
/// ∂L/∂γ is accumulated into `d_gamma`.
///
/// `d` (in-out), `a_hat`, `gamma`, `d_gamma` (accumulated): `[H]`.
#[inline(always)]
pub fn layer_norm_backward<T: Real>(d: &mut [T], a_hat: &[T], rstd: T, gamma: &[T], d_gamma: &mut [T]) {
    let n = T::from_f64(a_hat.len() as f64);
    let mut mean_d = T::ZERO;
    let mut mean_d_ahat = T::ZERO;
    for i in 0..a_hat.len() {
        d_gamma[i] += d[i] * a_hat[i];
        d[i] *= gamma[i];
        mean_d += d[i];
        mean_d_ahat += d[i] * a_hat[i];
    }
    mean_d = mean_d / n;
    mean_d_ahat = mean_d_ahat / n;
    for i in 0..a_hat.len() {
        d[i] = rstd * (d[i] - mean_d - a_hat[i] * mean_d_ahat);
    }
}
