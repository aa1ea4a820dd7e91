//! Task heads on top of an encoder.

pub mod linear;

pub use linear::Linear;
