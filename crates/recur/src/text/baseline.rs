//! The deck's first baseline ("REG LOG"): TF-IDF features and, per level, a multinomial
//! logistic regression (one class per document and level, as in the data).
//!
//! Features: `x_j = (1 + ln n_j) · idf_j`, L2-normalised per document, with
//! `idf_j = ln((1 + N) / (1 + df_j)) + 1` over the N training documents (scikit-learn's
//! smoothed, sublinear TF-IDF); words outside the training vocabulary are dropped.
//! Model: `p = softmax(Wᵀx + b)`, `W: [V, C]`, fitted on the whole training set by
//! AdamW on the mean cross-entropy (full-batch, so the result depends on the seed of
//! nothing), with decoupled weight decay on `W`.

use rayon::prelude::*;

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
}

impl Default for LogisticConfig {
    fn default() -> Self {
        LogisticConfig { iterations: 150, lr: 0.05, weight_decay: 1e-4 }
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
    /// `features` columns.
    pub fn fit(rows: &[SparseRow], labels: &[usize], features: usize, classes: usize, config: LogisticConfig) -> Self {
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
            let lr = optimizer.config.lr;
            optimizer.step(
                lr,
                &mut [
                    ParamSlot { value: &mut model.weight, grad: &d_weight, decay: true },
                    ParamSlot { value: &mut model.bias, grad: &d_bias, decay: false },
                ],
            );
        }
        model
    }

    /// `softmax(Wᵀx + b)` into `p` (`[C]`).
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
                (0..self.classes).fold(0, |best, c| if p[c] > p[best] { c } else { best })
            })
            .collect()
    }
}

/// One regression per level, fitted in parallel; returns each level's predicted class
/// for every row of `test`.
pub fn logistic_regression_per_level(
    train: &[SparseRow],
    train_labels: &[Vec<usize>],
    test: &[SparseRow],
    features: usize,
    levels: &[usize],
    config: LogisticConfig,
) -> Vec<Vec<usize>> {
    levels
        .par_iter()
        .enumerate()
        .map(|(h, &classes)| {
            let labels: Vec<usize> = train_labels.iter().map(|l| l[h]).collect();
            SoftmaxRegression::fit(train, &labels, features, classes, config).predict(test)
        })
        .collect()
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
        let model = SoftmaxRegression::fit(&rows, &labels, vocab.len(), 3, LogisticConfig::default());
        assert_eq!(model.predict(&rows), labels);
    }
}
