//! Kernel benchmark: training step, inference and streaming latency for LSTM and GRU,
//! uni- and bidirectional, 1 and 2 threads, plain and with layer norm + variational
//! dropout, on the shapes of issue #2, plus the sgemm peak measured in the same run.
//!
//!     cargo bench -p recur --bench rnn              # readable table
//!     cargo bench -p recur --bench rnn -- --json    # JSON lines (bench/compare.py reads these)
//!     cargo bench -p recur --bench rnn -- --quick   # fewer repetitions
//!
//! A training step is: forward (keeping the cache), a linear head on the last step,
//! MSE against a target, backward through head and encoder, one AdamW update.

use std::time::Instant;

use recur::heads::Linear;
use recur::optim::{AdamW, AdamWConfig};
use recur::rnn::{CellKind, InitialState, Rnn, RnnCache, RnnConfig, SequenceBatch};
use recur::train::encoder_and_head_slots;
use recur::Rng;
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

/// Median seconds per call, after warm-up, over at least `min_reps` calls and `budget` seconds.
fn time_it(budget: f64, min_reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < min_reps || (start.elapsed().as_secs_f64() < budget && samples.len() < 10_000) {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64());
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[samples.len() / 2]
}

fn sgemm_peak(threads: usize, budget: f64) -> f64 {
    let n = 1024;
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let b = a.clone();
    let mut c = vec![0.0f32; n * n];
    let secs = time_it(budget, 5, || gemm(&mut c, Mat::new(&a, n, n), Mat::new(&b, n, n), false, Threads(threads)));
    2.0 * (n * n * n) as f64 / secs / 1e9
}

/// Matrix-product FLOPs of one direction's forward: 2·T·B·G·(D+H).
fn forward_flops(cell: CellKind, s: &Shape, dirs: usize) -> f64 {
    let g = cell.gates() * s.hidden;
    (2 * s.steps * s.batch * g * (s.input + s.hidden) * dirs) as f64
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

fn train_step_seconds(
    cell: CellKind,
    s: &Shape,
    bidirectional: bool,
    regularized: bool,
    threads: usize,
    budget: f64,
) -> f64 {
    let cfg = config(cell, s, bidirectional, regularized);
    let width = cfg.output_size();
    let mut rnn = Rnn::<f32>::new(cfg, 1).unwrap();
    rnn.set_threads(threads);
    let mut rng = Rng::new(2);
    let mut head = Linear::<f32>::new(width, s.input, &mut rng);
    let x: Vec<f32> = (0..s.steps * s.batch * s.input).map(|_| rng.normal() as f32).collect();
    let target: Vec<f32> = (0..s.batch * s.input).map(|_| rng.normal() as f32).collect();
    let mut opt = AdamW::new(AdamWConfig::default());
    let mut seed = 0;
    let mut cache = RnnCache::default();
    time_it(budget, 5, || {
        seed += 1;
        let input = SequenceBatch { x: &x, steps: s.steps, batch: s.batch, lengths: None };
        let out = rnn.forward_train_reusing(&input, &InitialState::default(), seed, &mut cache).unwrap();
        let last = &out.output[(s.steps - 1) * s.batch * width..];
        let y = head.forward(last).unwrap();
        let scale = 2.0 / y.len() as f32;
        let dy: Vec<f32> = y.iter().zip(&target).map(|(a, b)| scale * (a - b)).collect();
        let mut head_grads = head.zeros_like();
        let d_last = head.backward(last, &dy, &mut head_grads).unwrap();
        let mut d_output = vec![0.0f32; out.output.len()];
        d_output[(s.steps - 1) * s.batch * width..].copy_from_slice(&d_last);
        let mut grads = rnn.zero_grads();
        rnn.backward(&input, &mut cache, &d_output, None, None, &mut grads).unwrap();
        opt.step(1e-3, &mut encoder_and_head_slots(&mut rnn, &mut head, &grads, &head_grads));
    })
}

fn inference_seconds(
    cell: CellKind,
    s: &Shape,
    bidirectional: bool,
    regularized: bool,
    threads: usize,
    budget: f64,
) -> f64 {
    let cfg = config(cell, s, bidirectional, regularized);
    let width = cfg.output_size();
    let mut rnn = Rnn::<f32>::new(cfg, 1).unwrap();
    rnn.set_threads(threads);
    let mut rng = Rng::new(2);
    let head = Linear::<f32>::new(width, s.input, &mut rng);
    let x: Vec<f32> = (0..s.steps * s.batch * s.input).map(|_| rng.normal() as f32).collect();
    time_it(budget, 5, || {
        let input = SequenceBatch { x: &x, steps: s.steps, batch: s.batch, lengths: None };
        let out = rnn.forward(&input, &InitialState::default()).unwrap();
        std::hint::black_box(head.forward(&out.output[(s.steps - 1) * s.batch * width..]).unwrap());
    })
}

fn streaming_seconds(cell: CellKind, s: &Shape, regularized: bool, budget: f64) -> f64 {
    let rnn = Rnn::<f32>::new(config(cell, s, false, regularized), 1).unwrap();
    let mut stream = rnn.stream(s.batch, &InitialState::default()).unwrap();
    let x: Vec<f32> = (0..s.batch * s.input).map(|i| (i as f32 * 0.1).sin()).collect();
    // Time blocks of 100 steps to keep clock overhead out of a ~µs measurement.
    time_it(budget, 20, || {
        for _ in 0..100 {
            std::hint::black_box(stream.step(&x).unwrap());
        }
    }) / 100.0
}

fn main() {
    recur::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let quick = args.iter().any(|a| a == "--quick");
    let budget = if quick { 0.15 } else { 0.5 };
    let mut rows: Vec<String> = Vec::new();
    let mut emit = |line: serde_json::Value| {
        if json {
            println!("{line}");
        } else {
            rows.push(line.to_string());
        }
    };
    for threads in [1, 2] {
        let peak = sgemm_peak(threads, budget * 2.0);
        emit(serde_json::json!({"impl": "recur", "kind": "sgemm_peak", "threads": threads, "gflops": peak}));
    }
    for shape in [&S1, &S2] {
        for cell in [CellKind::Lstm, CellKind::GruResetAfter] {
            for bidirectional in [false, true] {
                let dirs = if bidirectional { 2 } else { 1 };
                for threads in [1, 2] {
                    for regularized in [false, true] {
                        let variant = if regularized { "ln+vd" } else { "plain" };
                        let fwd = forward_flops(cell, shape, dirs);
                        let t = train_step_seconds(cell, shape, bidirectional, regularized, threads, budget);
                        emit(
                            serde_json::json!({"impl": "recur", "kind": "train", "cell": cell.torch_mode(), "dirs": dirs, "shape": shape.name,
                            "threads": threads, "variant": variant, "seconds": t, "gflops": 3.0 * fwd / t / 1e9}),
                        );
                        let t = inference_seconds(cell, shape, bidirectional, regularized, threads, budget);
                        emit(
                            serde_json::json!({"impl": "recur", "kind": "infer", "cell": cell.torch_mode(), "dirs": dirs, "shape": shape.name,
                            "threads": threads, "variant": variant, "seconds": t, "gflops": fwd / t / 1e9}),
                        );
                    }
                }
            }
        }
    }
    for cell in [CellKind::Lstm, CellKind::GruResetAfter] {
        for regularized in [false, true] {
            let variant = if regularized { "ln+vd" } else { "plain" };
            let t = streaming_seconds(cell, &S3, regularized, budget);
            emit(
                serde_json::json!({"impl": "recur", "kind": "stream", "cell": cell.torch_mode(), "dirs": 1, "shape": S3.name,
                "threads": 1, "variant": variant, "seconds": t}),
            );
        }
    }
    if !json {
        for r in rows {
            println!("{r}");
        }
    }
}
