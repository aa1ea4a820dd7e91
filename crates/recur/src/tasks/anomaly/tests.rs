//! The anomaly module's unit tests, on synthetic series and scores.

use std::collections::HashSet;

use super::*;
use crate::model::ModelSection;
use crate::rng::Rng;
use crate::tasks::prediction::tests::ramps;
use crate::tasks::{LiveState, LiveStream, PredictionConfig, ReconstructionConfig, Uncertainty};

/// A value of step `step` and target `target` scored `scores` by the model,
/// persistence, the level and the flatline rule, nothing else known of it (synthetic).
pub(crate) fn scored_value(step: usize, target: usize, scores: [f32; 4]) -> ScoredValue {
    let [surprise, persistence, level, flatline] = scores;
    let (value, expected, low, high) = (0.0, 0.0, 0.0, 0.0);
    ScoredValue { step, target, value, expected, low, high, surprise, persistence, level, flatline }
}

#[test]
fn each_observed_test_value_is_scored_against_the_streamed_forecast_made_before_it() {
    // synthetic ramps, an untrained model with a Gaussian band: every score by hand
    // from `recur stream`'s path
    let data = ramps();
    let config = PredictionConfig { uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
    let model = SequenceModel::<f32>::new(config.model_config(2), 3).unwrap();
    let (window, c) = (12, 2);
    let task = PredictionTask::new(&data, window, true).unwrap();
    let scored = task.surprises(&model, &data.test, &Screening::default()).unwrap();
    assert_eq!(scored.len() as u64, task.evaluate_streamed(&model, &data.test).unwrap().scored);
    let persistence_rms: Vec<f32> = task.persistence_variance(1).iter().map(|v| v.sqrt() as f32).collect();
    let (test, z) = (data.test[0].clone(), &data.grid.values);
    let mut stream = task.stream(&model).unwrap();
    let mut expected = Vec::new();
    for n in 0..test.end - 1 {
        let forecast = stream.step_forecast(&data.original_step(n), 1).unwrap();
        let k = n + 1;
        for j in (0..c).filter(|&j| k >= test.start + window - 1 && data.grid.observed[k * c + j]) {
            let x_hat = data.scaler.apply(j, forecast.values[j]);
            let last = (n + 2 - window..=n).rev().find(|&m| data.grid.observed[m * c + j]);
            let carried = last.map_or(0.0, |m| z[m * c + j]);
            expected.push((k, j, (z[k * c + j] - x_hat).abs() / forecast.sigma_standardised[j], {
                (z[k * c + j] - carried).abs() / persistence_rms[j]
            }));
        }
    }
    assert_eq!(scored.len(), expected.len());
    for (v, &(k, j, surprise, persistence)) in scored.iter().zip(&expected) {
        assert_eq!((v.step, v.target, v.value), (k, j, data.original[k * c + j]));
        assert!((v.surprise - surprise).abs() < 1e-3 * surprise.max(1.0), "{v:?}: {surprise}");
        assert!((v.persistence - persistence).abs() < 1e-5 * persistence.max(1.0), "{v:?}: {persistence}");
        assert_eq!(v.level, z[k * c + j].abs());
        assert!(v.low < v.expected && v.expected < v.high, "{v:?}");
    }
}

#[test]
fn the_guard_withholds_a_surprising_value_once_but_takes_a_change_that_lasts() {
    // synthetic ramps, an untrained model with a band; `a` jumps far out at step 30
    // alone and from step 40 on
    let data = ramps();
    let config = PredictionConfig { uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
    let model = SequenceModel::<f32>::new(config.model_config(2), 3).unwrap();
    let task = PredictionTask::new(&data, 12, true).unwrap();
    let mut stream = task.stream(&model).unwrap();
    let mut sentinel = Sentinel::new(&stream, Some(4.0), Vec::new()).unwrap();
    let (mut unguarded_stream, mut unguarded_flags) = (task.stream(&model).unwrap(), Vec::new());
    let mut unguarded = Sentinel::new(&unguarded_stream, None, Vec::new()).unwrap();
    let (mut withheld, mut flagged) = (Vec::new(), Vec::new());
    for n in 0..45 {
        let mut values = data.original_step(n);
        if n == 30 || n >= 40 {
            values[0] = Some(1e4);
        }
        let seen = values.clone();
        let mut read = values.clone();
        if unguarded.screen(&mut read)[0].is_some_and(|s| s.surprise > 4.0) {
            unguarded_flags.push(n);
        }
        assert_eq!(read, seen, "no guard, nothing withheld");
        unguarded.expect(&unguarded_stream.step_forecast(&read, 1).unwrap());
        let surprises = sentinel.screen(&mut values);
        assert_eq!(surprises[0].is_some(), n > 0, "nothing is expected of the first step");
        if let Some(s) = surprises[0] {
            assert_eq!(s.withheld, values[0].is_none());
            assert_eq!(values[1], seen[1], "b is never far from its forecast here");
            if s.withheld {
                withheld.push(n);
            }
            if s.surprise > 4.0 {
                flagged.push(n);
            }
        }
        sentinel.expect(&stream.step_forecast(&values, 1).unwrap());
    }
    // the spike and the jump withheld once; the jump's second step flagged but taken,
    // and the new level then expected (the residual head forecasts from it); unguarded,
    // the step after the spike is flagged too, against a forecast from the spike
    assert_eq!(withheld, [30, 40]);
    assert_eq!(flagged, [30, 40, 41]);
    assert_eq!(unguarded_flags, [30, 31, 40]);
    assert!(Sentinel::new(&stream, Some(0.0), Vec::new()).is_err());
    let plain = SequenceModel::<f32>::new(PredictionConfig::default().model_config(2), 3).unwrap();
    assert!(Sentinel::new(&task.stream(&plain).unwrap(), None, Vec::new()).is_err());
}

#[test]
fn a_causal_reconstruction_scores_each_value_with_it_alone_hidden() {
    // synthetic ramps, an untrained causal reconstruction: every score by hand from
    // `recur stream`'s path, each value hidden in a copy of the stream's state
    let data = ramps();
    let config =
        ReconstructionConfig { model: ModelSection::default(), window: 12, residual: false, ..Default::default() };
    let model = SequenceModel::<f32>::new(config.model_config(2), 3).unwrap();
    let task = ReconstructionTask::new(&data, config).unwrap();
    let scored = task.surprises(&model, &data.test, &Screening::default()).unwrap();
    let (c, test) = (2, data.test[0].clone());
    let observed =
        test.clone().flat_map(|k| (0..c).map(move |j| (k, j))).filter(|&(k, j)| data.grid.observed[k * c + j]);
    assert_eq!(scored.iter().map(|v| (v.step, v.target)).collect::<Vec<_>>(), observed.collect::<Vec<_>>());
    let mut live = task.stream(&model).unwrap();
    let mut scored = scored.iter();
    for k in 0..test.end {
        let values = data.original_step(k);
        for j in (0..c).filter(|&j| k >= test.start && values[j].is_some()) {
            let mut hidden = values.clone();
            hidden[j] = None;
            let r = live.clone().step(&hidden).unwrap()[j];
            let z = |v: f32| data.scaler.apply(j, v);
            let surprise = 2.0 * band_score(z(r.value), z(r.low), z(r.high), data.grid.values[k * c + j]);
            let v = scored.next().unwrap();
            // one batched step for every value hidden: the same up to a product's rounding
            let near = |a: f32, b: f32| (a - b).abs() <= 1e-5 * (r.high - r.low).abs().max(1.0);
            assert!(near(v.expected, r.value) && near(v.low, r.low) && near(v.high, r.high), "{v:?}: {r:?}");
            assert!((v.surprise - surprise).abs() <= 1e-4 * surprise.max(1.0), "{v:?}: {surprise}");
        }
        live.step(&values).unwrap();
    }
}

#[test]
fn alarm_scales_put_the_rate_asked_for_above_the_threshold_and_scale_every_detector() {
    // synthetic: 1,000 values of each of two targets, scores k/1000 (target 0) and
    // 3k/1000 (target 1) for every detector
    let value = |k: usize, t: usize| scored_value(k, t, [(k * (1 + 2 * t)) as f32 / 1000.0; 4]);
    let scored: Vec<ScoredValue> = (0..1000).flat_map(|k| [value(k, 0), value(k, 1)]).collect();
    let scales = AlarmScales::fit(&scored, 2, 0.01, 4.0).unwrap();
    for d in Detector::ALL {
        for t in 0..2 {
            let above = scored.iter().filter(|v| v.target == t && d.of(v) * scales.of(d)[t] > 4.0).count();
            assert_eq!(above, 9, "{d:?} {t}: the ten largest, but the quantile itself");
            assert!((scales.raw_threshold(d, t) - 0.99 * (1 + 2 * t) as f32).abs() < 1e-5);
        }
    }
    assert!(AlarmScales::fit(&scored, 2, 1.0, 4.0).is_err() && AlarmScales::fit(&scored, 2, 0.01, 0.0).is_err());

    // every detector's scores of each target, times its factor, as the guard sees them
    let data = ramps();
    let config = PredictionConfig { uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
    let model = SequenceModel::<f32>::new(config.model_config(2), 3).unwrap();
    let task = PredictionTask::new(&data, 12, true).unwrap();
    let plain = task.surprises(&model, &data.test, &Screening::default()).unwrap();
    let factors = vec![vec![2.0, 3.0], vec![5.0, 7.0], vec![11.0, 13.0], vec![17.0, 19.0]];
    let scales = Some(AlarmScales { rate: 0.01, threshold: 4.0, factors });
    let scaled =
        task.surprises(&model, &data.test, &Screening { guard: None, scales, ..Screening::default() }).unwrap();
    for (p, s) in plain.iter().zip(&scaled) {
        let f = [2.0, 3.0][p.target];
        assert_eq!(
            (s.surprise, s.persistence, s.level, s.flatline),
            (
                p.surprise * f,
                p.persistence * [5.0, 7.0][p.target],
                p.level * [11.0, 13.0][p.target],
                p.flatline * [17.0, 19.0][p.target]
            )
        );
    }
    let fitted = task.alarm_scales(&model, 0.05, 4.0).unwrap();
    let validation = task.surprises(&model, &data.validation, &Screening::default()).unwrap();
    assert_eq!(fitted, AlarmScales::fit(&validation, 2, 0.05, 4.0).unwrap());
}

#[test]
fn kept_alarms_come_back_as_written_and_a_file_that_does_not_fit_the_run_is_refused_by_name() {
    let scratch = tempfile::Builder::new().prefix("recur-kept-alarms-").tempdir().unwrap();
    let dir = scratch.path();
    let signals = vec!["a".to_string(), "b|c".to_string()];
    assert_eq!(KeptAlarms::load_from_run(dir, &signals, &[]).unwrap(), None);
    let kept = KeptAlarms {
        signals: signals.clone(),
        scales: AlarmScales { rate: 0.005, threshold: 4.0, factors: vec![vec![1.5, 0.5]; 4] },
        sigma: vec![0.3, 0.2],
        calibration: vec![1.1, 0.9],
        equal_runs: vec![3.0, 1.0],
    };
    kept.save_to_run(dir).unwrap();
    assert_eq!(KeptAlarms::load_from_run(dir, &signals, &[1.1, 0.9]).unwrap().as_ref(), Some(&kept));
    assert_eq!(
        kept.screening(Some(4.0)),
        Screening {
            guard: Some(4.0),
            scales: Some(kept.scales.clone()),
            sigma: vec![0.3, 0.2],
            equal_runs: vec![3.0, 1.0]
        }
    );
    let refused = |signals: &[String], calibration: &[f32]| {
        KeptAlarms::load_from_run(dir, signals, calibration).unwrap_err().to_string()
    };
    let e = refused(&signals[..1], &[1.1, 0.9]);
    assert!(e.contains("alarms.json") && e.contains("fitted for the signals"), "{e}");
    assert!(refused(&signals, &[]).contains("fitted on a calibrated band; the run has no calibration now"));
    assert!(refused(&signals, &[1.0, 1.0]).contains("another band calibration"));
    for bad in [
        KeptAlarms { sigma: vec![0.3], ..kept.clone() },
        KeptAlarms { sigma: vec![0.3, f32::NAN], ..kept.clone() },
        KeptAlarms { equal_runs: vec![3.0, 0.0], ..kept.clone() },
        KeptAlarms { scales: AlarmScales { factors: vec![vec![1.0, 0.0]; 4], ..kept.scales.clone() }, ..kept.clone() },
        KeptAlarms { scales: AlarmScales { factors: vec![vec![1.0, 1.0]; 3], ..kept.scales.clone() }, ..kept.clone() },
        KeptAlarms { scales: AlarmScales { rate: 1.0, ..kept.scales.clone() }, ..kept.clone() },
    ] {
        bad.save_to_run(dir).unwrap();
        let e = refused(&signals, &[1.1, 0.9]);
        assert!(e.contains("alarms.json") && e.contains("expected") || e.contains("a rate in (0, 1)"), "{e}");
    }
    assert!(refused(&signals, &[]).contains("--alarm-rate RATE` fits them anew"));
    std::fs::write(dir.join(ALARMS_FILE), "{").unwrap();
    assert!(refused(&signals, &[]).contains("alarms.json"));
}

#[test]
fn the_flatline_rule_counts_the_run_of_equal_readings_across_short_gaps_against_trainings_runs() {
    // synthetic ramps (every training reading differs from the one before: runs of 1,
    // the 95 % quantile 1); `a` frozen at 50 over steps 89..95 of the test part, `b`
    // (missing every third step) at −80 over 88..97
    let mut data = ramps();
    let c = data.grid.channels();
    for (j, steps, x) in [(0, 89..95, 50.0f32), (1, 88..97, -80.0)] {
        for k in steps.filter(|&k| data.grid.observed[k * c + j]) {
            data.original[k * c + j] = x;
            data.grid.values[k * c + j] = data.scaler.apply(j, x);
        }
    }
    let config = PredictionConfig { uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
    let model = SequenceModel::<f32>::new(config.model_config(2), 3).unwrap();
    let task = PredictionTask::new(&data, 12, true).unwrap();
    let scored = task.surprises(&model, &data.test, &Screening::default()).unwrap();
    let flatline = |k: usize, t: usize| scored.iter().find(|v| (v.step, v.target) == (k, t)).unwrap().flatline;
    // scored from step 91 (the test part's 80 + window − 1)
    for (k, run) in [(91, 3), (92, 4), (94, 6), (95, 1), (96, 1)] {
        assert_eq!(flatline(k, 0), 2.0 * run as f32, "a at {k}");
    }
    // b observed at 88, 89, 91, 92, 94, 95, 97: the gaps at 90, 93 and 96 do not break it
    for (k, run) in [(91, 3), (92, 4), (94, 5), (95, 6), (97, 1), (98, 1)] {
        assert_eq!(flatline(k, 1), 2.0 * run as f32, "b at {k}");
    }
    // scaled as every detector is
    let scales = AlarmScales {
        rate: 0.01,
        threshold: 4.0,
        factors: vec![vec![1.0, 1.0]; 3].into_iter().chain([vec![0.5, 3.0]]).collect(),
    };
    let screening = Screening { scales: Some(scales), ..Screening::default() };
    let scaled = task.surprises(&model, &data.test, &screening).unwrap();
    for (v, w) in scored.iter().zip(&scaled) {
        assert_eq!(w.flatline, v.flatline * [0.5, 3.0][v.target]);
    }
}

#[test]
fn a_model_without_a_band_is_banded_by_its_validation_errors() {
    // synthetic ramps, an untrained model without a band: ±2 × its validation RMS
    let data = ramps();
    let model = SequenceModel::<f32>::new(PredictionConfig::default().model_config(2), 3).unwrap();
    let task = PredictionTask::new(&data, 12, true).unwrap();
    let rms = task.evaluate_streamed(&model, &data.validation).unwrap().per_signal_mse;
    for v in task.surprises(&model, &data.test, &Screening::default()).unwrap() {
        let half = data.scaler.apply(v.target, v.high) - data.scaler.apply(v.target, v.expected);
        assert!((f64::from(half) - 2.0 * rms[v.target].sqrt()).abs() < 1e-4, "{v:?}");
    }
    let mut unseen = data.clone();
    (unseen.train, unseen.validation) = (Vec::new(), Vec::new());
    let err = PredictionTask::new(&unseen, 12, true)
        .unwrap()
        .surprises(&model, &data.test, &Screening::default())
        .unwrap_err();
    assert!(err.to_string().contains("task.uncertainty"), "{err}");
}

#[test]
fn spikes_move_the_chosen_share_of_observed_values_by_their_size_and_nothing_else() {
    let data = ramps();
    let c = data.grid.channels();
    let spikes = Faults { kind: FaultKind::Spike, rate: 0.1, size: 3.0 };
    let inject = |faults: Faults, seed: u64| inject_faults(&data, &data.test, &[1], faults, seed);
    let (spiked, events) = inject(spikes, 5).unwrap();
    let at: Vec<(usize, usize)> = events.iter().map(|e| (e.steps.start, e.signal)).collect();
    assert!(events.iter().all(|e| e.steps.len() == 1 && e.changed == [e.steps.start]));
    let observed = data.test[0].clone().filter(|&k| data.grid.observed[k * c + 1]).count();
    assert_eq!(at.len(), (0.1 * observed as f64).round() as usize);
    for i in 0..data.grid.values.len() {
        let (k, j) = (i / c, i % c);
        let moved = (spiked.grid.values[i] - data.grid.values[i]).abs();
        match at.binary_search(&(k, j)) {
            Ok(_) => {
                assert!(j == 1 && data.test[0].contains(&k) && data.grid.observed[i]);
                assert!((moved - 3.0).abs() < 1e-4, "{k} {j}: {moved}");
                assert!((data.scaler.apply(j, spiked.original[i]) - spiked.grid.values[i]).abs() < 1e-6);
            }
            Err(_) => assert_eq!((moved, spiked.original[i]), (0.0, data.original[i])),
        }
    }
    assert_eq!(inject(spikes, 5).unwrap().1, events);
    assert_ne!(inject(spikes, 6).unwrap().1, events);
    for bad in [
        Faults { rate: 0.0, ..spikes },
        Faults { size: -1.0, ..spikes },
        Faults { kind: FaultKind::Drift { steps: 1 }, ..spikes },
    ] {
        assert!(inject(bad, 5).is_err());
    }
    assert!(inject_faults(&data, &data.test, &[], spikes, 5).is_err());
    let e = inject(Faults { kind: FaultKind::Stuck { steps: 40 }, ..spikes }, 5).unwrap_err().to_string();
    assert!(e.contains("a fault of 40 steps fits in no range of the part scored (the longest has 20 steps)"), "{e}");
}

#[test]
fn a_stuck_sensor_repeats_a_value_the_truth_leaves_and_a_drift_grows_to_its_size() {
    // synthetic ramps: every signal moves every step, so a frozen value departs from it
    let data = ramps();
    let c = data.grid.channels();
    let signals = [0, 1];
    for kind in [FaultKind::Stuck { steps: 6 }, FaultKind::Drift { steps: 6 }] {
        // a step moves `a` by 0.06 training SDs: 6 steps by more than 0.2
        let faults = Faults { kind, rate: 0.5, size: 0.2 };
        let (faulty, events) = inject_faults(&data, &data.test, &signals, faults, 3).unwrap();
        let values: usize = data.test.iter().map(|r| r.len()).sum::<usize>() * 2;
        assert!(events.len() >= 2 && events.len() <= (0.5 * values as f64 / 6.0).round() as usize);
        let mut changed = HashSet::new();
        for e in &events {
            assert_eq!(e.steps.len(), 6);
            assert!(data.test.iter().any(|r| r.start <= e.steps.start && e.steps.end <= r.end));
            let z = |k: usize| data.grid.values[k * c + e.signal];
            let f = |k: usize| faulty.grid.values[k * c + e.signal];
            for &k in &e.changed {
                changed.insert((k, e.signal));
                match kind {
                    FaultKind::Stuck { .. } => {
                        // the very reading frozen, as the flatline rule compares readings
                        let at = |series: &PreparedSeries, n: usize| series.original[n * c + e.signal];
                        assert_eq!(at(&faulty, k), at(&data, e.steps.start));
                        assert!((f(k) - z(e.steps.start)).abs() < 1e-5);
                    }
                    _ => {
                        let grown = 0.2 * (k - e.steps.start + 1) as f32 / 6.0;
                        assert!(((f(k) - z(k)).abs() - grown).abs() < 1e-4, "{k}");
                    }
                }
            }
            if let FaultKind::Stuck { .. } = kind {
                let left = e.changed.iter().map(|&k| (z(k) - z(e.steps.start)).abs()).fold(0.0, f32::max);
                assert!(left >= 0.2 && !e.changed.contains(&e.steps.start), "{e:?}");
            }
        }
        // one signal's faults never overlap, and nothing else moved
        for (a, b) in events.iter().zip(events.iter().skip(1)) {
            assert!(a.signal != b.signal || a.steps.end <= b.steps.start || b.steps.end <= a.steps.start);
        }
        for i in 0..data.grid.values.len() {
            if !changed.contains(&(i / c, i % c)) {
                assert_eq!(faulty.original[i], data.original[i]);
            }
        }
    }
}

#[test]
fn a_fault_is_found_at_its_first_flag_and_the_flags_outside_faults_are_counted() {
    let event = |signal: usize, steps: Range<usize>| FaultEvent { signal, changed: steps.clone().collect(), steps };
    let events = [event(0, 10..14), event(1, 20..24), event(0, 30..34)];
    let value = |step: usize, target: usize, surprise: f32| scored_value(step, target, [surprise, 0.0, 0.0, 0.0]);
    let mut scored: Vec<ScoredValue> = (0..40).flat_map(|k| [value(k, 0, 1.0), value(k, 1, 1.0)]).collect();
    scored[2 * 12].surprise = 5.0; // the first fault at its third step
    scored[2 * 20 + 1].surprise = 5.0; // the second at its first
    scored[2 * 5].surprise = 5.0; // a clean value
    scored[2 * 20].surprise = 5.0; // signal 0 at step 20: outside its faults
    let found = EventDetection::of(&scored, &events, &[0, 1], Detector::Model, 4.0);
    assert_eq!((found.events, found.delays.clone()), (3, vec![2, 0]));
    assert_eq!((found.clean, found.clean_flagged), (80 - 12, 2));
    assert_eq!(found.median_delay(), Some(1.0));
    assert!((found.found() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(EventDetection::of(&scored, &events, &[0, 1], Detector::Level, 4.0).median_delay(), None);
    // as alarms: the flags at 5, 12 and 20 (signal 0) and 20 (signal 1) are four episodes,
    // two on a fault; the flatline rule's flags at 31 and 33 (signal 0) one more, on one
    scored[2 * 31].flatline = 6.0;
    scored[2 * 33].flatline = 6.0;
    let alarms = |d: Detector| AlarmCount::of(&scored, &events, &[0, 1], (d, 4.0), |_| 0);
    assert_eq!(alarms(Detector::Model), AlarmCount { episodes: 4, on_faults: 2 });
    assert_eq!(alarms(Detector::Flatline), AlarmCount { episodes: 1, on_faults: 1 });
    assert_eq!(alarms(Detector::Level), AlarmCount::default());
    assert!((alarms(Detector::Model).precision() - 0.5).abs() < 1e-12);
}

/// ROC AUC by counting every (fault, value left alone) pair, ties half.
fn auc_by_pairs(scores: &[f32], faults: &[bool]) -> f64 {
    let (mut won, mut pairs) = (0.0, 0.0);
    for i in (0..faults.len()).filter(|&i| faults[i]) {
        for j in (0..faults.len()).filter(|&j| !faults[j]) {
            pairs += 1.0;
            won += match scores[i].total_cmp(&scores[j]) {
                std::cmp::Ordering::Greater => 1.0,
                std::cmp::Ordering::Equal => 0.5,
                std::cmp::Ordering::Less => 0.0,
            };
        }
    }
    won / pairs
}

#[test]
fn detection_ranks_as_counting_pairs_and_thresholds_as_counting_flags() {
    // synthetic scores with ties across the labels
    let mut rng = Rng::new(3);
    for _ in 0..50 {
        let n = 2 + rng.below(40);
        let scores: Vec<f32> = (0..n).map(|_| rng.below(6) as f32).collect();
        let mut faults: Vec<bool> = (0..n).map(|_| rng.uniform() < 0.3).collect();
        (faults[0], faults[1]) = (true, false);
        let d = Detection::of(&scores, &faults, 2.5).unwrap();
        assert!((d.auc - auc_by_pairs(&scores, &faults)).abs() < 1e-12);
        assert_eq!(d.flagged, scores.iter().filter(|&&s| s > 2.5).count());
        let flagged_faults = scores.iter().zip(&faults).filter(|(&s, &f)| s > 2.5 && f).count();
        assert_eq!((d.flagged_faults, d.faults, d.values), (flagged_faults, faults.iter().filter(|&&f| f).count(), n));
    }
}

#[test]
fn average_precision_is_one_when_faults_rank_first_and_counts_a_tie_together() {
    let faults = [true, true, false, false];
    let d = Detection::of(&[9.0, 8.0, 1.0, 0.0], &faults, 5.0).unwrap();
    assert_eq!((d.auc, d.average_precision, d.precision(), d.recall()), (1.0, 1.0, 1.0, 1.0));
    // all four tied: any threshold takes all, precision 1/2 for each fault
    let d = Detection::of(&[1.0; 4], &faults, 0.5).unwrap();
    assert_eq!((d.auc, d.average_precision), (0.5, 0.5));
    // the faults second and fourth: (1/2 + 2/4) / 2
    let d = Detection::of(&[4.0, 3.0, 2.0, 1.0], &[false, true, false, true], 0.0).unwrap();
    assert!((d.average_precision - 0.5).abs() < 1e-12 && (d.auc - 0.25).abs() < 1e-12);
    assert!(Detection::of(&[1.0, 2.0], &[true, true], 0.0).is_err());
    assert!(Detection::of(&[f32::NAN, 2.0], &[true, false], 0.0).is_err());
    assert!(Detection::of(&[1.0], &[true, false], 0.0).is_err());
}

/// Alarms kept for the ramps' two signals: every scale 1, the flatline rule with training
/// runs of 1 (a run of n equal readings scores 2n).
fn unit_alarms_of_the_ramps() -> KeptAlarms {
    KeptAlarms {
        signals: vec!["a".into(), "b".into()],
        scales: AlarmScales { rate: 0.01, threshold: 4.0, factors: vec![vec![1.0, 1.0]; 4] },
        sigma: Vec::new(),
        calibration: Vec::new(),
        equal_runs: vec![1.0, 1.0],
    }
}

#[test]
fn a_watch_flags_what_its_detector_or_the_flatline_rule_scores_above_the_threshold_and_begins_each_episode_once() {
    // synthetic ramps, an untrained prediction model with a band, the flatline rule kept
    // with training runs of 1 (a run of n equal readings scores 2n); `a` spikes at step 30,
    // `b` (missing every third step) frozen at −80 over steps 60..72
    let data = ramps();
    let config = PredictionConfig { uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
    let model = SequenceModel::<f32>::new(config.model_config(2), 3).unwrap();
    let task = PredictionTask::new(&data, 12, true).unwrap();
    let kept = unit_alarms_of_the_ramps();
    let feed = |n: usize| {
        let mut values = data.original_step(n);
        if n == 30 {
            values[0] = Some(1e4);
        }
        if (60..72).contains(&n) && values[1].is_some() {
            values[1] = Some(-80.0);
        }
        values
    };
    let watch_with = |join: usize| {
        let mut live = LiveStream::Prediction(Box::new(task.stream(&model).unwrap()));
        let mut watch = Watch::new(&live, 4.0, join, Some(&kept), 11).unwrap();
        let mut steps = Vec::new();
        for n in 0..100 {
            let mut values = feed(n);
            let step = watch.screen(&live, &mut values).unwrap();
            assert_eq!(values[0].is_none(), n == 30 || feed(n)[0].is_none(), "step {n}: only the spike withheld");
            watch.expect(&live.step(&values).unwrap());
            steps.push(step);
        }
        (watch, steps)
    };
    let (watch, steps) = watch_with(3);
    assert!(watch.has_flatline() && watch.join() == 3 && watch.targets() == ["a", "b"]);
    let spike = &steps[30];
    assert!(spike.surprises[0].is_some_and(|s| s.withheld && s.surprise > 4.0) && spike.new_alarms.contains(&0));
    // b's frozen readings at 61, 62, 64, 65, …: the third on scores 6 and is flagged
    for (n, run) in [(61, 1), (62, 2), (64, 3), (65, 4), (71, 8)] {
        assert_eq!(steps[n].flatline[1], Some(2.0 * run as f32), "b at {n}");
        assert_eq!(steps[n].flagged[1], run >= 3 || steps[n].surprises[1].is_some_and(|s| s.surprise > 4.0));
    }
    // one alarm for the freeze: its flags two steps apart at most (across b's gaps)
    let b_alarms = |steps: &[WatchStep]| (60..75).filter(|&n| steps[n].new_alarms.contains(&1)).count();
    assert_eq!(b_alarms(&steps), 1);
    // the counts are the steps'
    for (t, count) in watch.counts().iter().enumerate() {
        assert_eq!(count.episodes, steps.iter().filter(|s| s.new_alarms.contains(&t)).count());
        assert_eq!(count.flatline, steps.iter().filter(|s| s.flatline[t].is_some_and(|f| f > 4.0)).count());
        let by_model = steps.iter().filter(|s| s.surprises[t].is_some_and(|s| s.surprise > 4.0)).count();
        assert_eq!(count.flagged, by_model);
    }
    // joined at 1 step, b's gaps split the freeze
    assert!(b_alarms(&watch_with(1).1) > 1);

    // refused: a join of 0, scales for other signals, a step of the wrong width, a
    // threshold that is not positive; a reconstruction's watch has no flatline rule unkept
    let live = LiveStream::Prediction(Box::new(task.stream(&model).unwrap()));
    assert!(Watch::new(&live, 4.0, 0, Some(&kept), 11).unwrap_err().to_string().contains("join"));
    let other = KeptAlarms { signals: vec!["a".into()], ..kept.clone() };
    assert!(Watch::new(&live, 4.0, 3, Some(&other), 11).unwrap_err().to_string().contains("fitted for the signals"));
    assert!(Watch::new(&live, 0.0, 3, Some(&kept), 11).is_err());
    let mut watch = Watch::new(&live, 4.0, 3, None, 11).unwrap();
    assert!(watch.screen(&live, &mut [Some(1.0)]).unwrap_err().to_string().contains("step values"));
    let config =
        ReconstructionConfig { model: ModelSection::default(), window: 12, residual: false, ..Default::default() };
    let model = SequenceModel::<f32>::new(config.model_config(2), 3).unwrap();
    let rebuilt = ReconstructionTask::new(&data, config).unwrap();
    let filling = LiveStream::Reconstruction(Box::new(rebuilt.stream(&model).unwrap()));
    assert!(watch.screen(&filling, &mut data.original_step(0)).is_err(), "a prediction's watch on a reconstruction");
    let mut watch = Watch::new(&filling, 4.0, 3, None, 11).unwrap();
    let step = watch.screen(&filling, &mut data.original_step(5)).unwrap();
    assert!(!watch.has_flatline() && step.flatline.is_empty() && step.surprises.iter().all(Option::is_some));
}

/// Untrained models of both tasks over the ramps, with their tasks: a prediction model
/// with a Gaussian band, and a causal reconstruction (synthetic).
struct RampModels<'d> {
    prediction: PredictionTask<'d>,
    forecaster: SequenceModel<f32>,
    reconstruction: ReconstructionTask<'d>,
    filler: SequenceModel<f32>,
}

impl<'d> RampModels<'d> {
    fn new(data: &'d PreparedSeries) -> Self {
        let predicting = PredictionConfig { uncertainty: Uncertainty::Gaussian, ..PredictionConfig::default() };
        let filling =
            ReconstructionConfig { model: ModelSection::default(), window: 12, residual: false, ..Default::default() };
        RampModels {
            prediction: PredictionTask::new(data, 12, true).unwrap(),
            forecaster: SequenceModel::new(predicting.model_config(2), 3).unwrap(),
            filler: SequenceModel::new(filling.model_config(2), 3).unwrap(),
            reconstruction: ReconstructionTask::new(data, filling).unwrap(),
        }
    }

    /// A fresh stream of the prediction model, or of the reconstruction.
    fn stream(&self, prediction: bool) -> LiveStream<'_> {
        match prediction {
            true => LiveStream::Prediction(Box::new(self.prediction.stream(&self.forecaster).unwrap())),
            false => LiveStream::Reconstruction(Box::new(self.reconstruction.stream(&self.filler).unwrap())),
        }
    }
}

#[test]
fn a_step_the_stream_would_refuse_leaves_the_watch_as_it_was_and_nothing_panics() {
    // synthetic ramps through an untrained prediction model with a band and an untrained
    // causal reconstruction, each watched with the flatline rule; random steps: one value
    // too many or too few, NaN, ±∞, 1e30, gaps
    let data = ramps();
    let kept = unit_alarms_of_the_ramps();
    let models = RampModels::new(&data);
    let streams = [models.stream(true), models.stream(false)];
    let mut rng = Rng::new(5);
    for mut live in streams {
        let mut watch = Watch::new(&live, 4.0, 3, Some(&kept), 11).unwrap();
        let (mut refused, mut taken) = (0, 0);
        for n in 0..100 {
            let mut values = data.original_step(n);
            let j = rng.below(2);
            match rng.below(8) {
                0 => values.push(Some(1.0)),
                1 => drop(values.pop()),
                2 => values[j] = Some(f32::NAN),
                3 => values[j] = Some(f32::INFINITY),
                4 => values[j] = Some(f32::NEG_INFINITY),
                5 => values[j] = Some(1e30),
                6 => values[j] = None,
                _ => {}
            }
            let before = watch.clone();
            let screened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut fed = values.clone();
                watch.screen(&live, &mut fed).map(|_| fed)
            }));
            match screened.unwrap_or_else(|_| panic!("step {n}: {values:?} panicked")) {
                Ok(fed) => {
                    taken += 1;
                    watch.expect(&live.step(&fed).unwrap());
                }
                Err(e) => {
                    refused += 1;
                    assert!(live.step(&values).is_err(), "step {n}: the stream takes what the watch refused ({e})");
                    // as it was: the next good step is screened as before the refused one
                    let good = data.original_step(n);
                    let (mut after, mut was) = (watch.clone(), before);
                    assert_eq!(
                        after.screen(&live, &mut good.clone()).unwrap(),
                        was.screen(&live, &mut good.clone()).unwrap()
                    );
                    assert_eq!(after.counts(), was.counts());
                }
            }
        }
        assert!(refused > 40 && taken > 20, "{refused} refused, {taken} taken");
    }
}

#[test]
fn a_stream_and_its_watch_restored_from_their_saved_state_go_on_as_if_never_stopped() {
    // synthetic ramps through both tasks' untrained streams, each watched with the
    // flatline rule and `a` spiking at 45: stopped after 40 steps, their states written as
    // JSON and read into a fresh stream and watch, which then answer and flag every later
    // step exactly as the ones never stopped
    let data = ramps();
    let kept = unit_alarms_of_the_ramps();
    let models = RampModels::new(&data);
    let fresh = |prediction: bool| models.stream(prediction);
    let feed = |n: usize| {
        let mut values = data.original_step(n);
        if n == 45 {
            values[0] = Some(1e4);
        }
        values
    };
    for task in [true, false] {
        let mut live = fresh(task);
        let mut watch = Watch::new(&live, 4.0, 3, Some(&kept), 11).unwrap();
        let step = |live: &mut LiveStream, watch: &mut Watch, n: usize| {
            let mut values = feed(n);
            let screened = watch.screen(live, &mut values).unwrap();
            let answer = live.step(&values).unwrap();
            watch.expect(&answer);
            (screened, answer)
        };
        for n in 0..40 {
            step(&mut live, &mut watch, n);
        }
        let saved = serde_json::to_string(&(live.state(), watch.state())).unwrap();
        let (stream_state, watch_state): (LiveState, WatchState) = serde_json::from_str(&saved).unwrap();
        let mut restored = fresh(task);
        let mut restored_watch = Watch::new(&restored, 4.0, 3, Some(&kept), 11).unwrap();
        restored.restore(&stream_state).unwrap();
        restored_watch.restore(&watch_state).unwrap();
        let mut spike_flagged = false;
        for n in 40..100 {
            let (want, got) = (step(&mut live, &mut watch, n), step(&mut restored, &mut restored_watch, n));
            assert_eq!(got, want, "step {n}");
            spike_flagged |= n == 45 && want.0.new_alarms.contains(&0);
        }
        assert!(spike_flagged);
        assert_eq!(restored_watch.counts(), watch.counts());

        // a state that does not fit is refused, and nothing changes
        let before = restored.state();
        let other = if task { fresh(false).state() } else { fresh(true).state() };
        assert!(restored.restore(&other).is_err(), "the other task's state");
        let mut shorter = stream_state.clone();
        shorter.model.encoder.h[0].pop();
        assert!(restored.restore(&shorter).unwrap_err().to_string().contains("h of layer 0"));
        assert_eq!(restored.state(), before);
        let mut ahead = watch_state.clone();
        ahead.last_flags = vec![Some(watch_state.steps), None];
        let mut counted = watch_state.clone();
        counted.counts.pop();
        for bad in [ahead, counted] {
            let kept_state = restored_watch.state();
            assert!(restored_watch.restore(&bad).is_err());
            assert_eq!(restored_watch.state(), kept_state);
        }
    }
}
