//! A trained HARNN as a classifier of new documents: `model.safetensors` (every tensor by
//! name; the sizes, class names, word limit and threshold in the metadata) and
//! `vocabulary.txt` (one entry per line, in index order) — what `recur text` writes into
//! its run folder, and all that [`TextClassifier::load`] needs.

use std::collections::HashMap;
use std::path::Path;

use super::harnn::{decide, Harnn, HarnnConfig, PaddedTokens};
use super::vocab::{tokenize, Vocabulary};
use crate::error::{Error, Result};
use crate::io::model_file::fill_from_file;
use crate::io::{write_atomically, write_f32, TensorFile};
use crate::train::checkpoint::json;

const CONFIG: &str = "recur.harnn_config";
const CLASSES: &str = "recur.classes";
const LEVELS: &str = "recur.levels";
const MAX_TOKENS: &str = "recur.max_tokens";
const THRESHOLD: &str = "recur.threshold";

/// A model with what it takes to read raw text and name its classes.
#[derive(Clone, Debug)]
pub struct TextClassifier {
    pub model: Harnn<f32>,
    pub vocabulary: Vocabulary,
    /// The label column of each level.
    pub level_names: Vec<String>,
    /// `classes[h][c]`: the name of class `c` of level `h`.
    pub classes: Vec<Vec<String>>,
    pub max_tokens: usize,
    pub threshold: f64,
}

/// The classes chosen for one document: per level, (class, score) by descending score.
pub type Classification = Vec<Vec<(String, f32)>>;

/// One document's attention over its words, per level.
type WordAttention = Vec<Vec<f32>>;

impl TextClassifier {
    /// Writes `model.safetensors` and `vocabulary.txt` into `dir`, atomically each.
    ///
    /// # Errors
    /// The folder is not writable.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let metadata = HashMap::from([
            (CONFIG.to_string(), json("model config", self.model.config())?),
            (CLASSES.to_string(), json("classes", &self.classes)?),
            (LEVELS.to_string(), json("levels", &self.level_names)?),
            (MAX_TOKENS.to_string(), json("max_tokens", &self.max_tokens)?),
            (THRESHOLD.to_string(), json("threshold", &self.threshold)?),
        ]);
        let tensors: Vec<_> = self.model.clone().named_mut().into_iter().map(|(n, t)| (n, t.clone())).collect();
        write_f32(dir.join("model.safetensors"), &tensors, metadata)?;
        let words: String = self.vocabulary.words().iter().map(|w| format!("{w}\n")).collect();
        write_atomically(&dir.join("vocabulary.txt"), words.as_bytes())
    }

    /// Reads a run folder written by [`TextClassifier::save`].
    ///
    /// # Errors
    /// A missing or unreadable file, metadata that is absent or malformed, a missing,
    /// extra, misshaped or non-finite tensor (named), or a vocabulary whose size differs
    /// from the embedding's rows.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("model.safetensors");
        let file = TensorFile::read(&path)?;
        let config: HarnnConfig = file.meta(CONFIG)?;
        let classes: Vec<Vec<String>> = file.meta(CLASSES)?;
        let level_names: Vec<String> = file.meta(LEVELS)?;
        let sizes: Vec<usize> = classes.iter().map(Vec::len).collect();
        if sizes != config.levels || level_names.len() != sizes.len() {
            return Err(Error::Format {
                path,
                why: format!(
                    "metadata names {} levels with {sizes:?} classes; the model has {:?}",
                    level_names.len(),
                    config.levels
                ),
            });
        }
        let mut model = Harnn::new(config, 0)?;
        fill_from_file(model.named_mut(), &file)?;
        let vocab_path = dir.join("vocabulary.txt");
        let text =
            std::fs::read_to_string(&vocab_path).map_err(|source| Error::Io { path: vocab_path.clone(), source })?;
        let words: Vec<String> = text.lines().map(str::to_string).collect();
        if words.len() != model.config().vocab_size || words.first().map(String::as_str) != Some("<pad>") {
            return Err(Error::Format {
                path: vocab_path,
                why: format!(
                    "{} lines, expected {} starting with <pad> and <unk> (the model's embedding rows)",
                    words.len(),
                    model.config().vocab_size
                ),
            });
        }
        let vocabulary = Vocabulary::from_words(words.into_iter().skip(2));
        Ok(TextClassifier {
            model,
            vocabulary,
            level_names,
            classes,
            max_tokens: file.meta(MAX_TOKENS)?,
            threshold: file.meta(THRESHOLD)?,
        })
    }

    /// The final scores `[texts, Σ classes]`, in batches of 32.
    ///
    /// # Errors
    /// None for texts the vocabulary encodes (every text is); kept for the model's checks.
    pub fn scores(&self, texts: &[&str]) -> Result<Vec<f32>> {
        Ok(self.read(texts)?.0)
    }

    /// Scores and, per text and level, the attention `ᾱ` over the text's words (the
    /// first `max_tokens`, in order).
    fn read(&self, texts: &[&str]) -> Result<(Vec<f32>, Vec<WordAttention>)> {
        let total = self.model.config().total_classes();
        let mut scores = Vec::with_capacity(texts.len() * total);
        let mut attention = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(32) {
            let encoded: Vec<Vec<u32>> = chunk.iter().map(|t| self.vocabulary.encode(t, self.max_tokens)).collect();
            let batch = PaddedTokens::new(&encoded.iter().map(Vec::as_slice).collect::<Vec<_>>());
            let out = self.model.forward(&batch.view())?;
            scores.extend(out.scores);
            let size = chunk.len();
            for (b, &len) in batch.lengths.iter().enumerate() {
                attention
                    .push(out.word_attention.iter().map(|w| (0..len).map(|t| w[t * size + b]).collect()).collect());
            }
        }
        Ok((scores, attention))
    }

    /// The `k` words each level attended to most in `text`, with their weights (which
    /// sum to 1 over the text's words), by descending weight.
    ///
    /// # Errors
    /// As [`TextClassifier::scores`].
    pub fn attended_words(&self, text: &str, k: usize) -> Result<Vec<Vec<(String, f32)>>> {
        let (_, attention) = self.read(&[text])?;
        let words: Vec<String> = tokenize(text).take(self.max_tokens.max(1)).collect();
        Ok(attention[0]
            .iter()
            .map(|weights| {
                let mut ranked: Vec<(String, f32)> = weights
                    .iter()
                    .enumerate()
                    .map(|(t, &w)| (words.get(t).cloned().unwrap_or_else(|| "<unk>".into()), w))
                    .collect();
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
                ranked.truncate(k);
                ranked
            })
            .collect())
    }

    /// The classes of each text: at every level those scoring at least the threshold,
    /// or the best one.
    ///
    /// # Errors
    /// As [`TextClassifier::scores`].
    pub fn classify(&self, texts: &[&str]) -> Result<Vec<Classification>> {
        let levels = &self.model.config().levels;
        let total = self.model.config().total_classes();
        let scores = self.scores(texts)?;
        let chosen = decide(&scores, levels, self.threshold);
        Ok(scores
            .chunks_exact(total)
            .zip(chosen.chunks_exact(total))
            .map(|(s, c)| {
                let mut start = 0;
                levels
                    .iter()
                    .zip(&self.classes)
                    .map(|(&n, names)| {
                        let mut picked: Vec<(String, f32)> =
                            (0..n).filter(|&k| c[start + k]).map(|k| (names[k].clone(), s[start + k])).collect();
                        picked.sort_by(|a, b| b.1.total_cmp(&a.1));
                        start += n;
                        picked
                    })
                    .collect()
            })
            .collect())
    }
}
