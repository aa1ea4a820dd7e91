//! Strided matrix products over the `gemm` crate.
//!
//! Every product the kernels need is `C (+)= A · B` where `A` and `B` are row-major
//! buffers possibly read transposed. Transposition is a stride swap, never a copy
//! (the dfdx trick), so `X · Wᵀ`, `dG · W` and `dGᵀ · X` all go through [`gemm`].

use crate::real::Real;

/// A read-only view of a `rows × cols` matrix inside a slice.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a, T: Real> Mat<'a, T> {
    /// A contiguous row-major `rows × cols` matrix.
    ///
    /// # Panics
    /// If `data` is shorter than `rows * cols`.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "matrix view {rows}x{cols} over {} values", data.len());
        Mat { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// A `rows × cols` block of a row-major buffer whose rows are `row_stride` apart.
    ///
    /// # Panics
    /// If the block reaches past the end of `data`.
    pub fn strided(data: &'a [T], rows: usize, cols: usize, row_stride: usize) -> Self {
        assert!(
            rows == 0 || cols == 0 || (rows - 1) * row_stride + cols <= data.len(),
            "strided matrix view out of bounds"
        );
        Mat { data, rows, cols, row_stride, col_stride: 1 }
    }

    /// The transpose, as a view of the same memory.
    pub fn t(self) -> Self {
        Mat {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }
}

/// A row-major copy of `Aᵀ` for `a: [rows, cols]` row-major. gemm packs a left operand
/// whose columns are not contiguous before every product; a weight read at every step
/// (`h_{t−1} · W_hhᵀ`) is therefore transposed once per sequence, so that no step packs it.
pub fn transposed<T: Copy>(a: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(rows * cols);
    for c in 0..cols {
        out.extend((0..rows).map(|r| a[r * cols + c]));
    }
    out
}

/// How many threads a product may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threads(pub usize);

impl Threads {
    fn parallelism(self, flops: usize) -> gemm::Parallelism {
        // Below ~2 MFLOP the fork/join costs more than it saves on this class of CPU.
        if self.0 <= 1 || flops < 2_000_000 {
            gemm::Parallelism::None
        } else {
            gemm::Parallelism::Rayon(self.0)
        }
    }
}

/// `C = A·B` (`accumulate == false`) or `C += A·B` (`accumulate == true`), where `C`
/// is contiguous row-major `[A.rows, B.cols]`.
///
/// # Panics
/// If the inner dimensions differ or `c` is too short.
pub fn gemm<T: Real>(c: &mut [T], a: Mat<'_, T>, b: Mat<'_, T>, accumulate: bool, threads: Threads) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "inner dimensions of a product differ");
    assert!(c.len() >= m * n, "product output has {} values, needs {}", c.len(), m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].iter_mut().for_each(|v| *v = T::ZERO);
        }
        return;
    }
    // Bounds: the last element each view touches must lie inside its slice.
    let last = |v: &Mat<'_, T>| (v.rows - 1) * v.row_stride + (v.cols - 1) * v.col_stride;
    assert!(last(&a) < a.data.len() && last(&b) < b.data.len());
    // SAFETY: all three views were bounds-checked above; `c` does not alias `a` or `b`
    // (it is a unique borrow).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            threads.parallelism(2 * m * n * k),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn transposed_views_match_naive_product() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        let mut c = vec![0.0; m * n];
        gemm(&mut c, Mat::new(&a, m, k), Mat::new(&b, k, n), false, Threads(1));
        for (x, y) in c.iter().zip(&want) {
            assert!((x - y).abs() < 1e-12);
        }
        // (Bᵀ)ᵀ with B stored transposed: bt is [n, k]
        let mut bt = vec![0.0; n * k];
        for p in 0..k {
            for j in 0..n {
                bt[j * k + p] = b[p * n + j];
            }
        }
        gemm(&mut c, Mat::new(&a, m, k), Mat::new(&bt, n, k).t(), true, Threads(1));
        for (x, y) in c.iter().zip(&want) {
            assert!((x - 2.0 * y).abs() < 1e-12, "accumulate adds");
        }
    }
}
