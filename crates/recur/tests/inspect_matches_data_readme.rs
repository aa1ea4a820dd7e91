//! `recur inspect` (the library's `Inspection`) reports the sampling and missingness that
//! the data README states, for every bundled file and for the shared originals: the
//! README's numbers are parsed from the README itself where it gives them per signal.

use std::path::PathBuf;

use recur::data::{CalendarCycle, EpochUnit, Inspection, Layout, MissingValues};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared data folder beside the checkout (CI has it).
fn shared() -> PathBuf {
    repo().join("../shared/data")
}

/// A bundled CSV and, when built with Parquet support, its Parquet copy.
fn with_parquet(csv: &'static str, fixture: &str) -> Vec<String> {
    let mut files = vec![csv.to_string()];
    if cfg!(feature = "parquet") {
        files.push(format!("crates/recur/tests/fixtures/parquet/{fixture}.parquet"));
    }
    files
}

/// `PM2.5 2.1 %, PM10 1.5 %, …` from the README's Beijing paragraph.
fn readme_missing_percentages(readme: &str) -> Vec<(String, f64)> {
    let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let start = flat.find("(`NA`): ").expect("the README lists the missing percentages after (`NA`):") + 8;
    let end = start + flat[start..].find(" %.").expect("the list ends with ` %.`");
    flat[start..end]
        .split(" %, ")
        .map(|item| {
            let mut words = item.split(' ');
            let (name, value) = (words.next().unwrap(), words.next().unwrap());
            (name.to_string(), value.parse().unwrap_or_else(|_| panic!("`{value}` in `{item}`")))
        })
        .collect()
}

#[test]
fn beijing_missingness_over_the_twelve_stations_matches_the_readme() {
    let dir = shared().join("beijing-air-quality");
    let Ok(readme) = std::fs::read_to_string(shared().join("README.md")) else {
        eprintln!("skipped: no shared data folder at {}", shared().display());
        return;
    };
    let expected = readme_missing_percentages(&readme);
    assert_eq!(expected.len(), 6, "{expected:?}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 12);
    let reports: Vec<Inspection> = files
        .iter()
        .map(|f| Inspection::read(f, None, &MissingValues::default(), EpochUnit::Seconds).unwrap())
        .collect();
    for r in &reports {
        assert_eq!((r.rows, r.median_interval, r.longest_gap), (35_064, 3600, 3600), "12 × 35,064 hourly rows");
        assert_eq!(r.layout, Layout::Wide { categorical: vec!["wd".into(), "station".into()] });
        // the 16 compass directions; no text among any column's numbers
        assert_eq!((r.categories("wd"), r.categories("station")), (16, 1));
        assert!(r.text_among_numbers.is_empty());
    }
    for (name, percent) in &expected {
        let (missing, rows) = reports.iter().fold((0, 0), |(m, n), r| {
            let s = r.signal(name).unwrap_or_else(|| panic!("no signal {name}"));
            (m + s.missing_rows, n + s.rows)
        });
        let measured = 100.0 * missing as f64 / rows as f64;
        println!("{name}: README {percent} %, inspected {measured:.2} %");
        assert!((measured - percent).abs() <= 0.05, "{name}: README {percent} %, inspected {measured:.3} %");
    }
}

#[test]
fn bundled_beijing_station_matches_the_bundled_readme() {
    // data/README.md: Aotizhongxin alone has PM2.5 2.6 %, PM10 2.0 %, SO2 2.7 %, NO2 2.9 %, CO 5.1 %, O3 4.9 % missing
    let readme = std::fs::read_to_string(repo().join("data/README.md")).unwrap();
    let expected = readme_missing_percentages(&readme);
    assert_eq!(expected.len(), 6, "{expected:?}");
    for file in with_parquet("data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv", "beijing-aotizhongxin") {
        let r = Inspection::read(repo().join(&file), None, &MissingValues::default(), EpochUnit::Seconds).unwrap();
        assert_eq!((r.rows, r.median_interval), (35_064, 3600), "{file}");
        for (name, percent) in &expected {
            let measured = 100.0 * r.signal(name).unwrap().missing_in_rows();
            assert!((measured - percent).abs() <= 0.05, "{file} {name}: README {percent} %, inspected {measured:.3} %");
        }
    }
}

#[test]
fn compressor_has_minute_averages_with_thirty_percent_of_slots_empty_and_gaps_up_to_two_and_a_half_hours() {
    let r = Inspection::read(
        repo().join("data/compressor/compressor_power_output.csv"),
        None,
        &MissingValues::default(),
        EpochUnit::Seconds,
    )
    .unwrap();
    assert_eq!(r.rows, 134_840, "README: 134,840 rows");
    assert_eq!(r.median_interval, 60, "README: 1-min averages");
    assert_eq!(r.longest_gap, 9000, "README: gaps up to 2.5 h");
    let empty = r.empty_on_grid();
    println!("compressor: {:.1} % of minute slots empty (README ~30 %)", 100.0 * empty);
    assert!((empty - 0.30).abs() < 0.01, "README: ~30 % of minute slots absent; inspected {empty}");
}

#[test]
fn physionet_is_about_eighty_percent_empty_on_an_hourly_grid() {
    for file in with_parquet("data/physionet/set-a-first400.csv", "physionet-first400") {
        let r =
            Inspection::read(repo().join(&file), Some(3600), &MissingValues::default(), EpochUnit::Seconds).unwrap();
        let Layout::Long(columns) = &r.layout else { panic!("{file} is long") };
        assert_eq!((columns.time.as_str(), columns.entity.as_str()), ("time", "record_id"));
        assert_eq!(r.entities, 400, "{file}");
        assert!(r.longest_gap <= 48 * 3600, "README: first 48 h; {}", r.longest_gap);
        let empty = r.empty_on_grid();
        println!("{file}: {:.1} % empty on the hourly grid (README ~80 %)", 100.0 * empty);
        assert!((empty - 0.80).abs() < 0.03, "README: ~80 % empty on an hourly grid; inspected {empty}");
    }
}

/// Synthetic: four weeks, hourly, from Monday 2024-01-01; `hourly` is the hour of the day,
/// `daily` the weekday, `flat` a constant. Each cycle explains all of its own signal and
/// none of the other (every hour holds every weekday equally often, and the reverse); the
/// month only where it changes. PhysioNet's elapsed times have no cycles.
#[test]
fn the_share_of_variance_each_calendar_cycle_explains() {
    let scratch = tempfile::Builder::new().prefix("recur-calendar-share-").tempdir().unwrap();
    let dir = scratch.path();
    let file = dir.join("cycles.csv");
    let mut text = String::from("timestamp,hourly,daily,flat\n");
    for n in 0..28 * 24 {
        text += &format!("{},{},{},5\n", 1_704_067_200 + n * 3600, n % 24, n / 24 % 7);
    }
    std::fs::write(&file, text).unwrap();
    let r = Inspection::read(&file, None, &MissingValues::default(), EpochUnit::Seconds).unwrap();
    let share = |name: &str| r.calendar_shares[r.signals.iter().position(|s| s.name == name).unwrap()].unwrap();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    let (hourly, daily, flat) = (share("hourly"), share("daily"), share("flat"));
    assert!(close(hourly.hour_of_day, 1.0) && close(hourly.weekday, 0.0) && close(hourly.month, 0.0), "{hourly:?}");
    assert!(close(daily.hour_of_day, 0.0) && close(daily.weekday, 1.0) && close(daily.month, 0.0), "{daily:?}");
    assert!(close(flat.hour_of_day, 0.0) && close(flat.weekday, 0.0), "{flat:?}");
    // each cycle suggested for its own signal; four weeks say nothing of the year
    let suggested = r.suggested_calendar(0.1);
    let names: Vec<(CalendarCycle, Vec<&str>)> =
        suggested.iter().map(|(c, s)| (*c, s.iter().map(|(n, _)| n.as_str()).collect())).collect();
    assert_eq!(names, [(CalendarCycle::Day, vec!["hourly"]), (CalendarCycle::Week, vec!["daily"])]);

    let r = Inspection::read(
        repo().join("data/physionet/set-a-first400.csv"),
        Some(3600),
        &MissingValues::default(),
        EpochUnit::Seconds,
    )
    .unwrap();
    assert!(r.calendar_shares.iter().all(Option::is_none));
}
