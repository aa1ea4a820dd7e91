//! The library's integration tests, one module per file beside this one, built as one test
//! binary: the library's generic code (layers in f32 and f64, models, tasks) is then
//! compiled once for all of them rather than once per file. As 22 binaries they took 266 of
//! a clean `cargo test --release --no-run`'s 750 CPU-seconds, as one 61 of 587 (`--timings`,
//! 2-core AVX2); `.ci/run` from a clean clone fell from 10 min 37 s (its build 6 min 15 s) to
//! 8 min 27 s – 9 min 8 s over three runs (builds 4 min 31 s – 4 min 49 s). `compact_rows.rs`
//! stays a binary of its own: it flips a process-wide switch that the other tests would see.

mod common;

mod beijing_anomalies;
mod beijing_prediction;
mod beijing_reconstruction;
mod beijing_streams;
mod classics;
mod configs;
mod data_errors;
mod experiment_grid;
mod gradient_check;
mod harnn;
mod inspect_matches_data_readme;
mod layer_properties;
mod local_times;
mod long_range_learning;
mod look_back;
mod model_file;
mod model_gradient_check;
mod model_stream;
mod no_panic;
mod other_datasets;
mod parquet_input;
mod served_fleet;
mod text_dbpedia;
mod text_resume;
mod torch_parity;
mod truncated_bptt;
mod unseen_data;

/// Every test file beside this one is one of its modules (or `compact_rows.rs`): with
/// `autotests = false`, a file not declared here would silently never run.
#[test]
fn every_test_file_is_compiled() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let declared = include_str!("integration.rs");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("the tests folder") {
        let path = entry.expect("a folder entry").path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { continue };
        if path.extension().is_none_or(|e| e != "rs") || ["integration", "compact_rows"].contains(&stem) {
            continue;
        }
        files += 1;
        assert!(
            declared.contains(&format!("\nmod {stem};\n")),
            "tests/{stem}.rs is not a module of tests/integration.rs"
        );
    }
    assert!(files >= 22, "{files} test files found in {}", dir.display());
}
