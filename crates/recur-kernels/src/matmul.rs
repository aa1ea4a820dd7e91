//! Strided matrix products over the `gemm` crate.
//!
//! Every product the kernels need is `C (+)= A · B` where `A` and `B` are row-major
//! buffers possibly read transposed. Transposition is a stride swap, never a copy
//! (the dfdx trick), so `X · Wᵀ`, `dG · W` and `dGᵀ · X` all go through [`gemm()`].

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

    /// Whether the last element the (non-empty) view addresses lies inside its slice.
    fn in_bounds(&self) -> bool {
        (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.data.len()
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }
}

/// Values added to each row of a [`Transposed`] copy.
const TRANSPOSED_ROW_PAD: usize = 16;

/// `Aᵀ` for `a: [rows, cols]` row-major, kept row-major `[cols, rows]` with each row padded
/// by 16 values. gemm packs a left operand whose columns are not contiguous before every
/// product; a weight read at every step (`h_{t−1} · W_hhᵀ`) is therefore transposed once
/// per sequence, so that no step packs it. gemm then reads the operand's columns in place,
/// one row of this copy apart: the padding keeps that distance off multiples of 4 KiB,
/// where the columns fell into the same L1 sets (`gemm_shapes`, forward product at B = 256,
/// H = 256: 220–225 GFLOP/s unpadded, 248–254 padded; no shape measured slower padded).
pub struct Transposed<T> {
    data: Vec<T>,
    rows: usize,
    cols: usize,
}

impl<T: Real> Transposed<T> {
    pub fn of(a: &[T], rows: usize, cols: usize) -> Self {
        let stride = rows + TRANSPOSED_ROW_PAD;
        let mut data = vec![T::ZERO; cols * stride];
        // read along a's rows, write down the copy's columns: 1.9–2.7× faster than the
        // other way round at 256×64 and 512×128 (strided reads missed L1; strided writes
        // are buffered)
        for r in 0..rows {
            for (c, &v) in a[r * cols..(r + 1) * cols].iter().enumerate() {
                data[c * stride + r] = v;
            }
        }
        Transposed { data, rows: cols, cols: rows }
    }

    /// The `[cols, rows]` transpose as a matrix view.
    pub fn view(&self) -> Mat<'_, T> {
        Mat::strided(&self.data, self.rows, self.cols, self.cols + TRANSPOSED_ROW_PAD)
    }
}

/// The gemm crate copies ("packs") a single-threaded product's left operand — in its
/// column-major view, where `C = A·B` row-major is computed as `Cᵀ = Bᵀ·Aᵀ` — into
/// panels whenever more than 8 micro-tiles of columns reuse it, even when its columns
/// are already contiguous. For the per-step recurrent product at batch 64
/// (`h_{t−1} · W_hhᵀ`, a [`Transposed`] W_hh) that copied all of W_hh at every step.
/// Read in place (the forward's from the padded copy), the recurrent products ran as fast
/// or faster at every shape measured (`cargo run --release -p recur-kernels --example
/// gemm_shapes`, forward and backward, H = 64…256: 11–17 % more GFLOP/s at B = 64, 1–5 %
/// at 128 and 256, about the same at 32), and S2 one-thread steps (B = 64, H = 128) 4–9 %
/// faster (`profile_step`: LSTM and GRU, training and inference, uni and bi; 2-thread and
/// S1 rows unchanged). Operands with strided columns are still packed. The setting is
/// process-wide (gemm keeps it in an atomic) and changes speed only: the micro-kernel
/// adds in the same order either way (test `reading_the_left_operand_in_place_gives_the_packed_bits`).
fn read_contiguous_left_operands_in_place() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| gemm::set_lhs_packing_threshold_single_thread(IN_PLACE_THRESHOLD));
}

/// [`gemm()`] with the gemm crate's own packing threshold
/// (`DEFAULT_LHS_PACKING_THRESHOLD_SINGLE_THREAD`) for this one call: how a large
/// product runs fastest. The benchmark's sgemm peak is measured through it; read in place,
/// as the recurrent products are, a 1024³ product ran 20–25 % slower (200 against
/// 245–256 GFLOP/s on one thread here), which made every fraction of "the peak" that
/// much too high. Same bits either way.
pub fn gemm_packed<T: Real>(c: &mut [T], a: Mat<'_, T>, b: Mat<'_, T>, accumulate: bool, threads: Threads) {
    with_packed_left_operands(|| self::gemm(c, a, b, accumulate, threads));
}

/// Calls in flight that asked for the gemm crate's own packing.
static PACKING_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs `f` with the gemm crate's own packing threshold, restored to
/// [`IN_PLACE_THRESHOLD`] when the last such call ends. The setting is process-wide: a
/// per-step product on another thread meanwhile may pack its operand too, which changes
/// its speed, never its bits.
fn with_packed_left_operands<R>(f: impl FnOnce() -> R) -> R {
    use std::sync::atomic::Ordering::SeqCst;
    read_contiguous_left_operands_in_place();
    if PACKING_CALLS.fetch_add(1, SeqCst) == 0 {
        gemm::set_lhs_packing_threshold_single_thread(gemm::DEFAULT_LHS_PACKING_THRESHOLD_SINGLE_THREAD);
    }
    let out = f();
    if PACKING_CALLS.fetch_sub(1, SeqCst) == 1 {
        gemm::set_lhs_packing_threshold_single_thread(IN_PLACE_THRESHOLD);
    }
    out
}

/// Micro-tiles of columns up to which a single-threaded product reads its left operand
/// in place (the most gemm accepts): see [`read_contiguous_left_operands_in_place`].
const IN_PLACE_THRESHOLD: usize = 256;

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
    assert!(a.in_bounds() && b.in_bounds());
    // gemm's micro-kernel tiles run along the columns of a row-major output; with fewer
    // columns than a register holds (∂W_ih: `[G, D]`, D = 12) most of each tile idles, so
    // such a product is computed column-major into scratch and added back transposed.
    // So is a weight gradient, Aᵀ·B summed over the T·B rows of a sequence (`A` read
    // column-major, `k` large), with the crate's own packing: gemm's micro-tiles then run
    // along G, the output's long side, over packed operands. ∂W_hh at S1 (G = 256, H = 64,
    // T·B = 1920, one AVX2 thread) ran at 74–79 GFLOP/s this way against 51–54 row-major
    // as before, 59–70 column-major with the left operand read in place, 51–57 row-major
    // packed (`cargo run --release -p recur-kernels --example weight_gradient_layout`).
    let narrow = n < NARROW_COLUMNS && m >= 4 * NARROW_COLUMNS;
    let read_column_major = a.row_stride == 1 && a.col_stride != 1 && k >= SUMMED_ROWS;
    if narrow && read_column_major {
        // A narrow weight gradient (∂W_ih = ∂P_xᵀ·x, `[G, D]`): as Cᵀ = Bᵀ·A, computed
        // column-major — the same memory as C row-major — with the crate's packing, its
        // micro-tiles along D and ∂P_x packed from its rows as stored. The same bits as
        // the column-major C below, and faster at S2 (∂P_x of 7680 rows, G = 512, D = 12,
        // one AVX2 thread: 1.92 against 2.45 ms, best of 10; S1 the same).
        // Into a scratch product added afterwards, not into C with the crate's own
        // accumulation, which adds in per block of k and so gives other bits (the test below).
        let mut scratch = vec![T::ZERO; m * n];
        // SAFETY: as below, with `scratch` a fresh column-major `[n, m]` buffer.
        with_packed_left_operands(|| unsafe { raw_gemm(&mut scratch, (1, n as isize), false, b.t(), a.t(), threads) });
        for (v, &p) in c[..m * n].iter_mut().zip(&scratch) {
            *v = if accumulate { *v + p } else { p };
        }
        return;
    }
    let summed_over_rows = read_column_major && m * n >= SUMMED_OUTPUT;
    if narrow || summed_over_rows {
        let mut scratch = vec![T::ZERO; m * n];
        // SAFETY: as below, with `scratch` a fresh column-major `[m, n]` buffer.
        let mut product = || unsafe { raw_gemm(&mut scratch, (1, m as isize), false, a, b, threads) };
        match summed_over_rows {
            true => with_packed_left_operands(product),
            false => product(),
        }
        for (i, row) in c[..m * n].chunks_exact_mut(n).enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                let p = scratch[j * m + i];
                *v = if accumulate { *v + p } else { p };
            }
        }
        return;
    }
    // SAFETY: all three views were bounds-checked above; `c` does not alias `a` or `b`
    // (it is a unique borrow).
    unsafe { raw_gemm(c, (n as isize, 1), accumulate, a, b, threads) };
}

/// `C = Aᵀ·B` for a weight gradient (`a` a transposed view, `c` row-major `[m, n]`) as
/// [`gemm()`] computed it before it took the column-major path: handed to the gemm crate
/// with the row-major output, the left operand read in place. The same bits; kept to
/// compare the two (`examples/weight_gradient_layout.rs`, and a test).
///
/// # Panics
/// As [`gemm()`].
pub fn weight_gradient_row_major<T: Real>(c: &mut [T], a: Mat<'_, T>, b: Mat<'_, T>) {
    let (m, n) = (a.rows, b.cols);
    assert!(a.cols == b.rows && c.len() >= m * n && m > 0 && n > 0 && a.cols > 0);
    assert!(a.in_bounds() && b.in_bounds());
    // SAFETY: the views were bounds-checked above and `c` holds `[m, n]` row-major.
    unsafe { raw_gemm(c, (n as isize, 1), false, a, b, Threads(1)) };
}

/// Output columns below which [`gemm`] computes through a column-major scratch.
const NARROW_COLUMNS: usize = 16;

/// Rows summed over (`k`) from which a product whose `A` is read column-major counts as a
/// weight gradient for [`gemm`], and the output size from which it does.
const SUMMED_ROWS: usize = 256;
const SUMMED_OUTPUT: usize = 4096;

/// `C (+)= A·B` through the gemm crate, `C` addressed with strides `(row, column)`.
///
/// # Safety
/// `c` must hold every element the strides address for `[A.rows, B.cols]`, and the views
/// must be in bounds.
unsafe fn raw_gemm<T: Real>(
    c: &mut [T],
    (row_stride, col_stride): (isize, isize),
    accumulate: bool,
    a: Mat<'_, T>,
    b: Mat<'_, T>,
    threads: Threads,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    read_contiguous_left_operands_in_place();
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            col_stride,
            row_stride,
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

    #[test]
    fn a_padded_transposed_copy_multiplies_as_the_transposed_view() {
        // W: [G, H] as stored; x · Wᵀ through the copy and through the stride-swapped view
        for (b, h, g) in [(3, 5, 7), (40, 24, 96)] {
            let w: Vec<f64> = (0..g * h).map(|i| (i as f64 * 0.23).sin()).collect();
            let x: Vec<f64> = (0..b * h).map(|i| (i as f64 * 0.41).cos()).collect();
            let copy = Transposed::of(&w, g, h);
            assert_eq!((copy.view().rows(), copy.view().cols()), (h, g));
            let (mut through_copy, mut through_view) = (vec![0.0; b * g], vec![0.0; b * g]);
            gemm(&mut through_copy, Mat::new(&x, b, h), copy.view(), false, Threads(1));
            gemm(&mut through_view, Mat::new(&x, b, h), Mat::new(&w, g, h).t(), false, Threads(1));
            assert!(through_copy.iter().zip(&through_view).all(|(p, q)| (p - q).abs() < 1e-12));
        }
    }

    #[test]
    fn reading_the_left_operand_in_place_gives_the_packed_bits() {
        // the per-step product at S2: h[64,128] · W_hhᵀ[128,512]; packed below threshold 11
        let (m, k, n) = (64, 128, 512);
        // the process-wide setting first, so that it cannot fire inside `product(8)`
        read_contiguous_left_operands_in_place();
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let product = |threshold: usize| {
            gemm::set_lhs_packing_threshold_single_thread(threshold);
            let mut c = vec![0f32; m * n];
            gemm(&mut c, Mat::new(&a, m, k), Mat::new(&b, k, n), false, Threads(1));
            c
        };
        let (packed, in_place) = (product(8), product(256));
        assert!(packed.iter().zip(&in_place).all(|(p, q)| p.to_bits() == q.to_bits()));
    }

    #[test]
    fn the_packed_product_gives_the_same_bits() {
        let (m, k, n) = (96, 200, 160);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.23).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.07).cos()).collect();
        let (mut packed, mut in_place) = (vec![0f32; m * n], vec![0f32; m * n]);
        gemm_packed(&mut packed, Mat::new(&a, m, k), Mat::new(&b, k, n), false, Threads(1));
        gemm(&mut in_place, Mat::new(&a, m, k), Mat::new(&b, k, n), false, Threads(1));
        assert!(packed.iter().zip(&in_place).all(|(p, q)| p.to_bits() == q.to_bits()));
    }

    #[test]
    fn weight_gradients_through_the_column_major_paths_give_the_row_major_bits() {
        // ∂W_hh = ∂P_hᵀ·h at S1's shape (G = 256, H = 64, T·B = 1920) and the narrow
        // ∂W_ih = ∂P_xᵀ·x at S2's (G = 512, D = 12, T·B = 7680), from zero, against the gemm
        // crate handed the row-major output; then accumulated: C + (the product)
        for (rows, g, width) in [(1920, 256, 64), (7680, 512, 12)] {
            let d_proj: Vec<f32> = (0..rows * g).map(|i| (i as f32 * 0.37).sin()).collect();
            let states: Vec<f32> = (0..rows * width).map(|i| (i as f32 * 0.11).cos()).collect();
            let (d_proj_t, states) = (Mat::new(&d_proj, rows, g).t(), Mat::new(&states, rows, width));
            let mut want = vec![0f32; g * width];
            weight_gradient_row_major(&mut want, d_proj_t, states);
            let mut c = vec![1f32; g * width];
            gemm(&mut c, d_proj_t, states, false, Threads(1));
            assert!(c.iter().zip(&want).all(|(p, q)| p.to_bits() == q.to_bits()), "{width}: overwrites, same bits");
            gemm(&mut c, d_proj_t, states, true, Threads(1));
            assert!(c.iter().zip(&want).all(|(p, q)| p.to_bits() == (q + q).to_bits()), "{width}: accumulates");
        }
    }

    #[test]
    fn narrow_outputs_through_the_column_major_path_match_naive_product() {
        // m ≥ 4·16 rows, n < 16 columns: the scratch path; A read transposed as ∂W_ih's is
        let (m, k, n) = (70, 33, 12);
        let at: Vec<f64> = (0..k * m).map(|i| (i as f64 * 0.29).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.13).cos()).collect();
        let mut a = vec![0.0; m * k];
        for p in 0..k {
            for i in 0..m {
                a[i * k + p] = at[p * m + i];
            }
        }
        let want = naive(&a, &b, m, k, n);
        let mut c = vec![1.0; m * n];
        gemm(&mut c, Mat::new(&at, k, m).t(), Mat::new(&b, k, n), false, Threads(1));
        assert!(c.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-12), "overwrites");
        gemm(&mut c, Mat::new(&at, k, m).t(), Mat::new(&b, k, n), true, Threads(1));
        assert!(c.iter().zip(&want).all(|(x, y)| (x - 2.0 * y).abs() < 1e-12), "accumulates");
    }
}
