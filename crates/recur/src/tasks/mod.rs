//! The deck's tasks on time series, built on the encoder, heads, losses and optimizer.

pub mod adding;
pub mod metrics;
pub mod prediction;

pub use metrics::{ErrorAccumulator, Metrics};
pub use prediction::{prediction_baselines, train_prediction, PredictionConfig, PredictionModel, TrainedPrediction};
