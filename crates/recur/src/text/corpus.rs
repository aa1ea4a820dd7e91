//! Labelled documents for hierarchical classification: a CSV (or Parquet) table with a
//! text column and one label column per level of the class tree, coarse to fine
//! (DBpedia: `text,l1,l2,l3`). The tree — each class and its parent one level up — is
//! read from the labels themselves; a class with two different parents is an error
//! naming both rows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::data::Table;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The class tree: the classes of each level (sorted by name) and each class's parent
/// in the level above.
#[derive(Clone, Debug, PartialEq)]
pub struct Hierarchy {
    /// The label column of each level, coarse to fine.
    pub level_names: Vec<String>,
    /// `classes[h][c]`: the name of class `c` of level `h`.
    pub classes: Vec<Vec<String>>,
    /// `parents[h][c]`: the index in level `h − 1` of class `c`'s parent (empty for `h = 0`).
    pub parents: Vec<Vec<usize>>,
}

impl Hierarchy {
    /// Number of classes of each level.
    pub fn sizes(&self) -> Vec<usize> {
        self.classes.iter().map(Vec::len).collect()
    }

    /// Classes over all levels (the width of a multi-hot label row).
    pub fn total(&self) -> usize {
        self.classes.iter().map(Vec::len).sum()
    }

    /// Where each level's classes start in a multi-hot row.
    pub fn offsets(&self) -> Vec<usize> {
        self.classes
            .iter()
            .scan(0, |start, c| {
                let at = *start;
                *start += c.len();
                Some(at)
            })
            .collect()
    }

    /// Every (child, parent) pair as positions in a multi-hot row.
    pub fn edges(&self) -> Vec<(usize, usize)> {
        let offsets = self.offsets();
        (1..self.classes.len())
            .flat_map(|h| self.parents[h].iter().enumerate().map(move |(c, &p)| (h, c, p)))
            .map(|(h, c, p)| (offsets[h] + c, offsets[h - 1] + p))
            .collect()
    }
}

/// One document and its class at every level.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub text: String,
    /// `labels[h]`: the class index at level `h`.
    pub labels: Vec<usize>,
}

/// A labelled corpus with its class tree.
#[derive(Clone, Debug)]
pub struct LabeledCorpus {
    pub hierarchy: Hierarchy,
    pub documents: Vec<Document>,
}

impl LabeledCorpus {
    /// Reads `path`: the column named `text` holds the document, every other column is a
    /// level of labels, coarse to fine, in file order.
    ///
    /// # Errors
    /// An unreadable file, no `text` column or no label column, an empty label, or a
    /// class whose parent differs between two rows (both rows named).
    pub fn read(path: &Path) -> Result<LabeledCorpus> {
        let table = Table::read(path)?;
        let text_column =
            table.column("text").ok_or_else(|| table.header_error(None, "no `text` column (the document)".into()))?;
        let level_columns: Vec<usize> = (0..table.names.len()).filter(|&c| c != text_column).collect();
        if level_columns.is_empty() {
            return Err(table.header_error(None, "no label column besides `text` (expected e.g. l1,l2,l3)".into()));
        }
        let level_names: Vec<String> = level_columns.iter().map(|&c| table.names[c].clone()).collect();
        // First pass: every class name per level, and where each class's parent was seen.
        let mut names: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); level_columns.len()];
        let mut parent_seen: Vec<BTreeMap<&str, (&str, usize)>> = vec![BTreeMap::new(); level_columns.len()];
        for (place, row) in table.rows() {
            for (h, &column) in level_columns.iter().enumerate() {
                let label = row.get(column).trim();
                if label.is_empty() {
                    return Err(table.error(place, Some(&level_names[h]), "empty label".into()));
                }
                names[h].insert(label);
                if h > 0 {
                    let parent = row.get(level_columns[h - 1]).trim();
                    match parent_seen[h].get(label) {
                        Some(&(earlier, line)) if earlier != parent => {
                            let why = format!(
                                "class `{label}` has parent `{parent}` here but `{earlier}` on {} {line}: \
                                 the labels do not form a tree",
                                table.place_unit()
                            );
                            return Err(table.error(place, Some(&level_names[h]), why));
                        }
                        Some(_) => {}
                        None => {
                            parent_seen[h].insert(label, (parent, place));
                        }
                    }
                }
            }
        }
        let classes: Vec<Vec<String>> =
            names.iter().map(|level| level.iter().map(|s| s.to_string()).collect()).collect();
        let index = |h: usize, name: &str| classes[h].binary_search_by(|c| c.as_str().cmp(name)).ok();
        let parents: Vec<Vec<usize>> = (0..classes.len())
            .map(|h| {
                if h == 0 {
                    return Vec::new();
                }
                classes[h].iter().map(|c| index(h - 1, parent_seen[h][c.as_str()].0).unwrap_or(0)).collect()
            })
            .collect();
        let documents = table
            .rows()
            .map(|(_, row)| Document {
                text: row.get(text_column).to_string(),
                labels: level_columns
                    .iter()
                    .enumerate()
                    .map(|(h, &c)| index(h, row.get(c).trim()).unwrap_or(0))
                    .collect(),
            })
            .collect();
        Ok(LabeledCorpus { hierarchy: Hierarchy { level_names, classes, parents }, documents })
    }

    /// The multi-hot label row of document `i` (`[Σ classes]`, one class per level).
    pub fn label_row(&self, i: usize) -> Vec<bool> {
        let mut row = vec![false; self.hierarchy.total()];
        for (offset, &label) in self.hierarchy.offsets().iter().zip(&self.documents[i].labels) {
            row[offset + label] = true;
        }
        row
    }
}

/// The `text` column of a CSV or Parquet file (other columns are ignored), with each
/// row's place in the file (its line, or its row for Parquet).
///
/// # Errors
/// An unreadable file or no `text` column.
pub fn read_texts(path: &Path) -> Result<Vec<(usize, String)>> {
    let table = Table::read(path)?;
    let column = table
        .column("text")
        .ok_or_else(|| table.header_error(None, "no `text` column (the documents to classify)".into()))?;
    Ok(table.rows().map(|(place, row)| (place, row.get(column).to_string())).collect())
}

/// A seeded split of `n` items into train / validation / test index lists, with the
/// given validation and test fractions (the rest trains).
///
/// # Errors
/// Fractions outside [0, 1) or summing to 1 or more.
pub fn split_indices(n: usize, validation: f64, test: f64, seed: u64) -> Result<[Vec<usize>; 3]> {
    if !(0.0..1.0).contains(&validation) || !(0.0..1.0).contains(&test) || validation + test >= 1.0 {
        return Err(Error::invalid(
            "split",
            format!("validation {validation} and test {test} must be fractions that leave some training data"),
        ));
    }
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(seed).shuffle(&mut order);
    let n_test = (n as f64 * test).round() as usize;
    let n_val = (n as f64 * validation).round() as usize;
    let test_part = order[..n_test].to_vec();
    let val_part = order[n_test..n_test + n_val].to_vec();
    let train_part = order[n_test + n_val..].to_vec();
    Ok([train_part, val_part, test_part])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Synthetic files, written for the test.
    fn read(name: &str, content: &str) -> Result<LabeledCorpus> {
        let scratch = tempfile::Builder::new().prefix("recur-corpus-").tempdir().unwrap();
        let dir = scratch.path();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        LabeledCorpus::read(&path)
    }

    #[test]
    fn the_tree_is_read_from_the_labels() {
        let c =
            read("ok.csv", "text,l1,l2\n\"a, b\",Place,Lake\nc,Agent,Person\nd,Place,River\ne,Place,Lake\n").unwrap();
        assert_eq!(c.hierarchy.classes, vec![vec!["Agent", "Place"], vec!["Lake", "Person", "River"]]);
        assert_eq!(c.hierarchy.parents[1], vec![1, 0, 1]);
        assert_eq!(c.hierarchy.edges(), vec![(2, 1), (3, 0), (4, 1)]);
        assert_eq!(c.documents[0].text, "a, b");
        assert_eq!(c.label_row(1), vec![true, false, false, true, false]);
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let e = read("two_parents.csv", "text,l1,l2\na,Place,Lake\nb,Agent,Lake\n").unwrap_err().to_string();
        assert!(e.contains("line 3, column `l2`") && e.contains("`Place` on line 2"), "{e}");
        let e = read("empty.csv", "text,l1,l2\na,Place,\n").unwrap_err().to_string();
        assert!(e.contains("line 2, column `l2`: empty label"), "{e}");
        let e = read("no_text.csv", "body,l1\na,Place\n").unwrap_err().to_string();
        assert!(e.contains("no `text` column"), "{e}");
        let e = read("no_levels.csv", "text\na\n").unwrap_err().to_string();
        assert!(e.contains("no label column"), "{e}");
    }

    #[test]
    fn the_split_is_seeded_and_disjoint() {
        let [train, val, test] = split_indices(100, 0.1, 0.2, 3).unwrap();
        assert_eq!((train.len(), val.len(), test.len()), (70, 10, 20));
        let mut all: Vec<usize> = train.iter().chain(&val).chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(split_indices(100, 0.1, 0.2, 3).unwrap()[2], test);
        assert!(split_indices(10, 0.5, 0.5, 0).is_err());
    }
}
