//! The weight gradient ∂W_hh = ∂P_hᵀ · h (`[G, H]`, summed over the T·B rows of a
//! sequence) computed row-major, as the gemm crate is handed a row-major output (it then
//! runs along H and packs the wide ∂P_h), against what `matmul::gemm` does for it: a
//! column-major output, so that gemm runs along G and packs the narrow h, with the crate's
//! own packing threshold. One thread, alternately, best of 7; prints GFLOP/s and whether
//! both give the same bits:
//!     cargo run --release -p recur-kernels --example weight_gradient_layout
use recur_kernels::matmul::{gemm, weight_gradient_row_major, Mat, Threads};
use std::time::Instant;

fn main() {
    println!(
        "{:>6} {:>4} {:>4} {:>6} {:>18} {:>18} {:>10}",
        "rows", "G", "H", "cell", "row-major GFLOP/s", "recur GFLOP/s", "same bits"
    );
    for (rows, h) in [(32 * 60, 64), (64 * 120, 128)] {
        for (cell, gates) in [("LSTM", 4), ("GRU", 3)] {
            let g = gates * h;
            let d_proj: Vec<f32> = (0..rows * g).map(|i| (i as f32 * 0.37).sin()).collect();
            let states: Vec<f32> = (0..rows * h).map(|i| (i as f32 * 0.11).cos()).collect();
            let (mut old, mut new) = (vec![0f32; g * h], vec![0f32; g * h]);
            let reps = (2_000_000_000 / (2 * rows * g * h)).max(5);
            let (mut old_best, mut new_best) = (f64::MAX, f64::MAX);
            for _ in 0..7 {
                let start = Instant::now();
                for _ in 0..reps {
                    weight_gradient_row_major(&mut old, Mat::new(&d_proj, rows, g).t(), Mat::new(&states, rows, h));
                }
                old_best = old_best.min(start.elapsed().as_secs_f64() / reps as f64);
                let start = Instant::now();
                for _ in 0..reps {
                    gemm(&mut new, Mat::new(&d_proj, rows, g).t(), Mat::new(&states, rows, h), false, Threads(1));
                }
                new_best = new_best.min(start.elapsed().as_secs_f64() / reps as f64);
            }
            let rate = |seconds: f64| 2.0 * (rows * g * h) as f64 / seconds / 1e9;
            let same = old.iter().zip(&new).all(|(a, b)| a.to_bits() == b.to_bits());
            println!("{rows:>6} {g:>4} {h:>4} {cell:>6} {:>18.1} {:>18.1} {same:>10}", rate(old_best), rate(new_best));
        }
    }
}
