//! Streaming inference: one timestep in, one output out, the state carried between
//! calls. Only causal encoders stream (a bidirectional layer needs the future).

use recur_kernels::sequence::{self, StepWorkspace};
use recur_kernels::{gru_reset_before, Activation, Dims, Elman, GruResetAfter, Lstm, Real, SequenceOptions};

use super::config::CellKind;
use super::layer::{jordan_of, jordan_weights, InitialState, Rnn, SequenceBatch};
use crate::error::{check_finite, check_len, Error, Result};

/// What a running encoder carries from step to step, per layer `[B,H]`: `h` (Jordan: the
/// context y), and an LSTM's `c` (empty for the other cells).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CarriedState<T> {
    pub h: Vec<Vec<T>>,
    pub c: Vec<Vec<T>>,
}

/// A running encoder: the state of every layer for `B` independent streams.
#[derive(Clone)]
pub struct Stream<'a, T> {
    rnn: &'a Rnn<T>,
    batch: usize,
    /// Per layer `[B,H]`.
    h: Vec<Vec<T>>,
    c: Vec<Vec<T>>,
    work: Vec<StepWorkspace<T>>,
    layer_input: Vec<T>,
}

impl<T: Real> Rnn<T> {
    /// Starts `batch` streams from the initial state (given, learned or zero).
    ///
    /// # Errors
    /// A bidirectional encoder (not causal), or a badly shaped initial state.
    pub fn stream(&self, batch: usize, state: &InitialState<'_, T>) -> Result<Stream<'_, T>> {
        if self.config().bidirectional {
            return Err(Error::invalid(
                "stream",
                "a bidirectional encoder reads the future and cannot stream; use a decoupled model",
            ));
        }
        let dummy = vec![T::ZERO; batch * self.config().input_size];
        self.validate_input(&SequenceBatch { x: &dummy, steps: 1, batch, lengths: None }, state)?;
        let layers = self.config().num_layers;
        let h = (0..layers).map(|k| self.initial_state_of(state.h0, k, batch, false)).collect();
        let c = (0..layers)
            .map(|k| {
                if self.config().cell.has_cell_state() {
                    self.initial_state_of(state.c0, k, batch, true)
                } else {
                    Vec::new()
                }
            })
            .collect();
        Ok(Stream { rnn: self, batch, h, c, work: vec![StepWorkspace::default(); layers], layer_input: Vec::new() })
    }
}

impl<T: Real> Stream<'_, T> {
    /// Feeds one step `x_t: [B,D]`; returns the top layer's `h_t: [B,H]`.
    ///
    /// # Errors
    /// A wrongly sized or non-finite input.
    pub fn step(&mut self, x_t: &[T]) -> Result<&[T]> {
        let cfg = self.rnn.config();
        check_len("x_t", x_t, &[self.batch, cfg.input_size])?;
        check_finite("x_t", x_t)?;
        let h = cfg.hidden_size;
        self.layer_input.clear();
        self.layer_input.extend_from_slice(x_t);
        for k in 0..cfg.num_layers {
            let width = if k == 0 { cfg.input_size } else { h };
            let p = &self.rnn.cells()[k];
            let w = p.cell_weights();
            let (hs, cs, work) = (&mut self.h[k], &mut self.c[k], &mut self.work[k]);
            let x = &self.layer_input;
            let b = self.batch;
            match cfg.cell {
                CellKind::ElmanTanh => {
                    sequence::step(&Elman { activation: Activation::Tanh }, b, width, h, x, hs, cs, &w, work)
                }
                CellKind::ElmanRelu => {
                    sequence::step(&Elman { activation: Activation::Relu }, b, width, h, x, hs, cs, &w, work)
                }
                CellKind::Lstm => sequence::step(&Lstm, b, width, h, x, hs, cs, &w, work),
                CellKind::GruResetAfter => sequence::step(&GruResetAfter, b, width, h, x, hs, cs, &w, work),
                CellKind::GruResetBefore => gru_reset_before::step(b, width, h, x, hs, &w),
                CellKind::Jordan => {
                    // A one-step sequence whose initial context is the carried y_{t−1}.
                    let dims = Dims { steps: 1, batch: b, input: width, hidden: h };
                    let out =
                        jordan_of(h).forward(dims, x, hs, None, &jordan_weights(p), &SequenceOptions::default(), None);
                    hs.copy_from_slice(&out.y_n);
                }
            }
            self.layer_input.clear();
            self.layer_input.extend_from_slice(&self.h[k]);
        }
        Ok(&self.h[cfg.num_layers - 1])
    }

    /// `copies` of these `B` streams, `[copies·B]` in all (copy `k`'s stream `b` at row
    /// `k·B + b`), each carrying the same state: paths that start together and then part.
    pub fn replicated(&self, copies: usize) -> Self {
        let tile = |v: &Vec<T>| v.repeat(copies);
        Stream {
            rnn: self.rnn,
            batch: self.batch * copies,
            h: self.h.iter().map(tile).collect(),
            c: self.c.iter().map(tile).collect(),
            work: vec![StepWorkspace::default(); self.work.len()],
            layer_input: Vec::new(),
        }
    }

    /// The carried state of layer `k`: `h` (Jordan: the context y) `[B,H]`.
    pub fn state(&self, k: usize) -> &[T] {
        &self.h[k]
    }

    /// Every layer's carried state, to go on from later ([`Stream::restore`]).
    pub fn carried(&self) -> CarriedState<T> {
        CarriedState { h: self.h.clone(), c: self.c.clone() }
    }

    /// Goes on from `state` (what [`Stream::carried`] gave, of a stream of the same encoder
    /// and batch).
    ///
    /// # Errors
    /// Another number of layers, a state of another shape, or a non-finite value (named).
    pub fn restore(&mut self, state: &CarriedState<T>) -> Result<()> {
        let layers = self.h.len();
        if state.h.len() != layers || state.c.len() != layers {
            return Err(Error::invalid(
                "carried state",
                format!("{} and {} layers of h and c; the encoder has {layers}", state.h.len(), state.c.len()),
            ));
        }
        for k in 0..layers {
            let (h, c) = (format!("h of layer {k}"), format!("c of layer {k}"));
            check_len(&h, &state.h[k], &[self.h[k].len()])?;
            check_len(&c, &state.c[k], &[self.c[k].len()])?;
            check_finite(&h, &state.h[k])?;
            check_finite(&c, &state.c[k])?;
        }
        self.h.clone_from(&state.h);
        self.c.clone_from(&state.c);
        Ok(())
    }
}
