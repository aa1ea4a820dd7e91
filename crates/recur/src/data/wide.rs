//! Wide tables (CSV or Parquet): one row per timestamp, one column per signal. The time
//! is either one column (`timestamp`, `time`, `date`, or the index pandas writes: an
//! unnamed first CSV column, `__index_level_0__` in Parquet; seconds since the epoch,
//! `YYYY-MM-DD[ HH:MM[:SS]]` or a Parquet date/timestamp) or split date columns
//! `year, month, day[, hour[, minute]]` (the Beijing files). `NA`, `NaN` and empty cells
//! (Parquet nulls) are missing, and so are the marks of [`MissingValues`]. Every error
//! names the file, the line (CSV) or row (Parquet), and the column.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::missing::{is_missing, CellReader, MissingValues};
use super::series::{days_from_civil, is_valid_date, Clock, TimeSeries};
use super::table::Table;
use super::zone::TimeZone;
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
    /// What an integer time counts (a Parquet timestamp column keeps its own unit).
    pub time_unit: EpochUnit,
    /// The zone whose local times the file's naive times are (`data.naive_times =
    /// "local"`): read back to UTC, the hour repeated when clocks go back in file order.
    /// `None`: naive times are UTC.
    pub local_times: Option<TimeZone>,
}

/// Where a wide table's time is: one column (`timestamp`, `time`, `date`, or the pandas
/// index), or a date split into `year,month,day[,hour[,minute]]` (Beijing's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeColumns {
    Single(usize),
    Split { year: usize, month: usize, day: usize, hour: Option<usize>, minute: Option<usize> },
}

impl TimeColumns {
    /// The time among the columns `names`, as [`read_wide`] finds it: a column named (in any case)
    /// `timestamp`, `time` or `date` (in that order), an unnamed first column (pandas' index)
    /// or `__index_level_0__`, else `year`, `month`, `day` and, if present, `hour` and `minute`.
    pub fn find(names: &[String]) -> Option<Self> {
        let find = |wanted: &str| names.iter().position(|n| n.eq_ignore_ascii_case(wanted));
        let pandas_index =
            names.first().is_some_and(|n| n.is_empty()).then_some(0).or_else(|| find("__index_level_0__"));
        if let Some(i) = find("timestamp").or_else(|| find("time")).or_else(|| find("date")).or(pandas_index) {
            Some(TimeColumns::Single(i))
        } else if let (Some(year), Some(month), Some(day)) = (find("year"), find("month"), find("day")) {
            Some(TimeColumns::Split { year, month, day, hour: find("hour"), minute: find("minute") })
        } else {
            None
        }
    }

    /// The columns it reads.
    pub fn columns(&self) -> Vec<usize> {
        match self {
            TimeColumns::Single(i) => vec![*i],
            TimeColumns::Split { year, month, day, hour, minute } => {
                [Some(*year), Some(*month), Some(*day), *hour, *minute].into_iter().flatten().collect()
            }
        }
    }

    /// A row's time in seconds since the epoch, its cells given by `cell` (column → text);
    /// integer times count `unit`. Otherwise the column at fault (`None`: the split date as a
    /// whole) and why.
    pub fn read<'a>(&self, cell: impl Fn(usize) -> &'a str, unit: EpochUnit) -> Result<i64, (Option<usize>, String)> {
        self.read_naive(cell, unit).map(|(seconds, _)| seconds)
    }

    /// [`TimeColumns::read`], and whether the time is naive (a date and clock time without a
    /// UTC offset: a split date always is).
    ///
    /// # Errors
    /// As [`TimeColumns::read`].
    pub fn read_naive<'a>(
        &self,
        cell: impl Fn(usize) -> &'a str,
        unit: EpochUnit,
    ) -> Result<(i64, bool), (Option<usize>, String)> {
        let number = |i: usize| -> Result<i64, (Option<usize>, String)> {
            let text = cell(i).trim();
            text.parse::<i64>().map_err(|_| (Some(i), format!("`{text}` is not an integer")))
        };
        match self {
            TimeColumns::Single(i) => {
                let text = cell(*i).trim();
                parse_timestamp_naive(text, unit).ok_or_else(|| (Some(*i), not_a_time(text, "timestamp", unit)))
            }
            TimeColumns::Split { year, month, day, hour, minute } => {
                let (y, m, d) = (number(*year)?, number(*month)?, number(*day)?);
                let date = match (u32::try_from(m), u32::try_from(d)) {
                    (Ok(m), Ok(d)) if is_valid_date(y, m, d) => (m, d),
                    _ => return Err((None, format!("{y}-{m}-{d} is not a date"))),
                };
                let h = hour.map(number).transpose()?.unwrap_or(0);
                let mi = minute.map(number).transpose()?.unwrap_or(0);
                Ok((days_from_civil(y, date.0, date.1) * 86_400 + h * 3600 + mi * 60, true))
            }
        }
    }
}

/// What an integer time counts since the Unix epoch (`data.time_unit`): seconds, or the
/// milliseconds of Cognite's and many historians' exports, or micro- or nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EpochUnit {
    #[default]
    #[serde(rename = "s")]
    Seconds,
    #[serde(rename = "ms")]
    Milliseconds,
    #[serde(rename = "us")]
    Microseconds,
    #[serde(rename = "ns")]
    Nanoseconds,
}

impl EpochUnit {
    /// `s`, `ms`, `us` or `ns`.
    pub fn parse(text: &str) -> Option<EpochUnit> {
        Some(match text {
            "s" => EpochUnit::Seconds,
            "ms" => EpochUnit::Milliseconds,
            "us" => EpochUnit::Microseconds,
            "ns" => EpochUnit::Nanoseconds,
            _ => return None,
        })
    }

    fn per_second(self) -> i64 {
        match self {
            EpochUnit::Seconds => 1,
            EpochUnit::Milliseconds => 1_000,
            EpochUnit::Microseconds => 1_000_000,
            EpochUnit::Nanoseconds => 1_000_000_000,
        }
    }
}

/// The last second of the year 9999: integer times read as seconds past it are another
/// unit's (`1704067200000` is a millisecond count of 2024).
const LAST_SECOND: i64 = 253_402_300_799;

/// A time as seconds since the epoch (UTC): an integer count of `unit` (floored to whole
/// seconds; up to the year 9999), or ISO 8601 as
/// pandas, historians and the Cognite SDK write it, `YYYY-MM-DD[( |T)hh:mm[:ss[.f]]]` with an
/// optional UTC offset (`Z`, `+01:00`, `+0100`, `-05`) that is subtracted (`/` may separate
/// the date's parts). A field out of range (month 13, February 30, 24:00) is not a time.
///
/// Also whether the time is naive: a date and clock time without a UTC offset (a count
/// since the epoch, or a time with `Z` or an offset, is not).
pub(crate) fn parse_timestamp_naive(text: &str, unit: EpochUnit) -> Option<(i64, bool)> {
    if let Ok(count) = text.parse::<i64>() {
        let seconds = count.div_euclid(unit.per_second());
        return (seconds.abs() <= LAST_SECOND).then_some((seconds, false));
    }
    let (date, time) = text.split_once([' ', 'T']).unwrap_or((text, "0:0"));
    let mut d = date.split(['-', '/']);
    let (y, m, dd): (i64, u32, u32) = (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    if d.next().is_some() || !is_valid_date(y, m, dd) {
        return None;
    }
    let (clock, offset) = split_utc_offset(time.trim())?;
    let naive = clock.len() == time.trim().len();
    let clock = clock.trim_end();
    let mut t = clock.split(':');
    let hh: i64 = t.next()?.parse().ok()?;
    let mm: i64 = t.next().unwrap_or("0").parse().ok()?;
    let ss: f64 = t.next().unwrap_or("0").parse().ok()?;
    if t.next().is_some() || !(0..24).contains(&hh) || !(0..60).contains(&mm) || !(0.0..61.0).contains(&ss) {
        return None;
    }
    Some((days_from_civil(y, m, dd) * 86_400 + hh * 3600 + mm * 60 + ss as i64 - offset, naive))
}

/// The error text for a time column's cell that is not a time (neither an integer count
/// of `unit` nor ISO 8601); `what`: `timestamp` or `time`.
pub fn not_a_time(cell: &str, what: &str, unit: EpochUnit) -> String {
    match cell.parse::<i64>() {
        Ok(_) if unit == EpochUnit::Seconds => format!(
            "`{cell}` is not a {what}: as seconds since the epoch it lies past the year 9999 (milliseconds? set \
             data.time_unit = \"ms\")"
        ),
        Ok(_) => format!("`{cell}` is not a {what}: it lies past the year 9999 even in {unit:?}"),
        Err(_) => format!("`{cell}` is not a {what}"),
    }
}

/// A clock time without its UTC offset, and the offset in seconds (`Z`: 0, `+01:00`,
/// `+0100`, `+01`: 3600, `-05:00`: −18000; none: 0). `None` for a malformed offset.
fn split_utc_offset(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        return Some((clock, 0));
    }
    let Some(at) = time.rfind(['+', '-']) else {
        return Some((time, 0));
    };
    let (clock, offset) = time.split_at(at);
    let digits = &offset[1..];
    if !digits.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return None;
    }
    let (h, m) = match digits.split_once(':') {
        Some(parts) => parts,
        None if digits.len() == 4 => digits.split_at(2),
        None if digits.len() == 2 => (digits, "00"),
        None => return None,
    };
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    if h > 23 || m > 59 {
        return None;
    }
    let seconds = h * 3600 + m * 60;
    Some((clock, if offset.starts_with('-') { -seconds } else { seconds }))
}

/// The signal a categorical column's category becomes (`data.categorical`): `wd=NNE`.
pub fn one_hot_signal(column: &str, category: &str) -> String {
    format!("{column}={category}")
}

/// The categorical column (one of `categorical`) and category whose one-hot signal is
/// `signal` ([`one_hot_signal`]: `wd=NNE` is `wd`'s `NNE`); `None` for any other signal.
pub fn one_hot_of<'a>(signal: &'a str, categorical: &'a [String]) -> Option<(&'a str, &'a str)> {
    categorical.iter().find_map(|c| Some((c.as_str(), signal.strip_prefix(&one_hot_signal(c, ""))?)))
}

/// A categorical `cell`'s value in `category`'s one-hot signal: 1 if it is that category, 0
/// if another (one never seen in training is none of them), `None` where the cell holds no
/// value (then every one of the column's signals is missing).
pub fn one_hot_value(reader: &CellReader, cell: &str, category: &str) -> Option<f32> {
    (!reader.is_missing(cell)).then_some(if cell == category { 1.0 } else { 0.0 })
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
    let Some(time) = TimeColumns::find(names) else {
        return Err(table.header_error(None, "no time column: expected `timestamp` or `year,month,day[,hour]`".into()));
    };
    let time_cols = time.columns();
    let unit = match time {
        TimeColumns::Single(i) => table.time_unit_of(i, options.time_unit),
        TimeColumns::Split { .. } => options.time_unit,
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

    let signal_readers: Vec<_> = signal_cols.iter().map(|&i| table.cell_reader(&options.missing, &names[i])).collect();
    let categorical_readers: Vec<_> =
        categorical_cols.iter().map(|&i| table.cell_reader(&options.missing, &names[i])).collect();
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
        one_hot.extend(cats.iter().map(|c| one_hot_signal(&names[i], c)));
    }
    let c = signal_cols.len() + one_hot.len();
    let mut series = TimeSeries {
        signals: signal_cols.iter().map(|&i| names[i].clone()).chain(one_hot).collect(),
        timestamps: Vec::with_capacity(table.len()),
        values: Vec::with_capacity(table.len() * c),
        observed: Vec::with_capacity(table.len() * c),
        marked: vec![0; c],
        clock: Clock::Calendar,
    };
    let time_column = match time {
        TimeColumns::Single(i) => Some(names[i].as_str()),
        TimeColumns::Split { .. } => None,
    };
    for (place, fields) in table.rows() {
        let (ts, naive) = time
            .read_naive(|i| &fields[i], unit)
            .map_err(|(column, why)| table.error(place, column.map(|i| names[i].as_str()), why))?;
        let ts = match (&options.local_times, naive) {
            (Some(zone), true) => zone
                .to_utc(ts, series.timestamps.last().copied())
                .map_err(|why| table.error(place, time_column, format!("{} {why}", Clock::Calendar.format(ts))))?,
            _ => ts,
        };
        if let Some(&last) = series.timestamps.last() {
            if ts <= last {
                let what = if ts == last { "duplicate" } else { "decreasing" };
                return Err(table.error(place, None, format!("{what} timestamp (rows must be in increasing time)")));
            }
        }
        series.timestamps.push(ts);
        for (j, (&i, reader)) in signal_cols.iter().zip(&signal_readers).enumerate() {
            let cell = fields[i].trim();
            let value = reader.value::<f32>(cell).map_err(|why| table.error(place, Some(&names[i]), why))?;
            series.values.push(value.unwrap_or(0.0));
            series.observed.push(value.is_some());
            series.marked[j] += usize::from(value.is_none() && !is_missing(cell));
        }
        for ((&i, cats), reader) in categorical_cols.iter().zip(&categories).zip(&categorical_readers) {
            for category in cats {
                let value = one_hot_value(reader, fields[i].trim(), category);
                series.values.push(value.unwrap_or(0.0));
                series.observed.push(value.is_some());
            }
        }
    }
    debug_assert_eq!(series.values.len(), series.len() * c);
    if series.is_empty() {
        return Err(table.error(table.first_row_place(), None, "no data rows".into()));
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::csv_delimiter;
    use crate::data::series::format_timestamp;

    fn utc(text: &str) -> Option<String> {
        parse_timestamp(text).map(format_timestamp)
    }

    fn parse_timestamp(text: &str) -> Option<i64> {
        super::parse_timestamp_naive(text, EpochUnit::Seconds).map(|(seconds, _)| seconds)
    }

    #[test]
    fn a_time_is_naive_without_an_offset() {
        let naive = |text: &str| super::parse_timestamp_naive(text, EpochUnit::Seconds).map(|(_, naive)| naive);
        for text in ["2024-10-27 02:30", "2024-10-27T02:30:00", "2024-10-27", "2024/10/27 02:30:00.5"] {
            assert_eq!(naive(text), Some(true), "{text}");
        }
        for text in ["2024-10-27 02:30Z", "2024-10-27T02:30:00+02:00", "2024-10-27 02:30 -0500", "1729989000"] {
            assert_eq!(naive(text), Some(false), "{text}");
        }
        let split = TimeColumns::Split { year: 0, month: 1, day: 2, hour: Some(3), minute: None };
        let cells = ["2024", "10", "27", "2"];
        assert_eq!(split.read_naive(|i| cells[i], EpochUnit::Seconds).map(|(_, naive)| naive), Ok(true));
    }

    #[test]
    fn integer_times_count_their_unit_up_to_the_year_9999() {
        let at = |text: &str, unit| super::parse_timestamp_naive(text, unit).map(|(seconds, _)| seconds);
        assert_eq!(at("1704067200", EpochUnit::Seconds), Some(1_704_067_200));
        assert_eq!(at("1704067200999", EpochUnit::Milliseconds), Some(1_704_067_200), "floored to the second");
        assert_eq!(at("1704067200000000", EpochUnit::Microseconds), Some(1_704_067_200));
        assert_eq!(at("1704067200000000000", EpochUnit::Nanoseconds), Some(1_704_067_200));
        assert_eq!(at("-1", EpochUnit::Milliseconds), Some(-1), "before 1970, floored");
        assert_eq!(at("1704067200000", EpochUnit::Seconds), None, "a millisecond count read as seconds");
        let why = not_a_time("1704067200000", "timestamp", EpochUnit::Seconds);
        assert!(why.contains("past the year 9999") && why.contains("data.time_unit = \"ms\""), "{why}");
        assert_eq!(not_a_time("soon", "time", EpochUnit::Seconds), "`soon` is not a time");
        assert_eq!(at("2024-03-10 12:00", EpochUnit::Milliseconds), at("2024-03-10 12:00", EpochUnit::Seconds));
    }

    #[test]
    fn iso_times_with_utc_offsets_are_read_as_utc() {
        let noon = Some("2024-03-10 12:00:00".to_string());
        for text in [
            "2024-03-10 12:00",
            "2024-03-10T12:00:00",
            "2024-03-10 12:00:00Z",
            "2024-03-10 12:00:00+00:00",
            "2024-03-10 13:00:00+01:00",
            "2024-03-10T13:30:00+0130",
            "2024-03-10 07:00:00-05",
            "2024-03-10 07:00:00.999-05:00",
            "2024/03/10 12:00",
            "2024-03-10 13:00:00 +01:00",
        ] {
            assert_eq!(utc(text), noon, "{text}");
        }
        assert_eq!(utc("2024-03-10 00:30:00+01:00").as_deref(), Some("2024-03-09 23:30:00"), "the day before in UTC");
        assert_eq!(utc("2024-03-10").as_deref(), Some("2024-03-10 00:00:00"));
        assert_eq!(parse_timestamp("1710072000"), Some(1_710_072_000), "integer seconds");
    }

    /// Synthetic files as spreadsheets and European exports write them: a byte-order mark,
    /// `;` or tabs between fields and a decimal comma, Windows line ends.
    #[test]
    fn bom_semicolons_tabs_and_decimal_commas_read_as_the_plain_csv() {
        let scratch = tempfile::Builder::new().prefix("recur-wide-").tempdir().unwrap();
        let dir = scratch.path();
        let read = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            read_wide(&path, &WideOptions { categorical: vec!["state".into()], ..Default::default() }).unwrap()
        };
        let plain =
            read("plain.csv", "timestamp,flow,state\n2024-01-01 00:00,12.5,\"on, low\"\n2024-01-01 01:00,-3,off\n");
        assert_eq!(plain.signals, ["flow", "state=off", "state=on, low"]);
        assert_eq!(plain.values, [12.5, 0.0, 1.0, -3.0, 1.0, 0.0]);
        for (name, text) in [
            (
                "bom.csv",
                "\u{feff}timestamp,flow,state\r\n2024-01-01 00:00,12.5,\"on, low\"\r\n2024-01-01 01:00,-3,off\r\n",
            ),
            ("semicolons.csv", "timestamp;flow;state\n2024-01-01 00:00;12,5;on, low\n2024-01-01 01:00;-3;off\n"),
            ("tabs.csv", "timestamp\tflow\tstate\n2024-01-01 00:00\t12,5\ton, low\n2024-01-01 01:00\t-3\toff\n"),
        ] {
            let series = read(name, text);
            assert_eq!(
                (&series.signals, &series.timestamps, &series.values),
                (&plain.signals, &plain.timestamps, &plain.values),
                "{name}"
            );
        }
        assert_eq!(csv_delimiter("\"a,b\";c"), ';', "a comma inside quotes does not count");
        assert_eq!(csv_delimiter("timestamp"), ',');
    }

    #[test]
    fn out_of_range_fields_and_malformed_offsets_are_not_times() {
        for text in [
            "2024-13-01 00:00",
            "2023-02-29 00:00",
            "2024-04-31",
            "2024-03-10 24:00",
            "2024-03-10 12:60",
            "2024-03-10 12:00:00+1",
            "2024-03-10 12:00:00+01:0",
            "2024-03-10 12:00:00+25:00",
            "2024-03-10 12:00:00+01:00:00",
            "2024-03-10-01 12:00",
            "yesterday",
        ] {
            assert_eq!(parse_timestamp(text), None, "{text}");
        }
        assert!(parse_timestamp("2024-02-29 00:00").is_some(), "a leap day");
    }

    /// Any text, multi-byte characters included, is a time or not, never a panic
    /// (a byte-indexed split inside `é` would be one).
    #[test]
    fn no_text_makes_the_time_parser_panic() {
        let pieces = ["2024", "-", "03", "10", " ", "T", ":", "+", "é", "a", "1", "Z", ".", "/", "€", "0"];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(state % 12) {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                text.push_str(pieces[(state >> 33) as usize % pieces.len()]);
            }
            let _ = parse_timestamp(&text);
            let _ = not_a_time(&text, "time", EpochUnit::Seconds);
        }
        assert_eq!(parse_timestamp("2024-03-10 12:00+aé1"), None);
    }
}
