//! `recur demo`, `recur train`, `recur eval`, `recur inspect`: runs from TOML
//! configurations, and a look at data files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use indicatif::MultiProgress;

use recur::data::inspect::TextAmongNumbers;
use recur::data::{
    csv_quoted, CalendarCycle, EpochUnit, FittedScaler, Inspection, Layout, MissingValues, Part, PreparedSeries,
    SplitBy,
};
use recur::model::SequenceModel;
use recur::report::{
    detection_table, entity_csv, entity_table, horizon_comparison_table, horizon_signal_table, horizon_table,
    save_forecast_ahead_chart, save_horizon_chart, save_time_chart, score_table, time_table, write_run_folder,
};
use recur::run::{
    evaluate, evaluate_by_entity, evaluate_calibrated, load_data, load_run_data, load_unseen_data, run, RunConfig,
    RunOutcome, TaskKind,
};
use recur::tasks::anomaly::{episodes, FaultKind, Faults, Screening};
use recur::tasks::calibration::CALIBRATION_FILE;
use recur::tasks::{horizon_method, BandCalibration, PredictionTask, ReconstructionTask, TimeGroup, Uncertainty};
use recur::train::{progress, set_progress, Progress};

use crate::args::Args;

/// A bundled file: under the current folder, else the repository's.
pub fn bundled(relative: &str) -> PathBuf {
    let here = PathBuf::from(relative);
    if here.exists() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative)
}

/// A config with its data paths made absolute (relative ones are relative to the file).
pub(crate) fn load_config(path: &Path) -> Result<RunConfig, String> {
    let mut config = RunConfig::load(path).map_err(|e| e.to_string())?;
    let base = path.parent().unwrap_or(Path::new("."));
    for f in &mut config.data.files {
        let p = base.join(&*f);
        *f = std::fs::canonicalize(&p).unwrap_or(p).display().to_string();
    }
    Ok(config)
}

fn describe(config: &RunConfig, data: &recur::data::PreparedSeries) -> String {
    let m = &config.model;
    let model = format!(
        "{}{:?}{}, H={}, {} layer(s)",
        if m.bidirectional { "bidirectional " } else { "" },
        m.cell,
        if m.bidirectional { format!(" ({:?}, {:?} fusion)", m.coupling, m.fusion) } else { String::new() },
        m.hidden_size,
        m.num_layers
    );
    let when = match config.task.steps_ahead {
        1 => "at the next step".to_string(),
        s => format!("at each of the next {s} steps (direct)"),
    } + match config.task.uncertainty {
        Uncertainty::None => "",
        Uncertainty::Gaussian => " with a ±2σ band",
        Uncertainty::Quantile => " with a band from the 2.275 % to the 97.725 % quantile",
    };
    let forecast = match config.task.targets.is_empty() {
        true => every_signal(&data.grid.signals),
        false => format!(
            "{} (task.targets) from {}",
            config.scored_signals(&data.grid.signals).join(", "),
            every_signal(&data.grid.signals)
        ),
    };
    let what = match (config.task.kind, config.task.stream) {
        (TaskKind::Prediction, None) => {
            format!("predict {forecast} {when} from the previous {} steps", config.task.window - 1)
        }
        (TaskKind::Prediction, Some(s)) => format!(
            "predict {forecast} {when}, trained on streams of {} steps with the state carried (truncated BPTT, k1 = {}, k2 = {})",
            s.steps,
            s.k1,
            s.k2
        ),
        (TaskKind::Reconstruction, _) => format!(
            "reconstruct values hidden on purpose by missingness diffusion (isolated points to gaps of up to {} steps{}) in {}-step windows",
            (config.task.corruption.gap_fraction * config.task.window as f64) as usize,
            if data.grid.channels() > 1 { " across several signals" } else { "" },
            config.task.window
        ),
    };
    format!("task: {what}; {model}; up to {} epochs", config.train.epochs)
}

/// What a user reads about a trained run: its test scores against the baselines.
fn report(config: &RunConfig, outcome: &RunOutcome) -> String {
    let mut text = String::new();
    let what = match config.task.kind {
        TaskKind::Prediction => "observed targets",
        TaskKind::Reconstruction => "values hidden on purpose, the same for every method",
    };
    text += &format!(
        "\ntest part: {} {what}; best epoch {}, {} parameters\n",
        outcome.scores[0].metrics.scored, outcome.best_epoch, outcome.parameters
    );
    text += &score_table(&outcome.scores);
    if config.task.kind == TaskKind::Prediction && config.task.steps_ahead > 1 {
        text += &format!(
            "(the first of the {} steps ahead; `recur eval --run DIR --horizon {}` scores each of them)\n",
            config.task.steps_ahead, config.task.steps_ahead
        );
    }
    if let Some(c) = outcome.scores[0].coverage_2sigma {
        let of = match config.task.kind {
            TaskKind::Prediction => "observed targets",
            TaskKind::Reconstruction => "hidden values",
        };
        let band = match config.task.uncertainty {
            Uncertainty::Quantile => "band (its 2.275 % to 97.725 % quantiles",
            _ => "±2σ band (σ = 1/√λ̂",
        };
        text += &format!("{:.1} % of the {of} lie inside the model's {band}; 95.4 % if calibrated)\n", 100.0 * c);
    }
    text
}

/// Trains `config` into `out`, handing `say` what a user reads about it as it goes (the
/// data and the task before training, the scores after); returns the model and its data.
fn train_into(
    config: &RunConfig,
    out: &Path,
    resume: bool,
    say: &mut dyn FnMut(String),
) -> Result<(SequenceModel<f32>, recur::data::PreparedSeries), String> {
    let data = load_data(&config.data, Path::new(".")).map_err(|e| e.to_string())?;
    let split = &config.data.split;
    say(format!(
        "data: {}{} ({} steps of {} s, {}; split {:.0}/{:.0}/{:.0} {})\n",
        config.data.files[0],
        match config.data.files.len() {
            1 => String::new(),
            n => format!(" and {} more", plural(n - 1, "file")),
        },
        data.grid.len(),
        data.grid.bin_seconds,
        plural(data.grid.channels(), "signal"),
        100.0 * split.train,
        100.0 * split.validation,
        100.0 * (1.0 - split.train - split.validation),
        match split.by {
            SplitBy::Time => "in time".to_string(),
            SplitBy::Entity => format!("by entity, {} entities", data.entities.len()),
        }
    ));
    let screened = nonzero_counts(&data.grid.signals, &data.screened);
    if !screened.is_empty() {
        say(format!(
            "outliers: {} values beyond {} robust SDs of their signal's training median treated as missing ({})\n",
            data.screened.iter().sum::<usize>(),
            config.data.outlier_mads,
            screened.join(", ")
        ));
    }
    let marked = nonzero_counts(&data.grid.signals, &data.marked);
    if !marked.is_empty() {
        say(format!(
            "marks of no value (data.missing_values): {} cells read as gaps ({})\n",
            data.marked.iter().sum::<usize>(),
            marked.join(", ")
        ));
    }
    say(describe(config, &data) + "\n");
    let mut outcome = run(config, &data, Some(out), resume).map_err(|e| e.to_string())?;
    say(report(config, &outcome));
    write_run_folder(out, config, &mut outcome, &data).map_err(|e| e.to_string())?;
    let plots = match config.task.kind {
        TaskKind::Reconstruction => "loss.png, per_signal.png, reconstruction.png",
        TaskKind::Prediction => "loss.png, per_signal.png, forecast.png",
    };
    say(format!(
        "wrote {}: run.toml, metrics.json, epochs.jsonl, {plots}, model.safetensors, scaler.json, checkpoint.safetensors\n",
        out.display()
    ));
    Ok((outcome.model, data))
}

/// The demo's runs in the order it reports them, each with its training time on one
/// thread of the 2-core AVX2 machine in seconds (the workers take them longest first).
const DEMO_RUNS: [(&str, &str, u32); 5] = [
    ("prediction", "configs/beijing-prediction.toml", 32),
    ("prediction-streams", "configs/beijing-prediction-stream.toml", 5),
    ("prediction-twin", "configs/beijing-prediction-twin.toml", 8),
    ("prediction-day", "configs/beijing-prediction-direct.toml", 16),
    ("reconstruction", "configs/beijing-reconstruction.toml", 43),
];

/// A demo run once trained: what it printed, and its model and data or its error.
type Finished = (String, Result<(SequenceModel<f32>, PreparedSeries), String>);

/// `recur demo`: the five runs side by side, `threads` of them at a time on one thread
/// each (a model this small trains faster that way than on two threads of its own:
/// see the README), their reports printed in order as they come, then the day ahead.
/// A run's numbers do not depend on the threads it had.
pub fn demo(args: &Args) -> Result<(), String> {
    let known = ["epochs", "threads", "out"];
    let epochs = args.get("epochs", &known, 0usize)?;
    let threads = args.get("threads", &known, 2usize)?.max(1);
    let out = PathBuf::from(args.get("out", &known, "runs/demo".to_string())?);
    let started = std::time::Instant::now();
    let side_by_side = threads.min(DEMO_RUNS.len());
    let configs = DEMO_RUNS
        .iter()
        .map(|(_, file, _)| {
            let mut config = load_config(&bundled(file))?;
            config.train.threads = threads / side_by_side;
            if epochs > 0 {
                config.train.epochs = epochs;
            }
            Ok(config)
        })
        .collect::<Result<Vec<_>, String>>()?;
    println!(
        "{} runs, {side_by_side} at a time on {} thread(s) each; each run's report follows when it and those before it are done",
        DEMO_RUNS.len(),
        threads / side_by_side
    );
    let mut longest_first: Vec<usize> = (0..DEMO_RUNS.len()).collect();
    longest_first.sort_by_key(|&i| std::cmp::Reverse(DEMO_RUNS[i].2));
    let queue = Mutex::new(longest_first.into_iter());
    // the finished runs, and how many of them (in DEMO_RUNS order) have been printed
    let board: Mutex<(Vec<Option<Finished>>, usize)> = Mutex::new(((0..DEMO_RUNS.len()).map(|_| None).collect(), 0));
    let failed = AtomicBool::new(false);
    let bars = MultiProgress::new();
    let label_width = DEMO_RUNS.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let worker = || {
        let before = progress();
        loop {
            // (its own statement: a guard in a `while let` would hold the queue for the run)
            let next = queue.lock().expect("queue").next();
            let Some(i) = next.filter(|_| !failed.load(Ordering::Relaxed)) else { break };
            let (name, file, _) = DEMO_RUNS[i];
            set_progress(Progress::Shared { group: bars.clone(), label: format!("{name:<label_width$}") });
            let mut text = format!("\n== {name} ({file}) ==\n");
            let result = train_into(&configs[i], &out.join(name), false, &mut |line| text += &line);
            failed.fetch_or(result.is_err(), Ordering::Relaxed);
            let (finished, printed) = &mut *board.lock().expect("board");
            finished[i] = Some((text, result));
            while let Some(Some((text, Ok(_)))) = finished.get(*printed) {
                bars.suspend(|| {
                    print!("{text}");
                    let _ = std::io::Write::flush(&mut std::io::stdout());
                });
                *printed += 1;
            }
        }
        set_progress(before);
    };
    std::thread::scope(|s| {
        for _ in 1..side_by_side {
            s.spawn(worker);
        }
        worker();
    });
    let (finished, printed) = board.into_inner().expect("board");
    // after a failure: the reports not printed yet, up to the first error (the runs left
    // in the queue did not start)
    let (mut trained, mut failure) = (Vec::new(), None);
    for (i, (text, result)) in finished.into_iter().enumerate().filter_map(|(i, run)| Some((i, run?))) {
        if i >= printed && failure.is_none() {
            print!("{text}");
        }
        match result {
            Ok((model, data)) => trained.push((DEMO_RUNS[i].0, configs[i].clone(), model, data)),
            Err(e) => failure = failure.or(Some(format!("{}: {e}", DEMO_RUNS[i].0))),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let run_named = |name: &str| trained.iter().find(|t| t.0 == name).expect("trained above");
    day_ahead(run_named("prediction-streams"), run_named("prediction-day"), &out)?;
    anomalies(run_named("prediction-day"), &out)?;
    println!("\ndone in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

type Trained = (&'static str, RunConfig, SequenceModel<f32>, recur::data::PreparedSeries);

/// The demo's anomalies (`recur detect`): a run's one-step forecasts and band against every
/// test value — how many it flags, the most surprising, all in the run's `anomalies.csv`
/// and `.png` — and its ranking of spikes injected into 1 % of them against the detectors
/// without a model.
fn anomalies((name, config, model, data): &Trained, out: &Path) -> Result<(), String> {
    const THRESHOLD: f32 = 4.0;
    let task = PredictionTask::from_config(data, &config.prediction()).map_err(|e| e.to_string())?;
    let screening = Screening { guard: Some(THRESHOLD), ..Screening::default() };
    let scored = task.surprises(model, &data.test, &screening).map_err(|e| e.to_string())?;
    let targets = task.targets().names();
    let csv = out.join(name).join("anomalies.csv");
    let expected = "the forecast made the step before";
    let plot = crate::detect::write_anomalies(&scored, data, (targets, None), (THRESHOLD, expected), &csv)?;
    let flagged = scored.iter().filter(|v| v.surprise > THRESHOLD).count();
    println!(
        "\n== anomalies: every test value against {name}'s forecast of it the hour before (`recur detect --run {}`) ==",
        out.join(name).display()
    );
    if let Some(top) = scored.iter().max_by(|a, b| a.surprise.total_cmp(&b.surprise)) {
        println!(
            "{flagged} of the {} values ({:.2} %) lie more than {THRESHOLD} σ (of their band) from their forecast; the \
             most surprising: {} at {}, {} against {:.2} ({:.1} σ); all, and the flatline rule's flags, in {}, its \
             days in {}",
            scored.len(),
            100.0 * flagged as f64 / scored.len() as f64,
            targets[top.target],
            data.step_label(top.step).1,
            top.value,
            top.expected,
            top.surprise,
            csv.display(),
            plot.display()
        );
    }
    let found = episodes(&scored, THRESHOLD, crate::detect::JOIN, |step| data.entity_index(step));
    let file = out.join(name).join("episodes.csv");
    let timeline = crate::detect::write_episodes(&found, data, targets, &file)?;
    println!(
        "the {} values it or the flatline rule flags are {} alarm episodes (a signal's flags at most {} hours apart: \
         one), in {}, on a timeline in {}",
        found.iter().map(|e| e.flagged).sum::<usize>(),
        found.len(),
        crate::detect::JOIN,
        file.display(),
        timeline.display()
    );
    let spikes = Faults { kind: FaultKind::Spike, rate: 0.01, size: 3.0 };
    let detections =
        task.detect_faults(model, &data.test, (spikes, 1), (THRESHOLD, &screening)).map_err(|e| e.to_string())?;
    println!(
        "spikes of ±3 training SDs put into 1 % of those values (synthetic faults in real data), found by each detector:"
    );
    print!("{}", detection_table(&detections, THRESHOLD));
    Ok(())
}

/// The demo's day ahead: the one-step GRU in closed loop against the direct 24-hour GRU and
/// the baselines on the test part, as a table and `out/day_ahead.png`; and the direct GRU's
/// forecast of the day after the data, with its band (`forecast_ahead.png` in its run).
fn day_ahead(one_step: &Trained, direct: &Trained, out: &Path) -> Result<(), String> {
    let scores = |(_, config, model, data): &Trained| {
        let task = PredictionTask::from_config(data, &config.prediction())?;
        task.evaluate_horizon(model, &data.test, 24)
    };
    let (closed, day) = (scores(one_step).map_err(|e| e.to_string())?, scores(direct).map_err(|e| e.to_string())?);
    let models = [
        ("GRU next hour, closed loop".to_string(), closed.model.as_slice()),
        ("GRU, 24 h direct".to_string(), day.model.as_slice()),
    ];
    println!(
        "\n== a day ahead: test micro MSE by hours ahead ({} fed its own forecasts; {} forecasting all 24 at once) ==",
        one_step.0, direct.0
    );
    print!("{}", horizon_comparison_table(&models, &day, &[1, 3, 6, 12, 24]));
    let (name, config, model, data) = direct;
    let task = PredictionTask::from_config(data, &config.prediction()).map_err(|e| e.to_string())?;
    // its band calibrated on the validation part, not kept (`recur calibrate` keeps it); the
    // next day's forecast keeps the model's own band
    let calibration = task.calibrate_bands(model, &data.validation, 24, 0, 1).map_err(|e| e.to_string())?;
    let next_day = task.forecast_ahead(model, 24).map_err(|e| e.to_string())?;
    let targets = task.targets().clone();
    let calibrated =
        task.with_calibration(Some(calibration)).evaluate_horizon(model, &data.test, 24).map_err(|e| e.to_string())?;
    let at = |scores: &[recur::tasks::Metrics], read: fn(&recur::tasks::Metrics) -> Option<f64>, percent: bool| {
        let show = |h: usize| match (read(&scores[h - 1]), percent) {
            (Some(v), true) => format!("{:.1} %", 100.0 * v),
            (Some(v), false) => format!("{v:.3}"),
            (None, _) => "—".into(),
        };
        [1, 6, 24].map(show).join(" / ")
    };
    println!(
        "{}'s band calibrated on the validation part (split conformal; `recur calibrate --run {}` keeps it): \
         coverage {} -> {}, interval score {} -> {} at 1 / 6 / 24 h",
        name,
        out.join(name).display(),
        at(&day.model, |m| m.coverage_2sigma, true),
        at(&calibrated.model, |m| m.coverage_2sigma, true),
        at(&day.model, |m| m.interval_score_2sigma, false),
        at(&calibrated.model, |m| m.interval_score_2sigma, false)
    );
    let plot = out.join("day_ahead.png");
    save_horizon_chart(&models, &day, &plot).map_err(|e| e.to_string())?;
    println!("wrote {}", plot.display());
    if let Some((entity, forecast)) = next_day.first() {
        let plot = out.join(name).join("forecast_ahead.png");
        save_forecast_ahead_chart(data, entity, (forecast, &targets), 0, 72, &plot).map_err(|e| e.to_string())?;
        println!(
            "wrote {}: {} over the last 3 days of the data and the 24 hours after it, with its ±2σ band",
            plot.display(),
            targets.names()[0]
        );
    }
    Ok(())
}

pub fn train(args: &Args) -> Result<(), String> {
    let known = ["config", "out", "resume"];
    let path: String = args.get("config", &known, String::new())?;
    if path.is_empty() {
        return Err("usage: recur train --config FILE [--out DIR] [--resume true]".into());
    }
    let config = load_config(Path::new(&path))?;
    let stem = Path::new(&path).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
    let out = PathBuf::from(args.get("out", &known, format!("runs/{stem}"))?);
    train_into(&config, &out, args.get("resume", &known, false)?, &mut |text| print!("{text}")).map(|_| ())
}

/// A trained run folder: its resolved config (checked against `kind` when given), its
/// model and its data.
pub(crate) fn open_run(
    dir: &Path,
    kind: Option<TaskKind>,
) -> Result<(RunConfig, SequenceModel<f32>, PreparedSeries), String> {
    let (config, model) = open_run_model(dir, kind)?;
    let data = load_run_data(dir, &config).map_err(|e| format!("{e}\n(to use the run on other data: --data FILE)"))?;
    Ok((config, model, data))
}

/// The files `--data FILE,...` names (none without it).
fn data_files(args: &Args, known: &[&str]) -> Result<Vec<PathBuf>, String> {
    let files: String = args.get("data", known, String::new())?;
    Ok(files.split(',').filter(|f| !f.trim().is_empty()).map(PathBuf::from).collect())
}

/// Run folder `dir`'s file `NAME.EXT` for an output of the run's own data; on other data
/// (`--data`), beside it rather than over it: `NAME_STEM.EXT`, STEM the first file's name.
pub(crate) fn output_beside_run(
    dir: &Path,
    args: &Args,
    known: &[&str],
    name: &str,
    ext: &str,
) -> Result<PathBuf, String> {
    Ok(match data_files(args, known)?.first().and_then(|f| f.file_stem()) {
        Some(stem) => dir.join(format!("{name}_{}.{ext}", stem.to_string_lossy())),
        None => dir.join(format!("{name}.{ext}")),
    })
}

/// [`open_run`], or with `--data FILE,...` given: the run on those files instead of its
/// own data, read with its settings and fitted scaler, all of them its test part.
pub(crate) fn open_run_on_data(
    dir: &Path,
    kind: Option<TaskKind>,
    args: &Args,
    known: &[&str],
) -> Result<(RunConfig, SequenceModel<f32>, PreparedSeries), String> {
    let files = data_files(args, known)?;
    if files.is_empty() {
        return open_run(dir, kind);
    }
    let (config, model, fitted) = open_run_for_serving(dir)?;
    if let Some(k) = kind.filter(|&k| k != config.task.kind) {
        return Err(format!("{}: the run was trained for {:?}, not {k:?}", dir.display(), config.task.kind));
    }
    let data = load_unseen_data(&config.data, &files, &fitted).map_err(|e| e.to_string())?;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    eprintln!(
        "data: {} ({} steps of {} s, {} entit{}; not seen in training: all of it scored, standardised as in training)",
        names.join(", "),
        data.grid.len(),
        data.grid.bin_seconds,
        data.entities.len(),
        if data.entities.len() == 1 { "y" } else { "ies" }
    );
    let concerns: Vec<String> = data.shift_from_training(&data.test).iter().filter_map(|s| s.concern()).collect();
    match concerns.is_empty() {
        true => eprintln!(
            "every signal as in training (observed; mean within ±1 training sd of the training mean, spread 0.5-2×)"
        ),
        false => eprintln!("unlike training (in training standard deviations): {}", concerns.join("; ")),
    }
    Ok((config, model, data))
}

/// A run folder's config and model.
fn open_run_model(dir: &Path, kind: Option<TaskKind>) -> Result<(RunConfig, SequenceModel<f32>), String> {
    let config = RunConfig::load(dir.join("run.toml")).map_err(|e| e.to_string())?;
    if let Some(k) = kind.filter(|&k| k != config.task.kind) {
        return Err(format!("{}: the run was trained for {:?}, not {k:?}", dir.display(), config.task.kind));
    }
    let model = SequenceModel::load(dir.join("model.safetensors")).map_err(|e| e.to_string())?;
    Ok((config, model))
}

/// A run folder as a model is served from it: its config, model and the signals and
/// standardisation kept beside them (`scaler.json`), without its training data — which a
/// folder written before that file was kept still needs, read again.
pub(crate) fn open_run_for_serving(dir: &Path) -> Result<(RunConfig, SequenceModel<f32>, FittedScaler), String> {
    let (config, model) = open_run_model(dir, None)?;
    let fitted = match FittedScaler::load_from_run(dir).map_err(|e| e.to_string())? {
        Some(fitted) => fitted,
        None => FittedScaler::of(&load_data(&config.data, Path::new(".")).map_err(|e| e.to_string())?),
    };
    Ok((config, model, fitted))
}

/// The prediction task of a run folder, its bands scaled by the folder's calibration
/// (`recur calibrate`) where it has one.
pub(crate) fn calibrated_task<'a>(
    dir: &Path,
    config: &RunConfig,
    data: &'a PreparedSeries,
) -> Result<PredictionTask<'a>, String> {
    let task = PredictionTask::from_config(data, &config.prediction()).map_err(|e| e.to_string())?;
    let calibration = run_calibration(dir, task.targets().names())?;
    Ok(task.with_calibration(calibration))
}

/// The calibration of run folder `dir`, if it has one; says so on stderr when it does.
pub(crate) fn run_calibration(dir: &Path, signals: &[String]) -> Result<Option<BandCalibration>, String> {
    let calibration = BandCalibration::load_from_run(dir, signals).map_err(|e| e.to_string())?;
    if let Some(c) = &calibration {
        let paths =
            if c.paths > 0 { format!(", past the direct steps from {} sample paths", c.paths) } else { String::new() };
        eprintln!(
            "bands calibrated on the validation part ({}: {} factor(s) per signal{paths})",
            dir.join(CALIBRATION_FILE).display(),
            c.steps()
        );
    }
    Ok(calibration)
}

/// Where `recur calibrate` fits its factors and checks them: `fit` and `test`, named in its
/// report as `fitted_on` and `checked_on`.
struct CalibrationParts {
    fit: Part,
    test: Part,
    fitted_on: String,
    checked_on: String,
}

impl CalibrationParts {
    /// A run's own data: the validation part, checked on the test part. On other data (all of
    /// it test part): the first `share` of each entity, checked on the rest.
    fn of(data: &PreparedSeries, share: f64) -> Result<Self, String> {
        if !data.is_unseen() {
            let (fit, test) = (data.validation.clone(), data.test.clone());
            return Ok(CalibrationParts {
                fit,
                test,
                fitted_on: "the validation part".into(),
                checked_on: "the test part".into(),
            });
        }
        let (fit, test) = data.split_test_in_time(share).map_err(|e| format!("--fit: {e}"))?;
        let percent = 100.0 * share;
        Ok(CalibrationParts {
            fit,
            test,
            fitted_on: format!("the first {percent:.0} % of each entity of the data given"),
            checked_on: format!("the last {:.0} %", 100.0 - percent),
        })
    }
}

/// The folder `recur calibrate` writes its calibration.json into: the run's own, or `out`,
/// a copy of the run (its run.toml, model and scaler.json) that serves with the new bands
/// while the run keeps its own.
fn calibration_folder(dir: &Path, out: &str) -> Result<PathBuf, String> {
    if out.is_empty() {
        return Ok(dir.to_path_buf());
    }
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    for name in ["run.toml", "model.safetensors", recur::data::SCALER_FILE] {
        let from = dir.join(name);
        let bytes = std::fs::read(&from).map_err(|e| format!("{}: {e}", from.display()))?;
        recur::io::write_atomically(&out.join(name), &bytes).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

pub fn calibrate(args: &Args) -> Result<(), String> {
    let known = ["run", "horizon", "samples", "data", "fit", "out"];
    let dir = PathBuf::from(args.get("run", &known, String::new())?);
    if dir.as_os_str().is_empty() {
        return Err(
            "usage: recur calibrate --run DIR [--data FILE,... [--fit F] --out DIR2] [--horizon N [--samples K]] (a run with a band)"
                .into(),
        );
    }
    let out: String = args.get("out", &known, String::new())?;
    let share: f64 = args.get("fit", &known, 0.5)?;
    if !data_files(args, &known)?.is_empty() && out.is_empty() {
        return Err(format!(
            "--data: the bands would fit other data than {}'s own; --out DIR2 gets a copy of the run with them (the run keeps its calibration)",
            dir.display()
        ));
    }
    let (config, model, data) = open_run_on_data(&dir, None, args, &known)?;
    let parts = CalibrationParts::of(&data, share)?;
    let failed = |e: recur::Error| format!("{}: {e}", dir.display());
    if config.task.kind == TaskKind::Reconstruction {
        let task = ReconstructionTask::new(&data, config.reconstruction()).map_err(failed)?;
        return calibrate_reconstruction(task, &model, &parts, &calibration_folder(&dir, &out)?).map_err(failed);
    }
    let task = PredictionTask::from_config(&data, &config.prediction()).map_err(failed)?;
    let direct = task.steps_ahead_of(&model).map_err(failed)?;
    let horizon = args.get("horizon", &known, direct)?;
    let samples = args.get("samples", &known, 0usize)?;
    let calibration = task.calibrate_bands(&model, &parts.fit, horizon, samples, 1).map_err(failed)?;
    let before = task.evaluate_horizon_sampled(&model, &parts.test, horizon, samples, 0).map_err(failed)?;
    let c = task.targets().len();
    let task = task.with_calibration(Some(calibration.clone()));
    let after = task.evaluate_horizon_sampled(&model, &parts.test, horizon, samples, 0).map_err(failed)?;
    println!(
        "split-conformal factors fitted on {} ({} to {} scored forecasts per step and signal); {}:",
        parts.fitted_on,
        calibration.scores.iter().min().unwrap_or(&0),
        calibration.scores.iter().max().unwrap_or(&0),
        parts.checked_on
    );
    println!("| steps ahead | factor (min–max over signals) | coverage | calibrated | interval score | calibrated |");
    println!("|------------:|------------------------------:|---------:|-----------:|---------------:|-----------:|");
    let percent = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{:.1} %", 100.0 * v));
    let score = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.4}"));
    for h in (1..=horizon).filter(|&h| h <= 3 || h == horizon || h % 6 == 0) {
        let factors = &calibration.scale[(h - 1) * c..h * c];
        let (low, high) = factors.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, u), &k| (l.min(k), u.max(k)));
        let (b, a) = (&before.model[h - 1], &after.model[h - 1]);
        println!(
            "| {h:>11} | {:>29} | {:>8} | {:>10} | {:>14} | {:>10} |",
            format!("{low:.3}–{high:.3}"),
            percent(b.coverage_2sigma),
            percent(a.coverage_2sigma),
            score(b.interval_score_2sigma),
            score(a.interval_score_2sigma)
        );
    }
    let folder = calibration_folder(&dir, &out)?;
    calibration.save_to_run(&folder).map_err(|e| e.to_string())?;
    println!("wrote {}: recur eval --horizon, predict and stream apply it", folder.join(CALIBRATION_FILE).display());
    Ok(())
}

/// `recur calibrate` for a reconstruction run: a factor per signal for the ±2σ band of
/// every reconstructed value, fitted on the hidden entries of `parts.fit`; `parts.test`'s
/// before and after; the calibration written into `folder`.
fn calibrate_reconstruction(
    task: ReconstructionTask<'_>,
    model: &SequenceModel<f32>,
    parts: &CalibrationParts,
    folder: &Path,
) -> recur::Result<()> {
    let calibration = task.calibrate_bands(model, &parts.fit)?;
    let before = task.evaluate(Some(model), &parts.test)?.remove(0).metrics;
    let series = task.series;
    let task = task.with_calibration(Some(calibration.clone()));
    let after = task.evaluate(Some(model), &parts.test)?.remove(0).metrics;
    println!(
        "split-conformal factors fitted on the values hidden in {}; coverage of those hidden in {}:",
        parts.fitted_on, parts.checked_on
    );
    println!("| signal | hidden (fitted on) | factor | coverage | calibrated |");
    println!("|---|---:|---:|---:|---:|");
    let percent = |v: f64| format!("{:.1} %", 100.0 * v);
    for (j, name) in series.grid.signals.iter().enumerate() {
        println!(
            "| {} | {} | {:.3} | {} | {} |",
            recur::report::markdown_cell(name),
            calibration.scores[j],
            calibration.scale[j],
            percent(before.per_signal_coverage_2sigma[j]),
            percent(after.per_signal_coverage_2sigma[j])
        );
    }
    let pooled = |m: &recur::tasks::Metrics| {
        let coverage = m.coverage_2sigma.map_or("—".into(), percent);
        format!("{coverage}, interval score {}", m.interval_score_2sigma.map_or("—".into(), |v| format!("{v:.4}")))
    };
    println!("all signals: {} before, {} calibrated", pooled(&before), pooled(&after));
    calibration.save_to_run(folder)?;
    println!("wrote {}: recur reconstruct and stream apply it", folder.join(CALIBRATION_FILE).display());
    Ok(())
}

pub fn eval(args: &Args) -> Result<(), String> {
    let known = ["run", "horizon", "samples", "data", "by"];
    let dir = PathBuf::from(args.get("run", &known, String::new())?);
    if dir.as_os_str().is_empty() {
        return Err(
            "usage: recur eval --run DIR [--data FILE,...] [--horizon N [--samples K]] [--by hour|weekday|month] (a folder written by recur train)"
                .into(),
        );
    }
    let horizon = args.get("horizon", &known, 0usize)?;
    let samples = args.get("samples", &known, 0usize)?;
    let by = match args.get("by", &known, String::new())?.as_str() {
        "" => None,
        name => Some(
            TimeGroup::named(name).ok_or_else(|| format!("--by {name}: `hour` (of the day), `weekday` or `month`"))?,
        ),
    };
    let (config, model, data) = open_run_on_data(&dir, None, args, &known)?;
    if horizon > 0 && config.task.kind != TaskKind::Prediction {
        return Err(format!("{}: --horizon needs a prediction run", dir.display()));
    }
    let scores = evaluate(&config, &data, &model).map_err(|e| e.to_string())?;
    print!("{}", score_table(&scores));
    let scored = config.scored_signals(&data.grid.signals);
    let band = match config.task.uncertainty {
        Uncertainty::Quantile => "2.275-97.725 % quantile band",
        _ => "±2σ",
    };
    let coverage = |which: &str, score: &recur::run::Score| {
        let (Some(c), metrics) = (score.coverage_2sigma, &score.metrics) else { return };
        println!(
            "{which}{band} coverage of the scored values: {:.1} %; the band's mean width {:.4}, interval score {:.4} (standardised, as MAE)",
            100.0 * c,
            metrics.band_width_2sigma.unwrap_or(f64::NAN),
            metrics.interval_score_2sigma.unwrap_or(f64::NAN)
        );
        let per_signal: Vec<String> = scored
            .iter()
            .zip(&metrics.per_signal_coverage_2sigma)
            .map(|(s, c)| format!("{s} {:.1} %", 100.0 * c))
            .collect();
        println!("per signal: {}", per_signal.join(", "));
    };
    coverage("", &scores[0]);
    let calibration = run_calibration(&dir, &scored)?;
    // one entity's scores are the table's: evaluated again only where there are several
    let by_entity = match data.entities.len() > 1 {
        true => evaluate_by_entity(&config, &data, &model, calibration.clone()).map_err(|e| e.to_string())?,
        false => Vec::new(),
    };
    if by_entity.len() > 1 {
        const SHOWN: usize = 10;
        let file = output_beside_run(&dir, args, &known, "per_entity", "csv")?;
        recur::io::write_atomically(&file, entity_csv(&by_entity).as_bytes()).map_err(|e| e.to_string())?;
        let which = if by_entity.len() > SHOWN { format!("the {} worst and best; ", SHOWN / 2) } else { String::new() };
        println!(
            "\nby entity, micro MSE, worst against the best baseline first ({which}all {} in {}):",
            by_entity.len(),
            file.display()
        );
        print!("{}", entity_table(&by_entity, SHOWN));
    }
    if let Some(calibration) = calibration.clone().filter(|_| scores[0].coverage_2sigma.is_some()) {
        let calibrated = evaluate_calibrated(&config, &data, &model, Some(calibration)).map_err(|e| e.to_string())?;
        coverage("calibrated (recur calibrate): ", &calibrated[0]);
    }
    if let Some(group) = by {
        let errors = match config.task.kind {
            TaskKind::Prediction => PredictionTask::from_config(&data, &config.prediction()).and_then(|task| {
                task.with_calibration(calibration.clone()).evaluate_by_time(&model, &data.test, group)
            }),
            TaskKind::Reconstruction => ReconstructionTask::new(&data, config.reconstruction()).and_then(|task| {
                task.with_calibration(calibration.clone()).evaluate_by_time(&model, &data.test, group)
            }),
        }
        .map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = format!("by_{}", group.name());
        let what = match config.task.kind {
            TaskKind::Prediction => "one step ahead, streamed, by the local time of the step forecast",
            TaskKind::Reconstruction => "the values hidden on purpose, by the local time of their step",
        };
        println!("\n{what}; test part:");
        print!("{}", time_table(&errors, &scored));
        let plot = output_beside_run(&dir, args, &known, &name, "png")?;
        save_time_chart(&errors, &scores[0].name, &plot).map_err(|e| e.to_string())?;
        println!("wrote {}", plot.display());
    }
    if horizon > 0 {
        let task = PredictionTask::from_config(&data, &config.prediction())
            .map_err(|e| e.to_string())?
            .with_calibration(calibration);
        let ahead = task
            .evaluate_horizon_sampled(&model, &data.test, horizon, samples, 0)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let direct = task.steps_ahead_of(&model).map_err(|e| e.to_string())?;
        println!("\n1..{horizon} steps ahead, {}; test part:", horizon_method(direct, horizon));
        print!("{}", horizon_table(&ahead));
        println!("\nby signal, test MSE (standardised) of the model (and of persistence):");
        print!("{}", horizon_signal_table(&ahead, &scored));
        let plot = output_beside_run(&dir, args, &known, "horizon", "png")?;
        save_horizon_chart(&[(scores[0].name.clone(), &ahead.model)], &ahead, &plot).map_err(|e| e.to_string())?;
        println!("wrote {}", plot.display());
    }
    Ok(())
}

pub fn predict(args: &Args) -> Result<(), String> {
    let known = ["run", "out", "horizon", "signal", "samples", "data"];
    let dir = PathBuf::from(args.get("run", &known, String::new())?);
    if dir.as_os_str().is_empty() {
        return Err("usage: recur predict --run DIR [--data FILE,...] [--horizon N [--samples K]] [--signal NAME] \
                    [--out FILE.csv] (a prediction run folder)"
            .into());
    }
    let horizon = args.get("horizon", &known, 1usize)?;
    let samples = args.get("samples", &known, 0usize)?;
    let (config, model, data) = open_run_on_data(&dir, Some(TaskKind::Prediction), args, &known)?;
    let task = calibrated_task(&dir, &config, &data)?;
    let signals = task.targets().names();
    let name = args.get("signal", &known, signals[0].clone())?;
    let signal = signals
        .iter()
        .position(|s| *s == name)
        .ok_or_else(|| format!("--signal: no signal `{name}` among those the run forecasts: {}", signals.join(", ")))?;
    let forecasts =
        if horizon == 1 { task.forecast(&model) } else { task.forecast_ahead_sampled(&model, horizon, samples, 0) }
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    let c = signals.len();
    // with σ (a Gaussian head): each signal's ±2σ band beside it, empty where the step has
    // none (past the direct steps)
    let banded = forecasts.iter().any(|(_, f)| !f.low.is_empty());
    let columns: Vec<String> = match banded {
        true => signals.iter().flat_map(|s| [s.clone(), format!("{s}_low"), format!("{s}_high")]).collect(),
        false => signals.to_vec(),
    };
    let columns: Vec<String> = columns.iter().map(|c| csv_quoted(c)).collect();
    let mut csv = format!("entity,steps_ahead,time,{}\n", columns.join(","));
    for (name, forecast) in &forecasts {
        let entity = data.entities.iter().position(|(n, _)| n == name).ok_or(format!("no entity `{name}`"))?;
        let last = data.entities[entity].1.len() - 1;
        for (h, row) in forecast.values.chunks(c).enumerate() {
            let band = forecast.low.get(h * c..(h + 1) * c).zip(forecast.high.get(h * c..(h + 1) * c));
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .flat_map(|(j, v)| {
                    let band = match band {
                        Some((low, high)) => vec![low[j].to_string(), high[j].to_string()],
                        None if banded => vec![String::new(), String::new()],
                        None => Vec::new(),
                    };
                    std::iter::once(v.to_string()).chain(band)
                })
                .collect();
            csv.push_str(&format!(
                "{},{},{},{}\n",
                csv_quoted(name),
                h + 1,
                data.time_label(entity, last + h + 1),
                cells.join(",")
            ));
        }
    }
    let out = PathBuf::from(args.get("out", &known, dir.join("forecast.csv").display().to_string())?);
    recur::io::write_atomically(&out, csv.as_bytes()).map_err(|e| e.to_string())?;
    print!("{csv}");
    let what = if horizon == 1 {
        "the next step".to_string()
    } else {
        let direct = task.steps_ahead_of(&model).map_err(|e| e.to_string())?;
        format!("the next {horizon} steps ({})", horizon_method(direct, horizon))
    };
    let skipped = data.entities.len() - forecasts.len();
    let note = if skipped > 0 { format!(" ({skipped} shorter than the input window: skipped)") } else { String::new() };
    println!(
        "wrote {}: {what} after the end of {} of {} entities{note}, original units",
        out.display(),
        forecasts.len(),
        data.entities.len()
    );
    if let (true, Some((entity, forecast))) = (horizon > 1, forecasts.first()) {
        let plot = out.with_file_name("forecast_ahead.png");
        let history = 3 * horizon.max(24);
        let shown = (forecast, task.targets());
        save_forecast_ahead_chart(&data, entity, shown, signal, history, &plot).map_err(|e| e.to_string())?;
        println!("wrote {}: {name} of {entity}, its last {history} steps and the next {horizon}", plot.display());
    }
    Ok(())
}

pub fn reconstruct(args: &Args) -> Result<(), String> {
    let known = ["run", "out", "data"];
    let dir = PathBuf::from(args.get("run", &known, String::new())?);
    if dir.as_os_str().is_empty() {
        return Err(
            "usage: recur reconstruct --run DIR [--data FILE,...] [--out FILE.csv] (a reconstruction run folder)"
                .into(),
        );
    }
    let (config, model, data) = open_run_on_data(&dir, Some(TaskKind::Reconstruction), args, &known)?;
    let calibration = run_calibration(&dir, &data.grid.signals)?;
    let csv = recur::report::filled_series_csv(&config, &data, &model, calibration).map_err(|e| e.to_string())?;
    let out = PathBuf::from(args.get("out", &known, dir.join("filled.csv").display().to_string())?);
    recur::io::write_atomically(&out, csv.as_bytes()).map_err(|e| e.to_string())?;
    let filled = data.grid.observed.iter().filter(|&&o| !o).count();
    println!(
        "wrote {}: {} steps × {}, {filled} missing values filled, each with a ±2σ band",
        out.display(),
        data.grid.len(),
        plural(data.grid.channels(), "signal")
    );
    Ok(())
}

/// `recur inspect FILE... [--bin SECONDS] [--missing-values A,B] [--time-unit s|ms|us|ns]`:
/// each file's layout (and how it was read: separator, encoding), entities, intervals and
/// missingness per signal, its categorical columns, and the columns whose few text cells
/// look like marks of "no value".
pub fn inspect(args: &Args) -> Result<(), String> {
    if args.positional.len() < 2 {
        return Err(
            "usage: recur inspect FILE... [--bin SECONDS] [--missing-values A,B] [--time-unit s|ms|us|ns] (CSV or \
             Parquet, wide or long)"
                .into(),
        );
    }
    let known = ["bin", "missing-values", "time-unit"];
    let bin: i64 = args.get("bin", &known, 0)?;
    let unit: String = args.get("time-unit", &known, "s".to_string())?;
    let unit = EpochUnit::parse(&unit).ok_or(format!("--time-unit: `{unit}` is none of s, ms, us, ns"))?;
    let marks: String = args.get("missing-values", &known, String::new())?;
    let marks: Vec<String> = marks.split(',').filter(|m| !m.trim().is_empty()).map(String::from).collect();
    let missing = MissingValues::new(&marks, &Default::default()).map_err(|e| e.to_string())?;
    for file in &args.positional[1..] {
        let report = Inspection::read(file, (bin > 0).then_some(bin), &missing, unit).map_err(|e| e.to_string())?;
        let mut notes = Vec::new();
        match report.delimiter {
            ',' => {}
            '\t' => notes.push("tab-separated, decimal commas read".to_string()),
            d => notes.push(format!("`{d}`-separated, decimal commas read")),
        }
        if report.windows_1252 {
            notes.push("not UTF-8: read as Windows-1252".into());
        }
        let how_read = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) };
        let layout = match &report.layout {
            Layout::Wide { .. } => format!("wide{how_read}"),
            Layout::Long(c) if c.entity.is_empty() => format!("long ({}, {}, {}){how_read}", c.time, c.signal, c.value),
            Layout::Long(c) => format!("long ({}, {}, {}; entity {}){how_read}", c.time, c.signal, c.value, c.entity),
        };
        println!(
            "{file}: {layout}, {} entit{}, {} rows, median interval {} s, longest gap {} s",
            report.entities,
            if report.entities == 1 { "y" } else { "ies" },
            report.rows,
            report.median_interval,
            report.longest_gap
        );
        let grid = format!("empty on the {}-s grid", report.bin_seconds);
        // how much of each signal's variance its hour of the day, weekday and month explain
        let cycles = report.calendar_shares.iter().any(Option::is_some);
        let explains = match cycles {
            true => format!(" {:>14} {:>9} {:>9}", "hour explains", "weekday", "month"),
            false => String::new(),
        };
        println!("  {:<20} {:>16} {:>28}{explains}", "signal", "missing in rows", grid);
        for (s, share) in report.signals.iter().zip(&report.calendar_shares) {
            let explains = match share {
                Some(c) => {
                    format!(
                        " {:>12.1} % {:>7.1} % {:>7.1} %",
                        100.0 * c.hour_of_day,
                        100.0 * c.weekday,
                        100.0 * c.month
                    )
                }
                None if cycles => format!(" {:>14} {:>9} {:>9}", "—", "—", "—"),
                None => String::new(),
            };
            println!(
                "  {:<20} {:>14.1} % {:>26.1} %{explains}",
                s.name,
                100.0 * s.missing_in_rows(),
                100.0 * s.empty_on_grid()
            );
        }
        println!("  {:<20} {:>16} {:>26.1} %", "all signals", "", 100.0 * report.empty_on_grid());
        let suggested = report.suggested_calendar(0.1);
        if !suggested.is_empty() {
            let what: Vec<String> = suggested
                .iter()
                .map(|(cycle, signals)| {
                    let by = match cycle {
                        CalendarCycle::Day => "the hour of the day",
                        CalendarCycle::Week => "the weekday",
                        CalendarCycle::Year => "the month",
                    };
                    let named: Vec<String> =
                        signals.iter().take(4).map(|(s, v)| format!("{:.0} % of {s}", 100.0 * v)).collect();
                    format!("{by} explains {}", named.join(", "))
                })
                .collect();
            let cycles: Vec<String> = suggested.iter().map(|(c, _)| format!("\"{}\"", c.name())).collect();
            println!("  calendar: {}: data.calendar = [{}] lets a model read them", what.join("; "), cycles.join(", "));
        }
        if let Layout::Wide { categorical } = &report.layout {
            if !categorical.is_empty() {
                let listed: Vec<String> = categorical.iter().map(|c| plural_values(c, report.categories(c))).collect();
                println!("  categorical (one-hot as data.categorical): {}", listed.join(", "));
            }
        }
        for column in &report.text_among_numbers {
            println!("  {}", text_among_numbers_note(column, report.place_unit));
        }
    }
    Ok(())
}

/// `PM2.5 12`, one per signal whose count is not zero.
fn nonzero_counts(signals: &[String], counts: &[usize]) -> Vec<String> {
    signals.iter().zip(counts).filter(|(_, &n)| n > 0).map(|(s, n)| format!("{s} {n}")).collect()
}

/// `wd (16 values)`, `station (1 value)`.
fn plural_values(column: &str, n: usize) -> String {
    format!("{column} ({})", plural(n, "value"))
}

/// `1 signal`, `11 signals`.
fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// `all 11 signals`, or the one signal by name.
fn every_signal(signals: &[String]) -> String {
    match signals {
        [one] => format!("`{one}`"),
        all => format!("all {} signals", all.len()),
    }
}

/// What `recur inspect` says of a column that holds more numbers than text.
fn text_among_numbers_note(column: &TextAmongNumbers, place_unit: &str) -> String {
    const SHOWN: usize = 5;
    let cells: usize = column.texts.iter().map(|t| t.1).sum();
    let mut listed: Vec<String> = column
        .texts
        .iter()
        .take(SHOWN)
        .map(|(text, count, first)| format!("`{text}` ×{count} (first on {place_unit} {first})"))
        .collect();
    if column.texts.len() > SHOWN {
        listed.push(format!("{} more", column.texts.len() - SHOWN));
    }
    let marks: Vec<&str> = column.texts.iter().take(SHOWN).map(|t| t.0.as_str()).collect();
    format!(
        "note: `{}` holds {} numbers and {cells} text cell{}: {}. Read as categorical here; if the text \
         means \"no value\", list it in data.missing_values (recur inspect --missing-values '{}' shows the result)",
        column.column,
        column.numbers,
        if cells == 1 { "" } else { "s" },
        listed.join(", "),
        marks.join(",")
    )
}
