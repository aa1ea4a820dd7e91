//! Losses with their exact gradients (generic over f32/f64 so they are gradient-checked
//! with the models). Masks are 0/1 per entry; unobserved entries never contribute.

use recur_kernels::Real;

/// Masked mean squared error over observed entries, the deck's prediction loss:
///
/// L = Σ m (x̂ − x)² / Σ m,   ∂L/∂x̂ = 2 m (x̂ − x) / Σ m
///
/// `pred`, `target`, `mask`: the same length. Returns `(L, ∂L/∂x̂)`; with no observed
/// entry the loss is 0 and so is the gradient.
pub fn masked_mse<T: Real>(pred: &[T], target: &[T], mask: &[T]) -> (f64, Vec<T>) {
    let count: f64 = mask.iter().map(|m| m.to_f64()).sum();
    if count == 0.0 {
        return (0.0, vec![T::ZERO; pred.len()]);
    }
    let mut loss = 0.0f64;
    let scale = T::from_f64(2.0 / count);
    let grad = pred
        .iter()
        .zip(target)
        .zip(mask)
        .map(|((&p, &t), &m)| {
            let e = (p - t) * m;
            loss += e.to_f64() * e.to_f64();
            scale * e
        })
        .collect();
    (loss / count, grad)
}

/// The deck's Gaussian negative log-likelihood with a learned precision per row
/// (a row = one step of one sequence, `channels` entries; or any block of `channels`
/// consecutive entries sharing one λ, down to a λ per entry with `channels` = 1):
///
/// sse_n = Σ_c m (x̂ − x)²,  k_n = Σ_c m (entries scored),
/// −log p_n = ½ λ_n sse_n − ½ k_n log λ_n + ½ k_n log 2π,
/// L = Σ_n −log p_n / Σ_n k_n  (per scored entry, so batches of any size compare).
///
/// `mean, target, mask: [N, C]`, `precision: [N]` (λ > 0). Returns `(L, ∂L/∂x̂, ∂L/∂λ)`.
pub fn gaussian_nll<T: Real>(
    mean: &[T],
    target: &[T],
    mask: &[T],
    precision: &[T],
    channels: usize,
) -> (f64, Vec<T>, Vec<T>) {
    gaussian_nll_with(mean, target, mask, precision, channels, true)
}

/// [`gaussian_nll`] with x̂ held constant: `(L, ∂L/∂λ)` alone, the same bits, without the
/// pass that ∂L/∂x̂ costs (the forecasts' NLL term of a prediction band, which reads
/// sg(x̂)).
pub fn gaussian_nll_precision<T: Real>(
    mean: &[T],
    target: &[T],
    mask: &[T],
    precision: &[T],
    channels: usize,
) -> (f64, Vec<T>) {
    let (loss, _, d_precision) = gaussian_nll_with(mean, target, mask, precision, channels, false);
    (loss, d_precision)
}

fn gaussian_nll_with<T: Real>(
    mean: &[T],
    target: &[T],
    mask: &[T],
    precision: &[T],
    channels: usize,
    mean_gradient: bool,
) -> (f64, Vec<T>, Vec<T>) {
    let total: f64 = mask.iter().map(|m| m.to_f64()).sum();
    let mut d_mean = vec![T::ZERO; if mean_gradient { mean.len() } else { 0 }];
    let mut d_precision = vec![T::ZERO; precision.len()];
    if total == 0.0 {
        return (0.0, d_mean, d_precision);
    }
    let log_2pi = (2.0 * std::f64::consts::PI).ln();
    let rows = precision.len();
    // Pass by pass, each value's arithmetic as in one loop over rows, so the bits are those
    // of that loop; the passes vectorise (one λ per value, the prediction band's case, had
    // run at ~18 ns a value). Only the logarithm stays a libm call per row.
    let (mut sse, mut k) = (vec![0.0f64; rows], vec![0.0f64; rows]);
    let mut terms = vec![0.0f64; rows];
    let ln: Vec<f64> = precision.iter().map(|l| l.to_f64().ln()).collect();
    recur_kernels::vectorized(
        #[inline(always)]
        || {
            let entries =
                mean.chunks_exact(channels).zip(target.chunks_exact(channels)).zip(mask.chunks_exact(channels));
            for ((sse, k), ((x, t), m)) in sse.iter_mut().zip(&mut k).zip(entries) {
                for ((&x, &t), &m) in x.iter().zip(t).zip(m) {
                    let e = (x - t).to_f64() * m.to_f64();
                    *sse += e * e;
                    *k += m.to_f64();
                }
            }
            let rows = terms.iter_mut().zip(&mut d_precision).zip(precision).zip(sse.iter().zip(&k).zip(&ln));
            for (((term, d), &l), ((&sse, &k), &ln)) in rows {
                let l = l.to_f64();
                (*term, *d) = match k == 0.0 {
                    true => (0.0, T::ZERO),
                    false => (
                        0.5 * l * sse - 0.5 * k * ln + 0.5 * k * log_2pi,
                        T::from_f64((0.5 * sse - 0.5 * k / l) / total),
                    ),
                };
            }
            if mean_gradient {
                let entries =
                    mean.chunks_exact(channels).zip(target.chunks_exact(channels)).zip(mask.chunks_exact(channels));
                let rows = d_mean.chunks_exact_mut(channels).zip(precision).zip(&k);
                for (((d, &l), &k), ((x, t), m)) in rows.zip(entries) {
                    let l = l.to_f64();
                    for (d, ((&x, &t), &m)) in d.iter_mut().zip(x.iter().zip(t).zip(m)) {
                        // +0, not the product's −0, on a row without an entry
                        *d = if k == 0.0 { T::ZERO } else { T::from_f64(l * (x - t).to_f64() * m.to_f64() / total) };
                    }
                }
            }
        },
    );
    // in row order, as the one loop added them (a row without an entry adds +0)
    let loss = terms.iter().fold(0.0f64, |loss, &term| loss + term);
    (loss / total, d_mean, d_precision)
}

/// The quantile (pinball) loss of a band around each forecast: its lower edge
/// q⁻ = x̂ − d⁻ the α/2 quantile, its upper edge q⁺ = x̂ + d⁺ the 1 − α/2 quantile, x̂ held
/// constant (Koenker & Bassett 1978):
///
/// ```text
/// ρ_τ(r) = r (τ − 1[r < 0]),
/// L = Σ m [ρ_{α/2}(x − q⁻) + ρ_{1−α/2}(x − q⁺)] / Σ m,
/// ∂L/∂d⁻ = m (α/2 − 1[x < q⁻]) / Σ m,   ∂L/∂d⁺ = m (1[x < q⁺] − (1 − α/2)) / Σ m.
/// ```
///
/// Its minimum puts the edges at the conditional quantiles, so the band holds the truth
/// with probability 1 − α, unevenly on the two sides where the errors are skewed;
/// (2/α)·L is the band's mean interval score (Gneiting & Raftery 2007), so the loss is the
/// score the evaluation reports. `mean, target, mask: [N, O]` (O = `outputs`),
/// `distances: [N, 2·O]` (row n: its O distances d⁻, then its O distances d⁺). Returns
/// `(L, ∂L/∂d)`.
pub fn quantile_band<T: Real>(
    mean: &[T],
    target: &[T],
    mask: &[T],
    distances: &[T],
    outputs: usize,
    alpha: f64,
) -> (f64, Vec<T>) {
    let count: f64 = mask.iter().map(|m| m.to_f64()).sum();
    let mut grad = vec![T::ZERO; distances.len()];
    if count == 0.0 || outputs == 0 {
        return (0.0, grad);
    }
    let (low_tau, high_tau) = (alpha / 2.0, 1.0 - alpha / 2.0);
    let pinball = |r: f64, tau: f64| r * (tau - f64::from(u8::from(r < 0.0)));
    let mut loss = 0.0;
    let rows = mean.chunks(outputs).zip(target.chunks(outputs)).zip(mask.chunks(outputs));
    for ((((p, t), m), d), g) in rows.zip(distances.chunks(2 * outputs)).zip(grad.chunks_mut(2 * outputs)) {
        let ((d_below, d_above), (g_below, g_above)) = (d.split_at(outputs), g.split_at_mut(outputs));
        for o in 0..p.len() {
            let m = m[o].to_f64();
            if m == 0.0 {
                continue;
            }
            let (p, t) = (p[o].to_f64(), t[o].to_f64());
            let (low, high) = (p - d_below[o].to_f64(), p + d_above[o].to_f64());
            loss += m * (pinball(t - low, low_tau) + pinball(t - high, high_tau));
            g_below[o] = T::from_f64(m * (low_tau - f64::from(u8::from(t < low))) / count);
            g_above[o] = T::from_f64(m * (f64::from(u8::from(t < high)) - high_tau) / count);
        }
    }
    (loss / count, grad)
}

/// The twin loss of decoupled training (Serdyuk et al. 2018), on active rows only:
///
/// L = α · Σ_n a_n ‖ĥ←_n − h←_n‖² / Σ_n a_n,   ∂L/∂ĥ← = 2α a_n (ĥ←_n − h←_n) / Σ a
///
/// `estimate` ĥ← and `teacher` h←: `[N, H]` (the teacher is a constant: no gradient
/// flows to it), `active: [N]` 0/1.
pub fn twin_loss<T: Real>(estimate: &[T], teacher: &[T], active: &[T], alpha: f64) -> (f64, Vec<T>) {
    let count: f64 = active.iter().map(|a| a.to_f64()).sum();
    let h = estimate.len() / active.len().max(1);
    if count == 0.0 || alpha == 0.0 {
        return (0.0, vec![T::ZERO; estimate.len()]);
    }
    let mut loss = 0.0;
    let scale = T::from_f64(2.0 * alpha / count);
    let grad = estimate
        .iter()
        .zip(teacher)
        .enumerate()
        .map(|(i, (&e, &t))| {
            let d = (e - t) * active[i / h];
            loss += d.to_f64() * d.to_f64();
            scale * d
        })
        .collect();
    (alpha * loss / count, grad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_gradient(f: impl Fn(&[f64]) -> f64, x: &[f64], grad: &[f64]) {
        for i in 0..x.len() {
            let mut p = x.to_vec();
            p[i] += 1e-6;
            let up = f(&p);
            p[i] -= 2e-6;
            let down = f(&p);
            let numeric = (up - down) / 2e-6;
            assert!((numeric - grad[i]).abs() < 1e-6 * (1.0 + numeric.abs()), "entry {i}: {numeric} vs {}", grad[i]);
        }
    }

    #[test]
    fn masked_mse_ignores_unobserved_entries_and_matches_central_differences() {
        let pred = [0.5, -1.0, 2.0, 0.25];
        let target = [0.0, 3.0, 1.0, 100.0];
        let mask = [1.0, 1.0, 1.0, 0.0];
        let (loss, grad) = masked_mse(&pred, &target, &mask);
        assert!((loss - (0.25 + 16.0 + 1.0) / 3.0).abs() < 1e-12);
        assert_eq!(grad[3], 0.0);
        check_gradient(|p| masked_mse(p, &target, &mask).0, &pred, &grad);
    }

    #[test]
    fn gaussian_nll_matches_the_formula_and_central_differences() {
        let mean = [0.5, -1.0, 2.0, 0.25, 1.5, 0.0];
        let target = [0.0, 3.0, 1.0, 100.0, 1.0, -0.5];
        let mask = [1.0, 1.0, 1.0, 0.0, 1.0, 1.0];
        let lambda = [0.7, 2.5];
        let (loss, d_mean, d_lambda) = gaussian_nll(&mean, &target, &mask, &lambda, 3);
        let lp =
            |l: f64, sse: f64, k: f64| 0.5 * l * sse - 0.5 * k * l.ln() + 0.5 * k * (2.0 * std::f64::consts::PI).ln();
        let want = (lp(0.7, 0.25 + 16.0 + 1.0, 3.0) + lp(2.5, 0.25 + 0.25, 2.0)) / 5.0;
        assert!((loss - want).abs() < 1e-12);
        check_gradient(|m| gaussian_nll(m, &target, &mask, &lambda, 3).0, &mean, &d_mean);
        check_gradient(|l| gaussian_nll(&mean, &target, &mask, l, 3).0, &lambda, &d_lambda);
        assert_eq!(
            gaussian_nll_precision(&mean, &target, &mask, &lambda, 3),
            (loss, d_lambda.clone()),
            "x̂ held constant"
        );
    }

    /// The loss as one loop over rows, the form the passes of `gaussian_nll_with` replaced:
    /// they must give its bits (every trained band was measured with it).
    fn gaussian_nll_one_loop(
        mean: &[f32],
        target: &[f32],
        mask: &[f32],
        precision: &[f32],
        channels: usize,
    ) -> (f64, Vec<f32>, Vec<f32>) {
        let total: f64 = mask.iter().map(|&m| m as f64).sum();
        let (mut d_mean, mut d_precision) = (vec![0.0f32; mean.len()], vec![0.0f32; precision.len()]);
        if total == 0.0 {
            return (0.0, d_mean, d_precision);
        }
        let log_2pi = (2.0 * std::f64::consts::PI).ln();
        let mut loss = 0.0f64;
        for (n, &lambda) in precision.iter().enumerate() {
            let row = n * channels..(n + 1) * channels;
            let (mut sse, mut k) = (0.0f64, 0.0f64);
            for i in row.clone() {
                let e = (mean[i] - target[i]) as f64 * mask[i] as f64;
                sse += e * e;
                k += mask[i] as f64;
            }
            if k == 0.0 {
                continue;
            }
            let l = lambda as f64;
            loss += 0.5 * l * sse - 0.5 * k * l.ln() + 0.5 * k * log_2pi;
            for i in row {
                d_mean[i] = (l * (mean[i] - target[i]) as f64 * mask[i] as f64 / total) as f32;
            }
            d_precision[n] = ((0.5 * sse - 0.5 * k / l) / total) as f32;
        }
        (loss / total, d_mean, d_precision)
    }

    #[test]
    fn gaussian_nll_gives_the_bits_of_one_loop_over_rows() {
        let mut rng = crate::rng::Rng::new(11);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (rows, channels) in [(1, 1), (2, 1), (1000, 1), (333, 3), (64, 11), (17, 24)] {
            let n = rows * channels;
            let mean: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
            let target: Vec<f32> = (0..n).map(|_| 2.0 * rng.normal() as f32).collect();
            // a third unobserved, and with 3 channels or more some rows wholly so
            let mask: Vec<f32> =
                (0..n).map(|i| if i % 3 == 0 || (i / channels) % 7 == 3 { 0.0 } else { 1.0 }).collect();
            let precision: Vec<f32> = (0..rows).map(|_| (3.0 * rng.normal()).exp() as f32).collect();
            let (loss, d_mean, d_precision) = gaussian_nll(&mean, &target, &mask, &precision, channels);
            let (want_loss, want_mean, want_precision) =
                gaussian_nll_one_loop(&mean, &target, &mask, &precision, channels);
            assert_eq!(loss.to_bits(), want_loss.to_bits(), "{rows}×{channels}");
            assert_eq!(bits(&d_mean), bits(&want_mean), "{rows}×{channels}");
            assert_eq!(bits(&d_precision), bits(&want_precision), "{rows}×{channels}");
        }
    }

    #[test]
    fn quantile_band_matches_the_pinball_formula_and_central_differences() {
        // two rows of O = 2; one entry unobserved; truths below, inside and above the bands
        let mean = [0.0, 1.0, -0.5, 2.0];
        let target = [-3.0, 1.2, 0.0, 9.0];
        let mask = [1.0, 1.0, 0.0, 1.0];
        let distances = [1.0, 0.5, 2.0, 0.25, 0.3, 0.7, 1.5, 4.0];
        let alpha = 0.1;
        let (loss, grad) = quantile_band(&mean, &target, &mask, &distances, 2, alpha);
        let rho = |r: f64, tau: f64| if r < 0.0 { r * (tau - 1.0) } else { r * tau };
        let entry = |p: f64, t: f64, below: f64, above: f64| rho(t - (p - below), 0.05) + rho(t - (p + above), 0.95);
        let want = (entry(0.0, -3.0, 1.0, 2.0) + entry(1.0, 1.2, 0.5, 0.25) + entry(2.0, 9.0, 0.7, 4.0)) / 3.0;
        assert!((loss - want).abs() < 1e-12, "{loss} vs {want}");
        assert_eq!((grad[4], grad[6]), (0.0, 0.0), "the unobserved entry's distances");
        check_gradient(|d| quantile_band(&mean, &target, &mask, d, 2, alpha).0, &distances, &grad);
        // (2/α)·L is the interval score: width plus 2/α times the distance outside
        let score = |p: f64, t: f64, below: f64, above: f64| {
            let (low, high) = (p - below, p + above);
            high - low + 2.0 / alpha * ((low - t).max(0.0) + (t - high).max(0.0))
        };
        let mean_score = (score(0.0, -3.0, 1.0, 2.0) + score(1.0, 1.2, 0.5, 0.25) + score(2.0, 9.0, 0.7, 4.0)) / 3.0;
        assert!((2.0 / alpha * loss - mean_score).abs() < 1e-9);
    }

    #[test]
    fn twin_loss_counts_active_rows_only() {
        let est = [1.0, 2.0, 3.0, 4.0];
        let teacher = [0.0, 0.0, 3.0, 4.5];
        let active = [1.0, 0.0];
        let (loss, grad) = twin_loss(&est, &teacher, &active, 0.5);
        assert!((loss - 0.5 * 5.0).abs() < 1e-12);
        assert_eq!(&grad[2..], &[0.0, 0.0]);
        check_gradient(|e| twin_loss(e, &teacher, &active, 0.5).0, &est, &grad);
    }
}
