//! BPTT and the vanishing gradient, measured. For L = vᵀ h_T, the lecture's argument
//! ∂h_{t+1}/∂h_t = D_{t+1} W_hh with |tanh'| ≤ 1 gives, for an Elman network,
//!
//! ‖∂L/∂h_t‖ ≤ ‖v‖ · ‖W_hh‖₂^{T−t}.
//!
//! [`state_gradient_norms`] measures ‖∂L/∂h_t‖ for every t exactly: it restarts the
//! encoder from (h_t, c_t) on the rest of the sequence and reads ∂L/∂h0 from the
//! (gradient-checked) backward pass — O(T²) steps, nothing approximated.

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::rnn::{InitialState, Rnn, SequenceBatch};

/// ‖∂L/∂h_t‖ for t = 1..=T (index t−1), L = vᵀ h_T, for a one-layer unidirectional
/// encoder on one sequence `x: [T, 1, D]`, `probe` v: `[H]`.
///
/// # Errors
/// A multi-layer or bidirectional encoder, or shapes that disagree.
pub fn state_gradient_norms(rnn: &Rnn<f64>, x: &[f64], probe: &[f64]) -> Result<Vec<f64>> {
    let cfg = rnn.config();
    if cfg.num_layers != 1 || cfg.bidirectional {
        return Err(Error::invalid("encoder", "gradient norms are measured on one unidirectional layer"));
    }
    let d = cfg.input_size;
    let steps = x.len() / d;
    let h = cfg.hidden_size;
    crate::error::check_len("probe", probe, &[h])?;
    let mut norms = vec![0.0; steps];
    norms[steps - 1] = probe.iter().map(|v| v * v).sum::<f64>().sqrt();
    let has_c = cfg.cell.has_cell_state();
    for t in 1..steps {
        // (h_t, c_t) after the first t steps
        let prefix = rnn
            .forward(&SequenceBatch { x: &x[..t * d], steps: t, batch: 1, lengths: None }, &InitialState::default())?;
        let rest = &x[t * d..];
        let suffix = SequenceBatch { x: rest, steps: steps - t, batch: 1, lengths: None };
        let state = InitialState { h0: Some(&prefix.h_n), c0: has_c.then_some(&prefix.c_n[..]) };
        let (out, mut cache) = rnn.forward_train(&suffix, &state, 0)?;
        let mut grads = rnn.zero_grads();
        let zeros = vec![0.0; out.output.len()];
        let g = rnn.backward(&suffix, &mut cache, &zeros, Some(probe), None, &mut grads)?;
        norms[t - 1] = g.d_h0.iter().map(|v| v * v).sum::<f64>().sqrt();
    }
    Ok(norms)
}

/// The largest singular value of the row-major `rows × cols` matrix `m`, by power
/// iteration on MᵀM from a seeded random start.
pub fn spectral_norm(m: &[f64], rows: usize, cols: usize, iterations: usize) -> f64 {
    let mut rng = Rng::new(7);
    let mut v: Vec<f64> = (0..cols).map(|_| rng.normal()).collect();
    let mut sigma = 0.0;
    for _ in 0..iterations {
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-300);
        v.iter_mut().for_each(|a| *a /= norm);
        let u: Vec<f64> = (0..rows).map(|i| (0..cols).map(|j| m[i * cols + j] * v[j]).sum()).collect();
        sigma = u.iter().map(|a| a * a).sum::<f64>().sqrt();
        v = (0..cols).map(|j| (0..rows).map(|i| m[i * cols + j] * u[i]).sum()).collect();
    }
    sigma
}
