//! Files written in local time where clocks change (`data.naive_times = "local"` with
//! `data.time_zone`). The values are the bundled station's (real); their times are
//! relabelled (synthetic): each hour, read as UTC, written as central European local time,
//! as a European plant's export would write it — the autumn's 02:00 hour twice, the
//! spring's never. Read back, they are the station's hours exactly; shown, they are the
//! local times written; served live, each hour is answered once, at its own time.

use recur::data::series::format_timestamp;
use recur::data::{PreparedSeries, TimeZone};
use recur::run::{load_data, run, DataConfig, NaiveTimes, RunConfig};
use recur::serve::{Fleet, ServedRun};

use crate::common::ScratchFile;

const CET: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

/// The station's hours from 2014-10-20 for `hours` hours, as `timestamp,PM2.5,…,WSPM`
/// rows (not RAIN: none fell those weeks), each time written by `time` (the hour's UTC
/// seconds → text).
fn station_rows(hours: usize, time: impl Fn(i64) -> String) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv");
    let text = std::fs::read_to_string(path).unwrap().replace('"', "");
    let first = text.lines().position(|l| l.contains(",2014,10,20,0,")).unwrap();
    let mut out = String::from("timestamp,PM2.5,PM10,SO2,NO2,CO,O3,TEMP,PRES,DEWP,WSPM\n");
    for line in text.lines().skip(first).take(hours) {
        let f: Vec<&str> = line.split(',').collect();
        let days =
            recur::data::series::days_from_civil(f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap());
        let utc = days * 86_400 + f[4].parse::<i64>().unwrap() * 3600;
        let values: Vec<&str> = f[5..14].iter().chain([&f[16]]).copied().collect();
        out.push_str(&format!("{},{}\n", time(utc), values.join(",")));
    }
    out
}

fn config(file: &ScratchFile, naive_times: NaiveTimes) -> DataConfig {
    DataConfig {
        files: vec![file.to_str().unwrap().to_string()],
        time_zone: CET.into(),
        naive_times,
        ..DataConfig::default()
    }
}

#[test]
fn local_times_across_the_clock_changes_read_back_to_the_hours_they_were() {
    let zone = TimeZone::resolve_in(CET, std::path::Path::new("/nonexistent")).unwrap();
    let local = |utc: i64| format_timestamp(utc + i64::from(zone.offset_at(utc)));
    let hours = 14 * 24;
    let as_utc = ScratchFile::write("utc.csv", &station_rows(hours, format_timestamp));
    let as_local = ScratchFile::write("local.csv", &station_rows(hours, local));
    // the local file writes 2014-10-26 02:00 twice (its clocks went back at 01:00 UTC)
    let text = std::fs::read_to_string(&*as_local).unwrap();
    assert_eq!(text.lines().filter(|l| l.starts_with("2014-10-26 02:00:00,")).count(), 2);

    let base = std::path::Path::new(".");
    let utc: PreparedSeries = load_data(&config(&as_utc, NaiveTimes::Utc), base).unwrap();
    let read: PreparedSeries = load_data(&config(&as_local, NaiveTimes::Local), base).unwrap();
    assert_eq!((read.grid.start, read.grid.len()), (utc.grid.start, utc.grid.len()));
    assert_eq!(read.grid.len(), hours, "every hour once");
    assert_eq!(read.grid.values, utc.grid.values);
    assert_eq!(read.grid.observed, utc.grid.observed);
    // shown as the file wrote them: local, the repeated hour twice
    let shown: Vec<String> = (0..hours).map(|k| read.time_label(0, k)).collect();
    let written: Vec<String> = text.lines().skip(1).map(|l| l.split(',').next().unwrap().to_string()).collect();
    assert_eq!(shown, written);
    assert_eq!(utc.time_label(0, 0), "2014-10-20 00:00:00");
    assert_eq!(read.time_label(0, 0), "2014-10-20 02:00:00");

    // read as UTC, the local file's repeated hour is a duplicate, named
    let err = load_data(&config(&as_local, NaiveTimes::Utc), base).unwrap_err().to_string();
    assert!(err.contains("local.csv") && err.contains("duplicate timestamp"), "{err}");
    // a time the spring skipped is refused, named
    let spring = ScratchFile::write("spring.csv", "timestamp,x\n2014-03-30 01:00,1\n2014-03-30 02:00,2\n");
    let err = load_data(&config(&spring, NaiveTimes::Local), base).unwrap_err().to_string();
    assert!(err.contains("spring.csv") && err.contains("2014-03-30 02:00:00 does not exist in"), "{err}");
    // local times need their zone
    let no_zone = DataConfig { time_zone: String::new(), ..config(&as_local, NaiveTimes::Local) };
    let err = load_data(&no_zone, base).unwrap_err().to_string();
    assert!(err.contains("data.naive_times") && err.contains("data.time_zone"), "{err}");
    // times with their offset are exact whatever naive times are
    let with_offsets = ScratchFile::write("offsets.csv", &station_rows(48, |t| format!("{}Z", format_timestamp(t))));
    let exact = load_data(&config(&with_offsets, NaiveTimes::Local), base).unwrap();
    assert_eq!(exact.grid.start, utc.grid.start);
}

#[test]
fn a_run_trained_on_local_times_is_fed_local_times_live() {
    let hours = 10 * 24;
    let zone = TimeZone::resolve_in(CET, std::path::Path::new("/nonexistent")).unwrap();
    let local = |utc: i64| format_timestamp(utc + i64::from(zone.offset_at(utc)));
    let file = ScratchFile::write("local.csv", &station_rows(hours, local));
    let mut config = RunConfig { data: config_in(&file), ..RunConfig::default() };
    config.task.window = 12;
    config.train.epochs = 1;
    config.train.max_batches_per_epoch = 3;
    let data = load_data(&config.data, std::path::Path::new(".")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut outcome = run(&config, &data, Some(dir.path()), false).unwrap();
    recur::report::write_run_folder(dir.path(), &config, &mut outcome, &data).unwrap();

    // served from the folder alone: the feed's local times, aligned, one answer an hour
    let served = ServedRun::open(dir.path()).unwrap();
    let mut fleet = Fleet::new(&served, None).unwrap();
    let text = std::fs::read_to_string(&*file).unwrap();
    let layout = fleet.layout(text.lines().next().unwrap(), true).unwrap();
    let mut steps = Vec::new();
    for line in text.lines().skip(1) {
        steps.extend(fleet.read_line(&layout, line).unwrap());
    }
    steps.extend(fleet.finish());
    assert_eq!(steps.len(), hours);
    let starts: Vec<i64> = steps.iter().map(|s| s.start.unwrap()).collect();
    assert!(starts.windows(2).all(|w| w[1] - w[0] == 3600), "every hour once, in UTC");
    assert_eq!(starts[0], data.grid.start);
    let shown: Vec<&str> = steps.iter().map(|s| s.time.as_deref().unwrap()).collect();
    let written: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(shown, written, "answered at the local times the feed wrote");
    for step in &steps {
        fleet.serve(step, 1, 0).unwrap();
    }
    // the state after the repeated hour's first pass goes on to its second
    let change = written.iter().position(|t| *t == "2014-10-26 02:00:00").unwrap();
    let mut first = Fleet::new(&served, None).unwrap();
    for line in text.lines().skip(1).take(change + 1) {
        first.read_line(&layout, line).unwrap();
    }
    let mut second = Fleet::new(&served, None).unwrap();
    second.restore(first.state()).unwrap();
    let next = second.read_line(&layout, text.lines().nth(change + 2).unwrap()).unwrap();
    assert_eq!(next[0].start, Some(starts[change]), "the first 02:00 answered when the second arrives");
    assert_eq!(next[0].time.as_deref(), Some("2014-10-26 02:00:00"));

    // a local time the spring skipped is refused, naming the column, and leaves no trace
    let mut fresh = Fleet::new(&served, None).unwrap();
    let values = text.lines().nth(1).unwrap().split_once(',').unwrap().1;
    let err = fresh.read_line(&layout, &format!("2015-03-29 02:30:00,{values}")).unwrap_err();
    assert_eq!(err.column.as_deref(), Some("timestamp"));
    assert!(err.why.starts_with("2015-03-29 02:30:00 does not exist in"), "{}", err.why);
    assert_eq!(fresh.entity_count(), 0);
}

fn config_in(file: &ScratchFile) -> DataConfig {
    DataConfig { calendar: vec![recur::data::CalendarCycle::Day], ..config(file, NaiveTimes::Local) }
}
