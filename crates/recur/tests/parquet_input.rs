//! Parquet input gives exactly what the CSV it was exported from gives. The three
//! fixtures are the bundled real data re-encoded by `tools/make_parquet_fixtures.py`
//! (pyarrow: typed columns, nulls, dictionary strings, a timestamp type; snappy, gzip and
//! zstd). The small files written here with the `parquet` crate's writer are synthetic,
//! for the error paths and the timestamp units.

#![cfg(feature = "parquet")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::common::ScratchFile;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use recur::data::{read_long, read_wide, EpochUnit, LongColumns, LongOptions, TimeSeries, WideOptions};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parquet").join(name)
}

fn assert_same(parquet: &TimeSeries, csv: &TimeSeries, what: &str) {
    assert_eq!(parquet.signals, csv.signals, "{what}: signals");
    assert_eq!(parquet.timestamps, csv.timestamps, "{what}: timestamps");
    assert_eq!(parquet.observed, csv.observed, "{what}: observation mask");
    assert_eq!(parquet.values, csv.values, "{what}: values");
}

#[test]
fn beijing_parquet_equals_its_csv_with_split_dates_and_categories() {
    let options =
        WideOptions { drop: vec!["No".into(), "station".into()], categorical: vec!["wd".into()], ..Default::default() };
    let csv = read_wide(repo().join("data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv"), &options).unwrap();
    let parquet = read_wide(fixture("beijing-aotizhongxin.parquet"), &options).unwrap();
    assert_eq!(parquet.len(), 35_064);
    assert_eq!(parquet.channels(), 11 + 16, "11 signals and 16 wind directions one-hot");
    assert!(parquet.observed.iter().any(|o| !o), "the natural NA values arrive as nulls");
    assert_same(&parquet, &csv, "Beijing (snappy)");
}

#[test]
fn compressor_parquet_with_a_timestamp_column_equals_its_csv() {
    let csv = read_wide(repo().join("data/compressor/compressor_power_output.csv"), &WideOptions::default()).unwrap();
    let parquet = read_wide(fixture("compressor-power.parquet"), &WideOptions::default()).unwrap();
    assert_eq!(parquet.len(), 20_000, "the fixture holds the CSV's first 20,000 rows");
    let first = TimeSeries {
        signals: csv.signals.clone(),
        timestamps: csv.timestamps[..20_000].to_vec(),
        values: csv.values[..20_000].to_vec(),
        observed: csv.observed[..20_000].to_vec(),
        marked: csv.marked.clone(),
        clock: csv.clock,
    };
    assert_same(&parquet, &first, "compressor (gzip, timestamp[µs])");
}

#[test]
fn physionet_long_parquet_equals_its_csv_entity_by_entity() {
    let columns = LongColumns {
        time: "time".into(),
        signal: "parameter".into(),
        value: "value".into(),
        entity: "record_id".into(),
    };
    let drop = ["RecordID".to_string()];
    let csv = read_long(
        repo().join("data/physionet/set-a-first400.csv"),
        &LongOptions { columns: columns.clone(), drop: drop.to_vec(), ..Default::default() },
    )
    .unwrap();
    let parquet = read_long(
        fixture("physionet-first400.parquet"),
        &LongOptions { columns: columns.clone(), drop: drop.to_vec(), ..Default::default() },
    )
    .unwrap();
    assert_eq!(parquet.len(), 400);
    assert_eq!(parquet.len(), csv.len());
    for ((pn, ps), (cn, cs)) in parquet.iter().zip(&csv) {
        assert_eq!(pn, cn, "entities in the same order");
        assert_same(ps, cs, &format!("PhysioNet record {pn} (zstd, dictionary strings)"));
    }
}

#[test]
fn a_run_config_takes_parquet_files_like_csv_files() {
    let mut data = recur::run::DataConfig {
        files: vec!["data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv".into()],
        drop: vec!["No".into(), "wd".into(), "station".into()],
        ..Default::default()
    };
    let from_csv = recur::run::load_data(&data, &repo()).unwrap();
    data.files = vec![fixture("beijing-aotizhongxin.parquet").display().to_string()];
    let from_parquet = recur::run::load_data(&data, &repo()).unwrap();
    assert_eq!(from_parquet.grid.values, from_csv.grid.values);
    assert_eq!(from_parquet.grid.observed, from_csv.grid.observed);
}

/// Writes a one-row-group Parquet file: `time` (INT64 with `time_type`), `x` (optional
/// DOUBLE) and `label` (optional STRING), nulls where an `Option` is `None`.
fn write_synthetic(path: &Path, time_type: &str, times: &[i64], x: &[Option<f64>], label: &[Option<&str>]) {
    let schema = format!(
        "message m {{ required int64 time ({time_type}); optional double x; optional binary label (STRING); }}"
    );
    let schema = Arc::new(parse_message_type(&schema).unwrap());
    let file = std::fs::File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build())).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    column.typed::<Int64Type>().write_batch(times, None, None).unwrap();
    column.close().unwrap();
    let levels = |v: &[Option<f64>]| v.iter().map(|o| i16::from(o.is_some())).collect::<Vec<_>>();
    let mut column = group.next_column().unwrap().unwrap();
    let present: Vec<f64> = x.iter().flatten().copied().collect();
    column.typed::<DoubleType>().write_batch(&present, Some(&levels(x)), None).unwrap();
    column.close().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    let present: Vec<ByteArray> = label.iter().flatten().map(|s| ByteArray::from(*s)).collect();
    let label_levels: Vec<i16> = label.iter().map(|o| i16::from(o.is_some())).collect();
    column.typed::<ByteArrayType>().write_batch(&present, Some(&label_levels), None).unwrap();
    column.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
}

#[test]
fn every_timestamp_unit_becomes_seconds_and_nulls_become_missing() {
    let seconds = [1_600_000_000i64, 1_600_003_600, 1_600_007_200];
    let x = [Some(1.5), None, Some(-2.25)];
    let label = [Some("a"), None, Some("b")];
    for (unit, scale) in [("MILLIS", 1_000i64), ("MICROS", 1_000_000), ("NANOS", 1_000_000_000)] {
        let path = ScratchFile::at(&format!("{unit}.parquet"));
        let times: Vec<i64> = seconds.iter().map(|s| s * scale).collect();
        write_synthetic(&path, &format!("TIMESTAMP({unit},false)"), &times, &x, &label);
        let options =
            WideOptions { signals: vec!["x".into()], categorical: vec!["label".into()], ..Default::default() };
        let s = read_wide(&path, &options).unwrap();
        assert_eq!(s.timestamps, seconds, "{unit}");
        assert_eq!(s.signals, ["x", "label=a", "label=b"]);
        assert_eq!(s.observed, [true, true, true, false, false, false, true, true, true], "{unit}");
        assert_eq!(s.values, [1.5, 1.0, 0.0, 0.0, 0.0, 0.0, -2.25, 0.0, 1.0], "{unit}");
        // a typed timestamp keeps its own unit whatever data.time_unit says of integers
        let ms = WideOptions { time_unit: EpochUnit::Milliseconds, ..options };
        assert_eq!(read_wide(&path, &ms).unwrap().timestamps, seconds, "{unit}");
    }
    // plain integers counting milliseconds (no timestamp type): data.time_unit = "ms"
    let path = ScratchFile::at("integer-millis.parquet");
    let millis: Vec<i64> = seconds.iter().map(|s| s * 1000).collect();
    write_synthetic(&path, "INTEGER(64,true)", &millis, &x, &label);
    let options = WideOptions { signals: vec!["x".into()], time_unit: EpochUnit::Milliseconds, ..Default::default() };
    assert_eq!(read_wide(&path, &options).unwrap().timestamps, seconds);
    let err = read_wide(&path, &WideOptions { time_unit: EpochUnit::Seconds, ..options }).unwrap_err().to_string();
    assert!(err.contains("row 1, column `time`") && err.contains("data.time_unit = \"ms\""), "{err}");
}

#[test]
fn bad_parquet_input_names_file_row_or_column() {
    // a truncated copy of a real file
    let bytes = std::fs::read(fixture("compressor-power.parquet")).unwrap();
    let truncated = ScratchFile::at("truncated.parquet");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = read_wide(&truncated, &WideOptions::default()).unwrap_err().to_string();
    assert!(err.contains("truncated.parquet") && err.contains("truncated or corrupt"), "{err}");

    // an unknown signal names the schema's columns
    let err = read_wide(
        fixture("compressor-power.parquet"),
        &WideOptions { signals: vec!["power".into()], ..Default::default() },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("schema: unknown signal `power`; the columns are timestamp, pi:160220|average"), "{err}");

    // a text cell in a signal column names its row and column
    let path = ScratchFile::at("text-in-signal.parquet");
    write_synthetic(
        &path,
        "TIMESTAMP(MILLIS,false)",
        &[0, 1000],
        &[Some(1.0), Some(2.0)],
        &[Some("3.5"), Some("high")],
    );
    let err =
        read_wide(&path, &WideOptions { signals: vec!["label".into()], ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("row 2, column `label`: `high` is not a number"), "{err}");

    // a duplicate timestamp names its row
    let path = ScratchFile::at("duplicate.parquet");
    write_synthetic(&path, "TIMESTAMP(MILLIS,false)", &[0, 1000, 1000], &[None, None, None], &[None, None, None]);
    let err =
        read_wide(&path, &WideOptions { signals: vec!["x".into()], ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("row 3: duplicate timestamp"), "{err}");

    // a file that is neither
    let path = ScratchFile::at("binary.parquet");
    std::fs::write(&path, [0xffu8, 0xfe, 0x00, 0x80]).unwrap();
    let err = read_wide(&path, &WideOptions::default()).unwrap_err().to_string();
    assert!(err.contains("binary.parquet") && err.contains("binary file"), "{err}");
}
