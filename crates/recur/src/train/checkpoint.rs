//! A training checkpoint as one safetensors file, written atomically after every epoch:
//! the current and the best weights under `model.` and `best.`, AdamW's moments as
//! `adamw.m.{i}` / `adamw.v.{i}`, and JSON metadata (configs, loop state) under keys the
//! trainer chooses. Every trainer of recur writes and reads it through these functions.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::{write_f32, TensorFile};
use crate::optim::{AdamW, AdamWConfig};
use crate::tensor::Tensor;

pub const MODEL: &str = "model.";
pub const BEST: &str = "best.";

/// Writes the weights of `model` and `best` (each as its named parameters), the
/// optimizer's moments and `metadata`, atomically.
///
/// # Errors
/// The file cannot be written.
pub fn write_checkpoint(
    path: &Path,
    model: Vec<(String, &mut Tensor<f32>)>,
    best: Vec<(String, &mut Tensor<f32>)>,
    optimizer: &AdamW,
    metadata: HashMap<String, String>,
) -> Result<()> {
    let mut tensors: Vec<(String, Tensor<f32>)> = Vec::new();
    for (prefix, named) in [(MODEL, model), (BEST, best)] {
        tensors.extend(named.into_iter().map(|(n, t)| (format!("{prefix}{n}"), t.clone())));
    }
    for (i, (m, v)) in optimizer.m.iter().zip(&optimizer.v).enumerate() {
        tensors.push((format!("adamw.m.{i}"), Tensor { shape: vec![m.len()], data: m.clone() }));
        tensors.push((format!("adamw.v.{i}"), Tensor { shape: vec![v.len()], data: v.clone() }));
    }
    write_f32(path, &tensors, metadata)
}

/// Sets the named parameters from the checkpoint's tensors under `prefix`.
///
/// # Errors
/// A missing or misshaped tensor, named with its prefix.
pub fn read_weights(file: &TensorFile, prefix: &str, named: Vec<(String, &mut Tensor<f32>)>) -> Result<()> {
    for (name, t) in named {
        let stored = file.f32(&format!("{prefix}{name}"))?;
        if stored.shape != t.shape {
            return Err(Error::Shape {
                tensor: format!("{prefix}{name}"),
                expected: t.shape.clone(),
                got: stored.shape,
            });
        }
        t.data = stored.data;
    }
    Ok(())
}

/// AdamW with the checkpoint's moments, at optimizer step `step`.
///
/// # Errors
/// A moment tensor that cannot be read.
pub fn read_optimizer(file: &TensorFile, config: AdamWConfig, step: u64) -> Result<AdamW> {
    let mut opt = AdamW::new(config);
    opt.step = step;
    let mut i = 0;
    while file.tensors.contains_key(&format!("adamw.m.{i}")) {
        opt.m.push(file.f32(&format!("adamw.m.{i}"))?.data);
        opt.v.push(file.f32(&format!("adamw.v.{i}"))?.data);
        i += 1;
    }
    Ok(opt)
}

/// The error for a checkpoint made by another configuration.
pub fn mismatch(path: &Path, what: &str) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        why: format!("the checkpoint was made with another {what}; start a new run folder or drop --resume"),
    }
}

/// A metadata value as JSON; `what` names it in the error.
///
/// # Errors
/// The value does not serialise (a map with non-string keys).
pub fn json<S: serde::Serialize + ?Sized>(what: &str, value: &S) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::invalid(what, e.to_string()))
}
