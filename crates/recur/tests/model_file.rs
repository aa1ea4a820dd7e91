//! A saved model reloads to the same outputs; a damaged file is a named error.

use std::collections::HashMap;

use recur::io::write_f32;
use recur::model::{Coupling, FusionKind, HeadKind, ModelConfig, SequenceModel};
use recur::rnn::{CellKind, RnnConfig, SequenceBatch};
use recur::Tensor;

fn config() -> ModelConfig {
    ModelConfig {
        encoder: RnnConfig {
            cell: CellKind::Lstm,
            input_size: 3,
            hidden_size: 5,
            bidirectional: true,
            ..RnnConfig::default()
        },
        coupling: Coupling::Decoupled,
        twin_weight: 0.5,
        fusion: FusionKind::Gated,
        head: HeadKind::Gaussian,
        outputs: 2,
        precisions: 1,
        detach_precision: false,
    }
}

#[test]
fn saved_model_reloads_to_identical_outputs_and_damage_is_named() {
    let scratch = tempfile::Builder::new().prefix("recur-model-file-").tempdir().unwrap();
    let dir = scratch.path();
    let mut model = SequenceModel::<f32>::new(config(), 3).unwrap();
    let path = dir.join("m.safetensors");
    model.save(&path, HashMap::new()).unwrap();
    let loaded = SequenceModel::load(&path).unwrap();
    assert_eq!(loaded, model);
    let counted: usize = model.named_mut().iter().map(|(_, t)| t.len()).sum();
    assert_eq!(model.num_parameters(), counted);
    let x: Vec<f32> = (0..4 * 2 * 3).map(|i| (i as f32 * 0.3).sin()).collect();
    let input = SequenceBatch { x: &x, steps: 4, batch: 2, lengths: None };
    assert_eq!(loaded.forward(&input).unwrap(), model.forward(&input).unwrap());

    // the same tensors minus one, and one misshaped, with the config kept
    let mut tensors: Vec<(String, Tensor<f32>)> = model.named_mut().into_iter().map(|(n, t)| (n, t.clone())).collect();
    let meta: HashMap<String, String> =
        [("recur.model_config".to_string(), serde_json::to_string(&config()).unwrap())].into();
    let removed = tensors.remove(3).0;
    write_f32(dir.join("missing.safetensors"), &tensors, meta.clone()).unwrap();
    let err = SequenceModel::load(dir.join("missing.safetensors")).unwrap_err().to_string();
    assert!(err.contains(&format!("no tensor `{removed}`")), "{err}");
    tensors.push(("head.mean.weight2".into(), Tensor::zeros(&[1])));
    tensors.push((removed.clone(), Tensor::zeros(&[1, 1])));
    write_f32(dir.join("bad.safetensors"), &tensors, meta).unwrap();
    let err = SequenceModel::load(dir.join("bad.safetensors")).unwrap_err().to_string();
    assert!(err.contains(&format!("`{removed}` has shape [1, 1]")), "{err}");
}
