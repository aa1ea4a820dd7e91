//! The deck's tasks, built on the models, losses and the trainer.

pub mod adding;
pub mod metrics;
pub mod prediction;
pub mod reconstruction;

pub use metrics::{ErrorAccumulator, Metrics};
pub use prediction::{
    prediction_baselines, train_prediction, PredictionConfig, PredictionStream, PredictionTask, StreamTraining,
};
pub use reconstruction::{train_reconstruction, MissingnessDiffusion, ReconstructionConfig, ReconstructionTask};
