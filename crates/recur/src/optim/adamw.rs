//! AdamW (Loshchilov & Hutter 2019): Adam with weight decay decoupled from the gradient,
//! exactly as PyTorch's `torch.optim.AdamW` computes it:
//!
//! θ ← θ − lr·λ·θ
//! m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²
//! θ ← θ − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)

use recur_kernels::vectorized;
use serde::{Deserialize, Serialize};

/// AdamW hyper-parameters (PyTorch's defaults except weight decay, which is 0.01 there too).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }
    }
}

/// Values from which [`AdamW::step_on`] splits a slot between two threads.
pub const PARALLEL_SLOT: usize = 1 << 16;

/// One parameter tensor as the optimizer sees it.
pub struct ParamSlot<'a> {
    pub value: &'a mut [f32],
    pub grad: &'a [f32],
    /// Whether weight decay applies (off for biases and norm gains by default).
    pub decay: bool,
}

/// AdamW state: first and second moments per slot, and the step count.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdamW {
    pub config: AdamWConfig,
    pub step: u64,
    pub m: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
}

impl AdamW {
    pub fn new(config: AdamWConfig) -> Self {
        AdamW { config, step: 0, m: Vec::new(), v: Vec::new() }
    }

    /// One update of every slot with learning rate `lr` (the scheduler's value).
    /// Slots must come in the same order and sizes at every call.
    ///
    /// # Panics
    /// If the slots' sizes change between calls, or a gradient's size differs from its
    /// parameter's.
    pub fn step(&mut self, lr: f64, slots: &mut [ParamSlot<'_>]) {
        self.step_on(lr, slots, 1);
    }

    /// [`AdamW::step`], each slot of at least [`PARALLEL_SLOT`] values split in halves
    /// updated side by side on rayon's pool when `threads ≥ 2`. Every value's update is its
    /// own, so the result is the same bits on any number of threads. (HARNN's embedding, 1.07
    /// of its 1.40 M parameters, made the update ~8 % of a text training epoch on the one
    /// thread that waits for both shards.)
    ///
    /// # Panics
    /// As [`AdamW::step`].
    pub fn step_on(&mut self, lr: f64, slots: &mut [ParamSlot<'_>], threads: usize) {
        if self.m.is_empty() {
            self.m = slots.iter().map(|s| vec![0.0; s.value.len()]).collect();
            self.v = self.m.clone();
        }
        assert_eq!(self.m.len(), slots.len(), "optimizer slots changed between steps");
        self.step += 1;
        let AdamWConfig { beta1, beta2, eps, weight_decay, .. } = self.config;
        let bc1 = 1.0 - beta1.powi(self.step as i32);
        let bc2_sqrt = (1.0 - beta2.powi(self.step as i32)).sqrt();
        let step_size = lr / bc1;
        for ((slot, m), v) in slots.iter_mut().zip(&mut self.m).zip(&mut self.v) {
            assert_eq!(m.len(), slot.value.len(), "optimizer slot changed size");
            assert_eq!(slot.grad.len(), slot.value.len(), "gradient and parameter sizes differ");
            let decay = if slot.decay { 1.0 - lr * weight_decay } else { 1.0 };
            // zipped (no bounds checks) and at the CPU's vector width, the same f64 operations:
            // indexed, with a scalar √ and two ÷ per value, it took 6.3 % of an S1 LSTM training
            // step's samples, 0.8 % now (`perf record` of the profiling build of
            // `model_step_loop 1 bare lstm uni`)
            let update = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
                vectorized(
                    #[inline(always)]
                    || {
                        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                            let g = g as f64;
                            let mi = beta1 * *m as f64 + (1.0 - beta1) * g;
                            let vi = beta2 * *v as f64 + (1.0 - beta2) * g * g;
                            *m = mi as f32;
                            *v = vi as f32;
                            let decayed = *p as f64 * decay;
                            *p = (decayed - step_size * mi / (vi.sqrt() / bc2_sqrt + eps)) as f32;
                        }
                    },
                )
            };
            let n = slot.value.len();
            if threads >= 2 && n >= PARALLEL_SLOT {
                let (p, p_rest) = slot.value.split_at_mut(n / 2);
                let (g, g_rest) = slot.grad.split_at(n / 2);
                let (m, m_rest) = m.split_at_mut(n / 2);
                let (v, v_rest) = v.split_at_mut(n / 2);
                rayon::join(|| update(p, g, m, v), || update(p_rest, g_rest, m_rest, v_rest));
            } else {
                update(slot.value, slot.grad, m, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot large enough to be split (of odd length) and a small one, three steps on one
    /// thread and on two: the same bits.
    #[test]
    fn two_threads_update_to_the_same_bits_as_one() {
        let n = PARALLEL_SLOT + 3;
        let start: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
        let grad: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.11).cos() * 1e-2).collect();
        let run = |threads: usize| {
            let (mut big, mut small) = (start.clone(), start[..5].to_vec());
            let mut opt = AdamW::new(AdamWConfig::default());
            for _ in 0..3 {
                opt.step_on(
                    1e-2,
                    &mut [
                        ParamSlot { value: &mut big, grad: &grad, decay: true },
                        ParamSlot { value: &mut small, grad: &grad[..5], decay: false },
                    ],
                    threads,
                );
            }
            (big, small, opt)
        };
        let (one, two) = (run(1), run(2));
        assert!(one.0.iter().zip(&two.0).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert_eq!(one.1, two.1);
        assert_eq!(one.2, two.2);
        assert_ne!(one.0, start, "the parameters moved");
    }
}
