//! A trained run on data it has not seen, on the bundled Beijing station (UCI, CC BY 4.0,
//! real data): read with the run's settings and its fitted scaler, never refitted. The
//! checks are exact: a file holding just the rows of a run's test part scores as that
//! test part does, to the bit; and a run's own data file that changed since training is
//! refused, naming what changed, instead of being scaled and split anew without a word.

use std::path::{Path, PathBuf};

use recur::data::FittedScaler;
use recur::model::SequenceModel;
use recur::run::{evaluate, load_data, load_run_data, load_unseen_data, RunConfig, Score, TaskKind};

fn beijing_lines() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv");
    std::fs::read_to_string(path).unwrap().lines().map(String::from).collect()
}

/// An empty folder for a test's files, removed when dropped.
fn scratch_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("recur-unseen-{name}-")).tempdir().unwrap()
}

/// The header and data rows `rows` of the station, as a file.
fn station_rows(lines: &[String], rows: std::ops::Range<usize>, path: &Path) {
    let body: Vec<&str> = lines[1 + rows.start..1 + rows.end].iter().map(String::as_str).collect();
    std::fs::write(path, format!("{}\n{}\n", lines[0], body.join("\n"))).unwrap();
}

/// The station's lines, a scratch folder `name`, and in it `station.csv`: the first 6,000
/// hours, a run's own data in these tests.
fn station_of_6000_hours(name: &str) -> (Vec<String>, tempfile::TempDir, PathBuf) {
    let lines = beijing_lines();
    let dir = scratch_dir(name);
    let own = dir.path().join("station.csv");
    station_rows(&lines, 0..6000, &own);
    (lines, dir, own)
}

/// A run of `kind` on `file` (its first 6,000 hours), with an outlier screen and one
/// signal read through ln(1 + x), so that both are carried to unseen data too.
fn run_config(kind: TaskKind, file: &Path) -> RunConfig {
    let mut config = RunConfig::default();
    config.data.files = vec![file.display().to_string()];
    config.data.drop = vec!["No".into(), "wd".into(), "station".into()];
    config.data.outlier_mads = 6.0;
    config.data.log1p = vec!["PM2.5".into()];
    config.task.kind = kind;
    config.task.window = 24;
    config.model.bidirectional = kind == TaskKind::Reconstruction;
    config
}

fn model_of(config: &RunConfig, channels: usize) -> SequenceModel<f32> {
    let model_config = match config.task.kind {
        TaskKind::Prediction => config.prediction().model_config(channels),
        TaskKind::Reconstruction => config.reconstruction().model_config(channels),
    };
    SequenceModel::new(model_config, 7).unwrap()
}

/// Every number of a score table but the streamed scores, to compare two tables bit for bit.
fn numbers(scores: &[Score]) -> Vec<(String, Vec<u64>)> {
    let bits = |m: &recur::tasks::Metrics| {
        let mut v = vec![m.scored, m.micro_mse.to_bits(), m.mae.to_bits(), m.micro_mse_original.to_bits()];
        v.extend(m.per_signal_mse.iter().chain(&m.per_signal_mse_original).map(|x| x.to_bits()));
        v
    };
    scores
        .iter()
        .map(|s| {
            let mut v = bits(&s.metrics);
            v.extend(s.coverage_2sigma.map(f64::to_bits));
            (s.name.clone(), v)
        })
        .collect()
}

#[test]
fn a_file_of_a_runs_test_rows_scores_as_the_runs_own_test_part() {
    let (lines, scratch, own) = station_of_6000_hours("test-rows");
    let dir = scratch.path();
    // the test part: the last 20 % of the 6,000 hourly steps (the file has a row every hour)
    let test_rows = dir.join("test_rows.csv");
    station_rows(&lines, 4800..6000, &test_rows);
    for kind in [TaskKind::Prediction, TaskKind::Reconstruction] {
        let config = run_config(kind, &own);
        let data = load_data(&config.data, Path::new(".")).unwrap();
        assert_eq!(data.test, std::slice::from_ref(&(4800..6000)));
        assert!(data.screened.iter().sum::<usize>() > 0, "the screen takes some values out: {:?}", data.screened);
        let fitted = FittedScaler::of(&data);
        let unseen = load_unseen_data(&config.data, std::slice::from_ref(&test_rows), &fitted).unwrap();
        assert!(unseen.is_unseen() && !data.is_unseen());
        assert_eq!(
            (unseen.test.clone(), &unseen.scaler),
            (std::iter::once(0..1200).collect::<Vec<_>>(), &data.scaler),
            "the run's scaler, not refitted"
        );
        let model = model_of(&config, data.grid.channels());
        let (a, b) = (evaluate(&config, &data, &model).unwrap(), evaluate(&config, &unseen, &model).unwrap());
        println!(
            "{kind:?}: {}",
            a.iter().map(|s| format!("{} {:.4}", s.name, s.metrics.micro_mse)).collect::<Vec<_>>().join(", ")
        );
        assert!(a[0].metrics.scored > 1000, "{}", a[0].metrics.scored);
        assert_eq!(numbers(&a), numbers(&b), "{kind:?}: the same scores, to the bit");
        // streamed, the model runs from its entity's first step: on the run's own data 4,800
        // steps before the test part, on the file from its first row; what those steps
        // leave in the state has faded to a few parts in 10⁹ of the score
        let streamed = |s: &[Score]| s[0].streamed.as_ref().map(|m| m.micro_mse);
        match (streamed(&a), streamed(&b)) {
            (Some(x), Some(y)) => assert!((x - y).abs() < 1e-6 * x, "{x} against {y}"),
            (x, y) => assert_eq!((x, y, kind), (None, None, TaskKind::Reconstruction)),
        }
        if kind == TaskKind::Prediction {
            // a run trained on streams scores ahead and forecasts on the file too (it has
            // nothing to train on there, and needs nothing)
            let mut streams = config.clone();
            streams.task.stream = Some(recur::tasks::StreamTraining::default());
            let task = recur::tasks::PredictionTask::from_config(&unseen, &streams.prediction()).unwrap();
            let ahead = task.evaluate_horizon(&model, &unseen.test, 2).unwrap();
            assert_eq!(ahead.model[0].scored, b[0].metrics.scored, "one step ahead: the windows' entries");
            assert_eq!(task.forecast(&model).unwrap().len(), 1);
        }
        // and nothing is trained on data a run has not seen
        let task = recur::tasks::PredictionTask::new(&unseen, 24, true).unwrap();
        let model_config = config.prediction().model_config(unseen.grid.channels());
        let err = recur::train::train(&task, &model_config, &config.prediction().train, None, false, None)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("no training example"), "{err}");
    }
}

#[test]
fn a_runs_data_file_that_changed_since_training_is_refused_naming_what_changed() {
    let (lines, scratch, own) = station_of_6000_hours("changed");
    let dir = scratch.path();
    let config = run_config(TaskKind::Prediction, &own);
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    FittedScaler::of(&load_data(&config.data, Path::new(".")).unwrap()).save_to_run(&run).unwrap();
    assert_eq!(
        load_run_data(&run, &config).unwrap().test,
        std::slice::from_ref(&(4800..6000)),
        "unchanged: read as trained"
    );

    // a month of rows appended: the training part moves, and every scale with it
    station_rows(&lines, 0..6720, &own);
    let err = load_run_data(&run, &config).unwrap_err().to_string();
    assert!(err.contains("not the data the run in") && err.contains("signal `PM2.5`: mean"), "{err}");
    assert!(err.contains("station.csv"), "the file named: {err}");
    // one value changed in the training part is caught too
    let mut edited = lines[..6001].to_vec();
    let column = lines[0].split(',').position(|c| c.trim_matches('"') == "TEMP").unwrap();
    let mut cells: Vec<String> = edited[100].split(',').map(String::from).collect();
    cells[column] = format!("{}", cells[column].parse::<f64>().unwrap() + 5.0);
    edited[100] = cells.join(",");
    std::fs::write(&own, edited.join("\n") + "\n").unwrap();
    let err = load_run_data(&run, &config).unwrap_err().to_string();
    assert!(err.contains("signal `TEMP`: mean"), "{err}");
}

#[test]
fn unseen_files_are_read_by_the_runs_signal_names_not_their_column_order() {
    let (lines, scratch, own) = station_of_6000_hours("columns");
    let dir = scratch.path();
    let config = run_config(TaskKind::Prediction, &own);
    let fitted = FittedScaler::of(&load_data(&config.data, Path::new(".")).unwrap());
    let in_order = dir.join("later.csv");
    station_rows(&lines, 6000..7000, &in_order);
    let expected = load_unseen_data(&config.data, std::slice::from_ref(&in_order), &fitted).unwrap();

    // the columns reversed and a text column the run never read added
    let rows: Vec<String> = lines[..1]
        .iter()
        .chain(&lines[6001..7001])
        .enumerate()
        .map(|(i, l)| {
            let mut cells: Vec<&str> = l.split(',').collect();
            cells.reverse();
            let note = if i == 0 { "operator note" } else { "checked, ok" };
            format!("{},\"{note}\"", cells.join(","))
        })
        .collect();
    let shuffled = dir.join("shuffled.csv");
    std::fs::write(&shuffled, rows.join("\n") + "\n").unwrap();
    let read = load_unseen_data(&config.data, std::slice::from_ref(&shuffled), &fitted).unwrap();
    assert_eq!(read.grid.signals, fitted.signals);
    assert_eq!((&read.grid.values, &read.grid.observed), (&expected.grid.values, &expected.grid.observed));

    // a file without one of the run's signals is named with it
    let without: Vec<String> =
        lines[..1].iter().chain(&lines[6001..7001]).map(|l| l.replace("\"PM10\"", "\"PM10_old\"")).collect();
    let renamed = dir.join("renamed.csv");
    std::fs::write(&renamed, without.join("\n") + "\n").unwrap();
    let err = load_unseen_data(&config.data, &[renamed], &fitted).unwrap_err().to_string();
    assert!(err.contains("renamed.csv") && err.contains("PM10"), "{err}");
}

#[test]
fn an_unseen_file_unlike_the_training_part_is_named_signal_by_signal() {
    let (lines, scratch, own) = station_of_6000_hours("shift");
    let dir = scratch.path();
    let config = run_config(TaskKind::Prediction, &own);
    let data = load_data(&config.data, Path::new(".")).unwrap();
    let fitted = FittedScaler::of(&data);
    let test_rows = dir.join("test_rows.csv");
    station_rows(&lines, 4800..6000, &test_rows);
    let unseen = load_unseen_data(&config.data, std::slice::from_ref(&test_rows), &fitted).unwrap();
    let shift = unseen.shift_from_training(&unseen.test);
    assert_eq!(shift, data.shift_from_training(&data.test), "the same rows, the same comparison");
    let on_training = data.shift_from_training(&data.train);
    assert!(on_training.iter().all(|s| s.mean.abs() < 1e-4 && (s.std - 1.0).abs() < 1e-4), "{on_training:?}");
    let temp = fitted.signals.iter().position(|s| s == "TEMP").unwrap();
    println!("test part against training: {shift:?}");

    // the same rows 40 °C warmer, PM10 never read
    let header: Vec<&str> = lines[0].split(',').collect();
    let (t, pm10) =
        (header.iter().position(|c| *c == "\"TEMP\"").unwrap(), header.iter().position(|c| *c == "\"PM10\"").unwrap());
    let mut rows = vec![lines[0].clone()];
    for line in &lines[4801..6001] {
        let mut cells: Vec<String> = line.split(',').map(String::from).collect();
        if let Ok(v) = cells[t].parse::<f64>() {
            cells[t] = format!("{}", v + 40.0);
        }
        cells[pm10] = "NA".into();
        rows.push(cells.join(","));
    }
    let shifted = dir.join("shifted.csv");
    std::fs::write(&shifted, rows.join("\n") + "\n").unwrap();
    let unseen = load_unseen_data(&config.data, &[shifted], &fitted).unwrap();
    let moved = unseen.shift_from_training(&unseen.test);
    let expected = shift[temp].mean + 40.0 / f64::from(fitted.scaler.std[temp]);
    assert!((moved[temp].mean - expected).abs() < 1e-3, "{} against {expected}", moved[temp].mean);
    assert!((moved[temp].std - shift[temp].std).abs() < 1e-3);
    let concerns: Vec<String> = moved.iter().filter_map(|s| s.concern()).collect();
    assert!(concerns.contains(&"PM10 never observed".to_string()), "{concerns:?}");
    assert!(concerns.iter().any(|c| c.starts_with(&format!("TEMP mean +{:.1} sd", expected))), "{concerns:?}");
}

/// Two later files as two entities (two machines, say): each scored on its own, and the
/// entity scores pool to the table's, forecast for forecast (prediction) and hidden value
/// for hidden value (reconstruction, the same values hidden).
#[test]
fn each_entitys_scores_pool_to_the_whole_tables() {
    each_entitys_scores_pool_to_the_whole_table(TaskKind::Prediction, |_| {});
    each_entitys_scores_pool_to_the_whole_table(TaskKind::Reconstruction, |_| {});
    // a causal reconstruction, streamed too
    each_entitys_scores_pool_to_the_whole_table(TaskKind::Reconstruction, |config| {
        (config.model.bidirectional, config.task.residual) = (false, false);
    });
}

fn each_entitys_scores_pool_to_the_whole_table(kind: TaskKind, adjust: impl Fn(&mut RunConfig)) {
    let (lines, scratch, own) = station_of_6000_hours("entities");
    let dir = scratch.path();
    let mut config = run_config(kind, &own);
    adjust(&mut config);
    let data = load_data(&config.data, Path::new(".")).unwrap();
    let fitted = FittedScaler::of(&data);
    let (a, b) = (dir.join("winter.csv"), dir.join("spring.csv"));
    station_rows(&lines, 6000..7500, &a);
    station_rows(&lines, 8000..9000, &b);
    let unseen = load_unseen_data(&config.data, &[a, b], &fitted).unwrap();
    let model = model_of(&config, data.grid.channels());
    let whole = evaluate(&config, &unseen, &model).unwrap();
    let by_entity = recur::run::evaluate_by_entity(&config, &unseen, &model, None).unwrap();
    let names: Vec<&str> = by_entity.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["winter", "spring"]);
    let mut streamed_checked = false;
    for (row, pooled) in whole.iter().enumerate() {
        let scored: u64 = by_entity.iter().map(|(_, s)| s[row].metrics.scored).sum();
        assert_eq!(scored, pooled.metrics.scored, "{}", pooled.name);
        let sum: f64 = by_entity.iter().map(|(_, s)| s[row].metrics.micro_mse * s[row].metrics.scored as f64).sum();
        let mean = sum / scored as f64;
        assert!(
            (mean - pooled.metrics.micro_mse).abs() < 1e-9 * mean,
            "{}: {mean} against {}",
            pooled.name,
            pooled.metrics.micro_mse
        );
        if let Some(streamed) = &pooled.streamed {
            streamed_checked = true;
            let sum: f64 = by_entity
                .iter()
                .map(|(_, s)| s[row].streamed.as_ref().unwrap().micro_mse * s[row].metrics.scored as f64)
                .sum();
            assert!((sum / scored as f64 - streamed.micro_mse).abs() < 1e-9 * streamed.micro_mse);
        }
    }
    let causal = config.task.kind == TaskKind::Prediction || !config.task.residual;
    assert_eq!(streamed_checked, causal && model.is_causal());
    let table = recur::report::entity_table(&by_entity, 10);
    println!("{table}");
    assert_eq!(table.lines().count(), 4, "a header, its rule and a row per entity");
    // entity, scored, each method (the model streamed too), the ratio
    let bars = 4 + whole.len() + usize::from(streamed_checked);
    assert!(table.lines().all(|l| l.matches('|').count() == bars), "{table}");
    let folded = recur::report::entity_table(&by_entity, 0);
    assert!(folded.lines().nth(2).unwrap().starts_with("| … 2 more |"), "{folded}");
    assert!(folded.lines().all(|l| l.matches('|').count() == bars), "{folded}");
    let csv = recur::report::entity_csv(&by_entity);
    let first = match kind {
        TaskKind::Prediction => "GRU,\"GRU, streamed\",last observation carried forward,",
        TaskKind::Reconstruction if streamed_checked => "GRU,\"GRU, streamed\",linear interpolation,",
        TaskKind::Reconstruction => "BiGRU Coupled Concat,linear interpolation,",
    };
    assert!(csv.starts_with(&format!("entity,scored,{first}")), "{csv}");
}
