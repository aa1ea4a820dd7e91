//! An encoder's parameters as a PyTorch `state_dict`: `weight_ih_l0`, `bias_hh_l1_reverse`, …

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use recur_kernels::Real;

use super::safetensors_io::{write_f32, TensorFile};
use crate::error::{Error, Result};
use crate::rnn::Rnn;
use crate::tensor::Tensor;

impl<T: Real> Rnn<T> {
    /// Every parameter with its PyTorch name, in PyTorch's order.
    pub fn state_dict(&self) -> Vec<(String, Tensor<T>)> {
        let mut out = Vec::new();
        for (i, cell) in self.cells().iter().enumerate() {
            cell.for_each(|field, t| out.push((self.param_name(i, field), t.clone())));
        }
        out
    }

    /// Every parameter with its PyTorch name, mutably, in [`Rnn::state_dict`]'s order.
    pub fn named_mut(&mut self) -> Vec<(String, &mut Tensor<T>)> {
        let names: Vec<String> = self
            .cells()
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.named().map(move |(f, _)| (i, f)))
            .map(|(i, f)| self.param_name(i, f))
            .collect();
        let tensors = self.cells_mut().iter_mut().flat_map(|c| c.named_mut().map(|(_, t)| t));
        names.into_iter().zip(tensors).collect()
    }

    /// Replaces every parameter from `tensors` (name → tensor). The set of names must be
    /// exactly the model's, every shape must match, and every value be finite; on any
    /// error nothing is changed.
    ///
    /// # Errors
    /// A missing, unexpected, wrongly shaped or non-finite tensor, named.
    pub fn load_state_dict(&mut self, tensors: &BTreeMap<String, Tensor<T>>) -> Result<()> {
        let mut expected = BTreeMap::new();
        for (i, cell) in self.cells().iter().enumerate() {
            cell.for_each(|field, t| {
                expected.insert(self.param_name(i, field), (i, field, t.shape.clone()));
            });
        }
        for (name, t) in tensors {
            match expected.get(name) {
                None => return Err(Error::UnexpectedTensor { tensor: name.clone(), shape: t.shape.clone() }),
                Some((_, _, shape)) if *shape != t.shape => {
                    return Err(Error::Shape { tensor: name.clone(), expected: shape.clone(), got: t.shape.clone() })
                }
                Some(_) => crate::error::check_finite(name, &t.data)?,
            }
        }
        if let Some((name, (_, _, shape))) = expected.iter().find(|(n, _)| !tensors.contains_key(*n)) {
            return Err(Error::MissingTensor { tensor: name.clone(), expected: shape.clone() });
        }
        for (name, (i, field, _)) in expected {
            let source = &tensors[&name];
            self.cells_mut()[i].for_each_mut(|f, t| {
                if f == field {
                    t.data.copy_from_slice(&source.data);
                }
            });
        }
        Ok(())
    }

    /// Loads the parameters from a safetensors file (F32 or F64 tensors).
    ///
    /// # Errors
    /// As [`Rnn::load_state_dict`], plus unreadable files; errors name the file.
    pub fn load_safetensors(&mut self, path: impl AsRef<Path>, ignore: &dyn Fn(&str) -> bool) -> Result<()> {
        let file = TensorFile::read(path)?;
        let mut tensors = BTreeMap::new();
        for name in file.tensors.keys().filter(|n| !ignore(n)) {
            tensors.insert(name.clone(), file.f32(name)?.cast());
        }
        self.load_state_dict(&tensors)
    }

    /// Saves the parameters as a PyTorch-compatible safetensors state dict, atomically.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save_safetensors(&self, path: impl AsRef<Path>, metadata: HashMap<String, String>) -> Result<()> {
        let tensors: Vec<(String, Tensor<f32>)> = self.state_dict().into_iter().map(|(n, t)| (n, t.cast())).collect();
        write_f32(path, &tensors, metadata)
    }
}
