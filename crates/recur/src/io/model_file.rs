//! A whole model as one safetensors file: every tensor under its name
//! (`forward.weight_ih_l0`, `head.mean.weight`, …; encoder names are PyTorch's) and the
//! model config as JSON in the metadata (`recur.model_config`), written atomically.

use std::collections::HashMap;
use std::path::Path;

use super::safetensors_io::{write_f32, TensorFile};
use crate::error::{Error, Result};
use crate::model::{ModelConfig, SequenceModel};
use crate::tensor::Tensor;

const CONFIG_KEY: &str = "recur.model_config";

impl SequenceModel<f32> {
    /// Saves parameters and config (plus `extra` metadata), atomically.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&mut self, path: impl AsRef<Path>, extra: HashMap<String, String>) -> Result<()> {
        let mut metadata = extra;
        let config = serde_json::to_string(self.config()).map_err(|e| Error::invalid("model config", e.to_string()))?;
        metadata.insert(CONFIG_KEY.into(), config);
        let tensors: Vec<_> = self.named_mut().into_iter().map(|(n, t)| (n, t.clone())).collect();
        write_f32(path, &tensors, metadata)
    }

    /// Loads a model saved by [`SequenceModel::save`]; every tensor must be present with
    /// its shape, and nothing else.
    ///
    /// # Errors
    /// An unreadable file, a missing config, or a missing, extra or misshaped tensor (named).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_file(&TensorFile::read(path.as_ref())?)
    }

    /// [`SequenceModel::load`] from a file already read.
    ///
    /// # Errors
    /// As [`SequenceModel::load`].
    pub fn from_file(file: &TensorFile) -> Result<Self> {
        let config: ModelConfig = file.meta(CONFIG_KEY)?;
        let mut model = SequenceModel::new(config, 0)?;
        fill_from_file(model.named_mut(), file)?;
        Ok(model)
    }
}

/// A model of `config` from a state dict written elsewhere — PyTorch's
/// `save_file(module.state_dict(), …)`, or `recur_torch.save` — its tensor names mapped
/// by `renames` (each `(from, to)` replaces a leading `from` with `to`; the first that
/// applies). Every parameter must be there with its shape and finite values, and nothing
/// else; a file that carries a recur config must carry `config`.
///
/// # Errors
/// An unreadable file, another model's config, two names renamed to one, or a missing,
/// extra, misshaped or non-finite tensor — named, with the file and, for a missing one,
/// the names the file holds.
pub fn import_state_dict(path: &Path, config: ModelConfig, renames: &[(String, String)]) -> Result<SequenceModel<f32>> {
    let mut file = TensorFile::read(path)?;
    let fail = |why: String| Error::Format { path: path.to_path_buf(), why };
    if file.metadata.contains_key(CONFIG_KEY) {
        let stored: ModelConfig = file.meta(CONFIG_KEY)?;
        if stored != config {
            return Err(fail(format!(
                "it holds another model: {}; the config asks for {}",
                serde_json::to_string(&stored).unwrap_or_default(),
                serde_json::to_string(&config).unwrap_or_default()
            )));
        }
    }
    let held: Vec<String> = file.tensors.keys().cloned().collect();
    let mut renamed = std::collections::BTreeMap::new();
    for (name, tensor) in std::mem::take(&mut file.tensors) {
        let new = renames
            .iter()
            .find_map(|(from, to)| name.strip_prefix(from.as_str()).map(|rest| format!("{to}{rest}")))
            .unwrap_or_else(|| name.clone());
        if renamed.insert(new.clone(), tensor).is_some() {
            return Err(fail(format!("two tensors are renamed to `{new}` (one of them `{name}`)")));
        }
    }
    file.tensors = renamed;
    let mut model = SequenceModel::new(config, 0)?;
    fill_from_file(model.named_mut(), &file).map_err(|e| match e {
        Error::MissingTensor { .. } => fail(format!("{e}; the file holds {}", held.join(", "))),
        other => fail(other.to_string()),
    })?;
    Ok(model)
}

/// Sets every named parameter from `file`: each must be stored with its shape and
/// finite values, and the file must hold nothing else.
///
/// # Errors
/// A missing, extra, misshaped or non-finite tensor, named.
pub fn fill_from_file(named: Vec<(String, &mut Tensor<f32>)>, file: &TensorFile) -> Result<()> {
    let mut known = std::collections::HashSet::new();
    for (name, t) in named {
        let stored =
            file.f32(&name).map_err(|_| Error::MissingTensor { tensor: name.clone(), expected: t.shape.clone() })?;
        if stored.shape != t.shape {
            return Err(Error::Shape { tensor: name, expected: t.shape.clone(), got: stored.shape });
        }
        crate::error::check_finite(&name, &stored.data)?;
        t.data = stored.data;
        known.insert(name);
    }
    if let Some(extra) = file.tensors.keys().find(|n| !known.contains(*n)) {
        return Err(Error::UnexpectedTensor { tensor: extra.clone(), shape: file.tensors[extra].shape.clone() });
    }
    Ok(())
}
