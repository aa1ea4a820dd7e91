//! A minimal owned tensor: a shape and row-major data. The kernels work on slices;
//! this is what parameters, gradients and state dicts are made of.

use recur_kernels::Real;

/// An owned, row-major, n-dimensional array.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<T = f32> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

impl<T: Real> Tensor<T> {
    pub fn zeros(shape: &[usize]) -> Self {
        Tensor { shape: shape.to_vec(), data: vec![T::ZERO; shape.iter().product()] }
    }

    pub fn filled(shape: &[usize], value: T) -> Self {
        Tensor { shape: shape.to_vec(), data: vec![value; shape.iter().product()] }
    }

    pub fn zeros_like(&self) -> Self {
        Self::zeros(&self.shape)
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Converts every element to another scalar type.
    pub fn cast<U: Real>(&self) -> Tensor<U> {
        Tensor { shape: self.shape.clone(), data: self.data.iter().map(|v| U::from_f64(v.to_f64())).collect() }
    }
}
