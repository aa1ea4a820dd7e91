//! The JSON files a run folder keeps beside its model (`scaler.json`, `calibration.json`):
//! read if present, written atomically.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::write_atomically;
use crate::error::{Error, Result};

/// The value in the JSON file at `path`, `None` if there is no such file.
///
/// # Errors
/// A file that cannot be read or parsed, named.
pub fn read_json_if_present<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    let bad = |why: String| Error::Format { path: path.to_path_buf(), why };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    serde_json::from_str(&text).map(Some).map_err(|e| bad(e.to_string()))
}

/// `value` as pretty JSON at `path`, written atomically; `what` names it in an error.
///
/// # Errors
/// The value cannot be serialised, or the file cannot be written.
pub fn write_json_atomically<T: Serialize>(path: &Path, value: &T, what: &str) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::invalid(what, e.to_string()))?;
    write_atomically(path, text.as_bytes())
}
