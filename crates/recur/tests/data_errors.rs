//! Bad input files give one clear error naming the file, line and column. The CSVs here
//! are small synthetic files written for the purpose (they test error paths, not results).

use crate::common::ScratchFile;
use recur::data::{
    align_to_grid, read_wide, Aggregation, EpochUnit, MissingValues, PreparedSeries, SplitFractions, WideOptions,
};

fn error(name: &str, text: &str, options: &WideOptions) -> String {
    let path = ScratchFile::write(name, text);
    let err = read_wide(&path, options).unwrap_err().to_string();
    assert!(err.contains(name), "error does not name the file: {err}");
    err
}

#[test]
fn unparseable_number_names_line_and_column() {
    let err = error(
        "bad_number.csv",
        "year,month,day,hour,TEMP,PRES\n2013,3,1,0,1.5,1000\n2013,3,1,1,abc,1001\n",
        &Default::default(),
    );
    assert!(
        err.ends_with(
            "line 3, column `TEMP`: `abc` is not a number (if it means \"no value\", list it in data.missing_values)"
        ),
        "{err}"
    );
}

#[test]
fn millisecond_times_need_their_unit_and_offsets_are_read_as_utc() {
    // Cognite-style epoch milliseconds: read as seconds they would lie in the year 55975
    let text = "timestamp,power\n1704067200000,1.5\n1704067260000,2.5\n";
    let err = error("millis.csv", text, &Default::default());
    assert!(err.contains("line 2, column `timestamp`") && err.contains("data.time_unit = \"ms\""), "{err}");
    let options = WideOptions { time_unit: EpochUnit::Milliseconds, ..Default::default() };
    assert_eq!(
        read_wide(ScratchFile::write("millis.csv", text), &options).unwrap().timestamps,
        [1_704_067_200, 1_704_067_260]
    );
    // pandas writes a time-zone-aware index with its offset: the same instants
    let text = "timestamp,power\n2024-01-01 01:00:00+01:00,1.5\n2024-01-01T00:01:00Z,2.5\n";
    assert_eq!(
        read_wide(ScratchFile::write("offsets.csv", text), &Default::default()).unwrap().timestamps,
        [1_704_067_200, 1_704_067_260]
    );
}

/// A historian's export: status strings among a sensor's numbers, a sentinel number, and a
/// sentinel that is a real value in another signal.
const HISTORIAN: &str = "timestamp,flow,pressure,state\n\
    2024-01-01 00:00,12.5,-1,OPEN\n\
    2024-01-01 00:01,Bad,3.5,I/O Timeout\n\
    2024-01-01 00:02,-9999.0,-1,CLOSED\n\
    2024-01-01 00:03,I/O Timeout,4.0,OPEN\n";

fn marks(everywhere: &[&str], per_signal: &[(&str, &[&str])]) -> MissingValues {
    let owned = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let per = per_signal.iter().map(|(n, m)| (n.to_string(), owned(m))).collect();
    MissingValues::new(&owned(everywhere), &per).unwrap()
}

#[test]
fn status_strings_are_an_error_until_named_as_missing_values() {
    let options = WideOptions { categorical: vec!["state".into()], ..Default::default() };
    let err = error("historian.csv", HISTORIAN, &options);
    assert!(
        err.contains("line 3, column `flow`: `Bad` is not a number") && err.contains("data.missing_values"),
        "{err}"
    );

    let missing = marks(&["Bad", "I/O Timeout", "-9999"], &[]);
    let series =
        read_wide(ScratchFile::write("historian.csv", HISTORIAN), &WideOptions { missing, ..options.clone() }).unwrap();
    assert_eq!(series.signals, ["flow", "pressure", "state=CLOSED", "state=OPEN"]);
    let flow: Vec<bool> = (0..4).map(|n| series.observed[n * 4]).collect();
    assert_eq!(flow, [true, false, false, false], "Bad, the sentinel -9999.0 and I/O Timeout are gaps");
    assert_eq!(series.marked, [3, 0, 0, 0], "counted per signal (the one-hot columns: 0)");
    assert_eq!(series.values[0], 12.5);
    // the second row: flow `Bad`, pressure 3.5, state `I/O Timeout` (every one-hot column empty)
    assert_eq!(series.values[4..8], [0.0, 3.5, 0.0, 0.0]);
    assert_eq!(series.observed[4..8], [false, true, false, false]);
    // -1 is a real pressure here: only a mark for that signal alone would remove it
    assert_eq!((series.values[1], series.observed[1]), (-1.0, true));
    let missing = marks(&["Bad", "I/O Timeout", "-9999"], &[("pressure", &["-1"])]);
    let series =
        read_wide(ScratchFile::write("historian.csv", HISTORIAN), &WideOptions { missing, ..options }).unwrap();
    let pressure: Vec<bool> = (0..4).map(|n| series.observed[n * 4 + 1]).collect();
    assert_eq!(pressure, [false, true, false, true]);
    assert_eq!(series.marked[..2], [3, 2]);
    assert!(series.observed[0], "the per-signal mark stays in its signal");
}

#[test]
fn duplicate_and_decreasing_timestamps_are_rejected() {
    let err = error("dup.csv", "timestamp,a\n2020-01-01 00:00,1\n2020-01-01 00:00,2\n", &Default::default());
    assert!(err.contains("line 3: duplicate timestamp"), "{err}");
    let err = error("back.csv", "timestamp,a\n2020-01-01 01:00,1\n2020-01-01 00:00,2\n", &Default::default());
    assert!(err.contains("line 3: decreasing timestamp"), "{err}");
}

#[test]
fn unknown_signal_lists_the_columns() {
    let options = WideOptions { signals: vec!["PM25".into()], ..Default::default() };
    let err = error("unknown.csv", "timestamp,PM2.5\n0,1\n", &options);
    assert!(err.contains("unknown signal `PM25`; the columns are timestamp, PM2.5"), "{err}");
}

#[test]
fn truncated_row_and_missing_file_and_empty_file() {
    let err = error("trunc.csv", "timestamp,a,b\n0,1,2\n3600,1", &Default::default());
    assert!(err.contains("line 3: 2 fields, the header has 3"), "{err}");
    let err = read_wide("/nonexistent/recur.csv", &Default::default()).unwrap_err().to_string();
    assert!(err.starts_with("/nonexistent/recur.csv:"), "{err}");
    let err = error("empty.csv", "", &Default::default());
    assert!(err.contains("line 1: the file is empty"), "{err}");
    let err = error("no_time.csv", "a,b\n1,2\n", &Default::default());
    assert!(err.contains("no time column"), "{err}");
}

#[test]
fn constant_or_never_observed_signal_and_too_long_window_are_named() {
    let rows: String = (0..20).map(|i| format!("{},{},7,NA\n", i * 3600, i)).collect();
    let path = ScratchFile::write("constant.csv", &format!("timestamp,a,flat,empty\n{rows}"));
    let series = read_wide(&path, &Default::default()).unwrap();
    let grid = align_to_grid(&series, 3600, Aggregation::Mean).unwrap();
    let err = PreparedSeries::new(grid.clone(), SplitFractions::default()).unwrap_err().to_string();
    assert!(err.contains("signal `flat`") && err.contains("constant"), "{err}");
    let options = WideOptions { signals: vec!["a".into(), "empty".into()], ..Default::default() };
    let series = read_wide(&path, &options).unwrap();
    let grid = align_to_grid(&series, 3600, Aggregation::Mean).unwrap();
    let err = PreparedSeries::new(grid, SplitFractions::default()).unwrap_err().to_string();
    assert!(err.contains("signal `empty`") && err.contains("never observed"), "{err}");
    let options = WideOptions { signals: vec!["a".into()], ..Default::default() };
    let series = read_wide(&path, &options).unwrap();
    let prepared =
        PreparedSeries::new(align_to_grid(&series, 3600, Aggregation::Mean).unwrap(), SplitFractions::default())
            .unwrap();
    let err = prepared.window_starts(&prepared.test, 10, 1, "test").unwrap_err().to_string();
    assert!(err.contains("10 steps, but the test part has only 4 steps"), "{err}");
}

#[test]
fn categorical_columns_become_one_hot_signals_missing_together() {
    let path = ScratchFile::write("wind.csv", "timestamp,speed,wd\n0,1.5,N\n3600,2.0,SE\n7200,1.0,NA\n10800,0.5,N\n");
    let options = WideOptions { categorical: vec!["wd".into()], ..Default::default() };
    let s = read_wide(&path, &options).unwrap();
    assert_eq!(s.signals, ["speed", "wd=N", "wd=SE"]);
    assert_eq!(s.values, [1.5, 1.0, 0.0, 2.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.5, 1.0, 0.0]);
    assert_eq!(s.observed[6..9], [true, false, false], "NA: every one-hot column missing");
    let options = WideOptions { categorical: vec!["direction".into()], ..options };
    let err = read_wide(&path, &options).unwrap_err().to_string();
    assert!(err.contains("unknown categorical signal `direction`"), "{err}");
}
