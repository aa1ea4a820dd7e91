//! Training machinery shared by the tasks: schedules, parameter slots, progress,
//! truncated BPTT over long streams.

pub mod checkpoint;
pub mod schedule;
pub mod trainer;
pub mod truncated;

pub use schedule::{PlateauState, Schedule, ScheduleKind};
pub use trainer::{train, EpochLog, Task, TrainConfig, TrainReport};
pub use truncated::{TruncatedStreams, Truncation, WindowOutputs};

use crate::model::SequenceModel;
use crate::optim::ParamSlot;

/// The optimizer's view of a whole model and its gradients (a zeroed clone of the model
/// holding them). Weight decay applies to matrices (`weight…` names), not to biases, norm
/// gains (`gate_norm_weight`, `cell_norm`) or initial states.
pub fn model_slots<'a>(model: &'a mut SequenceModel<f32>, grads: &'a mut SequenceModel<f32>) -> Vec<ParamSlot<'a>> {
    model_slots_with(model, grads, false, |_| true)
}

/// [`model_slots`] of the parameters whose names `trains` accepts, with weight decay on
/// every parameter when `decay_all`.
pub fn model_slots_with<'a>(
    model: &'a mut SequenceModel<f32>,
    grads: &'a mut SequenceModel<f32>,
    decay_all: bool,
    trains: impl Fn(&str) -> bool,
) -> Vec<ParamSlot<'a>> {
    model
        .named_mut()
        .into_iter()
        .zip(grads.named_mut())
        .filter(|((name, _), _)| trains(name))
        .map(|((name, t), (_, g))| {
            let field = name.rsplit('.').next().unwrap_or("");
            let matrix = field.starts_with("weight") && !field.contains("norm");
            ParamSlot { value: &mut t.data, grad: &g.data, decay: decay_all || matrix }
        })
        .collect()
}

/// Every gradient tensor of a model, for clipping.
pub fn model_gradients(grads: &mut SequenceModel<f32>) -> Vec<&mut [f32]> {
    grads.named_mut().into_iter().map(|(_, t)| &mut t.data[..]).collect()
}

/// Records as JSON lines (an epoch log: `epochs.jsonl`).
pub fn json_lines<S: serde::Serialize>(records: &[S]) -> String {
    records.iter().map(|r| serde_json::to_string(r).unwrap_or_default() + "\n").collect()
}

/// Where a thread's progress bars go.
#[derive(Clone, Default)]
pub enum Progress {
    /// Each bar on its own on stderr (drawn only when stderr is a terminal).
    #[default]
    Terminal,
    /// No bar (experiment workers report one line per run instead).
    Hidden,
    /// Bars of runs trained side by side, one line each under `group`, named by `label`.
    Shared { group: indicatif::MultiProgress, label: String },
}

thread_local! {
    static PROGRESS: std::cell::RefCell<Progress> = const { std::cell::RefCell::new(Progress::Terminal) };
}

/// Sends this thread's progress bars where `progress` says ([`train`] carries the setting
/// onto the pool thread its loop runs on).
pub fn set_progress(progress: Progress) {
    PROGRESS.with(|p| *p.borrow_mut() = progress);
}

/// Where this thread's progress bars go.
pub fn progress() -> Progress {
    PROGRESS.with(|p| p.borrow().clone())
}

/// A progress bar with ETA for `total` steps of `what`, where [`set_progress`] sent this
/// thread's bars.
pub fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let (bar, prefix) = match progress() {
        Progress::Hidden => return indicatif::ProgressBar::hidden(),
        Progress::Terminal => (indicatif::ProgressBar::new(total), what.to_string()),
        Progress::Shared { group, label } => (group.add(indicatif::ProgressBar::new(total)), label),
    };
    let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(prefix);
    bar
}
