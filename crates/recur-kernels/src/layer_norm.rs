//! Layer normalisation of one gate pre-activation (Ba et al. 2016), as the deck writes it:
//!
//! LN(a) = γ ⊙ (a − μ) / √(σ² + ε),  μ, σ² the mean and (biased) variance of `a` over its H units.
//!
//! The shift β is the gate's own bias `b`, added by the caller after normalisation:
//! i_t = σ(LN(W_i[h_{t−1}, x_t]) + b_i).

use crate::real::Real;

/// ε inside the square root, PyTorch's `nn.LayerNorm` default.
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// Partial sums in this many interleaved lanes, combined at the end: the reduction
/// vectorises (without fast-math the compiler keeps a single sequential sum) and its
/// rounding is the same on every CPU.
const LANES: usize = 8;

/// Σ f(i) over `0..n`, summed in [`LANES`] interleaved partial sums.
#[inline(always)]
fn lane_sum<T: Real>(n: usize, f: impl Fn(usize) -> T) -> T {
    let mut acc = [T::ZERO; LANES];
    let full = n / LANES * LANES;
    let mut i = 0;
    while i < full {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += f(i + l);
        }
        i += LANES;
    }
    let mut total = T::ZERO;
    for a in acc {
        total += a;
    }
    for j in full..n {
        total += f(j);
    }
    total
}

/// Normalises `a` in place to â = (a − μ)/√(σ²+ε), writes γ⊙â to `out`, and returns
/// 1/√(σ²+ε) (what backward needs besides â).
///
/// `a`, `gamma`, `out`: `[H]`.
#[inline(always)]
pub fn layer_norm_forward<T: Real>(a: &mut [T], gamma: &[T], out: &mut [T]) -> T {
    let h = a.len();
    let (gamma, out) = (&gamma[..h], &mut out[..h]);
    let n = T::from_f64(h as f64);
    let mean = lane_sum(h, |i| a[i]) / n;
    let var = lane_sum(h, |i| (a[i] - mean) * (a[i] - mean)) / n;
    let rstd = T::ONE / (var + T::from_f64(LAYER_NORM_EPS)).sqrt();
    for i in 0..h {
        a[i] = (a[i] - mean) * rstd;
        out[i] = gamma[i] * a[i];
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
    let h = a_hat.len();
    let (d, gamma, d_gamma) = (&mut d[..h], &gamma[..h], &mut d_gamma[..h]);
    let n = T::from_f64(h as f64);
    for i in 0..h {
        d_gamma[i] += d[i] * a_hat[i];
        d[i] *= gamma[i];
    }
    let mean_d = lane_sum(h, |i| d[i]) / n;
    let mean_d_ahat = lane_sum(h, |i| d[i] * a_hat[i]) / n;
    for i in 0..h {
        d[i] = rstd * (d[i] - mean_d - a_hat[i] * mean_d_ahat);
    }
}
