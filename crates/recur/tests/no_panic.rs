//! No public entry point of the encoder panics, whatever it is given: random configs
//! (zero sizes, probabilities outside [0, 1), NaN), random shapes (empty batches, zero
//! steps, lengths of 0 or past the end, buffers one value short or long), non-finite
//! values, backward with a foreign or stale cache, streams with misshaped states, and
//! state dicts with tensors removed, added, reshaped or poisoned. Each call returns
//! `Ok` or an error with a message; what comes back `Ok` has the documented shape.
//! Inputs are synthetic (a seeded generator), as this is a unit property.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use recur::rnn::{CellKind, InitialState, InputGradient, Rnn, RnnCache, RnnConfig, SequenceBatch};
use recur::{Rng, Tensor};

/// `n` values near 0, occasionally one NaN or infinity.
fn values(rng: &mut Rng, n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
    if n > 0 && rng.below(12) == 0 {
        let at = rng.below(n);
        v[at] = if rng.below(2) == 0 { f32::NAN } else { f32::INFINITY };
    }
    v
}

/// `exact`, or one value off in either direction now and then (never below zero).
fn near(rng: &mut Rng, exact: usize) -> usize {
    match rng.below(16) {
        0 => exact + 1,
        1 => exact.saturating_sub(1),
        _ => exact,
    }
}

/// `values` of about `exact` length (see `near`).
fn values_near(rng: &mut Rng, exact: usize) -> Vec<f32> {
    let n = near(rng, exact);
    values(rng, n)
}

/// `values_near`, or none at all one time in three.
fn maybe_values_near(rng: &mut Rng, exact: usize) -> Option<Vec<f32>> {
    (rng.below(3) != 0).then(|| values_near(rng, exact))
}

fn probability(rng: &mut Rng) -> f64 {
    match rng.below(30) {
        0 => 1.0,
        1 => -0.1,
        2 => f64::NAN,
        3..=12 => 0.3,
        _ => 0.0,
    }
}

/// Mostly 1..=max, now and then 0.
fn size(rng: &mut Rng, max: usize) -> usize {
    if rng.below(12) == 0 {
        0
    } else {
        1 + rng.below(max)
    }
}

fn random_config(rng: &mut Rng) -> RnnConfig {
    RnnConfig {
        cell: CellKind::ALL[rng.below(CellKind::ALL.len())],
        input_size: size(rng, 3),
        hidden_size: size(rng, 4),
        num_layers: size(rng, 2),
        bidirectional: rng.below(2) == 0,
        dropout: probability(rng),
        layer_norm: rng.below(2) == 0,
        input_dropout: probability(rng),
        state_dropout: probability(rng),
        learn_initial_state: rng.below(3) == 0,
    }
}

/// Runs `f`, failing the test with `what` (after the panic's own message) if it panics.
fn must_not_panic<R>(what: &str, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => panic!("{what} panicked (message above)"),
    }
}

/// Every error that comes back says something.
fn checked<T>(r: recur::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            assert!(!e.to_string().is_empty(), "an error without a message");
            None
        }
    }
}

#[test]
fn no_entry_point_panics_on_random_valid_or_invalid_input() {
    let mut rng = Rng::new(7);
    let mut ran_ok = [0usize; 4];
    for trial in 0..4000 {
        let config = random_config(&mut rng);
        let seed = rng.next_u64();
        let Some(mut rnn) = must_not_panic(&format!("trial {trial}: Rnn::new({config:?})"), || {
            checked(Rnn::<f32>::new(config.clone(), seed))
        }) else {
            continue;
        };
        rnn.set_threads(1 + rng.below(2));
        let (d, h, layers, dirs) = (config.input_size, config.hidden_size, config.num_layers, config.directions());
        let (steps, batch) = (size(&mut rng, 3), size(&mut rng, 3));
        let x = values_near(&mut rng, steps * batch * d);
        let lengths: Option<Vec<usize>> =
            (rng.below(2) == 0).then(|| (0..near(&mut rng, batch)).map(|_| rng.below(steps + 2)).collect());
        let input = SequenceBatch { x: &x, steps, batch, lengths: lengths.as_deref() };
        let state_len = layers * dirs * batch * h;
        let h0 = maybe_values_near(&mut rng, state_len);
        let c0 = maybe_values_near(&mut rng, state_len);
        let state = InitialState { h0: h0.as_deref(), c0: c0.as_deref() };
        let context = format!("trial {trial}: {config:?}, T={steps} B={batch} x={} lengths={lengths:?}", x.len());

        if let Some(out) = must_not_panic(&format!("{context}: forward"), || checked(rnn.forward(&input, &state))) {
            assert_eq!(out.output.len(), steps * batch * dirs * h, "{context}");
            assert_eq!(out.h_n.len(), state_len, "{context}");
            ran_ok[0] += 1;
        }

        let mut cache = RnnCache::default();
        let trained = must_not_panic(&format!("{context}: forward_train"), || {
            checked(rnn.forward_train_reusing(&input, &state, seed, &mut cache))
        });
        // a cache from another shape now and then: backward must refuse it, not panic
        if rng.below(5) == 0 {
            let other = SequenceBatch { x: &x, steps: steps + 1, batch, lengths: None };
            let _ = rnn.forward_train_reusing(&other, &InitialState::default(), seed, &mut cache);
        }
        let d_output = values_near(&mut rng, steps * batch * dirs * h);
        let d_h_n = maybe_values_near(&mut rng, state_len);
        let d_c_n = maybe_values_near(&mut rng, state_len);
        let mut grads = if rng.below(8) == 0 { Vec::new() } else { rnn.zero_grads() };
        let skip = if rng.below(2) == 0 { InputGradient::Skip } else { InputGradient::Compute };
        let back = must_not_panic(&format!("{context}: backward"), || {
            checked(rnn.backward_with(
                &input,
                &mut cache,
                &d_output,
                d_h_n.as_deref(),
                d_c_n.as_deref(),
                &mut grads,
                skip,
            ))
        });
        if let (Some(_), Some(g)) = (trained, back) {
            if skip == InputGradient::Compute {
                assert_eq!(g.d_x.len(), steps * batch * d, "{context}");
            }
            ran_ok[1] += 1;
        }

        let stream_batch = near(&mut rng, batch.max(1));
        if let Some(mut stream) =
            must_not_panic(&format!("{context}: stream"), || checked(rnn.stream(stream_batch, &state)))
        {
            for _ in 0..2 {
                let x_t = values_near(&mut rng, stream_batch * d);
                if let Some(y) = must_not_panic(&format!("{context}: stream step"), || checked(stream.step(&x_t))) {
                    assert_eq!(y.len(), stream_batch * h, "{context}");
                    ran_ok[2] += 1;
                }
            }
        }

        let mut dict: BTreeMap<String, Tensor<f32>> = rnn.state_dict().into_iter().collect();
        let names: Vec<String> = dict.keys().cloned().collect();
        if let Some(name) = names.get(rng.below(names.len() + 1)) {
            match rng.below(4) {
                0 => {
                    dict.remove(name);
                }
                1 => {
                    let shape = dict[name].shape.iter().map(|&s| near(&mut rng, s)).collect::<Vec<_>>();
                    dict.insert(name.clone(), Tensor::zeros(&shape));
                }
                2 => {
                    dict.insert(format!("{name}_extra"), Tensor::zeros(&[1]));
                }
                _ => {
                    if let Some(v) = dict.get_mut(name).and_then(|t| t.data.first_mut()) {
                        *v = f32::NAN;
                    }
                }
            }
        }
        if must_not_panic(&format!("{context}: load_state_dict"), || checked(rnn.load_state_dict(&dict))).is_some() {
            ran_ok[3] += 1;
        }
    }
    // the generator must also reach the paths that succeed, not only the refusals
    assert!(ran_ok.iter().all(|&n| n > 50), "successful calls (forward, backward, stream steps, loads): {ran_ok:?}");
}

/// Truncated BPTT's entry points, given random models (any cell, uni- or bidirectional,
/// any coupling and fusion), random truncations (zero, non-multiple and oversized k1, k2,
/// zero steps), batches of 0–2 streams, streams a value short or long, updates in any
/// order, head gradients of the wrong size, and a decoupled model's teacher gradient
/// missing: `Ok` or a named error, never a panic.
#[test]
fn truncated_bptt_never_panics() {
    use recur::model::{Coupling, FusionKind, HeadKind, ModelConfig, SequenceModel};
    use recur::train::{TruncatedStreams, Truncation};
    let mut rng = Rng::new(11);
    let mut ran_ok = [0usize; 2];
    for trial in 0..600 {
        let mut encoder = random_config(&mut rng);
        encoder.bidirectional = rng.below(4) == 0;
        let config = ModelConfig {
            encoder,
            coupling: if rng.below(2) == 0 { Coupling::Coupled } else { Coupling::Decoupled },
            twin_weight: 0.5,
            fusion: FusionKind::ALL[rng.below(FusionKind::ALL.len())],
            head: [HeadKind::Linear, HeadKind::Gaussian, HeadKind::Quantile][rng.below(3)],
            outputs: size(&mut rng, 2),
            // now and then zero or not dividing the outputs: refused by name
            precisions: size(&mut rng, 2),
            detach_precision: rng.below(2) == 0,
        };
        // a quantile head takes two distances per output: mostly so, now and then not
        let config = match config.head == HeadKind::Quantile && rng.below(4) > 0 {
            true => ModelConfig { precisions: 2 * config.outputs, ..config },
            false => config,
        };
        let Some(model) = checked(SequenceModel::<f32>::new(config.clone(), trial)) else { continue };
        // mostly valid, now and then zero or not a multiple
        let k1 = if rng.below(8) == 0 { 0 } else { 1 + rng.below(3) };
        let k2 = if rng.below(6) == 0 { rng.below(9) } else { k1 * (1 + rng.below(3)) };
        let truncation = Truncation { k1, k2, steps: size(&mut rng, 9) };
        let batch = size(&mut rng, 2);
        let context = format!("trial {trial}: {config:?} {truncation:?} B={batch}");
        let Some(mut streams) =
            must_not_panic(&format!("{context}: new"), || checked(TruncatedStreams::new(&model, truncation, batch)))
        else {
            continue;
        };
        let x = values_near(&mut rng, truncation.steps * batch * config.encoder.input_size);
        let lengths: Option<Vec<usize>> =
            (rng.below(3) == 0).then(|| (0..batch).map(|_| rng.below(truncation.steps + 2)).collect());
        let input = SequenceBatch { x: &x, steps: truncation.steps, batch, lengths: lengths.as_deref() };
        for _ in 0..3 {
            let u = rng.below(truncation.updates() + 1);
            let Some(out) =
                must_not_panic(&format!("{context}: forward {u}"), || checked(streams.forward(&model, &input, u, 3)))
            else {
                continue;
            };
            ran_ok[0] += 1;
            let rows = out.steps.len() * batch;
            let d_mean = values_near(&mut rng, rows * config.outputs);
            let d_precision = match config.head {
                HeadKind::Gaussian => values_near(&mut rng, rows),
                // a quantile head's distances, now and then one short
                HeadKind::Quantile => {
                    let short = usize::from(rng.below(5) == 0);
                    values_near(&mut rng, (rows * config.precisions).saturating_sub(short))
                }
                HeadKind::Linear => Vec::new(),
            };
            // a decoupled model's teacher gradient, now and then missing
            let teacher = out
                .teacher
                .as_ref()
                .filter(|_| rng.below(5) > 0)
                .map(|t| (values_near(&mut rng, t.mean.len()), values_near(&mut rng, t.precision.len())));
            let d_teacher = teacher.as_ref().map(|(m, p)| (&m[..], &p[..]));
            let mut grads = model.zeros_like();
            let result = must_not_panic(&format!("{context}: backward {u}"), || {
                checked(streams.backward(&model, &input, (&d_mean, &d_precision), d_teacher, &mut grads))
            });
            ran_ok[1] += usize::from(result.is_some());
        }
    }
    println!("successful forwards and backwards: {ran_ok:?}");
    assert!(ran_ok.iter().all(|&n| n > 30), "successful forwards and backwards: {ran_ok:?}");
}
