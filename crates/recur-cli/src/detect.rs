//! `recur detect`: the values a causal prediction run finds surprising, and, with faults
//! injected on purpose, how well it finds them against detectors without a model.

use std::path::{Path, PathBuf};

use recur::data::PreparedSeries;
use recur::report::{anomalies_csv, anomaly_table, detection_signal_table, detection_table, save_anomaly_chart};
use recur::run::TaskKind;
use recur::tasks::anomaly::{ScoredValue, Spikes};

use crate::args::Args;
use crate::demo::{calibrated_task, open_run_on_data, output_beside_run};

const USAGE: &str = "usage: recur detect --run DIR [--data FILE,...] [--threshold S] [--guard true|false] [--signal NAME] [--out FILE.csv] \
                     [--inject SIZE [--rate R] [--seed N]] (a causal prediction run folder)";

pub fn detect(args: &Args) -> Result<(), String> {
    let known = ["run", "data", "threshold", "out", "inject", "rate", "seed", "guard", "signal"];
    let dir = PathBuf::from(args.get("run", &known, String::new())?);
    if dir.as_os_str().is_empty() {
        return Err(USAGE.into());
    }
    let threshold = args.get("threshold", &known, 4.0f32)?;
    if !(threshold > 0.0 && threshold.is_finite()) {
        return Err(format!("--threshold {threshold}: a positive surprise, in σ"));
    }
    let size = args.get("inject", &known, 0.0f32)?;
    let rate = args.get("rate", &known, 0.01f64)?;
    let seed = args.get("seed", &known, 1u64)?;
    let guard = args.get("guard", &known, true)?;
    let (config, model, data) = open_run_on_data(&dir, Some(TaskKind::Prediction), args, &known)?;
    let task = calibrated_task(&dir, &config, &data)?;
    let targets = task.targets().names().to_vec();
    let signal = match args.get("signal", &known, String::new())? {
        name if name.is_empty() => None,
        name => Some(targets.iter().position(|t| *t == name).ok_or_else(|| {
            format!("--signal {name}: not one of the signals the run forecasts ({})", targets.join(", "))
        })?),
    };
    if size != 0.0 {
        let detections = task
            .detect_spikes(&model, &data.test, (Spikes { rate, size }, seed), threshold, guard)
            .map_err(|e| format!("--inject: {e}"))?;
        let (faults, values) = (detections.pooled[0].1.faults, detections.pooled[0].1.values);
        println!(
            "{faults} spikes of ±{size} training SDs (seed {seed}) in {} % of the {values} test values scored ({}); \
             how each detector ranks them against the values left alone (a value scored above {threshold} \
             withheld from what the detector reads next{}):",
            100.0 * rate,
            targets.join(", "),
            if guard { "" } else { ": not, --guard false" }
        );
        print!("{}", detection_table(&detections, threshold));
        println!("\nby signal, each detector's average precision (ROC AUC) on its values alone:");
        print!("{}", detection_signal_table(&detections, &targets));
        return Ok(());
    }
    let scored = task
        .surprises(&model, &data.test, guard.then_some(threshold))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    println!(
        "{} observed test values, each against the forecast made the step before (s: its distance from the \
         forecast in σ of the band; flagged above {threshold}):",
        scored.len()
    );
    print!("{}", anomaly_table(&scored, &data, &targets, threshold));
    let csv = match args.get("out", &known, String::new())? {
        out if !out.is_empty() => PathBuf::from(out),
        _ => output_beside_run(&dir, args, &known, "anomalies", "csv")?,
    };
    let plot = write_anomalies(&scored, &data, (&targets, signal), threshold, &csv)?;
    println!("wrote {} and {}", csv.display(), plot.display());
    Ok(())
}

/// The values scored above `threshold` into `csv` ([`anomalies_csv`]) and the most
/// surprising value's days (of target `signal`, or of any) beside it, as PNG
/// ([`save_anomaly_chart`]): the chart's path.
pub(crate) fn write_anomalies(
    scored: &[ScoredValue],
    data: &PreparedSeries,
    (targets, signal): (&[String], Option<usize>),
    threshold: f32,
    csv: &Path,
) -> Result<PathBuf, String> {
    recur::io::write_atomically(csv, anomalies_csv(scored, data, targets, threshold).as_bytes())
        .map_err(|e| e.to_string())?;
    let plot = csv.with_extension("png");
    save_anomaly_chart(scored, data, (targets, signal), threshold, &plot).map_err(|e| e.to_string())?;
    Ok(plot)
}
