//! The prediction task's unit tests, on synthetic series.

use super::band::quantiles;
use super::*;
use crate::data::grid::bins_since_observed;
use crate::data::FittedScaler;
use crate::data::{Calendar, CalendarCycle, Clock, GridSeries, SplitFractions};
use recur_kernels::Real;

/// Synthetic: two ramps over 100 steps, the second signal missing at every third step;
/// split 60 / 20 / 20 in time.
pub(crate) fn ramps() -> PreparedSeries {
    ramps_screened(0.0)
}

/// [`ramps`] with the outlier screen at `limit` robust SDs (0: off).
fn ramps_screened(limit: f64) -> PreparedSeries {
    let n = 100;
    let values: Vec<f32> = (0..n).flat_map(|t| [t as f32, 100.0 - 2.0 * t as f32]).collect();
    let observed: Vec<bool> = (0..n).flat_map(|t| [true, t % 3 != 0]).collect();
    let delta = bins_since_observed(&observed, 2);
    let (signals, clock) = (vec!["a".into(), "b".into()], Clock::Calendar);
    let grid = GridSeries { signals, start: 0, clock, bin_seconds: 60, values, observed, delta };
    let entities = vec![("e".into(), grid)];
    PreparedSeries::from_entities_screened(entities, SplitFractions::default(), limit, &[], &Default::default())
        .unwrap()
}

#[test]
fn a_stream_takes_out_what_the_training_outlier_screen_took_out() {
    // synthetic: the ramps screened at 5 robust SDs; a wild value of `a` in the feed is
    // read as missing, as training read such values, while an ordinary one is read
    let data = ramps_screened(5.0);
    let model = SequenceModel::<f32>::new(PredictionConfig::default().model_config(2), 3).unwrap();
    let task = PredictionTask::new(&data, 12, true).unwrap();
    let feed = |fifth: Option<f32>| -> Vec<Vec<f32>> {
        let mut stream = task.stream(&model).unwrap();
        (0..10)
            .map(|t| {
                let a = if t == 5 { fifth } else { Some(t as f32) };
                stream.step(&[a, Some(100.0 - 2.0 * t as f32)]).unwrap()
            })
            .collect()
    };
    assert_eq!(feed(Some(1.0e6)), feed(None), "a wild value is a gap");
    assert_ne!(feed(Some(5.0)), feed(None), "an ordinary value is read");
    // and the screen travels with the run folder's scaler
    let fitted = FittedScaler::of(&data);
    let text = serde_json::to_string(&fitted).unwrap();
    assert_eq!(serde_json::from_str::<FittedScaler>(&text).unwrap(), fitted);
    assert!(fitted.scaler.screens_out(0, 1.0e6));
}

#[test]
fn direct_targets_are_the_steps_ahead_and_stop_at_the_end_of_the_part() {
    let series = ramps();
    assert_eq!((series.train.len(), series.train[0].clone()), (1, 0..60));
    let (c, g) = (2, &series.grid);
    // window of 5 from step 50: inputs 50..=53, targets 54..=61, training part ends at 60
    let direct = make_batch(&series, &series.train, &[50], 5, (true, 8), &[0, 1]);
    let next = make_batch(&series, &series.train, &[50], 5, (true, 1), &[0, 1]);
    assert_eq!(direct.x, next.x);
    for h in 1..=8 {
        let (k, block) = (53 + h, (h - 1) * c..h * c);
        for j in 0..c {
            let (at, inside) = (block.start + j, k < 60);
            let observed = inside && g.observed[k * c + j];
            assert_eq!(direct.mask[at], observed as u8 as f32, "step {k} signal {j}");
            assert_eq!(direct.target[at], if inside { g.values[k * c + j] } else { 0.0 });
            // the same base, each signal's last observation in the window, in every block
            assert_eq!(direct.base[at], next.base[j]);
        }
    }
    assert_eq!(direct.target[..c], next.target[..]);
    assert_eq!(direct.mask[..c], next.mask[..]);
    // signal b was last observed at step 53 (53 % 3 != 0); at step 51 for a window to 51
    assert_eq!(next.base[1], g.values[53 * c + 1]);

    // a stream: row t's block h is row t + h − 1's next step
    let stream = make_stream_batch(&series, std::slice::from_ref(&(10..40)), 30, 4, true, 5, &[0, 1], |s| {
        part_end(&series.train, s)
    });
    let at = |t: usize, h: usize, j: usize| (t * 5 + h - 1) * c + j;
    for t in 0..26 {
        for h in 1..=5 {
            for j in 0..c {
                assert_eq!(stream.target[at(t, h, j)], stream.target[at(t + h - 1, 1, j)]);
                assert_eq!(stream.mask[at(t, h, j)], stream.mask[at(t + h - 1, 1, j)]);
                assert_eq!(stream.base[at(t, h, j)], stream.base[at(t, 1, j)]);
            }
        }
    }
}

#[test]
fn a_fresh_gaussian_head_starts_with_persistences_error_band() {
    let series = ramps();
    let task = PredictionTask::new(&series, 5, true).unwrap().forecasting(3).unwrap();
    // signal a, always observed, changes by 1 / std each step: persistence h steps ahead
    // misses by h / std
    let v = task.persistence_variance(3);
    let std = series.scaler.std[0] as f64;
    for h in 1..=3 {
        let want = (h as f64 / std).powi(2);
        assert!((v[(h - 1) * 2] / want - 1.0).abs() < 1e-4, "h = {h}: {} against {want}", v[(h - 1) * 2]);
    }
    for y in [1e-3, 0.5, 1.0, 40.0, 1e4] {
        let back = inverse_softplus(y).softplus();
        assert!((back / y - 1.0).abs() < 1e-9, "softplus(softplus⁻¹({y})) = {back}");
    }
    let config = PredictionConfig { steps_ahead: 3, uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
    let mut model = SequenceModel::<f32>::new(config.model_config(2), 1).unwrap();
    task.initialize(&mut model);
    let precision = model.head.precision.as_ref().unwrap();
    for (b, v) in precision.bias.data.iter().zip(&v) {
        assert!((f64::from(*b).softplus() * v - 1.0).abs() < 1e-3, "λ̂ = 1 / v at a zero state");
    }
    assert!(model.config().detach_precision && model.config().precisions == 6);
}

#[test]
fn sample_paths_band_the_closed_loop_and_collapse_onto_it_without_noise() {
    // synthetic ramps; a 2-step direct model with σ, 6 steps ahead (4 in closed loop)
    let series = ramps();
    let task = PredictionTask::new(&series, 5, true).unwrap();
    let config = PredictionConfig { steps_ahead: 2, uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
    let mut model = SequenceModel::<f32>::new(config.model_config(2), 4).unwrap();
    let steps: Vec<Vec<Option<f32>>> = (0..12).map(|n| series.original_step(n)).collect();
    let run = |task: &PredictionTask, model: &SequenceModel<f32>, paths: usize, seed: u64| {
        let mut live = task.stream(model).unwrap();
        let mut rng = Rng::new(seed);
        let mut last = Forecast::default();
        for step in &steps {
            last = live.step_forecast_sampled(step, 6, paths, &mut rng).unwrap();
        }
        last
    };
    let plain_of = |task: &PredictionTask, model: &SequenceModel<f32>| {
        let mut live = task.stream(model).unwrap();
        steps.iter().map(|s| live.step_forecast(s, 6).unwrap()).last().unwrap()
    };
    let plain = plain_of(&task, &model);
    let sampled = run(&task, &model, 64, 1);
    // the forecasts and the direct steps' bands are step_forecast's; a band for every row
    assert_eq!(
        (sampled.values.clone(), sampled.sigma_standardised.clone()),
        (plain.values.clone(), plain.sigma_standardised.clone())
    );
    assert_eq!((sampled.low[..4].to_vec(), sampled.high[..4].to_vec()), (plain.low.clone(), plain.high.clone()));
    assert_eq!((sampled.low.len(), sampled.high.len()), (12, 12));
    assert!(sampled.low.iter().zip(&sampled.high).all(|(l, h)| l < h));
    assert_eq!(run(&task, &model, 64, 1), sampled, "the same seed, the same band");
    assert_ne!(run(&task, &model, 64, 2).low, sampled.low);
    // σ → 0 (λ̂ ≈ 1e8): every path is the closed loop fed its means, the band its forecast
    model.head.precision.as_mut().unwrap().bias.data.fill(1e8);
    let collapses = |task: &PredictionTask, model: &SequenceModel<f32>| {
        let (plain, tight) = (plain_of(task, model), run(task, model, 8, 1));
        for (k, ((&v, &low), &high)) in plain.values.iter().zip(&tight.low).zip(&tight.high).enumerate().skip(4) {
            let scale = series.scaler.std[k % 2];
            assert!(
                (low - v).abs() < 1e-3 * scale && (high - v).abs() < 1e-3 * scale,
                "row {}: {low} {v} {high}",
                k / 2
            );
        }
        plain
    };
    collapses(&task, &model);
    // a floor above every value of b: the closed loop is fed b's forecasts lifted to it, and
    // so must every path be, or a's band leaves a's closed-loop forecast
    let mut floored = series.clone();
    floored.scaler.floor = vec![None, Some(200.0)];
    let task = PredictionTask::new(&floored, 5, true).unwrap();
    let plain = collapses(&task, &model);
    let b: Vec<f32> = plain.values.iter().skip(1).step_by(2).copied().collect();
    assert!(b.iter().all(|&b| b >= 200.0) && b[0] == 200.0, "the floor binds: {b:?}");
    // paths need a band
    let linear = SequenceModel::<f32>::new(PredictionConfig::default().model_config(2), 1).unwrap();
    let mut live = task.stream(&linear).unwrap();
    let err = live.step_forecast_sampled(&steps[0], 3, 10, &mut Rng::new(0)).unwrap_err().to_string();
    assert!(err.contains("the model has no band") && err.contains("task.uncertainty"), "{err}");
    let err = task.stream(&model).unwrap().step_forecast_sampled(&steps[0], 3, 0, &mut Rng::new(0)).unwrap_err();
    assert!(err.to_string().contains("no path"), "{err}");
}

#[test]
fn quantiles_interpolate_between_order_statistics() {
    let mut v = [4.0f32, 0.0, 3.0, 1.0, 2.0];
    assert_eq!(quantiles(&mut v, [0.0, 0.5, 1.0, 0.125]), [0.0, 2.0, 4.0, 0.5]);
    assert_eq!(quantiles(&mut [7.0f32], [0.02275, 0.97725]), [7.0, 7.0]);
}

#[test]
fn a_direct_stream_gives_its_steps_with_sigma_and_refuses_bad_input_by_name() {
    let series = ramps();
    let task = PredictionTask::new(&series, 5, true).unwrap();
    let config = PredictionConfig { steps_ahead: 3, uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
    let model = SequenceModel::<f32>::new(config.model_config(2), 1).unwrap();
    let mut live = task.stream(&model).unwrap();
    assert_eq!((live.steps_ahead(), live.has_sigma()), (3, true));
    let step = series.original_step(10);
    // 5 steps: 3 direct with σ, 2 in closed loop without
    let f = live.step_forecast(&step, 5).unwrap();
    assert_eq!((f.values.len(), f.sigma_standardised.len(), f.low.len(), f.high.len()), (10, 6, 6, 6));
    assert!(f.sigma_standardised.iter().all(|s| s.is_finite() && *s > 0.0));
    for (k, (&low, &high)) in f.low.iter().zip(&f.high).enumerate() {
        let (v, s) = (f.values[k], 2.0 * f.sigma_standardised[k] * series.scaler.std[k % 2]);
        assert!(low < v && v < high, "{low} < {v} < {high}");
        assert!((high - v - s).abs() < 1e-4 * s && (v - low - s).abs() < 1e-4 * s, "symmetric: ±{s}");
    }
    // the direct steps do not depend on how far the rollout goes
    let mut again = task.stream(&model).unwrap();
    assert_eq!(again.step_forecast(&step, 2).unwrap().values, f.values[..4]);
    let err = live.step_forecast(&[Some(1.0)], 2).err().unwrap();
    assert!(err.to_string().contains("step values"), "{err}");
    let err = live.step_forecast(&[Some(f32::NAN), None], 2).err().unwrap();
    assert!(err.to_string().contains("signal `a`"), "{err}");
    let scratch = tempfile::Builder::new().prefix("recur-ahead-chart-").tempdir().unwrap();
    let out = scratch.path().join("ahead.png");
    let chart = |entity: &str, forecast: &Forecast, signal: usize| {
        crate::report::save_forecast_ahead_chart(&series, entity, (forecast, task.targets()), signal, 20, &out)
    };
    assert!(chart("nobody", &f, 0).err().unwrap().to_string().contains("no entity `nobody`"));
    assert!(chart("e", &f, 7).err().unwrap().to_string().contains("no target 7"));
    let odd = Forecast { values: vec![1.0; 3], ..Forecast::default() };
    assert!(chart("e", &odd, 0).err().unwrap().to_string().contains("not whole steps of 2 target signals"));
    chart("e", &f, 1).unwrap();
    assert!(std::fs::read(&out).unwrap().starts_with(b"\x89PNG"));
}

#[test]
fn windowed_and_streamed_scores_scale_each_steps_band_by_the_tasks_calibration() {
    // synthetic ramps; a direct 3-step model with σ, its bands scaled ×2 one step ahead
    // and ×½ two and three steps ahead (two signals)
    let series = ramps();
    let task = PredictionTask::new(&series, 5, true).unwrap().forecasting(3).unwrap();
    let config = PredictionConfig { steps_ahead: 3, uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
    let mut model = SequenceModel::<f32>::new(config.model_config(2), 1).unwrap();
    task.initialize(&mut model);
    let scale = vec![2.0, 2.0, 0.5, 0.5, 0.5, 0.5];
    let calibration =
        BandCalibration { signals: series.grid.signals.clone(), scale: scale.clone(), scores: vec![10; 6], paths: 0 };
    let calibrated =
        PredictionTask::new(&series, 5, true).unwrap().forecasting(3).unwrap().with_calibration(Some(calibration));
    for (plain, scaled) in [
        (task.evaluate_ahead(&model, &series.test), calibrated.evaluate_ahead(&model, &series.test)),
        (task.evaluate_streamed_ahead(&model, &series.test), calibrated.evaluate_streamed_ahead(&model, &series.test)),
    ] {
        let (plain, scaled) = (plain.unwrap(), scaled.unwrap());
        for (h, (p, s)) in plain.iter().zip(&scaled).enumerate() {
            assert_eq!((p.micro_mse, p.scored), (s.micro_mse, s.scored), "the errors do not change");
            let ratio = s.band_width_2sigma.unwrap() / p.band_width_2sigma.unwrap();
            assert!((ratio - f64::from(scale[2 * h])).abs() < 1e-5, "{} steps ahead: {ratio}", h + 1);
        }
    }
}

#[test]
fn a_quantile_head_starts_at_persistences_band_and_serves_uneven_bands_that_never_cross() {
    // synthetic ramps; a direct 3-step model with a quantile band
    let series = ramps();
    let task = PredictionTask::new(&series, 5, true).unwrap().forecasting(3).unwrap();
    let config = PredictionConfig { steps_ahead: 3, uncertainty: Uncertainty::Quantile, ..PredictionConfig::default() };
    let model_config = config.model_config(2);
    assert_eq!((model_config.head, model_config.precisions, model_config.outputs), (HeadKind::Quantile, 12, 6));
    let mut model = SequenceModel::<f32>::new(model_config.clone(), 1).unwrap();
    task.initialize(&mut model);
    // both distances of every value start where persistence's ±2σ would reach
    let v = task.persistence_variance(3);
    let bias = &model.head.precision.as_ref().unwrap().bias.data;
    for (i, b) in bias.iter().enumerate() {
        let want = 2.0 * v[i % 6].sqrt();
        assert!((f64::from(b.softplus()) / want - 1.0).abs() < 1e-4, "{i}: {} against {want}", b.softplus());
    }
    // one side moved: the band follows it, uneven, and never crosses its forecast
    for b in &mut model.head.precision.as_mut().unwrap().bias.data[6..] {
        *b += 1.5;
    }
    let mut live = task.stream(&model).unwrap();
    assert_eq!((live.has_band(), live.has_sigma()), (true, false));
    let f = live.step_forecast(&series.original_step(10), 5).unwrap();
    assert_eq!((f.values.len(), f.sigma_standardised.len(), f.low.len(), f.high.len()), (10, 0, 6, 6));
    for (k, (&low, &high)) in f.low.iter().zip(&f.high).enumerate() {
        let v = f.values[k];
        assert!(low < v && v < high && high - v > 1.5 * (v - low), "{k}: {low} < {v} < {high}");
    }
    // scored with its band; sample paths past the direct steps, the direct ones as they were
    let scores = task.evaluate_ahead(&model, &series.test).unwrap();
    assert!(scores.iter().all(|m| m.coverage_2sigma.is_some() && m.interval_score_2sigma.unwrap() > 0.0));
    let (mut a, mut b) = (task.stream(&model).unwrap(), task.stream(&model).unwrap());
    let (plain, sampled) = (
        a.step_forecast(&series.original_step(10), 5).unwrap(),
        b.step_forecast_sampled(&series.original_step(10), 5, 200, &mut Rng::new(1)).unwrap(),
    );
    assert_eq!((sampled.values.clone(), sampled.low.len()), (plain.values.clone(), 10));
    assert_eq!((&sampled.low[..6], &sampled.high[..6]), (&plain.low[..], &plain.high[..]));
    assert!((6..10).all(|k| sampled.low[k] < sampled.high[k] && sampled.low[k].is_finite()));
    // the split normal's draws: the band's edges are their 2.275 % and 97.725 % quantiles
    let spread = Spread::Quantiles { below: vec![0.5], above: vec![2.0] };
    let (down, up) = spread.draw_scales().unwrap();
    let mut noise = vec![0.0f32; 200_000];
    Rng::new(5).fill_normal(&mut noise);
    let mut draws: Vec<f32> = noise.iter().map(|&e| 1.0 + if e < 0.0 { down[0] } else { up[0] } * e).collect();
    let [low, median, high] = quantiles(&mut draws, [0.02275, 0.5, 0.97725]);
    assert!(
        (low - 0.5).abs() < 0.01 && (median - 1.0).abs() < 0.01 && (high - 3.0).abs() < 0.03,
        "{low} {median} {high}"
    );
    // the head's shape is checked
    let wrong = ModelConfig { precisions: 6, ..model_config };
    let err = SequenceModel::<f32>::new(wrong, 1).err().unwrap();
    assert!(err.to_string().contains("two distances for each of its 6 outputs, not 6"), "{err}");
}

#[test]
fn the_band_setting_reads_true_false_and_names_and_writes_back_as_read() {
    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Task {
        uncertainty: Uncertainty,
    }
    for (text, want) in [
        ("uncertainty = false", Uncertainty::None),
        ("uncertainty = true", Uncertainty::Gaussian),
        ("uncertainty = \"gaussian\"", Uncertainty::Gaussian),
        ("uncertainty = \"quantile\"", Uncertainty::Quantile),
        ("uncertainty = \"none\"", Uncertainty::None),
    ] {
        let task: Task = toml::from_str(text).unwrap();
        assert_eq!(task.uncertainty, want, "{text}");
        assert_eq!(toml::from_str::<Task>(&toml::to_string(&task).unwrap()).unwrap(), task);
    }
    assert_eq!(toml::to_string(&Task { uncertainty: Uncertainty::Gaussian }).unwrap().trim(), "uncertainty = true");
    for bad in ["uncertainty = \"normal\"", "uncertainty = 2"] {
        let err = toml::from_str::<Task>(bad).unwrap_err().to_string();
        assert!(err.contains("expected false, true (\"gaussian\") or \"quantile\""), "{bad}: {err}");
    }
}

#[test]
fn a_task_forecasting_some_signals_reads_them_all_and_scores_those_alone() {
    // synthetic ramps: `b` alone forecast 2 steps ahead with a band, from `a` and `b`
    let series = ramps();
    let config = PredictionConfig {
        window: 5,
        steps_ahead: 2,
        uncertainty: Uncertainty::Gaussian,
        targets: vec!["b".into()],
        ..PredictionConfig::default()
    };
    let model_config = config.model_config(2);
    assert_eq!((model_config.encoder.input_size, model_config.outputs, model_config.precisions), (4, 2, 2));
    let model = SequenceModel::<f32>::new(model_config, 3).unwrap();
    let task = PredictionTask::from_config(&series, &config).unwrap();
    assert_eq!((task.targets().names(), task.targets().indices()), (&["b".to_string()][..], &[1][..]));
    assert_eq!(task.targets().scaler().mean, [series.scaler.mean[1]]);

    // the inputs are every signal's; the targets, masks and bases b's entries of the
    // task forecasting both
    let every =
        PredictionTask::from_config(&series, &PredictionConfig { targets: Vec::new(), ..config.clone() }).unwrap();
    let mut rng = Rng::new(0);
    let (one, both) = (task.make_batch(&[0, 7, 20], &mut rng), every.make_batch(&[0, 7, 20], &mut rng));
    assert_eq!(one.x, both.x);
    for (one, both) in [(&one.target, &both.target), (&one.mask, &both.mask), (&one.base, &both.base)] {
        assert_eq!(*one, both.chunks_exact(2).map(|ab| ab[1]).collect::<Vec<f32>>());
    }
    // persistence and the mean score as b's own entries of the full task's
    for ((name, one), (_, both)) in
        task.baselines(&series.test).unwrap().iter().zip(&every.baselines(&series.test).unwrap())
    {
        assert!((one.micro_mse - both.per_signal_mse[1]).abs() < 1e-9, "{name}");
        assert!((one.micro_mse_original - both.per_signal_mse_original[1]).abs() < 1e-6, "{name}");
    }
    // a fresh Gaussian head starts at persistence's band of b
    let variance = task.persistence_variance(2);
    assert_eq!(variance.len(), 2);
    assert!((variance[0] - every.persistence_variance(2)[1]).abs() < 1e-12);

    // the stream forecasts b as the whole sequence does, scored against b's truth
    let forecasts = task.forecasts(&model, 10..40).unwrap();
    let truth: Vec<f32> = (10..40).map(|n| series.grid.values[n * 2 + 1]).collect();
    assert_eq!((forecasts.model.len(), forecasts.truth.clone()), (30, truth));
    let mut live = task.stream(&model).unwrap();
    assert_eq!((live.signals().len(), live.targets()), (2, &["b".to_string()][..]));
    for n in 0..39 {
        let (z, _) = live.step_direct_standardised(&series.original_step(n)).unwrap();
        assert_eq!(z.len(), 2);
        if n + 1 >= 10 {
            assert!((z[0] - forecasts.model[n + 1 - 10]).abs() < 1e-5, "step {n}");
        }
    }
    let f = live.step_forecast(&series.original_step(39), 2).unwrap();
    assert_eq!((f.values.len(), f.low.len(), f.sigma_standardised.len()), (2, 2, 2));
    // past the direct steps a closed loop would need `a`: refused before the step is fed
    let unmoved = live.clone();
    let err = live.step_forecast(&series.original_step(40), 3).err().unwrap().to_string();
    assert!(err.contains("forecasts 1 of the 2 signals it reads") && err.contains("task.steps_ahead = 3"), "{err}");
    let err = live.step_forecast_sampled(&series.original_step(40), 3, 10, &mut rng).err().unwrap().to_string();
    assert!(err.contains("task.steps_ahead = 3"), "{err}");
    assert_eq!(live.step(&series.original_step(40)).unwrap(), unmoved.clone().step(&series.original_step(40)).unwrap());
    let horizon = task.evaluate_horizon(&model, &series.test, 2).unwrap();
    assert_eq!(horizon.model[1].per_signal_mse.len(), 1);
    assert!(task.evaluate_horizon(&model, &series.test, 3).is_err());

    for (targets, why) in
        [(vec!["c"], "no signal `c` in the data; its signals are a, b"), (vec!["b", "b"], "`b` is named twice")]
    {
        let targets: Vec<String> = targets.into_iter().map(String::from).collect();
        let err = PredictionTask::new(&series, 5, true).unwrap().with_targets(&targets).err().unwrap().to_string();
        assert!(err.contains("task.targets") && err.contains(why), "{err}");
    }
}

#[test]
fn zero_steps_ahead_and_a_model_of_the_wrong_width_are_refused() {
    let series = ramps();
    let task = PredictionTask::new(&series, 5, true).unwrap();
    let err = PredictionTask::new(&series, 5, true).unwrap().forecasting(0).err().unwrap();
    assert!(err.to_string().contains("steps_ahead"), "{err}");
    let config = PredictionConfig::default();
    let odd = config.model.model_config(4, HeadKind::Linear, 3);
    let model = SequenceModel::<f32>::new(odd, 1).unwrap();
    let err = task.steps_ahead_of(&model).err().unwrap();
    assert!(err.to_string().contains("3 outputs per step"), "{err}");
    let direct = PredictionConfig { steps_ahead: 3, ..config }.model_config(2);
    let model = SequenceModel::<f32>::new(direct, 1).unwrap();
    assert_eq!(task.steps_ahead_of(&model).unwrap(), 3);
}

/// Synthetic: the ramps on an hourly grid from 2024-01-01 00:00 UTC (a Monday), read
/// with the day and week calendar inputs.
fn ramps_with_calendar() -> (PreparedSeries, Calendar) {
    let mut series = ramps();
    series.grid.bin_seconds = 3600;
    series.grid.start = 1_704_067_200;
    series.entity_starts = vec![series.grid.start];
    let calendar = Calendar::new(&[CalendarCycle::Day, CalendarCycle::Week], 0.0).unwrap();
    (series.with_calendar(calendar.clone()).unwrap(), calendar)
}

#[test]
fn calendar_inputs_are_each_steps_phases_in_batches_and_in_a_stream() {
    let (series, calendar) = ramps_with_calendar();
    let (c, k) = (2, calendar.width());
    let width = 2 * c + k;
    // a stream from step 10: row t reads step 10 + t's phases after its values and mask
    let batch = make_stream_batch(&series, std::slice::from_ref(&(10..40)), 30, 11, true, 1, &[0, 1], |s| {
        part_end(&series.train, s)
    });
    let mut expected = vec![0.0f32; k];
    for t in 0..30 {
        calendar.write(series.grid.start + (10 + t as i64) * 3600, &mut expected);
        assert_eq!(batch.x[t * width + 2 * c..(t + 1) * width], expected[..], "step {}", 10 + t);
    }
    // hour 13 of the first Monday: the day's phase 13/24
    let day = f64::from(batch.x[3 * width + 2 * c]).atan2(f64::from(batch.x[3 * width + 2 * c + 1]));
    assert!((day.rem_euclid(std::f64::consts::TAU) / std::f64::consts::TAU - 13.0 / 24.0).abs() < 1e-6);

    // the model reads them: a stream given each step's time forecasts as the whole
    // sequence does, and another time of day gives other forecasts
    let config = PredictionConfig { calendar_inputs: k, ..PredictionConfig::default() };
    let model = SequenceModel::<f32>::new(config.model_config(c), 5).unwrap();
    let task = PredictionTask::from_config(&series, &PredictionConfig { window: 12, ..config.clone() }).unwrap();
    let whole = make_stream_batch(&series, std::slice::from_ref(&(0..40)), 40, 11, true, 1, &[0, 1], |s| {
        part_end(&series.train, s)
    });
    let out = model.forward_at(&task.input(&whole), HeadSteps::All).unwrap();
    let sequence = predictions(&out.mean, &whole.base);
    let streamed = |shift: i64| -> Vec<f32> {
        let mut live = task.stream(&model).unwrap();
        assert!(live.reads_calendar());
        live.at(series.step_time(0) + shift);
        (0..40).flat_map(|n| live.step_direct_standardised(&series.original_step(n)).unwrap().0).collect()
    };
    let own = streamed(0);
    assert!(own.iter().zip(&sequence).all(|(a, b)| (a - b).abs() < 1e-5), "{own:?}\n{sequence:?}");
    let later = streamed(6 * 3600);
    assert!(own.iter().zip(&later).any(|(a, b)| (a - b).abs() > 1e-4), "six hours later reads other phases");

    // closed loop: the copy past the direct step reads the phases of the steps it runs on
    let mut live = task.stream(&model).unwrap();
    live.at(series.step_time(0));
    for n in 0..20 {
        live.step(&series.original_step(n)).unwrap();
    }
    let mut by_hand = live.clone();
    let ahead = live.step_ahead(&series.original_step(20), 3).unwrap();
    let mut fed = by_hand.step(&series.original_step(20)).unwrap();
    for h in 1..3 {
        fed = by_hand.step(&fed.iter().map(|&v| Some(v)).collect::<Vec<_>>()).unwrap();
        assert_eq!(ahead[h * c..(h + 1) * c], fed[..], "step {h} ahead");
    }

    // without a time the stream cannot read the calendar, and says so
    let err = task.stream(&model).unwrap().step(&series.original_step(0)).unwrap_err().to_string();
    assert!(err.contains("reads the calendar (day sin, day cos, week sin, week cos)"), "{err}");
    // a config without the calendar inputs does not fit the data
    let err = PredictionTask::from_config(&series, &PredictionConfig::default()).err().unwrap().to_string();
    assert!(err.contains("reads 0 per step, the data has 4"), "{err}");
    // nor does a model of another width stream
    let plain = SequenceModel::<f32>::new(PredictionConfig::default().model_config(c), 5).unwrap();
    let err = task.stream(&plain).err().unwrap().to_string();
    assert!(err.contains("and 4 calendar inputs (day sin"), "{err}");
}

#[test]
fn a_runs_calendar_travels_in_its_scaler_file_and_older_files_read_without_one() {
    let (series, calendar) = ramps_with_calendar();
    let fitted = FittedScaler::of(&series);
    assert_eq!(fitted.calendar, calendar);
    let text = serde_json::to_string(&fitted).unwrap();
    assert_eq!(serde_json::from_str::<FittedScaler>(&text).unwrap(), fitted);
    let plain = FittedScaler::of(&ramps());
    let older = serde_json::to_string(&plain).unwrap();
    assert!(!older.contains("calendar"), "{older}");
    assert_eq!(serde_json::from_str::<FittedScaler>(&older).unwrap().calendar, Calendar::default());
    let moved = FittedScaler { bin_seconds: 3600, ..plain }.difference(&fitted).unwrap();
    assert!(moved.contains("calendar inputs [] at UTC+0 s → [day sin, day cos, week sin, week cos]"), "{moved}");
    // elapsed times (PhysioNet's H:MM) have no time of day
    let mut elapsed = ramps();
    elapsed.grid.clock = Clock::Elapsed;
    let err = elapsed.with_calendar(calendar).err().unwrap().to_string();
    assert!(err.contains("data.calendar") && err.contains("not calendar times"), "{err}");
}

#[test]
fn errors_by_time_group_the_streamed_forecasts_and_pool_to_the_horizons_first_step() {
    // synthetic: the ramps from Monday 2024-01-01 00:00 UTC, hourly, read at UTC+2
    let (mut series, _) = ramps_with_calendar();
    series.calendar.utc_offset_seconds = 7200;
    let c = 2;
    let config = PredictionConfig { calendar_inputs: 4, window: 6, ..PredictionConfig::default() };
    let model = SequenceModel::<f32>::new(config.model_config(c), 9).unwrap();
    let task = PredictionTask::from_config(&series, &config).unwrap();
    let pooled = task.evaluate_horizon(&model, &series.test, 1).unwrap();
    for group in TimeGroup::ALL {
        let by = task.evaluate_by_time(&model, &series.test, group).unwrap();
        assert_eq!(by.model.len(), group.labels().len());
        for (all, parts) in [(&pooled.model[0], &by.model), (&pooled.persistence[0], &by.baseline)] {
            let scored: u64 = parts.iter().map(|m| m.scored).sum();
            let squares: f64 = parts.iter().map(|m| m.micro_mse * m.scored as f64).sum();
            assert_eq!(scored, all.scored, "{group:?}");
            assert!((squares / scored as f64 - all.micro_mse).abs() < 1e-9, "{group:?}");
        }
    }
    // the test part (steps 80..100, a window of 6) forecasts steps 85..=99: hours 13..=27
    // UTC, 15..=29 local, on Thursday (day 3) and Friday
    let by_hour = task.evaluate_by_time(&model, &series.test, TimeGroup::HourOfDay).unwrap();
    let hours: Vec<usize> = (0..24).filter(|&h| by_hour.model[h].scored > 0).collect();
    let expected: Vec<usize> = (0..24).filter(|h| !(6..15).contains(h)).collect();
    assert_eq!(hours, expected);
    let by_day = task.evaluate_by_time(&model, &series.test, TimeGroup::Weekday).unwrap();
    let days: Vec<usize> = (0..7).filter(|&d| by_day.model[d].scored > 0).collect();
    assert_eq!(days, [3, 4], "Thursday and Friday");
    assert_eq!(TimeGroup::Weekday.labels()[3], "Thu");
    let by_month = task.evaluate_by_time(&model, &series.test, TimeGroup::Month).unwrap();
    assert!(by_month.model.iter().enumerate().all(|(m, e)| (e.scored > 0) == (m == 0)), "all in January");
    let mut elapsed = ramps();
    elapsed.grid.clock = Clock::Elapsed;
    let task = PredictionTask::new(&elapsed, 6, true).unwrap();
    let plain = SequenceModel::<f32>::new(PredictionConfig::default().model_config(c), 9).unwrap();
    let err = task.evaluate_by_time(&plain, &elapsed.test, TimeGroup::HourOfDay).err().unwrap().to_string();
    assert!(err.contains("no time of day"), "{err}");
}
