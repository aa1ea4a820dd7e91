//! The classics the lecture opens with, measured: Hopfield's associative memory and
//! the vanishing gradient of BPTT.

pub mod compare;
pub mod gradients;
pub mod hopfield;
