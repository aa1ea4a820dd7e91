//! Reading and writing safetensors files: the format PyTorch state dicts travel in.
//! Files are written atomically (a temporary file in the same folder, then a rename),
//! so a crash never leaves a half-written checkpoint behind.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// A tensor as stored: dtype, shape, little-endian bytes.
#[derive(Clone, Debug)]
pub struct StoredTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

/// The tensors and string metadata of one safetensors file.
#[derive(Clone, Debug, Default)]
pub struct TensorFile {
    pub path: PathBuf,
    pub tensors: BTreeMap<String, StoredTensor>,
    pub metadata: HashMap<String, String>,
}

impl TensorFile {
    /// Reads a whole file.
    ///
    /// # Errors
    /// The file cannot be read, or is not valid safetensors.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Self::from_bytes(path, &bytes)
    }

    /// A file's `bytes` already read (`path` names it in errors).
    ///
    /// # Errors
    /// Not valid safetensors.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self> {
        let path = path.to_path_buf();
        let format = |e: safetensors::SafeTensorError| Error::Format {
            path: path.clone(),
            why: format!("not a valid safetensors file: {e}"),
        };
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(format)?;
        let st = SafeTensors::deserialize(bytes).map_err(format)?;
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                (name, StoredTensor { dtype: view.dtype(), shape: view.shape().to_vec(), bytes: view.data().to_vec() })
            })
            .collect();
        Ok(TensorFile { path, tensors, metadata: meta.metadata().clone().unwrap_or_default() })
    }

    /// A floating-point tensor as `f32` (F32 read as is, F64 rounded).
    ///
    /// # Errors
    /// No such tensor, or an integer dtype.
    pub fn f32(&self, name: &str) -> Result<Tensor<f32>> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| Error::MissingTensor { tensor: name.to_string(), expected: vec![] })?;
        let data = match t.dtype {
            Dtype::F32 => t.bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F64 => {
                t.bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32).collect()
            }
            other => {
                return Err(Error::Dtype {
                    tensor: name.to_string(),
                    dtype: format!("{other:?}"),
                    expected: "F32 or F64".into(),
                })
            }
        };
        Ok(Tensor { shape: t.shape.clone(), data })
    }

    /// An integer tensor (I64 or I32) as `i64`.
    ///
    /// # Errors
    /// No such tensor, or a non-integer dtype.
    pub fn i64(&self, name: &str) -> Result<Vec<i64>> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| Error::MissingTensor { tensor: name.to_string(), expected: vec![] })?;
        match t.dtype {
            Dtype::I64 => {
                Ok(t.bytes.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect())
            }
            Dtype::I32 => {
                Ok(t.bytes.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as i64).collect())
            }
            other => Err(Error::Dtype {
                tensor: name.to_string(),
                dtype: format!("{other:?}"),
                expected: "I64 or I32".into(),
            }),
        }
    }

    /// A metadata value parsed as JSON (`make_fixtures.py` stores every value as a JSON string).
    ///
    /// # Errors
    /// The key is missing or its value does not parse as `V`.
    pub fn meta<V: serde::de::DeserializeOwned>(&self, key: &str) -> Result<V> {
        let raw = self
            .metadata
            .get(key)
            .ok_or_else(|| Error::Format { path: self.path.clone(), why: format!("metadata has no key `{key}`") })?;
        serde_json::from_str(raw)
            .map_err(|e| Error::Format { path: self.path.clone(), why: format!("metadata `{key}` = {raw:?}: {e}") })
    }
}

/// Writes `f32` tensors (in the given order of names) with string metadata, atomically.
///
/// # Errors
/// The folder is not writable, or serialisation fails.
pub fn write_f32(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor<f32>)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect(), t.shape.clone()))
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(n, b, shape)| TensorView::new(Dtype::F32, shape.clone(), b).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Format { path: path.to_path_buf(), why: e.to_string() })?;
    let buffer = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Format { path: path.to_path_buf(), why: e.to_string() })?;
    write_atomically(path, &with_sorted_header(buffer))
}

/// `buffer` (a serialised safetensors file) with its JSON header's keys in sorted order.
/// The safetensors crate writes the metadata from a `HashMap`, in an order that changes
/// from process to process, so the same tensors and metadata made files whose headers
/// differed in their bytes. Re-written sorted — the same keys and values, so the same
/// length and the same data offsets — a file is a function of what it holds, and two
/// runs that reach the same weights write the same bytes. Left as it is should the
/// header not read back (it always does: the crate has just written it).
fn with_sorted_header(mut buffer: Vec<u8>) -> Vec<u8> {
    let Some(Ok(prefix)) = buffer.get(..8).map(<[u8; 8]>::try_from) else { return buffer };
    let end = 8usize.saturating_add(u64::from_le_bytes(prefix) as usize);
    let Some(header) = buffer.get(8..end) else { return buffer };
    // serde_json's maps are ordered by key (no `preserve_order` feature here)
    let sorted = serde_json::from_slice::<serde_json::Value>(header).and_then(|v| serde_json::to_vec(&v));
    match sorted {
        Ok(sorted) if 8 + sorted.len() <= end => {
            buffer[8..8 + sorted.len()].copy_from_slice(&sorted);
            buffer[8 + sorted.len()..end].fill(b' ');
        }
        _ => {}
    }
    buffer
}

/// A hidden name in `path`'s folder for a file renamed onto `path` once whole (the same
/// file system, so the rename is atomic), this process's own.
pub(crate) fn temporary_beside(path: &Path) -> std::path::PathBuf {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dir.join(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename,
/// so readers see either the old file or the complete new one.
///
/// # Errors
/// The folder is not writable.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let tmp = temporary_beside(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two writes of the same tensors and metadata, each through a `HashMap` of its own
    /// (whose iteration order differs from map to map), give the same bytes, which read
    /// back as written.
    #[test]
    fn the_same_contents_write_the_same_bytes() {
        let scratch = tempfile::Builder::new().prefix("recur-sorted-header-").tempdir().unwrap();
        let dir = scratch.path();
        let tensors = vec![
            ("b.weight".to_string(), Tensor { shape: vec![2, 3], data: vec![1.0, -2.0, 3.5, 0.0, 7.0, -0.25] }),
            ("a.bias".to_string(), Tensor { shape: vec![3], data: vec![0.5, 1.5, 2.5] }),
        ];
        let metadata = || -> HashMap<String, String> {
            (0..16).map(|k| (format!("recur.key_{k}"), format!("{{\"value\":{k},\"text\":\"ü{k}\"}}"))).collect()
        };
        let (first, second) = (dir.join("first.safetensors"), dir.join("second.safetensors"));
        write_f32(&first, &tensors, metadata()).unwrap();
        write_f32(&second, &tensors, metadata()).unwrap();
        assert_eq!(std::fs::read(&first).unwrap(), std::fs::read(&second).unwrap());
        let back = TensorFile::read(&first).unwrap();
        assert_eq!(back.metadata, metadata());
        assert_eq!(back.f32("b.weight").unwrap(), tensors[0].1);
    }
}
