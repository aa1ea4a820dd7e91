//! The deck's two baselines ("REG LOG" and "XGBoost"), on TF-IDF features, one model
//! per level (one class per document and level, as in the data):
//!
//! Features: `x_j = (1 + ln n_j) · idf_j`, L2-normalised per document, with
//! `idf_j = ln((1 + N) / (1 + df_j)) + 1` over the N training documents (scikit-learn's
//! smoothed, sublinear TF-IDF); words outside the training vocabulary are dropped.
//!
//! - [`SoftmaxRegression`]: `p = softmax(Wᵀx + b)`, `W: [V, C]`, fitted on the whole
//!   training set by AdamW on the mean cross-entropy (full-batch, so the result depends
//!   on no seed), with decoupled weight decay on `W`.
//! - [`BoostedTrees`]: gradient-boosted regression trees on the softmax loss with
//!   XGBoost's second-order leaves: per round and class, `g_i = p_ik − y_ik`,
//!   `h_i = p_ik (1 − p_ik)`; a split maximises
//!   `G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ)`, a leaf is `w = −G/(H+λ)`, and the class
//!   score grows by `η·w`. Splits test a word's TF-IDF value against a threshold
//!   (`x_j > c`), searched over a histogram of its values (XGBoost's `hist` method,
//!   [`FeatureBins`]: up to `max_bins` bins of the values where the word occurs, and its
//!   absence, the common value in TF-IDF rows, below every one); `c = 0` asks whether the
//!   word occurs.

use indicatif::ProgressBar;
use rayon::prelude::*;
use recur_kernels::vectorized;

use super::vocab::{tokenize, Vocabulary, UNKNOWN};
use crate::optim::{AdamW, AdamWConfig, ParamSlot};

/// A document as sparse TF-IDF features: (vocabulary index, value), sorted by index.
pub type SparseRow = Vec<(u32, f32)>;

/// Inverse document frequencies over a vocabulary.
#[derive(Clone, Debug)]
pub struct TfIdf {
    idf: Vec<f32>,
}

impl TfIdf {
    /// Document frequencies of `vocab`'s words over the training `texts`.
    pub fn fit<'a>(vocab: &Vocabulary, texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut df = vec![0u32; vocab.len()];
        let mut n = 0usize;
        for text in texts {
            n += 1;
            let mut seen: Vec<u32> = tokenize(text).map(|w| vocab.lookup(&w)).filter(|&i| i != UNKNOWN).collect();
            seen.sort_unstable();
            seen.dedup();
            for i in seen {
                df[i as usize] += 1;
            }
        }
        let idf = df.iter().map(|&d| (((1 + n) as f64 / (1 + d) as f64).ln() + 1.0) as f32).collect();
        TfIdf { idf }
    }

    /// The features of one text.
    pub fn transform(&self, vocab: &Vocabulary, text: &str) -> SparseRow {
        let mut ids: Vec<u32> = tokenize(text).map(|w| vocab.lookup(&w)).filter(|&i| i != UNKNOWN).collect();
        ids.sort_unstable();
        let mut row: SparseRow = Vec::new();
        for id in ids {
            match row.last_mut() {
                Some((last, count)) if *last == id => *count += 1.0,
                _ => row.push((id, 1.0)),
            }
        }
        for (id, v) in &mut row {
            *v = (1.0 + v.ln()) * self.idf[*id as usize];
        }
        let norm = row.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|(_, v)| *v /= norm);
        }
        row
    }
}

/// How the regressions are fitted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogisticConfig {
    pub iterations: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Threads for the optimizer's update ([`AdamW::step_on`]: the same bits on any count).
    pub threads: usize,
}

impl Default for LogisticConfig {
    fn default() -> Self {
        LogisticConfig { iterations: 150, lr: 0.05, weight_decay: 1e-4, threads: 1 }
    }
}

/// A multinomial logistic regression over sparse features.
#[derive(Clone, Debug)]
pub struct SoftmaxRegression {
    /// `W: [V, C]` (a feature's weights for every class are contiguous).
    weight: Vec<f32>,
    bias: Vec<f32>,
    classes: usize,
}

impl SoftmaxRegression {
    /// Fits `classes` classes to `rows` labelled `labels` (each `< classes`) over
    /// `features` columns, advancing `progress` once per iteration.
    pub fn fit(
        rows: &[SparseRow],
        labels: &[usize],
        features: usize,
        classes: usize,
        config: LogisticConfig,
        progress: &ProgressBar,
    ) -> Self {
        let mut model = SoftmaxRegression { weight: vec![0.0; features * classes], bias: vec![0.0; classes], classes };
        let mut optimizer =
            AdamW::new(AdamWConfig { lr: config.lr, weight_decay: config.weight_decay, ..AdamWConfig::default() });
        let mut d_weight = vec![0.0f32; model.weight.len()];
        let mut d_bias = vec![0.0f32; classes];
        let inv_n = 1.0 / rows.len().max(1) as f32;
        let mut p = vec![0.0f32; classes];
        for _ in 0..config.iterations {
            d_weight.iter_mut().for_each(|g| *g = 0.0);
            d_bias.iter_mut().for_each(|g| *g = 0.0);
            // the loops over classes at the CPU's vector width (the same bits: no fused
            // multiply-add either way)
            vectorized(
                #[inline(always)]
                || {
                    for (row, &label) in rows.iter().zip(labels) {
                        model.probabilities_into(row, &mut p);
                        p[label] -= 1.0;
                        p.iter_mut().for_each(|v| *v *= inv_n);
                        for (g, &d) in d_bias.iter_mut().zip(&p) {
                            *g += d;
                        }
                        for &(j, x) in row {
                            let g = &mut d_weight[j as usize * classes..(j as usize + 1) * classes];
                            for (g, &d) in g.iter_mut().zip(&p) {
                                *g += x * d;
                            }
                        }
                    }
                },
            );
            let lr = optimizer.config.lr;
            optimizer.step_on(
                lr,
                &mut [
                    ParamSlot { value: &mut model.weight, grad: &d_weight, decay: true },
                    ParamSlot { value: &mut model.bias, grad: &d_bias, decay: false },
                ],
                config.threads,
            );
            progress.inc(1);
        }
        model
    }

    /// `softmax(Wᵀx + b)` into `p` (`[C]`).
    #[inline(always)]
    pub fn probabilities_into(&self, row: &SparseRow, p: &mut [f32]) {
        p.copy_from_slice(&self.bias);
        for &(j, x) in row {
            let w = &self.weight[j as usize * self.classes..(j as usize + 1) * self.classes];
            for (p, &w) in p.iter_mut().zip(w) {
                *p += x * w;
            }
        }
        let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0;
        for v in p.iter_mut() {
            *v = (*v - max).exp();
            total += *v;
        }
        p.iter_mut().for_each(|v| *v /= total);
    }

    /// The most probable class of each row.
    pub fn predict(&self, rows: &[SparseRow]) -> Vec<usize> {
        let mut p = vec![0.0f32; self.classes];
        rows.iter()
            .map(|row| {
                self.probabilities_into(row, &mut p);
                arg_max(&p)
            })
            .collect()
    }
}

/// One model per level, the levels in parallel: `fit_and_predict(labels, classes)`
/// gets the training documents' classes at the level and returns its predictions.
pub fn per_level_predictions(
    train_labels: &[Vec<usize>],
    levels: &[usize],
    fit_and_predict: impl Fn(&[usize], usize) -> Vec<usize> + Sync,
) -> Vec<Vec<usize>> {
    levels
        .par_iter()
        .enumerate()
        .map(|(h, &classes)| {
            let labels: Vec<usize> = train_labels.iter().map(|l| l[h]).collect();
            fit_and_predict(&labels, classes)
        })
        .collect()
}

/// The index of the first largest value (0 for an empty slice).
pub fn arg_max<T: PartialOrd>(values: &[T]) -> usize {
    (0..values.len()).fold(0, |best, k| if values[k] > values[best] { k } else { best })
}

/// How the boosted trees are grown.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoostingConfig {
    pub rounds: usize,
    pub max_depth: usize,
    /// Shrinkage η.
    pub eta: f64,
    /// L2 penalty λ on leaf values.
    pub lambda: f64,
    /// Smallest hessian sum in a child (XGBoost's `min_child_weight`).
    pub min_child_weight: f64,
    /// Bins of a word's TF-IDF values where it occurs ([`FeatureBins`]); 1 (the default)
    /// splits on whether it occurs only, which scored best on the DBpedia slice (finer
    /// thresholds fitted its 3,500 training documents too closely: README, "Text").
    pub max_bins: usize,
}

impl Default for BoostingConfig {
    fn default() -> Self {
        BoostingConfig { rounds: 60, max_depth: 4, eta: 0.3, lambda: 1.0, min_child_weight: 1.0, max_bins: 1 }
    }
}

/// Where each feature's training values are cut into bins (XGBoost's `hist` method): a
/// value `v > 0` is in bin `1 + #{c ∈ cuts_j : c < v}`, an absent word (`v = 0`) in bin 0,
/// so that "bin ≤ b" is "`v ≤ c_b`" (bin 0: "the word is absent"). Each feature's cuts are
/// its distinct values but the largest where it has at most `max_bins` of them, otherwise
/// `max_bins − 1` quantiles of its values.
#[derive(Clone, Debug)]
pub struct FeatureBins {
    cuts: Vec<Vec<f32>>,
    /// Where feature `j`'s bins 1.. start in a flat histogram of every feature's bins,
    /// and the feature of each place in it.
    offsets: Vec<usize>,
    feature_of: Vec<u32>,
}

impl FeatureBins {
    /// The bins of `features` features' values over the training `rows`.
    pub fn fit(rows: &[SparseRow], features: usize, max_bins: usize) -> Self {
        let mut values: Vec<Vec<f32>> = vec![Vec::new(); features];
        for row in rows {
            for &(j, v) in row {
                values[j as usize].push(v);
            }
        }
        let cuts: Vec<Vec<f32>> = values
            .into_iter()
            .map(|mut v| {
                v.sort_by(f32::total_cmp);
                let mut distinct = v.clone();
                distinct.dedup();
                let mut cuts = if distinct.len() <= max_bins {
                    distinct
                } else {
                    let mut q: Vec<f32> = (1..max_bins).map(|k| v[k * v.len() / max_bins]).collect();
                    q.dedup();
                    q
                };
                cuts.retain(|&c| v.last().is_some_and(|&max| c < max));
                cuts
            })
            .collect();
        let mut offsets = Vec::with_capacity(features + 1);
        let mut at = 0;
        for c in &cuts {
            offsets.push(at);
            at += c.len() + 1;
        }
        offsets.push(at);
        let feature_of = (0..features).flat_map(|j| std::iter::repeat_n(j as u32, cuts[j].len() + 1)).collect();
        FeatureBins { cuts, offsets, feature_of }
    }

    /// The bin of feature `j`'s value `v` (1.. where its word occurs).
    pub fn bin(&self, j: u32, v: f32) -> usize {
        1 + self.cuts[j as usize].partition_point(|&c| c < v)
    }

    /// `row` as the places of its values' bins in a flat histogram of every feature's
    /// bins 1.. (feature by feature, so sorted as the row is).
    pub fn binned(&self, row: &SparseRow) -> Vec<u32> {
        row.iter().map(|&(j, v)| (self.offsets[j as usize] + self.bin(j, v) - 1) as u32).collect()
    }

    /// The bin of feature `j` in a `binned` row (0: its word is absent).
    fn bin_in(&self, binned: &[u32], j: u32) -> usize {
        let (first, end) = (self.offsets[j as usize] as u32, self.offsets[j as usize + 1] as u32);
        let at = binned.partition_point(|&k| k < first);
        binned.get(at).filter(|&&k| k < end).map_or(0, |&k| (k - first) as usize + 1)
    }

    /// Bins of every feature, absent words' left out.
    fn len(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }
}

#[derive(Clone, Debug)]
enum Node {
    /// Documents whose `feature` is above `threshold` go to `above`, the others (the
    /// feature's word absent, 0) to `below`.
    Split {
        feature: u32,
        threshold: f32,
        above: usize,
        below: usize,
    },
    Leaf(f32),
}

/// One regression tree over splits of a feature's TF-IDF value.
#[derive(Clone, Debug)]
struct Tree {
    nodes: Vec<Node>,
}

/// The value of `feature` in `row`, 0 where its word is absent.
fn value_of(row: &SparseRow, feature: u32) -> f32 {
    row.binary_search_by_key(&feature, |&(j, _)| j).map_or(0.0, |k| row[k].1)
}

impl Tree {
    fn value(&self, row: &SparseRow) -> f32 {
        let mut at = 0;
        loop {
            match self.nodes[at] {
                Node::Leaf(w) => return w,
                Node::Split { feature, threshold, above, below } => {
                    at = if value_of(row, feature) > threshold { above } else { below };
                }
            }
        }
    }

    /// Grows a tree on gradients `g` and hessians `h` of `rows` (the places of their words'
    /// bins in `bins`' flat histogram, [`FeatureBins::binned`]), each node split greedily
    /// until `max_depth`.
    fn fit(rows: &[Vec<u32>], g: &[f64], h: &[f64], bins: &FeatureBins, config: BoostingConfig) -> Tree {
        let mut nodes = Vec::new();
        // each bin's (gradient, hessian) sums, side by side: one cache line per word
        let mut sums = vec![[0.0f64; 2]; bins.len()];
        // the bins seen at a node, each once, in the order first seen (and a place past
        // them that the loop below writes to)
        let mut touched = vec![0u32; bins.len() + 1];
        let score = |g: f64, h: f64| g * g / (h + config.lambda);
        // (node index, its documents, depth)
        let mut open: Vec<(usize, Vec<usize>, usize)> = vec![(0, (0..rows.len()).collect(), 0)];
        nodes.push(Node::Leaf(0.0));
        while let Some((at, members, depth)) = open.pop() {
            let (g_all, h_all) = members.iter().fold((0.0, 0.0), |(a, b), &i| (a + g[i], b + h[i]));
            let leaf = Node::Leaf((-g_all / (h_all + config.lambda)) as f32);
            if depth >= config.max_depth || h_all < 2.0 * config.min_child_weight {
                nodes[at] = leaf;
                continue;
            }
            // A bin is new at this node while its hessian sum is 0 (every h > 0). It is
            // written to the next place every time and that place kept only when new, with
            // no branch: the branch's line held a quarter of the trees' samples in `perf`,
            // and one epoch with the trees ran 23.1 s with it, 21.7 without.
            let mut seen = 0;
            for &i in &members {
                let (g_i, h_i) = (g[i], h[i]);
                for &k in &rows[i] {
                    touched[seen] = k;
                    let k = k as usize;
                    let sum = &mut sums[k];
                    seen += usize::from(sum[1] == 0.0);
                    *sum = [sum[0] + g_i, sum[1] + h_i];
                }
            }
            let parent = score(g_all, h_all);
            // (gain, feature, the last bin below the split)
            let mut best: Option<(f64, u32, usize)> = None;
            for &k in &touched[..seen] {
                // a bin of a feature already searched (its bins cleared after)
                if sums[k as usize][1] == 0.0 {
                    continue;
                }
                let j = bins.feature_of[k as usize];
                let (first, end) = (bins.offsets[j as usize], bins.offsets[j as usize + 1]);
                let (mut g_word, mut h_word) = (0.0, 0.0);
                for [g, h] in &sums[first..end] {
                    (g_word, h_word) = (g_word + g, h_word + h);
                }
                // below the split: the word absent, then its bins one by one (each cleared
                // once read)
                let (mut gl, mut hl) = (g_all - g_word, h_all - h_word);
                for (b, sum) in sums[first..end].iter_mut().enumerate() {
                    let (gr, hr) = (g_all - gl, h_all - hl);
                    if hl >= config.min_child_weight && hr >= config.min_child_weight {
                        let gain = score(gl, hl) + score(gr, hr) - parent;
                        if gain > 1e-9 && best.is_none_or(|(g, f, c)| gain > g || (gain == g && (j, b) < (f, c))) {
                            best = Some((gain, j, b));
                        }
                    }
                    (gl, hl) = (gl + sum[0], hl + sum[1]);
                    *sum = [0.0; 2];
                }
            }
            match best {
                None => nodes[at] = leaf,
                Some((_, feature, b)) => {
                    let threshold = if b == 0 { 0.0 } else { bins.cuts[feature as usize][b - 1] };
                    let (high, low): (Vec<usize>, Vec<usize>) =
                        members.into_iter().partition(|&i| bins.bin_in(&rows[i], feature) > b);
                    let (above, below) = (nodes.len(), nodes.len() + 1);
                    nodes.push(Node::Leaf(0.0));
                    nodes.push(Node::Leaf(0.0));
                    nodes[at] = Node::Split { feature, threshold, above, below };
                    open.push((above, high, depth + 1));
                    open.push((below, low, depth + 1));
                }
            }
        }
        Tree { nodes }
    }
}

/// A multi-class boosted ensemble: `rounds × classes` trees.
#[derive(Clone, Debug)]
pub struct BoostedTrees {
    /// `trees[round][class]`.
    trees: Vec<Vec<Tree>>,
    eta: f32,
    classes: usize,
}

impl BoostedTrees {
    /// Fits `classes` classes to `rows` labelled `labels`; the classes' trees of a round
    /// grow in parallel; `progress` advances once per round.
    pub fn fit(
        rows: &[SparseRow],
        labels: &[usize],
        features: usize,
        classes: usize,
        config: BoostingConfig,
        progress: &ProgressBar,
    ) -> Self {
        let n = rows.len();
        let bins = FeatureBins::fit(rows, features, config.max_bins.max(1));
        let binned: Vec<Vec<u32>> = rows.iter().map(|row| bins.binned(row)).collect();
        let mut scores = vec![0.0f64; n * classes];
        let mut trees = Vec::with_capacity(config.rounds);
        let mut p = vec![0.0f64; n * classes];
        for _ in 0..config.rounds {
            for (s, p) in scores.chunks_exact(classes).zip(p.chunks_exact_mut(classes)) {
                let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = s
                    .iter()
                    .zip(p.iter_mut())
                    .map(|(&s, p)| {
                        *p = (s - max).exp();
                        *p
                    })
                    .sum();
                p.iter_mut().for_each(|v| *v /= total);
            }
            let round: Vec<Tree> = (0..classes)
                .into_par_iter()
                .map(|k| {
                    let g: Vec<f64> =
                        (0..n).map(|i| p[i * classes + k] - f64::from(u8::from(labels[i] == k))).collect();
                    let h: Vec<f64> =
                        (0..n).map(|i| (p[i * classes + k] * (1.0 - p[i * classes + k])).max(1e-6)).collect();
                    Tree::fit(&binned, &g, &h, &bins, config)
                })
                .collect();
            for (i, row) in rows.iter().enumerate() {
                for (k, tree) in round.iter().enumerate() {
                    scores[i * classes + k] += config.eta * f64::from(tree.value(row));
                }
            }
            trees.push(round);
            progress.inc(1);
        }
        BoostedTrees { trees, eta: config.eta as f32, classes }
    }

    /// The class with the highest score, for each row.
    pub fn predict(&self, rows: &[SparseRow]) -> Vec<usize> {
        rows.iter()
            .map(|row| {
                let mut s = vec![0.0f32; self.classes];
                for round in &self.trees {
                    for (s, tree) in s.iter_mut().zip(round) {
                        *s += self.eta * tree.value(row);
                    }
                }
                arg_max(&s)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_idf_rows_are_unit_length_and_weigh_rare_words_up() {
        let texts = ["apple banana", "apple cherry", "apple banana banana"];
        let vocab = Vocabulary::build(texts, 1, 100);
        let tfidf = TfIdf::fit(&vocab, texts);
        let row = tfidf.transform(&vocab, "apple cherry durian");
        let norm: f32 = row.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-6);
        let value = |w: &str| row.iter().find(|(i, _)| *i == vocab.lookup(w)).map(|(_, v)| *v).unwrap();
        assert!(value("cherry") > value("apple"), "a word in one document outweighs one in all");
        assert_eq!(row.len(), 2, "unknown words are dropped");
    }

    /// Synthetic: each class has its own word; the regression must separate them.
    #[test]
    fn the_regression_learns_separable_classes() {
        let texts = ["red a", "red b", "green a", "green c", "blue b", "blue c"];
        let labels = [0, 0, 1, 1, 2, 2];
        let vocab = Vocabulary::build(texts, 1, 100);
        let tfidf = TfIdf::fit(&vocab, texts);
        let rows: Vec<SparseRow> = texts.iter().map(|t| tfidf.transform(&vocab, t)).collect();
        let model =
            SoftmaxRegression::fit(&rows, &labels, vocab.len(), 3, LogisticConfig::default(), &ProgressBar::hidden());
        assert_eq!(model.predict(&rows), labels);
    }

    /// Synthetic: the class is decided by two words jointly (an interaction a linear
    /// model over single words cannot express; a depth-2 tree can).
    #[test]
    fn boosted_trees_learn_an_interaction_of_two_words() {
        let texts = ["x y q", "x r", "y s", "t u", "x y v", "x w", "y z", "o p"];
        let labels = [1, 0, 0, 0, 1, 0, 0, 0];
        let vocab = Vocabulary::build(texts, 1, 100);
        let tfidf = TfIdf::fit(&vocab, texts);
        let rows: Vec<SparseRow> = texts.iter().map(|t| tfidf.transform(&vocab, t)).collect();
        let config = BoostingConfig { min_child_weight: 0.01, ..BoostingConfig::default() };
        let model = BoostedTrees::fit(&rows, &labels, vocab.len(), 2, config, &ProgressBar::hidden());
        assert_eq!(model.predict(&rows), labels);
    }

    /// Synthetic: every document has the word `x`; the class is whether it is the
    /// document's only word (TF-IDF 1) or one of four (0.22), and every other word
    /// occurs once (too little weight for a child). Whether `x` occurs says nothing; its
    /// value, split on a threshold, says it all.
    #[test]
    fn boosted_trees_split_on_a_words_weight_not_only_its_presence() {
        let texts = ["x", "x", "x", "x", "x a1 a2 a3", "x b1 b2 b3", "x c1 c2 c3", "x d1 d2 d3"];
        let labels = [1, 1, 1, 1, 0, 0, 0, 0];
        let vocab = Vocabulary::build(texts, 1, 100);
        let tfidf = TfIdf::fit(&vocab, texts);
        let rows: Vec<SparseRow> = texts.iter().map(|t| tfidf.transform(&vocab, t)).collect();
        let fit = |max_bins| {
            let config = BoostingConfig { rounds: 5, max_bins, ..BoostingConfig::default() };
            BoostedTrees::fit(&rows, &labels, vocab.len(), 2, config, &ProgressBar::hidden()).predict(&rows)
        };
        assert_eq!(fit(16), labels);
        assert_ne!(fit(1), labels, "on presence alone (the default), nothing to split on");
        // the cuts: `x`'s two values, the lower one the cut; each other word one value, no cut
        let bins = FeatureBins::fit(&rows, vocab.len(), 16);
        let x = vocab.lookup("x") as usize;
        assert_eq!(bins.cuts[x].len(), 1);
        assert!((0.1..0.5).contains(&bins.cuts[x][0]), "{:?}", bins.cuts[x]);
        assert!(bins.cuts.iter().enumerate().all(|(j, c)| j == x || c.is_empty()));
        assert_eq!(bins.bin(x as u32, rows[0][0].1), 2);
        let a1 = vocab.lookup("a1");
        assert_eq!((bins.bin_in(&bins.binned(&rows[4]), x as u32), bins.bin_in(&bins.binned(&rows[0]), a1)), (1, 0));
    }

    /// Quantile cuts where a feature has more distinct values than bins: each bin holds
    /// about as many values, and "bin ≤ b" is "value ≤ its b-th cut".
    #[test]
    fn feature_bins_cut_many_values_at_quantiles() {
        let rows: Vec<SparseRow> = (1..=100).map(|k| vec![(0, k as f32 / 100.0)]).collect();
        let bins = FeatureBins::fit(&rows, 1, 4);
        assert_eq!(bins.cuts[0], vec![0.26, 0.51, 0.76]);
        for row in &rows {
            let v = row[0].1;
            let b = bins.bin(0, v);
            assert_eq!(bins.binned(row), vec![b as u32 - 1]);
            assert_eq!(bins.bin_in(&bins.binned(row), 0), b);
            for (k, &c) in bins.cuts[0].iter().enumerate() {
                assert_eq!(b <= k + 1, v <= c, "{v} in bin {b}");
            }
        }
    }
}
