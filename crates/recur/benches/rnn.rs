//! Kernel benchmark: training step, inference and streaming latency for LSTM and GRU,
//! uni- and bidirectional, 1 and 2 threads, plain and with layer norm + variational
//! dropout, on the shapes of issue #2, plus the sgemm peak measured in the same run
//! (`recur::benchmark`, which `recur bench` prints as tables).
//!
//!     cargo bench -p recur --bench rnn              # JSON lines, one per configuration
//!     cargo bench -p recur --bench rnn -- --quick   # fewer repetitions
//!     cargo bench -p recur --bench rnn -- --only S1 LSTM bi t2   # rows whose shape, cell, directions, threads match
//!     python3 bench/compare.py                      # side by side with PyTorch

use recur::benchmark::{plan, run_job};

fn main() {
    recur::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let budget = if args.iter().any(|a| a == "--quick") { 0.15 } else { 0.5 };
    let only: Vec<String> = match args.iter().position(|a| a == "--only") {
        Some(i) => args[i + 1..].iter().take_while(|a| !a.starts_with("--")).cloned().collect(),
        None => Vec::new(),
    };
    let jobs = plan(&only).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2);
    });
    for job in &jobs {
        for row in run_job(job, budget).expect("the planned configurations are valid") {
            println!("{}", serde_json::to_string(&row).expect("a row serialises"));
        }
    }
}
