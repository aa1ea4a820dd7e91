//! `recur eval`, `recur predict`, `recur reconstruct`: a trained run scored, forecasting
//! past its data, and filling its gaps.

use std::path::PathBuf;

use recur::data::csv_quoted;
use recur::report::{
    entity_csv, entity_table, horizon_signal_table, horizon_table, save_forecast_ahead_chart, save_horizon_chart,
    save_time_chart, score_table, time_table,
};
use recur::run::{evaluate, evaluate_by_entity, evaluate_calibrated, TaskKind};
use recur::tasks::{horizon_method, PredictionTask, ReconstructionTask, TimeGroup, Uncertainty};

use crate::args::Args;
use crate::run_folder::{
    calibrated_task, files_read, open_run_on_data, output_beside_run, refuse_writing_over_data, run_calibration,
};
use crate::wording::plural;

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
    refuse_writing_over_data(&out, &files_read(&config, args, &known)?)?;
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
    refuse_writing_over_data(&out, &files_read(&config, args, &known)?)?;
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
