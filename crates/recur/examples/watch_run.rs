//! Watching a live feed for alarms with a trained causal run from a Rust program — what
//! `recur stream --flag S [--state FILE]` does, over the library type the command runs
//! (`serve::Fleet`), from the run folder alone (`alarms.json` where `recur detect
//! --alarm-rate` kept one):
//!     cargo run --release -p recur --example watch_run -- RUN_DIR [S [STATE.json]] < feed.csv
//! The feed is a CSV file as the run's training data was laid out, header first: one column
//! per signal (each row one grid step), or, for a run trained on a long table, a historian's
//! `time,signal,value[,entity]` rows, each entity's aligned onto its own grid. Each value is
//! scored against what the model expected of it — a prediction run's forecast made the step
//! before, a causal reconstruction run's reconstruction with it hidden — in σ of the band,
//! scaled by the kept alarm scales; one above S (default 4) is withheld from the model; with
//! kept alarms, a run of equal readings is scored by the flatline rule too. Each line out is
//! one grid step — its entity and time where the feed has them — and the signals whose alarm
//! episode begins there (a signal's flags at most 3 steps apart are one episode), empty when
//! none: the cell to page someone on. With STATE.json, every entity goes on from that file
//! where it exists, and the state is written back to it at the end, the open grid steps
//! waiting for the next feed: fed in parts, the lines are those of the whole feed.
use std::io::BufRead;

use recur::serve::{FeedStep, Fleet, ServedRun, WatchRule};
use recur::tasks::anomaly::JOIN;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: watch_run RUN_DIR [S [STATE.json]] < feed.csv")?;
    let threshold: f32 = match args.next() {
        Some(s) => s.parse().map_err(|_| format!("`{s}`: a threshold, in σ"))?,
        None => 4.0,
    };
    let state_file = args.next();
    let run = ServedRun::open(dir)?;
    let mut fleet = Fleet::new(&run, Some(WatchRule { threshold, join: JOIN }))?;
    let mut lines = std::io::stdin().lock().lines();
    let header = lines.next().ok_or("stdin: no header row")??;
    let layout = fleet.layout(&header, false).map_err(|e| e.at("stdin", 1))?;
    if let Some(file) = &state_file {
        fleet.load_state(file)?;
    }
    for (n, line) in lines.enumerate() {
        for step in fleet.read_line(&layout, &line?).map_err(|e| e.at("stdin", n + 2))? {
            watch(&mut fleet, &step)?;
        }
    }
    match &state_file {
        Some(file) => fleet.save_state(file)?,
        None => {
            for step in fleet.finish() {
                watch(&mut fleet, &step)?;
            }
        }
    }
    Ok(())
}

/// `step` through its entity's model and watch; its line out.
fn watch(fleet: &mut Fleet, step: &FeedStep) -> recur::Result<()> {
    let served = fleet.serve(step, 1, 0)?;
    let begun: Vec<&str> =
        served.watched.iter().flat_map(|w| &w.new_alarms).map(|&t| fleet.targets()[t].as_str()).collect();
    let entity = Some(fleet.entity_name(step.entity)).filter(|name| !name.is_empty());
    let alarms = begun.join(";");
    let cells: Vec<&str> = entity.into_iter().chain(step.time.as_deref()).chain([alarms.as_str()]).collect();
    println!("{}", cells.join(","));
    Ok(())
}
