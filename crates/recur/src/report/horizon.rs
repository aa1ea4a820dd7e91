//! Forecasts hours ahead as tables and charts: scores by steps ahead against persistence,
//! per signal, models side by side, errors by time of day, a forecast past the data.

use std::path::Path;

use super::markdown_cell;
use crate::data::PreparedSeries;
use crate::error::{Error, Result};
use crate::plot::{Band, LineChart, Series, Style};

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
///
/// [`PredictionTask::forecast_ahead`]: crate::tasks::PredictionTask::forecast_ahead
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
