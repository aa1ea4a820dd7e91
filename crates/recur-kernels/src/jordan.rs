//! Jordan's network (1986): the memory is the previous *output*, not the hidden state.
//!
//! c_t = y_{t−1}                         (context units; y_{−1} = y0)
//! h_t = φ(W_xh x_t + W_ch c_t + b_h)    (φ ∈ {tanh, ReLU}; with layer norm φ(LN(·) + b_h))
//! y_t = ψ(W_hy h_t + b_y)               (ψ ∈ {identity, tanh})
//!
//! With teacher forcing the context is the ground truth ȳ_{t−1} instead of the model's
//! own y_{t−1}, so no gradient flows through the context (except into y0 at each row's
//! first step). Legend as in [`crate::sequence`], plus `O` the output width.

use crate::cell::SequenceOptions;
use crate::elman::Activation;
use crate::layer_norm::{layer_norm_backward, layer_norm_forward};
use crate::matmul::{gemm, Mat, Threads};
use crate::real::Real;
use crate::sequence::{apply_row_mask, copy_masked, input_grads, is_active, masked_input, time_of, Dims};
use crate::simd::vectorized;

/// ψ of a Jordan network's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputActivation {
    Identity,
    Tanh,
}

impl OutputActivation {
    #[inline(always)]
    fn apply<T: Real>(self, a: T) -> T {
        match self {
            OutputActivation::Identity => a,
            OutputActivation::Tanh => a.tanh(),
        }
    }

    #[inline(always)]
    fn derivative_from_output<T: Real>(self, y: T) -> T {
        match self {
            OutputActivation::Identity => T::ONE,
            OutputActivation::Tanh => T::ONE - y * y,
        }
    }
}

/// The Jordan cell's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jordan {
    pub hidden_activation: Activation,
    pub output_activation: OutputActivation,
    /// `O`.
    pub output: usize,
}

/// `w_ih: [H,D]` (W_xh), `w_ch: [H,O]`, `b_h: [H]`, `w_hy: [O,H]`, `b_y: [O]`,
/// `norm: [H]` layer-norm gain when enabled.
#[derive(Clone, Copy, Debug)]
pub struct JordanWeights<'a, T> {
    pub w_ih: &'a [T],
    pub w_ch: &'a [T],
    pub b_h: &'a [T],
    pub w_hy: &'a [T],
    pub b_y: &'a [T],
    pub norm: Option<&'a [T]>,
}

/// Gradient buffers matching [`JordanWeights`], accumulated into (`norm` empty without layer norm).
#[derive(Debug)]
pub struct JordanGrads<'a, T> {
    pub w_ih: &'a mut [T],
    pub w_ch: &'a mut [T],
    pub b_h: &'a mut [T],
    pub w_hy: &'a mut [T],
    pub b_y: &'a mut [T],
    pub norm: &'a mut [T],
}

/// `output: [T,B,O]` and `hidden: [T,B,H]` in time order (zero past each row's length),
/// `y_n: [B,O]` the final context (what a stream would carry).
#[derive(Clone, Debug, Default)]
pub struct JordanOutput<T> {
    pub output: Vec<T>,
    pub hidden: Vec<T>,
    pub y_n: Vec<T>,
}

/// What backward needs; written by [`Jordan::forward`] only.
#[derive(Clone, Debug, Default)]
pub struct JordanCache<T> {
    dims: Option<Dims>,
    /// `[T+1,B,O]` processing order; `contexts[0] = y0`.
    contexts: Vec<T>,
    /// `[T,B,H]` h_t, processing order.
    hidden: Vec<T>,
    /// `[T,B,O]` y_t, processing order.
    outputs: Vec<T>,
    /// `[T,B,H+1]` (â, rstd) with layer norm.
    norm_rows: Vec<T>,
}

impl Jordan {
    /// Runs a whole sequence. `x: [T,B,D]`, `y0: [B,O]`, `teacher: [T,B,O]` the ground
    /// truth fed as context (teacher forcing) or `None` (the model's own outputs).
    /// The state mask of `options` is `[B,O]` and applies to the context.
    ///
    /// # Panics
    /// If a buffer's length disagrees with `dims`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<T: Real>(
        &self,
        dims: Dims,
        x: &[T],
        y0: &[T],
        teacher: Option<&[T]>,
        weights: &JordanWeights<'_, T>,
        options: &SequenceOptions<'_, T>,
        cache: Option<&mut JordanCache<T>>,
    ) -> JordanOutput<T> {
        let Dims { steps, batch, input, hidden: h } = dims;
        let o = self.output;
        assert_eq!(x.len(), steps * batch * input, "x must be [T,B,D]");
        assert_eq!(y0.len(), batch * o, "y0 must be [B,O]");
        assert_eq!(weights.w_ih.len(), h * input);
        assert_eq!(weights.w_ch.len(), h * o);
        assert_eq!(weights.w_hy.len(), o * h);
        if let Some(tf) = teacher {
            assert_eq!(tf.len(), steps * batch * o, "teacher must be [T,B,O]");
        }
        options.check(batch, input, o, steps);
        let mut masked = Vec::new();
        let x_used = masked_input(x, options.input_mask, batch, input, &mut masked);
        let mut proj_x = vec![T::ZERO; steps * batch * h];
        gemm(
            &mut proj_x,
            Mat::new(x_used, steps * batch, input),
            Mat::new(weights.w_ih, h, input).t(),
            false,
            options.threads,
        );

        let (ctx_plane, h_plane) = (batch * o, batch * h);
        let mut contexts = vec![T::ZERO; (steps + 1) * ctx_plane];
        contexts[..ctx_plane].copy_from_slice(y0);
        let mut hidden_s = vec![T::ZERO; steps * h_plane];
        let mut outputs_s = vec![T::ZERO; steps * ctx_plane];
        let norm_width = h + 1;
        let mut norm_rows = vec![T::ZERO; if weights.norm.is_some() { steps * batch * norm_width } else { 0 }];
        let mut output = vec![T::ZERO; steps * ctx_plane];
        let mut hidden = vec![T::ZERO; steps * h_plane];
        let mut proj_c = vec![T::ZERO; h_plane];
        let mut ctx_in = vec![T::ZERO; ctx_plane];
        let mut y_pre = vec![T::ZERO; ctx_plane];

        for s in 0..steps {
            let t = time_of(s, steps, options.reverse);
            copy_masked(&mut ctx_in, &contexts[s * ctx_plane..(s + 1) * ctx_plane], options.state_mask);
            gemm(&mut proj_c, Mat::new(&ctx_in, batch, o), Mat::new(weights.w_ch, h, o).t(), false, Threads(1));
            let hs_step = &mut hidden_s[s * h_plane..(s + 1) * h_plane];
            let px = &proj_x[t * h_plane..(t + 1) * h_plane];
            vectorized(
                #[inline(always)]
                || {
                    for b in 0..batch {
                        if !is_active(options.lengths, b, t) {
                            hs_step[b * h..(b + 1) * h].iter_mut().for_each(|v| *v = T::ZERO);
                            continue;
                        }
                        // slices of their loop's length: no bounds checks, so the loops vectorise
                        let (a, x) = (&mut proj_c[b * h..(b + 1) * h], &px[b * h..(b + 1) * h]);
                        for j in 0..h {
                            a[j] += x[j];
                        }
                        if let Some(gain) = weights.norm {
                            let row = &mut norm_rows[(s * batch + b) * norm_width..(s * batch + b + 1) * norm_width];
                            let (hat, rstd) = row.split_at_mut(h);
                            rstd[0] = layer_norm_forward(a, gain, hat);
                        }
                        let (hidden, b_h) = (&mut hs_step[b * h..(b + 1) * h], &weights.b_h[..h]);
                        for j in 0..h {
                            hidden[j] = self.hidden_activation.apply(a[j] + b_h[j]);
                        }
                    }
                },
            );
            gemm(&mut y_pre, Mat::new(hs_step, batch, h), Mat::new(weights.w_hy, o, h).t(), false, Threads(1));
            let (ctx_before, ctx_after) = contexts.split_at_mut((s + 1) * ctx_plane);
            let ctx_prev = &ctx_before[s * ctx_plane..];
            let ctx_next = &mut ctx_after[..ctx_plane];
            let ys = &mut outputs_s[s * ctx_plane..(s + 1) * ctx_plane];
            for b in 0..batch {
                let os = b * o..(b + 1) * o;
                if !is_active(options.lengths, b, t) {
                    ctx_next[os.clone()].copy_from_slice(&ctx_prev[os]);
                    continue;
                }
                for j in os.clone() {
                    ys[j] = self.output_activation.apply(y_pre[j] + weights.b_y[j - b * o]);
                }
                let next = match teacher {
                    Some(tf) => &tf[t * ctx_plane + b * o..t * ctx_plane + (b + 1) * o],
                    None => &ys[os.clone()],
                };
                ctx_next[os.clone()].copy_from_slice(next);
                output[t * ctx_plane + b * o..t * ctx_plane + (b + 1) * o].copy_from_slice(&ys[os]);
                hidden[t * h_plane + b * h..t * h_plane + (b + 1) * h].copy_from_slice(&hs_step[b * h..(b + 1) * h]);
            }
        }
        let y_n = contexts[steps * ctx_plane..].to_vec();
        if let Some(cache) = cache {
            *cache = JordanCache { dims: Some(dims), contexts, hidden: hidden_s, outputs: outputs_s, norm_rows };
        }
        JordanOutput { output, hidden, y_n }
    }

    /// Exact BPTT through [`Jordan::forward`] (same `x`, `teacher`, `weights`, `options`).
    /// `d_output: [T,B,O]`, `d_hidden: [T,B,H]` or empty, `d_y_n: [B,O]`; accumulates into
    /// `d_x: [T,B,D]`, `d_y0: [B,O]` and `grads`.
    ///
    /// # Panics
    /// If `cache` was not filled by a training forward of the same shape.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Real>(
        &self,
        dims: Dims,
        x: &[T],
        teacher_forced: bool,
        weights: &JordanWeights<'_, T>,
        options: &SequenceOptions<'_, T>,
        cache: &JordanCache<T>,
        d_output: &[T],
        d_hidden: &[T],
        d_y_n: &[T],
        d_x: &mut [T],
        d_y0: &mut [T],
        grads: JordanGrads<'_, T>,
    ) {
        assert_eq!(cache.dims, Some(dims), "backward needs the cache of a training forward of the same shape");
        let Dims { steps, batch, hidden: h, .. } = dims;
        let o = self.output;
        let (ctx_plane, h_plane) = (batch * o, batch * h);
        let norm_width = h + 1;
        let mut d_y_pre = vec![T::ZERO; steps * ctx_plane];
        let mut d_proj_time = vec![T::ZERO; steps * h_plane];
        let mut d_proj_step = vec![T::ZERO; steps * h_plane];
        let mut d_ctx_carry = d_y_n.to_vec();
        let mut d_ctx = vec![T::ZERO; ctx_plane];
        let mut dh = vec![T::ZERO; h_plane];
        let JordanGrads { w_ih: d_w_ih, w_ch: d_w_ch, b_h: d_b_h, w_hy: d_w_hy, b_y: d_b_y, norm: d_norm } = grads;

        for s in (0..steps).rev() {
            let t = time_of(s, steps, options.reverse);
            let ys = &cache.outputs[s * ctx_plane..(s + 1) * ctx_plane];
            let dyp = &mut d_y_pre[s * ctx_plane..(s + 1) * ctx_plane];
            // inverts y_t = ψ(W_hy h_t + b_y)
            for b in 0..batch {
                if !is_active(options.lengths, b, t) {
                    continue;
                }
                for j in b * o..(b + 1) * o {
                    let from_context = if teacher_forced { T::ZERO } else { d_ctx_carry[j] };
                    let dy = d_output[t * ctx_plane + j] + from_context;
                    let v = dy * self.output_activation.derivative_from_output(ys[j]);
                    dyp[j] = v;
                    d_b_y[j - b * o] += v;
                }
            }
            gemm(&mut dh, Mat::new(dyp, batch, o), Mat::new(weights.w_hy, o, h), false, Threads(1));
            let hs_step = &cache.hidden[s * h_plane..(s + 1) * h_plane];
            let dps = &mut d_proj_step[s * h_plane..(s + 1) * h_plane];
            // inverts h_t = φ(LN(a) + b_h)
            vectorized(
                #[inline(always)]
                || {
                    for b in 0..batch {
                        if !is_active(options.lengths, b, t) {
                            continue;
                        }
                        let rows = b * h..(b + 1) * h;
                        let (da, dh, hidden) = (&mut dps[rows.clone()], &dh[rows.clone()], &hs_step[rows.clone()]);
                        let d_b_h = &mut d_b_h[..h];
                        da.copy_from_slice(dh);
                        if !d_hidden.is_empty() {
                            let extra = &d_hidden[t * h_plane + rows.start..t * h_plane + rows.end];
                            for j in 0..h {
                                da[j] += extra[j];
                            }
                        }
                        for j in 0..h {
                            da[j] *= self.hidden_activation.derivative_from_output(hidden[j]);
                            d_b_h[j] += da[j];
                        }
                        if let Some(gain) = weights.norm {
                            let row = &cache.norm_rows[(s * batch + b) * norm_width..(s * batch + b + 1) * norm_width];
                            layer_norm_backward(da, &row[..h], row[h], gain, d_norm, None);
                        }
                    }
                },
            );
            d_proj_time[t * h_plane..(t + 1) * h_plane].copy_from_slice(dps);
            // ∂c_t = (∂a · W_ch) ⊙ d_c
            gemm(&mut d_ctx, Mat::new(dps, batch, h), Mat::new(weights.w_ch, h, o), false, Threads(1));
            if let Some(m) = options.state_mask {
                apply_row_mask(&mut d_ctx, m);
            }
            for b in 0..batch {
                if !is_active(options.lengths, b, t) {
                    continue; // the context was carried unchanged: its gradient passes through
                }
                let context_is_teacher =
                    teacher_forced && s >= 1 && is_active(options.lengths, b, time_of(s - 1, steps, options.reverse));
                for j in b * o..(b + 1) * o {
                    d_ctx_carry[j] = if context_is_teacher { T::ZERO } else { d_ctx[j] };
                }
            }
        }
        for (d, &v) in d_y0.iter_mut().zip(&d_ctx_carry) {
            *d += v;
        }
        let n = steps * batch;
        gemm(d_w_hy, Mat::new(&d_y_pre, n, o).t(), Mat::new(&cache.hidden, n, h), true, options.threads);
        let mut masked_c = Vec::new();
        let c_used = masked_input(&cache.contexts[..n * o], options.state_mask, batch, o, &mut masked_c);
        gemm(d_w_ch, Mat::new(&d_proj_step, n, h).t(), Mat::new(c_used, n, o), true, options.threads);
        input_grads(dims, x, weights.w_ih, options, Mat::new(&d_proj_time, steps * batch, h), Some(d_w_ih), d_x);
    }
}
