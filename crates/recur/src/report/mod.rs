//! What a run leaves behind and prints: a run folder (`run.toml` with every default
//! resolved, `metrics.json`, `model.safetensors`, `scaler.json` (what serving the model needs
//! of its data: [`FittedScaler`]), `loss.png`, `per_signal.png`, and for reconstruction
//! `reconstruction.png`, for prediction `forecast.png`; the trainer adds `epochs.jsonl` and `checkpoint.safetensors`),
//! and the score table.

mod anomaly;
mod horizon;

pub use anomaly::{
    alarm_threshold_table, anomalies_csv, anomaly_entity_table, anomaly_table, detection_signal_table, detection_table,
    episode_table, episodes_csv, fault_event_table, fleet_episode_timeline, save_anomaly_chart, save_episode_chart,
    save_fleet_episode_chart, FLEET_LANES,
};
pub use horizon::{
    horizon_comparison_table, horizon_signal_table, horizon_table, save_forecast_ahead_chart, save_horizon_chart,
    save_time_chart, time_table,
};

use std::path::Path;

use crate::data::{csv_quoted, FittedScaler, PreparedSeries};
use crate::error::{Error, Result};
use crate::io::write_atomically;
use crate::model::HeadKind;
use crate::plot::{Band, BarChart, LineChart, Series, Style};
use crate::run::{RunConfig, RunOutcome, Score, TaskKind};
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
    fn the_fleet_timeline_gives_each_entity_with_episodes_a_lane_most_first_on_one_clock() {
        // synthetic ramps (one-minute steps) cut into three entities, the third's clock
        // starting 10 minutes after the others'; their test parts 20..30, 50..60, 80..100
        let mut data = ramps();
        data.entities = vec![("a".into(), 0..30), ("b".into(), 30..60), ("c".into(), 60..100)];
        data.entity_starts = vec![0, 0, 600];
        let part = [20..30, 50..60, 80..100];
        let episode = |entity, (first, last), (by_model, by_flatline)| crate::tasks::anomaly::Episode {
            target: 0,
            entity,
            first,
            last,
            flagged: 1,
            by_model,
            by_flatline,
            peak: 5.0,
            peak_step: first,
        };
        let found = [episode(0, (22, 23), (1, 0)), episode(2, (85, 85), (0, 1)), episode(2, (90, 92), (1, 1))];
        let chart = fleet_episode_timeline(&found, &data, &part).unwrap();
        assert_eq!(chart.lanes, ["c (2)", "a (1)"], "b has none");
        assert_eq!(chart.title, "alarm episodes by entity: 2 entities with any (3 episodes in all)");
        assert!(chart.x_label.starts_with("hours from "), "{}", chart.x_label);
        // hours from a's test part's start (1,200 s): a's 22nd minute to its 23rd's end;
        // c's 25th minute (600 + 1,500 s), its 30th to 32nd; a part's end is its last bin's
        let hours = |seconds: i64| seconds as f64 / 3600.0;
        // longest first
        let want = [(0, 2, hours(1200), hours(1380)), (1, 0, hours(120), hours(240)), (0, 1, hours(900), hours(960))];
        assert_eq!(chart.spans.len(), want.len());
        for (got, want) in chart.spans.iter().zip(want) {
            assert_eq!((got.0, got.1), (want.0, want.1));
            assert!((got.2 - want.2).abs() < 1e-12 && (got.3 - want.3).abs() < 1e-12, "{got:?} against {want:?}");
        }
        assert!((chart.x_range.1 - hours(1800)).abs() < 1e-12, "{:?}", chart.x_range);
        assert!(fleet_episode_timeline(&found[1..], &data, &part).is_none(), "one entity: its own timeline serves");
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
