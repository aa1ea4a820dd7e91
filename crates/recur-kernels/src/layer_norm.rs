//! Layer normalisation of one gate pre-activation (Ba et al. 2016), as the deck writes it:
//!
//! LN(a) = γ ⊙ (a − μ) / √(σ² + ε),  μ, σ² the mean and (biased) variance of `a` over its H units.
//!
//! The shift β is the gate's own bias `b`, added by the caller after normalisation:
//! i_t = σ(LN(W_i[h_{t−1}, x_t]) + b_i).

use crate::real::Real;
use crate::simd::LANES;

/// ε inside the square root, PyTorch's `nn.LayerNorm` default.
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// Normalises `a`: writes â = (a − μ)/√(σ²+ε) to `hat` and γ⊙â over `a`, and returns
/// 1/√(σ²+ε) (what backward needs besides â).
///
/// `a` (in-out), `gamma`, `hat`: `[H]`.
#[inline(always)]
pub fn layer_norm_forward<T: Real>(a: &mut [T], gamma: &[T], hat: &mut [T]) -> T {
    let mut rstd = [T::ZERO];
    layer_norm_forward_many([a], [gamma], [hat], &mut rstd);
    rstd[0]
}

/// [`layer_norm_forward`] of `K` vectors at once (the gates of one row), each with its own
/// statistics, `rstd: [K]`. Their moments are accumulated in the same loop, the K vectors
/// side by side (measured: LSTM inference with layer norm 0.85 → 0.73 s per 1000 S1 calls
/// against one vector after another; taking two rows side by side, K = 8, gained nothing).
///
/// `a` (in-out), `gamma`, `hat`: K slices of `[H]`.
#[inline(always)]
pub fn layer_norm_forward_many<T: Real, const K: usize>(
    a: [&mut [T]; K],
    gamma: [&[T]; K],
    hat: [&mut [T]; K],
    rstd: &mut [T],
) {
    let h = a[0].len();
    let mean = layer_norm_moments_many::<T, K>(std::array::from_fn(|k| &*a[k]), rstd);
    for (k, (a, hat)) in a.into_iter().zip(hat).enumerate() {
        let (a, gamma, hat) = (&mut a[..h], &gamma[k][..h], &mut hat[..h]);
        let (m, s) = (mean[k], rstd[k]);
        for j in 0..h {
            hat[j] = (a[j] - m) * s;
            a[j] = gamma[j] * hat[j];
        }
    }
}

/// One vector normalised and carried on in one pass, from its moments: â = (a − μ)·rstd
/// to `hat` (what backward needs) and φ(γ⊙â + β) to `out`, with `a` = `a + x` where `x`
/// is given (a gate's two products, summed where they are read).
///
/// `out`, `hat`, `a`, `x`, `gamma`, `beta`: `[H]`. A function of its own, with `out` and
/// `hat` (often parts of one cache row) as separate `&mut` parameters: the same loop
/// written inline in the GRU row, over slices split from one buffer, compiled to scalar
/// code (GRU + layer norm inference 0.74 s per 1000 S1 calls against 0.44 s with this
/// function), most likely because the compiler could not bound the run-time overlap
/// checks between that many slices.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn normalize_into<T: Real>(
    out: &mut [T],
    hat: &mut [T],
    a: &[T],
    x: Option<&[T]>,
    mean: T,
    rstd: T,
    gamma: &[T],
    beta: &[T],
    phi: impl Fn(T) -> T,
) {
    let h = out.len();
    let (hat, a, gamma, beta) = (&mut hat[..h], &a[..h], &gamma[..h], &beta[..h]);
    match x {
        Some(x) => {
            let x = &x[..h];
            for j in 0..h {
                hat[j] = (a[j] + x[j] - mean) * rstd;
                out[j] = phi(gamma[j] * hat[j] + beta[j]);
            }
        }
        None => {
            for j in 0..h {
                hat[j] = (a[j] - mean) * rstd;
                out[j] = phi(gamma[j] * hat[j] + beta[j]);
            }
        }
    }
}

/// [`normalize_into`] over its own input: `a` holds one product of a pre-activation on
/// entry and φ(γ⊙â + β) on return, where â = (a + x − mean)·rstd goes to `hat`.
///
/// `a` (in-out), `hat`, `x`, `gamma`, `beta`: `[H]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn normalize_in_place<T: Real>(
    a: &mut [T],
    hat: &mut [T],
    x: &[T],
    mean: T,
    rstd: T,
    gamma: &[T],
    beta: &[T],
    phi: impl Fn(T) -> T,
) {
    let h = a.len();
    let (hat, x, gamma, beta) = (&mut hat[..h], &x[..h], &gamma[..h], &beta[..h]);
    for j in 0..h {
        hat[j] = (a[j] + x[j] - mean) * rstd;
        a[j] = phi(gamma[j] * hat[j] + beta[j]);
    }
}

/// The means of `K` vectors, and 1/√(σ²+ε) of each written to `rstd: [K]`, their
/// reductions side by side (see [`layer_norm_forward_many`]).
#[inline(always)]
pub fn layer_norm_moments_many<T: Real, const K: usize>(a: [&[T]; K], rstd: &mut [T]) -> [T; K] {
    layer_norm_moments_of_sums::<T, K>(a, [None; K], rstd)
}

/// [`layer_norm_moments_many`] of `a[k] + b[k]` (of `a[k]` where `b[k]` is absent),
/// without writing the sums: a gate's pre-activation W_x x_t + W_h h_{t−1} from its two
/// products.
#[inline(always)]
pub fn layer_norm_moments_of_sums<T: Real, const K: usize>(
    a: [&[T]; K],
    b: [Option<&[T]>; K],
    rstd: &mut [T],
) -> [T; K] {
    let h = a[0].len();
    let inv_n = T::ONE / T::from_f64(h as f64);
    let value = |k: usize, j: usize| match b[k] {
        Some(b) => a[k][j] + b[j],
        None => a[k][j],
    };
    // one pass over each vector for both moments, shifted by its first value so that a
    // large mean does not cancel the variance away: σ² = E[(a−s)²] − (E[a−s])², μ = s + E[a−s]
    let shift: [T; K] = std::array::from_fn(|k| if h > 0 { value(k, 0) } else { T::ZERO });
    let mut sums = [[T::ZERO; LANES]; K];
    let mut squares = [[T::ZERO; LANES]; K];
    let full = h / LANES * LANES;
    let mut i = 0;
    while i < full {
        for k in 0..K {
            let x: &[T; LANES] = a[k][i..i + LANES].try_into().expect("LANES values");
            let y: [T; LANES] = match b[k] {
                Some(b) => b[i..i + LANES].try_into().expect("LANES values"),
                None => [T::ZERO; LANES],
            };
            for l in 0..LANES {
                let v = x[l] + y[l] - shift[k];
                sums[k][l] += v;
                squares[k][l] += v * v;
            }
        }
        i += LANES;
    }
    let (sums, squares) = (T::lane_totals(&sums), T::lane_totals(&squares));
    let mut mean = [T::ZERO; K];
    let mut var = [T::ZERO; K];
    for k in 0..K {
        let (mut sum, mut sum_sq) = (sums[k], squares[k]);
        for j in full..h {
            let v = value(k, j) - shift[k];
            sum += v;
            sum_sq += v * v;
        }
        let shifted_mean = sum * inv_n;
        mean[k] = shift[k] + shifted_mean;
        var[k] = (sum_sq * inv_n - shifted_mean * shifted_mean).max(T::ZERO);
    }
    // the K square roots and divisions as one K-wide operation each, not K scalar ones
    let r: [T; K] = std::array::from_fn(|k| T::ONE / (var[k] + T::from_f64(LAYER_NORM_EPS)).sqrt());
    rstd[..K].copy_from_slice(&r);
    mean
}

/// `v` as `K` consecutive slices of `n`.
#[inline(always)]
pub fn split_mut<T, const K: usize>(v: &mut [T], n: usize) -> [&mut [T]; K] {
    let mut parts = v.chunks_exact_mut(n);
    std::array::from_fn(|_| parts.next().expect("K slices of n"))
}

/// `v` as `K` consecutive slices of `n`.
#[inline(always)]
pub fn split<T, const K: usize>(v: &[T], n: usize) -> [&[T]; K] {
    let mut parts = v.chunks_exact(n);
    std::array::from_fn(|_| parts.next().expect("K slices of n"))
}

/// Inverts [`layer_norm_forward`] in place: `d` holds ∂L/∂(γ⊙â + β) on entry and
/// ∂L/∂a = rstd·(dâ − mean(dâ) − â·mean(dâ⊙â)) on return, where dâ = d⊙γ;
/// ∂L/∂γ is accumulated into `d_gamma`, and ∂L/∂β (= d on entry) into `d_beta` where
/// given (the shift, a bias, accumulated in the same pass instead of one of its own).
///
/// `d` (in-out), `a_hat`, `gamma`, `d_gamma`, `d_beta` (accumulated): `[H]`.
#[inline(always)]
pub fn layer_norm_backward<T: Real>(
    d: &mut [T],
    a_hat: &[T],
    rstd: T,
    gamma: &[T],
    d_gamma: &mut [T],
    d_beta: Option<&mut [T]>,
) {
    layer_norm_backward_many([d], [a_hat], &[rstd], [gamma], [d_gamma], [d_beta]);
}

/// [`layer_norm_backward`] of `K` vectors at once, their reductions side by side (see
/// [`layer_norm_forward_many`]). `rstd: [K]`; the others K slices of `[H]`.
#[inline(always)]
pub fn layer_norm_backward_many<T: Real, const K: usize>(
    d: [&mut [T]; K],
    a_hat: [&[T]; K],
    rstd: &[T],
    gamma: [&[T]; K],
    d_gamma: [&mut [T]; K],
    mut d_beta: [Option<&mut [T]>; K],
) {
    let h = a_hat[0].len();
    let inv_n = T::ONE / T::from_f64(h as f64);
    // Written over blocks of LANES values copied into arrays, all loads of a block before
    // its stores: the compiler vectorises each block as it stands, where plain loops over
    // slices of one row ran run-time overlap checks on every call (`profile_step lstm
    // train ln`: 1.52 → 1.45 s per 1000 S1 calls). The same form for the forward's
    // activations was 12× slower: φ stopped being inlined.
    let mut sums = [[T::ZERO; LANES]; K];
    let mut products = [[T::ZERO; LANES]; K];
    let full = h / LANES * LANES;
    let mut i = 0;
    while i < full {
        let block = i..i + LANES;
        for k in 0..K {
            let dv = lanes(&d[k][block.clone()]);
            let hat = lanes(&a_hat[k][block.clone()]);
            let g = lanes(&gamma[k][block.clone()]);
            let dg = lanes(&d_gamma[k][block.clone()]);
            // ∂γ += d⊙â, ∂β += d, dâ = d⊙γ
            d_gamma[k][block.clone()].copy_from_slice(&std::array::from_fn::<T, LANES, _>(|l| dg[l] + dv[l] * hat[l]));
            if let Some(d_beta) = &mut d_beta[k] {
                let db = lanes(&d_beta[block.clone()]);
                d_beta[block.clone()].copy_from_slice(&std::array::from_fn::<T, LANES, _>(|l| db[l] + dv[l]));
            }
            let d_hat: [T; LANES] = std::array::from_fn(|l| dv[l] * g[l]);
            d[k][block.clone()].copy_from_slice(&d_hat);
            for l in 0..LANES {
                sums[k][l] += d_hat[l];
                products[k][l] += d_hat[l] * hat[l];
            }
        }
        i += LANES;
    }
    let (mut sums, mut products) = (T::lane_totals(&sums), T::lane_totals(&products));
    for k in 0..K {
        for j in full..h {
            d_gamma[k][j] += d[k][j] * a_hat[k][j];
            if let Some(d_beta) = &mut d_beta[k] {
                d_beta[j] += d[k][j];
            }
            d[k][j] *= gamma[k][j];
            sums[k] += d[k][j];
            products[k] += d[k][j] * a_hat[k][j];
        }
    }
    for k in 0..K {
        let (mean_d, mean_d_ahat, s) = (sums[k] * inv_n, products[k] * inv_n, rstd[k]);
        let mut i = 0;
        while i < full {
            let block = i..i + LANES;
            let (dv, hat) = (lanes(&d[k][block.clone()]), lanes(&a_hat[k][block.clone()]));
            d[k][block]
                .copy_from_slice(&std::array::from_fn::<T, LANES, _>(|l| s * (dv[l] - mean_d - hat[l] * mean_d_ahat)));
            i += LANES;
        }
        for j in full..h {
            d[k][j] = s * (d[k][j] - mean_d - a_hat[k][j] * mean_d_ahat);
        }
    }
}

/// The LANES values of `v` (exactly that long), copied into an array.
#[inline(always)]
fn lanes<T: Real>(v: &[T]) -> [T; LANES] {
    v.try_into().expect("LANES values")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values with an offset, so that the shifted moments matter.
    fn values(n: usize, seed: usize, offset: f64) -> Vec<f64> {
        (0..n).map(|i| offset + ((i * 7 + seed * 13) as f64 * 0.61).sin() * (1.0 + (i % 3) as f64)).collect()
    }

    /// Two-pass mean and 1/√(σ²+ε), the textbook way.
    fn naive(a: &[f64]) -> (f64, f64) {
        let n = a.len() as f64;
        let mean = a.iter().sum::<f64>() / n;
        let var = a.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        (mean, 1.0 / (var + LAYER_NORM_EPS).sqrt())
    }

    // Widths below, at and across the 16 lanes (tests of whole layers use H ≤ 8, so
    // they reach only the tail loop).
    const WIDTHS: [usize; 6] = [1, 5, 16, 17, 40, 64];

    #[test]
    fn moments_of_sums_match_a_two_pass_reference() {
        for h in WIDTHS {
            let (a0, b0, a1) = (values(h, 1, 300.0), values(h, 2, -1.0), values(h, 3, 0.0));
            let sum: Vec<f64> = a0.iter().zip(&b0).map(|(x, y)| x + y).collect();
            let mut rstd = [0.0; 2];
            let mean = layer_norm_moments_of_sums::<f64, 2>([&a0, &a1], [Some(&b0), None], &mut rstd);
            for (k, want) in [naive(&sum), naive(&a1)].into_iter().enumerate() {
                assert!((mean[k] - want.0).abs() < 1e-10, "h={h} k={k}: mean {} vs {}", mean[k], want.0);
                assert!((rstd[k] / want.1 - 1.0).abs() < 1e-9, "h={h} k={k}: rstd {} vs {}", rstd[k], want.1);
            }
            // f32 with a large offset: the shift keeps the variance
            let a32: Vec<f32> = a0.iter().map(|&v| v as f32).collect();
            let mut r32 = [0.0f32];
            let [m32] = layer_norm_moments_many::<f32, 1>([&a32], &mut r32);
            let want = naive(&a32.iter().map(|&v| v as f64).collect::<Vec<_>>());
            assert!((m32 as f64 - want.0).abs() < 1e-3, "h={h}: f32 mean {m32} vs {}", want.0);
            if h > 1 {
                assert!((r32[0] as f64 / want.1 - 1.0).abs() < 1e-3, "h={h}: f32 rstd {} vs {}", r32[0], want.1);
            }
        }
    }

    #[test]
    fn forward_and_backward_match_the_reference_and_central_differences() {
        for h in WIDTHS {
            let a = [values(h, 4, 2.0), values(h, 5, -0.5), values(h, 6, 0.0)];
            let gamma = [values(h, 7, 1.0), values(h, 8, 1.0), values(h, 9, 1.0)];
            let mut out = a.clone();
            let mut hat = [vec![0.0; h], vec![0.0; h], vec![0.0; h]];
            let mut rstd = [0.0; 3];
            {
                let [o0, o1, o2] = &mut out;
                let [h0, h1, h2] = &mut hat;
                layer_norm_forward_many::<f64, 3>(
                    [o0, o1, o2],
                    [&gamma[0], &gamma[1], &gamma[2]],
                    [h0, h1, h2],
                    &mut rstd,
                );
            }
            // the loss L = Σ w ⊙ (γ ⊙ LN(a)) of each vector, its gradient by backward
            let w = [values(h, 10, 0.0), values(h, 11, 0.5), values(h, 12, -0.5)];
            let mut d = w.clone();
            let mut d_gamma = [vec![0.0; h], vec![0.0; h], vec![0.0; h]];
            // ∂β (= d on entry) accumulated for two of the three, onto a non-zero start
            let mut d_beta = [vec![1.0; h], vec![-2.0; h]];
            {
                let [d0, d1, d2] = &mut d;
                let [g0, g1, g2] = &mut d_gamma;
                let [b0, b2] = &mut d_beta;
                layer_norm_backward_many::<f64, 3>(
                    [d0, d1, d2],
                    [&hat[0], &hat[1], &hat[2]],
                    &rstd,
                    [&gamma[0], &gamma[1], &gamma[2]],
                    [g0, g1, g2],
                    [Some(b0), None, Some(b2)],
                );
            }
            for j in 0..h {
                assert_eq!(d_beta[0][j], 1.0 + w[0][j], "h={h} j={j}: ∂β");
                assert_eq!(d_beta[1][j], -2.0 + w[2][j], "h={h} j={j}: ∂β");
            }
            for k in 0..3 {
                let (mean, want_rstd) = naive(&a[k]);
                let loss = |a: &[f64]| {
                    let (m, r) = naive(a);
                    a.iter().zip(&gamma[k]).zip(&w[k]).map(|((v, g), w)| w * g * (v - m) * r).sum::<f64>()
                };
                for j in 0..h {
                    let want_hat = (a[k][j] - mean) * want_rstd;
                    assert!((hat[k][j] - want_hat).abs() < 1e-9, "h={h} k={k} j={j}: â");
                    assert!((out[k][j] - gamma[k][j] * want_hat).abs() < 1e-9, "h={h} k={k} j={j}: γ⊙â");
                    assert!((d_gamma[k][j] - w[k][j] * want_hat).abs() < 1e-9, "h={h} k={k} j={j}: ∂γ");
                    let (mut up, mut down) = (a[k].clone(), a[k].clone());
                    up[j] += 1e-6;
                    down[j] -= 1e-6;
                    let numeric = (loss(&up) - loss(&down)) / 2e-6;
                    assert!((d[k][j] - numeric).abs() < 1e-6 * (1.0 + numeric.abs()), "h={h} k={k} j={j}: ∂a");
                }
            }
        }
    }

    #[test]
    fn normalize_into_matches_the_formula_with_and_without_a_second_product() {
        for h in WIDTHS {
            let (a, x, gamma, beta) = (values(h, 7, 1.0), values(h, 8, -2.0), values(h, 9, 1.0), values(h, 10, 0.0));
            let (mean, rstd) = (0.3, 1.7);
            for with_x in [false, true] {
                let (mut out, mut hat) = (vec![0.0; h], vec![0.0; h]);
                let second = with_x.then_some(x.as_slice());
                normalize_into(&mut out, &mut hat, &a, second, mean, rstd, &gamma, &beta, f64::tanh);
                for j in 0..h {
                    let v = if with_x { a[j] + x[j] } else { a[j] };
                    let want_hat = (v - mean) * rstd;
                    assert!((hat[j] - want_hat).abs() < 1e-12, "h={h} x={with_x} j={j}: â");
                    assert!((out[j] - (gamma[j] * want_hat + beta[j]).tanh()).abs() < 1e-12, "h={h} x={with_x} j={j}");
                }
            }
            // f32 at widths past the 16 lanes runs the vectorised loop: the same values
            let f = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            let (a32, x32, g32, b32) = (f(&a), f(&x), f(&gamma), f(&beta));
            let (mut out, mut hat) = (vec![0.0f32; h], vec![0.0f32; h]);
            crate::simd::vectorized(|| {
                normalize_into(&mut out, &mut hat, &a32, Some(&x32), 0.3, 1.7, &g32, &b32, |v| v)
            });
            // in place over `a`: the same bits as into a separate output
            let (mut in_place, mut hat_in_place) = (a32.clone(), vec![0.0f32; h]);
            crate::simd::vectorized(|| {
                normalize_in_place(&mut in_place, &mut hat_in_place, &x32, 0.3, 1.7, &g32, &b32, |v| v)
            });
            assert_eq!(in_place, out, "h={h}: in place");
            assert_eq!(hat_in_place, hat, "h={h}: in place, â");
            for j in 0..h {
                let want_hat = (a32[j] + x32[j] - 0.3) * 1.7;
                assert_eq!(hat[j].to_bits(), want_hat.to_bits(), "h={h} j={j}: f32 â");
                assert_eq!(out[j].to_bits(), (g32[j] * want_hat + b32[j]).to_bits(), "h={h} j={j}: f32 γ⊙â + β");
            }
        }
    }
}
