//! `recur`: recurrent neural networks for time series and text.
//!
//! The layers run on [`recur_kernels`], fused CPU kernels with hand-derived backward
//! through time; this crate validates every input (shapes, lengths, finiteness) before
//! they reach a kernel, so its public functions return [`Error`]s instead of panicking.
//! Weights use PyTorch's names and layout (`weight_ih_l0`, `bias_hh_l1_reverse`; LSTM
//! gates i,f,g,o, GRU r,z,n) so that a `state_dict` saved as safetensors moves both ways.

pub mod error;
pub mod heads;
pub mod io;
pub mod optim;
pub mod rng;
pub mod rnn;
pub mod tensor;

pub use error::{Error, Result};
pub use recur_kernels as kernels;
pub use rng::Rng;
pub use tensor::Tensor;
