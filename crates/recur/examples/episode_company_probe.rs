//! Probe: is an alarm episode whose signal is flagged alone (no other signal's episode
//! within 3 steps of it) more often a sensor's fault than one shared with other signals?
//! Faults injected into the bundled Beijing station (seed 1, as `recur detect --inject 3`
//! injects them) under the band run (`configs/beijing-prediction-stream-band.toml`); for
//! each kind, the share of the episodes on a fault that are alone against that of the
//! episodes off the faults (README, "Anomalies": tried and not kept).
//!     cargo run --release -p recur --example episode_company_probe
use std::path::PathBuf;

use recur::run::{load_data, run, RunConfig};
use recur::tasks::anomaly::{episodes, inject_faults, FaultKind, Faults, Screening, JOIN};
use recur::tasks::PredictionTask;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let configs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let config = RunConfig::load(configs.join("beijing-prediction-stream-band.toml"))?;
    let data = load_data(&config.data, &configs)?;
    let outcome = run(&config, &data, None, false)?;
    let task = PredictionTask::from_config(&data, &config.prediction())?;
    let window = config.task.window;
    let scored: Vec<_> = data.test.iter().filter(|r| r.len() >= window).map(|r| r.start + window - 1..r.end).collect();
    let (threshold, screening) = (4.0, Screening { guard: Some(4.0), ..Screening::default() });
    let signals = task.targets().indices();
    for (name, kind, rate) in [
        ("spikes", FaultKind::Spike, 0.01),
        ("stuck sensors", FaultKind::Stuck { steps: 24 }, 0.05),
        ("drifts", FaultKind::Drift { steps: 24 }, 0.05),
    ] {
        let (faulty, events) = inject_faults(&data, &scored, signals, Faults { kind, rate, size: 3.0 }, 1)?;
        let values = PredictionTask::from_config(&faulty, &config.prediction())?.surprises(
            &outcome.model,
            &data.test,
            &screening,
        )?;
        let found = episodes(&values, threshold, JOIN, |step| faulty.entity_index(step));
        // [on a fault?][alone?]
        let mut counts = [[0usize; 2]; 2];
        for e in &found {
            let on_fault = events
                .iter()
                .any(|f| f.signal == signals[e.target] && f.steps.start <= e.last && e.first < f.steps.end);
            let alone =
                !found.iter().any(|o| o.target != e.target && o.first <= e.last + JOIN && o.last + JOIN >= e.first);
            counts[usize::from(on_fault)][usize::from(alone)] += 1;
        }
        let share = |c: [usize; 2]| 100.0 * c[1] as f64 / (c[0] + c[1]).max(1) as f64;
        println!(
            "{name}: episodes on a fault {} ({:.1} % alone), off the faults {} ({:.1} % alone)",
            counts[1][0] + counts[1][1],
            share(counts[1]),
            counts[0][0] + counts[0][1],
            share(counts[0])
        );
    }
    Ok(())
}
