//! The deck's tasks, built on the models, losses and the trainer.

pub mod adding;
pub mod anomaly;
pub mod calibration;
pub mod live;
pub mod metrics;
pub mod prediction;
pub mod reconstruction;

pub use calibration::BandCalibration;
pub use live::{LiveAnswer, LiveState, LiveStream};
pub use metrics::{ErrorAccumulator, Metrics};
pub use prediction::{
    horizon_method, train_prediction, ErrorsByTime, Forecast, HorizonScores, PredictionConfig, PredictionStream,
    PredictionTask, Targets, TimeGroup, Uncertainty,
};
pub use reconstruction::{
    train_reconstruction, MissingnessDiffusion, Reconstructed, ReconstructionConfig, ReconstructionStream,
    ReconstructionTask,
};

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::classic::gradients::{look_back, LookBack};
use crate::data::{Calendar, FittedScaler, PreparedSeries, Standardizer};
use crate::error::{Error, Result};
use crate::model::SequenceModel;
use crate::rnn::SequenceBatch;
use crate::train::Truncation;

/// Training on the series as long streams with truncated BPTT (k1, k2), the state carried
/// from step to step as `recur stream` carries it: each training range is cut into
/// streams of `steps` steps, the last of a range shorter (a batch holds `batch_size` of
/// them), and every k1 steps the loss of those k1 steps is backpropagated through the
/// last k2 (`[task.stream]`, prediction and reconstruction). A unidirectional or a
/// decoupled model (see [`crate::train::TruncatedStreams`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamTraining {
    /// Steps per training stream.
    pub steps: usize,
    /// Steps between updates.
    pub k1: usize,
    /// Steps each update backpropagates through (a multiple of k1).
    pub k2: usize,
}

impl Default for StreamTraining {
    fn default() -> Self {
        StreamTraining { steps: 720, k1: 24, k2: 48 }
    }
}

impl StreamTraining {
    /// The trainer's view: TBPTT(k1, k2) over streams of up to `steps` steps.
    pub fn truncation(&self) -> Truncation {
        Truncation { k1: self.k1, k2: self.k2, steps: self.steps }
    }
}

/// How far back `model` reads ([`look_back`]) over `count` stretches of `steps` steps of
/// `part` (named `part_name` in errors), each inside one of its ranges, their starts spread
/// evenly over every place one fits (all of them where fewer fit), each read as `inputs`
/// writes the stretches (`[T, B, D]`, as the task's model reads them); probes from `seed`.
///
/// # Errors
/// A part with no range of `steps` steps, or a model that reads the future.
fn look_back_over(
    series: &PreparedSeries,
    model: &SequenceModel<f32>,
    (part_name, part): (&str, &[Range<usize>]),
    (steps, count, seed): (usize, usize, u64),
    inputs: impl FnOnce(&[Range<usize>]) -> Vec<f32>,
) -> Result<LookBack> {
    let fits = series.window_starts(part, steps, 1, part_name)?;
    let count = count.clamp(1, fits.len());
    let spread = |i: usize| if count == 1 { 0 } else { i * (fits.len() - 1) / (count - 1) };
    let stretches: Vec<Range<usize>> = (0..count).map(|i| fits[spread(i)]..fits[spread(i)] + steps).collect();
    let x = inputs(&stretches);
    look_back(model, &SequenceBatch { x: &x, steps, batch: count, lengths: None }, seed)
}

/// Training streams: each range cut into consecutive pieces of at most `steps` steps (the
/// last piece of a range shorter), empty ranges left out.
fn cut_into_streams(ranges: impl Iterator<Item = Range<usize>>, steps: usize) -> Vec<Range<usize>> {
    ranges.flat_map(|r| (r.start..r.end).step_by(steps.max(1)).map(move |s| s..(s + steps).min(r.end))).collect()
}

/// Whether a task's model config reads the calendar inputs its data has.
///
/// # Errors
/// `inputs` other than the data's calendar inputs (a config built without them).
fn check_calendar_inputs(series: &PreparedSeries, inputs: usize) -> Result<()> {
    if inputs != series.calendar.width() {
        return Err(Error::invalid(
            "calendar inputs",
            format!(
                "the model config reads {inputs} per step, the data has {} ({})",
                series.calendar.width(),
                series.calendar.input_names().join(", ")
            ),
        ));
    }
    Ok(())
}

/// How a model's input count mentions the calendar inputs, if it reads any.
fn calendar_clause(calendar: &Calendar) -> String {
    match calendar.is_empty() {
        true => String::new(),
        false => format!(" and {} calendar inputs ({})", calendar.width(), calendar.input_names().join(", ")),
    }
}

/// A live stream's clock, for a model that reads calendar inputs ([`Calendar`]): the time
/// of the next step fed, each step one grid bin after the one before.
#[derive(Clone, Debug)]
struct StepClock {
    calendar: Calendar,
    bin_seconds: i64,
    next: Option<i64>,
}

impl StepClock {
    fn of(fitted: &FittedScaler) -> Self {
        StepClock { calendar: fitted.calendar.clone(), bin_seconds: fitted.bin_seconds, next: None }
    }

    /// The inputs per step, after the signals'.
    fn width(&self) -> usize {
        self.calendar.width()
    }

    /// The next step fed is at `time` (seconds since the Unix epoch, UTC; its bin's start).
    fn at(&mut self, time: i64) {
        self.next = Some(time);
    }

    /// The calendar inputs of the next step into `out` (`[width]`), the clock
    /// moved on one step (nothing without calendar inputs).
    ///
    /// # Errors
    /// Calendar inputs and no time given.
    fn write_next(&mut self, out: &mut [f32]) -> Result<()> {
        self.write_calendar_of_next(out)?;
        if let Some(time) = self.next.filter(|_| !self.calendar.is_empty()) {
            self.next = Some(time + self.bin_seconds);
        }
        Ok(())
    }

    /// [`StepClock::write_next`] with the clock unmoved.
    ///
    /// # Errors
    /// Calendar inputs and no time given.
    fn write_calendar_of_next(&self, out: &mut [f32]) -> Result<()> {
        if self.calendar.is_empty() {
            return Ok(());
        }
        let time = self.next.ok_or_else(|| {
            Error::invalid(
                "stream",
                format!(
                    "the model reads the calendar ({}): the stream needs the time of its first step",
                    self.calendar.input_names().join(", ")
                ),
            )
        })?;
        self.calendar.write(time, out);
        Ok(())
    }

    /// The calendar inputs `steps` ≥ 0 steps after the next one into `out`, the clock
    /// unmoved (a forecast's later steps).
    fn write_ahead(&self, steps: usize, out: &mut [f32]) {
        if let Some(time) = self.next {
            self.calendar.write(time + steps as i64 * self.bin_seconds, out);
        }
    }
}

/// Whether `values` can be one live grid step of `signals` (original units, `None` where
/// missing) standardised by `scaler`.
///
/// # Errors
/// A step with the wrong number of signals, a non-finite value, or one at or below −1 of
/// a signal read as ln(1 + x) (a value training's outlier screen takes out is read as
/// missing, and passes); the signal named.
pub(crate) fn check_step(values: &[Option<f32>], signals: &[String], scaler: &Standardizer) -> Result<()> {
    let c = signals.len();
    if values.len() != c {
        return Err(Error::Shape { tensor: "step values".into(), expected: vec![c], got: vec![values.len()] });
    }
    for (j, v) in values.iter().enumerate() {
        match v {
            Some(v) if !v.is_finite() => {
                return Err(Error::invalid(format!("signal `{}`", signals[j]), format!("{v} is not finite")));
            }
            Some(v) if !scaler.screens_out(j, *v) && !scaler.accepts(j, *v) => {
                return Err(Error::invalid(
                    format!("signal `{}`", signals[j]),
                    format!("{v}: the model reads ln(1 + x) of it (data.log1p), which needs values above -1"),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// One live grid step as a stream's input: `values` (original units, `None` where
/// missing) written as `[z ⊙ m, m]` into `x: [2C]`; returns each signal's standardised
/// value where observed.
///
/// # Errors
/// As [`check_step`].
fn encode_step(
    values: &[Option<f32>],
    signals: &[String],
    scaler: &Standardizer,
    x: &mut [f32],
) -> Result<Vec<Option<f32>>> {
    check_step(values, signals, scaler)?;
    let c = signals.len();
    let mut z = Vec::with_capacity(c);
    for (j, v) in values.iter().enumerate() {
        // a value training's outlier screen took out is missing here too
        let zj = v.filter(|&v| !scaler.screens_out(j, v)).map(|v| scaler.apply(j, v));
        (x[j], x[c + j]) = zj.map_or((0.0, 0.0), |z| (z, 1.0));
        z.push(zj);
    }
    Ok(z)
}
