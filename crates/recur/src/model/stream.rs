//! A causal model running one step at a time, its state carried between calls: the
//! deployment path of a unidirectional or decoupled model. Per step, as
//! [`SequenceModel::forward`] computes it for the whole sequence:
//! h→_t from the forward stack, ĥ←_t = A h→_t + a (decoupled), z_t = fuse(h→_t, ĥ←_t),
//! and the head's x̂_t (and λ̂_t).

use recur_kernels::Real;

use super::fusion::FusionStream;
use super::head::HeadOutput;
use super::sequence_model::SequenceModel;
use crate::error::{Error, Result};
use crate::rnn::CarriedState;
use crate::rnn::{InitialState, Stream};

/// `B` independent streams through a causal [`SequenceModel`].
#[derive(Clone)]
pub struct ModelStream<'a, T> {
    model: &'a SequenceModel<T>,
    encoder: Stream<'a, T>,
    fusion: Option<FusionStream<'a, T>>,
}

/// What a [`ModelStream`] carries from step to step: its encoder's states and, for a
/// decoupled model fused by an RNN, the fuser's.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelState<T> {
    pub encoder: CarriedState<T>,
    pub fuser: Option<CarriedState<T>>,
}

impl<T: Real> SequenceModel<T> {
    /// Starts `batch` streams from the initial states.
    ///
    /// # Errors
    /// A coupled bidirectional model (it reads the future).
    pub fn stream(&self, batch: usize) -> Result<ModelStream<'_, T>> {
        if !self.is_causal() {
            return Err(Error::invalid(
                "stream",
                "a coupled bidirectional model reads the future and cannot stream; train a decoupled or unidirectional one",
            ));
        }
        let encoder = self.forward_branch.stream(batch, &InitialState::default())?;
        let fusion = match (&self.fusion, &self.twin) {
            (Some(f), Some(_)) => Some(f.stream(batch)?),
            _ => None,
        };
        Ok(ModelStream { model: self, encoder, fusion })
    }
}

impl<T: Real> ModelStream<'_, T> {
    /// `copies` of these `B` streams, `[copies·B]` in all, each carrying the same state
    /// (copy `k`'s stream `b` at row `k·B + b`): sample paths that start from one state.
    pub fn replicated(&self, copies: usize) -> Self {
        ModelStream {
            model: self.model,
            encoder: self.encoder.replicated(copies),
            fusion: self.fusion.as_ref().map(|f| f.replicated(copies)),
        }
    }

    /// What it carries from step to step: the encoder's states, and a fuser RNN's.
    pub fn carried(&self) -> ModelState<T> {
        ModelState { encoder: self.encoder.carried(), fuser: self.fusion.as_ref().and_then(FusionStream::carried) }
    }

    /// Goes on from `state` ([`ModelStream::carried`] of a stream of the same model and batch).
    ///
    /// # Errors
    /// A state of another shape (named), a non-finite value, a fuser's state where the
    /// model has none or the other way round.
    pub fn restore(&mut self, state: &ModelState<T>) -> Result<()> {
        self.encoder.restore(&state.encoder)?;
        match &mut self.fusion {
            Some(fusion) => fusion.restore(state.fuser.as_ref()),
            None if state.fuser.is_none() => Ok(()),
            None => Err(Error::invalid("carried state", "a fuser RNN's state for a model without one")),
        }
    }

    /// Feeds one step `x_t: [B, D]`; returns the head's outputs for it (`mean: [B, O]`,
    /// `precision: [B, P]` for a Gaussian head).
    ///
    /// # Errors
    /// A wrongly sized or non-finite input.
    pub fn step(&mut self, x_t: &[T]) -> Result<HeadOutput<T>> {
        let h = self.encoder.step(x_t)?;
        let z = match (&mut self.fusion, &self.model.twin) {
            (Some(fusion), Some(twin)) => {
                let estimate = twin.forward(h)?;
                fusion.step(h, &estimate)?
            }
            _ => h.to_vec(),
        };
        self.model.head.forward(&z)
    }
}
