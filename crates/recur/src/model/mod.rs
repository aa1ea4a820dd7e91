//! Models: encoder branches, the fusion of two directions, couplings, heads.

pub mod fusion;
pub mod head;
pub mod sequence_model;
pub mod stream;

pub use fusion::{Fusion, FusionCache, FusionKind, FusionStream};
pub use head::{Head, HeadKind, HeadOutput};
pub use sequence_model::{
    reverse_within_lengths, Continuation, Coupling, HeadSteps, ModelCache, ModelConfig, ModelOutputs, ModelSection,
    SequenceModel,
};
pub use stream::{ModelState, ModelStream};
