//! Should a stuck sensor's readings be withheld from the model? Measured on a trained causal
//! prediction run's test part: stuck faults (a signal frozen at its value where the fault
//! begins) put into the real series, the stream fed (a) the truth, (b) the stuck readings,
//! (c) the stuck readings withheld (fed as gaps) from the fault's second step on — an oracle
//! for a flatline rule that knew at once — and each one-step forecast made during a fault
//! scored against the truth, standardised, for the stuck signal and for the others:
//!     cargo run --release -p recur --example stuck_readings -- RUN_DIR [STEPS]
//! STEPS: each fault's length (default 24); faults 50 to 150 steps apart, signals drawn with
//! a fixed seed. On the bundled station: the README's anomalies section ("A frozen sensor's
//! readings ... are still fed to the model").
use recur::run::{load_run_data, RunConfig};
use recur::tasks::PredictionTask;
use recur::Rng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).ok_or("usage: stuck_readings RUN_DIR [STEPS]")?);
    let length: usize = std::env::args().nth(2).map_or(Ok(24), |v| v.parse())?;
    let config = RunConfig::load(dir.join("run.toml"))?;
    let data = load_run_data(&dir, &config)?;
    let model = recur::model::SequenceModel::<f32>::load(dir.join("model.safetensors"))?;
    let task = PredictionTask::from_config(&data, &config.prediction())?;
    let test = data.test.first().ok_or("no test part")?.clone();
    // (signal, first step), apart in time
    let mut rng = Rng::new(7);
    let mut faults = Vec::new();
    let mut at = test.start + 200;
    while at + length + 50 < test.end {
        faults.push((rng.below(data.grid.channels()), at));
        at += length + 50 + rng.below(100);
    }
    let fault_at = |n: usize| faults.iter().copied().find(|&(_, s)| (s..s + length).contains(&n));
    for (name, stuck, withheld) in
        [("the truth", false, false), ("the stuck readings", true, false), ("them withheld", true, true)]
    {
        let mut live = task.stream(&model)?;
        live.at(data.step_time(test.start));
        // squared standardised errors and counts: the stuck signal, the others
        let mut sums = [(0.0f64, 0usize); 2];
        let mut forecast: Option<Vec<f32>> = None;
        for n in test.clone() {
            let truth = data.original_step(n);
            let fault = fault_at(n);
            if let (Some(f), Some((j, s))) = (&forecast, fault) {
                for (t, value) in truth.iter().enumerate().filter(|_| n > s) {
                    let Some(value) = value else { continue };
                    let e = f64::from((f[t] - value) / data.scaler.std[t]);
                    let sum = &mut sums[usize::from(t != j)];
                    (sum.0, sum.1) = (sum.0 + e * e, sum.1 + 1);
                }
            }
            let mut fed = truth.clone();
            if let (Some((j, s)), true) = (fault, stuck) {
                fed[j] = if withheld && n > s { None } else { data.original_step(s)[j].or(truth[j]) };
            }
            forecast = Some(live.step(&fed)?);
        }
        let mse = |(sum, n): (f64, usize)| sum / n.max(1) as f64;
        println!(
            "fed {name:>19}: stuck signal MSE {:.4} ({} values), other signals {:.4} ({})",
            mse(sums[0]),
            sums[0].1,
            mse(sums[1]),
            sums[1].1
        );
    }
    println!("{} faults of {length} steps", faults.len());
    Ok(())
}
