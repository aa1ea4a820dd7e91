//! Real data: the bundled Beijing station (UCI, CC BY 4.0), next-hour prediction trained on
//! 30-day streams with truncated BPTT (configs/beijing-prediction-stream.toml, as `recur
//! train` runs it). The streamed score is what `recur stream` delivers, step by step (and
//! `recur predict` its last forecast), and it
//! beats every window-trained GRU measured; a decoupled BiGRU trained on streams
//! (configs/beijing-prediction-twin.toml) beats the GRU, served by its student alone; a
//! GRU forecasting the next 24 hours directly (configs/beijing-prediction-direct.toml)
//! beats the one-hour GRU fed its own forecasts a day ahead, and with the pollutants read
//! as ln(1 + x) (configs/beijing-prediction-direct-log.toml) bands them skewed and above −1,
//! scored in their own units; an interrupted stream-trained run resumes bit for bit.

use std::path::PathBuf;

use recur::data::PreparedSeries;
use recur::model::SequenceModel;
use recur::run::{load_data, run, RunConfig};
use recur::tasks::{
    BandCalibration, ErrorAccumulator, HorizonScores, Metrics, PredictionStream, PredictionTask, Uncertainty,
};
use recur::train::{train, TrainConfig};

fn config_named(name: &str) -> (RunConfig, PreparedSeries) {
    let configs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let config = RunConfig::load(configs.join(name)).unwrap();
    let data = load_data(&config.data, &configs).unwrap();
    (config, data)
}

fn config() -> (RunConfig, PreparedSeries) {
    config_named("beijing-prediction-stream.toml")
}

/// `recur stream`'s path, one hour at a time from the series' first hour to the test
/// part's end: its score on the windows' entries of the test part, and its last forecast
/// (original units).
fn stepped(config: &RunConfig, data: &PreparedSeries, model: &SequenceModel<f32>) -> (Metrics, Vec<f32>) {
    let task = PredictionTask::new(data, config.task.window, config.task.residual).unwrap();
    let mut stream = task.stream(model).unwrap();
    let (c, test) = (data.grid.channels(), data.test[0].clone());
    let mut acc = ErrorAccumulator::new(c);
    let mut last_forecast = Vec::new();
    for n in 0..test.end {
        let values = data.original_step(n);
        let forecast = stream.step(&values).unwrap();
        let next = n + 1;
        if next == test.end {
            last_forecast = forecast;
        } else if next >= test.start + config.task.window - 1 {
            let pred: Vec<f32> = forecast.iter().enumerate().map(|(j, &f)| data.scaler.apply(j, f)).collect();
            let mask: Vec<f32> = (0..c).map(|j| data.grid.observed[next * c + j] as u8 as f32).collect();
            acc.add(&pred, &data.grid.values[next * c..(next + 1) * c], &mask, &data.scaler);
        }
    }
    (acc.finish(), last_forecast)
}

/// Two paths scored the same entries alike: the same count, micro MSE within 1e-4 relative.
fn assert_same_score(a: &Metrics, b: &Metrics, what: &str) {
    assert_eq!(a.scored, b.scored, "{what}");
    let gap = (a.micro_mse / b.micro_mse - 1.0).abs();
    assert!(gap < 1e-4, "{what}: {} vs {}", a.micro_mse, b.micro_mse);
}

fn print_horizon(horizon: &HorizonScores) {
    for (h, (m, p)) in horizon.model.iter().zip(&horizon.persistence).enumerate() {
        println!(
            "{:>2} h ahead: model {:.4}, persistence {:.4} ({} scored)",
            h + 1,
            m.micro_mse,
            p.micro_mse,
            m.scored
        );
    }
}

/// The model's micro MSE below `factor` × persistence's, 1..=`hours` steps ahead.
fn assert_below_persistence(horizon: &HorizonScores, hours: usize, factor: f64) {
    for (h, (m, p)) in horizon.model.iter().zip(&horizon.persistence).take(hours).enumerate() {
        assert!(
            m.micro_mse < factor * p.micro_mse,
            "{} h ahead: {} against persistence {}",
            h + 1,
            m.micro_mse,
            p.micro_mse
        );
    }
}

#[test]
fn a_gru_trained_on_streams_beats_windows_and_streams_as_scored() {
    let (config, data) = config();
    let mut outcome = run(&config, &data, None, false).unwrap();
    let (model, locf) = (outcome.scores[0].clone(), outcome.scores[1].metrics.clone());
    let streamed = model.streamed.as_ref().expect("a causal prediction model is scored streamed");
    println!(
        "test micro MSE: streams-trained GRU {:.4} windowed, {:.4} streamed; LOCF {:.4}; best epoch {}",
        model.metrics.micro_mse, streamed.micro_mse, locf.micro_mse, outcome.best_epoch
    );
    assert_eq!(streamed.scored, locf.scored, "the same entries as the windows and the baselines");
    // configs/grids/beijing-streams.toml, seed for seed (streamed): streams-trained
    // 0.1858–0.1896, window-trained (configs/beijing-prediction.toml) 0.1892–0.1929; this
    // config is seed 1 (0.1859 against 0.1892); LOCF 0.2245
    assert!(streamed.micro_mse < 0.189, "streamed {}", streamed.micro_mse);
    assert!((model.metrics.micro_mse - streamed.micro_mse).abs() < 0.003, "windowed and streamed agree");

    // `recur stream`'s path, one hour at a time from the series' first hour, gives the
    // streamed score on the same entries
    let (stepped, last_forecast) = stepped(&config, &data, &outcome.model);
    let task = PredictionTask::new(&data, config.task.window, config.task.residual).unwrap();
    let test = data.test[0].clone();
    // the forecasts behind the run folder's forecast.png score as the metrics do
    let f = task.forecasts(&outcome.model, test.start + config.task.window - 1..test.end).unwrap();
    let mse = |pred: &[f32]| {
        let (mut sse, mut n) = (0.0f64, 0.0f64);
        for ((p, t), m) in pred.iter().zip(&f.truth).zip(&f.observed) {
            sse += f64::from(m * (p - t) * (p - t));
            n += f64::from(*m);
        }
        sse / n
    };
    assert!((mse(&f.model) / streamed.micro_mse - 1.0).abs() < 1e-6, "{} vs {}", mse(&f.model), streamed.micro_mse);
    assert!((mse(&f.persistence) / locf.micro_mse - 1.0).abs() < 1e-6);
    let scratch = tempfile::Builder::new().prefix("recur-streams-run-").tempdir().unwrap();
    let dir = scratch.path().join("run");
    recur::report::write_run_folder(&dir, &config, &mut outcome, &data).unwrap();
    assert!(std::fs::read(dir.join("forecast.png")).unwrap().starts_with(b"\x89PNG"));
    // served from the folder alone (examples/serve_run.rs's path): its scaler.json, run.toml
    // and model stream as the task's own stream does, to the bit
    let fitted = recur::data::FittedScaler::load_from_run(&dir).unwrap().unwrap();
    assert_eq!(fitted, recur::data::FittedScaler::of(&data));
    let saved = RunConfig::load(dir.join("run.toml")).unwrap();
    let model = SequenceModel::<f32>::load(dir.join("model.safetensors")).unwrap();
    let mut served = PredictionStream::new(&model, &fitted, &saved.prediction(), None).unwrap();
    let mut own = task.stream(&outcome.model).unwrap();
    for n in 0..48 {
        let values = data.original_step(n);
        assert_eq!(served.step(&values).unwrap(), own.step(&values).unwrap(), "hour {n}");
    }
    // a calibration fitted for other signals is refused
    let other = BandCalibration { signals: vec!["PM2.5".into()], scale: vec![1.0], scores: vec![10], paths: 0 };
    let refused = PredictionStream::new(&model, &fitted, &saved.prediction(), Some(other));
    assert!(refused.err().unwrap().to_string().contains("fitted for [\"PM2.5\"], the model reads"));

    // `recur predict` of a stream-trained run: the step after the series' end, from the
    // whole series with the state carried, is the stream's last forecast
    let trained_on_streams = PredictionTask::from_config(&data, &config.prediction()).unwrap();
    let forecast = trained_on_streams.forecast(&outcome.model).unwrap();
    assert_eq!(forecast.len(), 1);
    for (j, (a, b)) in forecast[0].1.values.iter().zip(&last_forecast).enumerate() {
        assert!((a - b).abs() <= 1e-3 * (1.0 + b.abs()), "signal {j}: predict {a} vs stream {b}");
    }
    assert_same_score(&stepped, streamed, "step by step against streamed");

    // closed loop, 1..=24 hours ahead: one hour ahead is the streamed score and LOCF; the
    // model, fed its own forecasts, stays ahead of persistence all day (measured: 0.1859 /
    // 0.2245 at 1 h, 0.6588 / 0.9959 at 12 h, 0.8216 / 0.9584 at 24 h)
    let horizon = trained_on_streams.evaluate_horizon(&outcome.model, &data.test, 24).unwrap();
    print_horizon(&horizon);
    let (one, carried) = (&horizon.model[0], &horizon.persistence[0]);
    assert_eq!((one.scored, carried.scored), (streamed.scored, locf.scored));
    assert!((one.micro_mse / streamed.micro_mse - 1.0).abs() < 1e-4, "{} vs {}", one.micro_mse, streamed.micro_mse);
    assert!((carried.micro_mse / locf.micro_mse - 1.0).abs() < 1e-9, "{} vs {}", carried.micro_mse, locf.micro_mse);
    assert_below_persistence(&horizon, 24, 0.9);
    assert!(horizon.model.windows(2).take(12).all(|w| w[1].micro_mse > w[0].micro_mse), "errors grow with the horizon");
    // `recur predict --horizon`: its first step is the stream's last forecast
    let ahead = trained_on_streams.forecast_ahead(&outcome.model, 3).unwrap();
    assert_eq!(ahead[0].1.values.len(), 3 * data.grid.channels());
    for (j, (a, b)) in ahead[0].1.values.iter().zip(&forecast[0].1.values).enumerate() {
        assert!((a - b).abs() <= 1e-3 * (1.0 + b.abs()), "signal {j}: {a} vs {b}");
    }

    // `recur diagnose gradients --run`: the carried state forgets. Over 64 week-long
    // stretches of the test part, the forecast's input gradient stays below 1 % of its
    // largest from under a day back on (measured: 21 hours; 99 % of its square in the
    // last 7), is ~1e-6 of the last hour's 96 hours back (3.4e-6 with 128 stretches), and
    // the state gradient falls with distance as the lecture's product of Jacobians does
    let reach = trained_on_streams.look_back(&outcome.model, ("test", &data.test), 168, 64, 1).unwrap();
    let last = reach.all_inputs(0);
    println!(
        "look-back: below 1 % from {} h, 99 % within {} h; |dy/dx| 96 h back / last hour {:.2e}",
        reach.fades_below(0.01),
        reach.steps_holding(0.99),
        reach.all_inputs(96) / last
    );
    assert!(reach.fades_below(0.01) < 24, "{}", reach.fades_below(0.01));
    assert!(reach.steps_holding(0.99) <= 12, "{}", reach.steps_holding(0.99));
    assert!(reach.all_inputs(96) < 1e-4 * last, "{} vs {last}", reach.all_inputs(96));
    assert!(reach.state[0] > 10.0 * reach.state[47] && reach.state[47] > 10.0 * reach.state[143], "{:?}", reach.state);
}

#[test]
fn a_decoupled_bigru_trained_on_streams_beats_the_gru_and_streams_as_scored() {
    let (config, data) = config_named("beijing-prediction-twin.toml");
    let outcome = run(&config, &data, None, false).unwrap();
    let model = &outcome.scores[0];
    let streamed = model.streamed.as_ref().expect("a decoupled prediction model is scored streamed");
    println!(
        "test micro MSE: streams-trained decoupled BiGRU {:.4} windowed, {:.4} streamed; best epoch {}",
        model.metrics.micro_mse, streamed.micro_mse, outcome.best_epoch
    );
    // configs/grids/beijing-decoupled-streams.toml, streamed, seed for seed: 0.1814, 0.1798,
    // 0.1835 against the stream-trained GRU's 0.1859, 0.1858, 0.1896 (this config is seed
    // 1); the same BiGRU trained on windows 0.1889, 0.2072, 0.2668 streamed
    assert!(streamed.micro_mse < 0.1835, "streamed {}", streamed.micro_mse);
    // deployed, only the student runs: `recur stream` gives the same score
    assert!(outcome.model.backward_branch.is_some() && outcome.model.is_causal());
    let (stepped, _) = stepped(&config, &data, &outcome.model);
    assert_same_score(&stepped, streamed, "step by step against streamed");
}

#[test]
fn a_direct_day_ahead_forecast_beats_the_closed_loop_and_streams_as_scored() {
    let (config, data) = config_named("beijing-prediction-direct.toml");
    let outcome = run(&config, &data, None, false).unwrap();
    let model = &outcome.model;
    let task = PredictionTask::from_config(&data, &config.prediction()).unwrap();
    assert_eq!(task.steps_ahead_of(model).unwrap(), 24);
    // the streamed batch path, every step ahead at once, and `recur stream`'s step-by-step
    // path (direct for 24 hours, closed loop past them) score the same entries alike
    let direct = task.evaluate_streamed_ahead(model, &data.test).unwrap();
    let horizon = task.evaluate_horizon(model, &data.test, 30).unwrap();
    print_horizon(&horizon);
    for (h, (batch, stepped)) in direct.iter().zip(&horizon.model).enumerate() {
        assert_same_score(batch, stepped, &format!("{} h ahead, batch against step by step", h + 1));
    }
    assert!(horizon.model[24..].iter().all(|m| m.micro_mse.is_finite() && m.scored > 0));
    // measured (seed 1): 0.1877 / 0.2245 (persistence) at 1 h, 0.4306 / 0.6727 at 6 h,
    // 0.5502 / 0.9959 at 12 h, 0.6598 / 0.9584 at 24 h; the one-step GRU trained the same
    // way reaches 0.4718, 0.6588 and 0.8216 there in closed loop (the test above)
    assert_below_persistence(&horizon, 24, 0.9);
    assert!(horizon.model[5].micro_mse < 0.45, "6 h ahead: {}", horizon.model[5].micro_mse);
    assert!(horizon.model[23].micro_mse < 0.70, "24 h ahead: {}", horizon.model[23].micro_mse);
    // the next hour costs little for it: the streamed score within 0.005 of the one-step
    // model's (0.1859)
    let streamed = outcome.scores[0].streamed.as_ref().unwrap();
    assert!((streamed.micro_mse - direct[0].micro_mse).abs() < 1e-9);
    assert!(streamed.micro_mse < 0.191, "1 h ahead: {}", streamed.micro_mse);
    // every step ahead on windows too, and `recur predict`'s forecasts: the next hour's is
    // the first of the 24
    let windows = task.evaluate_ahead(model, &data.test).unwrap();
    assert!(windows.iter().all(|m| m.micro_mse.is_finite()) && windows.len() == 24);
    let (next, day) = (task.forecast(model).unwrap(), task.forecast_ahead(model, 24).unwrap());
    assert_eq!(day[0].1.values.len(), 24 * data.grid.channels());
    for (j, (a, b)) in day[0].1.values.iter().zip(&next[0].1.values).enumerate() {
        assert!((a - b).abs() <= 1e-3 * (1.0 + b.abs()), "signal {j}: {a} vs {b}");
    }

    // the ±2σ band (a λ̂ per signal and hour ahead, read from z held constant: the
    // forecasts above score as the same model's without it, 0.1877 / 0.4306 / 0.6598 at
    // 1 / 6 / 24 h): measured 97.4 % of the test targets inside one hour ahead, 96.3 % a
    // day ahead, 93–100 % per signal; the batch and the step-by-step paths agree
    for (h, (batch, stepped)) in direct.iter().zip(&horizon.model).enumerate() {
        let (b, s) = (batch.coverage_2sigma.unwrap(), stepped.coverage_2sigma.unwrap());
        println!("{:>2} h ahead: ±2σ coverage {:.1} %", h + 1, 100.0 * b);
        assert!((0.94..0.985).contains(&b), "{} h ahead: coverage {b}", h + 1);
        assert!((b - s).abs() < 1e-3, "{} h ahead: coverage {b} batch, {s} step by step", h + 1);
        assert!(batch.per_signal_coverage_2sigma.iter().all(|&c| c > 0.9), "{:?}", batch.per_signal_coverage_2sigma);
    }
    assert!(horizon.model[24..].iter().all(|m| m.coverage_2sigma.is_none()), "no band in closed loop");
    assert_eq!(outcome.scores[0].coverage_2sigma, windows[0].coverage_2sigma, "the run's score: the next hour's band");
    // on the pollutants (concentrations, never negative) the symmetric band reaches below
    // zero often: configs/beijing-prediction-direct-log.toml reads them as ln(1 + x)
    let below = bands_below_zero(&task, model, &data, |_, v, low, high| assert!(low < v && v < high));
    let (under, all) = below[..6].iter().fold((0, 0), |(u, a), b| (u + b.0, a + b.1));
    println!("{under} of {all} bands of the pollutants reach below zero; PM2.5 {} of {}", below[0].0, below[0].1);
    // measured: 73.0 %, PM2.5's 77.7 %
    assert!(under * 100 > 60 * all, "{under} of {all}");
    // the band widens with the hours ahead, for every signal
    let (sigma, c) = (&day[0].1.sigma_standardised, data.grid.channels());
    assert_eq!(sigma.len(), 24 * c);
    for j in 0..c {
        assert!(
            sigma[23 * c + j] > sigma[j],
            "signal {j}: σ {} a day ahead, {} an hour ahead",
            sigma[23 * c + j],
            sigma[j]
        );
    }

    // split-conformal calibration on the validation part: the band held too much (97.4 %
    // an hour ahead), calibrated it holds 95.2-96.2 % of the test targets at every hour and
    // its interval score drops (measured: 1.8752 -> 1.7102 at 1 h, 3.7303 -> 3.5288 at 24
    // h, `recur calibrate --run DIR`); with every factor 1 nothing changes, bit for bit
    let calibration = task.calibrate_bands(model, &data.validation, 24, 0, 1).unwrap();
    assert_eq!((calibration.steps(), calibration.paths), (24, 0));
    assert!(calibration.scores.iter().all(|&n| n > 6000), "{:?}", calibration.scores);
    let ones = BandCalibration { scale: vec![1.0; 24 * c], ..calibration.clone() };
    let plain = task.evaluate_horizon(model, &data.test, 24).unwrap();
    let task = task.with_calibration(Some(ones));
    let unscaled = task.evaluate_horizon(model, &data.test, 24).unwrap();
    for (a, b) in plain.model.iter().zip(&unscaled.model) {
        assert_eq!(
            (a.coverage_2sigma, a.interval_score_2sigma, a.micro_mse),
            (b.coverage_2sigma, b.interval_score_2sigma, b.micro_mse)
        );
    }
    let task = task.with_calibration(Some(calibration));
    let calibrated = task.evaluate_horizon(model, &data.test, 24).unwrap();
    for (h, (before, after)) in plain.model.iter().zip(&calibrated.model).enumerate() {
        let (coverage, score) = (after.coverage_2sigma.unwrap(), after.interval_score_2sigma.unwrap());
        println!("{:>2} h ahead, calibrated: coverage {:.1} %, interval score {score:.4}", h + 1, 100.0 * coverage);
        assert!((0.945..0.966).contains(&coverage), "{} h ahead: {coverage}", h + 1);
        assert!(score < before.interval_score_2sigma.unwrap(), "{} h ahead: {score}", h + 1);
        assert_eq!(after.micro_mse, before.micro_mse, "the same forecasts");
    }
    assert!(calibrated.model[0].interval_score_2sigma.unwrap() < 0.95 * plain.model[0].interval_score_2sigma.unwrap());
}

#[test]
fn a_day_ahead_forecast_reading_the_pollutants_logarithm_bands_them_above_minus_one_scored_in_their_units() {
    let (config, data) = config_named("beijing-prediction-direct-log.toml");
    let pollutants = ["PM2.5", "PM10", "SO2", "NO2", "CO", "O3"];
    let logged: Vec<usize> = (0..data.grid.channels()).filter(|&j| data.scaler.is_log1p(j)).collect();
    assert_eq!(logged, [0, 1, 2, 3, 4, 5]);
    assert!(data.grid.signals[..6].iter().zip(pollutants).all(|(s, p)| s == p));
    // scores in each signal's own units: persistence (a last value is the same value either
    // way) scores as on the plain data, but where a window saw no value and falls back to
    // z = 0 (the mean of ln(1 + x), mapped back)
    let (_, plain) = config_named("beijing-prediction-direct.toml");
    let persistence = |data: &PreparedSeries| {
        let task = PredictionTask::new(data, config.task.window, config.task.residual).unwrap();
        task.baselines(&data.test).unwrap()[0].1.clone()
    };
    let (logged_persistence, plain_persistence) = (persistence(&data), persistence(&plain));
    assert_eq!(logged_persistence.scored, plain_persistence.scored);
    assert!((logged_persistence.micro_mse - plain_persistence.micro_mse).abs() < 1e-3);
    assert!((logged_persistence.mae - plain_persistence.mae).abs() < 1e-4);

    let outcome = run(&config, &data, None, false).unwrap();
    let task = PredictionTask::from_config(&data, &config.prediction()).unwrap();
    let horizon = task.evaluate_horizon(&outcome.model, &data.test, 24).unwrap();
    print_horizon(&horizon);
    // measured (seed 1): 0.1947 / 0.7233 at 1 / 24 h (the plain model 0.1877 / 0.6598), the
    // pollutants 94.4-97.0 % inside their bands one hour ahead (95.1-99.0 %)
    assert_below_persistence(&horizon, 24, 0.9);
    for (h, m) in horizon.model.iter().enumerate() {
        let coverage = m.coverage_2sigma.unwrap();
        println!(
            "{:>2} h ahead: ±2σ coverage {:.1} %, interval score {:.4}",
            h + 1,
            100.0 * coverage,
            m.interval_score_2sigma.unwrap()
        );
        assert!((0.94..0.985).contains(&coverage), "{} h ahead: {coverage}", h + 1);
    }
    let per_signal = &horizon.model[0].per_signal_coverage_2sigma;
    assert!(logged.iter().all(|&j| (0.935..0.975).contains(&per_signal[j])), "{per_signal:?}");
    // every band of a logged signal stays above -1 and reaches further up than down from
    // its forecast, at every hour ahead, over the test part as `recur stream` serves it;
    // measured: 5.4 % of them reach below zero (into (-1, 0)), where the plain model's
    // symmetric bands do for 73.0 % (PM2.5's for 77.7 %: the test above)
    let below = bands_below_zero(&task, &outcome.model, &data, |k, v, low, high| {
        if data.scaler.is_log1p(k) {
            assert!(low > -1.0 && low < v && high - v > v - low, "signal {k}: {low} {v} {high}");
        }
    });
    let (under, all) = logged.iter().fold((0, 0), |(u, a), &j| (u + below[j].0, a + below[j].1));
    println!("{under} of {all} bands of the pollutants reach below zero");
    assert!(under * 100 < 8 * all, "{under} of {all}");
}

#[test]
fn a_day_ahead_quantile_band_is_calibrated_uneven_and_scores_better_than_the_gaussian_one() {
    let (config, data) = config_named("beijing-prediction-direct-quantile.toml");
    let (gaussian, _) = config_named("beijing-prediction-direct.toml");
    assert_eq!(config.task.uncertainty, Uncertainty::Quantile);
    assert_eq!((&config.data, &config.model, config.task.steps_ahead), (&gaussian.data, &gaussian.model, 24));
    let outcome = run(&config, &data, None, false).unwrap();
    assert_eq!(outcome.model.head.precision.as_ref().unwrap().bias.data.len(), 2 * 24 * data.grid.channels());
    let task = PredictionTask::from_config(&data, &config.prediction()).unwrap();
    let horizon = task.evaluate_horizon(&outcome.model, &data.test, 24).unwrap();
    print_horizon(&horizon);
    // measured (seed 1): the forecasts are the Gaussian-band model's to 4 digits (0.1877 /
    // 0.6598 at 1 / 24 h: each band's loss reads the detached state); the band holds
    // 94.0-95.8 % at every hour ahead, with interval scores 1.542 / 3.350 against the
    // Gaussian band's 1.875 / 3.730 (`recur eval --run DIR --horizon 24` on both)
    assert_below_persistence(&horizon, 24, 0.9);
    for (h, m) in horizon.model.iter().enumerate() {
        let (coverage, score) = (m.coverage_2sigma.unwrap(), m.interval_score_2sigma.unwrap());
        println!("{:>2} h ahead: quantile band coverage {:.1} %, interval score {score:.4}", h + 1, 100.0 * coverage);
        assert!((0.93..0.97).contains(&coverage), "{} h ahead: {coverage}", h + 1);
    }
    let score = |h: usize| horizon.model[h - 1].interval_score_2sigma.unwrap();
    assert!(score(1) < 1.7 && score(24) < 3.55, "{} {}", score(1), score(24));
    let per_signal = &horizon.model[0].per_signal_coverage_2sigma;
    assert!(per_signal.iter().all(|c| (0.9..0.99).contains(c)), "{per_signal:?}");
    // as served live: never crossing, and uneven: on the pollutants the band reaches
    // further above the forecast than below it
    let (mut up, mut down) = (0.0f64, 0.0f64);
    let below = bands_below_zero(&task, &outcome.model, &data, |k, v, low, high| {
        assert!(low <= v && v <= high, "signal {k}: {low} {v} {high}");
        if k < 6 {
            (up, down) = (up + f64::from(high - v), down + f64::from(v - low));
        }
    });
    let (under, all) = below[..6].iter().fold((0, 0), |(u, a), b| (u + b.0, a + b.1));
    println!("{under} of {all} quantile bands of the pollutants reach below zero; above / below {:.2}", up / down);
    assert!(up > 1.2 * down, "above {up}, below {down}");
    // past the 24 direct hours, a band from sample paths fed split-normal draws at the
    // band's edges; measured (100 paths, to 48 h): 92.7 % at 25 h, interval score 3.47
    let sampled = task.evaluate_horizon_sampled(&outcome.model, &data.test, 26, 100, 3).unwrap();
    for h in [25, 26] {
        let m = &sampled.model[h - 1];
        let (coverage, score) = (m.coverage_2sigma.unwrap(), m.interval_score_2sigma.unwrap());
        println!("{h} h ahead, 100 paths: coverage {:.1} %, interval score {score:.4}", 100.0 * coverage);
        assert!((0.91..0.97).contains(&coverage) && score < 4.0, "{h} h: {coverage} {score}");
    }
    assert_eq!(sampled.model[23].micro_mse, horizon.model[23].micro_mse, "the same forecasts");

    // the same model with the pollutants' floor at 0 (`data.floor`): no band below zero,
    // every hour's coverage kept, its interval score and error never higher; measured
    // (`recur eval --horizon 24` with the floor added to the run's run.toml): interval
    // score 1.5418 -> 1.5214 at 1 h, 3.3503 -> 3.2840 at 24 h, micro MSE 0.1877 -> 0.1875
    let mut floored = data.clone();
    floored.scaler.floor = (0..data.grid.channels()).map(|j| (j < 6).then_some(0.0)).collect();
    let floored_task = PredictionTask::from_config(&floored, &config.prediction()).unwrap();
    let lifted = floored_task.evaluate_horizon(&outcome.model, &floored.test, 24).unwrap();
    for (h, (free, lifted)) in horizon.model.iter().zip(&lifted.model).enumerate() {
        let score = |m: &Metrics| m.interval_score_2sigma.unwrap();
        println!(
            "{:>2} h ahead, floored: interval score {:.4} (without the floor {:.4})",
            h + 1,
            score(lifted),
            score(free)
        );
        assert!(lifted.coverage_2sigma >= free.coverage_2sigma, "{} h", h + 1);
        assert!(score(lifted) <= score(free) && lifted.micro_mse <= free.micro_mse, "{} h", h + 1);
    }
    let score = |h: usize| lifted.model[h - 1].interval_score_2sigma.unwrap();
    assert!(score(1) < 0.995 * horizon.model[0].interval_score_2sigma.unwrap(), "{}", score(1));
    let below = bands_below_zero(&floored_task, &outcome.model, &floored, |k, v, low, _| {
        assert!(k >= 6 || (v >= 0.0 && low >= 0.0), "signal {k}: {low} {v}");
    });
    assert_eq!(below[..6].iter().map(|b| b.0).sum::<usize>(), 0);
}

/// Per signal, over the test part as `recur stream` serves it (24 hours ahead from every
/// hour): how many ±2σ bands reach below zero, of how many; `check` sees each (signal,
/// forecast, low, high).
fn bands_below_zero(
    task: &PredictionTask,
    model: &SequenceModel<f32>,
    data: &PreparedSeries,
    mut check: impl FnMut(usize, f32, f32, f32),
) -> Vec<(usize, usize)> {
    let c = data.grid.channels();
    let mut counts = vec![(0, 0); c];
    let mut live = task.stream(model).unwrap();
    for n in 0..data.test[0].end {
        let f = live.step_forecast(&data.original_step(n), 24).unwrap();
        if n >= data.test[0].start {
            for (k, ((&v, &low), &high)) in f.values.iter().zip(&f.low).zip(&f.high).enumerate() {
                check(k % c, v, low, high);
                counts[k % c].0 += usize::from(low < 0.0);
                counts[k % c].1 += 1;
            }
        }
    }
    counts
}

#[test]
fn sample_paths_band_a_next_hour_gru_fed_its_own_forecasts() {
    // the stream-trained next-hour GRU with a band (λ̂ per signal), in closed loop past the
    // next hour: its band from 100 sample paths, each fed draws from its own forecasts
    // (configs/beijing-prediction-stream.toml with the band)
    let (config, data) = config_named("beijing-prediction-stream-band.toml");
    let configs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let plain = RunConfig::load(configs.join("beijing-prediction-stream.toml")).unwrap();
    assert_eq!(
        (config.task.uncertainty, &config.data, &config.model),
        (Uncertainty::Gaussian, &plain.data, &plain.model)
    );
    let outcome = run(&config, &data, None, false).unwrap();
    let task = PredictionTask::from_config(&data, &config.prediction()).unwrap();
    let hours = 12;
    let sampled = task.evaluate_horizon_sampled(&outcome.model, &data.test, hours, 100, 7).unwrap();
    let plain = task.evaluate_horizon(&outcome.model, &data.test, hours).unwrap();
    // measured (seed 1, 100 paths, 24 hours): 97.3 % one hour ahead (the analytic band),
    // then 96.1, 95.6 … 95.0 % at 6 h, 95.5 % at 12 h, 96.7 % at 24 h
    for (h, (m, p)) in sampled.model.iter().zip(&plain.model).enumerate() {
        let coverage = m.coverage_2sigma.unwrap();
        println!(
            "{:>2} h ahead: micro MSE {:.4}, ±2σ coverage {:.1} %, interval score {:.4}",
            h + 1,
            m.micro_mse,
            100.0 * coverage,
            m.interval_score_2sigma.unwrap()
        );
        assert!((0.94..0.98).contains(&coverage), "{} h ahead: {coverage}", h + 1);
        assert_eq!(m.micro_mse, p.micro_mse, "the forecasts are the closed loop's, fed its means");
        assert!(h == 0 || p.coverage_2sigma.is_none());
    }
    // the band widens with the hours ahead
    let width = |h: usize| sampled.model[h].band_width_2sigma.unwrap();
    assert!(width(0) < width(2) && width(2) < width(hours - 1), "{} {} {}", width(0), width(2), width(hours - 1));
}

#[test]
fn an_interrupted_stream_trained_run_resumes_bit_identical() {
    // the next-hour GRU, and a direct 3-hour one with its band (its precisions started from
    // persistence's error once, not again on resume)
    for (steps_ahead, uncertainty) in [(1, Uncertainty::None), (3, Uncertainty::Gaussian)] {
        let (mut config, data) = config();
        config.model.hidden_size = 16;
        config.task.stream.as_mut().unwrap().steps = 240;
        (config.task.steps_ahead, config.task.uncertainty) = (steps_ahead, uncertainty);
        config.train =
            TrainConfig { epochs: 4, batch_size: 8, max_batches_per_epoch: 3, threads: 2, ..TrainConfig::default() };
        let p = config.prediction();
        let task = PredictionTask::from_config(&data, &p).unwrap();
        let model_config = p.model_config(data.grid.channels());
        let scratch = tempfile::Builder::new().prefix("recur-stream-resume-").tempdir().unwrap();
        let dir = scratch.path().join("run");
        let whole = train(&task, &model_config, &p.train, None, false, None).unwrap();
        assert_eq!(whole.log.len(), 4);
        assert!(whole.log.iter().all(|e| e.train_loss.is_finite() && e.validation.is_finite()));
        train(&task, &model_config, &p.train, Some(&dir), false, Some(2)).unwrap();
        let resumed = train(&task, &model_config, &p.train, Some(&dir), true, None).unwrap();
        assert_eq!(resumed.log, whole.log, "steps ahead {steps_ahead}");
        assert_eq!(resumed.model, whole.model, "steps ahead {steps_ahead}");
        assert_eq!(whole.model.head.precision.is_some(), uncertainty.is_some());
    }
}
