//! The per-step recurrent products on one thread, with the gemm crate's left operand
//! packed (its default), read in place (what `matmul` sets), and read in place from rows
//! padded by 16 values (what `matmul::Transposed` stores), alternately:
//!     cargo run --release -p recur-kernels --example gemm_shapes
//! Forward: `P_h[B,G] = h[B,H] · W_hhᵀ` (W_hh transposed once, row-major `[H,G]`);
//! backward: `∂h[B,H] += ∂P_h[B,G] · W_hh[G,H]`; `G = 4H`. Prints GFLOP/s, best of 5, and
//! the rate of a 1024³ product (the benchmark's "sgemm peak") for reference. (The backward
//! reads W_hh as stored, unpadded; its padded column is for comparison only.)
use std::time::Instant;

/// The gemm crate's own threshold: pack once more than 8 micro-tiles of columns reuse the operand.
const GEMM_DEFAULT: usize = 8;

/// `c[m,n] (+)= a[m,k] · b[k,n]`, row-major (`b`'s rows `b_stride` apart), best seconds per
/// product over 5 rounds.
fn seconds_per_product(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], b_stride: usize, accumulate: bool) -> f64 {
    let mut c = vec![0f32; m * n];
    let reps = (2_000_000_000 / (2 * m * n * k)).max(10);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..reps {
            // SAFETY: a, b and c hold m·k, (k−1)·b_stride + n and m·n values, addressed row-major.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    accumulate,
                    a.as_ptr(),
                    1,
                    k as isize,
                    b.as_ptr(),
                    1,
                    b_stride as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
        best = best.min(start.elapsed().as_secs_f64() / reps as f64);
    }
    best
}

fn main() {
    let big: Vec<f32> = (0..1024 * 1024).map(|i| (i as f32 * 0.7).sin()).collect();
    let peak = 2.0 * 1024f64.powi(3) / seconds_per_product(1024, 1024, 1024, &big, &big, 1024, false) / 1e9;
    println!("1024³ product: {peak:.1} GFLOP/s");
    println!("{:>4} {:>4} {:>9} {:>16} {:>16} {:>16}", "B", "H", "product", "packed", "in place", "in place, padded");
    for (batch, hidden) in [(32, 64), (64, 64), (64, 128), (128, 128), (256, 128), (64, 256), (256, 256)] {
        let g = 4 * hidden;
        let values = |n: usize, f: f32| (0..n).map(|i| (i as f32 * f).sin()).collect::<Vec<f32>>();
        let (h, w) = (values(batch * g, 0.1), values(g * (hidden + 16), 0.3));
        for (name, k, n, accumulate) in [("forward", hidden, g, false), ("backward", g, hidden, true)] {
            let flops = 2.0 * (batch * k * n) as f64;
            let mut rates = [0.0; 3];
            for (rate, (threshold, pad)) in rates.iter_mut().zip([(GEMM_DEFAULT, 0), (256, 0), (256, 16)]) {
                gemm::set_lhs_packing_threshold_single_thread(threshold);
                *rate = flops / seconds_per_product(batch, k, n, &h, &w, n + pad, accumulate) / 1e9;
            }
            println!("{batch:>4} {hidden:>4} {name:>9} {:>16.1} {:>16.1} {:>16.1}", rates[0], rates[1], rates[2]);
        }
    }
}
