//! Fusion of the two directions of a bidirectional encoder (the deck's "Arquiteturas
//! Bidirecionais"), per step t, with h→, h← of width H:
//!
//! concat:  z_t = [h→_t; h←_t]                                   (2H)
//! gated:   g_t = σ(W_g [h→_t; h←_t] + b_g),  z_t = g_t ⊙ h→_t + (1 − g_t) ⊙ h←_t   (H)
//! fuser:   u_t = GRU_fuser([h→_t; h←_t], u_{t−1})  (or an LSTM)  (H_f)
//! sum: h→ + h←,  mean: (h→ + h←)/2,  product: h→ ⊙ h←           (H; Keras merge modes)

use recur_kernels::{sigmoid_in_place, Real};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::heads::Linear;
use crate::rng::Rng;
use crate::rnn::{CellKind, InitialState, Rnn, RnnCache, RnnConfig, SequenceBatch, Stream};

/// Which fusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FusionKind {
    Concat,
    Gated,
    /// A GRU over the concatenation; its hidden width is the model's H.
    FuserGru,
    /// An LSTM over the concatenation.
    FuserLstm,
    Sum,
    Mean,
    Product,
}

impl FusionKind {
    pub const ALL: [FusionKind; 7] = [
        FusionKind::Concat,
        FusionKind::Gated,
        FusionKind::FuserGru,
        FusionKind::FuserLstm,
        FusionKind::Sum,
        FusionKind::Mean,
        FusionKind::Product,
    ];
}

/// A fusion with its parameters (gate layer or fuser RNN).
#[derive(Clone, Debug, PartialEq)]
pub struct Fusion<T = f32> {
    pub kind: FusionKind,
    hidden: usize,
    /// `W_g: [H, 2H]`, `b_g: [H]` (gated only).
    pub gate: Option<Linear<T>>,
    /// The fuser RNN (fuser kinds only).
    pub fuser: Option<Rnn<T>>,
}

/// What backward needs from forward: the inputs, the gate values, the fuser's cache.
pub struct FusionCache<T> {
    forward: Vec<T>,
    backward: Vec<T>,
    /// `[N, 2H]` [h→; h←] rows (gated, fuser).
    joined: Vec<T>,
    /// `[N, H]` g_t (gated).
    gate: Vec<T>,
    fuser: Option<RnnCache<T>>,
    /// The fuser RNN's `(h_n, c_n)` after each sequence's own last step (empty otherwise).
    fuser_final_state: (Vec<T>, Vec<T>),
    steps: usize,
    batch: usize,
    lengths: Option<Vec<usize>>,
}

impl<T> FusionCache<T> {
    /// g_t of a gated fusion, `[T, B, H]` (empty for other kinds): how much each unit
    /// trusted the forward direction at each step.
    pub fn gate_values(&self) -> &[T] {
        &self.gate
    }

    /// A fuser RNN's state `(h_n, c_n)`, `[1, B, H]` each, after each sequence's own last
    /// step: what a stream carries into its next chunk (both empty for the other kinds,
    /// `c_n` for a GRU fuser).
    pub fn fuser_final_state(&self) -> (&[T], &[T]) {
        (&self.fuser_final_state.0, &self.fuser_final_state.1)
    }
}

/// A fusion running one step at a time: pointwise fusions need no state; a fuser RNN
/// carries its own.
#[derive(Clone)]
pub struct FusionStream<'a, T> {
    fusion: &'a Fusion<T>,
    fuser: Option<Stream<'a, T>>,
    batch: usize,
}

impl<T: Real> FusionStream<'_, T> {
    /// `copies` of these streams (see [`crate::rnn::Stream::replicated`]).
    pub fn replicated(&self, copies: usize) -> Self {
        FusionStream {
            fusion: self.fusion,
            fuser: self.fuser.as_ref().map(|f| f.replicated(copies)),
            batch: self.batch * copies,
        }
    }

    /// A fuser RNN's carried state (none for the other fusions).
    pub fn carried(&self) -> Option<crate::rnn::CarriedState<T>> {
        self.fuser.as_ref().map(Stream::carried)
    }

    /// Goes on from a fuser RNN's `state` ([`FusionStream::carried`]).
    ///
    /// # Errors
    /// A state for a fusion without a fuser or the other way round, or as
    /// [`Stream::restore`].
    pub fn restore(&mut self, state: Option<&crate::rnn::CarriedState<T>>) -> Result<()> {
        match (&mut self.fuser, state) {
            (Some(fuser), Some(state)) => fuser.restore(state),
            (None, None) => Ok(()),
            _ => Err(Error::invalid("carried state", "a fuser RNN's state for a fusion without one, or none for one")),
        }
    }

    /// z_t for `f = h→_t`, `b = ĥ←_t`, both `[B, H]`.
    ///
    /// # Errors
    /// Shapes that disagree.
    pub fn step(&mut self, f: &[T], b: &[T]) -> Result<Vec<T>> {
        match &mut self.fuser {
            Some(fuser) => {
                let h = self.fusion.hidden;
                crate::error::check_len("h_forward", f, &[self.batch, h])?;
                crate::error::check_len("h_backward", b, &[self.batch, h])?;
                Ok(fuser.step(&join(f, b, h))?.to_vec())
            }
            None => Ok(self.fusion.forward(f, b, 1, self.batch, None, &InitialState::default())?.0),
        }
    }
}

fn join<T: Real>(f: &[T], b: &[T], h: usize) -> Vec<T> {
    f.chunks_exact(h).zip(b.chunks_exact(h)).flat_map(|(x, y)| x.iter().chain(y).copied()).collect()
}

impl<T: Real> Fusion<T> {
    /// A fusion of two `hidden`-wide directions.
    ///
    /// # Errors
    /// A zero width.
    pub fn new(kind: FusionKind, hidden: usize, seed: u64) -> Result<Self> {
        let mut rng = Rng::new(seed);
        let gate = (kind == FusionKind::Gated).then(|| Linear::new(2 * hidden, hidden, &mut rng));
        let fuser = match kind {
            FusionKind::FuserGru | FusionKind::FuserLstm => {
                let cell = if kind == FusionKind::FuserGru { CellKind::GruResetAfter } else { CellKind::Lstm };
                Some(Rnn::new(
                    RnnConfig { cell, input_size: 2 * hidden, hidden_size: hidden, ..RnnConfig::default() },
                    rng.next_u64(),
                )?)
            }
            _ => None,
        };
        Ok(Fusion { kind, hidden, gate, fuser })
    }

    /// Width of z_t.
    pub fn output_size(&self) -> usize {
        if self.kind == FusionKind::Concat {
            2 * self.hidden
        } else {
            self.hidden
        }
    }

    /// Whether z_t depends on step t's states alone (every kind but the fuser RNNs).
    pub fn is_pointwise(&self) -> bool {
        self.fuser.is_none()
    }

    /// Starts `batch` streams of this fusion (a fuser RNN from its initial state).
    ///
    /// # Errors
    /// A fuser that cannot stream.
    pub fn stream(&self, batch: usize) -> Result<FusionStream<'_, T>> {
        let fuser = self.fuser.as_ref().map(|f| f.stream(batch, &InitialState::default())).transpose()?;
        Ok(FusionStream { fusion: self, fuser, batch })
    }

    /// z for `f = h→`, `b = h←`, both `[T, B, H]`; rows past `lengths` are zero in and out.
    /// A fuser RNN starts from `fuser_state` (the state a stream carries from its chunk
    /// before; `InitialState::default()`: its zero state), which backward treats as a
    /// constant; the other kinds ignore it.
    ///
    /// # Errors
    /// Shapes that disagree, or a state that does not fit the fuser.
    pub fn forward(
        &self,
        f: &[T],
        b: &[T],
        steps: usize,
        batch: usize,
        lengths: Option<&[usize]>,
        fuser_state: &InitialState<'_, T>,
    ) -> Result<(Vec<T>, FusionCache<T>)> {
        let h = self.hidden;
        crate::error::check_len("h_forward", f, &[steps, batch, h])?;
        crate::error::check_len("h_backward", b, &[steps, batch, h])?;
        // backward reads the inputs only for the product and the gate
        let keep_inputs = matches!(self.kind, FusionKind::Product | FusionKind::Gated);
        let mut cache = FusionCache {
            forward: if keep_inputs { f.to_vec() } else { Vec::new() },
            backward: if keep_inputs { b.to_vec() } else { Vec::new() },
            joined: Vec::new(),
            gate: Vec::new(),
            fuser: None,
            fuser_final_state: (Vec::new(), Vec::new()),
            steps,
            batch,
            lengths: lengths.map(<[usize]>::to_vec),
        };
        let two = T::from_f64(2.0);
        let z = match self.kind {
            FusionKind::Concat => join(f, b, h),
            FusionKind::Sum => f.iter().zip(b).map(|(&x, &y)| x + y).collect(),
            FusionKind::Mean => f.iter().zip(b).map(|(&x, &y)| (x + y) / two).collect(),
            FusionKind::Product => f.iter().zip(b).map(|(&x, &y)| x * y).collect(),
            FusionKind::Gated => {
                cache.joined = join(f, b, h);
                let gate = self.gate.as_ref().expect("gated fusion has a gate");
                cache.gate = gate.forward(&cache.joined)?;
                sigmoid_in_place(&mut cache.gate);
                cache.gate.iter().zip(f.iter().zip(b)).map(|(&g, (&x, &y))| g * x + (T::ONE - g) * y).collect()
            }
            FusionKind::FuserGru | FusionKind::FuserLstm => {
                cache.joined = join(f, b, h);
                let fuser = self.fuser.as_ref().expect("fuser fusion has an RNN");
                let input = SequenceBatch { x: &cache.joined, steps, batch, lengths };
                let (out, rnn_cache) = fuser.forward_train(&input, fuser_state, 0)?;
                cache.fuser = Some(rnn_cache);
                cache.fuser_final_state = (out.h_n, out.c_n);
                out.output
            }
        };
        Ok((z, cache))
    }

    /// Inverts [`Fusion::forward`]: returns (∂L/∂h→, ∂L/∂h←) and accumulates parameter
    /// gradients into `grads` (a zeroed clone of this fusion).
    ///
    /// # Errors
    /// A gradient of the wrong shape.
    pub fn backward(&self, cache: &mut FusionCache<T>, dz: &[T], grads: &mut Fusion<T>) -> Result<(Vec<T>, Vec<T>)> {
        let h = self.hidden;
        let (f, b) = (&cache.forward, &cache.backward);
        let n = cache.steps * cache.batch * h;
        crate::error::check_len("fusion output gradient", dz, &[cache.steps, cache.batch, self.output_size()])?;
        let half = T::from_f64(0.5);
        Ok(match self.kind {
            FusionKind::Concat => {
                let mut df = Vec::with_capacity(n);
                let mut db = Vec::with_capacity(n);
                for row in dz.chunks_exact(2 * h) {
                    df.extend_from_slice(&row[..h]);
                    db.extend_from_slice(&row[h..]);
                }
                (df, db)
            }
            FusionKind::Sum => (dz.to_vec(), dz.to_vec()),
            FusionKind::Mean => {
                let d: Vec<T> = dz.iter().map(|&v| v * half).collect();
                (d.clone(), d)
            }
            FusionKind::Product => {
                (dz.iter().zip(b).map(|(&d, &y)| d * y).collect(), dz.iter().zip(f).map(|(&d, &x)| d * x).collect())
            }
            FusionKind::Gated => {
                // inverts z = g⊙f + (1−g)⊙b and g = σ(W_g[f;b] + b_g)
                let g = &cache.gate;
                let mut df: Vec<T> = dz.iter().zip(g).map(|(&d, &gv)| d * gv).collect();
                let mut db: Vec<T> = dz.iter().zip(g).map(|(&d, &gv)| d * (T::ONE - gv)).collect();
                let du: Vec<T> = (0..dz.len()).map(|i| dz[i] * (f[i] - b[i]) * g[i] * (T::ONE - g[i])).collect();
                let gate = self.gate.as_ref().expect("gated fusion has a gate");
                let d_joined = gate.backward(&cache.joined, &du, grads.gate.as_mut().expect("gate grads"))?;
                split_add(&d_joined, &mut df, &mut db, h);
                (df, db)
            }
            FusionKind::FuserGru | FusionKind::FuserLstm => {
                let fuser = self.fuser.as_ref().expect("fuser fusion has an RNN");
                let input = SequenceBatch {
                    x: &cache.joined,
                    steps: cache.steps,
                    batch: cache.batch,
                    lengths: cache.lengths.as_deref(),
                };
                let rnn_cache = cache.fuser.as_mut().expect("fuser cache");
                let fuser_grads = grads.fuser.as_mut().expect("fuser grads").cells_mut();
                let d = fuser.backward(&input, rnn_cache, dz, None, None, fuser_grads)?;
                let (mut df, mut db) = (vec![T::ZERO; n], vec![T::ZERO; n]);
                split_add(&d.d_x, &mut df, &mut db, h);
                (df, db)
            }
        })
    }

    /// Every parameter with a name (`gate.weight`, `fuser.weight_ih_l0`, …), mutably.
    pub fn named_mut(&mut self) -> Vec<(String, &mut crate::Tensor<T>)> {
        let mut out = Vec::new();
        if let Some(g) = &mut self.gate {
            out.push(("gate.weight".to_string(), &mut g.weight));
            out.push(("gate.bias".to_string(), &mut g.bias));
        }
        if let Some(r) = &mut self.fuser {
            out.extend(r.named_mut().into_iter().map(|(n, t)| (format!("fuser.{n}"), t)));
        }
        out
    }
}

/// `df += d[:, :H]`, `db += d[:, H:]` for `d: [N, 2H]`.
fn split_add<T: Real>(d: &[T], df: &mut [T], db: &mut [T], h: usize) {
    for ((row, f), b) in d.chunks_exact(2 * h).zip(df.chunks_exact_mut(h)).zip(db.chunks_exact_mut(h)) {
        for j in 0..h {
            f[j] += row[j];
            b[j] += row[h + j];
        }
    }
}
