//! The library's integration tests, one module per file beside this one, built as one test
//! binary: the library's generic code (layers in f32 and f64, models, tasks) is then
//! compiled once for all of them rather than once per file. As 22 binaries they took 330 of
//! a clean `cargo test --release --no-run`'s 750 CPU-seconds (`--timings`, 2-core AVX2);
//! as one, the clean build of `.ci/run` fell from 6 min 15 s to 4 min 40 s and the whole
//! run from 10 min 37 s to 8 min 27 s. `compact_rows.rs` stays a binary of its own: it
//! flips a process-wide switch that the other tests would see.

mod common;

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
mod long_range_learning;
mod model_file;
mod model_gradient_check;
mod model_stream;
mod no_panic;
mod other_datasets;
mod parquet_input;
mod text_dbpedia;
mod text_resume;
mod torch_parity;
mod truncated_bptt;
