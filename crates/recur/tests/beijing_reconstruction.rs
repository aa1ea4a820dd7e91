//! End to end on real data: reconstruction on the bundled Beijing station (UCI, CC BY 4.0).
//! Values hidden on purpose by missingness diffusion (fixed seed) on the test part are
//! reconstructed; every method is scored on the same hidden entries. The bidirectional
//! GRU must beat linear interpolation, which must beat LOCF and the mean, and the ±2σ
//! band from the learned precision must cover close to 95 % of the hidden truths.

use std::path::PathBuf;

use recur::data::{align_to_grid, read_wide, Aggregation, PreparedSeries, SplitFractions, WideOptions};
use recur::tasks::{train_reconstruction, ReconstructionConfig, ReconstructionTask};
use recur::train::TrainConfig;

/// The bundled station as read and as prepared (hourly grid, 60/20/20).
fn beijing() -> (recur::data::TimeSeries, PreparedSeries) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv");
    let options =
        WideOptions { signals: vec![], drop: vec!["No".into(), "wd".into(), "station".into()], categorical: vec![] };
    let series = read_wide(&path, &options).unwrap();
    let data = PreparedSeries::new(align_to_grid(&series, 3600, Aggregation::Mean).unwrap(), SplitFractions::default())
        .unwrap();
    (series, data)
}

#[test]
fn bidirectional_reconstruction_beats_interpolation_which_beats_locf_and_the_mean() {
    let (_, data) = beijing();
    let config = ReconstructionConfig {
        train: TrainConfig { epochs: 12, max_batches_per_epoch: 100, threads: 2, ..TrainConfig::default() },
        ..ReconstructionConfig::default()
    };
    let report = train_reconstruction(&data, &config, None).unwrap();
    let scores =
        ReconstructionTask::new(&data, config.clone()).unwrap().evaluate(Some(&report.model), &data.test).unwrap();
    for s in &scores {
        println!(
            "{:<34} micro MSE {:.4} MAE {:.4} over {} hidden values",
            s.name, s.metrics.micro_mse, s.metrics.mae, s.metrics.scored
        );
    }
    let mse: Vec<f64> = scores.iter().map(|s| s.metrics.micro_mse).collect();
    assert!(scores.iter().all(|s| s.metrics.scored == scores[0].metrics.scored), "same hidden entries for all");
    assert!(mse[0] < 0.97 * mse[1], "BiGRU {} vs interpolation {}", mse[0], mse[1]);
    assert!(mse[1] < mse[2] && mse[1] < mse[3], "interpolation below LOCF and mean: {mse:?}");
    let coverage = scores[0].coverage_2sigma.unwrap();
    assert!((0.9..=0.99).contains(&coverage), "±2σ coverage {coverage}");
}

#[test]
fn the_filled_series_keeps_observations_and_fills_every_gap_with_a_band() {
    let (series, data) = beijing();
    let mut run_config = recur::run::RunConfig::default();
    run_config.task.kind = recur::run::TaskKind::Reconstruction;
    run_config.task.window = 48;
    run_config.model.bidirectional = true;
    let model =
        recur::model::SequenceModel::<f32>::new(run_config.reconstruction().model_config(data.grid.channels()), 1)
            .unwrap();
    let csv = recur::report::filled_series_csv(&run_config, &data, &model).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), series.len());
    let c = series.channels();
    for (n, row) in rows.iter().enumerate() {
        for j in 0..c {
            let (value, filled, low, high) = (row[2 + 4 * j], row[3 + 4 * j], row[4 + 4 * j], row[5 + 4 * j]);
            if series.observed[n * c + j] {
                assert_eq!(filled, "0");
                let v: f32 = value.parse().unwrap();
                assert!((v - series.values[n * c + j]).abs() <= 1e-3 * (1.0 + v.abs()), "observed value kept");
                assert!(low.is_empty() && high.is_empty());
            } else {
                assert_eq!(filled, "1");
                let (v, lo, hi): (f64, f64, f64) =
                    (value.parse().unwrap(), low.parse().unwrap(), high.parse().unwrap());
                assert!(lo < v && v < hi && v.is_finite(), "row {n}, signal {j}");
            }
        }
    }
}
