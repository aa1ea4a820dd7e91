//! Loops one training step (S1: B=32, T=60, D=12, H=64) for a profiler, through the model
//! stack or on the bare kernel; bidirectional GRU unless `lstm` and `uni` say otherwise:
//!     cargo run --release -p recur --example model_step_loop -- [THREADS] [bare] [lstm] [uni]
use recur::classic::compare::{time_model_training_step, time_training_step, BatchShape};
use recur::rnn::{CellKind, RnnConfig};

fn main() {
    recur::keep_freed_memory();
    let threads = std::env::args().nth(1).and_then(|t| t.parse().ok()).unwrap_or(1);
    let bare = std::env::args().any(|a| a == "bare");
    let lstm = std::env::args().any(|a| a == "lstm");
    let config = RnnConfig {
        cell: if lstm { CellKind::Lstm } else { CellKind::GruResetAfter },
        input_size: 12,
        hidden_size: 64,
        bidirectional: !std::env::args().any(|a| a == "uni"),
        ..RnnConfig::default()
    };
    let shape = BatchShape { batch: 32, steps: 60 };
    let t = if bare {
        time_training_step(&config, shape, threads, 4.0)
    } else {
        time_model_training_step(&config, shape, threads, 4.0)
    };
    println!("{:.2} ms", t.unwrap() * 1e3);
}
