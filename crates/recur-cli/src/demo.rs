//! `recur demo` and `recur train`: runs from TOML configurations, trained and reported; the
//! demo's five on the bundled station, side by side, then a day ahead and its anomalies.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use indicatif::MultiProgress;

use recur::data::{PreparedSeries, SplitBy};
use recur::model::SequenceModel;
use recur::report::{
    detection_table, horizon_comparison_table, save_forecast_ahead_chart, save_horizon_chart, score_table,
    write_run_folder,
};
use recur::run::{load_data, run, RunConfig, RunOutcome, TaskKind};
use recur::tasks::anomaly::{episodes, FaultKind, Faults, Screening};
use recur::tasks::{PredictionTask, Uncertainty};
use recur::train::{progress, set_progress, Progress};

use crate::args::Args;
use crate::run_folder::{bundled, load_config};
use crate::wording::{every_signal, nonzero_counts, plural};

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
    let found = episodes(&scored, THRESHOLD, recur::tasks::anomaly::JOIN, |step| data.entity_index(step));
    let file = out.join(name).join("episodes.csv");
    // one station: one timeline
    let timeline = crate::detect::write_episodes(&found, data, targets, &file)?.remove(0);
    println!(
        "the {} values it or the flatline rule flags are {} alarm episodes (a signal's flags at most {} hours apart: \
         one), in {}, on a timeline in {}",
        found.iter().map(|e| e.flagged).sum::<usize>(),
        found.len(),
        recur::tasks::anomaly::JOIN,
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
