//! Loops the through-the-model training step (for perf): cargo run --release -p recur --example model_step_loop
use recur::classic::compare::{time_model_training_step, BatchShape};
use recur::rnn::{CellKind, RnnConfig};

fn main() {
    recur::keep_freed_memory();
    let config = RnnConfig {
        cell: CellKind::GruResetAfter,
        input_size: 12,
        hidden_size: 64,
        bidirectional: true,
        ..RnnConfig::default()
    };
    let t = time_model_training_step(&config, BatchShape { batch: 32, steps: 60 }, 1, 4.0).unwrap();
    println!("{:.2} ms", t * 1e3);
}
