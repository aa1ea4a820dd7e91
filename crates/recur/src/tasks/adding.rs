//! The adding problem (Hochreiter & Schmidhuber 1997), the long-range-dependency test
//! of the literature: each step carries a value u_t ~ U(0, 1) and a marker; exactly two
//! steps are marked, one in the first tenth of the sequence and one in its second half,
//! and the target at the last step is the sum of the two marked values. Predicting the
//! mean (1.0) scores MSE = Var(u₁ + u₂) = 1/6; solving it needs a memory spanning
//! about T/2 to T steps. (Synthetic by construction: it is a property test of the cells.)

use serde::Serialize;

use crate::error::Result;
use crate::losses::masked_mse;
use crate::model::{Coupling, FusionKind, HeadKind, ModelConfig, SequenceModel};
use crate::optim::{clip_grad_norm, AdamW, AdamWConfig};
use crate::rng::Rng;
use crate::rnn::{CellKind, InputGradient, RnnConfig, SequenceBatch};
use crate::train::{model_gradients, model_slots};

/// A batch: `x: [T, B, 2]` (value, marker), `target: [B]`.
pub fn adding_batch(steps: usize, batch: usize, rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
    let mut x = vec![0.0f32; steps * batch * 2];
    let mut target = vec![0.0f32; batch];
    for b in 0..batch {
        for t in 0..steps {
            x[(t * batch + b) * 2] = rng.uniform() as f32;
        }
        let first = rng.below((steps / 10).max(1));
        let second = steps / 2 + rng.below(steps - steps / 2);
        for i in [first, second] {
            x[(i * batch + b) * 2 + 1] = 1.0;
            target[b] += x[(i * batch + b) * 2];
        }
    }
    (x, target)
}

/// Result of training one cell on the adding problem.
#[derive(Clone, Debug, Serialize)]
pub struct AddingResult {
    pub cell: CellKind,
    pub steps: usize,
    /// MSE on fresh held-out sequences after training (1/6 ≈ 0.167 = predicting the mean).
    pub test_mse: f64,
    /// The trained model.
    #[serde(skip)]
    pub model: SequenceModel<f32>,
}

/// Trains a one-layer model with a linear head on the last step (AdamW, clipping).
///
/// # Errors
/// An invalid configuration.
pub fn train_adding(cell: CellKind, steps: usize, hidden: usize, iterations: usize, seed: u64) -> Result<AddingResult> {
    let config = ModelConfig {
        encoder: RnnConfig { cell, input_size: 2, hidden_size: hidden, ..RnnConfig::default() },
        coupling: Coupling::Coupled,
        twin_weight: 0.0,
        fusion: FusionKind::Concat,
        head: HeadKind::Linear,
        outputs: 1,
        precisions: 1,
        detach_precision: false,
    };
    let mut model = SequenceModel::<f32>::new(config, seed)?;
    let mut rng = Rng::new(seed ^ 0xadd);
    let mut opt = AdamW::new(AdamWConfig { lr: 1e-2, weight_decay: 0.0, ..AdamWConfig::default() });
    let batch = 64;
    // only the last step is scored
    let mask: Vec<f32> = (0..steps * batch).map(|n| if n / batch == steps - 1 { 1.0 } else { 0.0 }).collect();
    for _ in 0..iterations {
        let (x, target) = adding_batch(steps, batch, &mut rng);
        let mut full_target = vec![0.0f32; steps * batch];
        full_target[(steps - 1) * batch..].copy_from_slice(&target);
        let input = SequenceBatch { x: &x, steps, batch, lengths: None };
        let (out, mut cache) = model.forward_train(&input, rng.next_u64())?;
        let (_, d_mean) = masked_mse(&out.student.mean, &full_target, &mask);
        let mut grads = model.zeros_like();
        model.backward_with(&mut cache, (&d_mean, &[]), None, &mut grads, InputGradient::Skip)?;
        clip_grad_norm(&mut model_gradients(&mut grads), 1.0);
        opt.step(opt.config.lr, &mut model_slots(&mut model, &mut grads));
    }
    let mut eval_rng = Rng::new(seed ^ 0x7e57);
    let mut sq = 0.0;
    let rounds = 8;
    for _ in 0..rounds {
        let (x, target) = adding_batch(steps, batch, &mut eval_rng);
        let out = model.forward(&SequenceBatch { x: &x, steps, batch, lengths: None })?;
        sq += out.mean[(steps - 1) * batch..].iter().zip(&target).map(|(p, t)| ((p - t) as f64).powi(2)).sum::<f64>();
    }
    Ok(AddingResult { cell, steps, test_mse: sq / (rounds * batch) as f64, model })
}
