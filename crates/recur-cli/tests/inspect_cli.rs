//! `recur inspect` as a user meets it: the bundled Beijing station (real data) with its
//! categorical columns, and a historian's export (a small synthetic file written here:
//! Windows-1252, `;` between fields, decimal commas, a status string among the numbers).

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `recur inspect args…`: (success, stdout, stderr).
fn inspect(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_recur")).arg("inspect").args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn inspect_names_categorical_columns_and_how_a_file_was_read() {
    let beijing = repo().join("data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv");
    let (ok, out, err) = inspect(&[beijing.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains(": wide, 1 entity, 35064 rows, median interval 3600 s"), "{out}");
    assert!(out.contains("categorical (one-hot as data.categorical): wd (16 values), station (1 value)"), "{out}");
    assert!(!out.contains("note:"), "no text among Beijing's numbers: {out}");
    // the share of each signal's variance its hour, weekday and month explain: the seasons
    // make most of temperature's, the day a quarter of ozone's, the weekday next to nothing
    let shares = |name: &str| -> Vec<f64> {
        let row = out.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap();
        row.split('%').skip(2).filter_map(|c| c.trim().parse::<f64>().ok()).collect()
    };
    assert!(out.contains("hour explains   weekday     month"), "{out}");
    let (temp, ozone, wind_direction) = (shares("TEMP"), shares("O3"), out.lines().find(|l| l.contains("  wd ")));
    assert!(temp[2] > 75.0 && temp[0] > 5.0 && temp[1] < 1.0, "{temp:?}");
    assert!(ozone[0] > 20.0, "{ozone:?}");
    assert!(wind_direction.is_some_and(|l| l.trim_end().ends_with("—")), "a categorical signal has none");
    // the cycles worth a model's inputs: the day (ozone, wind), the year (four years of data)
    assert!(
        out.contains(
            "calendar: the hour of the day explains 23 % of O3, 12 % of WSPM; the month explains 82 % of TEMP"
        ),
        "{out}"
    );
    assert!(out.contains("data.calendar = [\"day\", \"year\"] lets a model read them"), "{out}");
    // the compressor's months are a trend over its few months, not seasons: nothing suggested
    let compressor = repo().join("data/compressor/compressor_power_output.csv");
    let (ok, out, err) = inspect(&[compressor.to_str().unwrap()]);
    assert!(ok && !out.contains("calendar:"), "{out}{err}");

    let scratch = tempfile::Builder::new().prefix("recur-inspect-cli-").tempdir().unwrap();
    let dir = scratch.path();
    let file = dir.join("historian.csv");
    std::fs::write(
        &file,
        b"timestamp;Durchfluss m\xb3/h\n2024-01-01 00:00;12,5\n2024-01-01 01:00;Bad\n2024-01-01 02:00;13\n\
          2024-01-01 03:00;Bad\n2024-01-01 04:00;14,25\n",
    )
    .unwrap();
    let (ok, out, err) = inspect(&[file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("wide (`;`-separated, decimal commas read; not UTF-8: read as Windows-1252)"), "{out}");
    assert!(
        out.contains("note: `Durchfluss m³/h` holds 3 numbers and 2 text cells: `Bad` ×2 (first on line 3)")
            && out.contains("--missing-values 'Bad'"),
        "{out}"
    );
    let (ok, out, err) = inspect(&[file.to_str().unwrap(), "--missing-values", "Bad"]);
    assert!(ok, "{err}");
    let row = out.lines().find(|l| l.trim_start().starts_with("Durchfluss")).unwrap();
    assert!(row.contains("40.0 %") && !out.contains("note:"), "{out}");

    let (ok, _, err) = inspect(&[file.to_str().unwrap(), "--time-unit", "minutes"]);
    assert!(!ok && err.contains("--time-unit: `minutes` is none of s, ms, us, ns"), "{err}");
}

/// `--time-zone`: the cycles' shares in a zone's local time. A fixed offset only renames
/// the hours, so the day explains as much of the station's ozone; a zone that is neither
/// in the database nor a POSIX rule is named with where it was looked for.
#[test]
fn inspect_groups_by_the_local_time_of_a_zone() {
    let beijing = repo().join("data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv");
    let hour_share = |out: &str, name: &str| -> String {
        let row = out.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap();
        row.split('%').nth(2).unwrap().trim().to_string()
    };
    let (ok, utc, err) = inspect(&[beijing.to_str().unwrap()]);
    assert!(ok, "{err}");
    let (ok, shifted, err) = inspect(&[beijing.to_str().unwrap(), "--time-zone", "<+08>-8"]);
    assert!(ok, "{err}");
    assert_eq!(hour_share(&shifted, "O3"), hour_share(&utc, "O3"));
    let (ok, _, err) = inspect(&[beijing.to_str().unwrap(), "--time-zone", "Mars/Olympus"]);
    assert!(!ok && err.contains("--time-zone: ") && err.contains("`Mars/Olympus` is neither"), "{err}");

    // --naive-times local (synthetic rows): a local-time export across the autumn change,
    // its 02:00 written twice, is five distinct hours, not a duplicate
    let scratch = tempfile::Builder::new().prefix("recur-inspect-local-").tempdir().unwrap();
    let file = scratch.path().join("local.csv");
    let hours = ["00:00", "01:00", "02:00", "02:00", "03:00"];
    let rows: Vec<String> = hours.iter().enumerate().map(|(k, h)| format!("2024-10-27 {h},{k}")).collect();
    std::fs::write(&file, format!("timestamp,flow\n{}\n", rows.join("\n"))).unwrap();
    let (ok, _, err) = inspect(&[file.to_str().unwrap()]);
    assert!(!ok && err.contains("line 5") && err.contains("duplicate timestamp"), "{err}");
    let zone = ["--time-zone", "CET-1CEST,M3.5.0,M10.5.0/3", "--naive-times", "local"];
    let (ok, out, err) = inspect(&[&[file.to_str().unwrap()][..], &zone].concat());
    assert!(ok && out.contains("5 rows, median interval 3600 s"), "{out}{err}");
    let (ok, _, err) = inspect(&[file.to_str().unwrap(), "--naive-times", "local"]);
    assert!(!ok && err.contains("--naive-times local: the times are local to --time-zone ZONE"), "{err}");
}
