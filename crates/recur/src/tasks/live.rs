//! A causal run live, whichever its task: [`LiveStream`] steps a prediction stream or a
//! reconstruction stream alike, one grid step at a time, and answers each step with a
//! [`LiveAnswer`] — what `recur stream` serves, and what a
//! [`Watch`](crate::tasks::anomaly::Watch) scores arriving values against.

use serde::{Deserialize, Serialize};

use crate::data::Standardizer;
use crate::error::Result;
use crate::model::ModelState;
use crate::rng::Rng;

use super::{Forecast, PredictionStream, Reconstructed, ReconstructionStream};

/// The stream of a prediction run or of a causal reconstruction run.
#[derive(Clone)]
pub enum LiveStream<'m> {
    Prediction(Box<PredictionStream<'m>>),
    Reconstruction(Box<ReconstructionStream<'m>>),
}

/// What a live stream carries from step to step — the model's states and what its task
/// keeps beside them — to go on later where it left off: a service restarted, a feed read
/// in batches ([`LiveStream::state`], [`LiveStream::restore`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    pub model: ModelState<f32>,
    /// The steps fed.
    pub steps: usize,
    /// A prediction stream: each signal's last observation (standardised) and its step.
    #[serde(default)]
    pub last: Vec<Option<(f32, usize)>>,
    /// The time of the next step (seconds since the Unix epoch, UTC), where known.
    pub next_time: Option<i64>,
}

/// A step's answer: the forecasts of the steps ahead, or every signal of this step as
/// observed or filled, with its band.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveAnswer {
    Forecast(Forecast),
    Filled(Vec<Reconstructed>),
}

impl LiveStream<'_> {
    /// The signals, in the order [`LiveStream::step`] takes them.
    pub fn signals(&self) -> &[String] {
        match self {
            LiveStream::Prediction(s) => s.signals(),
            LiveStream::Reconstruction(s) => s.signals(),
        }
    }

    /// The signals it answers for: a prediction's targets (every signal, or the run's
    /// `task.targets`), a reconstruction's every signal.
    pub fn targets(&self) -> &[String] {
        match self {
            LiveStream::Prediction(s) => s.targets(),
            LiveStream::Reconstruction(s) => s.signals(),
        }
    }

    /// The standardisation of its signals (with the outlier screen training read them through).
    pub fn scaler(&self) -> &Standardizer {
        match self {
            LiveStream::Prediction(s) => s.scaler(),
            LiveStream::Reconstruction(s) => s.scaler(),
        }
    }

    /// What it carries from step to step, to go on from later ([`LiveStream::restore`]).
    pub fn state(&self) -> LiveState {
        match self {
            LiveStream::Prediction(s) => s.state(),
            LiveStream::Reconstruction(s) => s.state(),
        }
    }

    /// Goes on from `state`: what [`LiveStream::state`] gave, of a stream of the same run.
    ///
    /// # Errors
    /// A state of another model or task (its shapes, named), a non-finite value, or
    /// observations at steps not yet fed. The stream is then as it was.
    pub fn restore(&mut self, state: &LiveState) -> Result<()> {
        match self {
            LiveStream::Prediction(s) => s.restore(state),
            LiveStream::Reconstruction(s) => s.restore(state),
        }
    }

    /// Whether the model reads calendar inputs: then each step needs its time
    /// ([`LiveStream::at`]), the first at least.
    pub fn reads_calendar(&self) -> bool {
        match self {
            LiveStream::Prediction(s) => s.reads_calendar(),
            LiveStream::Reconstruction(s) => s.reads_calendar(),
        }
    }

    /// The next step fed is at `time` (seconds since the Unix epoch, UTC: its bin's start).
    pub fn at(&mut self, time: i64) {
        match self {
            LiveStream::Prediction(s) => s.at(time),
            LiveStream::Reconstruction(s) => s.at(time),
        }
    }

    /// Feeds one grid step's `values` (every signal, original units, `None` where missing):
    /// a prediction's forecast of the next step ([`PredictionStream::step_forecast`]), a
    /// reconstruction's every signal of this one ([`ReconstructionStream::step`]).
    ///
    /// # Errors
    /// As those two.
    pub fn step(&mut self, values: &[Option<f32>]) -> Result<LiveAnswer> {
        self.step_forecasting(values, 1, 0, &mut Rng::new(0))
    }

    /// [`LiveStream::step`], a prediction's forecasts reaching `horizon` steps ahead (past
    /// the model's direct ones in closed loop), banded by `paths` sample paths drawn from
    /// `rng` where `paths` > 0 ([`PredictionStream::step_forecast_with_paths`]); a
    /// reconstruction's step reads none of them.
    ///
    /// # Errors
    /// As [`LiveStream::step`].
    pub fn step_forecasting(
        &mut self,
        values: &[Option<f32>],
        horizon: usize,
        paths: usize,
        rng: &mut Rng,
    ) -> Result<LiveAnswer> {
        Ok(match self {
            LiveStream::Prediction(s) => LiveAnswer::Forecast(s.step_forecast_with_paths(values, horizon, paths, rng)?),
            LiveStream::Reconstruction(s) => LiveAnswer::Filled(s.step(values)?),
        })
    }
}
