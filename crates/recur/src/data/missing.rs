//! Cells that hold no value. An empty cell, `NA` and `NaN` (any case; Parquet nulls) never
//! do; data files from historians and instruments add their own marks: status strings in a
//! numeric column (OSIsoft PI's `Bad`, `I/O Timeout`, `Shutdown`, `Calc Failed`) and
//! sentinel numbers (PhysioNet 2012 writes an unknown weight or height as `-1`). The
//! config names them (`data.missing_values` for every signal,
//! `data.missing_values_per_signal` for one), and every reader of data files — wide, long,
//! `recur inspect`, `recur stream` — takes them as missing, so that the mask, not a made-up
//! value, carries them.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Whether a cell holds no value whatever the config says: empty, `NA` or `NaN` (any case).
pub fn is_missing(cell: &str) -> bool {
    cell.is_empty() || cell.eq_ignore_ascii_case("NA") || cell.eq_ignore_ascii_case("nan")
}

/// The marks that mean "no value" in a data file, beyond those of [`is_missing`].
/// A mark that reads as a number matches a cell by value (`-1` matches `-1.0`); any other
/// matches the cell's text exactly (case and inner spaces count; cells are trimmed).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MissingValues {
    /// Marks in every signal.
    pub everywhere: Vec<String>,
    /// Marks in one signal only (signal name → marks), such as a sentinel that is a real
    /// value elsewhere.
    pub per_signal: BTreeMap<String, Vec<String>>,
}

impl MissingValues {
    /// Marks from a config, trimmed.
    ///
    /// # Errors
    /// An empty mark (empty cells are missing already), naming its key.
    pub fn new(everywhere: &[String], per_signal: &BTreeMap<String, Vec<String>>) -> Result<MissingValues> {
        let trimmed = |key: &str, marks: &[String]| -> Result<Vec<String>> {
            marks
                .iter()
                .map(|m| match m.trim() {
                    "" => Err(Error::invalid(key, "an empty mark: empty cells are missing already")),
                    m => Ok(m.to_string()),
                })
                .collect()
        };
        Ok(MissingValues {
            everywhere: trimmed("data.missing_values", everywhere)?,
            per_signal: per_signal
                .iter()
                .map(|(name, marks)| {
                    Ok((name.clone(), trimmed(&format!("data.missing_values_per_signal.`{name}`"), marks)?))
                })
                .collect::<Result<_>>()?,
        })
    }

    /// The reader of the cells of `signal` (a column of a wide file, a signal of a long one).
    pub fn of(&self, signal: &str) -> CellReader {
        let mut reader = CellReader::default();
        for mark in self.marks_of(signal) {
            match (mark.parse::<f32>(), mark.parse::<f64>()) {
                (Ok(a), Ok(b)) => {
                    reader.f32_marks.push(a);
                    reader.f64_marks.push(b);
                }
                _ => reader.text_marks.push(mark.clone()),
            }
        }
        reader
    }

    /// The marks of `signal`: those of every signal, then its own.
    pub fn marks_of<'a>(&'a self, signal: &str) -> impl Iterator<Item = &'a String> {
        self.everywhere.iter().chain(self.per_signal.get(signal).into_iter().flatten())
    }

    /// The first signal named in [`MissingValues::per_signal`] that `known` does not hold.
    pub fn unknown_signal<'a>(&'a self, known: &[&str]) -> Option<&'a str> {
        self.per_signal.keys().map(String::as_str).find(|name| !known.contains(name))
    }
}

/// What a cell holds, as read by a [`CellReader`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<F> {
    /// No value: empty, `NA`, `NaN`, or one of the signal's marks.
    Missing,
    Number(F),
    /// Text that is neither a number nor a mark.
    Text,
}

/// Reads the cells of one signal, its marks of "no value" applied ([`MissingValues::of`]).
#[derive(Clone, Debug, Default)]
pub struct CellReader {
    text_marks: Vec<String>,
    // each number mark parsed as the cell it is compared with, so that the two round alike
    f32_marks: Vec<f32>,
    f64_marks: Vec<f64>,
    decimal_comma: bool,
}

/// A number type cells are read as (`f32`: wide files and streams; `f64`: long files).
pub trait CellNumber: Copy + PartialEq + std::str::FromStr {
    fn marks(reader: &CellReader) -> &[Self];
    fn is_finite(self) -> bool;
}

impl CellNumber for f32 {
    fn marks(reader: &CellReader) -> &[f32] {
        &reader.f32_marks
    }

    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
}

impl CellNumber for f64 {
    fn marks(reader: &CellReader) -> &[f64] {
        &reader.f64_marks
    }

    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
}

impl CellReader {
    /// This reader for a file whose fields `delimiter` separates: separated otherwise than
    /// by commas (`;`, tabs: [`crate::data::csv_delimiter`]), it also reads `12,5` as 12.5.
    pub fn separated_by(mut self, delimiter: char) -> CellReader {
        self.decimal_comma = delimiter != ',';
        self
    }

    /// A trimmed cell as a number, missing, or text.
    pub fn read<F: CellNumber>(&self, cell: &str) -> Cell<F> {
        if is_missing(cell) {
            return Cell::Missing;
        }
        let number = cell.parse::<F>().ok().or_else(|| {
            let comma = self.decimal_comma && cell.contains(',') && !cell.contains('.');
            comma.then(|| cell.replacen(',', ".", 1).parse::<F>().ok()).flatten()
        });
        match number {
            Some(v) if F::marks(self).contains(&v) => Cell::Missing,
            Some(v) => Cell::Number(v),
            None if self.text_marks.iter().any(|m| m == cell) => Cell::Missing,
            None => Cell::Text,
        }
    }

    /// A trimmed cell as a finite number, or `None` where it holds no value.
    ///
    /// # Errors
    /// Text that is not a mark, or a number that is not finite: why, for the caller to
    /// place (file, line, column).
    pub fn value<F: CellNumber>(&self, cell: &str) -> std::result::Result<Option<F>, String> {
        match self.read::<F>(cell) {
            Cell::Missing => Ok(None),
            Cell::Number(v) if v.is_finite() => Ok(Some(v)),
            Cell::Number(_) => Err(format!("`{cell}` is not finite")),
            Cell::Text => {
                Err(format!("`{cell}` is not a number (if it means \"no value\", list it in data.missing_values)"))
            }
        }
    }

    /// Whether a trimmed cell holds no value (for categorical columns, whose values are text).
    pub fn is_missing(&self, cell: &str) -> bool {
        matches!(self.read::<f64>(cell), Cell::Missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(everywhere: &[&str], per_signal: &[(&str, &[&str])]) -> MissingValues {
        let owned = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let per: BTreeMap<String, Vec<String>> = per_signal.iter().map(|(n, m)| (n.to_string(), owned(m))).collect();
        MissingValues::new(&owned(everywhere), &per).unwrap()
    }

    #[test]
    fn empty_na_and_nan_are_missing_without_marks() {
        let reader = MissingValues::default().of("a");
        for cell in ["", "NA", "na", "NaN", "nan"] {
            assert_eq!(reader.read::<f32>(cell), Cell::Missing, "{cell}");
        }
        assert_eq!(reader.read::<f32>("2.5"), Cell::Number(2.5));
        assert_eq!(reader.read::<f32>("Bad"), Cell::Text);
        assert_eq!(reader.value::<f32>("NA"), Ok(None));
        assert_eq!(reader.value::<f64>("-3e2"), Ok(Some(-300.0)));
        assert_eq!(reader.value::<f32>("inf"), Err("`inf` is not finite".to_string()));
        let err = reader.value::<f32>("Bad").unwrap_err();
        assert!(err.starts_with("`Bad` is not a number") && err.contains("data.missing_values"), "{err}");
    }

    #[test]
    fn text_marks_match_exactly_and_number_marks_by_value() {
        let missing = marks(&["Bad", "I/O Timeout", "-9999"], &[]);
        let reader = missing.of("a");
        assert_eq!(reader.read::<f32>("Bad"), Cell::Missing);
        assert_eq!(reader.read::<f32>("I/O Timeout"), Cell::Missing);
        assert_eq!(reader.read::<f32>("bad"), Cell::Text, "text marks keep their case");
        assert_eq!(reader.read::<f64>("-9999.0"), Cell::Missing);
        assert_eq!(reader.read::<f32>("-9999.00"), Cell::Missing);
        assert_eq!(reader.read::<f32>("-9998"), Cell::Number(-9998.0));
        assert!(reader.is_missing("I/O Timeout"));
        assert!(!reader.is_missing("N"));
    }

    #[test]
    fn a_decimal_comma_reads_where_the_file_allows_it() {
        let reader = marks(&["-1"], &[]).of("a");
        assert_eq!(reader.read::<f32>("12,5"), Cell::Text, "a comma-separated file has no decimal comma");
        let reader = reader.separated_by(';');
        assert_eq!(reader.read::<f32>("12,5"), Cell::Number(12.5));
        assert_eq!(reader.read::<f64>("-1,0"), Cell::Missing, "marks match by value");
        assert_eq!(reader.read::<f32>("1.234,5"), Cell::Text, "no thousands separators");
        assert_eq!(reader.read::<f32>("1,2,3"), Cell::Text);
    }

    #[test]
    fn a_number_mark_rounds_as_the_cell_it_is_compared_with() {
        // 0.1 is a different number in f32 and f64: each type is compared with its own
        let reader = marks(&["0.1"], &[]).of("a");
        assert_eq!(reader.read::<f32>("0.10"), Cell::Missing);
        assert_eq!(reader.read::<f64>("0.10"), Cell::Missing);
        assert_eq!(reader.read::<f64>("0.1000001"), Cell::Number(0.1000001));
    }

    #[test]
    fn per_signal_marks_apply_to_their_signal_alone() {
        let missing = marks(&["Bad"], &[("Weight", &["-1"])]);
        assert_eq!(missing.of("Weight").read::<f64>("-1"), Cell::Missing);
        assert_eq!(missing.of("Weight").read::<f64>("Bad"), Cell::Missing);
        assert_eq!(missing.of("Temp").read::<f64>("-1"), Cell::Number(-1.0));
        assert_eq!(missing.unknown_signal(&["Temp", "Weight"]), None);
        assert_eq!(missing.unknown_signal(&["Temp"]), Some("Weight"));
    }

    #[test]
    fn marks_are_trimmed_and_an_empty_one_is_refused_by_name() {
        assert_eq!(marks(&[" Bad "], &[]).everywhere, ["Bad"]);
        let err = MissingValues::new(&[" ".into()], &BTreeMap::new()).unwrap_err().to_string();
        assert!(err.contains("data.missing_values") && err.contains("empty"), "{err}");
        let per = BTreeMap::from([("Weight".to_string(), vec![String::new()])]);
        let err = MissingValues::new(&[], &per).unwrap_err().to_string();
        assert!(err.contains("missing_values_per_signal.`Weight`"), "{err}");
    }
}
