//! Truncated backpropagation through time, TBPTT(k1, k2) (Williams & Peng 1990; the
//! form of Sutskever 2013, §2.8): a long stream runs k1 steps at a time with the state
//! carried from one update to the next; at every update the loss of the newest k1 steps
//! is backpropagated through the last k2 steps, and no further. The state at the start of
//! those k2 steps is a constant of the update (it is "detached"), so one update costs
//! k2 steps of forward and backward however long the stream is.
//!
//! With k2 = m·k1, update u runs chunks u−m+1 … u (chunk j = steps [j·k1, (j+1)·k1)) from
//! the state carried into chunk u−m+1, forward chunk by chunk, each chunk's final state
//! the next one's initial state; its loss reads chunk u; backward runs the chunks in
//! reverse, each chunk's ∂L/∂h₀ (and ∂L/∂c₀) handed to the chunk before as ∂L/∂h_n. The
//! chain is exact: it is the gradient of one forward over the k2 steps (a test checks
//! this against one whole-window backward). At the start of a stream the window starts
//! at step 0 from the model's initial state (zero, or the learned one, which then gets
//! its gradient). The state carried into chunk j+1 is the one this update computed with
//! the newest weights.

use serde::{Deserialize, Serialize};

use recur_kernels::Real;

use crate::error::{Error, Result};
use crate::model::{HeadOutput, SequenceModel};
use crate::rnn::{InitialState, InputGradient, RnnCache, SequenceBatch};

/// TBPTT(k1, k2) over streams of `steps` steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncation {
    /// Steps between updates (and steps of loss per update).
    pub k1: usize,
    /// Steps each update backpropagates through; a multiple of `k1`.
    pub k2: usize,
    /// Steps of each stream (every stream of a batch has this many).
    pub steps: usize,
}

impl Truncation {
    /// # Errors
    /// `k1` zero, or `k2` not a positive multiple of `k1`, or no step.
    pub fn check(&self) -> Result<()> {
        if self.k1 == 0 || self.k2 < self.k1 || !self.k2.is_multiple_of(self.k1) {
            return Err(Error::invalid(
                "truncated BPTT",
                format!("k2 must be a positive multiple of k1, got k1 = {}, k2 = {}", self.k1, self.k2),
            ));
        }
        if self.steps == 0 {
            return Err(Error::invalid("truncated BPTT", "streams of zero steps"));
        }
        Ok(())
    }

    /// Updates per stream: ⌈steps / k1⌉ (the last chunk may be shorter).
    pub fn updates(&self) -> usize {
        self.steps.div_ceil(self.k1)
    }

    /// Steps of chunk `j`.
    pub fn chunk(&self, j: usize) -> std::ops::Range<usize> {
        j * self.k1..((j + 1) * self.k1).min(self.steps)
    }

    /// Chunks of the window of update `u`: the last k2/k1 chunks up to `u`.
    pub fn window(&self, u: usize) -> std::ops::Range<usize> {
        (u + 1).saturating_sub(self.k2 / self.k1)..u + 1
    }
}

/// One update's forward through its window: the head's outputs on the newest chunk.
pub struct WindowOutputs<T> {
    pub head: HeadOutput<T>,
    /// The steps (of the stream) the head's rows belong to, time-major `[steps, B]`.
    pub steps: std::ops::Range<usize>,
}

/// A batch of streams under TBPTT: the state carried into each chunk, and a cache per
/// chunk of a window (their buffers reused from update to update).
pub struct TruncatedStreams<T = f32> {
    truncation: Truncation,
    batch: usize,
    /// The state `(h, c)` carried into chunk j, `[L, B, H]` each (`c` empty without a cell
    /// state); `None` for chunk 0 (the model's initial state).
    carried: Vec<Option<(Vec<T>, Vec<T>)>>,
    caches: Vec<RnnCache<T>>,
    /// The newest chunk's top-layer outputs, the head's input.
    z: Vec<T>,
    window: std::ops::Range<usize>,
}

impl<T: Real> TruncatedStreams<T> {
    /// # Errors
    /// A bad truncation, or a model that is not one stack running forward in time (a
    /// bidirectional model has no state to carry from one update to the next).
    pub fn new(model: &SequenceModel<T>, truncation: Truncation, batch: usize) -> Result<Self> {
        truncation.check()?;
        if model.backward_branch.is_some() || model.fusion.is_some() || model.twin.is_some() {
            return Err(Error::invalid(
                "truncated BPTT",
                "it carries the state forward in time from one update to the next: it needs a unidirectional model",
            ));
        }
        let chunks = truncation.updates();
        Ok(TruncatedStreams {
            truncation,
            batch,
            carried: vec![None; chunks],
            caches: (0..truncation.k2 / truncation.k1).map(|_| RnnCache::default()).collect(),
            z: Vec::new(),
            window: 0..0,
        })
    }

    /// Chunk `j` of the streams `[steps, B, D]`: its steps of `x`, and each stream's length
    /// in it when the streams have lengths (at least 1: a stream that has ended runs one
    /// padded step, whose outputs its task's loss must leave out).
    fn chunk_input<'x>(
        &self,
        streams: &SequenceBatch<'x, T>,
        j: usize,
        d: usize,
    ) -> Result<(&'x [T], Option<Vec<usize>>)> {
        let (t, b) = (self.truncation, self.batch);
        if streams.x.len() != t.steps * b * d || streams.steps != t.steps || streams.batch != b {
            return Err(Error::Shape {
                tensor: "streams".into(),
                expected: vec![t.steps, b, d],
                got: vec![streams.steps, streams.batch, streams.x.len()],
            });
        }
        let steps = t.chunk(j);
        let lengths = match streams.lengths {
            Some(l) if l.len() != b || l.iter().any(|&n| n == 0 || n > t.steps) => {
                return Err(Error::invalid(
                    "stream lengths",
                    format!("{l:?} for {b} streams of up to {} steps", t.steps),
                ));
            }
            Some(l) => Some(l.iter().map(|&n| n.saturating_sub(steps.start).clamp(1, steps.len())).collect::<Vec<_>>()),
            None => None,
        };
        let lengths = lengths.filter(|l| l.iter().any(|&n| n < steps.len()));
        Ok((&streams.x[steps.start * b * d..steps.end * b * d], lengths))
    }

    /// Forward of update `u` over `streams` (`[steps, B, D]`, each stream's length where
    /// they differ; the window's chunks are read from it): carries the state of each chunk
    /// into the next (a stream's state from its own last step), keeps the caches, and
    /// returns the head's outputs on chunk `u`. `seed` draws the dropout masks, the same for
    /// every chunk of the window (one mask per stream, as in one forward).
    ///
    /// # Errors
    /// Inputs that do not fit the model, an update out of order.
    pub fn forward(
        &mut self,
        model: &SequenceModel<T>,
        streams: &SequenceBatch<'_, T>,
        u: usize,
        seed: u64,
    ) -> Result<WindowOutputs<T>> {
        let t = self.truncation;
        let first = t.window(u).start;
        if u >= t.updates() || (first > 0 && self.carried[first].is_none()) {
            return Err(Error::invalid("truncated BPTT", format!("update {u} before the ones it follows")));
        }
        let d = model.forward_branch.config().input_size;
        let rnn = &model.forward_branch;
        self.window = t.window(u);
        for (slot, j) in self.window.clone().enumerate() {
            let (x, lengths) = self.chunk_input(streams, j, d)?;
            let input = SequenceBatch {
                x,
                steps: self.truncation.chunk(j).len(),
                batch: self.batch,
                lengths: lengths.as_deref(),
            };
            let state = match &self.carried[j] {
                Some((h, c)) => InitialState { h0: Some(h), c0: (!c.is_empty()).then_some(&c[..]) },
                None => InitialState::default(),
            };
            let out = rnn.forward_train_reusing(&input, &state, seed, &mut self.caches[slot])?;
            if j + 1 < self.carried.len() {
                self.carried[j + 1] = Some((out.h_n, out.c_n));
            }
            if j == u {
                self.z = out.output;
            }
        }
        Ok(WindowOutputs { head: model.head.forward(&self.z)?, steps: t.chunk(u) })
    }

    /// Backward of the last [`TruncatedStreams::forward`]: (∂L/∂x̂, ∂L/∂λ̂) on the head's
    /// rows, accumulated into `grads` (a [`SequenceModel::zeros_like`]), through the head
    /// and the window's chunks newest first; the gradient stops at the window's start.
    ///
    /// # Errors
    /// Gradients whose shapes disagree with the forward.
    pub fn backward(
        &mut self,
        model: &SequenceModel<T>,
        streams: &SequenceBatch<'_, T>,
        d_head: (&[T], &[T]),
        grads: &mut SequenceModel<T>,
    ) -> Result<()> {
        let t = self.truncation;
        let (b, d) = (self.batch, model.forward_branch.config().input_size);
        let mut d_output = model.head.backward(&self.z, d_head.0, d_head.1, &mut grads.head)?;
        let mut d_state: Option<(Vec<T>, Vec<T>)> = None;
        for (slot, j) in self.window.clone().enumerate().rev() {
            let steps = t.chunk(j);
            let (x, lengths) = self.chunk_input(streams, j, d)?;
            let input = SequenceBatch { x, steps: steps.len(), batch: b, lengths: lengths.as_deref() };
            if d_output.is_empty() {
                d_output = vec![T::ZERO; steps.len() * b * model.forward_branch.config().output_size()];
            }
            let (d_h_n, d_c_n) = match &d_state {
                Some((h, c)) => (Some(&h[..]), (!c.is_empty()).then_some(&c[..])),
                None => (None, None),
            };
            let g = model.forward_branch.backward_with(
                &input,
                &mut self.caches[slot],
                &d_output,
                d_h_n,
                d_c_n,
                grads.forward_branch.cells_mut(),
                InputGradient::Skip,
            )?;
            d_state = Some((g.d_h0, g.d_c0));
            d_output.clear();
        }
        Ok(())
    }
}
