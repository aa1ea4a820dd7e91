//! Wide tables (CSV or Parquet): one row per timestamp, one column per signal. The time
//! is either one column (`timestamp`, `time`, `date`, or the index pandas writes: an
//! unnamed first CSV column, `__index_level_0__` in Parquet; seconds since the epoch,
//! `YYYY-MM-DD[ HH:MM[:SS]]` or a Parquet date/timestamp) or split date columns
//! `year, month, day[, hour[, minute]]` (the Beijing files). `NA`, `NaN` and empty cells
//! (Parquet nulls) are missing, and so are the marks of [`MissingValues`]. Every error
//! names the file, the line (CSV) or row (Parquet), and the column.

use std::path::Path;

use super::missing::MissingValues;
use super::series::{days_from_civil, TimeSeries};
use super::table::Table;
use crate::error::Result;

/// How to read a wide table.
#[derive(Clone, Debug, Default)]
pub struct WideOptions {
    /// Signals to keep, in this order; empty: every numeric column that is not a time
    /// column or dropped.
    pub signals: Vec<String>,
    /// Columns to ignore (row numbers, station names, categorical signals).
    pub drop: Vec<String>,
    /// Categorical columns to encode one-hot: `wd` becomes `wd=E`, `wd=N`, … (categories
    /// sorted), all observed together, all missing where the cell is empty or `NA`.
    pub categorical: Vec<String>,
    /// Marks of "no value" beyond empty cells, `NA` and `NaN`.
    pub missing: MissingValues,
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

/// Reads a wide CSV or Parquet file into a [`TimeSeries`] (rows in file order;
/// timestamps must increase).
///
/// # Errors
/// A missing file, no time column, an unparseable number or time, a duplicate or
/// decreasing timestamp, a row with the wrong number of fields, an unknown signal.
pub fn read_wide(path: impl AsRef<Path>, options: &WideOptions) -> Result<TimeSeries> {
    wide_series(&Table::read(path.as_ref())?, options)
}

/// [`read_wide`] on a table already read.
pub(crate) fn wide_series(table: &Table, options: &WideOptions) -> Result<TimeSeries> {
    let names = &table.names;
    let find = |n: &str| table.column(n);
    // The pandas index: an unnamed first CSV column, `__index_level_0__` in Parquet.
    let pandas_index = names.first().is_some_and(|n| n.is_empty()).then_some(0).or_else(|| find("__index_level_0__"));
    let time = if let Some(i) = find("timestamp").or_else(|| find("time")).or_else(|| find("date")).or(pandas_index) {
        TimeColumns::Single(i)
    } else if let (Some(year), Some(month), Some(day)) = (find("year"), find("month"), find("day")) {
        TimeColumns::Split { year, month, day, hour: find("hour"), minute: find("minute") }
    } else {
        return Err(table.header_error(None, "no time column: expected `timestamp` or `year,month,day[,hour]`".into()));
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
                table.header_error(
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
                    table.header_error(None, format!("unknown signal `{s}`; the columns are {}", names.join(", ")))
                })
            })
            .collect::<Result<_>>()?
    };

    let signal_readers: Vec<_> = signal_cols.iter().map(|&i| options.missing.of(&names[i])).collect();
    let categorical_readers: Vec<_> = categorical_cols.iter().map(|&i| options.missing.of(&names[i])).collect();
    let categories: Vec<Vec<String>> = categorical_cols
        .iter()
        .zip(&categorical_readers)
        .map(|(&i, reader)| {
            let mut set: Vec<String> = table
                .rows()
                .map(|(_, fields)| fields[i].trim().to_string())
                .filter(|v| !reader.is_missing(v))
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
        timestamps: Vec::with_capacity(table.len()),
        values: Vec::with_capacity(table.len() * c),
        observed: Vec::with_capacity(table.len() * c),
    };
    for (place, fields) in table.rows() {
        let number = |i: usize| -> Result<i64> {
            fields[i]
                .trim()
                .parse::<i64>()
                .map_err(|_| table.error(place, Some(&names[i]), format!("`{}` is not an integer", &fields[i])))
        };
        let ts = match &time {
            TimeColumns::Single(i) => parse_timestamp(fields[*i].trim())
                .ok_or_else(|| table.error(place, Some(&names[*i]), format!("`{}` is not a timestamp", &fields[*i])))?,
            TimeColumns::Split { year, month, day, hour, minute } => {
                let (y, m, d) = (number(*year)?, number(*month)?, number(*day)?);
                if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
                    return Err(table.error(place, None, format!("{y}-{m}-{d} is not a date")));
                }
                let h = hour.map(number).transpose()?.unwrap_or(0);
                let mi = minute.map(number).transpose()?.unwrap_or(0);
                days_from_civil(y, m as u32, d as u32) * 86_400 + h * 3600 + mi * 60
            }
        };
        if let Some(&last) = series.timestamps.last() {
            if ts <= last {
                let what = if ts == last { "duplicate" } else { "decreasing" };
                return Err(table.error(place, None, format!("{what} timestamp (rows must be in increasing time)")));
            }
        }
        series.timestamps.push(ts);
        for (&i, reader) in signal_cols.iter().zip(&signal_readers) {
            let cell = fields[i].trim();
            let value = reader.value::<f32>(cell).map_err(|why| table.error(place, Some(&names[i]), why))?;
            series.values.push(value.unwrap_or(0.0));
            series.observed.push(value.is_some());
        }
        for ((&i, cats), reader) in categorical_cols.iter().zip(&categories).zip(&categorical_readers) {
            let cell = fields[i].trim();
            let present = !reader.is_missing(cell);
            for category in cats {
                series.values.push(if present && category == cell { 1.0 } else { 0.0 });
                series.observed.push(present);
            }
        }
    }
    debug_assert_eq!(series.values.len(), series.len() * c);
    if series.is_empty() {
        return Err(table.error(table.first_row_place(), None, "no data rows".into()));
    }
    Ok(series)
}
