//! The deck's tasks, built on the models, losses and the trainer.

pub mod adding;
pub mod metrics;
pub mod prediction;
pub mod reconstruction;

pub use metrics::{ErrorAccumulator, Metrics};
pub use prediction::{
    prediction_baselines, train_prediction, PredictionConfig, PredictionStream, PredictionTask, StreamTraining,
};
pub use reconstruction::{
    train_reconstruction, MissingnessDiffusion, ReconstructionConfig, ReconstructionStream, ReconstructionTask,
};

use std::ops::Range;

use crate::data::Standardizer;
use crate::error::{Error, Result};

/// Training streams: each range cut into consecutive pieces of at most `steps` steps (the
/// last piece of a range shorter), empty ranges left out.
fn cut_into_streams(ranges: impl Iterator<Item = Range<usize>>, steps: usize) -> Vec<Range<usize>> {
    ranges.flat_map(|r| (r.start..r.end).step_by(steps.max(1)).map(move |s| s..(s + steps).min(r.end))).collect()
}

/// One live grid step as a stream's input: `values` (original units, `None` where
/// missing) written as `[z ⊙ m, m]` into `x: [2C]`; returns each signal's standardised
/// value where observed.
///
/// # Errors
/// A step with the wrong number of signals or a non-finite value (the signal named).
fn encode_step(
    values: &[Option<f32>],
    signals: &[String],
    scaler: &Standardizer,
    x: &mut [f32],
) -> Result<Vec<Option<f32>>> {
    let c = signals.len();
    if values.len() != c {
        return Err(Error::Shape { tensor: "step values".into(), expected: vec![c], got: vec![values.len()] });
    }
    values
        .iter()
        .enumerate()
        .map(|(j, v)| {
            let z = match v {
                Some(v) if !v.is_finite() => {
                    return Err(Error::invalid(format!("signal `{}`", signals[j]), format!("{v} is not finite")));
                }
                Some(v) => Some(scaler.apply(j, *v)),
                None => None,
            };
            (x[j], x[c + j]) = z.map_or((0.0, 0.0), |z| (z, 1.0));
            Ok(z)
        })
        .collect()
}
