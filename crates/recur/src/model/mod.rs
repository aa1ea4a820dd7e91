//! Models: encoder branches, the fusion of two directions, couplings, heads.

pub mod fusion;
pub mod head;
pub mod sequence_model;

pub use fusion::{Fusion, FusionCache, FusionKind};
pub use head::{Head, HeadKind, HeadOutput};
pub use sequence_model::{
    reverse_within_lengths, Coupling, HeadSteps, ModelCache, ModelConfig, ModelOutputs, ModelSection, SequenceModel,
};
