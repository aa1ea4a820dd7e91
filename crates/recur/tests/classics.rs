//! The lecture's classics, measured: Hopfield memory and the vanishing gradient.
//! Patterns and sequences are random (synthetic by design: these are properties of the
//! models, not claims about data).

use recur::classic::gradients::{spectral_norm, state_gradient_norms};
use recur::classic::hopfield::{capacity_experiment, corrupt, random_pattern, Hopfield};
use recur::rnn::{CellKind, Rnn, RnnConfig};
use recur::Rng;

#[test]
fn energy_never_increases_under_asynchronous_updates() {
    let mut rng = Rng::new(3);
    for load in [3usize, 12, 30] {
        let n = 80;
        let patterns: Vec<Vec<i8>> = (0..load).map(|_| random_pattern(n, &mut rng)).collect();
        let net = Hopfield::store(&patterns);
        for _ in 0..5 {
            let probe = random_pattern(n, &mut rng);
            let (_, energies) = net.recall_async_traced(&probe, 30, &mut rng, true);
            assert!(energies.len() > n, "at least one sweep traced");
            for w in energies.windows(2) {
                assert!(w[1] <= w[0], "energy rose from {} to {} ({load} patterns)", w[0], w[1]);
            }
        }
    }
}

#[test]
fn stored_patterns_are_fixed_points_and_attract_corrupted_probes_below_capacity() {
    let mut rng = Rng::new(4);
    let n = 200;
    let patterns: Vec<Vec<i8>> = (0..10).map(|_| random_pattern(n, &mut rng)).collect(); // α = 0.05
    let net = Hopfield::store(&patterns);
    for p in &patterns {
        assert!(net.is_fixed_point(p));
        let probe = corrupt(p, 20, &mut rng);
        assert_eq!(&net.recall_async(&probe, 50, &mut rng), p);
        assert_eq!(&net.recall_sync(&probe, 50), p);
    }
}

#[test]
fn recall_accuracy_falls_past_about_0_14_patterns_per_neuron() {
    let points = capacity_experiment(200, &[0.05, 0.10, 0.25], 4, 0.05, 11);
    for p in &points {
        println!(
            "alpha {:.2} ({} patterns): async {:.2}, sync {:.2}, modern {:.2}, fixed points {:.2}",
            p.load, p.patterns, p.recall_async, p.recall_sync, p.recall_modern, p.fixed_points
        );
    }
    assert!(points[0].recall_async > 0.95 && points[1].recall_async > 0.8, "below capacity recall works");
    assert!(points[2].recall_async < 0.2, "past 0.138 N recall collapses: {}", points[2].recall_async);
    assert!(points[2].recall_modern > 0.95, "modern retrieval keeps working at 0.25 N");
}

fn one_layer(cell: CellKind, h: usize, seed: u64) -> Rnn<f64> {
    Rnn::new(RnnConfig { cell, input_size: 3, hidden_size: h, ..RnnConfig::default() }, seed).unwrap()
}

#[test]
fn elman_gradient_norms_stay_within_the_lectures_bound_and_lstm_keeps_them_at_long_range() {
    let (steps, h) = (60, 16);
    let mut rng = Rng::new(8);
    let x: Vec<f64> = (0..steps * 3).map(|_| rng.normal()).collect();
    let probe: Vec<f64> = (0..h).map(|_| rng.normal()).collect();
    let probe_norm = probe.iter().map(|v| v * v).sum::<f64>().sqrt();

    let mut elman = one_layer(CellKind::ElmanTanh, h, 1);
    let w = &mut elman.cells_mut()[0].weight_hh.data;
    let sigma = spectral_norm(w, h, h, 200);
    w.iter_mut().for_each(|v| *v *= 0.9 / sigma);
    let sigma = spectral_norm(&elman.cells()[0].weight_hh.data, h, h, 200);
    assert!((sigma - 0.9).abs() < 1e-6, "spectral norm {sigma}");
    let elman_norms = state_gradient_norms(&elman, &x, &probe).unwrap();
    for (t, &g) in elman_norms.iter().enumerate() {
        let bound = probe_norm * sigma.powi((steps - 1 - t) as i32);
        assert!(g <= bound * (1.0 + 1e-9), "t={t}: ‖∂L/∂h_t‖ = {g} above the bound {bound}");
    }

    let mut lstm = one_layer(CellKind::Lstm, h, 1);
    for field in [0, 1] {
        let cell = &mut lstm.cells_mut()[0];
        let bias = if field == 0 { &mut cell.bias_ih.data } else { &mut cell.bias_hh.data };
        bias[h..2 * h].iter_mut().for_each(|b| *b = 3.0); // forget gate ≈ σ(6) ≈ 0.998
    }
    let lstm_norms = state_gradient_norms(&lstm, &x, &probe).unwrap();
    println!(
        "‖∂L/∂h_1‖: Elman {:.3e} (bound {:.3e}), LSTM {:.3e}",
        elman_norms[0],
        probe_norm * 0.9f64.powi(steps as i32 - 1),
        lstm_norms[0]
    );
    assert!(lstm_norms[0] > 1e3 * elman_norms[0], "LSTM {} vs Elman {}", lstm_norms[0], elman_norms[0]);
}

#[test]
fn spectral_norm_of_a_diagonal_matrix_is_its_largest_entry() {
    let m = [3.0, 0.0, 0.0, 0.0, -5.0, 0.0];
    assert!((spectral_norm(&m, 2, 3, 100) - 5.0).abs() < 1e-9);
}

/// The comparison slide's measurement: parameters counted, each model timed alternately
/// with the reference, whose own ratios are 1; a reference out of range is refused.
#[test]
fn the_comparison_times_each_model_against_the_reference() {
    use recur::classic::compare::{compare, BatchShape};
    let make =
        |cell, bidirectional| RnnConfig { cell, input_size: 3, hidden_size: 8, bidirectional, ..RnnConfig::default() };
    let configs = vec![
        ("LSTM".to_string(), make(CellKind::Lstm, false)),
        ("BiGRU".to_string(), make(CellKind::GruResetAfter, true)),
    ];
    let shape = BatchShape { batch: 2, steps: 5 };
    let rows = compare(&configs, 0, shape, 1, 0.02).unwrap();
    // PyTorch's counts: 4·H·(D + H + 2) and 2 · 3·H·(D + H + 2)
    assert_eq!((rows[0].parameters, rows[1].parameters), (416, 624));
    assert_eq!((rows[0].train_vs_reference, rows[0].inference_vs_reference), (1.0, 1.0));
    for r in &rows {
        assert!(r.train_ms > 0.0 && r.inference_ms > 0.0, "{r:?}");
    }
    let ratio = rows[1].train_ms / rows[0].train_ms;
    assert!(rows[1].train_vs_reference.is_finite() && rows[1].train_vs_reference > 0.0);
    // the reference's time is the median over its pairings, so the ratio of the medians is
    // the paired ratio here (one pairing)
    assert!((ratio / rows[1].train_vs_reference - 1.0).abs() < 1e-9, "{ratio} vs {}", rows[1].train_vs_reference);
    assert!(compare(&configs, 2, shape, 1, 0.02).unwrap_err().to_string().contains("2 of 2 configs"));
}
