//! A dense layer y = W x + b over rows: `x: [N, I]`, `W: [O, I]` (PyTorch's `nn.Linear`
//! layout, names `weight`, `bias`), `y: [N, O]`.

use recur_kernels::matmul::{gemm, Mat, Threads};
use recur_kernels::Real;

use crate::error::{check_len, Result};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// y = W x + b.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear<T = f32> {
    pub weight: Tensor<T>,
    pub bias: Tensor<T>,
}

impl<T: Real> Linear<T> {
    /// PyTorch's initialisation: U(−1/√I, 1/√I) for weight and bias.
    pub fn new(inputs: usize, outputs: usize, rng: &mut Rng) -> Self {
        let bound = 1.0 / (inputs.max(1) as f64).sqrt();
        let mut draw = |n: usize| (0..n).map(|_| T::from_f64(rng.uniform_in(-bound, bound))).collect::<Vec<T>>();
        Linear {
            weight: Tensor { shape: vec![outputs, inputs], data: draw(outputs * inputs) },
            bias: Tensor { shape: vec![outputs], data: draw(outputs) },
        }
    }

    pub fn inputs(&self) -> usize {
        self.weight.shape[1]
    }

    pub fn outputs(&self) -> usize {
        self.weight.shape[0]
    }

    /// `x: [N, I]` → `[N, O]`.
    ///
    /// # Errors
    /// `x` is not a whole number of rows of width I.
    pub fn forward(&self, x: &[T]) -> Result<Vec<T>> {
        let (i, o) = (self.inputs(), self.outputs());
        let n = x.len() / i;
        check_len("linear input", x, &[n, i])?;
        let mut y: Vec<T> = self.bias.data.repeat(n);
        gemm(&mut y, Mat::new(x, n, i), Mat::new(&self.weight.data, o, i).t(), true, Threads(1));
        Ok(y)
    }

    /// Inverts [`Linear::forward`]: accumulates ∂W += dyᵀ x and ∂b += Σ dy into `grads`,
    /// returns ∂x = dy W.
    ///
    /// # Errors
    /// `dy` does not have one row of width O per row of `x`.
    pub fn backward(&self, x: &[T], dy: &[T], grads: &mut Linear<T>) -> Result<Vec<T>> {
        let mut dx = vec![T::ZERO; x.len()];
        self.backward_with(x, dy, grads, Some(&mut dx))?;
        Ok(dx)
    }

    /// [`Linear::backward`] for an input read as a constant: the weights' gradients alone,
    /// without the product ∂x would cost.
    ///
    /// # Errors
    /// `dy` does not have one row of width O per row of `x`.
    pub fn backward_weights(&self, x: &[T], dy: &[T], grads: &mut Linear<T>) -> Result<()> {
        self.backward_with(x, dy, grads, None)
    }

    fn backward_with(&self, x: &[T], dy: &[T], grads: &mut Linear<T>, dx: Option<&mut [T]>) -> Result<()> {
        let (i, o) = (self.inputs(), self.outputs());
        let n = x.len() / i;
        check_len("linear output gradient", dy, &[n, o])?;
        for row in dy.chunks_exact(o) {
            for (g, &d) in grads.bias.data.iter_mut().zip(row) {
                *g += d;
            }
        }
        times_transposed_backward(x, dy, &self.weight.data, &mut grads.weight.data, dx, false, [n, i, o]);
        Ok(())
    }

    pub fn zeros_like(&self) -> Self {
        Linear { weight: self.weight.zeros_like(), bias: self.bias.zeros_like() }
    }
}

/// `y = x Wᵀ` over rows, without a bias: `x: [N, I]`, `weight: [O, I]` → `[N, O]`.
pub fn times_transposed<T: Real>(x: &[T], weight: &[T], [n, i, o]: [usize; 3]) -> Vec<T> {
    let mut y = vec![T::ZERO; n * o];
    gemm(&mut y, Mat::new(x, n, i), Mat::new(weight, o, i).t(), false, Threads(1));
    y
}

/// The backward of [`times_transposed`]: `∂W += dyᵀ x`, and `∂x = dy W` (added to `dx`
/// when `accumulate_dx`; not computed without a `dx`).
pub fn times_transposed_backward<T: Real>(
    x: &[T],
    dy: &[T],
    weight: &[T],
    d_weight: &mut [T],
    dx: Option<&mut [T]>,
    accumulate_dx: bool,
    [n, i, o]: [usize; 3],
) {
    gemm(d_weight, Mat::new(dy, n, o).t(), Mat::new(x, n, i), true, Threads(1));
    if let Some(dx) = dx {
        gemm(dx, Mat::new(dy, n, o), Mat::new(weight, o, i), accumulate_dx, Threads(1));
    }
}
