//! The model stack's overhead over the bare kernel for one configuration:
//!     cargo run --release -p recur --example model_overhead -- lstm|gru bi|uni THREADS s1|s2
use recur::classic::compare::{time_model_overhead, BatchShape};
use recur::rnn::{CellKind, RnnConfig};

fn main() {
    recur::keep_freed_memory();
    let a: Vec<String> = std::env::args().skip(1).collect();
    let cell = if a.first().map(String::as_str) == Some("gru") { CellKind::GruResetAfter } else { CellKind::Lstm };
    let bidirectional = a.get(1).map(String::as_str) == Some("bi");
    let threads: usize = a.get(2).and_then(|t| t.parse().ok()).unwrap_or(1);
    let (shape, hidden) = if a.get(3).map(String::as_str) == Some("s2") {
        (BatchShape { batch: 64, steps: 120 }, 128)
    } else {
        (BatchShape { batch: 32, steps: 60 }, 64)
    };
    let config = RnnConfig { cell, input_size: 12, hidden_size: hidden, bidirectional, ..RnnConfig::default() };
    let (bare, model) = time_model_overhead(&config, shape, threads, 2.0).unwrap();
    println!(
        "{cell:?} bi={bidirectional} threads={threads}: bare {:.2} ms, through the model {:.2} ms ({:+.0} %)",
        bare * 1e3,
        model * 1e3,
        100.0 * (model / bare - 1.0)
    );
}
