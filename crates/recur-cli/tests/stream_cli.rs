//! `recur stream` end to end: a briefly trained prediction run on the bundled Beijing
//! station (real data) streams rows from stdin and answers each with the next hour's
//! forecast (and `recur predict` / `recur eval` reach further ahead in closed loop, and
//! `recur diagnose gradients --run` says how far back it reads); bad rows are errors naming
//! line and column.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn beijing_csv() -> PathBuf {
    repo().join("data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv")
}

/// An empty folder for a test's files, `name` telling the tests apart; removed when dropped,
/// whether the test passes or fails.
fn scratch_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("{name}-")).tempdir().unwrap()
}

/// A grid's steps as the feed `recur stream` takes without `--align`: a header of its
/// signals, one row per step, `NA` where a signal has no value.
fn grid_as_feed(grid: &recur::data::GridSeries) -> String {
    let c = grid.channels();
    let mut feed = grid.signals.join(",") + "\n";
    for n in 0..grid.len() {
        let cells: Vec<String> = (0..c)
            .map(|j| if grid.observed[n * c + j] { grid.values[n * c + j].to_string() } else { "NA".into() })
            .collect();
        feed += &(cells.join(",") + "\n");
    }
    feed
}

/// Runs `recur args…` with `stdin` fed; (success, stdout, stderr).
fn recur(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_recur"))
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // a command refused before it reads (a bad run folder) closes stdin: not the test's failure
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// `recur train` on the bundled station, briefly (one epoch of 3 batches), with `task`'s
/// keys: the run folder `dir/name` and what the command printed.
/// `data`: further lines of the `[data]` table.
fn trained_run(dir: &std::path::Path, name: &str, data: &str, task: &str) -> (PathBuf, String) {
    let files =
        format!("files = [{:?}]\ndrop = [\"No\", \"wd\", \"station\"]\n{data}", beijing_csv().display().to_string());
    trained_briefly(dir, name, &files, task)
}

/// `recur train` on the `[data]` table `data` (one epoch of 3 batches, one thread) with
/// `task`'s keys: the run folder `dir/name` and what the command printed.
fn trained_briefly(dir: &std::path::Path, name: &str, data: &str, task: &str) -> (PathBuf, String) {
    let config = dir.join(format!("{name}.toml"));
    let text = format!("[data]\n{data}\n[task]\n{task}\n[train]\nepochs = 1\nmax_batches_per_epoch = 3\nthreads = 1\n");
    std::fs::write(&config, text).unwrap();
    let run = dir.join(name);
    let (ok, out, err) = recur(&["train", "--config", config.to_str().unwrap(), "--out", run.to_str().unwrap()], "");
    assert!(ok, "{err}");
    (run, out)
}

/// `--out` naming a file the command reads — the run's data, a `--data` file — is refused
/// by name and the file left as it was (written over, it would be lost).
#[test]
fn outputs_are_never_written_over_the_data_they_read() {
    let scratch = scratch_dir("recur-out-over-data");
    let dir = scratch.path();
    let (data, other) = (dir.join("station.csv"), dir.join("other.csv"));
    std::fs::copy(beijing_csv(), &data).unwrap();
    std::fs::copy(beijing_csv(), &other).unwrap();
    let files = format!("files = [{:?}]\ndrop = [\"No\", \"wd\", \"station\"]", data.display().to_string());
    let (run, _) =
        trained_briefly(dir, "run", &files, "kind = \"prediction\"\nwindow = 12\nuncertainty = \"gaussian\"");
    let run = run.to_str().unwrap();
    let (data_arg, other_arg) = (data.to_str().unwrap(), other.to_str().unwrap());
    let original = std::fs::read(beijing_csv()).unwrap();
    for command in [
        vec!["predict", "--run", run, "--out", data_arg],
        vec!["predict", "--run", run, "--data", other_arg, "--out", other_arg],
        vec!["detect", "--run", run, "--out", data_arg],
    ] {
        let (ok, _, err) = recur(&command, "");
        assert!(!ok && err.contains("that is a data file it reads"), "{command:?}: {err}");
    }
    assert!(std::fs::read(&data).unwrap() == original && std::fs::read(&other).unwrap() == original);
    let (ok, _, err) = recur(&["predict", "--run", run, "--data", other_arg, "--out", data_arg], "");
    assert!(ok, "another file than the one read: {err}");
}

/// An edge box holds the run folder, not the training data: the model streams from
/// run.toml, model.safetensors and scaler.json alone, answering as it does beside its data.
#[test]
fn a_run_folder_alone_streams_where_its_training_data_is_not() {
    let scratch = scratch_dir("recur-stream-edge");
    let dir = scratch.path();
    let data = dir.join("station.csv");
    std::fs::copy(beijing_csv(), &data).unwrap();
    let files = format!("files = [{:?}]\ndrop = [\"No\", \"wd\", \"station\"]", data.display().to_string());
    let (run, _) =
        trained_briefly(dir, "run", &files, "kind = \"prediction\"\nwindow = 12\nuncertainty = \"gaussian\"");
    let text = std::fs::read_to_string(beijing_csv()).unwrap().replace('"', "");
    let feed = text.lines().take(25).collect::<Vec<_>>().join("\n") + "\n";
    let (ok, beside_data, err) = recur(&["stream", "--run", run.to_str().unwrap()], &feed);
    assert!(ok, "{err}");

    std::fs::remove_file(&data).unwrap();
    let edge = dir.join("edge");
    std::fs::create_dir_all(&edge).unwrap();
    for file in ["run.toml", "model.safetensors", "scaler.json"] {
        std::fs::copy(run.join(file), edge.join(file)).unwrap();
    }
    let (ok, alone, err) = recur(&["stream", "--run", edge.to_str().unwrap()], &feed);
    assert!(ok, "{err}");
    assert_eq!(alone, beside_data, "the same forecasts and bands, to the bit");
    assert_eq!(alone.lines().count(), 25);
    // commands that read the data say which file they miss
    let (ok, _, err) = recur(&["predict", "--run", edge.to_str().unwrap()], "");
    assert!(!ok && err.contains("station.csv"), "{err}");
    // a damaged scaler.json is named, with what is wrong in it
    let scaler = edge.join("scaler.json");
    let damaged = std::fs::read_to_string(&scaler).unwrap().replacen("\"std\": [", "\"std\": [0.0, ", 1);
    std::fs::write(&scaler, damaged).unwrap();
    let (ok, _, err) = recur(&["stream", "--run", edge.to_str().unwrap()], &feed);
    assert!(!ok && err.contains("scaler.json") && err.contains("scaler.std has 12 entries for 11 signals"), "{err}");
    let original = std::fs::read_to_string(run.join("scaler.json")).unwrap();
    std::fs::write(&scaler, original.replacen("\"screen\": []", "\"screen\": [null]", 1)).unwrap();
    let (ok, _, err) = recur(&["stream", "--run", edge.to_str().unwrap()], &feed);
    assert!(!ok && err.contains("scaler.screen has 1 entries for 11 signals"), "{err}");
}

/// A historian's feed is raw: irregular times, absent minutes. With `--align true` the
/// stream puts its rows on the run's grid as training did (the compressor power, real data:
/// 1-minute values, ~30 % absent, on 10-minute bins) and answers each bin as the next row
/// completes it — the same answers, to the bit, as streaming the grid's steps themselves.
#[test]
fn a_raw_feed_is_aligned_onto_the_runs_grid_as_training_aligned_it() {
    let scratch = scratch_dir("recur-stream-align");
    let dir = scratch.path();
    let csv = repo().join("data/compressor/compressor_power_output.csv");
    let files = format!("files = [{:?}]\nbin_seconds = 600\noutlier_mads = 20", csv.display().to_string());
    let (run, _) = trained_briefly(dir, "power", &files, "kind = \"prediction\"\nwindow = 12");

    // the first 6,000 rows as they are in the file (6 days; absent minutes absent, a 30-minute
    // gap at line 5014)
    let text = std::fs::read_to_string(&csv).unwrap();
    let raw: Vec<&str> = text.lines().take(6001).collect();
    let (ok, aligned, err) =
        recur(&["stream", "--run", run.to_str().unwrap(), "--align", "true"], &(raw.join("\n") + "\n"));
    assert!(ok, "{err}");

    // the reference: the same rows read and aligned as training reads them, one row per bin
    let part = dir.join("part.csv");
    std::fs::write(&part, raw.join("\n") + "\n").unwrap();
    let series = recur::data::read_wide(&part, &Default::default()).unwrap();
    let grid = recur::data::align_to_grid(&series, 600, Default::default()).unwrap();
    let name = &grid.signals[0];
    let steps = grid_as_feed(&grid);
    let (ok, on_grid, err) = recur(&["stream", "--run", run.to_str().unwrap()], &steps);
    assert!(ok, "{err}");
    let aligned: Vec<&str> = aligned.lines().collect();
    let on_grid: Vec<&str> = on_grid.lines().collect();
    assert_eq!(aligned[0], format!("time,{name}_next"));
    assert_eq!(aligned.len(), grid.len() + 1, "one answer per 10-minute bin, the empty ones too");
    assert!(grid.observed.iter().any(|o| !o), "the slice has empty bins");
    for (n, (a, g)) in aligned[1..].iter().zip(&on_grid[1..]).enumerate() {
        let (time, answer) = a.split_once(',').unwrap();
        assert_eq!(time, recur::data::Clock::Calendar.format(grid.start + 600 * n as i64));
        assert_eq!(answer, *g, "bin {n}");
    }
    assert_eq!(aligned[1].split(',').next(), Some("2022-01-18 14:45:00"), "the grid starts at the first row");

    // a value training's outlier screen would take out is a gap, and the stream says so
    let wild = format!("{}\n{}\n2022-01-18 14:46:00,900000000.0\n{}\n", raw[0], raw[1], raw[3]);
    let (ok, _, err) = recur(&["stream", "--run", run.to_str().unwrap(), "--align", "true"], &wild);
    assert!(
        ok && err.contains(
            "1 values outside the training's outlier screen (data.outlier_mads) read as gaps (pi:160220|average 1)"
        ),
        "{err}"
    );

    // a row out of time order, and a feed without a time column, are refused by line
    let swapped = format!("{}\n{}\n{}\n{}\n", raw[0], raw[1], raw[40], raw[2]);
    let (ok, _, err) = recur(&["stream", "--run", run.to_str().unwrap(), "--align", "true"], &swapped);
    assert!(!ok && err.contains("line 4: ") && err.contains("rows must come in time order"), "{err}");
    let (ok, _, err) = recur(&["stream", "--run", run.to_str().unwrap(), "--align", "true"], &steps);
    assert!(!ok && err.contains("line 1: no time column for --align"), "{err}");
}

/// A run trained on long data (PhysioNet 2012: `record_id,time,parameter,value`, real data)
/// streams a long feed — one stay's rows as the file holds them, other parameters among
/// them — putting them on its hourly grid as the long reader and the alignment did in
/// training: the same answers as streaming that stay's grid steps, times as the data
/// writes them (hours:minutes since admission). Several stays in one feed each stream
/// with their own state; with `--bad-rows skip`, rows that cannot be read are told and
/// passed over.
#[test]
fn a_long_feed_streams_as_the_long_reader_read_it() {
    let scratch = scratch_dir("recur-stream-long");
    let dir = scratch.path();
    let csv = repo().join("data/physionet/set-a-first400.csv");
    let data = format!(
        "files = [{:?}]\nformat = \"long\"\nbin_seconds = 3600\nsignals = [\"HR\", \"MAP\", \"Temp\", \"Urine\"]\n\
         columns = {{ time = \"time\", signal = \"parameter\", value = \"value\", entity = \"record_id\" }}\n\
         split = {{ by = \"entity\" }}",
        csv.display().to_string()
    );
    let (run, _) = trained_briefly(dir, "vitals", &data, "kind = \"prediction\"\nwindow = 6");
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let stay: Vec<&str> =
        std::iter::once(lines[0]).chain(lines.iter().copied().filter(|l| l.starts_with("132539,"))).collect();
    let (ok, from_long, err) = recur(&["stream", "--run", run.to_str().unwrap()], &(stay.join("\n") + "\n"));
    assert!(ok, "{err}");

    // the reference: the stay read and aligned as training reads it, one row per hour
    let options = recur::data::LongOptions {
        columns: recur::data::LongColumns {
            time: "time".into(),
            signal: "parameter".into(),
            value: "value".into(),
            entity: "record_id".into(),
        },
        signals: ["HR", "MAP", "Temp", "Urine"].map(String::from).to_vec(),
        ..Default::default()
    };
    let entities = recur::data::read_long(&csv, &options).unwrap();
    let series = &entities.iter().find(|(name, _)| name == "132539").unwrap().1;
    let grid = recur::data::align_to_grid(series, 3600, Default::default()).unwrap();
    let steps = grid_as_feed(&grid);
    let (ok, from_grid, err) = recur(&["stream", "--run", run.to_str().unwrap()], &steps);
    assert!(ok, "{err}");
    let from_long: Vec<&str> = from_long.lines().collect();
    assert_eq!(from_long.len(), grid.len() + 1);
    assert_eq!(from_long.len(), 49, "48 hours from 0:07 (the first of its values) to 47:37");
    assert!(from_long[0].starts_with("record_id,time,"), "{}", from_long[0]);
    for (n, (long, steps)) in from_long[1..].iter().zip(from_grid.lines().skip(1)).enumerate() {
        let (entity, rest) = long.split_once(',').unwrap();
        let (time, answer) = rest.split_once(',').unwrap();
        assert_eq!((entity, time), ("132539", format!("{n}:07").as_str()));
        assert_eq!(answer, steps, "hour {n}");
    }

    // several stays in one feed, their rows interleaved, watched (`--flag`, with the
    // alarms `recur detect --alarm-rate` keeps): each stay on its own grid, with its own
    // state and episodes, answered and flagged row for row as when streamed alone
    let (ok, out, err) = recur(&["detect", "--run", run.to_str().unwrap(), "--alarm-rate", "0.05"], "");
    assert!(ok, "{err}");
    // offline, the test part's stays with episodes on one timeline
    let fleet = run.join("episodes_by_entity.png");
    assert!(out.contains("episodes_by_entity.png") && std::fs::read(&fleet).unwrap().starts_with(b"\x89PNG"), "{out}");
    let stays = ["132539", "132540", "132541"];
    let rows_of =
        |id: &str| -> Vec<&str> { lines.iter().copied().filter(|l| l.starts_with(&format!("{id},"))).collect() };
    let mut mixed = vec![lines[0]];
    let each: Vec<Vec<&str>> = stays.iter().map(|id| rows_of(id)).collect();
    for k in 0..each.iter().map(Vec::len).max().unwrap() {
        mixed.extend(each.iter().filter_map(|rows| rows.get(k)));
    }
    let watch = ["stream", "--run", run.to_str().unwrap(), "--flag", "3"];
    let (ok, together, err) = recur(&watch, &(mixed.join("\n") + "\n"));
    assert!(ok, "{err}");
    let episodes = |err: &str| -> usize {
        let line = err.lines().find(|l| l.contains(" episodes (")).unwrap_or_else(|| panic!("{err}"));
        line.split(' ').next().unwrap().parse().unwrap()
    };
    let mut alone_episodes = 0;
    for (id, rows) in stays.iter().zip(&each) {
        let feed = std::iter::once(lines[0]).chain(rows.iter().copied()).collect::<Vec<_>>().join("\n") + "\n";
        let (ok, alone, err) = recur(&watch, &feed);
        assert!(ok, "{err}");
        alone_episodes += episodes(&err);
        let mine: Vec<&str> = together.lines().skip(1).filter(|l| l.starts_with(&format!("{id},"))).collect();
        assert_eq!(mine, alone.lines().skip(1).collect::<Vec<_>>(), "stay {id}");
        assert!(mine.len() >= 40, "stay {id}: {} hours", mine.len());
    }
    let header = together.lines().next().unwrap();
    assert!(header.starts_with("record_id,time,") && header.ends_with(",new_alarms"), "{header}");
    assert_eq!(episodes(&err), alone_episodes, "{err}");
    assert!(alone_episodes > 0, "{err}");

    // --state: the interleaved feed in two parts, the second going on where the first
    // stopped (each stay's model state, watch and open hour), answers and flags as the
    // whole feed read at once, and leaves the same state behind
    let with_state = |file: &Path| -> Vec<String> {
        watch.iter().map(|a| a.to_string()).chain(["--state".into(), file.display().to_string()]).collect()
    };
    let run_with = |file: &Path, rows: &[&str]| {
        let args = with_state(file);
        let feed = std::iter::once(lines[0]).chain(rows.iter().copied()).collect::<Vec<_>>().join("\n") + "\n";
        let (ok, out, err) = recur(&args.iter().map(String::as_str).collect::<Vec<_>>(), &feed);
        assert!(ok, "{err}");
        (out, err)
    };
    let (at_once, at_once_err) = run_with(&dir.join("at_once.json"), &mixed[1..]);
    let half = mixed.len() / 2;
    let (first, first_err) = run_with(&dir.join("parts.json"), &mixed[1..half]);
    let (second, second_err) = run_with(&dir.join("parts.json"), &mixed[half..]);
    let rows = |out: &str| out.lines().skip(1).map(String::from).collect::<Vec<_>>();
    assert_eq!([rows(&first), rows(&second)].concat(), rows(&at_once));
    assert!(rows(&first).len() > 40 && rows(&second).len() > 40);
    assert_eq!(episodes(&first_err) + episodes(&second_err), episodes(&at_once_err), "{first_err}{second_err}");
    let state = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    assert_eq!(state("parts.json"), state("at_once.json"));
    assert!(second_err.contains(&format!("state of 3 entities after {} feed rows (", mixed.len() - 1)), "{second_err}");
    // a state kept for another run's signals is refused, naming the file
    std::fs::write(dir.join("other.json"), state("parts.json").replace("\"HR\"", "\"Pulse\"")).unwrap();
    let args = with_state(&dir.join("other.json"));
    let (ok, _, err) = recur(&args.iter().map(String::as_str).collect::<Vec<_>>(), &format!("{}\n", lines[0]));
    assert!(!ok && err.contains("other.json: the state of a stream of the signals"), "{err}");
    // and one kept for the model before it was retrained (its fingerprint another)
    let saved: serde_json::Value = serde_json::from_str(&state("parts.json")).unwrap();
    let model = saved["model"].as_str().unwrap();
    assert_eq!(model.len(), 16, "{model}");
    std::fs::write(dir.join("older.json"), state("parts.json").replace(model, "0123456789abcdef")).unwrap();
    let args = with_state(&dir.join("older.json"));
    let (ok, _, err) = recur(&args.iter().map(String::as_str).collect::<Vec<_>>(), &format!("{}\n", lines[0]));
    assert!(!ok && err.contains("older.json: the state of a stream of another model"), "{err}");

    // a stay's rows out of time order are refused, naming the stay
    let hr: Vec<&&str> = each[1].iter().filter(|l| l.contains(",HR,")).collect();
    let shuffled = format!("{}\n{}\n{}\n", lines[0], hr[5], hr[0]);
    let (ok, _, err) = recur(&["stream", "--run", run.to_str().unwrap()], &shuffled);
    assert!(!ok && err.contains("line 3 (entity `132540`): decreasing time"), "{err}");

    // --leave-after: a stay without a row the run reads among the last 300 has left, its last hour answered then; each
    // stay's answers are those of the whole feed, and the state keeps only the stays left
    let leave = ["stream", "--run", run.to_str().unwrap(), "--flag", "3", "--leave-after", "300"];
    let left_state = dir.join("left.json");
    let with_leave: Vec<&str> = leave.iter().copied().chain(["--state", left_state.to_str().unwrap()]).collect();
    let (ok, left, err) = recur(&with_leave, &(mixed.join("\n") + "\n"));
    assert!(ok && err.contains("entities left after 300 rows without one of theirs"), "{err}");
    let of_stay = |out: &str, id: &str| -> Vec<String> {
        out.lines().skip(1).filter(|l| l.starts_with(&format!("{id},"))).map(String::from).collect()
    };
    let gone: Vec<&&str> =
        stays.iter().filter(|id| !state("left.json").contains(&format!("\"name\":\"{id}\""))).collect();
    assert!(!gone.is_empty() && gone.len() < stays.len(), "{gone:?}");
    for id in gone {
        assert_eq!(of_stay(&left, id), of_stay(&together, id), "stay {id}");
    }

    // --bad-rows skip: a late row, a cell that is no number and a short row in the
    // interleaved feed are told and passed over; the rest answers as the feed without them
    let mut bad = mixed.clone();
    let hr_after = |k: usize| (k..mixed.len()).find(|&i| mixed[i].contains(",HR,")).unwrap();
    let (a, b) = (hr_after(40), hr_after(60));
    let fields = |i: usize| mixed[i].split(',').collect::<Vec<_>>();
    let (late, junk) = (format!("{},0:00,HR,80", fields(a)[0]), format!("{},{},HR,eighty", fields(b)[0], fields(b)[1]));
    // inserted after the rows they follow, the later first so that the earlier keeps its place
    bad.insert(b + 1, &junk);
    bad.insert(a + 1, &late);
    bad.insert(b + 3, "132540,3:00");
    let skip = ["stream", "--run", run.to_str().unwrap(), "--flag", "3", "--bad-rows", "skip"];
    let (ok, skipped, err) = recur(&skip, &(bad.join("\n") + "\n"));
    assert!(ok, "{err}");
    assert_eq!(rows(&skipped), rows(&together), "the bad rows passed over");
    let (late_line, junk_line, short_line) = (a + 2, b + 3, b + 4);
    assert!(err.contains(&format!("line {late_line} (entity `{}`): decreasing time", fields(a)[0])), "{err}");
    assert!(err.contains(&format!("line {junk_line}, column `value`: `eighty` is not a number")), "{err}");
    assert!(
        err.contains(&format!("line {short_line}: 2 fields, the header has 4 (skipped: --bad-rows skip)")),
        "{err}"
    );
    let (ok, _, err) = recur(&["stream", "--run", run.to_str().unwrap(), "--bad-rows", "ignore"], "");
    assert!(!ok && err.contains("--bad-rows ignore: `stop` (the default) or `skip`"), "{err}");
}

/// A run with a categorical signal (`data.categorical = ["wd"]`: the wind direction's 16
/// values one-hot) streams the feed's text column, one-hot as training read it: the same
/// answers as a feed that gives the 16 indicator columns as numbers.
#[test]
fn a_categorical_column_streams_one_hot_as_training_read_it() {
    let scratch = scratch_dir("recur-stream-categorical");
    let dir = scratch.path();
    let data = format!(
        "files = [{:?}]\ndrop = [\"No\", \"station\"]\ncategorical = [\"wd\"]",
        beijing_csv().display().to_string()
    );
    let (run, _) = trained_briefly(dir, "wind", &data, "kind = \"prediction\"\nwindow = 12");
    let fitted = recur::data::FittedScaler::load_from_run(&run).unwrap().unwrap();
    assert_eq!(fitted.signals.iter().filter(|s| s.starts_with("wd=")).count(), 16);

    let beijing = std::fs::read_to_string(beijing_csv()).unwrap().replace('"', "");
    // 48 hours around line 6390, whose wind direction is NA
    let lines: Vec<&str> = beijing.lines().collect();
    let rows: Vec<Vec<&str>> =
        std::iter::once(lines[0]).chain(lines[6379..6427].iter().copied()).map(|l| l.split(',').collect()).collect();
    let raw: Vec<String> = rows.iter().map(|r| r.join(",")).collect();
    let (ok, from_text, err) = recur(&["stream", "--run", run.to_str().unwrap()], &(raw.join("\n") + "\n"));
    assert!(ok, "{err}");
    // the indicators written out by hand: 1 for the row's direction, 0 for the others, NA
    // in all 16 where the direction is missing
    let column = |name: &str| rows[0].iter().position(|c| *c == name).unwrap();
    let wd = column("wd");
    assert_eq!(rows.iter().filter(|r| r[wd] == "NA").count(), 1);
    let mut numbers = fitted.signals.join(",") + "\n";
    for r in &rows[1..] {
        let cells: Vec<String> = fitted
            .signals
            .iter()
            .map(|s| match s.strip_prefix("wd=") {
                Some(_) if r[wd] == "NA" => "NA".to_string(),
                Some(direction) => if r[wd] == direction { "1" } else { "0" }.to_string(),
                None => r[column(s)].to_string(),
            })
            .collect();
        numbers += &(cells.join(",") + "\n");
    }
    let (ok, from_numbers, err) = recur(&["stream", "--run", run.to_str().unwrap()], &numbers);
    assert!(ok, "{err}");
    let answers = |out: &str, skip: usize| -> Vec<String> {
        out.lines().skip(1).map(|l| l.split(',').skip(skip).collect::<Vec<_>>().join(",")).collect()
    };
    // the raw feed passes its 6 other columns through (No, year, month, day, hour, station)
    assert_eq!(answers(&from_text, 6), answers(&from_numbers, 0));
    assert_eq!(answers(&from_text, 6).len(), 48);
    let no_wd = raw.iter().map(|l| l.replace(",wd,", ",wind,")).collect::<Vec<_>>().join("\n") + "\n";
    let (ok, _, err) = recur(&["stream", "--run", run.to_str().unwrap()], &no_wd);
    assert!(!ok && err.contains("line 1: no column `wd` (data.categorical"), "{err}");
}

#[test]
fn a_trained_run_streams_rows_from_stdin_into_forecasts() {
    let scratch = scratch_dir("recur-stream-cli");
    let dir = scratch.path();
    let (run, trained) = trained_run(dir, "run", "", "kind = \"prediction\"\nwindow = 12");

    let text = std::fs::read_to_string(beijing_csv()).unwrap().replace('"', "");
    let rows: Vec<&str> = text.lines().take(31).collect();
    let (ok, out, err) = recur(&["stream", "--run", run.to_str().unwrap()], &(rows.join("\n") + "\n"));
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 31, "a header and one forecast per row");
    assert!(lines[0].starts_with("No,year,month,day,hour,wd,station,PM2.5_next,"), "{}", lines[0]);
    for line in &lines[1..] {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 7 + 11);
        assert!(fields[7..].iter().all(|v| v.parse::<f32>().is_ok_and(f32::is_finite)), "{line}");
    }
    assert!(err.contains("30 steps streamed") && err.contains("99th percentile"), "{err}");

    // a latency budget: met, the run succeeds; missed, every forecast is still written and
    // the command fails naming the steps
    let feed = rows.join("\n") + "\n";
    let (ok, _, err) = recur(&["stream", "--run", run.to_str().unwrap(), "--budget-us", "1000000"], &feed);
    assert!(ok, "{err}");
    let (ok, out, err) = recur(&["stream", "--run", run.to_str().unwrap(), "--budget-us", "0.001"], &feed);
    assert!(!ok && err.contains("30 of 30 steps over the budget of 0.001 µs (lines 2, 3,"), "{err}");
    assert!(err.contains("line 2: the model step took"), "{err}");
    assert_eq!(out.lines().count(), 31, "every forecast written");

    // the next 3 hours at every row: the first block is the plain stream's forecast
    let (ok, ahead, err) =
        recur(&["stream", "--run", run.to_str().unwrap(), "--horizon", "3"], &(rows.join("\n") + "\n"));
    assert!(ok, "{err}");
    let ahead: Vec<&str> = ahead.lines().collect();
    assert!(ahead[0].contains(",PM2.5_t+1,") && ahead[0].ends_with(",WSPM_t+3"), "{}", ahead[0]);
    for (a, plain) in ahead[1..].iter().zip(&lines[1..]) {
        let (a, plain): (Vec<&str>, Vec<&str>) = (a.split(',').collect(), plain.split(',').collect());
        assert_eq!(a.len(), 7 + 3 * 11);
        assert_eq!(a[..7 + 11], plain[..], "the first step ahead is the plain forecast");
    }

    // further ahead, closed loop: `recur predict --horizon` and `recur eval --horizon`
    let forecast = dir.join("ahead.csv");
    let (ok, out, err) =
        recur(&["predict", "--run", run.to_str().unwrap(), "--horizon", "3", "--out", forecast.to_str().unwrap()], "");
    assert!(ok, "{err}");
    let written = std::fs::read_to_string(&forecast).unwrap();
    let steps: Vec<&str> = written.lines().skip(1).map(|l| l.split(',').nth(1).unwrap()).collect();
    assert_eq!(steps, ["1", "2", "3"], "{written}");
    assert!(out.contains("the next 3 steps (closed loop"), "{out}");
    let (ok, out, err) = recur(&["eval", "--run", run.to_str().unwrap(), "--horizon", "2"], "");
    assert!(ok, "{err}");
    let ahead: Vec<&str> = out.lines().filter(|l| l.starts_with("|           ")).collect();
    assert_eq!(ahead.len(), 2, "{out}");
    assert!(std::fs::read(run.join("horizon.png")).unwrap().starts_with(b"\x89PNG"));
    // by the hour of the day forecast: 24 rows whose scored entries add up to the test part's
    let (ok, out, err) = recur(&["eval", "--run", run.to_str().unwrap(), "--by", "hour"], "");
    assert!(ok, "{err}");
    let by_hour: Vec<Vec<&str>> = out
        .lines()
        .skip_while(|l| !l.starts_with("| hour |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    assert_eq!(
        by_hour.iter().map(|r| r[1]).collect::<Vec<_>>(),
        (0..24).map(|h| format!("{h:02}")).collect::<Vec<_>>()
    );
    let scored: u64 = by_hour.iter().map(|r| r[2].parse::<u64>().unwrap()).sum();
    assert!(trained.contains(&format!("test part: {scored} observed targets")), "{trained}");
    assert!(std::fs::read(run.join("by_hour.png")).unwrap().starts_with(b"\x89PNG"));
    let (ok, _, err) = recur(&["eval", "--run", run.to_str().unwrap(), "--by", "year"], "");
    assert!(!ok && err.contains("--by year: `hour` (of the day), `weekday` or `month`"), "{err}");
    let (ok, _, err) = recur(&["predict", "--run", run.to_str().unwrap(), "--horizon", "0"], "");
    assert!(!ok && err.contains("at least one step ahead"), "{err}");

    let missing = rows[0].replace("PM10", "PM_10");
    let (ok, _, err) = recur(&["stream", "--run", run.to_str().unwrap()], &format!("{missing}\n{}\n", rows[1]));
    assert!(!ok && err.contains("line 1: no column `PM10`"), "{err}");
    let bad = rows[2].replacen(",4,", ",four,", 1);
    let (ok, _, err) =
        recur(&["stream", "--run", run.to_str().unwrap()], &format!("{}\n{}\n{bad}\n", rows[0], rows[1]));
    assert!(!ok && err.contains("line 3, column `") && err.contains("`four` is not a number"), "{err}");
    // --bad-rows skip: in a feed of grid steps the row is a step with every value missing,
    // so the rows after it keep their hours; its passed cells (No, the date, wd, station) empty
    let gap: Vec<&str> =
        rows[2].split(',').enumerate().map(|(i, f)| if (5..=16).contains(&i) && i != 15 { "NA" } else { f }).collect();
    let feed = |third: &str| format!("{}\n{}\n{third}\n{}\n", rows[0], rows[1], rows[3..8].join("\n"));
    let skip = ["stream", "--run", run.to_str().unwrap(), "--bad-rows", "skip"];
    let (ok, skipped, err) = recur(&skip, &feed(&bad));
    assert!(ok && err.contains("line 3, column `") && err.contains("(skipped: --bad-rows skip)"), "{err}");
    let (ok, gapped, err) = recur(&["stream", "--run", run.to_str().unwrap()], &feed(&gap.join(",")));
    assert!(ok, "{err}");
    let answers =
        |out: &str| -> Vec<String> { out.lines().skip(1).map(|l| l.splitn(8, ',').nth(7).unwrap().into()).collect() };
    assert_eq!(answers(&skipped), answers(&gapped));
    assert_eq!(answers(&skipped).len(), 7);
    assert!(skipped.lines().nth(2).unwrap().starts_with(",,,,,,,"), "{skipped}");
}

/// A run that reads the calendar (`data.calendar`: the phases of each hour in its day and
/// week) on the bundled station: `recur stream` takes each row's time from the feed's own
/// time columns (year, month, day, hour), answering as the library's stream does when given
/// the time of the first step, and the same aligned; the same rows a day later are other
/// inputs; a feed without times is refused, naming the calendar; `recur export` says how the
/// inputs are made.
#[test]
fn a_run_reading_the_calendar_streams_each_row_at_its_own_time() {
    let scratch = scratch_dir("recur-stream-calendar");
    let dir = scratch.path();
    let (run, _) = trained_run(dir, "run", "calendar = [\"day\", \"week\"]", "kind = \"prediction\"\nwindow = 12");
    let run_arg = run.to_str().unwrap();
    let text = std::fs::read_to_string(beijing_csv()).unwrap().replace('"', "");
    let rows: Vec<&str> = text.lines().take(49).collect();
    let feed = rows.join("\n") + "\n";
    let (ok, plain, err) = recur(&["stream", "--run", run_arg], &feed);
    assert!(ok, "{err}");
    let forecasts = |out: &str, leading: usize| -> Vec<Vec<String>> {
        out.lines().skip(1).map(|l| l.split(',').skip(leading).map(String::from).collect()).collect()
    };
    let plain = forecasts(&plain, 7);
    assert_eq!(plain.len(), 48);

    // the library's stream over the run's data, told when its first step is
    let config = recur::run::RunConfig::load(run.join("run.toml")).unwrap();
    let data = recur::run::load_run_data(&run, &config).unwrap();
    let model = recur::model::SequenceModel::<f32>::load(run.join("model.safetensors")).unwrap();
    let task = recur::tasks::PredictionTask::from_config(&data, &config.prediction()).unwrap();
    let mut live = task.stream(&model).unwrap();
    live.at(data.step_time(0));
    for (n, cli) in plain.iter().enumerate() {
        let ours: Vec<String> = live.step(&data.original_step(n)).unwrap().iter().map(f32::to_string).collect();
        assert_eq!(*cli, ours, "hour {n}");
    }

    // aligned, each hour answered as the next row completes it: the same forecasts
    let (ok, aligned, err) = recur(&["stream", "--run", run_arg, "--align", "true"], &feed);
    assert!(ok, "{err}");
    assert_eq!(forecasts(&aligned, 1), plain);

    // the same rows a day later (a Saturday, not a Friday) read another phase of the week
    let later: Vec<String> = rows[1..]
        .iter()
        .map(|r| {
            let mut f: Vec<String> = r.split(',').map(String::from).collect();
            f[3] = (f[3].parse::<u32>().unwrap() + 1).to_string();
            f.join(",")
        })
        .collect();
    let (ok, shifted, err) = recur(&["stream", "--run", run_arg], &format!("{}\n{}\n", rows[0], later.join("\n")));
    assert!(ok, "{err}");
    let shifted = forecasts(&shifted, 7);
    assert!(shifted.iter().zip(&plain).all(|(a, b)| a != b), "every forecast moves with the week's phase");

    // a time that cannot be read is named by line and column
    let mut bad: Vec<String> = rows[..4].iter().map(|r| r.to_string()).collect();
    bad[2] = bad[2].split(',').enumerate().map(|(i, f)| if i == 4 { "noon" } else { f }).collect::<Vec<_>>().join(",");
    let (ok, _, err) = recur(&["stream", "--run", run_arg], &(bad.join("\n") + "\n"));
    assert!(!ok && err.contains("line 3, column `hour`"), "{err}");
    // without times the calendar cannot be read
    let untimed: Vec<String> = rows.iter().map(|r| r.split(',').skip(5).collect::<Vec<_>>().join(",")).collect();
    let (ok, _, err) = recur(&["stream", "--run", run_arg], &(untimed.join("\n") + "\n"));
    assert!(
        !ok && err.contains("line 1: the run reads calendar inputs") && err.contains("[\"day\", \"week\"]"),
        "{err}"
    );

    let export = dir.join("export");
    let (ok, _, err) = recur(&["export", "--run", run_arg, "--out", export.to_str().unwrap()], "");
    assert!(ok, "{err}");
    let preprocessing = std::fs::read_to_string(export.join("preprocessing.json")).unwrap();
    assert!(preprocessing.contains("\"cycles\": [\n      \"day\",\n      \"week\"\n    ]"), "{preprocessing}");
    assert!(preprocessing.contains("per cycle [sin 2πφ, cos 2πφ]"), "{preprocessing}");
}

/// A run's bands calibrated for a new site (`recur calibrate --data`): the station's first
/// 12,000 hours train a run with a ±2σ band; the next 8,000, a later period it never saw,
/// fit the factors on their first half and check them on the second; the calibrated copy of
/// the run goes to `--out`, the run keeps its own, and the copy serves with the new bands.
#[test]
fn calibrate_fits_a_runs_bands_on_data_it_was_not_trained_on_into_a_copy_of_the_run() {
    let scratch = scratch_dir("recur-calibrate-unseen");
    let dir = scratch.path();
    let lines: Vec<String> = std::fs::read_to_string(beijing_csv()).unwrap().lines().map(String::from).collect();
    let station = dir.join("station.csv");
    std::fs::write(&station, lines[..12001].join("\n") + "\n").unwrap();
    let later = dir.join("later.csv");
    std::fs::write(&later, [&lines[..1], &lines[12001..20001]].concat().join("\n") + "\n").unwrap();
    let files = format!("files = [{:?}]\ndrop = [\"No\", \"wd\", \"station\"]", station.display().to_string());
    let (run, _) = trained_briefly(dir, "run", &files, "kind = \"prediction\"\nwindow = 12\nuncertainty = true");
    let (run, site) = (run.to_str().unwrap(), dir.join("site"));
    let calibrate = ["calibrate", "--run", run, "--data", later.to_str().unwrap()];

    let (ok, _, err) = recur(&calibrate, "");
    assert!(!ok && err.contains("--out DIR2 gets a copy of the run"), "{err}");
    let (ok, out, err) = recur(&[&calibrate[..], &["--out", site.to_str().unwrap()]].concat(), "");
    assert!(ok, "{err}");
    println!("{out}");
    assert!(out.contains("fitted on the first 50 % of each entity of the data given (3616 to 3989 scored"), "{out}");
    assert!(out.contains("the last 50 %:"), "{out}");
    // the checked half's coverage, before and after, in percent
    let row: Vec<&str> = out.lines().find(|l| l.starts_with("|           1 |")).unwrap().split('|').collect();
    let percent = |cell: &str| cell.trim().trim_end_matches(" %").parse::<f64>().unwrap();
    let (before, after) = (percent(row[3]), percent(row[4]));
    assert!((after - 95.45).abs() < 3.0 && (after - 95.45).abs() < (before - 95.45).abs(), "{out}");
    assert!(!Path::new(run).join("calibration.json").exists(), "the run keeps its own bands");
    for file in ["run.toml", "model.safetensors", "scaler.json", "calibration.json"] {
        assert!(site.join(file).exists(), "{file}");
    }
    let feed = lines[12001..12031].join("\n");
    let (ok, _, err) = recur(&["stream", "--run", site.to_str().unwrap()], &format!("{}\n{feed}\n", lines[0]));
    assert!(ok && err.contains("bands calibrated"), "{err}");
    let (ok, _, err) = recur(&[&calibrate[..], &["--out", site.to_str().unwrap(), "--fit", "1.5"]].concat(), "");
    assert!(!ok && err.contains("--fit: ") && err.contains("1.5"), "{err}");
}

/// A trained run on data it was not trained on (`--data`): read with the run's settings
/// and scaler, not refitted, all of it scored. A file of exactly the run's test rows scores
/// and forecasts as the run's own test part; the run's own file, grown since training, is
/// refused instead of being split and scaled anew.
#[test]
fn eval_predict_and_reconstruct_take_data_a_run_was_not_trained_on() {
    let scratch = scratch_dir("recur-unseen-cli");
    let dir = scratch.path();
    let lines: Vec<String> = std::fs::read_to_string(beijing_csv()).unwrap().lines().map(String::from).collect();
    let station = dir.join("station.csv");
    std::fs::write(&station, lines[..12001].join("\n") + "\n").unwrap();
    // the last 20 % of its 12,000 hours: the test part
    let test_rows = dir.join("test_rows.csv");
    std::fs::write(&test_rows, [&lines[..1], &lines[9601..12001]].concat().join("\n") + "\n").unwrap();
    let files = format!("files = [{:?}]\ndrop = [\"No\", \"wd\", \"station\"]", station.display().to_string());
    let (run, _) = trained_briefly(dir, "run", &files, "kind = \"prediction\"\nwindow = 12");
    let run = run.to_str().unwrap();
    let data = ["--data", test_rows.to_str().unwrap()];

    let (ok, own, err) = recur(&["eval", "--run", run], "");
    assert!(ok, "{err}");
    let (ok, unseen, err) = recur(&[&["eval", "--run", run][..], &data].concat(), "");
    assert!(ok, "{err}");
    assert!(err.contains("test_rows.csv (2400 steps of 3600 s, 1 entity; not seen in training"), "{err}");
    assert!(
        err.contains("unlike training (in training standard deviations): ")
            || err.contains("every signal as in training")
    );
    // streamed, the run's own data warms the state through the 9,600 hours before: the same
    // to the printed digits here, but not claimed
    let windowed = |out: &str| -> Vec<String> {
        out.lines().filter(|l| l.starts_with('|') && !l.contains("streamed")).map(String::from).collect()
    };
    assert_eq!(windowed(&own), windowed(&unseen));
    assert_eq!(windowed(&own).len(), 5, "{own}");
    // two files, two entities (two machines, say): each scored on its own too
    let (first, second) = (dir.join("first.csv"), dir.join("second.csv"));
    std::fs::write(&first, [&lines[..1], &lines[9601..10801]].concat().join("\n") + "\n").unwrap();
    std::fs::write(&second, [&lines[..1], &lines[10801..12001]].concat().join("\n") + "\n").unwrap();
    let both = format!("{},{}", first.display(), second.display());
    let (ok, out, err) = recur(&["eval", "--run", run, "--data", &both], "");
    assert!(ok && out.contains("by entity, micro MSE, worst against the best baseline first (all 2 in"), "{out}{err}");
    let per_entity = std::fs::read_to_string(Path::new(run).join("per_entity_first.csv")).unwrap();
    let entities: Vec<&str> = per_entity.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert!(entities == ["first", "second"] || entities == ["second", "first"], "{per_entity}");
    // ahead, the plot goes beside the run's own, not over it
    let (ok, out, err) = recur(&[&["eval", "--run", run, "--horizon", "2"][..], &data].concat(), "");
    assert!(ok && out.contains("wrote") && out.contains("horizon_test_rows.png"), "{out}{err}");
    assert!(std::fs::read(Path::new(run).join("horizon_test_rows.png")).unwrap().starts_with(b"\x89PNG"));
    assert!(!Path::new(run).join("horizon.png").exists());

    let (own_csv, unseen_csv) = (dir.join("own.csv"), dir.join("unseen.csv"));
    let (ok, _, err) = recur(&["predict", "--run", run, "--out", own_csv.to_str().unwrap()], "");
    assert!(ok, "{err}");
    let (ok, _, err) =
        recur(&[&["predict", "--run", run, "--out", unseen_csv.to_str().unwrap()][..], &data].concat(), "");
    assert!(ok, "{err}");
    let forecast = |path: &std::path::Path| -> (String, Vec<f64>) {
        let text = std::fs::read_to_string(path).unwrap();
        let row: Vec<String> = text.lines().nth(1).unwrap().split(',').map(String::from).collect();
        (row[2].clone(), row[3..].iter().map(|v| v.parse().unwrap()).collect())
    };
    let ((own_time, own_values), (unseen_time, unseen_values)) = (forecast(&own_csv), forecast(&unseen_csv));
    assert_eq!((own_time.as_str(), own_values.len()), (unseen_time.as_str(), 11));
    for (a, b) in own_values.iter().zip(&unseen_values) {
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{own_values:?} against {unseen_values:?}");
    }

    // the run's own file, a month longer than when it was trained: refused, with the way out
    std::fs::write(&station, lines[..12721].join("\n") + "\n").unwrap();
    let (ok, _, err) = recur(&["eval", "--run", run], "");
    assert!(!ok && err.contains("not the data the run in") && err.contains("--data FILE"), "{err}");
    let (ok, _, err) = recur(&["predict", "--run", run], "");
    assert!(!ok && err.contains("signal `PM2.5`: mean"), "{err}");

    // a reconstruction run fills the gaps of a file it was not trained on, observed values kept
    std::fs::write(&station, lines[..12001].join("\n") + "\n").unwrap();
    let (rec, _) = trained_briefly(dir, "rec", &files, "kind = \"reconstruction\"\nwindow = 48");
    let filled = dir.join("filled.csv");
    let (ok, out, err) = recur(
        &[&["reconstruct", "--run", rec.to_str().unwrap(), "--out", filled.to_str().unwrap()][..], &data].concat(),
        "",
    );
    assert!(ok, "{err}");
    // the 11 signals' NA cells (wd, column 15, is dropped)
    let missing: usize = lines[9601..12001]
        .iter()
        .map(|l| l.split(',').enumerate().filter(|&(i, c)| c == "NA" && i != 15).count())
        .sum();
    assert!(
        missing > 100 && out.contains(&format!("2400 steps × 11 signals, {missing} missing values filled")),
        "{missing}: {out}"
    );
    let text = std::fs::read_to_string(&filled).unwrap();
    let first: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
    let source: Vec<&str> = lines[9601].split(',').collect();
    assert_eq!((first[2], first[3]), (source[5], "0"), "PM2.5 observed, kept as read: {first:?}");
}

#[test]
fn a_run_reading_the_logarithm_of_a_signal_bands_it_skewed_and_refuses_values_it_cannot_take() {
    let scratch = scratch_dir("recur-stream-log1p");
    let dir = scratch.path();
    let task = "kind = \"prediction\"\nwindow = 12\nsteps_ahead = 2\nuncertainty = true";
    let (run, _) = trained_run(dir, "run", "log1p = [\"PM2.5\", \"CO\"]", task);
    let text = std::fs::read_to_string(beijing_csv()).unwrap().replace('"', "");
    let feed = text.lines().take(41).collect::<Vec<_>>().join("\n") + "\n";
    let (ok, out, err) = recur(&["stream", "--run", run.to_str().unwrap(), "--horizon", "2"], &feed);
    assert!(ok, "{err}");
    let header: Vec<&str> = out.lines().next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for line in out.lines().skip(1) {
        let cells: Vec<f32> = line.split(',').skip(7).map(|v| v.parse().unwrap()).collect();
        let at = |name: &str| cells[column(name) - 7];
        for step in ["t+1", "t+2"] {
            // PM2.5 read as ln(1 + x): above -1, wider above the forecast than below it;
            // TEMP as it is: symmetric
            let (v, low, high) =
                (at(&format!("PM2.5_{step}")), at(&format!("PM2.5_{step}_low")), at(&format!("PM2.5_{step}_high")));
            assert!(-1.0 < low && low < v && v < high && high - v > v - low, "PM2.5 {step}: {low} {v} {high}");
            let (v, low, high) =
                (at(&format!("TEMP_{step}")), at(&format!("TEMP_{step}_low")), at(&format!("TEMP_{step}_high")));
            assert!(((high - v) - (v - low)).abs() < 1e-3 * (high - low), "TEMP {step}: {low} {v} {high}");
        }
    }
    // the export says which signals are read as ln(1 + x)
    let exported = dir.join("exported");
    let (ok, _, err) = recur(&["export", "--run", run.to_str().unwrap(), "--out", exported.to_str().unwrap()], "");
    assert!(ok, "{err}");
    let pre: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exported.join("preprocessing.json")).unwrap()).unwrap();
    let flags: Vec<bool> = pre["log1p"].as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect();
    assert_eq!(flags, [true, false, false, false, true, false, false, false, false, false, false]);
    assert!(pre["input"].as_str().unwrap().contains("y = ln(1 + value) for the signals marked in log1p"));
    // a live value the logarithm cannot take is refused, named
    let mut rows: Vec<String> = text.lines().take(6).map(String::from).collect();
    let pm = rows[0].split(',').position(|h| h == "PM2.5").unwrap();
    let mut fields: Vec<&str> = rows[5].split(',').collect();
    fields[pm] = "-2";
    rows[5] = fields.join(",");
    let (ok, _, err) = recur(&["stream", "--run", run.to_str().unwrap()], &(rows.join("\n") + "\n"));
    assert!(!ok && err.contains("line 6") && err.contains("signal `PM2.5`") && err.contains("above -1"), "{err}");
    // --bad-rows skip: the step the model refuses is told, and answered with every value missing
    let skip = ["stream", "--run", run.to_str().unwrap(), "--bad-rows", "skip"];
    let (ok, skipped, err) = recur(&skip, &(rows.join("\n") + "\n"));
    assert!(ok && err.contains("line 6") && err.contains("above -1 (skipped: --bad-rows skip)"), "{err}");
    let mut gap: Vec<&str> = rows[5].split(',').collect();
    (5..gap.len() - 1).filter(|&i| i != 15).for_each(|i| gap[i] = "NA");
    rows[5] = gap.join(",");
    let (ok, gapped, err) = recur(&["stream", "--run", run.to_str().unwrap()], &(rows.join("\n") + "\n"));
    assert!(ok, "{err}");
    assert_eq!(skipped, gapped);
}

#[test]
fn a_direct_run_answers_every_row_with_its_own_forecasts_and_bands_then_closes_the_loop() {
    let scratch = scratch_dir("recur-stream-direct");
    let dir = scratch.path();
    let task = "kind = \"prediction\"\nwindow = 12\nsteps_ahead = 4\nuncertainty = true";
    let (run, out) = trained_run(dir, "run", "", task);
    assert!(out.contains("at each of the next 4 steps (direct) with a ±2σ band"), "{out}");
    assert!(out.contains("lie inside the model's ±2σ band"), "{out}");

    let text = std::fs::read_to_string(beijing_csv()).unwrap().replace('"', "");
    let feed = text.lines().take(21).collect::<Vec<_>>().join("\n") + "\n";
    let (ok, plain, err) = recur(&["stream", "--run", run.to_str().unwrap()], &feed);
    assert!(ok, "{err}");
    let (ok, four, err) = recur(&["stream", "--run", run.to_str().unwrap(), "--horizon", "4"], &feed);
    assert!(ok, "{err}");
    let (ok, six, err) = recur(&["stream", "--run", run.to_str().unwrap(), "--horizon", "6"], &feed);
    assert!(ok, "{err}");
    let header = |out: &str| out.lines().next().unwrap().to_string();
    assert!(header(&plain).contains(",PM2.5_next,PM2.5_next_low,PM2.5_next_high,PM10_next,"));
    // a band on the 4 direct steps, none on the 2 in closed loop
    assert!(header(&six).contains(",WSPM_t+4,WSPM_t+4_low,WSPM_t+4_high,PM2.5_t+5,PM10_t+5,"));
    assert!(header(&six).ends_with(",WSPM_t+6"));
    let rows =
        |out: &str| out.lines().skip(1).map(|l| l.split(',').map(String::from).collect()).collect::<Vec<Vec<_>>>();
    let (plain, four, six) = (rows(&plain), rows(&four), rows(&six));
    assert_eq!((plain.len(), four.len(), six.len()), (20, 20, 20));
    let banded = 3 * 11;
    for ((p, f), s) in plain.iter().zip(&four).zip(&six) {
        assert_eq!((p.len(), f.len(), s.len()), (7 + banded, 7 + 4 * banded, 7 + 4 * banded + 2 * 11));
        // the next step is the plain forecast; the 4 direct steps do not depend on how far
        // the rollout goes on
        assert_eq!(f[..7 + banded], p[..]);
        assert_eq!(s[..7 + 4 * banded], f[..]);
        let v: Vec<f32> = s[7..].iter().map(|v| v.parse::<f32>().unwrap()).collect();
        assert!(v.iter().all(|x| x.is_finite()));
        for triple in v[..4 * banded].chunks(3) {
            assert!(triple[1] < triple[0] && triple[0] < triple[2], "a band around its forecast: {triple:?}");
        }
    }

    // with sample paths, a band on the closed-loop steps too, around the same forecasts
    let sampled = ["stream", "--run", run.to_str().unwrap(), "--horizon", "6", "--samples", "50"];
    let (ok, paths, err) = recur(&sampled, &feed);
    assert!(ok, "{err}");
    assert!(header(&paths).ends_with(",WSPM_t+6,WSPM_t+6_low,WSPM_t+6_high"), "{}", header(&paths));
    for (s, p) in six.iter().zip(rows(&paths)) {
        assert_eq!((p[..7 + 4 * banded].to_vec(), p.len()), (s[..7 + 4 * banded].to_vec(), 7 + 6 * banded));
        let v: Vec<f32> = p[7 + 4 * banded..].iter().map(|v| v.parse::<f32>().unwrap()).collect();
        for (triple, plain) in v.chunks(3).zip(s[7 + 4 * banded..].iter()) {
            assert_eq!(triple[0], plain.parse::<f32>().unwrap(), "the closed loop's forecast");
            assert!(triple[1] < triple[2], "a band: {triple:?}");
        }
    }
    let (ok, again, _) = recur(&sampled, &feed);
    assert!(ok && again == paths, "the same paths on every run");

    let forecast = dir.join("ahead.csv");
    let (ok, out, err) =
        recur(&["predict", "--run", run.to_str().unwrap(), "--horizon", "6", "--out", forecast.to_str().unwrap()], "");
    assert!(ok, "{err}");
    assert!(out.contains("the next 6 steps (direct for 4 steps from each streamed state, then closed loop"), "{out}");
    let written = std::fs::read_to_string(&forecast).unwrap();
    assert!(written.starts_with("entity,steps_ahead,time,PM2.5,PM2.5_low,PM2.5_high,PM10,"), "{written}");
    let cells = |row: usize| written.lines().nth(row).unwrap().split(',').map(String::from).collect::<Vec<_>>();
    // the station's last hour is 2017-02-28 23:00 (the bundled CSV's last row)
    assert_eq!(cells(1)[..3], ["PRSA_Data_Aotizhongxin_20130301-20170228", "1", "2017-03-01 00:00:00"]);
    assert_eq!(cells(6)[2], "2017-03-01 05:00:00");
    assert!(!cells(4)[4].is_empty() && cells(5)[4].is_empty(), "a band for step 4, none for step 5: {written}");
    // and a chart of one signal's history and forecast, the first by default or the one named
    let chart = dir.join("forecast_ahead.png");
    assert!(std::fs::read(&chart).unwrap().starts_with(b"\x89PNG"));
    assert!(out.contains("PM2.5 of PRSA_Data_Aotizhongxin"), "{out}");
    let predict = ["predict", "--run", run.to_str().unwrap(), "--horizon", "6", "--out", forecast.to_str().unwrap()];
    let (ok, out, err) = recur(&[&predict[..], &["--signal", "WSPM"]].concat(), "");
    assert!(ok && out.contains("WSPM of PRSA_Data_Aotizhongxin"), "{out}{err}");
    let (ok, _, err) = recur(&[&predict[..], &["--signal", "wind"]].concat(), "");
    assert!(!ok && err.contains("no signal `wind`"), "{err}");
    let (ok, out, err) = recur(&["eval", "--run", run.to_str().unwrap(), "--horizon", "4"], "");
    assert!(ok, "{err}");
    assert!(out.contains("1..4 steps ahead, direct: the model's own 4 forecasts"), "{out}");
    assert!(out.contains("model band coverage"), "{out}");
    assert!(out.contains("±2σ coverage of the scored values: ") && out.contains("per signal: PM2.5 "), "{out}");
    assert!(out.contains("interval score"), "{out}");
    // sample paths: a coverage and an interval score past the direct steps too, in eval's
    // table and in predict's CSV
    let (ok, out, err) = recur(&["eval", "--run", run.to_str().unwrap(), "--horizon", "6", "--samples", "20"], "");
    assert!(ok, "{err}");
    let row = |h: usize| out.lines().find(|l| l.starts_with(&format!("| {h:>11} |"))).unwrap().to_string();
    assert!(row(6).ends_with(" |") && !row(6).contains('—') && row(6).contains(" %"), "{}", row(6));
    let (ok, _, err) = recur(&[&predict[..], &["--samples", "50"]].concat(), "");
    assert!(ok, "{err}");
    let written = std::fs::read_to_string(&forecast).unwrap();
    // step 6 (closed loop) has a band now: finite, low below high
    let step6: Vec<&str> = written.lines().nth(6).unwrap().split(',').collect();
    let (low, high) = (step6[4].parse::<f32>().unwrap(), step6[5].parse::<f32>().unwrap());
    assert!(low.is_finite() && high.is_finite() && low < high, "step 6: {low} {high}");
}

#[test]
fn a_causal_reconstruction_run_streams_every_signal_with_gaps_filled() {
    let scratch = scratch_dir("recur-stream-fill");
    let dir = scratch.path();
    let task = |residual: bool| format!("kind = \"reconstruction\"\nwindow = 24\nresidual = {residual}");
    let (run, _) = trained_run(dir, "causal", "", &task(false));
    let (run_residual, trained) = trained_run(dir, "residual", "", &task(true));
    // the hidden values by the hour they were hidden at: 24 groups that add up to the test
    // part's, against linear interpolation
    let (ok, out, err) = recur(&["eval", "--run", run_residual.to_str().unwrap(), "--by", "hour"], "");
    assert!(ok, "{err}");
    assert!(out.contains("the values hidden on purpose, by the local time of their step; test part:"), "{out}");
    assert!(out.contains("| hour | scored | model micro MSE | linear interpolation micro MSE |"), "{out}");
    let scored: Vec<u64> = out
        .lines()
        .skip_while(|l| !l.starts_with("| hour |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('|').nth(2).unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(scored.len(), 24);
    let total: u64 = scored.iter().sum();
    assert!(trained.contains(&format!("test part: {total} values hidden on purpose")), "{total}: {trained}");
    assert!(std::fs::read(run_residual.join("by_hour.png")).unwrap().starts_with(b"\x89PNG"));
    // rows 75-77 of the file miss SO2, CO and NO2 (NA)
    let text = std::fs::read_to_string(beijing_csv()).unwrap().replace('"', "");
    let feed = text.lines().take(80).collect::<Vec<_>>().join("\n") + "\n";
    let (ok, out, err) = recur(&["stream", "--run", run.to_str().unwrap()], &feed);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 80);
    assert!(
        lines[0].starts_with("No,year,month,day,hour,wd,station,PM2.5,PM2.5_filled,PM2.5_low,PM2.5_high,PM10,"),
        "{}",
        lines[0]
    );
    let header: Vec<&str> = lines[0].split(',').collect();
    let so2 = header.iter().position(|h| *h == "SO2").unwrap();
    for (line, filled) in [(lines[1], false), (lines[75], true)] {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 7 + 4 * 11, "{line}");
        assert_eq!(f[so2 + 1], if filled { "1" } else { "0" }, "{line}");
        if filled {
            let [x, low, high] = [f[so2], f[so2 + 2], f[so2 + 3]].map(|v| v.parse::<f32>().unwrap());
            assert!(low < x && x < high, "{line}");
        } else {
            assert_eq!(f[so2], "4");
            assert!(f[so2 + 2].is_empty() && f[so2 + 3].is_empty());
        }
    }
    let (ok, _, err) = recur(&["stream", "--run", run_residual.to_str().unwrap()], &feed);
    assert!(!ok && err.contains("task.residual = false"), "{err}");
    let (ok, _, err) = recur(&["eval", "--run", run.to_str().unwrap(), "--horizon", "3"], "");
    assert!(!ok && err.contains("--horizon needs a prediction run"), "{err}");
    let (ok, _, err) = recur(&["stream", "--run", run.to_str().unwrap(), "--horizon", "3"], &feed);
    assert!(!ok && err.contains("--horizon needs a prediction run"), "{err}");
    // a factor per signal, fitted on the validation part's hidden values, then served
    let (ok, out, err) = recur(&["calibrate", "--run", run.to_str().unwrap()], "");
    assert!(ok && out.contains("| WSPM |") && out.contains("all signals: "), "{out}{err}");
    let (ok, out, err) = recur(&["stream", "--run", run.to_str().unwrap()], &feed);
    assert!(ok && err.contains("1 factor(s) per signal") && out.lines().count() == 80, "{out}{err}");
    // the export carries the factors, one row, and says they scale σ
    let exported = dir.join("exported");
    let (ok, _, err) = recur(&["export", "--run", run.to_str().unwrap(), "--out", exported.to_str().unwrap()], "");
    assert!(ok, "{err}");
    let pre: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exported.join("preprocessing.json")).unwrap()).unwrap();
    let scale = pre["band_scale"].as_array().unwrap();
    assert!(scale.len() == 1 && scale[0].as_array().unwrap().len() == 11, "{scale:?}");
    let after = pre["after"].as_str().unwrap();
    assert!(after.contains("reconstructed value's σ") && !after.contains("steps ahead"), "{after}");
}

#[test]
fn a_quantile_run_streams_its_bands_scores_them_and_samples_past_them() {
    let scratch = scratch_dir("recur-stream-quantile");
    let dir = scratch.path();
    let task = "kind = \"prediction\"\nwindow = 12\nsteps_ahead = 2\nuncertainty = \"quantile\"";
    let (run, out) = trained_run(dir, "run", "", task);
    assert!(out.contains("(direct) with a band from the 2.275 % to the 97.725 % quantile"), "{out}");
    assert!(out.contains("inside the model's band (its 2.275 % to 97.725 % quantiles"), "{out}");
    assert!(std::fs::read_to_string(run.join("run.toml")).unwrap().contains("uncertainty = \"quantile\""));
    let text = std::fs::read_to_string(beijing_csv()).unwrap().replace('"', "");
    let feed = text.lines().take(21).collect::<Vec<_>>().join("\n") + "\n";
    let (ok, out, err) = recur(&["stream", "--run", run.to_str().unwrap(), "--horizon", "2"], &feed);
    assert!(ok, "{err}");
    assert!(out.lines().next().unwrap().ends_with(",WSPM_t+2,WSPM_t+2_low,WSPM_t+2_high"), "{out}");
    for line in out.lines().skip(1) {
        let v: Vec<f32> = line.split(',').skip(7).map(|v| v.parse().unwrap()).collect();
        for triple in v.chunks(3) {
            assert!(triple[1] <= triple[0] && triple[0] <= triple[2], "a band around its forecast: {triple:?}");
        }
    }
    let (ok, out, err) = recur(&["eval", "--run", run.to_str().unwrap(), "--horizon", "2"], "");
    assert!(ok, "{err}");
    assert!(out.contains("2.275-97.725 % quantile band coverage of the scored values: "), "{out}");
    assert!(out.contains("model band coverage | band interval score"), "{out}");
    // past the direct steps, a band from sample paths (split normals at the band's edges)
    let (ok, out, err) = recur(&["stream", "--run", run.to_str().unwrap(), "--horizon", "3", "--samples", "10"], &feed);
    assert!(ok && out.lines().next().unwrap().ends_with(",WSPM_t+3,WSPM_t+3_low,WSPM_t+3_high"), "{out}{err}");
    // fed in two parts through a state file, the paths drawn as when fed at once
    let lines: Vec<&str> = feed.lines().collect();
    let state = dir.join("state.json");
    let sampled = |rows: &[&str]| {
        let part = std::iter::once(lines[0]).chain(rows.iter().copied()).collect::<Vec<_>>().join("\n") + "\n";
        let args = ["stream", "--run", run.to_str().unwrap(), "--horizon", "3", "--samples", "10", "--state"];
        let (ok, out, err) = recur(&[&args[..], &[state.to_str().unwrap()]].concat(), &part);
        assert!(ok, "{err}");
        out.lines().skip(1).map(String::from).collect::<Vec<_>>()
    };
    let parts = [sampled(&lines[1..9]), sampled(&lines[9..])].concat();
    assert_eq!(parts, out.lines().skip(1).map(String::from).collect::<Vec<_>>());
}

#[test]
fn a_calibrated_run_with_a_floor_serves_calibrated_bands_that_never_cross_it() {
    let scratch = scratch_dir("recur-calibrate");
    let dir = scratch.path();
    let task = "kind = \"prediction\"\nwindow = 12\nsteps_ahead = 2\nuncertainty = true";
    let (run, _) = trained_run(dir, "run", "[data.floor]\n\"PM2.5\" = 0\nRAIN = 0\n", task);
    let run_dir = run.to_str().unwrap();
    let (ok, _, err) = recur(&["calibrate", "--run", run_dir, "--horizon", "3"], "");
    assert!(!ok && err.contains("past the model's 2 direct steps a band needs sample paths"), "{err}");
    let (ok, out, err) = recur(&["calibrate", "--run", run_dir], "");
    assert!(ok, "{err}");
    assert!(
        out.contains("split-conformal factors fitted on the validation part") && out.contains("calibration.json"),
        "{out}"
    );
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("|           ")).collect();
    assert_eq!(rows.len(), 2, "{out}");
    let (ok, out, err) = recur(&["predict", "--run", run_dir, "--horizon", "2"], "");
    assert!(
        ok && err.contains("bands calibrated on the validation part") && err.contains("2 factor(s) per signal"),
        "{err}"
    );
    // PM2.5 and RAIN, each (value, low, high) after the entity, steps ahead and time: at or
    // above 0; the band around its forecast
    for line in out.lines().filter(|l| l.contains(",1,") || l.contains(",2,")).take(2) {
        let v: Vec<f32> = line.split(',').skip(3).map(|v| v.parse().unwrap()).collect();
        for triple in [&v[0..3], &v[27..30]] {
            assert!(0.0 <= triple[1] && triple[1] <= triple[0] && triple[0] <= triple[2], "{triple:?} in {line}");
        }
    }
    let (ok, out, err) = recur(&["eval", "--run", run_dir, "--horizon", "2"], "");
    assert!(ok && err.contains("bands calibrated") && out.contains("model band coverage"), "{out}{err}");
    // the windowed scores' band both as the model gives it and calibrated, once each
    let widths: Vec<&str> =
        out.lines().filter_map(|l| l.split("the band's mean width ").nth(1)?.split(',').next()).collect();
    assert!(widths.len() == 2 && widths[0] != widths[1], "{out}");
    assert!(out.contains("\ncalibrated (recur calibrate): ±2σ coverage of the scored values: "), "{out}");
    assert_eq!(err.matches("bands calibrated").count(), 1, "{err}");
    // past the direct steps too (sample paths): every forecast and band edge of PM2.5 and RAIN
    // (signals 0 and 9) at or above 0, at every step ahead
    let text = std::fs::read_to_string(beijing_csv()).unwrap().replace('"', "");
    let feed = text.lines().take(21).collect::<Vec<_>>().join("\n") + "\n";
    let (ok, out, err) = recur(&["stream", "--run", run_dir, "--horizon", "4", "--samples", "20"], &feed);
    assert!(ok && out.lines().count() == 21, "{out}{err}");
    for line in out.lines().skip(1) {
        let v: Vec<f32> = line.split(',').skip(7).map(|v| v.parse().unwrap()).collect();
        assert_eq!(v.len(), 4 * 11 * 3, "{line}");
        for ahead in v.chunks(11 * 3) {
            for triple in [&ahead[0..3], &ahead[27..30]] {
                assert!(0.0 <= triple[1] && 0.0 <= triple[0] && triple[1] <= triple[2], "{triple:?} in {line}");
            }
        }
    }
    // the export carries the floors and the factors, for a user's own serving code
    let exported = dir.join("exported");
    let (ok, _, err) = recur(&["export", "--run", run_dir, "--out", exported.to_str().unwrap()], "");
    assert!(ok, "{err}");
    let pre: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exported.join("preprocessing.json")).unwrap()).unwrap();
    let floor = pre["floor"].as_array().unwrap();
    assert_eq!(floor.len(), 11);
    for (j, f) in floor.iter().enumerate() {
        assert_eq!(f.as_f64(), [0, 9].contains(&j).then_some(0.0), "signal {j}: {f}");
    }
    let scale = pre["band_scale"].as_array().unwrap();
    assert_eq!(scale.len(), 2, "one row of factors per direct step");
    for row in scale {
        let row = row.as_array().unwrap();
        assert!(row.len() == 11 && row.iter().all(|k| k.as_f64().unwrap() >= 0.0), "{row:?}");
    }
    // a calibration for other signals is refused, naming the file
    let file = run.join("calibration.json");
    let other = std::fs::read_to_string(&file).unwrap().replace("\"PM2.5\"", "\"PM25\"");
    std::fs::write(&file, other).unwrap();
    let (ok, _, err) = recur(&["predict", "--run", run_dir], "");
    assert!(!ok && err.contains("calibration.json") && err.contains("the run has"), "{err}");
}

/// A run whose config names a mark of "no value" (`data.missing_values`) streams a row
/// holding it exactly as the row with the cell empty (`NA`); without the mark, the same
/// row is an error naming the line and column and pointing at the key.
#[test]
fn a_runs_missing_value_marks_are_gaps_when_streamed() {
    let scratch = scratch_dir("recur-stream-marks");
    let dir = scratch.path();
    let (marked, _) = trained_run(dir, "marked", "missing_values = [\"Bad\"]", "kind = \"prediction\"\nwindow = 12");
    let text = std::fs::read_to_string(beijing_csv()).unwrap().replace('"', "");
    let rows: Vec<&str> = text.lines().take(6).collect();
    // the PM10 cell of the last row (the 7th column: No,year,month,day,hour,PM2.5,PM10)
    let with = |cell: &str| {
        let mut last: Vec<String> = rows[5].split(',').map(String::from).collect();
        last[6] = cell.to_string();
        format!("{}\n{}\n", rows[..5].join("\n"), last.join(","))
    };
    let (ok, gap, err) = recur(&["stream", "--run", marked.to_str().unwrap()], &with("NA"));
    assert!(ok, "{err}");
    let (ok, bad, err) = recur(&["stream", "--run", marked.to_str().unwrap()], &with("Bad"));
    assert!(ok, "{err}");
    assert_eq!(bad, gap, "`Bad` streams as a gap");
    let (ok, other, _) = recur(&["stream", "--run", marked.to_str().unwrap()], &with("999"));
    assert!(ok && other != gap, "a value is not a gap");
    // the same rows as a European export (`;` between fields, decimal commas) answer alike
    let feed = with("NA");
    let (header, rows) = feed.split_once('\n').unwrap();
    let european = format!("{}\n{}", header.replace(',', ";"), rows.replace(',', ";").replace('.', ","));
    let (ok, answer, err) = recur(&["stream", "--run", marked.to_str().unwrap()], &european);
    assert!(ok, "{err}");
    assert_eq!(answer, gap, "`;`-separated rows with decimal commas");

    let (plain, _) = trained_run(dir, "plain", "", "kind = \"prediction\"\nwindow = 12");
    let (ok, _, err) = recur(&["stream", "--run", plain.to_str().unwrap()], &with("Bad"));
    assert!(
        !ok && err.contains("line 6, column `PM10`: `Bad` is not a number") && err.contains("data.missing_values"),
        "{err}"
    );
}

/// `recur diagnose gradients --run`: a table of the forecast's gradients by steps back, a
/// summary line and a plot in the run folder; a run it cannot measure is refused by name.
/// Without `--run`: fresh cells against the lecture's bound, and the adding problem's.
#[test]
fn diagnose_gradients_says_how_far_back_a_trained_run_reads() {
    let scratch = scratch_dir("recur-diagnose");
    let dir = scratch.path();
    let (run, _) = trained_run(dir, "run", "", "kind = \"prediction\"\nwindow = 12");
    let run_arg = run.to_str().unwrap();
    let (ok, out, err) = recur(&["diagnose", "gradients", "--run", run_arg, "--steps", "30", "--windows", "16"], "");
    assert!(ok, "{err}");
    assert!(out.contains("trained on windows of 11 input steps"), "{out}");
    assert!(out.contains("over 16 stretches of 30 steps of the test part"), "{out}");
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("| ")).collect();
    // the four signals whose inputs the forecast reads most, after the state and all inputs
    assert!(rows[0].starts_with("| steps back | state ‖∂ŷ/∂h‖ | all inputs ‖∂ŷ/∂x‖ | "), "{out}");
    assert_eq!(rows[0].matches(" | ").count(), 6, "{out}");
    let steps_back: Vec<&str> =
        rows[1..].iter().map(|r| r.split(" | ").next().unwrap().trim_start_matches("| ")).collect();
    assert_eq!(steps_back, ["0", "1", "2", "3", "6", "11", "12", "24", "29"], "{out}");
    assert!(out.contains("stays below 1 % of its largest from"), "{out}");
    assert!(std::fs::read(run.join("look_back.png")).unwrap().starts_with(b"\x89PNG"));

    let (ok, _, err) = recur(&["diagnose", "gradients", "--run", run_arg, "--steps", "100000"], "");
    assert!(!ok);
    assert!(err.contains("100000 steps, but the test part has only"), "{err}");
    // on data the run was not trained on: the station's first 200 hours
    let first = dir.join("first_hours.csv");
    let text = std::fs::read_to_string(beijing_csv()).unwrap();
    std::fs::write(&first, text.lines().take(201).collect::<Vec<_>>().join("\n") + "\n").unwrap();
    let data = ["--data", first.to_str().unwrap(), "--windows", "4"];
    let (ok, out, err) =
        recur(&[&["diagnose", "gradients", "--run", run_arg, "--steps", "30"][..], &data].concat(), "");
    assert!(ok && out.contains("over 4 stretches of 30 steps of the data given"), "{out}{err}");
    let (ok, _, err) = recur(&[&["diagnose", "gradients", "--run", run_arg, "--steps", "300"][..], &data].concat(), "");
    assert!(!ok && err.contains("300 steps, but the data part has only 200"), "{err}");
    // a reconstruction run: causal (no interpolation input), how far back its reconstruction
    // of the last step reads; with the interpolation input it reads the next observation
    let (recon, _) = trained_run(dir, "recon", "", "kind = \"reconstruction\"\nresidual = false");
    let recon = recon.to_str().unwrap();
    let (ok, out, err) = recur(&["diagnose", "gradients", "--run", recon, "--steps", "30", "--windows", "4"], "");
    assert!(ok && out.contains("its reconstruction's gradients over 4 stretches of 30 steps"), "{out}{err}");
    assert!(out.contains("the reconstruction's input gradient"), "{out}");
    let (residual, _) = trained_run(dir, "residual", "", "kind = \"reconstruction\"");
    let (ok, _, err) = recur(&["diagnose", "gradients", "--run", residual.to_str().unwrap()], "");
    assert!(!ok && err.contains("the interpolation input reads the next observation"), "{err}");

    let plots = dir.join("classic");
    let (ok, out, err) = recur(&["diagnose", "gradients", "--steps", "20", "--out", plots.to_str().unwrap()], "");
    assert!(ok, "{err}");
    assert!(out.contains("trained on the adding problem"), "{out}");
    for plot in ["gradient_norms.png", "adding_look_back.png"] {
        assert!(std::fs::read(plots.join(plot)).unwrap().starts_with(b"\x89PNG"), "{plot}");
    }
}

/// A run forecasting two of the station's signals (`task.targets = ["PM2.5", "O3"]`, 3 hours
/// ahead directly, with a band) reads all eleven: `recur train` says so; `recur stream`
/// answers with those two alone, as the library's stream does, and refuses to reach past
/// its direct steps (a closed loop would need the other nine), naming the setting; `eval`,
/// `predict`, `calibrate` and `export` are about the two; an unknown target is refused.
#[test]
fn a_run_forecasting_some_signals_reads_every_one_and_answers_with_those_alone() {
    let scratch = scratch_dir("recur-stream-targets");
    let dir = scratch.path();
    let task = "kind = \"prediction\"\nwindow = 12\nsteps_ahead = 3\nuncertainty = true\ntargets = [\"O3\", \"PM2.5\"]";
    let (run, trained) = trained_run(dir, "run", "", task);
    assert!(trained.contains("predict PM2.5, O3 (task.targets) from all 11 signals"), "{trained}");
    let run_arg = run.to_str().unwrap();

    let text = std::fs::read_to_string(beijing_csv()).unwrap().replace('"', "");
    let rows: Vec<&str> = text.lines().take(31).collect();
    let feed = rows.join("\n") + "\n";
    let (ok, out, err) = recur(&["stream", "--run", run_arg], &feed);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "No,year,month,day,hour,wd,station,PM2.5_next,PM2.5_next_low,PM2.5_next_high,O3_next,O3_next_low,O3_next_high"
    );
    // the library's stream over the run's data gives the same forecasts
    let config = recur::run::RunConfig::load(run.join("run.toml")).unwrap();
    let data = recur::run::load_run_data(&run, &config).unwrap();
    let model = recur::model::SequenceModel::<f32>::load(run.join("model.safetensors")).unwrap();
    let task = recur::tasks::PredictionTask::from_config(&data, &config.prediction()).unwrap();
    assert_eq!(task.targets().names(), ["PM2.5", "O3"]);
    let mut live = task.stream(&model).unwrap();
    for (n, line) in lines[1..].iter().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let ours = live.step(&data.original_step(n)).unwrap();
        assert_eq!([cells[7], cells[10]], [ours[0].to_string(), ours[1].to_string()], "hour {n}");
    }
    let (ok, ahead, err) = recur(&["stream", "--run", run_arg, "--horizon", "3"], &feed);
    assert!(ok, "{err}");
    assert!(ahead.lines().next().unwrap().ends_with(",O3_t+3,O3_t+3_low,O3_t+3_high"), "{ahead}");
    let (ok, _, err) = recur(&["stream", "--run", run_arg, "--horizon", "4"], &feed);
    assert!(
        !ok && err.contains("forecasts 2 of the 11 signals it reads (task.targets)")
            && err.contains("task.steps_ahead = 4"),
        "{err}"
    );

    let (ok, out, err) = recur(&["eval", "--run", run_arg, "--horizon", "3"], "");
    assert!(ok, "{err}");
    assert!(out.contains("per signal: PM2.5 ") && out.contains(", O3 ") && !out.contains("TEMP"), "{out}");
    assert!(out.contains("| signal | 1 ahead | 3 ahead |\n|---|---:|---:|\n| PM2.5 | "), "{out}");
    assert!(out.contains("\n| O3 | "), "{out}");
    let (ok, _, err) = recur(&["eval", "--run", run_arg, "--horizon", "5"], "");
    assert!(!ok && err.contains("task.steps_ahead = 5"), "{err}");
    let forecast = dir.join("ahead.csv");
    let (ok, _, err) = recur(
        &["predict", "--run", run_arg, "--horizon", "3", "--signal", "O3", "--out", forecast.to_str().unwrap()],
        "",
    );
    assert!(ok, "{err}");
    let written = std::fs::read_to_string(&forecast).unwrap();
    assert!(written.starts_with("entity,steps_ahead,time,PM2.5,PM2.5_low,PM2.5_high,O3,O3_low,O3_high\n"), "{written}");
    let (ok, _, err) = recur(&["predict", "--run", run_arg, "--horizon", "3", "--signal", "TEMP"], "");
    assert!(!ok && err.contains("no signal `TEMP` among those the run forecasts: PM2.5, O3"), "{err}");

    // calibrated: two factors per step ahead, which stream and export then read
    let (ok, out, err) = recur(&["calibrate", "--run", run_arg], "");
    assert!(ok, "{err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("|           ")).count(), 3, "{out}");
    let (ok, calibrated, err) = recur(&["stream", "--run", run_arg], &feed);
    assert!(ok && err.contains("bands calibrated"), "{err}");
    assert_eq!(calibrated.lines().count(), lines.len());
    let export = dir.join("export");
    let (ok, _, err) = recur(&["export", "--run", run_arg, "--out", export.to_str().unwrap()], "");
    assert!(ok, "{err}");
    let preprocessing: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(export.join("preprocessing.json")).unwrap()).unwrap();
    assert_eq!(preprocessing["targets"], serde_json::json!(["PM2.5", "O3"]));
    assert_eq!(preprocessing["band_scale"].as_array().unwrap().len(), 3);
    assert_eq!(preprocessing["band_scale"][0].as_array().unwrap().len(), 2);

    // which inputs the two forecasts read: the look-back of the run's own outputs
    let (ok, out, err) = recur(&["diagnose", "gradients", "--run", run_arg], "");
    assert!(ok, "{err}");
    assert!(out.contains("| steps back | state ‖∂ŷ/∂h‖ | all inputs ‖∂ŷ/∂x‖ |"), "{out}");

    let config = dir.join("bad.toml");
    let bad = std::fs::read_to_string(dir.join("run.toml")).unwrap().replace("\"O3\"", "\"O_3\"");
    std::fs::write(&config, bad).unwrap();
    let (ok, _, err) =
        recur(&["train", "--config", config.to_str().unwrap(), "--out", dir.join("bad").to_str().unwrap()], "");
    assert!(!ok && err.contains("task.targets: no signal `O_3` in the data; its signals are PM2.5, PM10,"), "{err}");
}

/// `recur detect`: a briefly trained run with a band scores every observed test value
/// against the forecast made the step before; the values above the threshold in a CSV (as
/// many as its table counts, each outside its band) and a chart; with spikes injected, each
/// detector's ranking of them; on data the run was not trained on too, where `recur stream
/// --flag` scores each value live as detect scored it. A run without a band is banded by
/// its validation errors, which data it has not seen (and a stream) lacks; a reconstruction
/// run and bad options are refused by name.
#[test]
fn detect_scores_each_value_against_the_forecast_made_before_it() {
    let scratch = scratch_dir("recur-detect");
    let dir = scratch.path();
    let (run, _) = trained_run(dir, "band", "", "kind = \"prediction\"\nwindow = 12\nuncertainty = true");
    let run = run.to_str().unwrap();
    let (ok, out, err) = recur(&["detect", "--run", run, "--threshold", "3"], "");
    assert!(ok, "{err}");
    println!("{out}");
    let rows: Vec<Vec<String>> = out
        .lines()
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("| ") && !l.starts_with("| signal"))
        .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
        .collect();
    assert_eq!(rows.len(), 11, "{out}");
    let count = |cell: &str| cell.split(' ').next().unwrap().parse::<usize>().unwrap();
    let flagged: usize = rows.iter().map(|r| count(&r[3])).sum();
    let csv = std::fs::read_to_string(Path::new(run).join("anomalies.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("entity,time,signal,value,expected,low,high,surprise,persistence,level,flatline"));
    // a row for each value the model or the flatline rule flags; the model's outside the band
    let flags: Vec<Vec<f64>> = lines.map(|l| l.split(',').skip(3).map(|c| c.parse().unwrap()).collect()).collect();
    assert_eq!(flags.iter().filter(|v| v[4] > 3.0).count(), flagged);
    assert!(flagged > 0, "{out}");
    for v in &flags {
        assert!(v[4] > 3.0 && (v[0] < v[2] || v[0] > v[3]) || v[7] > 3.0, "{v:?}");
    }
    assert!(Path::new(run).join("anomalies.png").exists());
    // the flags as episodes: every flag in one of its signal's, the counts as printed
    let episodes = std::fs::read_to_string(Path::new(run).join("episodes.csv")).unwrap();
    let mut lines = episodes.lines();
    assert_eq!(lines.next(), Some("entity,signal,start,end,steps,flagged,model,flatline,peak_time,peak"));
    let episodes: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let sum = |column: usize| episodes.iter().map(|e| e[column].parse::<usize>().unwrap()).sum::<usize>();
    assert_eq!(sum(5), flags.len());
    assert_eq!(sum(6), flagged);
    assert!(episodes.len() < flags.len(), "{} episodes of {} flags", episodes.len(), flags.len());
    assert!(out.contains(&format!("\n{} values flagged in {} episodes", flags.len(), episodes.len())), "{out}");
    for flag in csv.lines().skip(1).map(|l| l.split(',').collect::<Vec<_>>()) {
        let within = |e: &&Vec<&str>| e[1] == flag[2] && e[2] <= flag[1] && flag[1] <= e[3];
        assert_eq!(episodes.iter().filter(within).count(), 1, "{flag:?}");
    }
    assert!(std::fs::read(Path::new(run).join("episodes.png")).unwrap().starts_with(b"\x89PNG"));
    let (ok, out, err) = recur(&["detect", "--run", run, "--threshold", "3", "--join", "1"], "");
    let consecutive = out.lines().find(|l| l.contains(" episodes (")).unwrap_or_default().to_string();
    assert!(ok && consecutive.starts_with(&format!("{} values flagged in ", flags.len())), "{out}{err}");
    let (ok, _, err) = recur(&["detect", "--run", run, "--join", "0"], "");
    assert!(!ok && err.contains("--join 0"), "{err}");
    // alarm thresholds fitted on the validation part: one row per signal, then the table
    let (ok, out, err) =
        recur(&["detect", "--run", run, "--alarm-rate", "0.01", "--out", dir.join("rate.csv").to_str().unwrap()], "");
    assert!(
        ok && out.contains("alarm thresholds: each detector's score above which 1 % of the validation part"),
        "{err}"
    );
    let thresholds: Vec<&str> = out.lines().skip(3).take_while(|l| l.starts_with("| ")).collect();
    assert_eq!(thresholds.len(), 11, "{out}");
    let chart = dir.join("no2.csv");
    let (ok, _, err) = recur(&["detect", "--run", run, "--signal", "NO2", "--out", chart.to_str().unwrap()], "");
    assert!(ok && dir.join("no2.png").exists(), "{err}");
    let (ok, _, err) = recur(&["detect", "--run", run, "--signal", "wd"], "");
    assert!(!ok && err.contains("--signal wd: not one of the signals the run scores (PM2.5, PM10"), "{err}");

    let (ok, out, err) = recur(&["detect", "--run", run, "--inject", "3", "--rate", "0.02", "--seed", "4"], "");
    assert!(ok, "{err}");
    println!("{out}");
    assert!(out.contains("spikes of ±3 training SDs (seed 4) in 2 % of the"), "{out}");
    for detector in ["| model (its band) |", "| persistence (", "| level (", "| flatline ("] {
        assert!(out.contains(detector), "{out}");
    }
    assert!(out.contains("| PM2.5 |") && out.contains("| WSPM |"), "{out}");
    // lasting faults: each found or not, and when
    for (fault, said) in
        [("drift", "drifts (an offset growing to ±3 training SDs over 12 steps"), ("stuck", "stuck sensors")]
    {
        let (ok, out, err) =
            recur(&["detect", "--run", run, "--inject", "3", "--fault", fault, "--length", "12", "--rate", "0.05"], "");
        assert!(ok && out.contains(said), "{out}{err}");
        let events: Vec<&str> = out
            .lines()
            .skip_while(|l| !l.starts_with("| detector | faults found (> 4) |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        assert_eq!(events.len(), 4, "{out}");
        assert!(events.iter().all(|l| l.contains(" of ") && l.contains(" %")), "{out}");
    }
    for (args, said) in
        [(["--fault", "melt"], "--fault melt: one of spike, stuck, drift"), (["--length", "1"], "--length 1")]
    {
        let (ok, _, err) = recur(&[&["detect", "--run", run, "--inject", "3"][..], &args].concat(), "");
        assert!(!ok && err.contains(said), "{err}");
    }

    // the station's last 2,000 hours as a file of its own
    let lines: Vec<String> = std::fs::read_to_string(beijing_csv()).unwrap().lines().map(String::from).collect();
    let later = dir.join("later.csv");
    std::fs::write(&later, [&lines[..1], &lines[lines.len() - 2000..]].concat().join("\n") + "\n").unwrap();
    // the scales `--alarm-rate` kept serve detect on data the run has not seen, and the stream
    let later = later.to_str().unwrap();
    let (ok, out, err) = recur(&["detect", "--run", run, "--data", later, "--threshold", "3"], "");
    assert!(ok && out.contains("alarms.json (each signal's alarm rate 1 % above 4"), "{out}{err}");
    let (streamed, err) = stream_flags_as_detect(run, later);
    assert!(err.contains("surprises scaled by") && err.contains("alarms.json"), "{err}");
    assert!(err.contains("values ending a run of equal readings scored above 3 by the flatline rule"), "{err}");
    assert!(streamed > 0);
    let (ok, out, err) =
        recur(&["detect", "--run", run, "--data", later, "--threshold", "3", "--alarm-rate", "none"], "");
    assert!(ok && !out.contains("alarms.json"), "{out}{err}");
    let (ok, _, err) = recur(&["detect", "--run", run, "--alarm-rate", "often"], "");
    assert!(!ok && err.contains("--alarm-rate often: a fraction"), "{err}");
    let (plain, _) = trained_run(dir, "plain", "", "kind = \"prediction\"\nwindow = 12");
    let plain = plain.to_str().unwrap();
    let (ok, out, err) = recur(&["detect", "--run", plain], "");
    assert!(ok && out.contains("| PM2.5 |"), "{err}");
    let (ok, _, err) = recur(&["detect", "--run", plain, "--data", later], "");
    assert!(!ok && err.contains("task.uncertainty"), "{err}");
    let (ok, _, err) = recur(&["stream", "--run", plain, "--flag", "4"], "");
    assert!(!ok && err.contains("task.uncertainty") && err.contains("--alarm-rate RATE` keeps them"), "{err}");
    let (ok, _, err) = recur(&["detect", "--run", run, "--data", later, "--alarm-rate", "0.01"], "");
    assert!(!ok && err.contains("--alarm-rate") && err.contains("validation part"), "{err}");
    // a model without a band: its validation errors kept beside the scales band it anywhere
    let (ok, _, err) = recur(&["detect", "--run", plain, "--alarm-rate", "0.01"], "");
    assert!(ok, "{err}");
    let (ok, _, err) = recur(&["detect", "--run", plain, "--data", later, "--threshold", "3"], "");
    assert!(ok, "{err}");
    assert!(stream_flags_as_detect(plain, later).0 > 0);
    let (ok, _, err) = recur(&["detect", "--run", run, "--threshold", "0"], "");
    assert!(!ok && err.contains("--threshold"), "{err}");
    let (ok, _, err) = recur(&["detect", "--run", run, "--inject", "3", "--rate", "1.5"], "");
    assert!(!ok && err.contains("--inject") && err.contains("1.5"), "{err}");
    // a calibration since: the scales no longer fit the band, and say so
    let (ok, _, err) = recur(&["calibrate", "--run", run], "");
    assert!(ok, "{err}");
    for args in [&["stream", "--run", run, "--flag", "3"][..], &["detect", "--run", run]] {
        let (ok, _, err) = recur(args, "");
        assert!(
            !ok && err.contains("alarms.json: fitted on the band before it was calibrated; `recur detect --run")
                && err.contains("--alarm-rate RATE` fits them anew"),
            "{args:?}: {err}"
        );
    }
    // a causal reconstruction: each value against its reconstruction with it hidden,
    // offline and live alike; a value withheld comes out filled
    let (filled, _) = trained_run(dir, "filled", "", "kind = \"reconstruction\"\nwindow = 12\nresidual = false");
    let filled = filled.to_str().unwrap();
    let (ok, out, err) = recur(&["detect", "--run", filled, "--data", later, "--threshold", "3"], "");
    assert!(ok && out.contains("each against the reconstruction with it hidden"), "{err}");
    let detected = std::fs::read_to_string(Path::new(filled).join("anomalies_later.csv")).unwrap();
    let (ok, streamed, err) = recur(&["stream", "--run", filled, "--flag", "3", "--input", later], "");
    assert!(ok, "{err}");
    let mut rows = streamed.lines().map(|l| l.split(',').collect::<Vec<_>>());
    let header = rows.next().unwrap();
    let rows: Vec<Vec<&str>> = rows.collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    assert!(detected.lines().count() > 1);
    let mut withheld = 0;
    for line in detected.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let row = rows.iter().find(|r| hour_of(&header, r) == cells[1]).unwrap();
        let live = row[column(&format!("{}_surprise", cells[2]))].parse::<f32>().unwrap();
        let offline = cells[7].parse::<f32>().unwrap();
        assert!((live - offline).abs() < 1e-4 * offline, "{line}: {live}");
        // a value withheld comes out filled: its reconstruction, not the value read
        if row[column(&format!("{}_filled", cells[2]))] == "1" {
            assert_ne!(row[column(cells[2])].parse::<f32>().unwrap(), cells[3].parse::<f32>().unwrap(), "{line}");
            withheld += 1;
        }
    }
    assert!(withheld > 0 && err.contains("withheld from the model"), "{err}");
}

/// The hour of a row of the bundled station's columns, as `recur detect` writes it.
fn hour_of(header: &[&str], row: &[&str]) -> String {
    let at = |c: &str| row[header.iter().position(|h| *h == c).unwrap()].parse::<u32>().unwrap();
    format!("{}-{:02}-{:02} {:02}:00:00", at("year"), at("month"), at("day"), at("hour"))
}

/// `recur stream --run RUN --flag 3` on the station's rows in file `later` gives each value
/// `recur detect --run RUN --data later --threshold 3` flagged last (`anomalies_later.csv`)
/// its surprise (and flatline score, where the stream runs the rule) to 1e-4, flags by
/// the model exactly those detect's model flagged (the run's window is 12 hours: detect
/// scores from the 12th on), and makes detect's episodes of them (`episodes_later.csv`),
/// counting them on stderr as its columns make them: how many flags, and what the stream
/// said on stderr.
fn stream_flags_as_detect(run: &str, later: &str) -> (usize, String) {
    let detected = std::fs::read_to_string(Path::new(run).join("anomalies_later.csv")).unwrap();
    let (ok, streamed, err) = recur(&["stream", "--run", run, "--flag", "3", "--input", later], "");
    assert!(ok && err.contains("withheld from the model"), "{err}");
    let mut rows = streamed.lines().map(|l| l.split(',').collect::<Vec<_>>());
    let header = rows.next().unwrap();
    let rows: Vec<Vec<&str>> = rows.collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let streamed_flags: usize = rows[11..]
        .iter()
        .flat_map(|r| header.iter().zip(r.iter()).filter(|(h, _)| h.ends_with("_surprise")))
        .filter(|(_, cell)| cell.parse::<f32>().is_ok_and(|s| s > 3.0))
        .count();
    let model_flags = detected.lines().skip(1).filter(|l| l.split(',').nth(7).unwrap().parse::<f32>().unwrap() > 3.0);
    assert_eq!(streamed_flags, model_flags.count());
    // with the runs of equal readings kept, the flatline rule's scores beside them
    let flatline = header.iter().any(|h| h.ends_with("_flatline"));
    for line in detected.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let row = rows.iter().find(|r| hour_of(&header, r) == cells[1]).unwrap();
        let mut pairs = vec![(row[column(&format!("{}_surprise", cells[2]))], cells[7])];
        if flatline {
            pairs.push((row[column(&format!("{}_flatline", cells[2]))], cells[10]));
        }
        for (live, offline) in pairs {
            let (live, offline) = (live.parse::<f32>().unwrap(), offline.parse::<f32>().unwrap());
            assert!((live - offline).abs() < 1e-4 * offline, "{line}: {live}");
        }
    }
    // episodes: a signal's flags (either score above 3) at most 3 rows apart
    let episodes_from = |first: usize| -> usize {
        let mut episodes = 0;
        for (j, name) in header.iter().enumerate().filter(|(_, h)| h.ends_with("_surprise")) {
            let flatline = header.iter().position(|h| *h == name.replace("_surprise", "_flatline"));
            let above = |cell: &str| cell.parse::<f32>().is_ok_and(|s| s > 3.0);
            let mut last: Option<usize> = None;
            for (k, row) in rows.iter().enumerate().skip(first) {
                if above(row[j]) || flatline.is_some_and(|f| above(row[f])) {
                    episodes += usize::from(last.is_none_or(|l| k - l > 3));
                    last = Some(k);
                }
            }
        }
        episodes
    };
    let offline = std::fs::read_to_string(Path::new(run).join("episodes_later.csv")).unwrap().lines().count() - 1;
    assert_eq!(episodes_from(11), offline);
    assert!(err.contains(&format!("\n{} episodes (a signal's flags at most 3 steps apart", episodes_from(0))), "{err}");
    // each as it begins, in the row of its first flag: `new_alarms` names its signal
    let new_alarms = column("new_alarms");
    let mut begun = 0;
    for row in &rows {
        for name in row[new_alarms].split(';').filter(|n| !n.is_empty()) {
            let flagged = |suffix: &str| {
                header
                    .iter()
                    .position(|h| *h == format!("{name}{suffix}"))
                    .is_some_and(|j| row[j].parse::<f32>().is_ok_and(|s| s > 3.0))
            };
            assert!(flagged("_surprise") || flagged("_flatline"), "{name}: {row:?}");
            begun += 1;
        }
    }
    assert_eq!(begun, episodes_from(0));
    (streamed_flags, err)
}

/// The `|`s that separate the cells of each Markdown table line of `out` (an escaped `\|`
/// is part of a cell): every line of a table has its header's.
fn assert_markdown_tables_whole(out: &str) {
    let bars = |line: &str| line.split("\\|").map(|part| part.matches('|').count()).sum::<usize>();
    let mut header: Option<usize> = None;
    for line in out.lines() {
        match (line.starts_with('|'), header) {
            (false, _) => header = None,
            (true, None) => header = Some(bars(line)),
            (true, Some(n)) => assert_eq!(bars(line), n, "a cell split in two:\n{line}\n{out}"),
        }
    }
}

/// Every row of the CSV file `path` has its header's fields, read as recur reads a CSV;
/// the header.
fn csv_header_of_a_whole_file(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines().map(recur::data::csv_fields);
    let header = lines.next().unwrap();
    for (i, row) in lines.enumerate() {
        assert_eq!(row.len(), header.len(), "{} line {}: {row:?}", path.display(), i + 2);
    }
    header
}

/// Historians name tags like `pi:160220|average` and spreadsheets columns like `TEMP, °C`:
/// every table recur prints keeps such a name in one cell (`\|`), and every CSV it writes
/// quotes it. The bundled station's first 8,000 hours (real data) with two columns renamed,
/// in two files whose names hold both.
#[test]
fn names_holding_a_bar_or_a_comma_keep_every_table_and_csv_whole() {
    let scratch = scratch_dir("recur-odd-names");
    let dir = scratch.path();
    let lines: Vec<String> = std::fs::read_to_string(beijing_csv()).unwrap().lines().map(String::from).collect();
    let header = lines[0].replace("\"PM2.5\"", "\"pi:1|PM2.5\"").replace("\"TEMP\"", "\"TEMP, °C\"");
    let files: Vec<PathBuf> = ["plant|7, a.csv", "plant|7, b.csv"].iter().map(|n| dir.join(n)).collect();
    for (file, rows) in files.iter().zip([&lines[1..4001], &lines[4001..8001]]) {
        std::fs::write(file, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    }
    let data = format!(
        "files = [{:?}, {:?}]\ndrop = [\"No\", \"wd\", \"station\"]",
        files[0].display().to_string(),
        files[1].display().to_string()
    );
    let (run, trained) = trained_briefly(dir, "band", &data, "kind = \"prediction\"\nwindow = 12\nuncertainty = true");
    let run = run.to_str().unwrap();
    let mut printed = vec![trained];
    for args in [
        &["eval", "--run", run, "--horizon", "3"][..],
        &["eval", "--run", run, "--by", "hour"],
        &["detect", "--run", run, "--inject", "3"],
        &["detect", "--run", run, "--alarm-rate", "0.01", "--out", dir.join("rate.csv").to_str().unwrap()],
        &["calibrate", "--run", run, "--out", dir.join("calibrated").to_str().unwrap()],
        &["diagnose", "gradients", "--run", run],
    ] {
        let (ok, out, err) = recur(args, "");
        assert!(ok, "{args:?}: {err}");
        printed.push(out);
    }
    for out in &printed {
        assert_markdown_tables_whole(out);
    }
    let all = printed.concat();
    for cell in ["| pi:1\\|PM2.5 |", "| TEMP, °C |", "| plant\\|7, a |"] {
        assert!(all.contains(cell), "{cell} in\n{all}");
    }

    let (ok, _, err) = recur(&["detect", "--run", run, "--threshold", "2"], "");
    assert!(ok, "{err}");
    let detected = Path::new(run).join("anomalies.csv");
    assert_eq!(csv_header_of_a_whole_file(&detected)[..3], ["entity", "time", "signal"]);
    let cells: Vec<Vec<String>> =
        std::fs::read_to_string(&detected).unwrap().lines().skip(1).map(recur::data::csv_fields).collect();
    assert!(cells.iter().any(|r| r[0] == "plant|7, a" && r[2] == "TEMP, °C"), "{cells:?}");
    let episodes = Path::new(run).join("episodes.csv");
    assert_eq!(csv_header_of_a_whole_file(&episodes)[..3], ["entity", "signal", "start"]);
    let cells: Vec<Vec<String>> =
        std::fs::read_to_string(&episodes).unwrap().lines().skip(1).map(recur::data::csv_fields).collect();
    assert!(cells.iter().any(|r| r[0] == "plant|7, a" && r[1] == "TEMP, °C"), "{cells:?}");
    let forecast = dir.join("forecast.csv");
    let (ok, _, err) = recur(&["predict", "--run", run, "--out", forecast.to_str().unwrap()], "");
    assert!(ok, "{err}");
    let header = csv_header_of_a_whole_file(&forecast);
    assert!(header.contains(&"pi:1|PM2.5_low".to_string()) && header.contains(&"TEMP, °C".to_string()), "{header:?}");
    let streamed = dir.join("streamed.csv");
    let (ok, out, err) = recur(&["stream", "--run", run, "--flag", "4", "--input", files[1].to_str().unwrap()], "");
    assert!(ok, "{err}");
    std::fs::write(&streamed, out).unwrap();
    let header = csv_header_of_a_whole_file(&streamed);
    for column in ["TEMP, °C_next_high", "pi:1|PM2.5_surprise", "new_alarms"] {
        assert!(header.contains(&column.to_string()), "{column}: {header:?}");
    }

    let (rec, _) = trained_briefly(dir, "rec", &data, "kind = \"reconstruction\"\nwindow = 24");
    let filled = dir.join("filled.csv");
    let (ok, _, err) = recur(&["reconstruct", "--run", rec.to_str().unwrap(), "--out", filled.to_str().unwrap()], "");
    assert!(ok, "{err}");
    let header = csv_header_of_a_whole_file(&filled);
    assert!(header.contains(&"TEMP, °C_filled".to_string()), "{header:?}");
}

/// The station's header and first `rows` rows as lines, without quotes.
fn beijing_lines(rows: usize) -> Vec<String> {
    let text = std::fs::read_to_string(beijing_csv()).unwrap().replace('"', "");
    text.lines().take(rows + 1).map(String::from).collect()
}

/// A feed of `header` and `rows`.
fn feed_of(header: &str, rows: &[String]) -> String {
    std::iter::once(header).chain(rows.iter().map(String::as_str)).collect::<Vec<_>>().join("\n") + "\n"
}

/// The rows of `lines` (a header first) with the 24th's PM2.5 no number: a stream stops there.
fn broken_at_24th(lines: &[String]) -> Vec<String> {
    let mut rows = lines[1..].to_vec();
    let mut bad: Vec<&str> = lines[24].split(',').collect();
    bad[5] = "n/a?";
    rows[23] = bad.join(",");
    rows
}

/// `--out FILE` with `--state`: a stream stopped after its last state write (here by a row
/// it cannot read; a killed service alike) had written answers the state does not count;
/// restarted with `--resume` on the same feed, it cuts them and answers their rows again,
/// so the file holds each answer once — the whole feed's answers, and the next feed's
/// appended as one stream over both would answer them. Without `--state`, the file
/// appears only when its feed has been answered whole.
#[test]
fn answers_written_to_a_file_are_written_once_across_a_stop() {
    let scratch = scratch_dir("recur-stream-answers");
    let dir = scratch.path();
    let (run, _) = trained_run(dir, "run", "", "kind = \"prediction\"\nwindow = 12");
    let run = run.to_str().unwrap();
    let lines = beijing_lines(60);
    let feed = |rows: &[String]| feed_of(&lines[0], rows);
    let (ok, whole, err) = recur(&["stream", "--run", run], &feed(&lines[1..]));
    assert!(ok, "{err}");
    let answers_of = |rows: usize| whole.lines().take(rows + 1).map(|l| format!("{l}\n")).collect::<String>();

    // the 24th row has a cell that is no number: the state was last written after the 20th
    let broken = broken_at_24th(&lines[..41]);
    let (state, answers) = (dir.join("state.json"), dir.join("answers.csv"));
    let (state_arg, answers_arg) = (state.to_str().unwrap(), answers.to_str().unwrap());
    let serve = ["stream", "--run", run, "--state", state_arg, "--state-every", "10", "--out", answers_arg];
    let (ok, out, err) = recur(&serve, &feed(&broken));
    assert!(!ok && err.contains("line 25, column `PM2.5`"), "{err}");
    assert!(out.is_empty(), "the answers go to the file: {out}");
    assert_eq!(std::fs::read_to_string(&answers).unwrap(), answers_of(23), "answered up to the bad row");
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["answers_written"].as_u64(), Some(answers_of(20).len() as u64), "written after 20 answers");

    // restarted on the same feed, mended: the three answers after the state cut, their rows answered again
    let resume = [&serve[..], &["--resume", "true"]].concat();
    let (early_state, early_answers) = (dir.join("early.json"), dir.join("early.csv"));
    std::fs::copy(&state, &early_state).unwrap();
    std::fs::copy(&answers, &early_answers).unwrap();
    let (early_state, early_answers) = (early_state.to_str().unwrap(), early_answers.to_str().unwrap());
    let early = ["stream", "--run", run, "--state", early_state, "--out", early_answers, "--resume", "true"];
    let (ok, _, err) = recur(&early, &feed(&lines[1..22]));
    assert!(ok, "{err}");
    assert_eq!(std::fs::read_to_string(early_answers).unwrap(), answers_of(21), "sent up to its 21st row");
    let (ok, _, err) = recur(&resume, &feed(&lines[1..41]));
    assert!(ok && err.contains("answers.csv: the last 3 answers were written after the state"), "{err}");
    assert_eq!(std::fs::read_to_string(&answers).unwrap(), answers_of(40), "each answer once");
    // the next feed's answers appended, as one stream over both feeds answers them
    let (ok, _, err) = recur(&serve, &feed(&lines[41..]));
    assert!(ok && !err.contains("cut"), "{err}");
    assert_eq!(std::fs::read_to_string(&answers).unwrap(), whole);

    // answers no state accounts for, or of other columns, are not written over
    let (ok, _, err) =
        recur(&["stream", "--run", run, "--state", &format!("{state_arg}.new"), "--out", answers_arg], &feed(&[]));
    assert!(!ok && err.contains("answers.csv: holds") && err.contains("no stream state accounts for"), "{err}");
    let (ok, _, err) = recur(&[&serve[..], &["--horizon", "2"]].concat(), &feed(&lines[1..2]));
    assert!(!ok && err.contains("is not this stream's"), "{err}");
    assert_eq!(std::fs::read_to_string(&answers).unwrap(), whole, "refused, the file is as it was");
    // a feed answered on stdout leaves a state no answers file holds every answer of
    let (ok, _, err) = recur(&["stream", "--run", run, "--state", state_arg], &feed(&lines[1..2]));
    assert!(ok, "{err}");
    let (ok, _, err) = recur(&serve, &feed(&lines[1..2]));
    assert!(!ok && err.contains("no stream state accounts for"), "{err}");

    // the feed or the state named as the answers' file: refused before anything is written
    let feed_file = dir.join("feed.csv");
    std::fs::write(&feed_file, feed(&lines[1..3])).unwrap();
    let feed_arg = feed_file.to_str().unwrap();
    let (ok, _, err) = recur(&["stream", "--run", run, "--input", feed_arg, "--out", feed_arg], "");
    assert!(!ok && err.contains("that is the --input file"), "{err}");
    assert_eq!(std::fs::read_to_string(&feed_file).unwrap(), feed(&lines[1..3]));
    let (ok, _, err) = recur(&["stream", "--run", run, "--state", state_arg, "--out", state_arg], &feed(&[]));
    assert!(!ok && err.contains("that is the --state file"), "{err}");

    // without --state: the file whole at the feed's end, or not at all
    let once = dir.join("once.csv");
    let (ok, _, _) = recur(&["stream", "--run", run, "--out", once.to_str().unwrap()], &feed(&broken));
    assert!(!ok && !once.exists(), "a stopped stream leaves no file");
    assert_eq!(
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp"))
            .count(),
        0
    );
    let (ok, _, err) = recur(&["stream", "--run", run, "--out", once.to_str().unwrap()], &feed(&lines[1..]));
    assert!(ok, "{err}");
    assert_eq!(std::fs::read_to_string(&once).unwrap(), whole);
}

/// A stream stopped in the middle of its feed (here by a row it cannot read; a killed
/// service alike) goes on from its last `--state-every` write: the rows after it, fed
/// again, are answered as the whole feed answered them, and the state counts the rows;
/// with `--resume`, the whole feed sent again is answered from the first row not read.
#[test]
fn a_stream_stopped_mid_feed_goes_on_from_its_last_saved_state() {
    let scratch = scratch_dir("recur-stream-resume");
    let dir = scratch.path();
    let (run, _) = trained_run(dir, "run", "", "kind = \"prediction\"\nwindow = 12");
    let run = run.to_str().unwrap();
    let lines = beijing_lines(40);
    let feed = |rows: &[String]| feed_of(&lines[0], rows);
    let rows_of = |out: &str| out.lines().skip(1).map(String::from).collect::<Vec<_>>();
    let (ok, whole, err) = recur(&["stream", "--run", run], &feed(&lines[1..]));
    assert!(ok, "{err}");

    // the 24th row has a cell that is no number: the state was last written after the 20th
    let broken = broken_at_24th(&lines);
    let state = dir.join("state.json");
    let state_arg = state.to_str().unwrap();
    let (ok, first, err) =
        recur(&["stream", "--run", run, "--state", state_arg, "--state-every", "10"], &feed(&broken));
    assert!(!ok && err.contains("line 25, column `PM2.5`"), "{err}");
    let saved = |key: &str| -> u64 {
        let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
        value[key].as_u64().unwrap()
    };
    assert_eq!((saved("rows"), saved("feed_rows")), (20, 20));
    let at_the_break = dir.join("at_the_break.json");
    std::fs::copy(&state, &at_the_break).unwrap();

    // --resume: the same feed sent again (mended) answers from its 21st row, once each
    let replay = ["stream", "--run", run, "--state", at_the_break.to_str().unwrap(), "--resume", "true"];
    let (ok, resumed, err) = recur(&replay, &feed(&lines[1..]));
    assert!(ok && err.contains("its first 20 rows were read then, passed over"), "{err}");
    assert_eq!([&rows_of(&first)[..20], &rows_of(&resumed)[..]].concat(), rows_of(&whole));
    let ended: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&at_the_break).unwrap()).unwrap();
    assert_eq!((ended["rows"].as_u64(), ended["feed_rows"].as_u64()), (Some(40), Some(0)), "the feed ended");
    // a feed that ended is not resumed: the next is new
    let (ok, next, err) = recur(&replay, &feed(&lines[1..3]));
    assert!(ok && !err.contains("resuming"), "{err}");
    assert_eq!(rows_of(&next).len(), 2);
    let (ok, _, err) = recur(&["stream", "--run", run, "--resume", "true"], "");
    assert!(!ok && err.contains("--resume: the feed goes on from the state in --state FILE"), "{err}");

    // fed again from the 21st row
    let (ok, second, err) = recur(&["stream", "--run", run, "--state", state_arg], &feed(&lines[21..]));
    assert!(ok, "{err}");
    let first = rows_of(&first);
    assert_eq!(first.len(), 23, "answered up to the bad row");
    assert_eq!([&first[..20], &rows_of(&second)[..]].concat(), rows_of(&whole));
    assert_eq!(saved("rows"), 40);
    assert!(err.contains("after 40 feed rows (20 of this feed)"), "{err}");
    let (ok, _, err) = recur(&["stream", "--run", run, "--state-every", "5"], "");
    assert!(!ok && err.contains("--state-every: the state is written to --state FILE"), "{err}");
    // a state file whose tensors do not fit the model is refused naming the file and tensor
    let mut value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    value["entities"][0]["stream"]["model"]["encoder"]["h"][0].as_array_mut().unwrap().pop();
    let cut = dir.join("cut.json");
    std::fs::write(&cut, value.to_string()).unwrap();
    let (ok, _, err) = recur(&["stream", "--run", run, "--state", cut.to_str().unwrap()], &feed(&lines[1..2]));
    assert!(!ok && err.contains("cut.json: tensor `h of layer 0` has shape [63], expected [64]"), "{err}");
}
