//! A table of text cells from a CSV or a Parquet file: the one input that both the wide
//! and the long reader consume, so that a Parquet file and the CSV it was exported from
//! give the same series and the same errors (a CSV names the line, Parquet the row).
//!
//! Parquet cells are turned into the text a CSV export would hold: integers and floats
//! in their shortest exact form, nulls empty, dates and timestamps (any unit, and the
//! legacy INT96) as whole seconds since the Unix epoch, strings as they are. Nested,
//! binary and decimal columns are refused with the column's name. The file is
//! recognised by its `PAR1` magic number, whatever its extension.
//!
//! A CSV is read as spreadsheets and historians export it: its separator read off the
//! header ([`csv_delimiter`]: `,`, else `;` or a tab, whose numbers may then carry a decimal
//! comma), a byte-order mark skipped, and a file that is not UTF-8 but holds no binary
//! bytes decoded as Windows-1252.

use std::path::{Path, PathBuf};

use super::missing::{CellReader, MissingValues};
use super::wide::EpochUnit;
use crate::error::{Error, Result};

/// Rows of text cells under a header, stored flat: every cell's text in one buffer and
/// its range beside it (about the file's size plus 8 bytes a cell, not a `String` each).
pub(crate) struct Table {
    pub path: PathBuf,
    pub names: Vec<String>,
    /// The cells' text, concatenated (CSV fields unquoted).
    text: String,
    /// `[rows × names.len()]` byte ranges into `text`.
    cells: Vec<(u32, u32)>,
    /// Each row's place in the file: the line for a CSV (the header is line 1), the row
    /// counted from 1 for Parquet.
    places: Vec<usize>,
    source: Source,
    /// A CSV's field separator ([`csv_delimiter`]; `,` for Parquet). Separated by `;` or
    /// tabs, as European exports are, its numbers may carry a decimal comma (`12,5`).
    pub delimiter: char,
    /// The CSV was not UTF-8 and was read as Windows-1252 (Latin-1 and the Windows code
    /// page's `€`, `–`, quotes).
    pub windows_1252: bool,
    /// Per column: a Parquet date, time or timestamp, whose cells are whole seconds
    /// whatever `data.time_unit` says of integer times.
    pub typed_time: Vec<bool>,
}

/// One row of a [`Table`]; `row[i]` is the text of column `i`.
#[derive(Clone, Copy)]
pub(crate) struct Row<'a> {
    table: &'a Table,
    index: usize,
}

impl<'a> Row<'a> {
    /// The text of column `column`, borrowed from the table.
    pub fn get(&self, column: usize) -> &'a str {
        let (start, end) = self.table.cells[self.index * self.table.names.len() + column];
        &self.table.text[start as usize..end as usize]
    }
}

impl std::ops::Index<usize> for Row<'_> {
    type Output = str;

    fn index(&self, column: usize) -> &str {
        self.get(column)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Source {
    Csv,
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    Parquet,
}

impl Table {
    fn new(path: &Path, names: Vec<String>, source: Source) -> Table {
        let typed_time = vec![false; names.len()];
        Table {
            path: path.to_path_buf(),
            names,
            text: String::new(),
            cells: Vec::new(),
            places: Vec::new(),
            source,
            delimiter: ',',
            windows_1252: false,
            typed_time,
        }
    }

    /// The reader of a signal's cells in this table: `missing`'s marks for it, and a
    /// decimal comma where the file's separator allows one.
    pub fn cell_reader(&self, missing: &MissingValues, signal: &str) -> CellReader {
        missing.of(signal).separated_by(self.delimiter)
    }

    /// The unit integer times of `column` are read in: `unit` (`data.time_unit`), except
    /// in a Parquet date or timestamp column, whose cells are seconds already.
    pub fn time_unit_of(&self, column: usize, unit: EpochUnit) -> EpochUnit {
        if self.typed_time[column] {
            EpochUnit::Seconds
        } else {
            unit
        }
    }

    /// Appends a cell's text to the buffer and records its range.
    fn push_cell(&mut self, cell: &str) -> Result<()> {
        let start = self.text.len();
        self.text.push_str(cell);
        let range = u32::try_from(start).ok().zip(u32::try_from(self.text.len()).ok());
        let range = range.ok_or_else(|| Error::Format {
            path: self.path.clone(),
            why: "more than 4 GiB of cell text; split the file".into(),
        })?;
        self.cells.push(range);
        Ok(())
    }

    /// Reads a whole CSV or Parquet file.
    ///
    /// # Errors
    /// A missing or unreadable file, an empty CSV, a CSV row whose width differs from the
    /// header's, a Parquet file that is truncated or corrupt, or a column recur cannot read.
    pub fn read(path: &Path) -> Result<Table> {
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let bytes = std::fs::read(path).map_err(io)?;
        if bytes.starts_with(b"PAR1") {
            return parquet::read(path, std::fs::File::open(path).map_err(io)?);
        }
        let (text, windows_1252) = match String::from_utf8(bytes) {
            Ok(text) => (text, false),
            // a European spreadsheet's or historian's export in the Windows code page (`°C`, `µ`)
            Err(e) if !e.as_bytes().iter().any(|&b| b == 0 || (b < 0x20 && !b"\t\r\n".contains(&b))) => {
                (decode_windows_1252(e.as_bytes()), true)
            }
            Err(e) => {
                let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|&&b| b == b'\n').count();
                let why = "neither UTF-8 nor Windows-1252 text (a binary file: neither a CSV nor a Parquet file?)";
                return Err(format_error(path, "line", line, None, why.into()));
            }
        };
        let mut lines = without_byte_order_mark(&text).lines().enumerate();
        let (_, header) =
            lines.next().ok_or_else(|| format_error(path, "line", 1, None, "the file is empty".into()))?;
        let (delimiter, names) = csv_header(header);
        let mut field = String::new();
        let mut table = Table::new(path, names, Source::Csv);
        table.delimiter = delimiter;
        table.windows_1252 = windows_1252;
        table.text.reserve(text.len());
        for (index, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let before = table.cells.len();
            for_each_field(line, delimiter, &mut field, |f| table.push_cell(f))?;
            let width = table.cells.len() - before;
            if width != table.names.len() {
                let why = format!("{width} fields, the header has {} (truncated or malformed row?)", table.names.len());
                return Err(table.error(index + 1, None, why));
            }
            table.places.push(index + 1);
        }
        Ok(table)
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    /// Each row with its place in the file (a CSV line, a Parquet row).
    pub fn rows(&self) -> impl Iterator<Item = (usize, Row<'_>)> + '_ {
        self.places.iter().enumerate().map(move |(index, &place)| (place, Row { table: self, index }))
    }

    /// An input error at a row (a CSV line, a Parquet row) and, where there is one, a column.
    pub fn error(&self, place: usize, column: Option<&str>, why: String) -> Error {
        format_error(&self.path, self.place_unit(), place, column, why)
    }

    /// What a place counts: `line` in a CSV, `row` in Parquet.
    pub fn place_unit(&self) -> &'static str {
        match self.source {
            Source::Csv => "line",
            Source::Parquet => "row",
        }
    }

    /// An error in the header (CSV) or the schema (Parquet).
    pub fn header_error(&self, column: Option<&str>, why: String) -> Error {
        match self.source {
            Source::Csv => self.error(1, column, why),
            Source::Parquet => {
                let at = column.map_or_else(|| "schema".to_string(), |c| format!("schema, column `{c}`"));
                Error::Format { path: self.path.clone(), why: format!("{at}: {why}") }
            }
        }
    }

    /// The place of the first data row, for errors about the body as a whole.
    pub fn first_row_place(&self) -> usize {
        match self.source {
            Source::Csv => 2,
            Source::Parquet => 1,
        }
    }

    /// The index of a column, by name, ignoring ASCII case.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|c| c.eq_ignore_ascii_case(name))
    }
}

fn format_error(path: &Path, unit: &str, place: usize, column: Option<&str>, why: String) -> Error {
    let at = match column {
        Some(c) => format!("{unit} {place}, column `{c}`"),
        None => format!("{unit} {place}"),
    };
    Error::Format { path: path.to_path_buf(), why: format!("{at}: {why}") }
}

/// Windows-1252 text as a string: Latin-1, but for the 27 printable characters the code
/// page puts at 0x80–0x9F (the five it leaves undefined kept as their C1 code points).
fn decode_windows_1252(bytes: &[u8]) -> String {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}', '\u{90}', '‘',
        '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
    ];
    bytes.iter().map(|&b| if (0x80..0xa0).contains(&b) { HIGH[usize::from(b - 0x80)] } else { char::from(b) }).collect()
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (what
/// [`csv_fields`] reads back).
pub fn csv_quoted(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// The fields of one CSV line, split as every CSV reader of recur splits them (quotes
/// honoured, `""` inside quotes a quote).
pub fn csv_fields(line: &str) -> Vec<String> {
    csv_fields_separated(line, ',')
}

/// [`csv_fields`] with another separator (see [`csv_delimiter`]).
pub fn csv_fields_separated(line: &str, delimiter: char) -> Vec<String> {
    let (mut fields, mut scratch) = (Vec::new(), String::new());
    let _ = for_each_field(line, delimiter, &mut scratch, |f| {
        fields.push(f.to_string());
        Ok(())
    });
    fields
}

/// Text without the byte-order mark that Excel's "CSV UTF-8" puts first (it would join
/// the first column's name).
pub fn without_byte_order_mark(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// A CSV header line's separator ([`csv_delimiter`]) and its column names, trimmed.
pub fn csv_header(line: &str) -> (char, Vec<String>) {
    let delimiter = csv_delimiter(line);
    (delimiter, csv_fields_separated(line, delimiter).into_iter().map(|n| n.trim().to_string()).collect())
}

/// A CSV's field separator, read off its header: `,` where the header holds one outside
/// quotes, else `;` (European exports, whose numbers then carry a decimal comma), else a
/// tab, else `,` (a single column).
pub fn csv_delimiter(header: &str) -> char {
    let mut quoted = false;
    let (mut semicolon, mut tab) = (false, false);
    for ch in header.chars() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => return ',',
            ';' if !quoted => semicolon = true,
            '\t' if !quoted => tab = true,
            _ => {}
        }
    }
    if semicolon {
        ';'
    } else if tab {
        '\t'
    } else {
        ','
    }
}

/// Calls `emit` with each field of one CSV line (split on `delimiter`, double quotes
/// honoured, `""` inside quotes is a quote; no embedded newlines). `field` is scratch.
fn for_each_field(
    line: &str,
    delimiter: char,
    field: &mut String,
    mut emit: impl FnMut(&str) -> Result<()>,
) -> Result<()> {
    if !line.contains('"') {
        return line.split(delimiter).try_for_each(emit);
    }
    field.clear();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == delimiter && !quoted => {
                emit(field)?;
                field.clear();
            }
            _ => field.push(ch),
        }
    }
    emit(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_1252_decodes_latin_1_and_the_code_pages_own_characters() {
        assert_eq!(decode_windows_1252(b"Temp \xb0C;\xb5S/cm;\x80;\x93q\x94;\x96"), "Temp °C;µS/cm;€;“q”;–");
    }

    #[test]
    fn a_csv_in_windows_1252_reads_and_a_binary_file_is_refused() {
        let scratch = tempfile::Builder::new().prefix("recur-table-").tempdir().unwrap();
        let dir = scratch.path();
        let path = dir.join("latin.csv");
        std::fs::write(&path, b"timestamp;Temperatur \xb0C\n2024-01-01 00:00;21,5\n").unwrap();
        let table = Table::read(&path).unwrap();
        assert_eq!(table.names, ["timestamp", "Temperatur °C"]);
        assert!(table.windows_1252);
        let path = dir.join("binary.csv");
        std::fs::write(&path, b"timestamp,a\n\x00\xff\x01\n").unwrap();
        let err = Table::read(&path).err().unwrap().to_string();
        assert!(err.contains("line 2") && err.contains("binary file"), "{err}");
    }
}

#[cfg(not(feature = "parquet"))]
mod parquet {
    use super::Table;
    use crate::error::{Error, Result};

    pub(super) fn read(path: &std::path::Path, _file: std::fs::File) -> Result<Table> {
        let why = "a Parquet file, and this build of recur has no Parquet support (cargo feature `parquet`)".into();
        Err(Error::Format { path: path.to_path_buf(), why })
    }
}

#[cfg(feature = "parquet")]
mod parquet {
    //! Flat Parquet files, column chunk by column chunk through the typed column readers
    //! (not the record API, which reads nanosecond timestamps as plain integers).

    use std::fs::File;
    use std::path::Path;

    use parquet::basic::{ConvertedType, LogicalType, TimeUnit};
    use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
    use parquet::data_type::DataType;
    use parquet::file::reader::{FileReader, RowGroupReader, SerializedFileReader};
    use parquet::schema::types::ColumnDescriptor;

    use super::{Source, Table};
    use crate::error::{Error, Result};

    pub(super) fn read(path: &Path, file: File) -> Result<Table> {
        let fail = |why: String| Error::Format { path: path.to_path_buf(), why };
        let reader = SerializedFileReader::new(file)
            .map_err(|e| fail(format!("not a readable Parquet file (truncated or corrupt?): {e}")))?;
        let meta = reader.metadata();
        let schema = meta.file_metadata().schema_descr();
        let columns: Vec<_> = (0..schema.num_columns()).map(|i| schema.column(i)).collect();
        let names: Vec<String> = columns.iter().map(|c| c.path().string()).collect();
        let mut table = Table::new(path, names, Source::Parquet);
        for (c, descr) in columns.iter().enumerate() {
            if descr.max_rep_level() > 0 || descr.path().parts().len() != 1 {
                return Err(table.header_error(Some(&table.names[c]), "nested columns are not supported".into()));
            }
        }
        let rows = usize::try_from(meta.file_metadata().num_rows()).unwrap_or(0);
        let mut cells: Vec<Vec<String>> = Vec::with_capacity(columns.len());
        for (c, descr) in columns.iter().enumerate() {
            table.typed_time[c] = is_time(descr);
            let mut column = Vec::with_capacity(rows);
            for g in 0..reader.num_row_groups() {
                let group = reader.get_row_group(g).map_err(|e| fail(format!("row group {g}: {e}")))?;
                read_chunk(&table, group.as_ref(), c, descr, &mut column)?;
            }
            if column.len() != rows {
                let why = format!("column `{}` has {} values for {rows} rows", table.names[c], column.len());
                return Err(fail(why));
            }
            cells.push(column);
        }
        for r in 0..rows {
            for column in &cells {
                table.push_cell(&column[r])?;
            }
            table.places.push(r + 1);
        }
        Ok(table)
    }

    /// Appends the text of one column chunk's cells to `out` (nulls as empty text).
    fn read_chunk(
        table: &Table,
        group: &dyn RowGroupReader,
        c: usize,
        descr: &ColumnDescriptor,
        out: &mut Vec<String>,
    ) -> Result<()> {
        let name = &table.names[c];
        let column = Column {
            table,
            c,
            rows: usize::try_from(group.metadata().num_rows()).unwrap_or(0),
            max_def: descr.max_def_level(),
        };
        let reader =
            group.get_column_reader(c).map_err(|e| table.header_error(Some(name), format!("unreadable: {e}")))?;
        let unsupported = |what: &str| {
            Err(table.header_error(Some(name), format!("{what} columns are not supported (numbers, times, strings)")))
        };
        let days = |d: i32| Some((i64::from(d) * 86_400).to_string());
        let integer = |v: i64| Some(v.to_string());
        match (reader, descr.logical_type_ref(), descr.converted_type()) {
            (_, Some(LogicalType::Decimal(_)), _) | (_, _, ConvertedType::DECIMAL) => unsupported("decimal"),
            (ColumnReader::BoolColumnReader(r), ..) => column.read(r, out, |v| Some(u8::from(v).to_string())),
            (ColumnReader::Int32ColumnReader(r), Some(LogicalType::Date), _)
            | (ColumnReader::Int32ColumnReader(r), _, ConvertedType::DATE) => column.read(r, out, days),
            (ColumnReader::Int32ColumnReader(r), Some(LogicalType::Time(t)), _) => {
                column.read(r, out, |v| Some(seconds(v.into(), &t.unit).to_string()))
            }
            (ColumnReader::Int32ColumnReader(r), _, ConvertedType::TIME_MILLIS) => {
                column.read(r, out, |v| Some(seconds(v.into(), &TimeUnit::MILLIS).to_string()))
            }
            (ColumnReader::Int32ColumnReader(r), _, ConvertedType::UINT_32) => {
                column.read(r, out, |v| Some((v as u32).to_string()))
            }
            (ColumnReader::Int32ColumnReader(r), ..) => column.read(r, out, |v| Some(v.to_string())),
            (ColumnReader::Int64ColumnReader(r), Some(LogicalType::Timestamp(t) | LogicalType::Time(t)), _) => {
                let unit = t.unit;
                column.read(r, out, |v| Some(seconds(v, &unit).to_string()))
            }
            (ColumnReader::Int64ColumnReader(r), _, ConvertedType::TIMESTAMP_MILLIS | ConvertedType::TIME_MILLIS) => {
                column.read(r, out, |v| Some(seconds(v, &TimeUnit::MILLIS).to_string()))
            }
            (ColumnReader::Int64ColumnReader(r), _, ConvertedType::TIMESTAMP_MICROS | ConvertedType::TIME_MICROS) => {
                column.read(r, out, |v| Some(seconds(v, &TimeUnit::MICROS).to_string()))
            }
            (ColumnReader::Int64ColumnReader(r), _, ConvertedType::UINT_64) => {
                column.read(r, out, |v| Some((v as u64).to_string()))
            }
            (ColumnReader::Int64ColumnReader(r), ..) => column.read(r, out, integer),
            (ColumnReader::Int96ColumnReader(r), ..) => column.read(r, out, |v| Some(v.to_seconds().to_string())),
            (ColumnReader::FloatColumnReader(r), ..) => column.read(r, out, |v| Some(v.to_string())),
            (ColumnReader::DoubleColumnReader(r), ..) => column.read(r, out, |v| Some(v.to_string())),
            (
                ColumnReader::ByteArrayColumnReader(r),
                None | Some(LogicalType::String | LogicalType::Enum | LogicalType::Json),
                ConvertedType::NONE | ConvertedType::UTF8 | ConvertedType::ENUM | ConvertedType::JSON,
            ) => column.read(r, out, |v| std::str::from_utf8(v.data()).ok().map(str::to_string)),
            (ColumnReader::ByteArrayColumnReader(_), ..) => unsupported("binary"),
            (ColumnReader::FixedLenByteArrayColumnReader(_), ..) => unsupported("fixed-length binary"),
        }
    }

    /// Whether a column holds dates, times or timestamps (read as whole seconds).
    fn is_time(descr: &ColumnDescriptor) -> bool {
        matches!(descr.logical_type_ref(), Some(LogicalType::Date | LogicalType::Time(_) | LogicalType::Timestamp(_)))
            || matches!(
                descr.converted_type(),
                ConvertedType::DATE
                    | ConvertedType::TIME_MILLIS
                    | ConvertedType::TIME_MICROS
                    | ConvertedType::TIMESTAMP_MILLIS
                    | ConvertedType::TIMESTAMP_MICROS
            )
            || descr.physical_type() == parquet::basic::Type::INT96
    }

    /// A time in `unit` as whole seconds (floored, so that instants before 1970 stay in order).
    fn seconds(v: i64, unit: &TimeUnit) -> i64 {
        match unit {
            TimeUnit::MILLIS => v.div_euclid(1_000),
            TimeUnit::MICROS => v.div_euclid(1_000_000),
            TimeUnit::NANOS => v.div_euclid(1_000_000_000),
        }
    }

    /// One column chunk of a row group.
    struct Column<'a> {
        table: &'a Table,
        c: usize,
        rows: usize,
        max_def: i16,
    }

    impl Column<'_> {
        /// Reads every record of the chunk, appending each cell's text (empty where null);
        /// `text` gives `None` for a value that is not text (invalid UTF-8), an error naming the row.
        fn read<T: DataType>(
            &self,
            mut reader: ColumnReaderImpl<T>,
            out: &mut Vec<String>,
            mut text: impl FnMut(T::T) -> Option<String>,
        ) -> Result<()> {
            let name = &self.table.names[self.c];
            let (mut levels, mut values) = (Vec::new(), Vec::new());
            let mut read = 0;
            while read < self.rows {
                let (records, _, _) =
                    reader.read_records(self.rows - read, Some(&mut levels), None, &mut values).map_err(|e| {
                        self.table.error(out.len() + 1, Some(name), format!("unreadable (corrupt file?): {e}"))
                    })?;
                if records == 0 {
                    break;
                }
                read += records;
            }
            let mut values = values.into_iter();
            for i in 0..read {
                let present = self.max_def == 0 || levels.get(i) == Some(&self.max_def);
                let cell = if present {
                    let at = out.len() + 1;
                    let value = values.next().ok_or_else(|| {
                        self.table.error(at, Some(name), "fewer values than rows (corrupt file?)".into())
                    })?;
                    text(value).ok_or_else(|| self.table.error(at, Some(name), "not UTF-8 text".into()))?
                } else {
                    String::new()
                };
                out.push(cell);
            }
            Ok(())
        }
    }
}
