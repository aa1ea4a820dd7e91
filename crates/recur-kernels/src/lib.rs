//! Fused recurrent cells with hand-derived backward through time.
//!
//! Why no deep-learning framework: measured on a 2-core AVX2 machine, a fused design
//! (the input projection of every step in one product, one recurrent product per step,
//! all pointwise gate math in one vectorised pass, every weight gradient in one large
//! product after the time loop) ran a training step 1.7–4.8× faster than PyTorch on CPU,
//! while general frameworks were slower than PyTorch and took minutes to build. So each
//! cell here is a forward that keeps exactly what its backward needs, the backward that
//! inverts it line by line, and a single-step call for streaming — side by side in one
//! file per cell, generic over [`Real`] so that gradient checks can run in `f64`.
//!
//! Legend used in every doc comment: `T` steps, `B` batch rows, `D` input width, `H`
//! hidden width, `G` gate width (4H LSTM, 3H GRU, H Elman), `O` Jordan output width.
//! Buffers are time-major and row-major: `x: [T,B,D]` is `x[(t·B + b)·D + d]`.
//! Weights use PyTorch's layout (`w_ih: [G,D]`, gate blocks i,f,g,o / r,z,n).
//!
//! Contracts: forward with a cache keeps what backward needs and nothing else; inference
//! (no cache) keeps nothing. Backward *accumulates* (`+=`) into every gradient buffer;
//! zeroing is the caller's job. Functions panic on inconsistent shapes: they are the
//! inner layer, and the `recur` library validates every input before calling them.
//!
//! One process-wide side effect: the first product raises the `gemm` crate's
//! single-thread threshold for packing a left operand (see `matmul`), which changes the
//! speed, never the results, of other `gemm` calls in the same process.

// Index loops over `0..H` are how the fused pointwise math is written (several buffers
// read at the same index); the compiler vectorises them.
#![allow(clippy::needless_range_loop)]

pub mod cell;
pub mod elman;
pub mod gru_reset_after;
pub mod gru_reset_before;
pub mod jordan;
pub mod layer_norm;
pub mod lstm;
pub mod matmul;
pub mod real;
pub mod sequence;
mod simd;

pub use cell::{CellGrads, CellWeights, GatedCell, NormWeights, SequenceOptions};
pub use elman::{Activation, Elman};
pub use gru_reset_after::GruResetAfter;
pub use gru_reset_before::GruResetBefore;
pub use jordan::{Jordan, OutputActivation};
pub use lstm::Lstm;
pub use matmul::Threads;
pub use real::{lane_dot, sigmoid_in_place, softplus_in_place, tanh_in_place, Real};
pub use sequence::{Dims, SequenceGradIn, SequenceGradOut, SequenceOutput};
pub use simd::vectorized;
