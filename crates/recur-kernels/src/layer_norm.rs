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
const LANES: usize = 16;

/// Σ of the lanes, pairwise: log₂(LANES) dependent additions, not LANES.
#[inline(always)]
fn pairwise_total<T: Real>(lanes: &mut [T; LANES]) -> T {
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            lanes[l] += lanes[l + width];
        }
        width /= 2;
    }
    lanes[0]
}

/// The two sums Σ f(i).0 and Σ f(i).1 over `0..n` in one pass, each in [`LANES`]
/// interleaved partial sums combined at the end.
#[inline(always)]
fn lane_sum_pair<T: Real>(n: usize, f: impl Fn(usize) -> (T, T)) -> (T, T) {
    let (mut acc0, mut acc1) = ([T::ZERO; LANES], [T::ZERO; LANES]);
    let full = n / LANES * LANES;
    let mut i = 0;
    while i < full {
        for l in 0..LANES {
            let (x, y) = f(i + l);
            acc0[l] += x;
            acc1[l] += y;
        }
        i += LANES;
    }
    let (mut total0, mut total1) = (pairwise_total(&mut acc0), pairwise_total(&mut acc1));
    for j in full..n {
        let (x, y) = f(j);
        total0 += x;
        total1 += y;
    }
    (total0, total1)
}

/// Normalises `a`: writes â = (a − μ)/√(σ²+ε) to `hat` and γ⊙â over `a`, and returns
/// 1/√(σ²+ε) (what backward needs besides â).
///
/// `a` (in-out), `gamma`, `hat`: `[H]`.
#[inline(always)]
pub fn layer_norm_forward<T: Real>(a: &mut [T], gamma: &[T], hat: &mut [T]) -> T {
    let h = a.len();
    let (gamma, hat) = (&gamma[..h], &mut hat[..h]);
    let inv_n = T::ONE / T::from_f64(h as f64);
    // one pass over `a` for both moments, shifted by a[0] so that a large mean does not
    // cancel the variance away: σ² = E[(a−k)²] − (E[a−k])², μ = k + E[a−k]
    let shift = a.first().copied().unwrap_or(T::ZERO);
    let (mut sums, mut squares) = ([T::ZERO; LANES], [T::ZERO; LANES]);
    let mut chunks = a.chunks_exact(LANES);
    for chunk in &mut chunks {
        for l in 0..LANES {
            let v = chunk[l] - shift;
            sums[l] += v;
            squares[l] += v * v;
        }
    }
    let (mut sum, mut sum_sq) = (pairwise_total(&mut sums), pairwise_total(&mut squares));
    for &x in chunks.remainder() {
        let v = x - shift;
        sum += v;
        sum_sq += v * v;
    }
    let shifted_mean = sum * inv_n;
    let mean = shift + shifted_mean;
    let var = (sum_sq * inv_n - shifted_mean * shifted_mean).max(T::ZERO);
    let rstd = T::ONE / (var + T::from_f64(LAYER_NORM_EPS)).sqrt();
    for i in 0..h {
        hat[i] = (a[i] - mean) * rstd;
        a[i] = gamma[i] * hat[i];
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
    let (sum_d, sum_d_ahat) = lane_sum_pair(h, |i| (d[i], d[i] * a_hat[i]));
    let (mean_d, mean_d_ahat) = (sum_d / n, sum_d_ahat / n);
    for i in 0..h {
        d[i] = rstd * (d[i] - mean_d - a_hat[i] * mean_d_ahat);
    }
}
