//! ∂W_hh and ∂W_ih of an LSTM as the driver forms them, one product over the rows
//! `[h̃_{t−1} | x̃_t]` (`sequence::joint_weight_gradients`, copies included), against the two
//! products apart it replaced (`∂P_hᵀ·H̃` and the narrow `∂P_hᵀ·X̃`). One thread, 25
//! alternating pairs; prints each side's median and the median of the pairs' ratios (joint
//! over apart), at S1 and S2:
//!     cargo run --release -p recur-kernels --example joint_weight_gradients
use recur_kernels::matmul::{gemm, Mat, Threads};
use recur_kernels::sequence::joint_weight_gradients;
use recur_kernels::{CellGrads, Dims, SequenceOptions};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let values = |n: usize, f: f32| (0..n).map(|i| (i as f32 * f).sin()).collect::<Vec<f32>>();
    println!(
        "{:>5} {:>5} {:>4} {:>3} {:>12} {:>12} {:>12}",
        "shape", "rows", "H", "D", "apart ms", "joint ms", "joint/apart"
    );
    for (name, batch, steps, hidden, input) in [("S1", 32, 60, 64, 12), ("S2", 64, 120, 128, 12)] {
        let dims = Dims { steps, batch, input, hidden };
        let (n, g) = (steps * batch, 4 * hidden);
        let (d_proj_h, h_used, x) = (values(n * g, 0.13), values(n * hidden, 0.17), values(n * input, 0.19));
        let (mut w_hh, mut w_ih) = (vec![0f32; g * hidden], vec![0f32; g * input]);
        let mut joined = vec![0f32; n * (hidden + input)];
        let options = SequenceOptions::default();
        let reps = if name == "S1" { 20 } else { 3 };
        let (mut apart, mut joint) = (Vec::new(), Vec::new());
        for _ in 0..25 {
            let start = Instant::now();
            for _ in 0..reps {
                gemm(&mut w_hh, Mat::new(&d_proj_h, n, g).t(), Mat::new(&h_used, n, hidden), true, Threads(1));
                gemm(&mut w_ih, Mat::new(&d_proj_h, n, g).t(), Mat::new(&x, n, input), true, Threads(1));
            }
            apart.push(start.elapsed().as_secs_f64() / reps as f64);
            let start = Instant::now();
            for _ in 0..reps {
                let grads = &mut CellGrads::matrices(&mut w_ih, &mut w_hh);
                joint_weight_gradients(dims, Mat::new(&d_proj_h, n, g), &h_used, &x, &options, &mut joined, grads);
            }
            joint.push(start.elapsed().as_secs_f64() / reps as f64);
        }
        let ratio = median(joint.iter().zip(&apart).map(|(j, a)| j / a).collect());
        let (apart, joint) = (median(apart), median(joint));
        println!("{name:>5} {n:>5} {hidden:>4} {input:>3} {:>12.3} {:>12.3} {ratio:>12.3}", 1e3 * apart, 1e3 * joint);
    }
}
