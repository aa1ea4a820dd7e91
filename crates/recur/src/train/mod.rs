//! Training machinery shared by the tasks: schedules, parameter slots, progress.

pub mod schedule;

pub use schedule::WarmupCosine;

use crate::heads::Linear;
use crate::model::SequenceModel;
use crate::optim::ParamSlot;
use crate::rnn::{CellParams, Rnn};

/// The optimizer's view of an encoder and a linear head with their gradients, in a fixed
/// order. Weight decay applies to matrices only.
pub fn encoder_and_head_slots<'a>(
    encoder: &'a mut Rnn<f32>,
    head: &'a mut Linear<f32>,
    encoder_grads: &'a [CellParams<f32>],
    head_grads: &'a Linear<f32>,
) -> Vec<ParamSlot<'a>> {
    let mut out = Vec::new();
    for (cell, g) in encoder.cells_mut().iter_mut().zip(encoder_grads) {
        for ((name, t), (_, gt)) in cell.named_mut().zip(g.named()) {
            out.push(ParamSlot { value: &mut t.data, grad: &gt.data, decay: CellParams::<f32>::decays(name) });
        }
    }
    out.push(ParamSlot { value: &mut head.weight.data, grad: &head_grads.weight.data, decay: true });
    out.push(ParamSlot { value: &mut head.bias.data, grad: &head_grads.bias.data, decay: false });
    out
}

/// The optimizer's view of a whole model and its gradients (a zeroed clone of the model
/// holding them). Weight decay applies to matrices (`weight…` names), not to biases, norm
/// gains or initial states.
pub fn model_slots<'a>(model: &'a mut SequenceModel<f32>, grads: &'a mut SequenceModel<f32>) -> Vec<ParamSlot<'a>> {
    model
        .named_mut()
        .into_iter()
        .zip(grads.named_mut())
        .map(|((name, t), (_, g))| {
            let field = name.rsplit('.').next().unwrap_or("");
            ParamSlot { value: &mut t.data, grad: &g.data, decay: field.starts_with("weight") }
        })
        .collect()
}

/// Every gradient tensor of a model, for clipping.
pub fn model_gradients(grads: &mut SequenceModel<f32>) -> Vec<&mut [f32]> {
    grads.named_mut().into_iter().map(|(_, t)| &mut t.data[..]).collect()
}

/// A progress bar with ETA on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(what.to_string());
    bar
}
