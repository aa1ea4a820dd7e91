//! Serving a trained causal prediction run from a Rust program, with the run folder alone
//! (`run.toml`, `model.safetensors`, `scaler.json`, and `calibration.json` if the bands were
//! calibrated) — what `recur stream` does, in the fewest lines a program of your own needs:
//!     cargo run --release -p recur --example serve_run -- RUN_DIR < steps.csv
//! Each line of stdin is one grid step: the run's signals in its order (`scaler.json`), an
//! empty cell where a value is missing; each line out, the next step's forecast of the
//! signals it forecasts (every one, or `task.targets`) and, where the model has one, its
//! band. A run that reads calendar inputs (`data.calendar`) takes
//! the first step's time after RUN_DIR (seconds since 1970-01-01 UTC, its bin's start);
//! each line is one grid step after the one before.
use std::io::BufRead;

use recur::serve::ServedRun;
use recur::tasks::LiveStream;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: serve_run RUN_DIR < steps.csv")?;
    let run = ServedRun::open(dir)?;
    let LiveStream::Prediction(mut stream) = run.stream()? else {
        return Err("a reconstruction run: `recur stream` serves it, every signal filled".into());
    };
    if let Some(first) = std::env::args().nth(2) {
        stream.at(first.parse().map_err(|_| format!("`{first}`: the first step's time in seconds since 1970"))?);
    }
    eprintln!("signals in, in this order: {}", stream.signals().join(","));
    eprintln!("forecasts out: {}", stream.targets().join(","));
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line?;
        let values = line
            .split(',')
            .map(|cell| match cell.trim() {
                "" => Ok(None),
                number => number.parse::<f32>().map(Some).map_err(|_| format!("line {}: `{number}`", n + 1)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next = stream.step_forecast(&values, 1)?;
        let cells: Vec<String> = (0..next.values.len())
            .map(|j| match (next.low.get(j), next.high.get(j)) {
                (Some(low), Some(high)) => format!("{} [{low}, {high}]", next.values[j]),
                _ => next.values[j].to_string(),
            })
            .collect();
        println!("{}", cells.join(","));
    }
    Ok(())
}
