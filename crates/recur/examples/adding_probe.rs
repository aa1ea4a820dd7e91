//! Probe: how each cell fares on the adding problem at a given length.
//!     cargo run --release -p recur --example adding_probe -- 50 1500
use recur::rnn::CellKind;
use recur::tasks::adding::train_adding;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().unwrap()).collect();
    let (steps, iterations) = (args.first().copied().unwrap_or(50), args.get(1).copied().unwrap_or(1500));
    for cell in [CellKind::ElmanTanh, CellKind::Lstm, CellKind::GruResetAfter] {
        let t = std::time::Instant::now();
        let r = train_adding(cell, steps, 32, iterations, 1).unwrap();
        println!("{cell:?}: T={steps} test MSE {:.4} ({:.1} s)", r.test_mse, t.elapsed().as_secs_f64());
    }
}
