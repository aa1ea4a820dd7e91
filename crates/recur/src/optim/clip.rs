//! Global gradient-norm clipping, as `torch.nn.utils.clip_grad_norm_`:
//! ‖g‖₂ over all tensors; if it exceeds `c`, every gradient is scaled by c/(‖g‖₂ + 10⁻⁶).

/// Clips in place and returns the pre-clip global norm (what a log should report).
pub fn clip_grad_norm(grads: &mut [&mut [f32]], max_norm: f64) -> f64 {
    let total = grads.iter().flat_map(|g| g.iter()).map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt();
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            g.iter_mut().for_each(|v| *v = (*v as f64 * coef) as f32);
        }
    }
    total
}
