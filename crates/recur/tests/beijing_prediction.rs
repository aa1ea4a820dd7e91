//! End to end on real data: the bundled Beijing station (UCI, CC BY 4.0), next-hour
//! prediction of all 11 numeric signals. The trained GRU must beat last observation
//! carried forward, which must beat the training mean, on the test part's micro MSE
//! (the same windows and the same observed entries for all three).

use std::path::PathBuf;

use recur::data::{align_to_grid, read_wide_csv, Aggregation, PreparedSeries, SplitFractions, WideCsvOptions};
use recur::tasks::{prediction_baselines, train_prediction, PredictionConfig};

fn beijing() -> PreparedSeries {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv");
    let options = WideCsvOptions { signals: vec![], drop: vec!["No".into(), "wd".into(), "station".into()] };
    let series = read_wide_csv(&path, &options).unwrap();
    assert_eq!((series.len(), series.channels()), (35_064, 11));
    PreparedSeries::new(align_to_grid(&series, 3600, Aggregation::Mean).unwrap(), SplitFractions::default()).unwrap()
}

#[test]
fn gru_prediction_beats_persistence_which_beats_the_mean_on_beijing() {
    let data = beijing();
    let config = PredictionConfig { epochs: 8, max_train_windows: 8192, threads: 2, ..PredictionConfig::default() };
    let trained = train_prediction(&data, &config).unwrap();
    let model = trained.model.evaluate(&data, &data.test, config.window).unwrap();
    let baselines = prediction_baselines(&data, &data.test, config.window).unwrap();
    let (locf, mean) = (&baselines[0].1, &baselines[1].1);
    println!(
        "test micro MSE (standardised): GRU {:.4}, LOCF {:.4}, mean {:.4} over {} values",
        model.micro_mse, locf.micro_mse, mean.micro_mse, model.scored
    );
    assert_eq!(model.scored, locf.scored);
    assert!(model.micro_mse < 0.95 * locf.micro_mse, "GRU {} vs LOCF {}", model.micro_mse, locf.micro_mse);
    assert!(locf.micro_mse < mean.micro_mse);
}

#[test]
fn same_seed_gives_a_bit_identical_training_log() {
    let data = beijing();
    let config = PredictionConfig { epochs: 2, max_train_windows: 1024, threads: 2, ..PredictionConfig::default() };
    let a = train_prediction(&data, &config).unwrap();
    let b = train_prediction(&data, &config).unwrap();
    let losses = |t: &recur::tasks::TrainedPrediction| {
        t.log.iter().map(|e| (e.train_loss, e.validation_mse)).collect::<Vec<_>>()
    };
    assert_eq!(losses(&a), losses(&b));
}
