//! The fused kernels' benchmark (issue #2's shapes): a training step, inference and the
//! model stack's overhead for LSTM and GRU, one and two directions, 1 and 2 threads,
//! plain and with layer norm + variational dropout, at S1 and S2; streaming latency at S3;
//! and the sgemm peak measured in the same run, against which every row's GFLOP/s is read.
//! `cargo bench -p recur --bench rnn` prints its rows as JSON lines (what
//! `bench/compare.py` puts beside PyTorch's); `recur bench` prints them as tables.
//!
//! A training step is: forward keeping the cache, a linear head on the last step, MSE,
//! backward through head and encoder, one AdamW update
//! ([`time_training_step`](crate::classic::compare::time_training_step)).

use serde::Serialize;

use crate::classic::compare::{
    alternating_block_medians, inference_step, median, median_seconds, time_model_overhead, time_streaming_step,
    training_step, BatchShape,
};
use crate::error::{Error, Result};
use crate::rnn::{CellKind, RnnConfig};
use recur_kernels::matmul::{gemm_packed, Mat, Threads};

/// A benchmark shape: `B` sequences of `T` steps, `D` inputs, `H` hidden units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub name: &'static str,
    pub batch: usize,
    pub steps: usize,
    pub input: usize,
    pub hidden: usize,
}

pub const S1: Shape = Shape { name: "S1", batch: 32, steps: 60, input: 12, hidden: 64 };
pub const S2: Shape = Shape { name: "S2", batch: 64, steps: 120, input: 12, hidden: 128 };
/// Streaming: one sequence, one step at a time.
pub const S3: Shape = Shape { name: "S3", batch: 1, steps: 1, input: 12, hidden: 64 };
const SHAPES: [Shape; 3] = [S1, S2, S3];
const CELLS: [CellKind; 2] = [CellKind::Lstm, CellKind::GruResetAfter];
const THREADS: [usize; 2] = [1, 2];

/// A cell's name as the rows spell it (PyTorch's mode).
fn cell_name(cell: CellKind) -> &'static str {
    cell.torch_mode().unwrap_or("?")
}

/// One measured configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Job {
    /// The 1024³ sgemm on `threads` threads.
    Peak { threads: usize },
    /// Training step, inference and the model stack's step of one configuration, plain and
    /// with layer norm + variational dropout.
    Step { shape: Shape, cell: CellKind, bidirectional: bool, threads: usize },
    /// One streamed step at S3.
    Stream { cell: CellKind, regularized: bool },
}

/// One line of output (the JSON rows `bench/compare.py` reads; absent fields left out).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchRow {
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    /// `sgemm_peak`, `train`, `infer`, `train_model` or `stream`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dirs: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape: Option<&'static str>,
    pub threads: usize,
    /// `plain` or `ln+vd`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<&'static str>,
    /// Median seconds per call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Matrix-product GFLOP/s (training counts 3× the forward's products).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gflops: Option<f64>,
    /// `train_model` rows: the bare step timed alternately with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bare_seconds: Option<f64>,
    /// `ln+vd` training and inference rows: the median, over adjacent pairs of blocks of
    /// calls, of this variant's time over the plain kernel's
    /// ([`alternating_block_medians`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub over_plain: Option<f64>,
}

/// Pairs of adjacent blocks (plain, then layer norm + dropout) in which a training step or
/// an inference call is timed.
const BLOCKS: usize = 4;

/// Words of [`plan`] naming directions and thread counts, in the order of
/// `[false, true]` and [`THREADS`].
const DIRECTION_WORDS: [&str; 2] = ["UNI", "BI"];
const THREAD_WORDS: [&str; 2] = ["T1", "T2"];

/// The jobs of a run, restricted by `only`: words naming shapes (`S1`, `S2`, `S3`), cells
/// (`LSTM`, `GRU`), directions (`uni`, `bi`) or thread counts (`t1`, `t2`), any case; none
/// of a kind means all of that kind (`bench/compare.py` runs one configuration at a time
/// beside PyTorch's). The sgemm peaks always run.
///
/// # Errors
/// A word that names none of these.
pub fn plan(only: &[String]) -> Result<Vec<Job>> {
    let words: Vec<String> = only.iter().map(|w| w.to_uppercase()).collect();
    let (shape_names, cell_names) = (SHAPES.map(|s| s.name), CELLS.map(cell_name));
    let known = [&shape_names[..], &cell_names, &DIRECTION_WORDS, &THREAD_WORDS];
    if let Some(w) = words.iter().find(|w| !known.iter().any(|names| names.contains(&w.as_str()))) {
        return Err(Error::invalid(
            "only",
            format!(
                "`{w}` is not a shape ({shape_names:?}), a cell ({cell_names:?}), directions \
                 ({DIRECTION_WORDS:?}) or threads ({THREAD_WORDS:?})"
            ),
        ));
    }
    let wanted = |options: &[&str], value: &str| {
        let named: Vec<&String> = words.iter().filter(|w| options.contains(&w.as_str())).collect();
        named.is_empty() || named.iter().any(|w| *w == value)
    };
    let mut jobs: Vec<Job> = THREADS.map(|threads| Job::Peak { threads }).to_vec();
    for shape in [S1, S2].into_iter().filter(|s| wanted(&shape_names, s.name)) {
        for cell in CELLS.into_iter().filter(|&c| wanted(&cell_names, cell_name(c))) {
            for (bidirectional, dirs_word) in [false, true].into_iter().zip(DIRECTION_WORDS) {
                for (threads, threads_word) in THREADS.into_iter().zip(THREAD_WORDS) {
                    if wanted(&DIRECTION_WORDS, dirs_word) && wanted(&THREAD_WORDS, threads_word) {
                        jobs.push(Job::Step { shape, cell, bidirectional, threads });
                    }
                }
            }
        }
    }
    // streaming is one direction on one thread
    if wanted(&shape_names, S3.name) && wanted(&DIRECTION_WORDS, "UNI") && wanted(&THREAD_WORDS, "T1") {
        for cell in CELLS.into_iter().filter(|&c| wanted(&cell_names, cell_name(c))) {
            for regularized in [false, true] {
                jobs.push(Job::Stream { cell, regularized });
            }
        }
    }
    Ok(jobs)
}

/// The encoder of a benchmarked configuration (layer norm with variational dropout p = 0.2
/// on inputs and state when `regularized`).
pub fn config(cell: CellKind, shape: &Shape, bidirectional: bool, regularized: bool) -> RnnConfig {
    RnnConfig {
        cell,
        input_size: shape.input,
        hidden_size: shape.hidden,
        bidirectional,
        layer_norm: regularized,
        input_dropout: if regularized { 0.2 } else { 0.0 },
        state_dropout: if regularized { 0.2 } else { 0.0 },
        ..RnnConfig::default()
    }
}

/// Matrix-product FLOPs of the forward pass: 2·T·B·G·(D+H) per direction.
pub fn forward_flops(cell: CellKind, shape: &Shape, dirs: usize) -> f64 {
    (2 * shape.steps * shape.batch * cell.gates() * shape.hidden * (shape.input + shape.hidden) * dirs) as f64
}

/// GFLOP/s of the 1024³ sgemm (the gemm crate, with its own packing: `gemm_packed`) on
/// `threads` threads, median over about `budget` seconds.
pub fn sgemm_peak(threads: usize, budget: f64) -> f64 {
    let n = 1024;
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let b = a.clone();
    let mut c = vec![0.0f32; n * n];
    let secs = median_seconds(budget, 5, || {
        gemm_packed(&mut c, Mat::new(&a, n, n), Mat::new(&b, n, n), false, Threads(threads));
        Ok(())
    })
    .unwrap_or(f64::NAN);
    2.0 * (n * n * n) as f64 / secs / 1e9
}

/// Measures one job, about `budget` seconds per timing.
///
/// # Errors
/// None for the planned configurations (they are valid); a hand-made job may be invalid.
pub fn run_job(job: &Job, budget: f64) -> Result<Vec<BenchRow>> {
    let row = |kind, threads| BenchRow {
        implementation: "recur",
        kind,
        cell: None,
        dirs: None,
        shape: None,
        threads,
        variant: None,
        seconds: None,
        gflops: None,
        bare_seconds: None,
        over_plain: None,
    };
    let variant = |regularized: bool| Some(if regularized { "ln+vd" } else { "plain" });
    Ok(match *job {
        Job::Peak { threads } => {
            vec![BenchRow { gflops: Some(sgemm_peak(threads, budget * 2.0)), ..row("sgemm_peak", threads) }]
        }
        Job::Step { shape, cell, bidirectional, threads } => {
            let (plain, regularized) =
                (config(cell, &shape, bidirectional, false), config(cell, &shape, bidirectional, true));
            let dirs = if bidirectional { 2 } else { 1 };
            let fwd = forward_flops(cell, &shape, dirs);
            let batch = BatchShape { batch: shape.batch, steps: shape.steps };
            let (train, infer) = (
                alternating_block_medians(
                    2.0 * budget,
                    BLOCKS,
                    3,
                    training_step(&plain, batch, threads)?,
                    training_step(&regularized, batch, threads)?,
                )?,
                alternating_block_medians(
                    2.0 * budget,
                    BLOCKS,
                    3,
                    inference_step(&plain, batch, threads)?,
                    inference_step(&regularized, batch, threads)?,
                )?,
            );
            // a row of this configuration: `seconds` per call of `flops`
            let config_row = |kind, ln_vd: bool, seconds: f64, flops: f64| BenchRow {
                cell: Some(cell_name(cell)),
                dirs: Some(dirs),
                shape: Some(shape.name),
                variant: variant(ln_vd),
                seconds: Some(seconds),
                gflops: Some(flops / seconds / 1e9),
                ..row(kind, threads)
            };
            let step_row = |kind, flops, (plain_blocks, regularized_blocks): &(Vec<f64>, Vec<f64>), ln_vd: bool| {
                let blocks = if ln_vd { regularized_blocks } else { plain_blocks };
                let t = blocks.iter().copied().fold(f64::INFINITY, f64::min);
                BenchRow {
                    over_plain: ln_vd
                        .then(|| median(regularized_blocks.iter().zip(plain_blocks).map(|(r, p)| r / p).collect())),
                    ..config_row(kind, ln_vd, t, flops)
                }
            };
            let mut rows = Vec::new();
            for ln_vd in [false, true] {
                rows.push(step_row("train", 3.0 * fwd, &train, ln_vd));
                rows.push(step_row("infer", fwd, &infer, ln_vd));
            }
            for (cfg, ln_vd) in [(&plain, false), (&regularized, true)] {
                // bare and model steps alternately: their ratio is the model's overhead
                let (bare, through_model) = time_model_overhead(cfg, batch, threads, 2.0 * budget)?;
                rows.push(BenchRow {
                    bare_seconds: Some(bare),
                    ..config_row("train_model", ln_vd, through_model, 3.0 * fwd)
                });
            }
            rows
        }
        Job::Stream { cell, regularized } => {
            let t = time_streaming_step(&config(cell, &S3, false, regularized), S3.batch, budget)?;
            vec![BenchRow {
                cell: Some(cell_name(cell)),
                dirs: Some(1),
                shape: Some(S3.name),
                variant: variant(regularized),
                seconds: Some(t),
                ..row("stream", 1)
            }]
        }
    })
}

/// The rows as Markdown tables: each step's time and GFLOP/s as a fraction of the peak
/// measured on the same thread count, streaming latency, and what layer norm + dropout
/// add to the plain kernel.
pub fn tables(rows: &[BenchRow]) -> String {
    let peak = |threads: usize| {
        rows.iter().find(|r| r.kind == "sgemm_peak" && r.threads == threads).and_then(|r| r.gflops).unwrap_or(f64::NAN)
    };
    let mut out =
        format!("sgemm peak (gemm crate, 1024³): {:.0} GFLOP/s on 1 thread, {:.0} on 2.\n\n", peak(1), peak(2));
    let steps: Vec<&BenchRow> = rows.iter().filter(|r| r.kind == "train" || r.kind == "infer").collect();
    if !steps.is_empty() {
        out.push_str("| shape | cell | dirs | threads | variant | mode | ms | GFLOP/s | % of peak |\n");
        out.push_str("|---|---|---|---|---|---|---|---|---|\n");
        for r in &steps {
            let (s, g) = (r.seconds.unwrap_or(f64::NAN), r.gflops.unwrap_or(f64::NAN));
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {:.2} | {:.0} | {:.0} % |\n",
                r.shape.unwrap_or(""),
                r.cell.unwrap_or(""),
                if r.dirs == Some(2) { "bi" } else { "uni" },
                r.threads,
                r.variant.unwrap_or(""),
                r.kind,
                1e3 * s,
                g,
                100.0 * g / peak(r.threads)
            ));
        }
        out.push_str("\nLayer norm + variational dropout against the plain kernel (overhead: the median over adjacent pairs of blocks of calls):\n\n");
        out.push_str("| shape | cell | dirs | threads | mode | plain ms | ln+vd ms | overhead |\n|---|---|---|---|---|---|---|---|\n");
        for r in steps.iter().filter(|r| r.variant == Some("ln+vd")) {
            let plain = steps.iter().find(|p| {
                p.variant == Some("plain")
                    && (p.kind, p.cell, p.dirs, p.shape, p.threads) == (r.kind, r.cell, r.dirs, r.shape, r.threads)
            });
            if let (Some(p), Some(t)) = (plain.and_then(|p| p.seconds), r.seconds) {
                let ratio = r.over_plain.unwrap_or(t / p);
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {:+.0} % |\n",
                    r.shape.unwrap_or(""),
                    r.cell.unwrap_or(""),
                    if r.dirs == Some(2) { "bi" } else { "uni" },
                    r.threads,
                    r.kind,
                    1e3 * p,
                    1e3 * t,
                    100.0 * (ratio - 1.0)
                ));
            }
        }
    }
    let model: Vec<&BenchRow> = rows.iter().filter(|r| r.kind == "train_model").collect();
    if !model.is_empty() {
        let ratios: Vec<f64> =
            model.iter().filter_map(|r| Some(r.seconds? / r.bare_seconds? - 1.0)).map(|v| 100.0 * v).collect();
        let (lo, hi) = ratios.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        out.push_str(&format!(
            "\nThe same training step through a SequenceModel (masked MSE, clipping, AdamW over named parameters): {lo:+.0} % to {hi:+.0} % of the bare kernel's time.\n"
        ));
    }
    let streams: Vec<&BenchRow> = rows.iter().filter(|r| r.kind == "stream").collect();
    if !streams.is_empty() {
        out.push_str("\nStreaming, one step (S3: B = 1, D = 12, H = 64, 1 thread):\n\n| cell | variant | µs/step |\n|---|---|---|\n");
        for r in streams {
            out.push_str(&format!(
                "| {} | {} | {:.2} |\n",
                r.cell.unwrap_or(""),
                r.variant.unwrap_or(""),
                1e6 * r.seconds.unwrap_or(f64::NAN)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_follows_only_and_refuses_unknown_words() {
        assert_eq!(plan(&[]).unwrap().len(), 2 + 2 * 2 * 2 * 2 + 2 * 2);
        let s1_lstm = plan(&["s1".into(), "LSTM".into()]).unwrap();
        assert_eq!(s1_lstm.len(), 2 + 2 * 2);
        assert!(s1_lstm.iter().all(|j| match j {
            Job::Step { shape, cell, .. } => *shape == S1 && *cell == CellKind::Lstm,
            Job::Peak { .. } => true,
            Job::Stream { .. } => false,
        }));
        // one configuration, as bench/compare.py asks for them
        let one = plan(&["S2".into(), "gru".into(), "bi".into(), "t2".into()]).unwrap();
        assert_eq!(one[2..], [Job::Step { shape: S2, cell: CellKind::GruResetAfter, bidirectional: true, threads: 2 }]);
        assert_eq!(plan(&["S3".into()]).unwrap().len(), 2 + 4);
        assert_eq!(plan(&["S3".into(), "bi".into()]).unwrap().len(), 2);
        let e = plan(&["S4".into()]).unwrap_err().to_string();
        assert!(e.contains("`S4`") && e.contains("S1") && e.contains("T2"), "{e}");
    }

    #[test]
    fn rows_serialise_as_compare_py_reads_them_and_tables_read_them_back() {
        let peak = run_job(&Job::Peak { threads: 1 }, 0.0).unwrap();
        assert!(peak[0].gflops.unwrap() > 0.0);
        assert_eq!(
            serde_json::to_value(&peak[0]).unwrap().as_object().unwrap().keys().collect::<Vec<_>>(),
            ["gflops", "impl", "kind", "threads"]
        );
        let tiny = Shape { name: "S1", batch: 2, steps: 3, input: 2, hidden: 4 };
        let mut rows = peak;
        rows.extend(
            run_job(&Job::Step { shape: tiny, cell: CellKind::Lstm, bidirectional: true, threads: 1 }, 0.0).unwrap(),
        );
        rows.extend(run_job(&Job::Stream { cell: CellKind::GruResetAfter, regularized: false }, 0.0).unwrap());
        let json: Vec<serde_json::Value> = rows.iter().map(|r| serde_json::to_value(r).unwrap()).collect();
        let field = |i: usize, name: &str| json[i][name].as_str().unwrap_or("").to_string();
        let kinds: Vec<(String, String)> = (1..7).map(|i| (field(i, "kind"), field(i, "variant"))).collect();
        let want = [
            ("train", "plain"),
            ("infer", "plain"),
            ("train", "ln+vd"),
            ("infer", "ln+vd"),
            ("train_model", "plain"),
            ("train_model", "ln+vd"),
        ];
        assert_eq!(kinds, want.map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(json[1]["dirs"].as_u64(), Some(2));
        assert!(json[1].get("bare_seconds").is_none() && json[1].get("over_plain").is_none());
        // the regularized rows carry their ratio to the plain kernel's blocks
        assert!(json[3]["over_plain"].as_f64().unwrap() > 0.0);
        assert!(json[5]["bare_seconds"].as_f64().unwrap() > 0.0);
        let text = tables(&rows);
        assert!(text.contains("| S1 | LSTM | bi | 1 | ln+vd | train |"), "{text}");
        assert!(text.contains("| S1 | LSTM | bi | 1 | infer |"), "{text}");
        assert!(text.contains("| GRU | plain |"), "{text}");
    }
}
