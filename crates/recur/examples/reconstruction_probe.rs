//! Probe: reconstruction on the bundled Beijing station.
//!     cargo run --release -p recur --example reconstruction_probe -- EPOCHS BATCHES BIDIRECTIONAL(0/1)
use recur::data::{align_to_grid, read_wide, Aggregation, PreparedSeries, SplitFractions, WideOptions};
use recur::tasks::{train_reconstruction, ReconstructionConfig, ReconstructionTask};
use recur::train::TrainConfig;

fn main() {
    recur::keep_freed_memory();
    let a: Vec<usize> = std::env::args().skip(1).map(|v| v.parse().unwrap()).collect();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv");
    let series =
        read_wide(path, &WideOptions { drop: vec!["No".into(), "wd".into(), "station".into()], ..Default::default() })
            .unwrap();
    let data = PreparedSeries::new(align_to_grid(&series, 3600, Aggregation::Mean).unwrap(), SplitFractions::default())
        .unwrap();
    let config = ReconstructionConfig {
        model: recur::model::ModelSection { bidirectional: a.get(2).copied().unwrap_or(1) == 1, ..Default::default() },
        train: TrainConfig {
            epochs: a.first().copied().unwrap_or(10),
            max_batches_per_epoch: a.get(1).copied().unwrap_or(50),
            threads: 2,
            ..TrainConfig::default()
        },
        ..ReconstructionConfig::default()
    };
    let t = std::time::Instant::now();
    let report = train_reconstruction(&data, &config, None).unwrap();
    for e in &report.log {
        println!("epoch {} train {:.4} validation {:.4}", e.epoch, e.train_loss, e.validation);
    }
    let task = ReconstructionTask::new(&data, config).unwrap();
    for s in task.evaluate(Some(&report.model), &data.test).unwrap() {
        println!(
            "{:<34} micro MSE {:.4}  MAE {:.4}  scored {} coverage {:?}",
            s.name, s.metrics.micro_mse, s.metrics.mae, s.metrics.scored, s.coverage_2sigma
        );
    }
    println!("{:.1} s", t.elapsed().as_secs_f64());
}
