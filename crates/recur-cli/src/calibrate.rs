//! `recur calibrate`: the run's bands made to hold 95.45 % of the truths on a part it did
//! not train on (split conformal), checked on another.

use std::path::{Path, PathBuf};

use recur::data::{Part, PreparedSeries};
use recur::model::SequenceModel;
use recur::run::TaskKind;
use recur::tasks::calibration::CALIBRATION_FILE;
use recur::tasks::{PredictionTask, ReconstructionTask};

use crate::args::Args;
use crate::run_folder::{data_files, open_run_on_data};

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
