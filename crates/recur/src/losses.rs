//! Losses with their exact gradients.

/// Masked mean squared error over observed entries, the deck's prediction loss:
///
/// L = Σ m (x̂ − x)² / Σ m,   ∂L/∂x̂ = 2 m (x̂ − x) / Σ m
///
/// `pred`, `target`, `mask` (0 or 1): the same length. Returns `(L, ∂L/∂x̂)`; with no
/// observed entry the loss is 0 and so is the gradient.
pub fn masked_mse(pred: &[f32], target: &[f32], mask: &[f32]) -> (f64, Vec<f32>) {
    let count: f64 = mask.iter().map(|&m| m as f64).sum();
    if count == 0.0 {
        return (0.0, vec![0.0; pred.len()]);
    }
    let mut loss = 0.0f64;
    let scale = (2.0 / count) as f32;
    let grad = pred
        .iter()
        .zip(target)
        .zip(mask)
        .map(|((&p, &t), &m)| {
            let e = (p - t) * m;
            loss += (e as f64) * (e as f64);
            scale * e
        })
        .collect();
    (loss / count, grad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_mse_ignores_unobserved_entries_and_matches_central_differences() {
        let pred = [0.5f32, -1.0, 2.0, 0.25];
        let target = [0.0f32, 3.0, 1.0, 100.0];
        let mask = [1.0f32, 1.0, 1.0, 0.0];
        let (loss, grad) = masked_mse(&pred, &target, &mask);
        assert!((loss - (0.25 + 16.0 + 1.0) / 3.0).abs() < 1e-9);
        assert_eq!(grad[3], 0.0);
        for i in 0..3 {
            let mut p = pred;
            p[i] += 1e-3;
            let up = masked_mse(&p, &target, &mask).0;
            p[i] -= 2e-3;
            let down = masked_mse(&p, &target, &mask).0;
            assert!(((up - down) / 2e-3 - grad[i] as f64).abs() < 1e-3);
        }
    }
}
