//! Wide CSV: one row per timestamp, one column per signal. The time is either one
//! column (`timestamp`, `time`, `date`, or an unnamed first column as pandas writes its
//! index; seconds since the epoch or `YYYY-MM-DD[ HH:MM[:SS]]`) or split
//! date columns `year, month, day[, hour[, minute]]` (the Beijing files). `NA` and empty
//! cells are missing. Every error names the file, line and column.

use std::path::Path;

use super::series::{days_from_civil, TimeSeries};
use crate::error::{Error, Result};

/// How to read a wide CSV.
#[derive(Clone, Debug, Default)]
pub struct WideCsvOptions {
    /// Signals to keep, in this order; empty: every numeric column that is not a time
    /// column or dropped.
    pub signals: Vec<String>,
    /// Columns to ignore (row numbers, station names, categorical signals).
    pub drop: Vec<String>,
    /// Categorical columns to encode one-hot: `wd` becomes `wd=E`, `wd=N`, … (categories
    /// sorted), all observed together, all missing where the cell is empty or `NA`.
    pub categorical: Vec<String>,
}

/// An input error naming the file, the line and, where there is one, the column.
pub(crate) fn format_error(path: &Path, line: usize, column: Option<&str>, why: String) -> Error {
    let at = match column {
        Some(c) => format!("line {line}, column `{c}`"),
        None => format!("line {line}"),
    };
    Error::Format { path: path.to_path_buf(), why: format!("{at}: {why}") }
}

/// A row with as many fields as the header, or an error naming the line.
pub(crate) fn check_width(path: &Path, line: usize, fields: &[String], names: &[String]) -> Result<()> {
    if fields.len() != names.len() {
        let why = format!("{} fields, the header has {} (truncated or malformed row?)", fields.len(), names.len());
        return Err(format_error(path, line, None, why));
    }
    Ok(())
}

/// Splits one CSV line on commas, honouring double quotes (no embedded newlines).
pub(crate) fn split_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            _ => field.push(ch),
        }
    }
    fields.push(field);
    fields
}

enum TimeColumns {
    Single(usize),
    Split { year: usize, month: usize, day: usize, hour: Option<usize>, minute: Option<usize> },
}

/// Parses `YYYY-MM-DD[ HH:MM[:SS]]` or an integer number of seconds.
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    if let Ok(secs) = text.parse::<i64>() {
        return Some(secs);
    }
    let (date, time) = text.split_once([' ', 'T']).unwrap_or((text, "0:0"));
    let mut d = date.split('-');
    let (y, m, dd) = (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    let mut t = time.trim_end_matches('Z').split(':');
    let hh: i64 = t.next()?.parse().ok()?;
    let mm: i64 = t.next().unwrap_or("0").parse().ok()?;
    let ss: f64 = t.next().unwrap_or("0").parse().ok()?;
    Some(days_from_civil(y, m, dd) * 86_400 + hh * 3600 + mm * 60 + ss as i64)
}

/// Reads a wide CSV into a [`TimeSeries`] (rows in file order; timestamps must increase).
///
/// # Errors
/// A missing file, no time column, an unparseable number or time, a duplicate or
/// decreasing timestamp, a row with the wrong number of fields, an unknown signal.
pub fn read_wide_csv(path: impl AsRef<Path>, options: &WideCsvOptions) -> Result<TimeSeries> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().ok_or_else(|| format_error(path, 1, None, "the file is empty".into()))?;
    let names: Vec<String> = split_fields(header).into_iter().map(|s| s.trim().to_string()).collect();
    let find = |n: &str| names.iter().position(|c| c.eq_ignore_ascii_case(n));
    // An unnamed first column is a pandas index: the timestamps of an exported frame.
    let unnamed_first = names.first().is_some_and(|n| n.is_empty()).then_some(0);
    let time = if let Some(i) = find("timestamp").or_else(|| find("time")).or_else(|| find("date")).or(unnamed_first) {
        TimeColumns::Single(i)
    } else if let (Some(year), Some(month), Some(day)) = (find("year"), find("month"), find("day")) {
        TimeColumns::Split { year, month, day, hour: find("hour"), minute: find("minute") }
    } else {
        return Err(format_error(
            path,
            1,
            None,
            "no time column: expected `timestamp` or `year,month,day[,hour]`".into(),
        ));
    };
    let time_cols: Vec<usize> = match &time {
        TimeColumns::Single(i) => vec![*i],
        TimeColumns::Split { year, month, day, hour, minute } => {
            [Some(*year), Some(*month), Some(*day), *hour, *minute].into_iter().flatten().collect()
        }
    };
    let categorical_cols: Vec<usize> = options
        .categorical
        .iter()
        .map(|s| {
            find(s).ok_or_else(|| {
                format_error(
                    path,
                    1,
                    None,
                    format!("unknown categorical signal `{s}`; the columns are {}", names.join(", ")),
                )
            })
        })
        .collect::<Result<_>>()?;
    let dropped = |i: usize| {
        options.drop.iter().any(|d| d.eq_ignore_ascii_case(&names[i]))
            || time_cols.contains(&i)
            || categorical_cols.contains(&i)
    };
    let signal_cols: Vec<usize> = if options.signals.is_empty() {
        (0..names.len()).filter(|&i| !dropped(i)).collect()
    } else {
        options
            .signals
            .iter()
            .map(|s| {
                find(s).ok_or_else(|| {
                    format_error(path, 1, None, format!("unknown signal `{s}`; the columns are {}", names.join(", ")))
                })
            })
            .collect::<Result<_>>()?
    };

    // categories of each categorical column, from a first pass
    let categories: Vec<Vec<String>> = categorical_cols
        .iter()
        .map(|&i| {
            let mut set: Vec<String> = text
                .lines()
                .skip(1)
                .filter_map(|l| split_fields(l).get(i).map(|v| v.trim().to_string()))
                .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("NA"))
                .collect();
            set.sort();
            set.dedup();
            set
        })
        .collect();
    let mut one_hot: Vec<String> = Vec::new();
    for (&i, cats) in categorical_cols.iter().zip(&categories) {
        one_hot.extend(cats.iter().map(|c| format!("{}={c}", names[i])));
    }
    let c = signal_cols.len() + one_hot.len();
    let mut series = TimeSeries {
        signals: signal_cols.iter().map(|&i| names[i].clone()).chain(one_hot).collect(),
        timestamps: Vec::new(),
        values: Vec::new(),
        observed: Vec::new(),
    };
    for (index, line) in lines {
        let line_no = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_fields(line);
        check_width(path, line_no, &fields, &names)?;
        let number = |i: usize| -> Result<i64> {
            fields[i]
                .trim()
                .parse::<i64>()
                .map_err(|_| format_error(path, line_no, Some(&names[i]), format!("`{}` is not an integer", fields[i])))
        };
        let ts = match &time {
            TimeColumns::Single(i) => parse_timestamp(fields[*i].trim()).ok_or_else(|| {
                format_error(path, line_no, Some(&names[*i]), format!("`{}` is not a timestamp", fields[*i]))
            })?,
            TimeColumns::Split { year, month, day, hour, minute } => {
                let (y, m, d) = (number(*year)?, number(*month)?, number(*day)?);
                if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
                    return Err(format_error(path, line_no, None, format!("{y}-{m}-{d} is not a date")));
                }
                let h = hour.map(number).transpose()?.unwrap_or(0);
                let mi = minute.map(number).transpose()?.unwrap_or(0);
                days_from_civil(y, m as u32, d as u32) * 86_400 + h * 3600 + mi * 60
            }
        };
        if let Some(&last) = series.timestamps.last() {
            if ts <= last {
                let what = if ts == last { "duplicate" } else { "decreasing" };
                return Err(format_error(
                    path,
                    line_no,
                    None,
                    format!("{what} timestamp (rows must be in increasing time)"),
                ));
            }
        }
        series.timestamps.push(ts);
        for &i in &signal_cols {
            let cell = fields[i].trim();
            if cell.is_empty() || cell.eq_ignore_ascii_case("NA") || cell.eq_ignore_ascii_case("nan") {
                series.values.push(0.0);
                series.observed.push(false);
            } else {
                let v: f32 = cell
                    .parse()
                    .map_err(|_| format_error(path, line_no, Some(&names[i]), format!("`{cell}` is not a number")))?;
                if !v.is_finite() {
                    return Err(format_error(path, line_no, Some(&names[i]), format!("`{cell}` is not finite")));
                }
                series.values.push(v);
                series.observed.push(true);
            }
        }
        for (&i, cats) in categorical_cols.iter().zip(&categories) {
            let cell = fields[i].trim();
            let present = !cell.is_empty() && !cell.eq_ignore_ascii_case("NA");
            for category in cats {
                series.values.push(if present && category == cell { 1.0 } else { 0.0 });
                series.observed.push(present);
            }
        }
    }
    debug_assert_eq!(series.values.len(), series.len() * c);
    if series.is_empty() {
        return Err(format_error(path, 2, None, "no data rows".into()));
    }
    Ok(series)
}
