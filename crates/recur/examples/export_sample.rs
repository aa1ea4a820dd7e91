//! Trains a small model on the adding problem, saves it with `SequenceModel::save`, and
//! writes a sample input with recur's outputs, for `tools/check_export.py` to reproduce
//! in PyTorch:
//!     cargo run --release -p recur --example export_sample -- OUT_DIR
//!     python3 tools/check_export.py OUT_DIR
use std::collections::HashMap;

use recur::io::write_f32;
use recur::losses::masked_mse;
use recur::model::{Coupling, FusionKind, HeadKind, ModelConfig, SequenceModel};
use recur::optim::{AdamW, AdamWConfig};
use recur::rnn::{CellKind, RnnConfig, SequenceBatch};
use recur::tasks::adding::adding_batch;
use recur::train::model_slots;
use recur::{Rng, Tensor};

fn main() {
    let out = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: export_sample OUT_DIR"));
    std::fs::create_dir_all(&out).unwrap();
    let mut index = 0;
    for cell in [CellKind::Lstm, CellKind::GruResetAfter, CellKind::ElmanTanh] {
        for (bidirectional, coupling, fusion) in [
            (false, Coupling::Coupled, FusionKind::Concat),
            (true, Coupling::Coupled, FusionKind::Concat),
            (true, Coupling::Coupled, FusionKind::Gated),
            (true, Coupling::Decoupled, FusionKind::FuserGru),
            (true, Coupling::Decoupled, FusionKind::Product),
            (true, Coupling::Coupled, FusionKind::FuserLstm),
        ] {
            let head = match index % 4 {
                0 => HeadKind::Gaussian,
                2 => HeadKind::Quantile,
                _ => HeadKind::Linear,
            };
            // the first: two outputs, each with its own precision reading z as a constant
            let outputs = if index == 0 { 2 } else { 1 };
            let precisions = if head == HeadKind::Quantile { 2 * outputs } else { outputs };
            let config = ModelConfig {
                encoder: RnnConfig {
                    cell,
                    input_size: 2,
                    hidden_size: 8,
                    num_layers: 2,
                    bidirectional,
                    ..RnnConfig::default()
                },
                coupling,
                twin_weight: 0.5,
                fusion,
                head,
                outputs,
                precisions,
                detach_precision: index == 0,
            };
            let mut model = SequenceModel::<f32>::new(config, index).unwrap();
            let (steps, batch) = (12, 4);
            let mut rng = Rng::new(index);
            let mut opt = AdamW::new(AdamWConfig { lr: 1e-2, ..AdamWConfig::default() });
            let mask = vec![1.0f32; steps * batch * outputs];
            for _ in 0..30 {
                let (x, target) = adding_batch(steps, batch, &mut rng);
                let full: Vec<f32> = (0..steps * batch * outputs).map(|n| target[n / outputs % batch]).collect();
                let input = SequenceBatch { x: &x, steps, batch, lengths: None };
                let (o, mut cache) = model.forward_train(&input, 1).unwrap();
                let (_, d) = masked_mse(&o.student.mean, &full, &mask);
                let dt = o.teacher.as_ref().map(|t| masked_mse(&t.mean, &full, &mask).1);
                let zeros_s = vec![0.0f32; o.student.precision.len()];
                let mut grads = model.zeros_like();
                model
                    .backward(&mut cache, (&d, &zeros_s), dt.as_ref().map(|d| (&d[..], &zeros_s[..])), &mut grads)
                    .unwrap();
                opt.step(1e-2, &mut model_slots(&mut model, &mut grads));
            }
            let (x, _) = adding_batch(steps, batch, &mut rng);
            let lengths = vec![12usize, 7, 12, 3];
            let pred = model.forward(&SequenceBatch { x: &x, steps, batch, lengths: Some(&lengths) }).unwrap();
            let name = format!("model{index:02}");
            model.save(out.join(format!("{name}.safetensors")), HashMap::new()).unwrap();
            let mut tensors = vec![
                ("input".to_string(), Tensor { shape: vec![steps, batch, 2], data: x }),
                (
                    "lengths".to_string(),
                    Tensor { shape: vec![batch], data: lengths.iter().map(|&l| l as f32).collect() },
                ),
                ("mean".to_string(), Tensor { shape: vec![steps, batch, outputs], data: pred.mean }),
            ];
            if !pred.precision.is_empty() {
                // λ̂ [T, B] for one precision per step, [T, B, P] for several (a quantile head's
                // 2·O distances)
                let shape = if precisions == 1 { vec![steps, batch] } else { vec![steps, batch, precisions] };
                tensors.push(("precision".to_string(), Tensor { shape, data: pred.precision }));
            }
            write_f32(out.join(format!("{name}.sample.safetensors")), &tensors, HashMap::new()).unwrap();
            index += 1;
        }
    }
    println!("wrote {index} trained models and samples to {}", out.display());
}
