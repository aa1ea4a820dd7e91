//! HARNN, the hierarchical attention-based recurrent network of Huang et al. (2019) as
//! the deck presents it ("Caso de Uso em PLN"), with an explicit forward that keeps what
//! its hand-derived backward needs (gradient-checked in `tests/harnn.rs`).
//!
//! **Document representing layer.** Word embeddings `x_t = E[w_t]`, a BiLSTM over the
//! words (PyTorch packed semantics: padding never changes a result), `V = [v_1 … v_N]`
//! (`v_t ∈ ℝ^D`, `D = 2H`), and its mean over the document's own words `v̄`.
//!
//! **Hierarchical attention-based memory**, for each level `h` with `C_h` classes,
//! starting from `r_1 = 1`:
//! - TCA (text–category attention): `ω_t = r_h,t · v_t`, `O = tanh(Ω W_sᵀ)`,
//!   `α_{·c} = softmax_t(O w_c)` over the document's words, where `w_c` (a row of `W_c`)
//!   is category `c`'s embedding, the attention's query; `u_h = Σ_t ᾱ_t ω_t` with
//!   `ᾱ_t = (1/C_h) Σ_c α_tc` (the mean of the per-category summaries).
//! - CPM (category prediction): `a_h = ReLU(W_A [u_h; v̄] + b_A)`,
//!   `ℓ_h = W_L a_h + b_L`, `p_h = σ(ℓ_h)`.
//! - CDM (category dependency): `r_{h+1,t} = N · Σ_c p_hc α_tc / Σ_c p_hc`, the
//!   attention of the level's likely classes over the words, weighted by their
//!   probabilities and scaled by the document's length `N` so that uniform attention
//!   gives `r = 1`, the first level's value (the paper averages without the rescaling,
//!   which shrinks every level's input by ~1/N).
//!
//! **Hybrid predicting layer.** `g = ReLU(W_G [a_1; …; a_L] + b_G)`,
//! `ℓ_G = W_P g + b_P` over all classes, and the final score
//! `ŝ = β·σ(ℓ_G) + (1−β)·[p_1; …; p_L]`.
//!
//! Loss ([`harnn_loss`]): per-level and global sigmoid cross-entropy plus a
//! hierarchy-violation penalty `λ Σ_{(c, parent π)} max(0, ŝ_c − ŝ_π)²`.

use serde::{Deserialize, Serialize};

use recur_kernels::{lane_dot, sigmoid_in_place, tanh_in_place, vectorized, Real};

use super::baseline::arg_max;
use super::vocab::PAD;
use crate::error::{check_len, Error, Result};
use crate::heads::linear::{times_transposed, times_transposed_backward};
use crate::heads::Linear;
use crate::rng::Rng;
use crate::rnn::{CellKind, InputGradient, Rnn, RnnCache, RnnConfig, SequenceBatch};
use crate::tensor::Tensor;

/// Sizes of a HARNN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HarnnConfig {
    /// Rows of the embedding (the vocabulary with `<pad>` and `<unk>`).
    pub vocab_size: usize,
    /// Word embedding width `E`.
    pub embedding_size: usize,
    /// BiLSTM hidden size per direction `H` (the words' representation is `D = 2H` wide).
    pub hidden_size: usize,
    /// Width `A` of the attention's hidden layer and of the category embeddings.
    pub attention_size: usize,
    /// Width `F` of each level's CPM layer and of the global layer.
    pub fc_size: usize,
    /// Classes of each level, coarse to fine.
    pub levels: Vec<usize>,
    /// The global scores' share `β` of the final score.
    pub beta: f64,
    /// Variational dropout on the BiLSTM's input (the word embeddings) and on its
    /// recurrent state: one mask per document, the same at every word (training only).
    #[serde(default)]
    pub input_dropout: f64,
    #[serde(default)]
    pub state_dropout: f64,
}

impl HarnnConfig {
    /// # Errors
    /// A zero size, no level, or `β` outside [0, 1].
    pub fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("vocab_size", self.vocab_size),
            ("embedding_size", self.embedding_size),
            ("hidden_size", self.hidden_size),
            ("attention_size", self.attention_size),
            ("fc_size", self.fc_size),
            ("levels", self.levels.len()),
        ] {
            if v == 0 {
                return Err(Error::invalid(what, "must be at least 1"));
            }
        }
        if self.levels.contains(&0) {
            return Err(Error::invalid("levels", "every level needs at least one class"));
        }
        if !(0.0..=1.0).contains(&self.beta) {
            return Err(Error::invalid("beta", format!("{} is not in [0, 1]", self.beta)));
        }
        Ok(())
    }

    /// Classes over all levels.
    pub fn total_classes(&self) -> usize {
        self.levels.iter().sum()
    }

    fn word_size(&self) -> usize {
        2 * self.hidden_size
    }
}

/// One level's attention memory unit: TCA and CPM parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct HarnnLevel<T = f32> {
    /// `W_s: [A, D]`.
    pub attention: Tensor<T>,
    /// `W_c: [C, A]`, one embedding per category.
    pub categories: Tensor<T>,
    /// `W_A, b_A: [F, 2D]`.
    pub fc: Linear<T>,
    /// `W_L, b_L: [C, F]`.
    pub out: Linear<T>,
}

/// A batch of documents as word indices, time-major `tokens: [T, B]`, with each
/// document's length in `1..=T` (indices past a length are ignored).
#[derive(Clone, Copy, Debug)]
pub struct TokenBatch<'a> {
    pub tokens: &'a [u32],
    pub lengths: &'a [usize],
    pub steps: usize,
    pub batch: usize,
}

/// Documents of word indices as one time-major batch padded to the longest (`<pad>`
/// past each length): what [`TokenBatch`] views.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PaddedTokens {
    pub tokens: Vec<u32>,
    pub lengths: Vec<usize>,
    pub steps: usize,
}

impl PaddedTokens {
    pub fn new(documents: &[&[u32]]) -> Self {
        let lengths: Vec<usize> = documents.iter().map(|d| d.len()).collect();
        let steps = lengths.iter().copied().max().unwrap_or(1);
        let batch = documents.len();
        let mut tokens = vec![PAD; steps * batch];
        for (b, document) in documents.iter().enumerate() {
            for (t, &w) in document.iter().enumerate() {
                tokens[t * batch + b] = w;
            }
        }
        PaddedTokens { tokens, lengths, steps }
    }

    pub fn view(&self) -> TokenBatch<'_> {
        TokenBatch { tokens: &self.tokens, lengths: &self.lengths, steps: self.steps, batch: self.lengths.len() }
    }
}

/// What a forward returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HarnnOutput<T> {
    /// Per level, `ℓ_h: [B, C_h]`.
    pub local_logits: Vec<Vec<T>>,
    /// `ℓ_G: [B, Σ C]`.
    pub global_logits: Vec<T>,
    /// The final scores `ŝ: [B, Σ C]`.
    pub scores: Vec<T>,
    /// Per level, the mean attention over the level's classes `ᾱ: [T, B]` (zero past
    /// each length): which words the level read.
    pub word_attention: Vec<Vec<T>>,
}

#[derive(Clone, Debug, Default)]
struct LevelCache<T> {
    /// `Ω = r_h ⊙ V: [T·B, D]` (empty for the first level, where `r_1 = 1` and it is V).
    /// `r_h` itself is the level above's `next_scale`.
    omega: Vec<T>,
    /// `O: [T·B, A]`.
    hidden: Vec<T>,
    /// `α: [T·B, C]`.
    alpha: Vec<T>,
    /// `[u; v̄]: [B, 2D]`.
    summary: Vec<T>,
    /// `a_h: [B, F]`.
    activation: Vec<T>,
    /// `p_h: [B, C]`.
    probabilities: Vec<T>,
    /// `Σ_c p_hc: [B]`.
    probability_total: Vec<T>,
    /// `r_{h+1}: [T·B]`.
    next_scale: Vec<T>,
}

/// What [`Harnn::backward`] needs from a forward.
#[derive(Default)]
pub struct HarnnCache<T> {
    steps: usize,
    batch: usize,
    lengths: Vec<usize>,
    tokens: Vec<u32>,
    x: Vec<T>,
    encoder: RnnCache<T>,
    words: Vec<T>,
    levels: Vec<LevelCache<T>>,
    word_attention: Vec<Vec<T>>,
    /// `[a_1; …; a_L]: [B, L·F]`.
    joined: Vec<T>,
    /// `g: [B, F]`.
    global_hidden: Vec<T>,
}

/// A HARNN's parameters (or, as a zeroed clone, their gradients).
#[derive(Clone, Debug)]
pub struct Harnn<T = f32> {
    config: HarnnConfig,
    /// `E: [vocab, E]`.
    pub embedding: Tensor<T>,
    /// The BiLSTM document encoder.
    pub encoder: Rnn<T>,
    pub levels: Vec<HarnnLevel<T>>,
    /// `W_G, b_G: [F, L·F]`.
    pub global_fc: Linear<T>,
    /// `W_P, b_P: [Σ C, F]`.
    pub global_out: Linear<T>,
}

impl<T: Real> Harnn<T> {
    /// A model initialised from `seed`: embeddings N(0, 1) as PyTorch's `nn.Embedding`,
    /// every matrix U(−1/√fan_in, 1/√fan_in) as `nn.Linear`.
    ///
    /// # Errors
    /// An invalid config.
    pub fn new(config: HarnnConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = Rng::new(seed);
        let d = config.word_size();
        let (a, f) = (config.attention_size, config.fc_size);
        let embedding = Tensor {
            shape: vec![config.vocab_size, config.embedding_size],
            data: (0..config.vocab_size * config.embedding_size).map(|_| T::from_f64(rng.normal())).collect(),
        };
        let encoder = Rnn::new(
            RnnConfig {
                cell: CellKind::Lstm,
                input_size: config.embedding_size,
                hidden_size: config.hidden_size,
                bidirectional: true,
                input_dropout: config.input_dropout,
                state_dropout: config.state_dropout,
                ..RnnConfig::default()
            },
            rng.next_u64(),
        )?;
        let uniform = |shape: [usize; 2], rng: &mut Rng| {
            let bound = 1.0 / (shape[1] as f64).sqrt();
            Tensor {
                shape: shape.to_vec(),
                data: (0..shape[0] * shape[1]).map(|_| T::from_f64(rng.uniform_in(-bound, bound))).collect(),
            }
        };
        let levels = config
            .levels
            .iter()
            .map(|&c| HarnnLevel {
                attention: uniform([a, d], &mut rng),
                categories: uniform([c, a], &mut rng),
                fc: Linear::new(2 * d, f, &mut rng),
                out: Linear::new(f, c, &mut rng),
            })
            .collect();
        let global_fc = Linear::new(config.levels.len() * f, f, &mut rng);
        let global_out = Linear::new(f, config.total_classes(), &mut rng);
        Ok(Harnn { config, embedding, encoder, levels, global_fc, global_out })
    }

    pub fn config(&self) -> &HarnnConfig {
        &self.config
    }

    /// The encoder's two directions run on two threads when `threads ≥ 2`.
    pub fn set_threads(&mut self, threads: usize) {
        self.encoder.set_threads(threads);
    }

    /// Every parameter with its name, in a fixed order (the encoder's under `encoder.`
    /// with PyTorch's names).
    pub fn named_mut(&mut self) -> Vec<(String, &mut Tensor<T>)> {
        let mut out: Vec<(String, &mut Tensor<T>)> = vec![("embedding.weight".into(), &mut self.embedding)];
        out.extend(self.encoder.named_mut().into_iter().map(|(n, t)| (format!("encoder.{n}"), t)));
        for (h, level) in self.levels.iter_mut().enumerate() {
            out.push((format!("levels.{h}.attention.weight"), &mut level.attention));
            out.push((format!("levels.{h}.category_embedding"), &mut level.categories));
            out.push((format!("levels.{h}.fc.weight"), &mut level.fc.weight));
            out.push((format!("levels.{h}.fc.bias"), &mut level.fc.bias));
            out.push((format!("levels.{h}.out.weight"), &mut level.out.weight));
            out.push((format!("levels.{h}.out.bias"), &mut level.out.bias));
        }
        out.push(("global.fc.weight".into(), &mut self.global_fc.weight));
        out.push(("global.fc.bias".into(), &mut self.global_fc.bias));
        out.push(("global.out.weight".into(), &mut self.global_out.weight));
        out.push(("global.out.bias".into(), &mut self.global_out.bias));
        out
    }

    /// A zeroed copy: the gradient accumulator for [`Harnn::backward`].
    pub fn zeros_like(&self) -> Self {
        let mut zero = self.clone();
        for (_, t) in zero.named_mut() {
            t.data.iter_mut().for_each(|v| *v = T::ZERO);
        }
        zero
    }

    pub fn num_parameters(&self) -> usize {
        let linear = |l: &Linear<T>| l.weight.len() + l.bias.len();
        let levels: usize =
            self.levels.iter().map(|l| l.attention.len() + l.categories.len() + linear(&l.fc) + linear(&l.out)).sum();
        self.embedding.len()
            + self.encoder.num_parameters()
            + levels
            + linear(&self.global_fc)
            + linear(&self.global_out)
    }

    /// Inference.
    ///
    /// # Errors
    /// Token indices outside the vocabulary, lengths outside `1..=T`, misshaped buffers.
    pub fn forward(&self, input: &TokenBatch<'_>) -> Result<HarnnOutput<T>> {
        self.run(input, None).map(|(out, _)| out)
    }

    /// Forward keeping what [`Harnn::backward`] needs, with dropout masks drawn from
    /// `seed` (the same seed, the same masks).
    ///
    /// # Errors
    /// As [`Harnn::forward`].
    pub fn forward_train(&self, input: &TokenBatch<'_>, seed: u64) -> Result<(HarnnOutput<T>, HarnnCache<T>)> {
        self.run(input, Some(seed)).map(|(out, cache)| (out, cache.unwrap_or_default()))
    }

    fn validate(&self, input: &TokenBatch<'_>) -> Result<()> {
        check_len("tokens", input.tokens, &[input.steps, input.batch])?;
        check_len("lengths", input.lengths, &[input.batch])?;
        if let Some((b, &l)) = input.lengths.iter().enumerate().find(|(_, &l)| l == 0 || l > input.steps) {
            return Err(Error::invalid("lengths", format!("document {b} has length {l}, outside 1..={}", input.steps)));
        }
        let vocab = self.config.vocab_size;
        if let Some((i, &w)) = input.tokens.iter().enumerate().find(|(_, &w)| w as usize >= vocab) {
            let (t, b) = (i / input.batch, i % input.batch);
            return Err(Error::invalid(
                "tokens",
                format!("word index {w} at step {t} of document {b} is outside the vocabulary of {vocab}"),
            ));
        }
        Ok(())
    }

    fn run(&self, input: &TokenBatch<'_>, train_seed: Option<u64>) -> Result<(HarnnOutput<T>, Option<HarnnCache<T>>)> {
        self.validate(input)?;
        vectorized(
            #[inline(always)]
            || self.run_body(input, train_seed),
        )
    }

    #[inline(always)]
    fn run_body(
        &self,
        input: &TokenBatch<'_>,
        train_seed: Option<u64>,
    ) -> Result<(HarnnOutput<T>, Option<HarnnCache<T>>)> {
        let cfg = &self.config;
        let (steps, batch, lengths) = (input.steps, input.batch, input.lengths);
        let (e, d, f) = (cfg.embedding_size, cfg.word_size(), cfg.fc_size);
        let rows = steps * batch;
        let mut x = vec![T::ZERO; rows * e];
        for (row, (&w, xs)) in input.tokens.iter().zip(x.chunks_exact_mut(e)).enumerate() {
            if row / batch < lengths[row % batch] {
                xs.copy_from_slice(&self.embedding.data[w as usize * e..(w as usize + 1) * e]);
            }
        }
        let sequence = SequenceBatch { x: &x, steps, batch, lengths: Some(lengths) };
        let mut encoder_cache = RnnCache::default();
        let words = match train_seed {
            Some(seed) => {
                self.encoder.forward_train_reusing(&sequence, &Default::default(), seed, &mut encoder_cache)?.output
            }
            None => self.encoder.forward(&sequence, &Default::default())?.output,
        };
        let mut words_mean = vec![T::ZERO; batch * d];
        for (row, v) in words.chunks_exact(d).enumerate() {
            let b = row % batch;
            let inv = T::from_f64(1.0 / lengths[b] as f64);
            for (m, &v) in words_mean[b * d..(b + 1) * d].iter_mut().zip(v) {
                *m += v * inv;
            }
        }
        let mut levels: Vec<LevelCache<T>> = Vec::with_capacity(cfg.levels.len());
        let mut word_attention = Vec::with_capacity(cfg.levels.len());
        let mut local_logits = Vec::with_capacity(cfg.levels.len());
        for level in &self.levels {
            let scale = levels.last().map(|above| &above.next_scale[..]);
            let (lc, logits, alpha_mean) =
                self.level_forward(level, &words, &words_mean, scale, lengths, steps, batch)?;
            levels.push(lc);
            word_attention.push(alpha_mean);
            local_logits.push(logits);
        }
        let joined: Vec<T> = (0..batch)
            .flat_map(|b| levels.iter().flat_map(move |lc| lc.activation[b * f..(b + 1) * f].iter().copied()))
            .collect();
        let mut global_hidden = self.global_fc.forward(&joined)?;
        global_hidden.iter_mut().for_each(|v| *v = v.relu());
        let global_logits = self.global_out.forward(&global_hidden)?;
        let scores = final_scores(&local_logits, &global_logits, &cfg.levels, cfg.beta);
        let out = HarnnOutput { local_logits, global_logits, scores, word_attention: word_attention.clone() };
        let cache = train_seed.map(|_| HarnnCache {
            steps,
            batch,
            lengths: lengths.to_vec(),
            tokens: input.tokens.to_vec(),
            x,
            encoder: encoder_cache,
            words,
            levels,
            word_attention,
            joined,
            global_hidden,
        });
        Ok((out, cache))
    }

    /// TCA, CPM and CDM of one level; returns its cache, `ℓ_h` and `ᾱ`.
    ///
    /// # Errors
    /// None in practice: the shapes are the config's (the dense layers check them).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn level_forward(
        &self,
        level: &HarnnLevel<T>,
        words: &[T],
        words_mean: &[T],
        scale: Option<&[T]>,
        lengths: &[usize],
        steps: usize,
        batch: usize,
    ) -> Result<(LevelCache<T>, Vec<T>, Vec<T>)> {
        let cfg = &self.config;
        let (d, a) = (cfg.word_size(), cfg.attention_size);
        let c = level.categories.shape[0];
        let rows = steps * batch;
        let mut omega = Vec::new();
        if let Some(scale) = scale {
            omega.resize(rows * d, T::ZERO);
            for ((om, v), &r) in omega.chunks_exact_mut(d).zip(words.chunks_exact(d)).zip(scale) {
                om.iter_mut().zip(v).for_each(|(o, &v)| *o = r * v);
            }
        }
        let om: &[T] = if scale.is_none() { words } else { &omega };
        let mut hidden = times_transposed(om, &level.attention.data, [rows, d, a]);
        tanh_in_place(&mut hidden);
        let mut alpha = times_transposed(&hidden, &level.categories.data, [rows, a, c]);
        masked_softmax_over_steps(&mut alpha, lengths, steps, batch, c);
        let inv_c = T::from_f64(1.0 / c as f64);
        let alpha_mean: Vec<T> =
            alpha.chunks_exact(c).map(|row| row.iter().fold(T::ZERO, |s, &v| s + v) * inv_c).collect();
        let mut summary = vec![T::ZERO; batch * 2 * d];
        for (row, (o, &w)) in om.chunks_exact(d).zip(&alpha_mean).enumerate() {
            let b = row % batch;
            for (u, &o) in summary[b * 2 * d..b * 2 * d + d].iter_mut().zip(o) {
                *u += w * o;
            }
        }
        for b in 0..batch {
            summary[b * 2 * d + d..(b + 1) * 2 * d].copy_from_slice(&words_mean[b * d..(b + 1) * d]);
        }
        let mut activation = level.fc.forward(&summary)?;
        activation.iter_mut().for_each(|v| *v = v.relu());
        let logits = level.out.forward(&activation)?;
        let mut probabilities = logits.clone();
        sigmoid_in_place(&mut probabilities);
        let probability_total: Vec<T> =
            probabilities.chunks_exact(c).map(|p| p.iter().fold(T::ZERO, |s, &v| s + v)).collect();
        let mut next_scale = vec![T::ZERO; rows];
        for (row, (r, al)) in next_scale.iter_mut().zip(alpha.chunks_exact(c)).enumerate() {
            let b = row % batch;
            if row / batch < lengths[b] {
                let p = &probabilities[b * c..(b + 1) * c];
                let q = lane_dot(al, p);
                *r = T::from_f64(lengths[b] as f64) * q / probability_total[b];
            }
        }
        let lc = LevelCache { omega, hidden, alpha, summary, activation, probabilities, probability_total, next_scale };
        Ok((lc, logits, alpha_mean))
    }

    /// Accumulates into `grads` the gradients of a loss whose gradients with respect to
    /// the logits are `d_local_logits` (per level, `[B, C_h]`) and `d_global_logits`
    /// (`[B, Σ C]`), as [`harnn_loss`] returns them.
    ///
    /// # Errors
    /// Gradients whose shapes disagree with the forward, a cache from another model's
    /// forward, or `grads` of other sizes.
    pub fn backward(
        &self,
        cache: &mut HarnnCache<T>,
        d_local_logits: &[Vec<T>],
        d_global_logits: &[T],
        grads: &mut Harnn<T>,
    ) -> Result<()> {
        // The pointwise loops below compiled for the CPU's widest vectors.
        vectorized(
            #[inline(always)]
            || self.backward_body(cache, d_local_logits, d_global_logits, grads),
        )
    }

    #[inline(always)]
    fn backward_body(
        &self,
        cache: &mut HarnnCache<T>,
        d_local_logits: &[Vec<T>],
        d_global_logits: &[T],
        grads: &mut Harnn<T>,
    ) -> Result<()> {
        let cfg = &self.config;
        let (steps, batch) = (cache.steps, cache.batch);
        let (d, e) = (cfg.word_size(), cfg.embedding_size);
        let rows = steps * batch;
        if cache.levels.len() != cfg.levels.len() {
            return Err(Error::invalid("cache", "not from a forward_train of this model"));
        }
        if grads.config != *cfg {
            return Err(Error::invalid("grads", "not a zeros_like of this model (its sizes differ)"));
        }
        check_len("global logits gradient", d_global_logits, &[batch, cfg.total_classes()])?;
        if d_local_logits.len() != cfg.levels.len() {
            return Err(Error::Shape {
                tensor: "local logits gradients".into(),
                expected: vec![cfg.levels.len()],
                got: vec![d_local_logits.len()],
            });
        }
        let mut d_hidden = self.global_out.backward(&cache.global_hidden, d_global_logits, &mut grads.global_out)?;
        for (dg, &g) in d_hidden.iter_mut().zip(&cache.global_hidden) {
            if g <= T::ZERO {
                *dg = T::ZERO;
            }
        }
        let d_joined = self.global_fc.backward(&cache.joined, &d_hidden, &mut grads.global_fc)?;
        let levels_n = cfg.levels.len();
        let mut d_words = vec![T::ZERO; rows * d];
        let mut d_words_mean = vec![T::ZERO; batch * d];
        let mut d_next_scale: Vec<T> = Vec::new();
        for h in (0..levels_n).rev() {
            check_len(&format!("level {h} logits gradient"), &d_local_logits[h], &[batch, cfg.levels[h]])?;
            d_next_scale = self.level_backward(
                h,
                cache,
                &d_local_logits[h],
                &d_joined,
                &d_next_scale,
                &mut grads.levels[h],
                &mut d_words,
                &mut d_words_mean,
            )?;
        }
        for (row, dv) in d_words.chunks_exact_mut(d).enumerate() {
            let b = row % batch;
            if row / batch < cache.lengths[b] {
                let inv = T::from_f64(1.0 / cache.lengths[b] as f64);
                for (dv, &m) in dv.iter_mut().zip(&d_words_mean[b * d..(b + 1) * d]) {
                    *dv += m * inv;
                }
            }
        }
        let sequence = SequenceBatch { x: &cache.x, steps, batch, lengths: Some(&cache.lengths) };
        let input_grads = self.encoder.backward_with(
            &sequence,
            &mut cache.encoder,
            &d_words,
            None,
            None,
            grads.encoder.cells_mut(),
            InputGradient::Compute,
        )?;
        for (row, (&w, dx)) in cache.tokens.iter().zip(input_grads.d_x.chunks_exact(e)).enumerate() {
            if row / batch < cache.lengths[row % batch] {
                for (g, &dx) in grads.embedding.data[w as usize * e..(w as usize + 1) * e].iter_mut().zip(dx) {
                    *g += dx;
                }
            }
        }
        Ok(())
    }

    /// Backward through level `h` (its CDM, then CPM, then TCA) given `∂ℓ_h`, the global
    /// layer's `∂[a_1; …; a_L]` and `∂r_{h+1}` (empty for the last level): accumulates the
    /// level's parameter gradients into `g` and `∂V`, `∂v̄` into `d_words`, `d_words_mean`,
    /// and returns `∂r_h` (empty for the first level, where `r_1 = 1`).
    ///
    /// # Errors
    /// None in practice: the shapes are the forward's (the dense layers check them).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn level_backward(
        &self,
        h: usize,
        cache: &HarnnCache<T>,
        d_local_logits: &[T],
        d_joined: &[T],
        d_next_scale: &[T],
        g: &mut HarnnLevel<T>,
        d_words: &mut [T],
        d_words_mean: &mut [T],
    ) -> Result<Vec<T>> {
        let cfg = &self.config;
        let (steps, batch) = (cache.steps, cache.batch);
        let (d, a, f, levels_n) = (cfg.word_size(), cfg.attention_size, cfg.fc_size, cfg.levels.len());
        let rows = steps * batch;
        let level = &self.levels[h];
        let lc = &cache.levels[h];
        let scale = h.checked_sub(1).map(|above| &cache.levels[above].next_scale[..]);
        let c = cfg.levels[h];
        let mut d_logits = d_local_logits.to_vec();
        let mut d_alpha = vec![T::ZERO; rows * c];
        if !d_next_scale.is_empty() {
            // r_{h+1,t} = N q_t / P with q_t = Σ_c p_c α_tc, P = Σ_c p_c.
            let mut d_p = vec![T::ZERO; batch * c];
            for b in 0..batch {
                let (len, total) = (cache.lengths[b], lc.probability_total[b]);
                let mut d_total = T::ZERO;
                for t in 0..len {
                    let row = t * batch + b;
                    let dr = d_next_scale[row];
                    d_total -= lc.next_scale[row] * dr / total;
                    let dq = T::from_f64(len as f64) * dr / total;
                    let p = &lc.probabilities[b * c..(b + 1) * c];
                    let alpha = &lc.alpha[row * c..(row + 1) * c];
                    for (((dp, da), &p), &al) in
                        d_p[b * c..(b + 1) * c].iter_mut().zip(&mut d_alpha[row * c..(row + 1) * c]).zip(p).zip(alpha)
                    {
                        *dp += al * dq;
                        *da = p * dq;
                    }
                }
                d_p[b * c..(b + 1) * c].iter_mut().for_each(|dp| *dp += d_total);
            }
            for ((dl, &dp), &p) in d_logits.iter_mut().zip(&d_p).zip(&lc.probabilities) {
                *dl += dp * p * (T::ONE - p);
            }
        }
        let mut d_act = level.out.backward(&lc.activation, &d_logits, &mut g.out)?;
        for (b, row) in d_act.chunks_exact_mut(f).enumerate() {
            let from_global = &d_joined[(b * levels_n + h) * f..(b * levels_n + h + 1) * f];
            for ((da, &dg), &act) in row.iter_mut().zip(from_global).zip(&lc.activation[b * f..(b + 1) * f]) {
                *da = if act > T::ZERO { *da + dg } else { T::ZERO };
            }
        }
        let d_summary = level.fc.backward(&lc.summary, &d_act, &mut g.fc)?;
        for b in 0..batch {
            for (m, &ds) in d_words_mean[b * d..(b + 1) * d].iter_mut().zip(&d_summary[b * 2 * d + d..(b + 1) * 2 * d])
            {
                *m += ds;
            }
        }
        // u = Σ_t ᾱ_t ω_t, ᾱ_t = mean_c α_tc.
        let omega: &[T] = if scale.is_none() { &cache.words } else { &lc.omega };
        let mut d_omega = vec![T::ZERO; rows * d];
        let inv_c = T::from_f64(1.0 / c as f64);
        for row in 0..rows {
            let b = row % batch;
            if row / batch >= cache.lengths[b] {
                continue;
            }
            let du = &d_summary[b * 2 * d..b * 2 * d + d];
            let w = cache.word_attention[h][row];
            let o = &omega[row * d..(row + 1) * d];
            for (dom, &du) in d_omega[row * d..(row + 1) * d].iter_mut().zip(du) {
                *dom = w * du;
            }
            let d_mean = lane_dot(o, du);
            d_alpha[row * c..(row + 1) * c].iter_mut().for_each(|da| *da += d_mean * inv_c);
        }
        // α = softmax over the words: ∂S = α ⊙ (∂α − Σ_t α ∂α), column by column.
        let mut column_total = vec![T::ZERO; batch * c];
        for (row, (al, da)) in lc.alpha.chunks_exact(c).zip(d_alpha.chunks_exact(c)).enumerate() {
            let b = row % batch;
            for ((s, &al), &da) in column_total[b * c..(b + 1) * c].iter_mut().zip(al).zip(da) {
                *s += al * da;
            }
        }
        for (row, (al, da)) in lc.alpha.chunks_exact(c).zip(d_alpha.chunks_exact_mut(c)).enumerate() {
            let b = row % batch;
            for ((da, &al), &s) in da.iter_mut().zip(al).zip(&column_total[b * c..(b + 1) * c]) {
                *da = al * (*da - s);
            }
        }
        let d_scores = d_alpha;
        let mut d_hidden_words = vec![T::ZERO; rows * a];
        let (categories, attention) = (&level.categories.data, &level.attention.data);
        times_transposed_backward(
            &lc.hidden,
            &d_scores,
            categories,
            &mut g.categories.data,
            Some(&mut d_hidden_words),
            false,
            [rows, a, c],
        );
        for (dh, &o) in d_hidden_words.iter_mut().zip(&lc.hidden) {
            *dh *= T::ONE - o * o;
        }
        times_transposed_backward(
            omega,
            &d_hidden_words,
            attention,
            &mut g.attention.data,
            Some(&mut d_omega),
            true,
            [rows, d, a],
        );
        let Some(scale) = scale else {
            for (dv, &dom) in d_words.iter_mut().zip(&d_omega) {
                *dv += dom;
            }
            return Ok(Vec::new());
        };
        // ω_t = r_t v_t.
        let mut d_scale = vec![T::ZERO; rows];
        for (row, dr) in d_scale.iter_mut().enumerate() {
            let v = &cache.words[row * d..(row + 1) * d];
            let dom = &d_omega[row * d..(row + 1) * d];
            for (dv, &dom) in d_words[row * d..(row + 1) * d].iter_mut().zip(dom) {
                *dv += scale[row] * dom;
            }
            *dr = lane_dot(v, dom);
        }
        Ok(d_scale)
    }
}

/// `α_{·c} = softmax_t(S_{·c})` over each document's own steps, in place on
/// `scores: [T·B, C]`; zero past each length. Inlined into the forward's vectorised body.
#[inline(always)]
fn masked_softmax_over_steps<T: Real>(scores: &mut [T], lengths: &[usize], steps: usize, batch: usize, c: usize) {
    let mut max = vec![T::ZERO; c];
    let mut total = vec![T::ZERO; c];
    for (b, &len) in lengths.iter().enumerate() {
        max.copy_from_slice(&scores[b * c..(b + 1) * c]);
        for t in 1..len {
            let row = (t * batch + b) * c;
            for (m, &s) in max.iter_mut().zip(&scores[row..row + c]) {
                *m = m.max(s);
            }
        }
        total.iter_mut().for_each(|v| *v = T::ZERO);
        for t in 0..len {
            let row = (t * batch + b) * c;
            for ((s, &m), tot) in scores[row..row + c].iter_mut().zip(&max).zip(&mut total) {
                *s = (*s - m).exp();
                *tot += *s;
            }
        }
        total.iter_mut().for_each(|v| *v = T::ONE / *v);
        for t in 0..steps {
            let row = (t * batch + b) * c;
            if t < len {
                for (s, &inv) in scores[row..row + c].iter_mut().zip(&total) {
                    *s *= inv;
                }
            } else {
                scores[row..row + c].iter_mut().for_each(|s| *s = T::ZERO);
            }
        }
    }
}

/// `ŝ = β·σ(ℓ_G) + (1−β)·[σ(ℓ_1); …; σ(ℓ_L)]`, row by row.
fn final_scores<T: Real>(local: &[Vec<T>], global: &[T], levels: &[usize], beta: f64) -> Vec<T> {
    let total: usize = levels.iter().sum();
    let batch = global.len() / total.max(1);
    let (beta, rest) = (T::from_f64(beta), T::from_f64(1.0 - beta));
    let mut scores = global.to_vec();
    sigmoid_in_place(&mut scores);
    for b in 0..batch {
        let mut j = b * total;
        for (h, &c) in levels.iter().enumerate() {
            let mut p = local[h][b * c..(b + 1) * c].to_vec();
            sigmoid_in_place(&mut p);
            for (s, &p) in scores[j..j + c].iter_mut().zip(&p) {
                *s = beta * *s + rest * p;
            }
            j += c;
        }
    }
    scores
}

/// The loss's parts (means over the batch) and its gradients with respect to the logits.
#[derive(Clone, Debug)]
pub struct HarnnLoss<T> {
    pub total: f64,
    pub local: f64,
    pub global: f64,
    pub violation: f64,
    pub d_local_logits: Vec<Vec<T>>,
    pub d_global_logits: Vec<T>,
}

/// `L = (1/B) Σ_b [ Σ_h BCE(ℓ_h, y_h) + BCE(ℓ_G, y) + λ Σ_{(c,π)} max(0, ŝ_c − ŝ_π)² ]`,
/// BCE summed over classes, computed from the logits without overflow
/// (`max(ℓ,0) − ℓy + ln(1 + e^{−|ℓ|})`). `targets: [B, Σ C]` (0 or 1); `edges`: every
/// (child, parent) pair of the class tree as positions in a row
/// ([`crate::text::Hierarchy::edges`]); `penalty` is `λ`.
///
/// # Errors
/// Targets or logits whose shapes disagree with `levels`, or an edge outside a row.
pub fn harnn_loss<T: Real>(
    out: &HarnnOutput<T>,
    targets: &[T],
    levels: &[usize],
    edges: &[(usize, usize)],
    beta: f64,
    penalty: f64,
) -> Result<HarnnLoss<T>> {
    let batch = out.global_logits.len() / levels.iter().sum::<usize>().max(1);
    harnn_loss_in_batch(out, targets, levels, edges, beta, penalty, batch)
}

/// [`harnn_loss`] of a shard of a batch of `batch_documents` documents: every term is
/// divided by the whole batch's size (`1/B` above), so that the shards' losses and
/// gradients add up to the batch's.
///
/// # Errors
/// As [`harnn_loss`].
pub fn harnn_loss_in_batch<T: Real>(
    out: &HarnnOutput<T>,
    targets: &[T],
    levels: &[usize],
    edges: &[(usize, usize)],
    beta: f64,
    penalty: f64,
    batch_documents: usize,
) -> Result<HarnnLoss<T>> {
    let total_classes: usize = levels.iter().sum();
    let batch = out.global_logits.len() / total_classes.max(1);
    check_len("targets", targets, &[batch, total_classes])?;
    check_len("global logits", &out.global_logits, &[batch, total_classes])?;
    if out.local_logits.len() != levels.len() {
        return Err(Error::Shape {
            tensor: "local logits".into(),
            expected: vec![levels.len()],
            got: vec![out.local_logits.len()],
        });
    }
    for (h, (logits, &c)) in out.local_logits.iter().zip(levels).enumerate() {
        check_len(&format!("level {h} logits"), logits, &[batch, c])?;
    }
    if batch_documents < batch {
        return Err(Error::invalid(
            "batch_documents",
            format!("a batch of {batch_documents} document(s) cannot hold a shard of {batch}"),
        ));
    }
    if let Some(&(child, parent)) = edges.iter().find(|&&(c, p)| c >= total_classes || p >= total_classes) {
        return Err(Error::invalid("edges", format!("({child}, {parent}) is outside rows of {total_classes} classes")));
    }
    let inv_b = 1.0 / batch_documents.max(1) as f64;
    let bce = |l: f64, y: f64| l.max(0.0) - l * y + (-l.abs()).exp().ln_1p();
    let sigmoid = |l: f64| 1.0 / (1.0 + (-l).exp());
    let (mut local, mut global, mut violation) = (0.0, 0.0, 0.0);
    let mut d_local: Vec<Vec<f64>> = levels.iter().map(|&c| vec![0.0; batch * c]).collect();
    let mut d_global = vec![0.0; batch * total_classes];
    for b in 0..batch {
        let y = &targets[b * total_classes..(b + 1) * total_classes];
        let mut j = 0;
        let mut local_p = vec![0.0; total_classes];
        for (h, &c) in levels.iter().enumerate() {
            for k in 0..c {
                let l = out.local_logits[h][b * c + k].to_f64();
                let t = y[j].to_f64();
                local += bce(l, t);
                local_p[j] = sigmoid(l);
                d_local[h][b * c + k] = (local_p[j] - t) * inv_b;
                j += 1;
            }
        }
        let global_p: Vec<f64> =
            out.global_logits[b * total_classes..(b + 1) * total_classes].iter().map(|l| sigmoid(l.to_f64())).collect();
        for (j, (&l, &t)) in out.global_logits[b * total_classes..(b + 1) * total_classes].iter().zip(y).enumerate() {
            global += bce(l.to_f64(), t.to_f64());
            d_global[b * total_classes + j] = (global_p[j] - t.to_f64()) * inv_b;
        }
        if penalty > 0.0 {
            let score = |j: usize| beta * global_p[j] + (1.0 - beta) * local_p[j];
            let mut d_score = vec![0.0; total_classes];
            for &(child, parent) in edges {
                let excess = (score(child) - score(parent)).max(0.0);
                violation += excess * excess;
                d_score[child] += 2.0 * penalty * excess * inv_b;
                d_score[parent] -= 2.0 * penalty * excess * inv_b;
            }
            let mut j = 0;
            for (h, &c) in levels.iter().enumerate() {
                for k in 0..c {
                    let (pl, pg) = (local_p[j], global_p[j]);
                    d_local[h][b * c + k] += (1.0 - beta) * d_score[j] * pl * (1.0 - pl);
                    d_global[b * total_classes + j] += beta * d_score[j] * pg * (1.0 - pg);
                    j += 1;
                }
            }
        }
    }
    let cast = |v: Vec<f64>| v.into_iter().map(T::from_f64).collect::<Vec<T>>();
    let (local, global, violation) = (local * inv_b, global * inv_b, violation * inv_b);
    Ok(HarnnLoss {
        total: local + global + penalty * violation,
        local,
        global,
        violation,
        d_local_logits: d_local.into_iter().map(cast).collect(),
        d_global_logits: cast(d_global),
    })
}

/// Multi-hot decisions from scores `[B, Σ C]`: every class scoring at least `threshold`,
/// and in a level where none does, the level's highest-scoring class (arg-max fallback),
/// so that every document gets a class at every level.
pub fn decide<T: Real>(scores: &[T], levels: &[usize], threshold: f64) -> Vec<bool> {
    let total: usize = levels.iter().sum();
    let mut chosen = vec![false; scores.len()];
    for (row, out) in scores.chunks_exact(total.max(1)).zip(chosen.chunks_exact_mut(total.max(1))) {
        let mut start = 0;
        for &c in levels {
            let level = &row[start..start + c];
            let mut any = false;
            for (o, s) in out[start..start + c].iter_mut().zip(level) {
                *o = s.to_f64() >= threshold;
                any |= *o;
            }
            if !any {
                out[start + arg_max(level)] = true;
            }
            start += c;
        }
    }
    chosen
}
