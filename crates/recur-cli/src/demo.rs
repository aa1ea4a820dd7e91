//! `recur demo` and `recur inspect`: the bundled Beijing prediction run, and a look at files.

use std::path::{Path, PathBuf};

use recur::data::{align_to_grid, read_wide_csv, Aggregation, PreparedSeries, SplitFractions, WideCsvOptions};
use recur::io::write_atomically;
use recur::plot::{LineChart, Series};
use recur::tasks::{prediction_baselines, train_prediction, Metrics, PredictionConfig, PredictionTask};
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
        dashed: false,
    };
    LineChart {
        title: "Beijing next-hour prediction: loss per epoch".into(),
        x_label: "epoch".into(),
        y_label: "masked MSE (standardised)".into(),
        log_y: false,
        series: vec![
            curve("train loss", &|e| e.train_loss),
            curve("validation micro MSE", &|e| e.validation),
            Series {
                name: "validation LOCF".into(),
                points: vec![(1.0, validation_locf), (trained.log.len() as f64, validation_locf)],
                dashed: true,
            },
        ],
    }
    .save(&out.join("loss.png"), 800, 450)
    .map_err(|e| e.to_string())?;
    println!();
    println!(
        "wrote {}/metrics.json, epochs.jsonl, loss.png, model.safetensors (PyTorch names), checkpoint.safetensors in {:.1} s",
        out.display(),
        started.elapsed().as_secs_f64()
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
