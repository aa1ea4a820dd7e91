//! End to end on real data: the bundled Beijing station (UCI, CC BY 4.0), next-hour
//! prediction of all 11 numeric signals. The trained GRU must beat last observation
//! carried forward, which must beat the training mean, on the test part's micro MSE
//! (the same windows and the same observed entries for all three).

use std::path::PathBuf;

use recur::data::{align_to_grid, read_wide, Aggregation, PreparedSeries, SplitFractions, WideOptions};
use recur::tasks::{prediction_baselines, train_prediction, PredictionConfig, PredictionTask};
use recur::train::TrainConfig;

fn beijing() -> PreparedSeries {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv");
    let options =
        WideOptions { signals: vec![], drop: vec!["No".into(), "wd".into(), "station".into()], categorical: vec![] };
    let series = read_wide(&path, &options).unwrap();
    assert_eq!((series.len(), series.channels()), (35_064, 11));
    PreparedSeries::new(align_to_grid(&series, 3600, Aggregation::Mean).unwrap(), SplitFractions::default()).unwrap()
}

#[test]
fn gru_prediction_beats_persistence_which_beats_the_mean_on_beijing() {
    let data = beijing();
    let config = PredictionConfig {
        train: TrainConfig { epochs: 8, max_batches_per_epoch: 128, threads: 2, ..TrainConfig::default() },
        ..PredictionConfig::default()
    };
    let trained = train_prediction(&data, &config, None).unwrap();
    let task = PredictionTask::new(&data, config.window, config.residual).unwrap();
    let model = task.evaluate(&trained.model, &data.test).unwrap();
    let baselines = prediction_baselines(&data, &data.test, config.window).unwrap();
    let (locf, mean) = (&baselines[0].1, &baselines[1].1);
    println!(
        "test micro MSE (standardised): GRU {:.4}, LOCF {:.4}, mean {:.4} over {} values",
        model.micro_mse, locf.micro_mse, mean.micro_mse, model.scored
    );
    assert_eq!(model.scored, locf.scored);
    assert!(model.micro_mse < 0.95 * locf.micro_mse, "GRU {} vs LOCF {}", model.micro_mse, locf.micro_mse);
    assert!(locf.micro_mse < mean.micro_mse);

    // Deployed: the same model streamed over the test part, one hour at a time, its state
    // carried from the first hour instead of restarted for every 23-hour window; scored on
    // the same targets as the windowed evaluation.
    let mut stream = task.stream(&trained.model).unwrap();
    let (c, test) = (data.grid.channels(), data.test[0].clone());
    let (mut sse, mut scored) = (0.0f64, 0u64);
    for n in test.start..test.end - 1 {
        let values = data.original_step(n);
        let forecast = stream.step(&values).unwrap();
        let next = n + 1;
        if next >= test.start + config.window - 1 {
            for (j, &f) in forecast.iter().enumerate() {
                if data.grid.observed[next * c + j] {
                    let err = data.scaler.apply(j, f) - data.grid.values[next * c + j];
                    sse += f64::from(err * err);
                    scored += 1;
                }
            }
        }
    }
    let streamed = sse / scored as f64;
    println!(
        "streamed with carried state: micro MSE {streamed:.4} over {scored} values (windowed {:.4})",
        model.micro_mse
    );
    assert_eq!(scored, model.scored, "the same targets");
    assert!(streamed < 0.95 * locf.micro_mse, "streamed {streamed} vs LOCF {}", locf.micro_mse);
}

#[test]
fn same_seed_gives_a_bit_identical_training_log() {
    let data = beijing();
    let config = PredictionConfig {
        train: TrainConfig { epochs: 2, max_batches_per_epoch: 16, threads: 2, ..TrainConfig::default() },
        ..PredictionConfig::default()
    };
    let a = train_prediction(&data, &config, None).unwrap();
    let b = train_prediction(&data, &config, None).unwrap();
    assert_eq!(a.log, b.log);
    assert_eq!(a.model, b.model);
}

#[test]
fn resume_is_bit_identical_to_an_uninterrupted_run() {
    let data = beijing();
    let config = PredictionConfig {
        model: recur::model::ModelSection {
            bidirectional: true,
            coupling: recur::model::Coupling::Decoupled,
            fusion: recur::model::FusionKind::Gated,
            hidden_size: 16,
            ..Default::default()
        },
        train: TrainConfig {
            epochs: 4,
            max_batches_per_epoch: 6,
            threads: 2,
            patience: 2,
            schedule: recur::train::ScheduleKind::Plateau { patience: 1, factor: 0.5 },
            ..TrainConfig::default()
        },
        ..PredictionConfig::default()
    };
    let task = PredictionTask::new(&data, config.window, config.residual).unwrap();
    let model_config = config.model_config(data.grid.channels());
    let dir = std::env::temp_dir().join(format!("recur-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let whole = recur::train::train(&task, &model_config, &config.train, None, false, None).unwrap();
    let first = recur::train::train(&task, &model_config, &config.train, Some(&dir), false, Some(2)).unwrap();
    assert_eq!(first.log.len(), 2);
    assert!(dir.join("checkpoint.safetensors").exists() && dir.join("epochs.jsonl").exists());
    let resumed = recur::train::train(&task, &model_config, &config.train, Some(&dir), true, None).unwrap();
    assert_eq!(resumed.log, whole.log, "the resumed log continues the same run");
    assert_eq!(resumed.model, whole.model, "the best weights are bit-identical");
    assert_eq!(resumed.best_epoch, whole.best_epoch);
    // a checkpoint from another config is refused with the reason
    let other = TrainConfig { batch_size: 32, ..config.train.clone() };
    let err = recur::train::train(&task, &model_config, &other, Some(&dir), true, None).err().unwrap().to_string();
    assert!(err.contains("another training config"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
