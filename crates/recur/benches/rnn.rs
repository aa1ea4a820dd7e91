//! Kernel benchmark: training step, inference and streaming latency for LSTM and GRU,
//! uni- and bidirectional, 1 and 2 threads, plain and with layer norm + variational
//! dropout, on the shapes of issue #2, plus the sgemm peak measured in the same run.
//!
//!     cargo bench -p recur --bench rnn              # JSON lines, one per configuration
//!     cargo bench -p recur --bench rnn -- --quick   # fewer repetitions
//!     cargo bench -p recur --bench rnn -- --only S1 LSTM   # rows whose shape/cell match
//!     python3 bench/compare.py                      # side by side with PyTorch
//!
//! A training step is: forward (keeping the cache), a linear head on the last step,
//! MSE against a target, backward through head and encoder, one AdamW update
//! (`recur::classic::compare`, the same code `recur compare` times). `train_model` rows
//! time the same step through a `SequenceModel`, masked MSE, clipping and AdamW over named
//! parameters: the overhead of the model stack over the bare kernel.

use recur::classic::compare::{
    median_seconds, time_inference, time_model_overhead, time_streaming_step, time_training_step, BatchShape,
};
use recur::rnn::{CellKind, RnnConfig};
use recur_kernels::matmul::{gemm, Mat, Threads};

struct Shape {
    name: &'static str,
    batch: usize,
    steps: usize,
    input: usize,
    hidden: usize,
}

const S1: Shape = Shape { name: "S1", batch: 32, steps: 60, input: 12, hidden: 64 };
const S2: Shape = Shape { name: "S2", batch: 64, steps: 120, input: 12, hidden: 128 };
const S3: Shape = Shape { name: "S3", batch: 1, steps: 1, input: 12, hidden: 64 };
const SHAPES: [&str; 3] = [S1.name, S2.name, S3.name];
const CELLS: [CellKind; 2] = [CellKind::Lstm, CellKind::GruResetAfter];

/// A cell's name as `--only` and the JSON rows spell it (PyTorch's mode).
fn cell_name(cell: CellKind) -> &'static str {
    cell.torch_mode().expect("benchmarked cells exist in PyTorch")
}

fn sgemm_peak(threads: usize, budget: f64) -> f64 {
    let n = 1024;
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let b = a.clone();
    let mut c = vec![0.0f32; n * n];
    let secs = median_seconds(budget, 5, || {
        gemm(&mut c, Mat::new(&a, n, n), Mat::new(&b, n, n), false, Threads(threads));
        Ok(())
    })
    .expect("a product cannot fail");
    2.0 * (n * n * n) as f64 / secs / 1e9
}

/// Matrix-product FLOPs of the forward pass: 2·T·B·G·(D+H) per direction.
fn forward_flops(cell: CellKind, s: &Shape, dirs: usize) -> f64 {
    (2 * s.steps * s.batch * cell.gates() * s.hidden * (s.input + s.hidden) * dirs) as f64
}

fn config(cell: CellKind, s: &Shape, bidirectional: bool, regularized: bool) -> RnnConfig {
    RnnConfig {
        cell,
        input_size: s.input,
        hidden_size: s.hidden,
        bidirectional,
        layer_norm: regularized,
        input_dropout: if regularized { 0.2 } else { 0.0 },
        state_dropout: if regularized { 0.2 } else { 0.0 },
        ..RnnConfig::default()
    }
}

fn main() {
    recur::keep_freed_memory();
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = if quick { 0.15 } else { 0.5 };
    // `--only S1 LSTM`: the words after `--only` that name a shape or a cell restrict the rows
    let args: Vec<String> = std::env::args().collect();
    let only: Vec<String> = match args.iter().position(|a| a == "--only") {
        Some(i) => args[i + 1..].iter().take_while(|a| !a.starts_with("--")).map(|a| a.to_uppercase()).collect(),
        None => Vec::new(),
    };
    let cell_names = CELLS.map(cell_name);
    if let Some(w) = only.iter().find(|w| !SHAPES.contains(&w.as_str()) && !cell_names.contains(&w.as_str())) {
        eprintln!("--only {w}: not a shape ({SHAPES:?}) or a cell ({cell_names:?})");
        std::process::exit(2);
    }
    let wanted = |options: &[&str], value: &str| {
        let named: Vec<&String> = only.iter().filter(|w| options.contains(&w.as_str())).collect();
        named.is_empty() || named.iter().any(|w| *w == value)
    };
    for threads in [1, 2] {
        let gflops = sgemm_peak(threads, budget * 2.0);
        println!(
            "{}",
            serde_json::json!({"impl": "recur", "kind": "sgemm_peak", "threads": threads, "gflops": gflops})
        );
    }
    for shape in [&S1, &S2].into_iter().filter(|s| wanted(&SHAPES, s.name)) {
        let batch = BatchShape { batch: shape.batch, steps: shape.steps };
        for cell in CELLS.into_iter().filter(|&c| wanted(&cell_names, cell_name(c))) {
            for bidirectional in [false, true] {
                let dirs = if bidirectional { 2 } else { 1 };
                for threads in [1, 2] {
                    for regularized in [false, true] {
                        let cfg = config(cell, shape, bidirectional, regularized);
                        let fwd = forward_flops(cell, shape, dirs);
                        let train = time_training_step(&cfg, batch, threads, budget).expect("valid config");
                        let infer = time_inference(&cfg, batch, threads, budget).expect("valid config");
                        // bare and model steps alternately: their ratio is the model's overhead
                        let (bare, through_model) =
                            time_model_overhead(&cfg, batch, threads, 2.0 * budget).expect("valid config");
                        for (kind, t, flops) in [
                            ("train", train, 3.0 * fwd),
                            ("infer", infer, fwd),
                            ("train_model", through_model, 3.0 * fwd),
                        ] {
                            let mut row = serde_json::json!({"impl": "recur", "kind": kind, "cell": cell_name(cell), "dirs": dirs,
                                "shape": shape.name, "threads": threads, "variant": if regularized { "ln+vd" } else { "plain" },
                                "seconds": t, "gflops": flops / t / 1e9});
                            if kind == "train_model" {
                                row["bare_seconds"] = bare.into();
                            }
                            println!("{row}");
                        }
                    }
                }
            }
        }
    }
    for cell in CELLS.into_iter().filter(|&c| wanted(&SHAPES, S3.name) && wanted(&cell_names, cell_name(c))) {
        for regularized in [false, true] {
            let t =
                time_streaming_step(&config(cell, &S3, false, regularized), S3.batch, budget).expect("causal config");
            println!(
                "{}",
                serde_json::json!({"impl": "recur", "kind": "stream", "cell": cell_name(cell), "dirs": 1, "shape": S3.name,
                    "threads": 1, "variant": if regularized { "ln+vd" } else { "plain" }, "seconds": t})
            );
        }
    }
}
