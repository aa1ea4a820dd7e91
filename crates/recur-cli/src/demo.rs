//! `recur demo` and `recur inspect`: the bundled Beijing prediction run, and a look at files.

use std::path::{Path, PathBuf};

use recur::data::{align_to_grid, read_wide_csv, Aggregation, PreparedSeries, SplitFractions, WideCsvOptions};
use recur::io::write_atomically;
use recur::plot::{Band, LineChart, Series, Style};
use recur::tasks::{
    prediction_baselines, train_prediction, train_reconstruction, Metrics, PredictionConfig, PredictionTask,
    ReconstructionConfig, ReconstructionTask,
};
use recur::train::TrainConfig;

use crate::args::Args;

/// Where the bundled data lives: `data/` under the current folder, else the repository's.
fn bundled(relative: &str) -> PathBuf {
    let here = PathBuf::from(relative);
    if here.exists() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative)
}

const BEIJING: &str = "data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv";

fn beijing_options() -> WideCsvOptions {
    WideCsvOptions { signals: Vec::new(), drop: vec!["No".into(), "wd".into(), "station".into()] }
}

fn metrics_row(name: &str, m: &Metrics) -> String {
    format!(
        "| {name:<34} | {:>10.4} | {:>9.4} | {:>14.2} | {:>9.2} |",
        m.micro_mse, m.mae, m.micro_mse_original, m.mae_original
    )
}

pub fn demo(args: &Args) -> Result<(), String> {
    let known = ["data", "epochs", "threads", "out"];
    let data = PathBuf::from(args.get("data", &known, bundled(BEIJING).display().to_string())?);
    let epochs = args.get("epochs", &known, 30usize)?;
    let threads = args.get("threads", &known, 2usize)?;
    let out = PathBuf::from(args.get("out", &known, "runs/demo".to_string())?);
    let started = std::time::Instant::now();

    let series = read_wide_csv(&data, &beijing_options()).map_err(|e| e.to_string())?;
    let grid = align_to_grid(&series, 3600, Aggregation::Mean).map_err(|e| e.to_string())?;
    let prepared = PreparedSeries::new(grid, SplitFractions::default()).map_err(|e| e.to_string())?;
    let c = prepared.grid.channels();
    println!("data: {} ({} hourly steps, {} signals; split 60/20/20 in time)", data.display(), prepared.grid.len(), c);
    let missing = series.missing_fraction();
    println!(
        "missing: {}",
        series
            .signals
            .iter()
            .zip(&missing)
            .map(|(s, m)| format!("{s} {:.1}%", 100.0 * m))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let config = PredictionConfig {
        train: TrainConfig { epochs, threads, ..TrainConfig::default() },
        ..PredictionConfig::default()
    };
    println!(
        "task: predict all {c} signals at the next hour from the previous {} hours; {:?} encoder, H={}, {} epochs max",
        config.window - 1,
        config.cell,
        config.hidden_size,
        config.train.epochs
    );
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut trained = train_prediction(&prepared, &config, Some(&out)).map_err(|e| e.to_string())?;
    let task = PredictionTask::new(&prepared, config.window, config.residual).map_err(|e| e.to_string())?;
    let test = task.evaluate(&trained.model, &prepared.test).map_err(|e| e.to_string())?;
    let baselines = prediction_baselines(&prepared, &prepared.test, config.window).map_err(|e| e.to_string())?;
    let validation_locf =
        prediction_baselines(&prepared, &prepared.validation, config.window).map_err(|e| e.to_string())?[0].1.micro_mse;

    println!();
    println!("test part: {} scored values (observed targets only), best epoch {}", test.scored, trained.best_epoch);
    println!("| model                              | micro MSE  | MAE       | MSE (original) | MAE (orig) |");
    println!("|------------------------------------|-----------:|----------:|---------------:|-----------:|");
    println!("{}", metrics_row(&format!("{:?} (recur)", config.cell), &test));
    for (name, m) in &baselines {
        println!("{}", metrics_row(name, m));
    }
    println!("(micro MSE and MAE in standardised units: 1.0 = predicting the training mean's spread)");
    println!();
    println!("per-signal MSE, standardised (model vs last observation carried forward):");
    let locf = &baselines[0].1;
    for (j, s) in prepared.grid.signals.iter().enumerate() {
        println!("  {s:<6} {:>7.4} vs {:>7.4}", test.per_signal_mse[j], locf.per_signal_mse[j]);
    }

    let report = serde_json::json!({
        "data": data.display().to_string(), "config": config, "best_epoch": trained.best_epoch,
        "test": test, "baselines": baselines.iter().map(|(n, m)| serde_json::json!({"name": n, "metrics": m})).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    write_atomically(&out.join("metrics.json"), text.as_bytes()).map_err(|e| e.to_string())?;
    trained.model.save(out.join("model.safetensors"), Default::default()).map_err(|e| e.to_string())?;
    let curve = |name: &str, f: &dyn Fn(&recur::train::EpochLog) -> f64| Series {
        name: name.into(),
        points: trained.log.iter().map(|e| (e.epoch as f64, f(e))).collect(),
        style: Style::Line,
    };
    LineChart {
        title: "Beijing next-hour prediction: loss per epoch".into(),
        x_label: "epoch".into(),
        y_label: "masked MSE (standardised)".into(),
        log_y: false,
        bands: Vec::new(),
        series: vec![
            curve("train loss", &|e| e.train_loss),
            curve("validation micro MSE", &|e| e.validation),
            Series {
                name: "validation LOCF".into(),
                points: vec![(1.0, validation_locf), (trained.log.len() as f64, validation_locf)],
                style: Style::Dashed,
            },
        ],
    }
    .save(&out.join("loss.png"), 800, 450)
    .map_err(|e| e.to_string())?;
    println!();
    println!(
        "wrote {}/metrics.json, epochs.jsonl, loss.png, model.safetensors (PyTorch names), checkpoint.safetensors",
        out.display()
    );

    reconstruction_demo(&prepared, epochs, threads, &out.join("reconstruction"))?;
    println!("\ndone in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The deck's second task on the same data: reconstruct values hidden on purpose.
fn reconstruction_demo(prepared: &PreparedSeries, epochs: usize, threads: usize, out: &Path) -> Result<(), String> {
    let config = ReconstructionConfig {
        train: TrainConfig { epochs, max_batches_per_epoch: 100, threads, patience: 50, ..TrainConfig::default() },
        ..ReconstructionConfig::default()
    };
    println!();
    println!(
        "task: reconstruct values hidden on purpose (missingness diffusion: isolated points to gaps of up to {} h across several signals) in {}-hour windows; BiGRU, Gaussian head",
        (config.corruption.gap_fraction * config.window as f64) as usize,
        config.window
    );
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut report = train_reconstruction(prepared, &config, Some(out)).map_err(|e| e.to_string())?;
    let task = ReconstructionTask::new(prepared, config.clone()).map_err(|e| e.to_string())?;
    let scores = task.evaluate(Some(&report.model), &prepared.test).map_err(|e| e.to_string())?;
    println!();
    println!("test part: {} values hidden on purpose, the same for every method", scores[0].metrics.scored);
    println!("| method                             | micro MSE  | MAE       | MSE (original) | MAE (orig) |");
    println!("|------------------------------------|-----------:|----------:|---------------:|-----------:|");
    for s in &scores {
        println!("{}", metrics_row(&s.name, &s.metrics));
    }
    if let Some(c) = scores[0].coverage_2sigma {
        println!(
            "{:.1} % of the hidden values lie inside the model's ±2σ band (σ = 1/√λ̂; 95.4 % if calibrated)",
            100.0 * c
        );
    }

    // a test window with the most hidden values of the first signal, in original units
    let c = prepared.grid.channels();
    let batches = task.evaluation_batches(&prepared.test).map_err(|e| e.to_string())?;
    let batch = &batches[0];
    let (x_hat, precision) = task.reconstruct(&report.model, batch).map_err(|e| e.to_string())?;
    let signal = 0;
    let at = |t: usize, row: usize| (t * batch.batch + row) * c + signal;
    let row = (0..batch.batch)
        .max_by_key(|&r| (0..batch.steps).filter(|&t| batch.hidden[at(t, r)] > 0.0).count())
        .unwrap_or(0);
    let original = |z: f32| prepared.scaler.invert(signal, z) as f64;
    let observed = |t: usize| batch.visible[at(t, row)] || batch.hidden[at(t, row)] > 0.0;
    let std = prepared.scaler.std[signal] as f64;
    let name = &prepared.grid.signals[signal];
    LineChart {
        title: format!("{name}: reconstruction of values hidden on purpose (test window)"),
        x_label: "hour in window".into(),
        y_label: format!("{name} (original units)"),
        log_y: false,
        bands: vec![Band {
            name: "model +-2 sigma".into(),
            points: (0..batch.steps)
                .map(|t| {
                    let (m, s) =
                        (original(x_hat[at(t, row)]), 2.0 * std / (precision[t * batch.batch + row] as f64).sqrt());
                    (t as f64, m - s, m + s)
                })
                .collect(),
        }],
        series: vec![
            Series {
                name: "truth (observed)".into(),
                points: (0..batch.steps)
                    .filter(|&t| observed(t))
                    .map(|t| (t as f64, original(batch.target[at(t, row)])))
                    .collect(),
                style: Style::Line,
            },
            Series {
                name: "model".into(),
                points: (0..batch.steps).map(|t| (t as f64, original(x_hat[at(t, row)]))).collect(),
                style: Style::Line,
            },
            Series {
                name: "linear interpolation".into(),
                points: (0..batch.steps).map(|t| (t as f64, original(batch.interpolated[at(t, row)]))).collect(),
                style: Style::Dashed,
            },
            Series {
                name: "hidden on purpose".into(),
                points: (0..batch.steps)
                    .filter(|&t| batch.hidden[at(t, row)] > 0.0)
                    .map(|t| (t as f64, original(batch.target[at(t, row)])))
                    .collect(),
                style: Style::Points,
            },
        ],
    }
    .save(&out.join("reconstruction.png"), 900, 450)
    .map_err(|e| e.to_string())?;
    let report_json = serde_json::json!({ "config": config, "best_epoch": report.best_epoch, "test": scores });
    let text = serde_json::to_string_pretty(&report_json).map_err(|e| e.to_string())?;
    write_atomically(&out.join("metrics.json"), text.as_bytes()).map_err(|e| e.to_string())?;
    report.model.save(out.join("model.safetensors"), Default::default()).map_err(|e| e.to_string())?;
    println!(
        "wrote {}/metrics.json, reconstruction.png, epochs.jsonl, model.safetensors, checkpoint.safetensors",
        out.display()
    );
    Ok(())
}

pub fn inspect(args: &Args) -> Result<(), String> {
    if args.positional.len() < 2 {
        return Err("inspect needs at least one FILE".into());
    }
    for file in &args.positional[1..] {
        let series = read_wide_csv(
            file,
            &WideCsvOptions { signals: vec![], drop: vec!["No".into(), "wd".into(), "station".into()] },
        )
        .map_err(|e| e.to_string())?;
        let gaps: Vec<i64> = series.timestamps.windows(2).map(|w| w[1] - w[0]).collect();
        let mut sorted = gaps.clone();
        sorted.sort_unstable();
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
        println!(
            "{file}: {} rows, median interval {median} s, longest gap {} s",
            series.len(),
            sorted.last().unwrap_or(&0)
        );
        for (s, m) in series.signals.iter().zip(series.missing_fraction()) {
            println!("  {s:<8} missing {:>5.1} %", 100.0 * m);
        }
    }
    Ok(())
}
