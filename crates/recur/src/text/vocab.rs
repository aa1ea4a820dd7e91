//! Words and their indices: a tokenizer and a vocabulary built from the training text
//! only (a word seen only in validation or test text is `<unk>` there, as it would be
//! for a new document).

use std::collections::HashMap;

/// Index of the padding token (never a word; padded steps are masked everywhere).
pub const PAD: u32 = 0;
/// Index of every word outside the vocabulary.
pub const UNKNOWN: u32 = 1;

/// The words of `text`: maximal runs of letters and digits (Unicode), lower-cased.
/// Punctuation separates words and is dropped.
pub fn tokenize(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase)
}

/// Words ↔ indices; index 0 is `<pad>`, 1 is `<unk>`, then the words by descending count
/// (ties by the words' order), so the same text always gives the same vocabulary.
#[derive(Clone, Debug, PartialEq)]
pub struct Vocabulary {
    words: Vec<String>,
    index: HashMap<String, u32>,
}

impl Vocabulary {
    /// The words that occur at least `min_count` times in `texts`, at most `max_words`
    /// of them (the most frequent).
    pub fn build<'a>(texts: impl IntoIterator<Item = &'a str>, min_count: usize, max_words: usize) -> Self {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for text in texts {
            for word in tokenize(text) {
                *counts.entry(word).or_default() += 1;
            }
        }
        let mut ranked: Vec<(String, usize)> = counts.into_iter().filter(|(_, n)| *n >= min_count.max(1)).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(max_words);
        Self::from_words(ranked.into_iter().map(|(w, _)| w))
    }

    /// A vocabulary of exactly these words, in this order, after `<pad>` and `<unk>`
    /// (as saved by [`Vocabulary::words`]).
    pub fn from_words(words: impl IntoIterator<Item = String>) -> Self {
        let words: Vec<String> = ["<pad>".to_string(), "<unk>".to_string()].into_iter().chain(words).collect();
        let index = words.iter().enumerate().map(|(i, w)| (w.clone(), i as u32)).collect();
        Vocabulary { words, index }
    }

    /// Size including `<pad>` and `<unk>` (the embedding's rows).
    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.len() <= 2
    }

    /// Every entry in index order, `<pad>` and `<unk>` first.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The index of a word (already tokenized), `UNKNOWN` outside the vocabulary.
    pub fn lookup(&self, word: &str) -> u32 {
        self.index.get(word).copied().unwrap_or(UNKNOWN)
    }

    /// The first `max_tokens` words of `text` as indices; a text without any word is one
    /// `<unk>` (so every document has a length of at least 1).
    pub fn encode(&self, text: &str, max_tokens: usize) -> Vec<u32> {
        let mut ids: Vec<u32> = tokenize(text).take(max_tokens.max(1)).map(|w| self.lookup(&w)).collect();
        if ids.is_empty() {
            ids.push(UNKNOWN);
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_runs_of_letters_and_digits() {
        let words: Vec<String> = tokenize("Lions is the 6th album by São-Paulo's band (2011).").collect();
        assert_eq!(words, ["lions", "is", "the", "6th", "album", "by", "são", "paulo", "s", "band", "2011"]);
    }

    #[test]
    fn the_vocabulary_ranks_by_count_and_maps_the_rest_to_unknown() {
        let vocab = Vocabulary::build(["b a b", "c b a", "d"], 2, 10);
        assert_eq!(vocab.words(), ["<pad>", "<unk>", "b", "a"]);
        assert_eq!(vocab.encode("A b C", 10), vec![3, 2, UNKNOWN]);
        assert_eq!(vocab.encode("a b a b", 3), vec![3, 2, 3]);
        assert_eq!(vocab.encode("...", 3), vec![UNKNOWN]);
        assert_eq!(Vocabulary::build(["b a b", "c b a", "d"], 1, 2).words(), ["<pad>", "<unk>", "b", "a"]);
    }
}
