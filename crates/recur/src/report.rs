//! What a run leaves behind and prints: a run folder (`run.toml` with every default
//! resolved, `metrics.json`, `model.safetensors`, `scaler.json` (what serving the model needs
//! of its data: [`FittedScaler`]), `loss.png`, `per_signal.png`, and for reconstruction
//! `reconstruction.png`, for prediction `forecast.png`; the trainer adds `epochs.jsonl` and `checkpoint.safetensors`),
//! and the score table.

use std::ops::Range;
use std::path::Path;

use crate::data::{csv_quoted, FittedScaler, PreparedSeries};
use crate::error::{Error, Result};
use crate::io::write_atomically;
use crate::model::HeadKind;
use crate::plot::{Band, BarChart, LineChart, Series, Style, TimelineChart};
use crate::run::{RunConfig, RunOutcome, Score, TaskKind};
use crate::tasks::anomaly::{median_steps, AlarmScales, Detections, Detector, Episode, ScoredValue};
use crate::tasks::calibration::BandCalibration;
use crate::tasks::prediction::PredictionTask;
use crate::tasks::reconstruction::ReconstructionTask;

/// `text` as one cell of a Markdown table: a `|` escaped (`\|`, as GitHub's tables read
/// it), a line break a space. Names come from the data (a historian's `pi:160220|average`,
/// an entity's file name), so every name a table prints goes through here.
pub fn markdown_cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// The scores as a Markdown table (standardised and original units), each column with
/// the decimals that give its smallest value three significant digits (at least 4 for
/// the standardised columns, 2 for the original ones: a pressure in bar scores 0.00240,
/// not 0.00).
pub fn score_table(scores: &[Score]) -> String {
    let streamed = |name: &str| format!("{name}, streamed (state carried)");
    let names: Vec<(String, &crate::tasks::Metrics)> = scores
        .iter()
        .flat_map(|s| {
            std::iter::once((markdown_cell(&s.name), &s.metrics))
                .chain(s.streamed.as_ref().map(|m| (markdown_cell(&streamed(&s.name)), m)))
        })
        .collect();
    let width = names.iter().map(|(n, _)| n.chars().count()).max().unwrap_or(0).max(40);
    let mut out = format!(
        "| {:<width$} | micro MSE | MAE    | MSE (original) | MAE (original) |\n|{}|----------:|-------:|---------------:|---------------:|\n",
        "method",
        "-".repeat(width + 2)
    );
    let decimals = |at_least: usize, column: fn(&crate::tasks::Metrics) -> f64| {
        at_least.max(decimals_for_significant_digits(names.iter().map(|(_, m)| column(m)), 3))
    };
    let (d0, d1) = (decimals(4, |m| m.micro_mse), decimals(4, |m| m.mae));
    let (d2, d3) = (decimals(2, |m| m.micro_mse_original), decimals(2, |m| m.mae_original));
    for (name, m) in &names {
        out.push_str(&format!(
            "| {:<width$} | {:>9.d0$} | {:>6.d1$} | {:>14.d2$} | {:>14.d3$} |\n",
            name, m.micro_mse, m.mae, m.micro_mse_original, m.mae_original
        ));
    }
    out
}

/// Per entity (`run::evaluate_by_entity`): the entries scored, the micro MSE of the model,
/// of the model streamed where it has that score, and of each baseline, and the model's over
/// the best baseline's; worst ratio first. The column names come first.
#[allow(clippy::type_complexity)]
fn entity_rows(rows: &[(String, Vec<Score>)]) -> (Vec<String>, Vec<(String, u64, Vec<f64>, f64)>) {
    let Some((_, first)) = rows.first() else { return (Vec::new(), Vec::new()) };
    let streamed = first[0].streamed.is_some();
    let mut columns = vec![first[0].name.clone()];
    if streamed {
        columns.push(format!("{}, streamed", first[0].name));
    }
    columns.extend(first[1..].iter().map(|s| s.name.clone()));
    let mut out: Vec<(String, u64, Vec<f64>, f64)> = rows
        .iter()
        .map(|(entity, scores)| {
            let mut values = vec![scores[0].metrics.micro_mse];
            values.extend(scores[0].streamed.as_ref().map(|m| m.micro_mse));
            values.extend(scores[1..].iter().map(|s| s.metrics.micro_mse));
            let best = scores[1..].iter().map(|s| s.metrics.micro_mse).fold(f64::INFINITY, f64::min);
            (entity.clone(), scores[0].metrics.scored, values, scores[0].metrics.micro_mse / best)
        })
        .collect();
    out.sort_by(|a, b| b.3.total_cmp(&a.3));
    (columns, out)
}

/// Each entity's micro MSE ([`crate::run::evaluate_by_entity`]) as a Markdown table, worst
/// first by the model's micro MSE over the best baseline's: with more than `shown`
/// entities, the `shown / 2` worst and the `shown / 2` best, the others counted between them.
pub fn entity_table(rows: &[(String, Vec<Score>)], shown: usize) -> String {
    let (columns, rows) = entity_rows(rows);
    let columns: Vec<String> = columns.iter().map(|c| markdown_cell(c)).collect();
    let mut out = format!("| entity | scored | {} | model / best baseline |\n", columns.join(" | "));
    out.push_str(&format!("|---|---:|{}---:|\n", "---:|".repeat(columns.len())));
    let line = |(entity, scored, values, ratio): &(String, u64, Vec<f64>, f64)| {
        let cells: Vec<String> = values.iter().map(|v| format!("{v:.4}")).collect();
        format!("| {} | {scored} | {} | {ratio:.3} |\n", markdown_cell(entity), cells.join(" | "))
    };
    let half = shown / 2;
    for (i, row) in rows.iter().enumerate() {
        if rows.len() <= shown || i < half || i >= rows.len() - half {
            out.push_str(&line(row));
        } else if i == half {
            out.push_str(&format!("| … {} more | | {}|\n", rows.len() - 2 * half, "| ".repeat(columns.len())));
        }
    }
    out
}

/// Every entity's row of [`entity_table`], as CSV.
pub fn entity_csv(rows: &[(String, Vec<Score>)]) -> String {
    let (columns, rows) = entity_rows(rows);
    let quoted: Vec<String> = columns.iter().map(|c| csv_quoted(c)).collect();
    let mut out = format!("entity,scored,{},model_over_best_baseline\n", quoted.join(","));
    for (entity, scored, values, ratio) in rows {
        let cells: Vec<String> = values.iter().map(f64::to_string).collect();
        out.push_str(&format!("{},{scored},{},{ratio}\n", csv_quoted(&entity), cells.join(",")));
    }
    out
}

/// Decimals that show the smallest non-zero finite magnitude among `values` with
/// `digits` significant digits (0 when it is at least 10^(digits−1); at most 12).
fn decimals_for_significant_digits(values: impl Iterator<Item = f64>, digits: usize) -> usize {
    let smallest = values.filter(|v| v.is_finite() && *v != 0.0).map(f64::abs).fold(f64::INFINITY, f64::min);
    if !smallest.is_finite() {
        return 0;
    }
    (digits as i64 - 1 - smallest.log10().floor() as i64).clamp(0, 12) as usize
}

/// Closed-loop scores by steps ahead as a Markdown table: the model's micro MSE (and
/// MAE), persistence's, seasonal persistence's where there is one, and the model's ratio
/// to the better of the two; with a band, its coverage and interval score.
pub fn horizon_table(scores: &crate::tasks::HorizonScores) -> String {
    let seasonal = scores.seasonal.as_ref();
    let same_time = seasonal.map(|(period, _)| format!("same time {period} steps back"));
    let mut out = String::from("| steps ahead | model micro MSE | model MAE | persistence micro MSE |");
    let mut rule = String::from("|------------:|----------------:|----------:|----------------------:|");
    if let Some(column) = &same_time {
        out.push_str(&format!(" {column} |"));
        rule.push_str(&format!("{}:|", "-".repeat(column.len() + 1)));
    }
    out.push_str(" model / best baseline |");
    rule.push_str("----------------------:|");
    // the band's coverage (±2σ, sampled or quantile), where its steps have one
    let banded = scores.model.iter().any(|m| m.coverage_2sigma.is_some());
    if banded {
        out.push_str(" model band coverage | band interval score |");
        rule.push_str("--------------------:|--------------------:|");
    }
    out.push('\n');
    rule.push('\n');
    out.push_str(&rule);
    for (h, (m, p)) in scores.model.iter().zip(&scores.persistence).enumerate() {
        let mut best = p.micro_mse;
        out.push_str(&format!("| {:>11} | {:>15.4} | {:>9.4} | {:>21.4} |", h + 1, m.micro_mse, m.mae, p.micro_mse));
        if let (Some((_, same)), Some(column)) = (seasonal, &same_time) {
            let width = column.len();
            out.push_str(&format!(" {:>width$.4} |", same[h].micro_mse));
            best = best.min(same[h].micro_mse);
        }
        out.push_str(&format!(" {:>21.3} |", m.micro_mse / best));
        if banded {
            let score = m.interval_score_2sigma.map_or("—".into(), |s| format!("{s:.4}"));
            out.push_str(&format!(" {:>19} | {score:>19} |", coverage_cell(m)));
        }
        out.push('\n');
    }
    out
}

/// Each signal's test MSE (standardised) at a few steps ahead (1, 3, 6, 12, 24, 48, …
/// up to the horizon, and the horizon itself): the model's, and persistence's in
/// parentheses, as a Markdown table; `signals` names the scored signals in order.
pub fn horizon_signal_table(scores: &crate::tasks::HorizonScores, signals: &[String]) -> String {
    let horizon = scores.model.len();
    let mut steps: Vec<usize> = [1, 3, 6]
        .into_iter()
        .chain(std::iter::successors(Some(12), |s| Some(s * 2)))
        .take_while(|&s| s < horizon)
        .collect();
    steps.push(horizon);
    let mut out =
        format!("| signal | {} |\n", steps.iter().map(|h| format!("{h} ahead")).collect::<Vec<_>>().join(" | "));
    out += &format!("|---|{}\n", "---:|".repeat(steps.len()));
    for (j, name) in signals.iter().enumerate() {
        let cells: Vec<String> = steps
            .iter()
            .map(|&h| {
                let (m, p) = (&scores.model[h - 1], &scores.persistence[h - 1]);
                format!("{:.4} ({:.4})", m.per_signal_mse[j], p.per_signal_mse[j])
            })
            .collect();
        out += &format!("| {} | {} |\n", markdown_cell(name), cells.join(" | "));
    }
    out
}

/// A model's ±2σ coverage as a table cell (— without a band).
fn coverage_cell(m: &crate::tasks::Metrics) -> String {
    m.coverage_2sigma.map_or("—".into(), |c| format!("{:.1} %", 100.0 * c))
}

/// The micro MSE of each model in `models` (name, its metrics 1..=N steps ahead) at the
/// steps ahead in `steps` (and the ±2σ coverage of a model with σ), beside persistence and
/// the same time a period back from `baselines` (any of the models'
/// [`crate::tasks::HorizonScores`]: the baselines are the same for every model on the same
/// part), as Markdown.
pub fn horizon_comparison_table(
    models: &[(String, &[crate::tasks::Metrics])],
    baselines: &crate::tasks::HorizonScores,
    steps: &[usize],
) -> String {
    // (title, metrics, whether the column is the ±2σ coverage)
    let mut columns: Vec<(String, &[crate::tasks::Metrics], bool)> = Vec::new();
    for (name, metrics) in models {
        columns.push((markdown_cell(name), metrics, false));
        if metrics.iter().any(|m| m.coverage_2sigma.is_some()) {
            columns.push(("±2σ coverage".into(), metrics, true));
        }
    }
    columns.push(("persistence".into(), &baselines.persistence, false));
    if let Some((period, same)) = &baselines.seasonal {
        columns.push((format!("same time {period} steps back"), same, false));
    }
    let mut out = String::from("| steps ahead |");
    let mut rule = String::from("|------------:|");
    for (name, ..) in &columns {
        out.push_str(&format!(" {name} |"));
        rule.push_str(&format!("{}:|", "-".repeat(name.chars().count() + 1)));
    }
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    for &h in steps {
        out.push_str(&format!("| {h:>11} |"));
        for (name, metrics, coverage) in &columns {
            let width = name.chars().count();
            let cell = match (metrics.get(h.wrapping_sub(1)), coverage) {
                (Some(m), false) => format!("{:.4}", m.micro_mse),
                (Some(m), true) => coverage_cell(m),
                (None, _) => "—".into(),
            };
            out.push_str(&format!(" {cell:>width$} |"));
        }
        out.push('\n');
    }
    out
}

/// Micro MSE against steps ahead, each model's (name, its metrics 1..=N steps ahead) and
/// the baselines' (from `baselines`, as [`horizon_comparison_table`]), as a PNG.
///
/// # Errors
/// The file cannot be written.
pub fn save_horizon_chart(
    models: &[(String, &[crate::tasks::Metrics])],
    baselines: &crate::tasks::HorizonScores,
    path: &Path,
) -> Result<()> {
    let curve = |metrics: &[crate::tasks::Metrics]| {
        metrics.iter().enumerate().map(|(h, m)| ((h + 1) as f64, m.micro_mse)).collect()
    };
    let mut series: Vec<Series> = models
        .iter()
        .map(|(name, metrics)| Series { name: name.clone(), points: curve(metrics), style: Style::Line })
        .collect();
    series.push(Series {
        name: "persistence (LOCF)".into(),
        points: curve(&baselines.persistence),
        style: Style::Dashed,
    });
    if let Some((period, same)) = &baselines.seasonal {
        series.push(Series {
            name: format!("same time {period} steps back"),
            points: curve(same),
            style: Style::Points,
        });
    }
    LineChart {
        title: match models {
            [(model, _)] => format!("{model}: test micro MSE by steps ahead"),
            _ => "test micro MSE by steps ahead".to_string(),
        },
        x_label: "steps ahead".into(),
        y_label: "micro MSE (standardised)".into(),
        log_y: false,
        series,
        bands: Vec::new(),
    }
    .save(path, 720, 420)
}

/// [`crate::tasks::ErrorsByTime`] as a Markdown table: per group, the scored entries, the
/// model's and the baseline's micro MSE and their ratio, and which of `signals` the model
/// errs on most there, with its MSE (— for a group never scored).
pub fn time_table(errors: &crate::tasks::ErrorsByTime, signals: &[String]) -> String {
    let (what, baseline) = (errors.group.name(), &errors.baseline_name);
    let mut out = format!(
        "| {what} | scored | model micro MSE | {baseline} micro MSE | model / {baseline} | the model's worst signal |\n"
    );
    out.push_str("|---|---:|---:|---:|---:|---|\n");
    let labels = errors.group.labels();
    for ((label, m), p) in labels.iter().zip(&errors.model).zip(&errors.baseline) {
        if m.scored == 0 {
            out.push_str(&format!("| {label} | 0 | — | — | — | — |\n"));
            continue;
        }
        let worst = m.per_signal_mse.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1));
        let worst = worst
            .map_or("—".to_string(), |(j, v)| format!("{} {v:.4}", markdown_cell(signals.get(j).map_or("?", |s| s))));
        out.push_str(&format!(
            "| {label} | {} | {:.4} | {:.4} | {:.3} | {worst} |\n",
            m.scored,
            m.micro_mse,
            p.micro_mse,
            m.micro_mse / p.micro_mse
        ));
    }
    out
}

/// [`crate::tasks::ErrorsByTime`] as a PNG: the model's and the baseline's micro MSE by group.
///
/// # Errors
/// The file cannot be written.
pub fn save_time_chart(errors: &crate::tasks::ErrorsByTime, model: &str, path: &Path) -> Result<()> {
    let curve = |metrics: &[crate::tasks::Metrics]| {
        metrics.iter().enumerate().filter(|(_, m)| m.scored > 0).map(|(g, m)| (g as f64, m.micro_mse)).collect()
    };
    let x_label = match errors.group {
        crate::tasks::TimeGroup::HourOfDay => "hour of the day of the step scored (local time)",
        crate::tasks::TimeGroup::Weekday => "weekday of the step scored (0 = Monday, local time)",
        crate::tasks::TimeGroup::Month => "month of the step scored (0 = January, local time)",
    };
    LineChart {
        title: format!("{model}: test micro MSE by {}", errors.group.name()),
        x_label: x_label.into(),
        y_label: "micro MSE (standardised)".into(),
        log_y: false,
        series: vec![
            Series { name: model.to_string(), points: curve(&errors.model), style: Style::Line },
            Series { name: errors.baseline_name.clone(), points: curve(&errors.baseline), style: Style::Dashed },
        ],
        bands: Vec::new(),
    }
    .save(path, 720, 420)
}

/// One forecast signal (target `signal` of `targets`) of one entity: its last `history`
/// steps (the observed values) and the forecast of the steps after them (`forecast`, from
/// [`PredictionTask::forecast_ahead`]) with its ±2σ band where it has one, against
/// persistence (the last observation, flat), in original units, as a PNG.
///
/// # Errors
/// An unknown entity or target, a forecast of the wrong width, the file cannot be written.
pub fn save_forecast_ahead_chart(
    data: &PreparedSeries,
    entity: &str,
    (forecast, targets): (&crate::tasks::Forecast, &crate::tasks::Targets),
    signal: usize,
    history: usize,
    path: &Path,
) -> Result<()> {
    let c = targets.len();
    let steps = data
        .entities
        .iter()
        .find(|(name, _)| name == entity)
        .map(|(_, r)| r.clone())
        .ok_or_else(|| Error::invalid("entity", format!("no entity `{entity}`")))?;
    let name = targets.names().get(signal).ok_or_else(|| Error::invalid("signal", format!("no target {signal}")))?;
    if forecast.values.is_empty() || !forecast.values.len().is_multiple_of(c) {
        return Err(Error::invalid(
            "forecast",
            format!("{} values are not whole steps of {c} target signals", forecast.values.len()),
        ));
    }
    // x = 0 is the last step of the data
    let from = steps.end.saturating_sub(history).max(steps.start);
    let column = targets.indices()[signal];
    let observed: Vec<(f64, f64)> = (from..steps.end)
        .filter_map(|n| data.original_step(n)[column].map(|v| ((n as f64) - (steps.end - 1) as f64, v as f64)))
        .collect();
    let ahead = |values: &[f32]| -> Vec<(f64, f64)> {
        values.chunks_exact(c).enumerate().map(|(h, row)| ((h + 1) as f64, row[signal] as f64)).collect()
    };
    let mut series = vec![
        Series { name: "observed".into(), points: observed.clone(), style: Style::Points },
        Series { name: "forecast".into(), points: ahead(&forecast.values), style: Style::Line },
    ];
    if let Some(&(_, last)) = observed.last() {
        let flat = (1..=forecast.values.len() / c).map(|h| (h as f64, last)).collect();
        series.push(Series { name: "persistence".into(), points: flat, style: Style::Dashed });
    }
    let bands = match forecast.low.is_empty() {
        true => Vec::new(),
        false => vec![Band {
            name: match forecast.sigma_standardised.is_empty() {
                true => "forecast 2.3-97.7 % quantiles".into(),
                false => "forecast +-2 sigma".into(),
            },
            points: forecast
                .low
                .chunks_exact(c)
                .zip(forecast.high.chunks_exact(c))
                .enumerate()
                .map(|(h, (low, high))| ((h + 1) as f64, low[signal] as f64, high[signal] as f64))
                .collect(),
        }],
    };
    LineChart {
        title: format!(
            "{name} of {entity}: the last {} steps and the next {}",
            steps.end - from,
            forecast.values.len() / c
        ),
        x_label: format!("steps from the end of the data ({} s each)", data.grid.bin_seconds),
        y_label: format!("{name} (original units)"),
        log_y: false,
        series,
        bands,
    }
    .save(path, 900, 420)
}

/// Writes the run folder's report files, atomically each.
///
/// # Errors
/// The folder is not writable.
pub fn write_run_folder(dir: &Path, config: &RunConfig, outcome: &mut RunOutcome, data: &PreparedSeries) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    write_atomically(&dir.join("run.toml"), config.to_toml().as_bytes())?;
    let report = serde_json::json!({
        "best_epoch": outcome.best_epoch,
        "parameters": outcome.parameters,
        "train_seconds": outcome.train_seconds,
        "test": outcome.scores,
    });
    let text = serde_json::to_string_pretty(&report).map_err(|e| Error::invalid("report", e.to_string()))?;
    write_atomically(&dir.join("metrics.json"), text.as_bytes())?;
    outcome.model.save(dir.join("model.safetensors"), Default::default())?;
    FittedScaler::of(data).save_to_run(dir)?;
    loss_chart(outcome, config).save(&dir.join("loss.png"), 800, 450)?;
    per_signal_chart(outcome, &config.scored_signals(&data.grid.signals)).save(
        &dir.join("per_signal.png"),
        1000,
        450,
    )?;
    match config.task.kind {
        TaskKind::Reconstruction => {
            reconstruction_chart(outcome, config, data)?.save(&dir.join("reconstruction.png"), 900, 450)?
        }
        TaskKind::Prediction => forecast_chart(outcome, config, data)?.save(&dir.join("forecast.png"), 1000, 450)?,
    }
    Ok(())
}

/// Test MSE per scored signal (`signals`, standardised) of the model and the strongest
/// baseline, side by side.
fn per_signal_chart(outcome: &RunOutcome, signals: &[String]) -> BarChart {
    let (model, baseline) = (&outcome.scores[0], &outcome.scores[1]);
    let short = |i: usize, name: &str| match (i, name) {
        (0, _) => "model",
        (_, "last observation carried forward") => "LOCF",
        (_, "linear interpolation") => "interp",
        (_, "training mean") => "mean",
        _ => "baseline",
    };
    let bars = signals
        .iter()
        .enumerate()
        .flat_map(|(j, s)| {
            [
                (format!("{s} {}", short(0, &model.name)), model.metrics.per_signal_mse[j], 0.0),
                (format!("{s} {}", short(1, &baseline.name)), baseline.metrics.per_signal_mse[j], 0.0),
            ]
        })
        .collect();
    BarChart {
        title: format!("test MSE per signal (standardised): {} vs {}", model.name, baseline.name),
        y_label: "MSE (standardised)".into(),
        bars,
        group: 2,
        y_max: None,
    }
}

fn loss_chart(outcome: &RunOutcome, config: &RunConfig) -> LineChart {
    let curve = |name: &str, f: &dyn Fn(&crate::train::EpochLog) -> f64| Series {
        name: name.into(),
        points: outcome.log.iter().map(|e| (e.epoch as f64, f(e))).collect(),
        style: Style::Line,
    };
    let what = match config.task.kind {
        TaskKind::Prediction => "prediction (train: masked MSE)",
        TaskKind::Reconstruction => "reconstruction (train: Gaussian NLL per value)",
    };
    LineChart {
        title: format!("{}: loss per epoch", what),
        x_label: "epoch".into(),
        y_label: "loss / validation micro MSE".into(),
        log_y: false,
        series: vec![curve("train loss", &|e| e.train_loss), curve("validation micro MSE", &|e| e.validation)],
        bands: Vec::new(),
    }
}

/// The first forecast signal over the last week (168 steps, fewer if the part is shorter) of the
/// first test range, in original units: the truth where observed, the model's next-step
/// forecasts (streamed when the model is causal, as deployed) with their ±2σ band where the
/// model has a Gaussian head, and last observation carried forward's.
fn forecast_chart(outcome: &RunOutcome, config: &RunConfig, data: &PreparedSeries) -> Result<LineChart> {
    let task =
        PredictionTask::new(data, config.task.window, config.task.residual)?.with_targets(&config.task.targets)?;
    let inputs = config.task.window - 1;
    let range = data.test.iter().find(|r| r.len() > inputs).cloned().unwrap_or_default();
    let targets = range.end.saturating_sub(168).max(range.start + inputs)..range.end;
    let f = task.forecasts(&outcome.model, targets.clone())?;
    let (c, signal) = (task.targets().len(), 0);
    let original = |z: f32| task.targets().scaler().invert(signal, z) as f64;
    let name = &task.targets().names()[signal];
    let line = |name: &str, values: &[f32], style: Style| Series {
        name: name.into(),
        points: (0..targets.len()).map(|i| (i as f64, original(values[i * c + signal]))).collect(),
        style,
    };
    let how = if outcome.model.is_causal() { "streamed, state carried" } else { "each from its window" };
    let bands = match f.low.is_empty() {
        true => Vec::new(),
        false => vec![Band {
            name: match outcome.model.config().head {
                HeadKind::Quantile => "model 2.3-97.7 % quantiles".into(),
                _ => "model +-2 sigma".into(),
            },
            points: (0..targets.len())
                .map(|i| (i as f64, original(f.low[i * c + signal]), original(f.high[i * c + signal])))
                .collect(),
        }],
    };
    Ok(LineChart {
        title: format!("{name}: next-step forecasts, the last {} test steps ({how})", targets.len()),
        x_label: format!("step ({} s each)", data.grid.bin_seconds),
        y_label: format!("{name} (original units)"),
        log_y: false,
        bands,
        series: vec![
            Series {
                name: "truth (observed)".into(),
                points: (0..targets.len())
                    .filter(|&i| f.observed[i * c + signal] > 0.0)
                    .map(|i| (i as f64, original(f.truth[i * c + signal])))
                    .collect(),
                style: Style::Points,
            },
            line(outcome.scores.first().map_or("model", |s| s.name.as_str()), &f.model, Style::Line),
            line("last observation carried forward", &f.persistence, Style::Dashed),
        ],
    })
}

/// The test window with the most hidden values of the first signal, in original units:
/// truth, reconstruction with its ±2σ band, interpolation, the hidden points marked.
fn reconstruction_chart(outcome: &RunOutcome, config: &RunConfig, data: &PreparedSeries) -> Result<LineChart> {
    let task = ReconstructionTask::new(data, config.reconstruction())?;
    let batches = task.evaluation_batches(&data.test)?;
    let batch = &batches[0];
    let (x_hat, precision) = task.reconstruct(&outcome.model, batch)?;
    let (c, signal) = (data.grid.channels(), 0);
    let at = |t: usize, row: usize| (t * batch.batch + row) * c + signal;
    let row = (0..batch.batch)
        .max_by_key(|&r| (0..batch.steps).filter(|&t| batch.hidden[at(t, r)] > 0.0).count())
        .unwrap_or(0);
    let original = |z: f32| data.scaler.invert(signal, z) as f64;
    let name = &data.grid.signals[signal];
    let steps = 0..batch.steps;
    Ok(LineChart {
        title: format!("{name}: reconstruction of values hidden on purpose (test window)"),
        x_label: format!("step in window ({} s each)", data.grid.bin_seconds),
        y_label: format!("{name} (original units)"),
        log_y: false,
        bands: vec![Band {
            name: "model +-2 sigma".into(),
            points: steps
                .clone()
                .map(|t| {
                    let sigma = 1.0 / precision[t * batch.batch + row].sqrt();
                    let (low, high) = data.scaler.band(signal, x_hat[at(t, row)], sigma);
                    (t as f64, low as f64, high as f64)
                })
                .collect(),
        }],
        series: vec![
            Series {
                name: "truth (observed)".into(),
                points: steps
                    .clone()
                    .filter(|&t| batch.visible[at(t, row)] || batch.hidden[at(t, row)] > 0.0)
                    .map(|t| (t as f64, original(batch.target[at(t, row)])))
                    .collect(),
                style: Style::Line,
            },
            Series {
                name: "model".into(),
                points: steps.clone().map(|t| (t as f64, original(x_hat[at(t, row)]))).collect(),
                style: Style::Line,
            },
            Series {
                name: "linear interpolation".into(),
                points: steps.clone().map(|t| (t as f64, original(batch.interpolated[at(t, row)]))).collect(),
                style: Style::Dashed,
            },
            Series {
                name: "hidden on purpose".into(),
                points: steps
                    .filter(|&t| batch.hidden[at(t, row)] > 0.0)
                    .map(|t| (t as f64, original(batch.target[at(t, row)])))
                    .collect(),
                style: Style::Points,
            },
        ],
    })
}

/// The series of every entity with each missing value filled by the model and a ±2σ band
/// from λ̂, as CSV: `entity,time` (the grid step's start, as the data wrote it: a UTC
/// calendar time, or the time elapsed since the entity's start) and per signal `x` (observed, or filled), `x_filled` (1 where filled),
/// `x_low`, `x_high` (the band, for filled values only; scaled by `calibration` where
/// given) — original units.
///
/// # Errors
/// An entity shorter than a window, or a model that does not fit.
pub fn filled_series_csv(
    config: &RunConfig,
    data: &PreparedSeries,
    model: &crate::model::SequenceModel<f32>,
    calibration: Option<BandCalibration>,
) -> Result<String> {
    let task = ReconstructionTask::new(data, config.reconstruction())?.with_calibration(calibration);
    let c = data.grid.channels();
    let mut out = String::from("entity,time");
    for s in &data.grid.signals {
        for column in [s.clone(), format!("{s}_filled"), format!("{s}_low"), format!("{s}_high")] {
            out.push_str(&format!(",{}", csv_quoted(&column)));
        }
    }
    out.push('\n');
    for (e, (name, steps)) in data.entities.iter().enumerate() {
        let (x_hat, sigma) = task.fill(model, steps.clone())?;
        let name = csv_quoted(name);
        for (i, n) in steps.clone().enumerate() {
            out.push_str(&format!("{name},{}", data.time_label(e, i)));
            for j in 0..c {
                if data.grid.observed[n * c + j] {
                    out.push_str(&format!(",{},0,,", data.original[n * c + j]));
                } else {
                    let z = x_hat[i * c + j];
                    let (low, high) = data.scaler.band(j, z, sigma[i * c + j]);
                    out.push_str(&format!(",{},1,{low},{high}", data.scaler.invert(j, z)));
                }
            }
            out.push('\n');
        }
    }
    Ok(out)
}

/// Per target of `targets`: the values scored, how many each detector scores above
/// `threshold` (and their share), and the model's most surprising value with its time and
/// the value expected, as a Markdown table.
pub fn anomaly_table(scored: &[ScoredValue], data: &PreparedSeries, targets: &[String], threshold: f32) -> String {
    let mut out = format!(
        "| signal | values | model s > {threshold} | persistence > {threshold} | level > {threshold} | flatline > {threshold} | the most surprising (s, time: value, expected) |\n"
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---|\n");
    for (t, name) in targets.iter().enumerate() {
        let of_target: Vec<&ScoredValue> = scored.iter().filter(|v| v.target == t).collect();
        let cell = |d: Detector| {
            let n = of_target.iter().filter(|v| d.of(v) > threshold).count();
            format!("{n} ({:.2} %)", 100.0 * n as f64 / of_target.len().max(1) as f64)
        };
        let top = of_target.iter().max_by(|a, b| a.surprise.total_cmp(&b.surprise));
        let top = top.map_or("—".to_string(), |v| {
            let (entity, time) = data.step_label(v.step);
            let at = if data.entities.len() > 1 { format!("{} {time}", markdown_cell(entity)) } else { time };
            format!("{:.1}, {at}: {}, {:.4}", v.surprise, v.value, v.expected)
        });
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {top} |\n",
            markdown_cell(name),
            of_target.len(),
            cell(Detector::Model),
            cell(Detector::Persistence),
            cell(Detector::Level),
            cell(Detector::Flatline)
        ));
    }
    out
}

/// Each detector's threshold per target in its own score (the score above which the
/// validation part's fraction `scales.rate` of the target's values lie), as a Markdown table.
pub fn alarm_threshold_table(scales: &AlarmScales, targets: &[String]) -> String {
    let names: Vec<&str> = Detector::ALL.iter().map(|d| d.short_name()).collect();
    let mut out = format!("| signal | {} |\n", names.join(" | "));
    out.push_str(&format!("|---|{}\n", "---:|".repeat(names.len())));
    for (t, name) in targets.iter().enumerate() {
        let cells: Vec<String> = Detector::ALL.iter().map(|&d| format!("{:.2}", scales.raw_threshold(d, t))).collect();
        out.push_str(&format!("| {} | {} |\n", markdown_cell(name), cells.join(" | ")));
    }
    out
}

/// Per entity of `data` with a value scored: the values scored, how many the model scores
/// above `threshold` (and their share), and its most surprising value (signal, time,
/// surprise), the `shown` entities with the largest share first, as a Markdown table.
pub fn anomaly_entity_table(
    scored: &[ScoredValue],
    data: &PreparedSeries,
    targets: &[String],
    threshold: f32,
    shown: usize,
) -> String {
    let mut rows: Vec<(usize, usize, usize, Option<&ScoredValue>)> = Vec::new();
    for v in scored {
        let e = data.entity_index(v.step);
        if rows.last().is_none_or(|r| r.0 != e) {
            rows.push((e, 0, 0, None));
        }
        let row = rows.last_mut().expect("pushed above");
        row.1 += 1;
        row.2 += usize::from(v.surprise > threshold);
        if row.3.is_none_or(|top| v.surprise > top.surprise) {
            row.3 = Some(v);
        }
    }
    let share = |r: &(usize, usize, usize, Option<&ScoredValue>)| r.2 as f64 / r.1.max(1) as f64;
    rows.sort_by(|a, b| share(b).total_cmp(&share(a)));
    let mut out = format!("| entity | values | model s > {threshold} | the most surprising (signal, time, s) |\n");
    out.push_str("|---|---:|---:|---|\n");
    for r in rows.iter().take(shown) {
        let top = r.3.map_or("—".to_string(), |v| {
            format!("{} {}, {:.1}", markdown_cell(&targets[v.target]), data.step_label(v.step).1, v.surprise)
        });
        out.push_str(&format!(
            "| {} | {} | {} ({:.2} %) | {top} |\n",
            markdown_cell(&data.entities[r.0].0),
            r.1,
            r.2,
            100.0 * share(r)
        ));
    }
    out
}

/// The values the detectors `recur stream --flag` runs — the model and the flatline rule —
/// score above `threshold`, in step order, as CSV:
/// `entity,time,signal,value,expected,low,high,surprise,persistence,level,flatline`
/// (original units; the four scores as [`crate::tasks::anomaly`] defines them).
pub fn anomalies_csv(scored: &[ScoredValue], data: &PreparedSeries, targets: &[String], threshold: f32) -> String {
    let mut out = String::from("entity,time,signal,value,expected,low,high,surprise,persistence,level,flatline\n");
    for v in scored.iter().filter(|v| v.is_flagged(threshold)) {
        let (entity, time) = data.step_label(v.step);
        out.push_str(&format!(
            "{},{time},{},{},{},{},{},{},{},{},{}\n",
            csv_quoted(entity),
            csv_quoted(&targets[v.target]),
            v.value,
            v.expected,
            v.low,
            v.high,
            v.surprise,
            v.persistence,
            v.level,
            v.flatline
        ));
    }
    out
}

/// Per target: its flagged values, the [`Episode`]s they make, the median steps an episode
/// spans, the longest (its first step's time, its steps) and the strongest (its peak's time
/// and score), as a Markdown table.
pub fn episode_table(episodes: &[Episode], data: &PreparedSeries, targets: &[String]) -> String {
    let mut out = String::from(
        "| signal | values flagged | episodes | median steps spanned | the longest (from, steps) | the strongest (time, score) |\n",
    );
    out.push_str("|---|---:|---:|---:|---|---|\n");
    let at = |step: usize| {
        let (entity, time) = data.step_label(step);
        if data.entities.len() > 1 {
            format!("{} {time}", markdown_cell(entity))
        } else {
            time
        }
    };
    for (t, name) in targets.iter().enumerate() {
        let of_target: Vec<&Episode> = episodes.iter().filter(|e| e.target == t).collect();
        let median = median_steps(of_target.iter().map(|e| e.steps()).collect());
        let longest = of_target.iter().max_by_key(|e| (e.steps(), std::cmp::Reverse(e.first)));
        let strongest = of_target.iter().max_by(|a, b| a.peak.total_cmp(&b.peak).then(b.first.cmp(&a.first)));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            markdown_cell(name),
            of_target.iter().map(|e| e.flagged).sum::<usize>(),
            of_target.len(),
            median.map_or("—".to_string(), |m| format!("{m:.1}")),
            longest.map_or("—".to_string(), |e| format!("{}, {}", at(e.first), e.steps())),
            strongest.map_or("—".to_string(), |e| format!("{}, {:.1}", at(e.peak_step), e.peak)),
        ));
    }
    out
}

/// Every episode, in order, as CSV: its entity and signal, the times of its first and last
/// flagged steps, the steps it spans, its values flagged (by the model, by the flatline
/// rule), and its peak's time and score.
pub fn episodes_csv(episodes: &[Episode], data: &PreparedSeries, targets: &[String]) -> String {
    let mut out = String::from("entity,signal,start,end,steps,flagged,model,flatline,peak_time,peak\n");
    for e in episodes {
        let (entity, start) = data.step_label(e.first);
        let time = |step: usize| data.step_label(step).1;
        out.push_str(&format!(
            "{},{},{start},{},{},{},{},{},{},{}\n",
            csv_quoted(entity),
            csv_quoted(&targets[e.target]),
            time(e.last),
            e.steps(),
            e.flagged,
            e.by_model,
            e.by_flatline,
            time(e.peak_step),
            e.peak
        ));
    }
    out
}

/// Each detector's [`crate::tasks::anomaly::Detection`] of the faults injected, pooled over the targets, as a
/// Markdown table.
pub fn detection_table(detections: &Detections, threshold: f32) -> String {
    let mut out =
        format!("| detector | ROC AUC | average precision | flagged (> {threshold}) | precision | recall |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|\n");
    for (d, m) in &detections.pooled {
        out.push_str(&format!(
            "| {} | {:.4} | {:.4} | {} | {:.3} | {:.3} |\n",
            d.name(),
            m.auc,
            m.average_precision,
            m.flagged,
            m.precision(),
            m.recall()
        ));
    }
    out
}

/// Each detector's [`crate::tasks::anomaly::EventDetection`] of the faults injected: the
/// share found above `threshold`, the median steps to the first flag, and the values
/// outside the faults it flags, per 1,000, as a Markdown table.
pub fn fault_event_table(detections: &Detections, threshold: f32) -> String {
    let mut out = format!(
        "| detector | faults found (> {threshold}) | median steps to the first flag | flags outside the faults, per 1,000 values | found at 1 flag per 1,000 outside (median steps) |\n"
    );
    out.push_str("|---|---:|---:|---:|---:|\n");
    let delay =
        |e: &crate::tasks::anomaly::EventDetection| e.median_delay().map_or("—".to_string(), |m| format!("{m:.1}"));
    for ((d, e), (_, at_rate)) in detections.events.iter().zip(&detections.events_at_false_alarm_rate) {
        out.push_str(&format!(
            "| {} | {} of {} ({:.1} %) | {} | {:.2} | {:.1} % ({}) |\n",
            d.name(),
            e.delays.len(),
            e.events,
            100.0 * e.found(),
            delay(e),
            e.false_alarms_per_1000(),
            100.0 * at_rate.found(),
            delay(at_rate)
        ));
    }
    out
}

/// Each target's faults and each detector's average precision (and ROC AUC) on the
/// target's values alone, as a Markdown table (— where a target has no fault).
pub fn detection_signal_table(detections: &Detections, targets: &[String]) -> String {
    let names: Vec<&str> = Detector::ALL.iter().map(|d| d.short_name()).collect();
    let mut out = format!(
        "| signal | faults | {} |\n",
        names.iter().map(|n| format!("{n} AP (AUC)")).collect::<Vec<_>>().join(" | ")
    );
    out.push_str(&format!("|---|---:|{}\n", "---:|".repeat(names.len())));
    for (name, row) in targets.iter().zip(&detections.per_target) {
        let faults = row.iter().flatten().map(|m| m.faults).next().unwrap_or(0);
        let cells: Vec<String> = row
            .iter()
            .map(|m| m.map_or("—".to_string(), |m| format!("{:.3} ({:.4})", m.average_precision, m.auc)))
            .collect();
        out.push_str(&format!("| {} | {faults} | {} |\n", markdown_cell(name), cells.join(" | ")));
    }
    out
}

/// The [`Episode`]s of the entity with the most of them, one lane per target, over its
/// range of `part` (in days, or hours where it spans under three days), coloured by what
/// flagged them — the model, the flatline rule, or both — as a PNG.
///
/// # Errors
/// The file cannot be written.
pub fn save_episode_chart(
    episodes: &[Episode],
    data: &PreparedSeries,
    part: &[Range<usize>],
    targets: &[String],
    path: &Path,
) -> Result<()> {
    let mut per_entity = vec![0usize; data.entities.len().max(1)];
    for e in episodes {
        if let Some(count) = per_entity.get_mut(e.entity) {
            *count += 1;
        }
    }
    let entity = (0..per_entity.len()).max_by_key(|&i| (per_entity[i], std::cmp::Reverse(i))).unwrap_or(0);
    let range = part.iter().find(|r| data.entity_index(r.start) == entity).cloned().unwrap_or(0..1);
    let hours = (range.len() as i64 * data.grid.bin_seconds) as f64 / 3600.0;
    let (unit, per) = if hours >= 72.0 { ("days", 86_400.0) } else { ("hours", 3_600.0) };
    let x = |step: usize| (step as f64 - range.start as f64) * data.grid.bin_seconds as f64 / per;
    let (name, start) = data.step_label(range.start);
    let spans = episodes
        .iter()
        .filter(|e| e.entity == entity)
        .map(|e| {
            let kind = match (e.by_model > 0, e.by_flatline > 0) {
                (true, false) => 0,
                (false, true) => 1,
                _ => 2,
            };
            (e.target, kind, x(e.first), x(e.last + 1))
        })
        .collect();
    let of = if data.entities.len() > 1 { format!(" of {name}") } else { String::new() };
    TimelineChart {
        title: format!("alarm episodes{of}: {} (a signal's flags close together, one alarm)", per_entity[entity]),
        x_label: format!("{unit} from {start}"),
        x_range: (0.0, x(range.end)),
        lanes: targets.to_vec(),
        kinds: vec!["the model".into(), "the flatline rule".into(), "both".into()],
        spans,
    }
    .save(path, 1000, (110 + 26 * targets.len()).max(300))
}

/// The model's most surprising value (of target `target`, or of any) and the days around
/// it (its target, its entity; 72 steps before it and 24 after, those scored): the values,
/// the values expected with their band (`expected` says what they are), and the values
/// scored above `threshold` marked, in original units, as a PNG.
///
/// # Errors
/// Nothing scored (of that target); the file cannot be written.
pub fn save_anomaly_chart(
    scored: &[ScoredValue],
    data: &PreparedSeries,
    (targets, target): (&[String], Option<usize>),
    (threshold, expected): (f32, &str),
    path: &Path,
) -> Result<()> {
    let top = scored
        .iter()
        .filter(|v| target.is_none_or(|t| v.target == t))
        .max_by(|a, b| a.surprise.total_cmp(&b.surprise))
        .ok_or_else(|| Error::invalid("anomaly chart", "no value was scored"))?;
    let entity = data.entity_of(top.step);
    let near = |v: &&ScoredValue| {
        v.target == top.target && entity.contains(&v.step) && v.step + 72 >= top.step && v.step <= top.step + 24
    };
    let shown: Vec<&ScoredValue> = scored.iter().filter(near).collect();
    let x = |v: &ScoredValue| v.step as f64 - top.step as f64;
    let (name, (_, time)) = (&targets[top.target], data.step_label(top.step));
    LineChart {
        title: format!(
            "{name}: the most surprising value, {time}: {} where {:.4} was expected (s = {:.1})",
            top.value, top.expected, top.surprise
        ),
        x_label: format!("steps from it ({} s each)", data.grid.bin_seconds),
        y_label: format!("{name} (original units)"),
        log_y: false,
        bands: vec![Band {
            name: "its band".into(),
            points: shown.iter().map(|v| (x(v), f64::from(v.low), f64::from(v.high))).collect(),
        }],
        series: vec![
            Series {
                name: "value".into(),
                points: shown.iter().map(|v| (x(v), f64::from(v.value))).collect(),
                style: Style::Line,
            },
            Series {
                name: expected.into(),
                points: shown.iter().map(|v| (x(v), f64::from(v.expected))).collect(),
                style: Style::Dashed,
            },
            Series {
                name: format!("surprise above {threshold}"),
                points: shown.iter().filter(|v| v.surprise > threshold).map(|v| (x(v), f64::from(v.value))).collect(),
                style: Style::Points,
            },
        ],
    }
    .save(path, 900, 420)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::anomaly::tests::scored_value;
    use crate::tasks::prediction::tests::ramps;
    use crate::tasks::{HorizonScores, Metrics};

    #[test]
    fn a_name_stays_in_its_markdown_cell() {
        assert_eq!(markdown_cell("pi:160220|average"), "pi:160220\\|average");
        assert_eq!(markdown_cell("two\r\nlines"), "two  lines");
        assert_eq!(markdown_cell("TEMP, °C"), "TEMP, °C");
    }

    #[test]
    fn the_entity_table_counts_each_entitys_flags_and_puts_the_largest_share_first() {
        // synthetic ramps cut into two entities of 50 steps
        let mut data = ramps();
        data.entities = vec![("a".into(), 0..50), ("b".into(), 50..100)];
        data.entity_starts = vec![0, 50 * 60];
        let value = |step: usize, surprise: f32| scored_value(step, step % 2, [surprise, 0.0, 0.0, 0.0]);
        let scored = [value(10, 5.0), value(21, 1.0), value(60, 9.0), value(71, 9.5), value(80, 0.5)];
        let targets = ["x".to_string(), "y".to_string()];
        let table = anomaly_entity_table(&scored, &data, &targets, 4.0, 10);
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(rows.len(), 2, "{table}");
        assert!(rows[0].starts_with("| b | 3 | 2 (66.67 %) | y "), "{table}");
        assert!(rows[0].ends_with(", 9.5 |"), "{table}");
        assert!(rows[1].starts_with("| a | 2 | 1 (50.00 %) | x "), "{table}");
        assert_eq!(anomaly_entity_table(&scored, &data, &targets, 4.0, 1).lines().count(), 3);
    }

    fn scored(micro_mse: f64, coverage_2sigma: Option<f64>) -> Metrics {
        Metrics { scored: 10, micro_mse, coverage_2sigma, ..Metrics::default() }
    }

    #[test]
    fn the_comparison_table_puts_each_model_beside_the_baselines_and_a_band_beside_its_model() {
        let closed = [scored(0.2, None), scored(0.5, None)];
        let direct = [scored(0.21, Some(0.974)), scored(0.4, Some(0.963))];
        let baselines = HorizonScores {
            model: direct.to_vec(),
            persistence: vec![scored(0.3, None), scored(0.6, None)],
            seasonal: Some((24, vec![scored(0.9, None), scored(0.95, None)])),
        };
        let models = [("closed".to_string(), &closed[..]), ("direct".to_string(), &direct[..])];
        let table = horizon_comparison_table(&models, &baselines, &[1, 2, 3]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "| steps ahead | closed | direct | ±2σ coverage | persistence | same time 24 steps back |"
        );
        assert_eq!(
            lines[2],
            "|           1 | 0.2000 | 0.2100 |       97.4 % |      0.3000 |                  0.9000 |"
        );
        assert_eq!(
            lines[3],
            "|           2 | 0.5000 | 0.4000 |       96.3 % |      0.6000 |                  0.9500 |"
        );
        // a step past what was scored: a dash in every column
        assert_eq!(lines[4].matches('—').count(), 5, "{}", lines[4]);
    }

    #[test]
    fn score_columns_keep_three_significant_digits_of_their_smallest_value() {
        // a suction pressure in barg: errors of a few hundredths in original units
        let score = |name: &str, mse: f64, mae: f64, scale: f64| Score {
            name: name.into(),
            metrics: Metrics {
                mae,
                micro_mse_original: mse * scale * scale,
                mae_original: mae * scale,
                ..scored(mse, None)
            },
            coverage_2sigma: None,
            streamed: None,
        };
        let table = score_table(&[score("GRU", 0.0024, 0.0382, 0.94), score("training mean", 2.0236, 1.4214, 0.94)]);
        let row = table.lines().nth(2).unwrap();
        assert!(row.ends_with("|   0.00240 | 0.0382 |        0.00212 |         0.0359 |"), "{table}");
        // Beijing-sized errors keep the usual 4 and 2 decimals
        let table = score_table(&[score("GRU", 0.1814, 0.2513, 80.0)]);
        assert!(
            table.lines().nth(2).unwrap().ends_with("|    0.1814 | 0.2513 |        1160.96 |          20.10 |"),
            "{table}"
        );
        assert_eq!(decimals_for_significant_digits([0.0, f64::NAN].into_iter(), 3), 0);
    }
}
