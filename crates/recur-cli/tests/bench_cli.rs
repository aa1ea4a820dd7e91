//! `recur bench`: the streaming rows and the sgemm peaks (the quick part of the
//! benchmark) as tables and as JSON lines in the format `bench/compare.py` reads; a
//! word that names no shape or cell is refused.

use std::process::Command;

fn recur(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_recur")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn bench_prints_tables_and_writes_json_lines() {
    let scratch = tempfile::Builder::new().prefix("recur-bench-").tempdir().unwrap();
    let file = scratch.path().join("bench.jsonl");
    let (ok, stdout, stderr) = recur(&["bench", "--only", "S3", "--quick", "true", "--out", file.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("sgemm peak (gemm crate, 1024³): "), "{stdout}");
    for row in ["| LSTM | plain |", "| LSTM | ln+vd |", "| GRU | plain |", "| GRU | ln+vd |"] {
        assert!(stdout.contains(row), "{row} in {stdout}");
    }
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2 + 4);
    assert!(rows[..2].iter().all(|r| r["kind"] == "sgemm_peak" && r["gflops"].as_f64().unwrap() > 0.0));
    for r in &rows[2..] {
        assert_eq!(
            (r["impl"].as_str(), r["kind"].as_str(), r["shape"].as_str()),
            (Some("recur"), Some("stream"), Some("S3"))
        );
        let us = 1e6 * r["seconds"].as_f64().unwrap();
        assert!(us > 0.0 && us < 1000.0, "{us} µs per step");
    }

    let (ok, _, stderr) = recur(&["bench", "--only", "S9"]);
    assert!(!ok && stderr.contains("`S9` is not a shape"), "{stderr}");
}
