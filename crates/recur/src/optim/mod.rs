//! Optimisation: AdamW and global gradient-norm clipping, both matching PyTorch.

pub mod adamw;
pub mod clip;

pub use adamw::{AdamW, AdamWConfig, ParamSlot};
pub use clip::clip_grad_norm;
