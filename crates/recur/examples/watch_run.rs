//! Watching a live feed for alarms with a trained causal run from a Rust program — what
//! `recur stream --flag S` does, from the run folder alone (`alarms.json` where `recur
//! detect --alarm-rate` kept one):
//!     cargo run --release -p recur --example watch_run -- RUN_DIR [S [STATE.json]] < steps.csv
//! Each line in is one grid step: the run's signals in its order (`scaler.json`), an empty
//! cell where a value is missing. Each value is scored against what the model expected of
//! it — a prediction run's forecast made the step before, a causal reconstruction run's
//! reconstruction with it hidden — in σ of the band, scaled by the kept alarm scales; one
//! above S (default 4) is withheld from the model; with kept alarms, a run of equal
//! readings is scored by the flatline rule too. Each line out names the signals whose
//! alarm episode begins at that step (a signal's flags at most 3 steps apart are one
//! episode), empty when none: the line to page someone on. With STATE.json, the model's
//! state and the watch's go on from that file where it exists, and are written back to it
//! at the end: fed in parts, the lines are those of the whole feed.
use std::io::BufRead;

use recur::run::ServedRun;
use recur::tasks::anomaly::{WatchState, JOIN};
use recur::tasks::LiveState;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: watch_run RUN_DIR [S [STATE.json]] < steps.csv")?;
    let threshold: f32 = match std::env::args().nth(2) {
        Some(s) => s.parse().map_err(|_| format!("`{s}`: a threshold, in σ"))?,
        None => 4.0,
    };
    let run = ServedRun::open(dir)?;
    let mut live = run.stream()?;
    if live.reads_calendar() {
        return Err("the run reads calendar inputs: give each step its time, as serve_run.rs does".into());
    }
    let mut watch = run.watch(&live, threshold, JOIN)?;
    let state_file = std::env::args().nth(3);
    if let Some(saved) = state_file.as_ref().filter(|f| std::path::Path::new(f).exists()) {
        let (stream, watched): (LiveState, WatchState) = serde_json::from_str(&std::fs::read_to_string(saved)?)?;
        live.restore(&stream)?;
        watch.restore(&watched)?;
    }
    eprintln!("signals in, in this order: {}", live.signals().join(","));
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line?;
        let mut values = line
            .split(',')
            .map(|cell| match cell.trim() {
                "" => Ok(None),
                number => number.parse::<f32>().map(Some).map_err(|_| format!("line {}: `{number}`", n + 1)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let step = watch.screen(&live, &mut values)?;
        watch.expect(&live.step(&values)?);
        let begun: Vec<&str> = step.new_alarms.iter().map(|&t| watch.targets()[t].as_str()).collect();
        println!("{}", begun.join(";"));
    }
    if let Some(file) = state_file {
        let json = serde_json::to_string(&(live.state(), watch.state()))?;
        recur::io::write_atomically(std::path::Path::new(&file), json.as_bytes())?;
    }
    Ok(())
}
