//! The parameters of one direction of one layer, and their PyTorch names.

use recur_kernels::{CellGrads, CellWeights, NormWeights, Real};

use super::config::{CellKind, RnnConfig};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// One direction of one layer. Field names are PyTorch's without the `_l{k}` suffix.
#[derive(Clone, Debug, PartialEq)]
pub struct CellParams<T> {
    /// `[G, D_k]`; Jordan: W_xh `[H, D_k]`.
    pub weight_ih: Tensor<T>,
    /// `[G, H]`; Jordan: W_ch `[H, O]` (context → hidden).
    pub weight_hh: Tensor<T>,
    /// `[G]`
    pub bias_ih: Tensor<T>,
    /// `[G]` (Jordan: empty; b_h is `bias_ih`).
    pub bias_hh: Tensor<T>,
    /// Layer norm gains `[K·H]` (empty without layer norm).
    pub gate_norm_weight: Tensor<T>,
    /// LSTM `LN(c_t)`: `[2, H]`, row 0 the gain γ_c, row 1 the shift β_c (empty otherwise).
    pub cell_norm: Tensor<T>,
    /// Jordan output layer W_hy `[O, H]` and b_y `[O]` (empty otherwise).
    pub weight_hy: Tensor<T>,
    pub bias_hy: Tensor<T>,
    /// Learned initial state `[H]` (and cell state), broadcast over the batch.
    pub initial_h: Tensor<T>,
    pub initial_c: Tensor<T>,
}

/// Field names in a fixed order (the state dict's order within a layer-direction).
pub const FIELDS: [&str; 10] = [
    "weight_ih",
    "weight_hh",
    "bias_ih",
    "bias_hh",
    "gate_norm_weight",
    "cell_norm",
    "weight_hy",
    "bias_hy",
    "initial_h",
    "initial_c",
];

impl<T: Real> CellParams<T> {
    /// PyTorch's initialisation: every weight and bias U(−1/√H, 1/√H); norm gains 1, shifts 0.
    pub fn init(config: &RnnConfig, layer_input: usize, rng: &mut Rng) -> Self {
        let h = config.hidden_size;
        let g = config.cell.gates() * h;
        let bound = 1.0 / (h as f64).sqrt();
        let mut uniform = |shape: &[usize]| {
            let mut t = Tensor::zeros(shape);
            t.data.iter_mut().for_each(|v| *v = T::from_f64(rng.uniform_in(-bound, bound)));
            t
        };
        let jordan = config.cell == CellKind::Jordan;
        let empty = || Tensor::zeros(&[0]);
        CellParams {
            weight_ih: uniform(&[g, layer_input]),
            weight_hh: uniform(&[g, h]),
            bias_ih: uniform(&[g]),
            bias_hh: if jordan { empty() } else { uniform(&[g]) },
            gate_norm_weight: if config.layer_norm {
                Tensor::filled(&[config.cell.norm_gate_chunks() * h], T::ONE)
            } else {
                empty()
            },
            cell_norm: if config.layer_norm && config.cell.has_cell_state() {
                let mut t = Tensor::zeros(&[2, h]);
                t.data[..h].iter_mut().for_each(|v| *v = T::ONE);
                t
            } else {
                empty()
            },
            weight_hy: if jordan { uniform(&[h, h]) } else { empty() },
            bias_hy: if jordan { uniform(&[h]) } else { empty() },
            initial_h: if config.learn_initial_state { Tensor::zeros(&[h]) } else { empty() },
            initial_c: if config.learn_initial_state && config.cell.has_cell_state() {
                Tensor::zeros(&[h])
            } else {
                empty()
            },
        }
    }

    pub fn zeros_like(&self) -> Self {
        let mut z = self.clone();
        z.for_each_mut(|_, t| t.data.iter_mut().for_each(|v| *v = T::ZERO));
        z
    }

    /// Every present (non-empty) tensor with its field name, in [`FIELDS`] order.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, &Tensor<T>)> {
        FIELDS.into_iter().zip(self.tensors()).filter(|(_, t)| !t.is_empty())
    }

    /// [`CellParams::named`], mutably.
    pub fn named_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut Tensor<T>)> {
        FIELDS.into_iter().zip(self.tensors_mut()).filter(|(_, t)| !t.is_empty())
    }

    pub fn for_each(&self, mut f: impl FnMut(&'static str, &Tensor<T>)) {
        self.named().for_each(|(n, t)| f(n, t));
    }

    pub fn for_each_mut(&mut self, mut f: impl FnMut(&'static str, &mut Tensor<T>)) {
        self.named_mut().for_each(|(n, t)| f(n, t));
    }

    /// Whether weight decay applies to a field: matrices yes; biases, norm gains and
    /// initial states no.
    pub fn decays(field: &str) -> bool {
        field.starts_with("weight_") && !field.contains("norm")
    }

    fn tensors(&self) -> [&Tensor<T>; 10] {
        [
            &self.weight_ih,
            &self.weight_hh,
            &self.bias_ih,
            &self.bias_hh,
            &self.gate_norm_weight,
            &self.cell_norm,
            &self.weight_hy,
            &self.bias_hy,
            &self.initial_h,
            &self.initial_c,
        ]
    }

    fn tensors_mut(&mut self) -> [&mut Tensor<T>; 10] {
        [
            &mut self.weight_ih,
            &mut self.weight_hh,
            &mut self.bias_ih,
            &mut self.bias_hh,
            &mut self.gate_norm_weight,
            &mut self.cell_norm,
            &mut self.weight_hy,
            &mut self.bias_hy,
            &mut self.initial_h,
            &mut self.initial_c,
        ]
    }

    /// The kernels' view of the gated-cell weights.
    pub fn cell_weights(&self) -> CellWeights<'_, T> {
        CellWeights {
            w_ih: &self.weight_ih.data,
            w_hh: &self.weight_hh.data,
            b_ih: &self.bias_ih.data,
            b_hh: &self.bias_hh.data,
            norm: (!self.gate_norm_weight.is_empty())
                .then(|| NormWeights { gates: &self.gate_norm_weight.data, cell: &self.cell_norm.data }),
        }
    }

    /// The kernels' view of this set as gradient buffers.
    pub fn cell_grads(&mut self) -> CellGrads<'_, T> {
        CellGrads {
            w_ih: &mut self.weight_ih.data,
            w_hh: &mut self.weight_hh.data,
            b_ih: &mut self.bias_ih.data,
            b_hh: &mut self.bias_hh.data,
            norm_gates: &mut self.gate_norm_weight.data,
            norm_cell: &mut self.cell_norm.data,
        }
    }
}
