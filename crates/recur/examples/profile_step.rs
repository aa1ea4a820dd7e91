//! Runs one benchmark configuration in a loop, for `perf record`:
//!     cargo build --profile profiling -p recur --example profile_step
//!     perf record -g target/profiling/examples/profile_step lstm|gru|grub|elman|jordan infer|train [fwd] [s2] [bi] [ln] [vd] [t2] [half] [compact|full]
//! (`grub`: GRU reset-before; S1 unless `s2`; `t2`: two threads; `half`: half the batch;
//! `compact`, `full`: force the layer-norm row layout; 1000 calls at S1, 100 at S2)
use recur::rnn::{CellKind, InitialState, InputGradient, Rnn, RnnConfig, SequenceBatch};

fn main() {
    recur::keep_freed_memory();
    for (flag, bytes) in [("compact", 0), ("full", usize::MAX)] {
        if std::env::args().any(|a| a == flag) {
            recur::kernels::sequence::set_compact_rows_above_bytes(bytes);
        }
    }
    let args: Vec<String> = std::env::args().collect();
    let cell = match args.get(1).map(String::as_str) {
        Some("gru") => CellKind::GruResetAfter,
        Some("elman") => CellKind::ElmanTanh,
        Some("grub") => CellKind::GruResetBefore,
        Some("jordan") => CellKind::Jordan,
        _ => CellKind::Lstm,
    };
    let train = args.get(2).map(String::as_str) == Some("train");
    let s2 = args.iter().any(|a| a == "s2");
    let bidirectional = args.iter().any(|a| a == "bi");
    let (b, t, d, h) = if s2 { (64, 120, 12, 128) } else { (32, 60, 12, 64) };
    let b = if args.iter().any(|a| a == "half") { b / 2 } else { b };
    let layer_norm = args.iter().any(|a| a == "ln");
    let dropout = args.iter().any(|a| a == "vd");
    let config = RnnConfig {
        cell,
        input_size: d,
        hidden_size: h,
        bidirectional,
        layer_norm,
        input_dropout: if dropout { 0.2 } else { 0.0 },
        state_dropout: if dropout { 0.2 } else { 0.0 },
        ..RnnConfig::default()
    };
    let mut rnn = Rnn::<f32>::new(config, 1).unwrap();
    rnn.set_threads(if args.iter().any(|a| a == "t2") { 2 } else { 1 });
    let reps = if s2 { 100 } else { 1000 };
    let x: Vec<f32> = (0..t * b * d).map(|i| (i as f32 * 0.37).sin()).collect();
    let input = SequenceBatch { x: &x, steps: t, batch: b, lengths: None };
    let mut cache = recur::rnn::RnnCache::default();
    for _ in 0..reps {
        if args.iter().any(|a| a == "fwd") {
            std::hint::black_box(rnn.forward_train_reusing(&input, &InitialState::default(), 1, &mut cache).unwrap());
        } else if train {
            let out = rnn.forward_train_reusing(&input, &InitialState::default(), 1, &mut cache).unwrap();
            let mut g = rnn.zero_grads();
            rnn.backward_with(&input, &mut cache, &out.output, None, None, &mut g, InputGradient::Skip).unwrap();
        } else {
            std::hint::black_box(rnn.forward(&input, &InitialState::default()).unwrap());
        }
    }
}
