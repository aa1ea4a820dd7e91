//! Recurrent encoders: config, parameters with PyTorch names, the stacked layer.

pub mod config;
pub mod layer;
pub mod params;
pub mod stream;

pub use config::{CellKind, RnnConfig};
pub use layer::{InitialState, InputGradient, InputGrads, Rnn, RnnCache, RnnOutput, SequenceBatch};
pub use params::CellParams;
pub use stream::{CarriedState, Stream};
