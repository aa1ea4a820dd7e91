//! Properties of the encoder that hold for any shape: a bidirectional layer is two
//! forward layers (one on the time-reversed input), streaming equals the whole-sequence
//! call, a saved state dict reloads to the same model, and bad input is a named error.

use std::collections::BTreeMap;

use recur::rnn::{CellKind, InitialState, Rnn, RnnConfig, SequenceBatch};
use recur::{Error, Rng, Tensor};

fn normal(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal() as f32).collect()
}

fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
}

#[test]
fn bidirectional_layer_equals_forward_layer_plus_forward_layer_on_reversed_input() {
    let mut rng = Rng::new(2024);
    // the last trials are long and wide enough that the kernels compute the input
    // products in several blocks of steps (and a partial last block)
    for trial in 0..60 + CellKind::ALL.len() {
        let cell = CellKind::ALL[trial % CellKind::ALL.len()];
        let (steps, batch, d, h) = if trial >= 60 {
            (13, 64, 4, 128)
        } else {
            (1 + rng.below(9), 1 + rng.below(5), 1 + rng.below(6), 1 + rng.below(9))
        };
        let config = RnnConfig { cell, input_size: d, hidden_size: h, bidirectional: true, ..RnnConfig::default() };
        let bi = Rnn::<f32>::new(config.clone(), trial as u64).unwrap();
        let uni_config = RnnConfig { bidirectional: false, ..config };
        let mut forward = Rnn::<f32>::new(uni_config.clone(), 0).unwrap();
        let mut backward = Rnn::<f32>::new(uni_config, 0).unwrap();
        forward.cells_mut()[0] = bi.cells()[0].clone();
        backward.cells_mut()[0] = bi.cells()[1].clone();

        let lengths: Vec<usize> = (0..batch).map(|b| if b == 0 { steps } else { 1 + rng.below(steps) }).collect();
        let x = normal(&mut rng, steps * batch * d);
        let states = 2 * batch * h;
        let h0 = normal(&mut rng, states);
        let c0 = normal(&mut rng, states);
        let has_c = cell.has_cell_state();
        let bi_out = bi
            .forward(
                &SequenceBatch { x: &x, steps, batch, lengths: Some(&lengths) },
                &InitialState { h0: Some(&h0), c0: has_c.then_some(&c0[..]) },
            )
            .unwrap();

        // x reversed within each row's own length.
        let mut x_rev = vec![0.0; x.len()];
        for (b, &len) in lengths.iter().enumerate() {
            for t in 0..len {
                let src = ((len - 1 - t) * batch + b) * d;
                x_rev[(t * batch + b) * d..(t * batch + b + 1) * d].copy_from_slice(&x[src..src + d]);
            }
        }
        let half = batch * h;
        let fw = forward
            .forward(
                &SequenceBatch { x: &x, steps, batch, lengths: Some(&lengths) },
                &InitialState { h0: Some(&h0[..half]), c0: has_c.then_some(&c0[..half]) },
            )
            .unwrap();
        let bw = backward
            .forward(
                &SequenceBatch { x: &x_rev, steps, batch, lengths: Some(&lengths) },
                &InitialState { h0: Some(&h0[half..]), c0: has_c.then_some(&c0[half..]) },
            )
            .unwrap();
        for (b, &len) in lengths.iter().enumerate() {
            for t in 0..steps {
                let row = &bi_out.output[(t * batch + b) * 2 * h..(t * batch + b + 1) * 2 * h];
                let f = &fw.output[(t * batch + b) * h..(t * batch + b + 1) * h];
                let r = if t < len {
                    let tr = len - 1 - t;
                    bw.output[(tr * batch + b) * h..(tr * batch + b + 1) * h].to_vec()
                } else {
                    vec![0.0; h]
                };
                assert!(close(&row[..h], f, 1e-6), "{cell:?} trial {trial}: forward half differs at t={t} b={b}");
                assert!(close(&row[h..], &r, 1e-6), "{cell:?} trial {trial}: reverse half differs at t={t} b={b}");
            }
        }
        assert!(
            close(&bi_out.h_n[..half], &fw.h_n, 1e-6) && close(&bi_out.h_n[half..], &bw.h_n, 1e-6),
            "{cell:?}: h_n"
        );
        if has_c {
            assert!(
                close(&bi_out.c_n[..half], &fw.c_n, 1e-6) && close(&bi_out.c_n[half..], &bw.c_n, 1e-6),
                "{cell:?}: c_n"
            );
        }
    }
}

#[test]
fn streaming_one_step_at_a_time_equals_the_whole_sequence() {
    let mut rng = Rng::new(5);
    for cell in CellKind::ALL {
        for (layer_norm, (steps, batch, d, h)) in
            [(false, (12, 3, 4, 8)), (true, (12, 3, 4, 8)), (false, (13, 64, 4, 128))]
        {
            let config =
                RnnConfig { cell, input_size: d, hidden_size: h, num_layers: 2, layer_norm, ..RnnConfig::default() };
            let rnn = Rnn::<f32>::new(config, 3).unwrap();
            let x = normal(&mut rng, steps * batch * d);
            let whole =
                rnn.forward(&SequenceBatch { x: &x, steps, batch, lengths: None }, &InitialState::default()).unwrap();
            let mut stream = rnn.stream(batch, &InitialState::default()).unwrap();
            for t in 0..steps {
                let y = stream.step(&x[t * batch * d..(t + 1) * batch * d]).unwrap().to_vec();
                let want = &whole.output[t * batch * h..(t + 1) * batch * h];
                assert!(close(&y, want, 1e-5), "{cell:?} ln={layer_norm}: step {t} differs");
            }
        }
    }
}

#[test]
fn saved_state_dict_reloads_to_the_same_outputs() {
    let scratch = tempfile::Builder::new().prefix("recur-state-dict-").tempdir().unwrap();
    let dir = scratch.path();
    for cell in CellKind::ALL {
        let config = RnnConfig {
            cell,
            input_size: 3,
            hidden_size: 5,
            num_layers: 2,
            bidirectional: true,
            layer_norm: true,
            learn_initial_state: true,
            ..RnnConfig::default()
        };
        let a = Rnn::<f32>::new(config.clone(), 1).unwrap();
        let path = dir.join(format!("{cell:?}.safetensors"));
        a.save_safetensors(&path, Default::default()).unwrap();
        let mut b = Rnn::<f32>::new(config, 2).unwrap();
        assert_ne!(a, b);
        b.load_safetensors(&path, &|_| false).unwrap();
        assert_eq!(a, b, "{cell:?}");
    }
}

fn gru() -> Rnn<f32> {
    Rnn::new(RnnConfig { cell: CellKind::GruResetAfter, input_size: 3, hidden_size: 4, ..RnnConfig::default() }, 0)
        .unwrap()
}

#[test]
fn bad_inputs_are_errors_that_name_the_tensor_and_shape() {
    let rnn = gru();
    let x = vec![0.5f32; 5 * 2 * 3];
    fn batch(x: &[f32]) -> SequenceBatch<'_, f32> {
        SequenceBatch { x, steps: 5, batch: 2, lengths: None }
    }
    let err = rnn.forward(&batch(&x[..29]), &InitialState::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { tensor, expected, .. } if tensor == "input" && expected == &vec![5, 2, 3]),
        "{err}"
    );
    assert_eq!(err.to_string(), "tensor `input` has shape [29], expected [5, 2, 3]");

    let mut nan = x.clone();
    nan[7] = f32::NAN;
    let err = rnn.forward(&batch(&nan), &InitialState::default()).unwrap_err();
    assert!(matches!(&err, Error::NonFinite { tensor, index: 7, .. } if tensor == "input"), "{err}");

    let err = rnn.forward(&batch(&x), &InitialState { h0: Some(&[0.0; 7]), c0: None }).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { tensor, expected, .. } if tensor == "h0" && expected == &vec![1, 2, 4]),
        "{err}"
    );

    let err = rnn.forward(&batch(&x), &InitialState { h0: None, c0: Some(&[0.0; 8]) }).unwrap_err();
    assert!(err.to_string().contains("c0"), "{err}");

    let err =
        rnn.forward(&SequenceBatch { lengths: Some(&[5, 6]), ..batch(&x) }, &InitialState::default()).unwrap_err();
    assert!(err.to_string().contains("row 1 has length 6"), "{err}");

    let bi = Rnn::<f32>::new(RnnConfig { bidirectional: true, ..rnn.config().clone() }, 0).unwrap();
    assert!(bi.stream(1, &InitialState::default()).is_err());

    let err = RnnConfig { dropout: 1.5, ..RnnConfig::default() }.validate().unwrap_err();
    assert!(err.to_string().contains("dropout"), "{err}");
}

#[test]
fn state_dict_errors_name_the_missing_extra_or_misshaped_tensor() {
    let mut rnn = gru();
    let good: BTreeMap<String, Tensor<f32>> = rnn.state_dict().into_iter().collect();

    let mut missing = good.clone();
    missing.remove("bias_hh_l0");
    let err = rnn.load_state_dict(&missing).unwrap_err();
    assert_eq!(err.to_string(), "state dict has no tensor `bias_hh_l0` (expected shape [12])");

    let mut extra = good.clone();
    extra.insert("weight_ih_l1".into(), Tensor::zeros(&[12, 4]));
    let err = rnn.load_state_dict(&extra).unwrap_err();
    assert!(matches!(&err, Error::UnexpectedTensor { tensor, .. } if tensor == "weight_ih_l1"), "{err}");

    let mut misshaped = good.clone();
    misshaped.insert("weight_hh_l0".into(), Tensor::zeros(&[4, 12]));
    let err = rnn.load_state_dict(&misshaped).unwrap_err();
    assert_eq!(err.to_string(), "tensor `weight_hh_l0` has shape [4, 12], expected [12, 4]");

    let mut infinite = good.clone();
    infinite.get_mut("weight_ih_l0").unwrap().data[3] = f32::INFINITY;
    let before = rnn.clone();
    let err = rnn.load_state_dict(&infinite).unwrap_err();
    assert!(matches!(&err, Error::NonFinite { tensor, index: 3, .. } if tensor == "weight_ih_l0"), "{err}");
    assert_eq!(rnn, before, "a failed load changes nothing");

    rnn.load_state_dict(&good).unwrap();
}

#[test]
fn two_threads_give_the_same_outputs_and_gradients_as_one() {
    let mut rng = Rng::new(11);
    for cell in CellKind::ALL {
        for bidirectional in [false, true] {
            let (steps, batch, d, h) = (7, 19, 3, 6);
            let config = RnnConfig {
                cell,
                input_size: d,
                hidden_size: h,
                num_layers: 2,
                bidirectional,
                input_dropout: 0.2,
                state_dropout: 0.2,
                dropout: 0.1,
                ..RnnConfig::default()
            };
            let one = Rnn::<f32>::new(config, 4).unwrap();
            let mut two = one.clone();
            two.set_threads(2);
            let x = normal(&mut rng, steps * batch * d);
            let lengths: Vec<usize> = (0..batch).map(|b| 1 + (b * 5) % steps).collect();
            let input = SequenceBatch { x: &x, steps, batch, lengths: Some(&lengths) };
            let probe = normal(&mut rng, steps * batch * one.config().output_size());
            let mut results = Vec::new();
            for rnn in [&one, &two] {
                let (out, mut cache) = rnn.forward_train(&input, &InitialState::default(), 9).unwrap();
                let mut grads = rnn.zero_grads();
                let d = rnn.backward(&input, &mut cache, &probe, None, None, &mut grads).unwrap();
                let flat: Vec<f32> = grads.iter().flat_map(|g| g.named().flat_map(|(_, t)| t.data.clone())).collect();
                results.push((out, d.d_x, flat));
            }
            let (a, b) = (&results[0], &results[1]);
            assert!(
                close(&a.0.output, &b.0.output, 1e-6) && close(&a.0.h_n, &b.0.h_n, 1e-6),
                "{cell:?} bi={bidirectional}: outputs"
            );
            assert!(close(&a.1, &b.1, 1e-5), "{cell:?} bi={bidirectional}: input gradients");
            assert!(close(&a.2, &b.2, 1e-5), "{cell:?} bi={bidirectional}: parameter gradients");
        }
    }
}

/// A cache reused from earlier, different batches (as training loops reuse it) gives
/// exactly what a fresh cache gives: the kernels overwrite every scratch value they
/// read instead of relying on buffers that start at zero, and read no further than the
/// current shape in buffers that a longer batch left longer.
#[test]
fn a_reused_cache_gives_the_same_outputs_and_gradients_as_a_fresh_one() {
    let mut rng = Rng::new(77);
    for cell in CellKind::ALL {
        for (layer_norm, dropout) in [(false, 0.0), (true, 0.3)] {
            let (steps, batch, d, h) = (9, 6, 3, 5);
            let config = RnnConfig {
                cell,
                input_size: d,
                hidden_size: h,
                num_layers: 2,
                bidirectional: true,
                layer_norm,
                input_dropout: dropout,
                state_dropout: dropout,
                dropout,
                ..RnnConfig::default()
            };
            let rnn = Rnn::<f32>::new(config, 4).unwrap();
            let run = |steps, x: &[f32], lengths: &[usize], d_out: &[f32], cache: &mut recur::rnn::RnnCache<f32>| {
                let batch = lengths.len();
                let input = SequenceBatch { x, steps, batch, lengths: Some(lengths) };
                let out = rnn.forward_train_reusing(&input, &InitialState::default(), 8, cache).unwrap();
                let mut grads = rnn.zero_grads();
                let d = rnn.backward(&input, cache, d_out, None, None, &mut grads).unwrap();
                let flat: Vec<f32> = grads.iter().flat_map(|g| g.named().flat_map(|(_, t)| t.data.clone())).collect();
                (out.output, d.d_x, flat)
            };
            let width = 2 * h;
            // a first batch whose rows are all full, then one with short rows (padding)
            let (x1, x2) = (normal(&mut rng, steps * batch * d), normal(&mut rng, steps * batch * d));
            let (g1, g2) = (normal(&mut rng, steps * batch * width), normal(&mut rng, steps * batch * width));
            let full = vec![steps; batch];
            let short: Vec<usize> = (0..batch).map(|b| 1 + (b * 5) % steps).collect();
            // and before both, a longer and wider batch
            let (long_steps, wide) = (steps + 4, batch + 3);
            let x0 = normal(&mut rng, long_steps * wide * d);
            let g0 = normal(&mut rng, long_steps * wide * width);
            let mut reused = recur::rnn::RnnCache::default();
            run(long_steps, &x0, &vec![long_steps; wide], &g0, &mut reused);
            run(steps, &x1, &full, &g1, &mut reused);
            let again = run(steps, &x2, &short, &g2, &mut reused);
            let fresh = run(steps, &x2, &short, &g2, &mut recur::rnn::RnnCache::default());
            assert_eq!(again.0, fresh.0, "{cell:?} ln={layer_norm}: outputs");
            assert_eq!(again.1, fresh.1, "{cell:?} ln={layer_norm}: input gradients");
            assert_eq!(again.2, fresh.2, "{cell:?} ln={layer_norm}: weight gradients");
        }
    }
}

/// Skipping ∂x (training on data) leaves every parameter gradient and ∂h0 exactly as
/// computing it does, in stacks whose upper layers still pass ∂ of their input down.
#[test]
fn skipping_the_input_gradient_changes_no_parameter_gradient() {
    use recur::rnn::InputGradient;
    let mut rng = Rng::new(31);
    for cell in CellKind::ALL {
        let (steps, batch, d, h) = (7, 5, 3, 4);
        let config = RnnConfig {
            cell,
            input_size: d,
            hidden_size: h,
            num_layers: 2,
            bidirectional: true,
            input_dropout: 0.2,
            dropout: 0.1,
            ..RnnConfig::default()
        };
        let rnn = Rnn::<f32>::new(config, 6).unwrap();
        let x = normal(&mut rng, steps * batch * d);
        let d_out = normal(&mut rng, steps * batch * 2 * h);
        let lengths: Vec<usize> = (0..batch).map(|b| 1 + (b * 3) % steps).collect();
        let input = SequenceBatch { x: &x, steps, batch, lengths: Some(&lengths) };
        let mut results = Vec::new();
        for wanted in [InputGradient::Compute, InputGradient::Skip] {
            let (_, mut cache) = rnn.forward_train(&input, &InitialState::default(), 3).unwrap();
            let mut grads = rnn.zero_grads();
            let d = rnn.backward_with(&input, &mut cache, &d_out, None, None, &mut grads, wanted).unwrap();
            let flat: Vec<f32> = grads.iter().flat_map(|g| g.named().flat_map(|(_, t)| t.data.clone())).collect();
            results.push((d, flat));
        }
        let ((computed, g_computed), (skipped, g_skipped)) = (&results[0], &results[1]);
        assert_eq!(computed.d_x.len(), x.len(), "{cell:?}");
        assert!(skipped.d_x.is_empty(), "{cell:?}: ∂x skipped");
        assert_eq!(g_computed, g_skipped, "{cell:?}: parameter gradients");
        assert_eq!(computed.d_h0, skipped.d_h0, "{cell:?}: ∂h0");
    }
}

#[test]
fn a_learned_initial_state_given_way_to_an_explicit_one_gets_no_gradient() {
    let mut rng = Rng::new(31);
    for cell in CellKind::ALL {
        let config = RnnConfig {
            cell,
            input_size: 3,
            hidden_size: 4,
            num_layers: 2,
            bidirectional: true,
            learn_initial_state: true,
            ..RnnConfig::default()
        };
        let rnn = Rnn::<f32>::new(config, 5).unwrap();
        let (steps, batch) = (5, 2);
        let x = normal(&mut rng, steps * batch * 3);
        let input = SequenceBatch { x: &x, steps, batch, lengths: None };
        let h0 = normal(&mut rng, 4 * batch * 4);
        let d_output = normal(&mut rng, steps * batch * 8);
        for given in [false, true] {
            let c0 = cell.has_cell_state().then_some(&h0[..]);
            let state = if given { InitialState { h0: Some(&h0), c0 } } else { InitialState::default() };
            let (_, mut cache) = rnn.forward_train(&input, &state, 1).unwrap();
            let mut grads = rnn.zero_grads();
            let g = rnn.backward(&input, &mut cache, &d_output, None, None, &mut grads).unwrap();
            assert!(g.d_h0.iter().any(|&v| v != 0.0), "{cell:?}: ∂h0 is returned either way");
            let learned: f32 =
                grads.iter().flat_map(|p| p.initial_h.data.iter().chain(&p.initial_c.data)).map(|v| v.abs()).sum();
            assert_eq!(learned == 0.0, given, "{cell:?} given={given}: learned initial state's gradient {learned}");
        }
    }
}
