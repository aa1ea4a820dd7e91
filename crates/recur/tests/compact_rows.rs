//! The LSTM with layer norm keeps a compact cache row for long sequences (backward
//! recomputes the gates and tanh(c̃) instead of reading them): its outputs and every
//! gradient must be the full layout's, bit for bit — so the gradient checks and PyTorch
//! parity of the full layout hold for it. The layout is forced both ways on small shapes
//! (a test binary of its own: the switch is process-wide). Synthetic inputs.

use recur::kernels::sequence::set_compact_rows_above_bytes;
use recur::kernels::Real;
use recur::rnn::{CellKind, InitialState, Rnn, RnnConfig, SequenceBatch};
use recur::Rng;

/// Output, h_n, c_n, ∂x, ∂h0, ∂c0 and every parameter gradient of one training step
/// (`backward_threshold`: the layout switch set anew between forward and backward).
fn step<T: Real>(
    config: &RnnConfig,
    lengths: Option<&[usize]>,
    seed: u64,
    backward_threshold: Option<usize>,
) -> Vec<Vec<T>> {
    let (steps, batch) = (7, 3);
    let rnn = Rnn::<T>::new(config.clone(), seed).unwrap();
    let mut rng = Rng::new(seed + 1);
    let mut normal = |n: usize| (0..n).map(|_| T::from_f64(rng.normal())).collect::<Vec<T>>();
    let states = config.num_layers * config.directions() * batch * config.hidden_size;
    let (x, h0, c0) = (normal(steps * batch * config.input_size), normal(states), normal(states));
    let d_out = normal(steps * batch * config.output_size());
    let (d_hn, d_cn) = (normal(states), normal(states));
    let input = SequenceBatch { x: &x, steps, batch, lengths };
    let state = InitialState { h0: Some(&h0), c0: Some(&c0) };
    let (out, mut cache) = rnn.forward_train(&input, &state, 5).unwrap();
    if let Some(bytes) = backward_threshold {
        set_compact_rows_above_bytes(bytes);
    }
    let mut grads = rnn.zero_grads();
    let g = rnn.backward(&input, &mut cache, &d_out, Some(&d_hn), Some(&d_cn), &mut grads).unwrap();
    let mut all = vec![out.output, out.h_n, out.c_n, g.d_x, g.d_h0, g.d_c0];
    for p in &grads {
        p.for_each(|_, t| all.push(t.data.clone()));
    }
    all
}

fn bits<T: Real>(v: &[Vec<T>]) -> Vec<Vec<u64>> {
    v.iter().map(|t| t.iter().map(|x| x.to_f64().to_bits()).collect()).collect()
}

#[test]
fn compact_rows_give_the_full_rows_bits() {
    let mut cases = 0;
    for bidirectional in [false, true] {
        for num_layers in [1, 2] {
            for dropout in [0.0, 0.3] {
                for lengths in [None, Some(vec![7, 2, 5])] {
                    let config = RnnConfig {
                        cell: CellKind::Lstm,
                        input_size: 3,
                        hidden_size: 20,
                        num_layers,
                        bidirectional,
                        layer_norm: true,
                        input_dropout: dropout,
                        state_dropout: dropout,
                        ..RnnConfig::default()
                    };
                    let what = format!("bi={bidirectional} L={num_layers} p={dropout} lengths={lengths:?}");
                    let lengths = lengths.as_deref();
                    set_compact_rows_above_bytes(usize::MAX);
                    let (full64, full32) =
                        (step::<f64>(&config, lengths, 3, None), step::<f32>(&config, lengths, 3, None));
                    set_compact_rows_above_bytes(0);
                    let (compact64, compact32) =
                        (step::<f64>(&config, lengths, 3, None), step::<f32>(&config, lengths, 3, None));
                    assert_eq!(bits(&full64), bits(&compact64), "{what}: f64");
                    assert_eq!(bits(&full32), bits(&compact32), "{what}: f32");
                    // backward reads the layout its forward chose, whatever the switch says then
                    set_compact_rows_above_bytes(0);
                    let switched = step::<f32>(&config, lengths, 3, Some(usize::MAX));
                    assert_eq!(bits(&full32), bits(&switched), "{what}: switched after forward");
                    assert!(full64[6..].iter().all(|g| g.iter().any(|v| *v != 0.0)), "{what}: a zero gradient");
                    cases += 1;
                }
            }
        }
    }
    set_compact_rows_above_bytes(8 << 20);
    assert_eq!(cases, 16);
}
