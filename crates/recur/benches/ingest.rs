//! Ingestion benchmark: the 12 Beijing station files (420,768 rows) read, put on the
//! hourly grid with masks, split and standardised, as 12 entities; and one station as
//! CSV and as Parquet (the test fixture), to compare the two readers.
//!
//!     cargo bench -p recur --bench ingest [-- DIR]   # DIR: default ../shared/data/beijing-air-quality
use std::path::PathBuf;
use std::time::Instant;

use recur::run::{load_data, DataConfig};

fn main() {
    let dir =
        std::env::args().skip(1).find(|a| !a.starts_with('-')).map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/beijing-air-quality")
        });
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    let config = DataConfig { files, drop: vec!["No".into(), "wd".into(), "station".into()], ..DataConfig::default() };
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let data = load_data(&config, std::path::Path::new(".")).unwrap();
        times.push(t.elapsed().as_secs_f64());
        rows = data.grid.len();
        assert_eq!(data.entities.len(), config.files.len());
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{}",
        serde_json::json!({"bench": "ingest", "files": config.files.len(), "rows": rows, "median_seconds": times[2], "min_seconds": times[0]})
    );
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for (format, file) in [
        ("csv", manifest.join("../../data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv")),
        ("parquet", manifest.join("tests/fixtures/parquet/beijing-aotizhongxin.parquet")),
    ] {
        if format == "parquet" && !cfg!(feature = "parquet") {
            continue;
        }
        let one = DataConfig { files: vec![file.display().to_string()], ..config.clone() };
        let mut times: Vec<f64> = (0..7)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(load_data(&one, std::path::Path::new(".")).unwrap());
                t.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{}",
            serde_json::json!({"bench": "ingest_one_station", "format": format, "rows": 35_064, "median_seconds": times[3]})
        );
    }
}
