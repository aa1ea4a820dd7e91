//! What a fused cell is: its parameters, the per-row pointwise update and its inverse.

use crate::matmul::Threads;
use crate::real::Real;

/// Parameters of one direction of one layer, in PyTorch's layout:
/// `w_ih: [G,D]`, `w_hh: [G,H]`, `b_ih, b_hh: [G]`, gate blocks in PyTorch order
/// (LSTM i,f,g,o; GRU r,z,n).
#[derive(Clone, Copy, Debug)]
pub struct CellWeights<'a, T> {
    pub w_ih: &'a [T],
    pub w_hh: &'a [T],
    pub b_ih: &'a [T],
    pub b_hh: &'a [T],
    pub norm: Option<NormWeights<'a, T>>,
}

/// Layer-norm gains: `gates: [K·H]` (one gain vector per normalised pre-activation, K
/// from [`GatedCell::norm_gate_chunks`]); `cell: [2H]` = (γ_c, β_c) for LSTM's
/// `LN(c_t)`, empty for other cells.
#[derive(Clone, Copy, Debug)]
pub struct NormWeights<'a, T> {
    pub gates: &'a [T],
    pub cell: &'a [T],
}

/// Gradient buffers matching [`CellWeights`], accumulated into (`+=`).
#[derive(Debug)]
pub struct CellGrads<'a, T> {
    pub w_ih: &'a mut [T],
    pub w_hh: &'a mut [T],
    pub b_ih: &'a mut [T],
    pub b_hh: &'a mut [T],
    /// `[K·H]`, empty without layer norm.
    pub norm_gates: &'a mut [T],
    /// `[2H]`, empty unless LSTM with layer norm.
    pub norm_cell: &'a mut [T],
}

impl<'a, T> CellGrads<'a, T> {
    /// The two weight matrices' gradients alone, every other buffer empty (what the
    /// products after the time loop write).
    pub fn matrices(w_ih: &'a mut [T], w_hh: &'a mut [T]) -> Self {
        CellGrads { w_ih, w_hh, b_ih: &mut [], b_hh: &mut [], norm_gates: &mut [], norm_cell: &mut [] }
    }
}

/// How a sequence is run.
#[derive(Clone, Copy, Debug)]
pub struct SequenceOptions<'a, T> {
    /// Walk from the last step to the first (the backward direction of a bidirectional layer).
    pub reverse: bool,
    /// `[B]`, each in `1..=T`: steps at or past a row's length leave its state unchanged
    /// and output zero. `None`: every row is `T` long.
    pub lengths: Option<&'a [usize]>,
    /// `d_x: [B,D]`, variational dropout on the input, the same at every step (values
    /// 0 or 1/keep).
    pub input_mask: Option<&'a [T]>,
    /// `d_h: [B,H]`, variational dropout on the recurrent state inside the recurrent product.
    pub state_mask: Option<&'a [T]>,
    /// Threads for the large products outside the time loop.
    pub threads: Threads,
    /// Training jobs whose kept rows share one core's caches (a bidirectional layer's two
    /// directions on one thread: 2); their rows' total picks the row layout (see
    /// [`crate::sequence::set_compact_rows_above_bytes`]). Changes no result.
    pub jobs_per_core: usize,
}

impl<T> Default for SequenceOptions<'_, T> {
    fn default() -> Self {
        SequenceOptions {
            reverse: false,
            lengths: None,
            input_mask: None,
            state_mask: None,
            threads: Threads(1),
            jobs_per_core: 1,
        }
    }
}

impl<T> SequenceOptions<'_, T> {
    pub(crate) fn check(&self, batch: usize, input: usize, state_width: usize, steps: usize) {
        if let Some(l) = self.lengths {
            assert_eq!(l.len(), batch, "lengths must be [B]");
            assert!(l.iter().all(|&n| n >= 1 && n <= steps), "lengths must lie in 1..=T");
        }
        if let Some(m) = self.input_mask {
            assert_eq!(m.len(), batch * input, "input mask must be [B,D]");
        }
        if let Some(m) = self.state_mask {
            assert_eq!(m.len(), batch * state_width, "state mask must be [B,H]");
        }
    }
}

/// A cell whose step is one recurrent product `P_h = h_{t−1}·W_hhᵀ` followed by fused
/// pointwise work, driven over a sequence by [`crate::sequence`].
pub trait GatedCell: Sync {
    /// Gate blocks: `G = GATES·H`.
    const GATES: usize;
    /// Whether the cell carries `c_t` besides `h_t`.
    const HAS_CELL_STATE: bool;
    /// How many leading gate blocks read W_x x_t and W_h h_{t−1} only through their sum, so
    /// that ∂P_x = ∂P_h there (LSTM: all 4, Elman: 1, GRU reset-after: r and z). Backward
    /// writes those blocks to `d_proj_h` alone and `d_proj_x` holds only the remaining
    /// `GATES − SHARED_GATES` blocks; the driver takes the input gradients of the shared
    /// blocks from `d_proj_h`, which saves most or all of a `[T,B,G]` buffer.
    const SHARED_GATES: usize = 0;

    /// Number of `H`-wide layer-norm gain vectors in [`NormWeights::gates`].
    fn norm_gate_chunks(&self) -> usize;

    /// Width `W` of the per-row forward cache.
    fn cache_width(&self, hidden: usize, normalized: bool) -> usize;

    /// A narrower per-row cache, from which backward recomputes part of the forward (the
    /// same operations, so the same bits): the driver uses it for sequences whose rows
    /// outgrow the caches (see `sequence::row_width`). `None`: the cell has one layout.
    fn compact_cache_width(&self, hidden: usize, normalized: bool) -> Option<usize> {
        let _ = (hidden, normalized);
        None
    }

    /// One row's forward update.
    ///
    /// `proj_x, proj_h: [G]` the step's input and recurrent products without biases
    /// (`proj_h` may be used as scratch); `bias: [G]` = b_ih + b_hh, summed once per
    /// sequence by the driver (one load per unit instead of two, for the blocks that add
    /// both); `h_prev, c_prev: [H]`; writes `h_out, c_out: [H]` and `cache: [W]`.
    #[allow(clippy::too_many_arguments)]
    fn forward_row<T: Real>(
        &self,
        hidden: usize,
        proj_x: &[T],
        proj_h: &mut [T],
        weights: &CellWeights<'_, T>,
        bias: &[T],
        h_prev: &[T],
        c_prev: &[T],
        h_out: &mut [T],
        c_out: &mut [T],
        cache: &mut [T],
    );

    /// Inverts [`GatedCell::forward_row`] for one row.
    ///
    /// `dh, dc: [H]` total gradients on `h_t`, `c_t`; `cache: [W]`, `h_prev, c_prev, h_cur: [H]`.
    /// Writes `d_proj_h: [G]` and `d_proj_x: [G − SHARED_GATES·H]` (the blocks after the
    /// [`GatedCell::SHARED_GATES`]), `dh_prev` (the part not through `W_hh`) and
    /// `dc_prev: [H]`; accumulates bias and norm gradients into `grads`, the bias of the
    /// [`GatedCell::SHARED_GATES`] blocks into `grads.b_ih` alone: ∂b_hh = ∂b_ih there, and
    /// the driver adds it to `b_hh` once per sequence instead of once per row.
    #[allow(clippy::too_many_arguments)]
    fn backward_row<T: Real>(
        &self,
        hidden: usize,
        dh: &[T],
        dc: &[T],
        cache: &[T],
        h_prev: &[T],
        c_prev: &[T],
        h_cur: &[T],
        weights: &CellWeights<'_, T>,
        d_proj_x: &mut [T],
        d_proj_h: &mut [T],
        dh_prev: &mut [T],
        dc_prev: &mut [T],
        grads: &mut CellGrads<'_, T>,
    );
}

/// `out = φ(pre + x + b)` elementwise over equal-length slices (the shape the compiler
/// vectorises): a gate from its two products and its summed bias in one pass.
#[inline(always)]
pub(crate) fn activate3<T: Real>(out: &mut [T], pre: &[T], x: &[T], bias: &[T], phi: impl Fn(T) -> T) {
    let n = out.len();
    let (pre, x, bias) = (&pre[..n], &x[..n], &bias[..n]);
    for j in 0..n {
        out[j] = phi(pre[j] + x[j] + bias[j]);
    }
}

/// b_ih + b_hh, which the driver hands to [`GatedCell::forward_row`].
pub(crate) fn summed_bias<T: Real>(weights: &CellWeights<'_, T>, out: &mut Vec<T>) {
    out.clear();
    out.extend(weights.b_ih.iter().zip(weights.b_hh).map(|(&a, &b)| a + b));
}

/// `a += b` elementwise.
#[inline(always)]
pub(crate) fn add_assign<T: Real>(a: &mut [T], b: &[T]) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x += y;
    }
}
