//! Output heads on z_t: a linear regression, the deck's Gaussian head with a learned
//! precision λ̂_t = softplus(W_λ z_t + b_λ) (one λ per step and sequence, or one per block
//! of outputs: W_λ then has a row per block), or a quantile head, whose second branch
//! gives each output the distances d = softplus(W_d z_t + b_d) from it down and up to two
//! quantiles.

use recur_kernels::{sigmoid_in_place, softplus_in_place, Real};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::heads::Linear;
use crate::rng::Rng;

/// Which head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    Linear,
    Gaussian,
    /// x̂ and, for each of the O outputs, two positive distances `[d⁻; d⁺]` (a row's 2·O
    /// second-branch outputs: the O below, then the O above), so that x̂ − d⁻ ≤ x̂ ≤ x̂ + d⁺
    /// never cross; trained by a quantile loss (`losses::quantile_band`).
    Quantile,
}

impl HeadKind {
    /// Whether the head has the second, positive branch (λ̂ or the quantile distances).
    pub fn has_positive_branch(self) -> bool {
        self != HeadKind::Linear
    }
}

/// x̂ = W z + b (and λ̂ = softplus(w_λ·z + b_λ) for the Gaussian head, the distances
/// d = softplus(W_d z + b_d) for the quantile head: the same positive branch, named
/// `precision` in both, as its tensors are).
#[derive(Clone, Debug, PartialEq)]
pub struct Head<T = f32> {
    pub mean: Linear<T>,
    pub precision: Option<Linear<T>>,
    /// The precision reads z as a constant: no gradient flows from λ̂ into z.
    pub detach_precision: bool,
}

/// Head outputs for `N` rows: `mean: [N, O]`, `precision: [N, P]` (empty for a linear
/// head; the quantile head's distances, P = 2·O).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeadOutput<T> {
    pub mean: Vec<T>,
    pub precision: Vec<T>,
}

impl<T: Real> Head<T> {
    /// `precisions` λ̂ per row for a Gaussian head, or distances for a quantile head
    /// (ignored by a linear one).
    pub fn new(kind: HeadKind, inputs: usize, outputs: usize, precisions: usize, rng: &mut Rng) -> Self {
        let mean = Linear::new(inputs, outputs, rng);
        let precision = kind.has_positive_branch().then(|| {
            let mut p = Linear::new(inputs, precisions, rng);
            // start near λ = 1 (softplus(0.55) ≈ 1)
            p.bias.data.fill(T::from_f64(0.5413));
            p
        });
        Head { mean, precision, detach_precision: false }
    }

    pub fn zeros_like(&self) -> Self {
        Head {
            mean: self.mean.zeros_like(),
            precision: self.precision.as_ref().map(Linear::zeros_like),
            detach_precision: self.detach_precision,
        }
    }

    /// # Errors
    /// `z` not a whole number of rows.
    pub fn forward(&self, z: &[T]) -> Result<HeadOutput<T>> {
        let mean = self.mean.forward(z)?;
        let precision = match &self.precision {
            Some(p) => {
                let mut u = p.forward(z)?;
                softplus_in_place(&mut u);
                u
            }
            None => Vec::new(),
        };
        Ok(HeadOutput { mean, precision })
    }

    /// Inverts [`Head::forward`] (∂λ̂/∂u = σ(u), recomputed from z); returns ∂L/∂z (the
    /// mean's part alone with [`Head::detach_precision`]).
    ///
    /// # Errors
    /// Gradient shapes that disagree.
    pub fn backward(&self, z: &[T], d_mean: &[T], d_precision: &[T], grads: &mut Head<T>) -> Result<Vec<T>> {
        let mut dz = self.mean.backward(z, d_mean, &mut grads.mean)?;
        if let (Some(p), Some(g)) = (&self.precision, grads.precision.as_mut()) {
            let mut du = p.forward(z)?;
            sigmoid_in_place(&mut du);
            for (u, &d) in du.iter_mut().zip(d_precision) {
                *u *= d;
            }
            // added apart: the product accumulating into dz would round differently
            if self.detach_precision {
                p.backward_weights(z, &du, g)?;
            } else {
                let dz2 = p.backward(z, &du, g)?;
                for (a, b) in dz.iter_mut().zip(dz2) {
                    *a += b;
                }
            }
        }
        Ok(dz)
    }
}
