//! One error type for the library, with the structured facts a user needs to act:
//! which tensor, file, line or column, what was expected and what was found.

use std::path::PathBuf;

/// Everything that can go wrong in `recur`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A buffer or tensor has the wrong shape.
    #[error("tensor `{tensor}` has shape {got:?}, expected {expected:?}")]
    Shape { tensor: String, expected: Vec<usize>, got: Vec<usize> },

    /// A value that must be finite is not.
    #[error("tensor `{tensor}` holds a non-finite value ({value}) at flat index {index}")]
    NonFinite { tensor: String, index: usize, value: f64 },

    /// A state dict lacks a tensor the model needs.
    #[error("state dict has no tensor `{tensor}` (expected shape {expected:?})")]
    MissingTensor { tensor: String, expected: Vec<usize> },

    /// A state dict holds a tensor the model does not know.
    #[error("state dict has an unexpected tensor `{tensor}` (shape {shape:?}); the model has no such parameter")]
    UnexpectedTensor { tensor: String, shape: Vec<usize> },

    /// A tensor has a dtype we cannot read.
    #[error("tensor `{tensor}` has dtype {dtype}, expected {expected}")]
    Dtype { tensor: String, dtype: String, expected: String },

    /// An option or argument is out of its domain.
    #[error("invalid {what}: {why}")]
    Invalid { what: String, why: String },

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file's content is malformed.
    #[error("{path}: {why}")]
    Format { path: PathBuf, why: String },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(what: impl Into<String>, why: impl Into<String>) -> Self {
        Error::Invalid { what: what.into(), why: why.into() }
    }
}

/// Checks that `data` has `expected` elements in total, naming the tensor otherwise.
pub fn check_len<T>(tensor: &str, data: &[T], expected: &[usize]) -> Result<()> {
    let want: usize = expected.iter().product();
    if data.len() != want {
        return Err(Error::Shape { tensor: tensor.to_string(), expected: expected.to_vec(), got: vec![data.len()] });
    }
    Ok(())
}

/// Checks that every value is finite, naming the tensor and index of the first that is not.
pub fn check_finite<T: recur_kernels::Real>(tensor: &str, data: &[T]) -> Result<()> {
    match data.iter().position(|v| !v.to_f64().is_finite()) {
        None => Ok(()),
        Some(index) => Err(Error::NonFinite { tensor: tensor.to_string(), index, value: data[index].to_f64() }),
    }
}
