//! Watching a live feed for alarms with a trained causal prediction run from a Rust
//! program — what `recur stream --flag S` does, from the run folder alone (as
//! `serve_run.rs` reads it, and `alarms.json` where `recur detect --alarm-rate` kept one):
//!     cargo run --release -p recur --example watch_run -- RUN_DIR [S] < steps.csv
//! Each line in is one grid step: the run's signals in its order (`scaler.json`), an empty
//! cell where a value is missing. Each value is scored against the forecast of it made the
//! step before (its surprise, in σ of the band, scaled by the kept alarm scales), and one
//! above S (default 4) is withheld from the model; with kept alarms, a run of equal
//! readings is scored by the flatline rule too. Each line out names the signals whose
//! alarm episode begins at that step (a signal's flags at most 3 steps apart are one
//! episode), empty when none: the line to page someone on.
use std::io::BufRead;
use std::path::PathBuf;

use recur::data::FittedScaler;
use recur::model::SequenceModel;
use recur::run::RunConfig;
use recur::tasks::anomaly::{Detector, EpisodeTracker, KeptAlarms, Sentinel};
use recur::tasks::{BandCalibration, PredictionStream};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: watch_run RUN_DIR [S] < steps.csv")?);
    let threshold: f32 = match std::env::args().nth(2) {
        Some(s) => s.parse().map_err(|_| format!("`{s}`: a threshold, in σ"))?,
        None => 4.0,
    };
    let config = RunConfig::load(dir.join("run.toml"))?;
    let model = SequenceModel::<f32>::load(dir.join("model.safetensors"))?;
    let fitted = FittedScaler::load_from_run(&dir)?.ok_or("no scaler.json: a run folder written by recur train")?;
    let scored = config.scored_signals(&fitted.signals);
    let calibration = BandCalibration::load_from_run(&dir, &scored)?;
    let factors = calibration.as_ref().map_or(Vec::new(), |c| c.scale.clone());
    let kept = KeptAlarms::load_from_run(&dir, &scored, &factors)?;
    let mut stream = PredictionStream::new(&model, &fitted, &config.prediction(), calibration)?;
    if stream.reads_calendar() {
        return Err("the run reads calendar inputs: give each step its time, as serve_run.rs does".into());
    }
    let (scale, sigma) = match &kept {
        Some(kept) => (kept.scales.of(Detector::Model).to_vec(), kept.sigma.clone()),
        None => (Vec::new(), Vec::new()),
    };
    let mut sentinel = Sentinel::new(&stream, Some(threshold), sigma)?.scaled(scale);
    let mut flatline = kept.as_ref().and_then(|k| k.flatline_rule(config.task.window - 1));
    let targets = stream.targets().to_vec();
    let signal_of: Vec<usize> = targets.iter().filter_map(|t| stream.signals().iter().position(|s| s == t)).collect();
    let mut episodes = EpisodeTracker::new(3);
    eprintln!("signals in, in this order: {}", stream.signals().join(","));
    for (step, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line?;
        let mut values = line
            .split(',')
            .map(|cell| match cell.trim() {
                "" => Ok(None),
                number => number.parse::<f32>().map(Some).map_err(|_| format!("line {}: `{number}`", step + 1)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        // the flatline rule reads the values training's outlier screen keeps
        let flat: Vec<bool> = signal_of
            .iter()
            .enumerate()
            .map(|(t, &j)| {
                let kept_value = values.get(j).copied().flatten().filter(|&x| !fitted.scaler.screens_out(j, x));
                match (flatline.as_mut(), kept_value) {
                    (Some(rule), Some(x)) => rule.score(t, x, step) > threshold,
                    _ => false,
                }
            })
            .collect();
        let surprises = sentinel.screen(&mut values);
        let forecast = stream.step_forecast(&values, 1)?;
        sentinel.expect(&forecast);
        let begun: Vec<&str> = (0..targets.len())
            .filter(|&t| surprises[t].is_some_and(|s| s.surprise > threshold) || flat[t])
            .filter(|&t| episodes.begins(t, step))
            .map(|t| targets[t].as_str())
            .collect();
        println!("{}", begun.join(";"));
    }
    Ok(())
}
