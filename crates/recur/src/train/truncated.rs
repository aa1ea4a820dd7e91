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
//!
//! The newest chunk runs through the whole model ([`SequenceModel::forward_train_continuing`]),
//! the chunks before it through the forward stack only. So a decoupled bidirectional
//! model (Twin Networks) trains on streams too: its student, the forward stack, carries
//! its state as above; its teacher, the backward stack, reads the newest chunk from its
//! end (the future the student is taught to anticipate: up to k1 − 1 steps), and the
//! twin loss, the teacher's path and the student's path are those of a window that
//! starts from the carried state. A fuser RNN (the fusion
//! `u_t = GRU([h→_t; ĥ←_t], u_{t−1})`) runs on the newest chunk only, from the state it
//! reached at the end of the update before's newest chunk — deployed, it carries its
//! state as the encoder does — a constant of the update, so its own gradient stops at the
//! chunk's start (k1 steps). A coupled model needs the future at inference and has no
//! state to carry: it is refused.

use serde::{Deserialize, Serialize};

use recur_kernels::Real;

use crate::error::{Error, Result};
use crate::model::{Continuation, HeadOutput, ModelCache, SequenceModel};
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

/// One update's forward through its window: the model's outputs on the newest chunk.
pub struct WindowOutputs<T> {
    /// The inference path (the student of a decoupled model).
    pub head: HeadOutput<T>,
    /// A decoupled model's teacher path (`None` otherwise).
    pub teacher: Option<HeadOutput<T>>,
    /// α‖ĥ← − h←‖² over the chunk's live rows (0 unless decoupled).
    pub twin_loss: f64,
    /// The steps (of the stream) the head's rows belong to, time-major `[steps, B]`.
    pub steps: std::ops::Range<usize>,
}

/// A chunk's input: its steps of the streams, and each stream's length in it where they
/// differ (at least 1), and which streams ended before it.
struct ChunkInput<'x, T> {
    x: &'x [T],
    steps: usize,
    lengths: Option<Vec<usize>>,
    ended: Option<Vec<bool>>,
}

impl<T> ChunkInput<'_, T> {
    /// The chunk as a batch of `batch` sequences.
    fn sequences(&self, batch: usize) -> SequenceBatch<'_, T> {
        SequenceBatch { x: self.x, steps: self.steps, batch, lengths: self.lengths.as_deref() }
    }
}

/// A batch of streams under TBPTT: the state carried into each chunk, and a cache per
/// chunk of a window (their buffers reused from update to update).
pub struct TruncatedStreams<T = f32> {
    truncation: Truncation,
    batch: usize,
    /// The state `(h, c)` carried into chunk j, `[L, B, H]` each (`c` empty without a cell
    /// state); `None` for chunk 0 (the model's initial state).
    carried: Vec<Option<(Vec<T>, Vec<T>)>>,
    /// A fuser RNN's state carried into chunk j from the update whose newest chunk was
    /// j − 1 (`None` for chunk 0, and without a fuser).
    fuser_carried: Vec<Option<(Vec<T>, Vec<T>)>>,
    /// The forward stack's caches of the window's chunks before the newest.
    caches: Vec<RnnCache<T>>,
    /// The whole model's cache of the newest chunk.
    newest: Option<ModelCache<T>>,
    window: std::ops::Range<usize>,
}

impl<T: Real> TruncatedStreams<T> {
    /// # Errors
    /// A bad truncation, or a coupled bidirectional model (it reads the future at
    /// inference: it has no state to carry from one update to the next).
    pub fn new(model: &SequenceModel<T>, truncation: Truncation, batch: usize) -> Result<Self> {
        truncation.check()?;
        if !model.is_causal() {
            return Err(Error::invalid(
                "truncated BPTT",
                "it carries the state forward in time from one update to the next: it needs a unidirectional \
                 or a decoupled model (a coupled bidirectional one reads the future)",
            ));
        }
        let chunks = truncation.updates();
        Ok(TruncatedStreams {
            truncation,
            batch,
            carried: vec![None; chunks],
            fuser_carried: vec![None; chunks],
            caches: (1..truncation.k2 / truncation.k1).map(|_| RnnCache::default()).collect(),
            newest: None,
            window: 0..0,
        })
    }

    /// Chunk `j` of the streams `[steps, B, D]`: its steps of `x`, and each stream's length
    /// in it when the streams have lengths (at least 1: a stream that has ended runs one
    /// padded step, whose outputs its task's loss must leave out).
    fn chunk_input<'x>(&self, streams: &SequenceBatch<'x, T>, j: usize, d: usize) -> Result<ChunkInput<'x, T>> {
        let (t, b) = (self.truncation, self.batch);
        if streams.x.len() != t.steps * b * d || streams.steps != t.steps || streams.batch != b {
            return Err(Error::Shape {
                tensor: "streams".into(),
                expected: vec![t.steps, b, d],
                got: vec![streams.steps, streams.batch, streams.x.len()],
            });
        }
        let steps = t.chunk(j);
        let (lengths, ended) = match streams.lengths {
            Some(l) if l.len() != b || l.iter().any(|&n| n == 0 || n > t.steps) => {
                return Err(Error::invalid(
                    "stream lengths",
                    format!("{l:?} for {b} streams of up to {} steps", t.steps),
                ));
            }
            Some(l) => (
                Some(l.iter().map(|&n| n.saturating_sub(steps.start).clamp(1, steps.len())).collect::<Vec<_>>()),
                Some(l.iter().map(|&n| n <= steps.start).collect::<Vec<_>>()),
            ),
            None => (None, None),
        };
        Ok(ChunkInput {
            x: &streams.x[steps.start * b * d..steps.end * b * d],
            steps: steps.len(),
            lengths: lengths.filter(|l| l.iter().any(|&n| n < steps.len())),
            ended: ended.filter(|e| e.iter().any(|&e| e)),
        })
    }

    /// Forward of update `u` over `streams` (`[steps, B, D]`, each stream's length where
    /// they differ; the window's chunks are read from it): carries the state of each chunk
    /// into the next (a stream's state from its own last step), keeps the caches, and
    /// returns the model's outputs on chunk `u`. `seed` draws the dropout masks, the same
    /// for every chunk of the window (one mask per stream, as in one forward).
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
        let has_fuser = model.fusion.as_ref().is_some_and(|f| f.fuser.is_some());
        if u >= t.updates()
            || (first > 0 && self.carried[first].is_none())
            || (has_fuser && u > 0 && self.fuser_carried[u].is_none())
        {
            return Err(Error::invalid("truncated BPTT", format!("update {u} before the ones it follows")));
        }
        let d = model.forward_branch.config().input_size;
        self.window = t.window(u);
        // until this forward succeeds there is nothing to backpropagate
        let recycled = self.newest.take();
        let batch = self.batch;
        for (slot, j) in (first..u).enumerate() {
            let chunk = self.chunk_input(streams, j, d)?;
            let input = chunk.sequences(batch);
            let (upto, after) = self.carried.split_at_mut(j + 1);
            let out = model.forward_branch.forward_train_reusing(
                &input,
                &InitialState::carried(&upto[j]),
                seed,
                &mut self.caches[slot],
            )?;
            after[0] = Some((out.h_n, out.c_n));
        }
        let chunk = self.chunk_input(streams, u, d)?;
        let input = chunk.sequences(batch);
        let from = Continuation {
            state: InitialState::carried(&self.carried[u]),
            ended: chunk.ended.as_deref(),
            fuser: InitialState::carried(&self.fuser_carried[u]),
        };
        let (out, cache) = model.forward_train_continuing(&input, &from, seed, recycled)?;
        if u + 1 < self.carried.len() {
            let (h, c) = cache.final_state();
            self.carried[u + 1] = Some((h.to_vec(), c.to_vec()));
            let (h, c) = cache.fuser_final_state();
            self.fuser_carried[u + 1] = has_fuser.then(|| (h.to_vec(), c.to_vec()));
        }
        self.newest = Some(cache);
        Ok(WindowOutputs { head: out.student, teacher: out.teacher, twin_loss: out.twin_loss, steps: t.chunk(u) })
    }

    /// Backward of the last [`TruncatedStreams::forward`]: (∂L/∂x̂, ∂L/∂λ̂) on the rows of
    /// the inference path and, for a decoupled model, of the teacher's path, accumulated
    /// into `grads` (a [`SequenceModel::zeros_like`]) through the model on the newest chunk
    /// and the forward stack on the chunks before it, newest first; the gradient stops at
    /// the window's start.
    ///
    /// # Errors
    /// Gradients whose shapes disagree with the forward, no forward before it, or a
    /// decoupled model without the teacher's gradient.
    pub fn backward(
        &mut self,
        model: &SequenceModel<T>,
        streams: &SequenceBatch<'_, T>,
        d_head: (&[T], &[T]),
        d_teacher: Option<(&[T], &[T])>,
        grads: &mut SequenceModel<T>,
    ) -> Result<()> {
        let t = self.truncation;
        let (b, d) = (self.batch, model.forward_branch.config().input_size);
        let newest = self.newest.as_mut().ok_or_else(|| Error::invalid("truncated BPTT", "backward before forward"))?;
        let g = model.backward_to_state(newest, d_head, d_teacher, grads, InputGradient::Skip)?;
        let mut d_state = (g.d_h0, g.d_c0);
        let width = model.forward_branch.config().output_size();
        for (slot, j) in self.window.clone().enumerate().rev().skip(1) {
            let chunk = self.chunk_input(streams, j, d)?;
            let input = chunk.sequences(b);
            let d_output = vec![T::ZERO; t.chunk(j).len() * b * width];
            let g = model.forward_branch.backward_with(
                &input,
                &mut self.caches[slot],
                &d_output,
                Some(&d_state.0),
                (!d_state.1.is_empty()).then_some(&d_state.1[..]),
                grads.forward_branch.cells_mut(),
                InputGradient::Skip,
            )?;
            d_state = (g.d_h0, g.d_c0);
        }
        Ok(())
    }
}
