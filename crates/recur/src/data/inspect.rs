//! What a data file holds before any modelling: its layout, entities, sampling intervals
//! and missingness per signal, both in its rows and on a regular grid. `recur inspect`
//! prints this; the counts are kept (not only fractions) so that files pool exactly.

use std::collections::HashMap;
use std::path::Path;

use super::calendar::{hour_of_day, month, weekday, CalendarCycle};
use super::grid::{align_to_grid, Aggregation};
use super::long::{long_series, LongColumns, LongOptions};
use super::missing::{Cell, MissingValues};
use super::series::{Clock, TimeSeries};
use super::table::Table;
use super::wide::{wide_series, EpochUnit, WideOptions};
use super::zone::TimeZone;
use crate::error::Result;

/// How a file is laid out, as [`Inspection::read`] recognised it.
#[derive(Clone, Debug, PartialEq)]
pub enum Layout {
    /// One column per signal; the categorical (non-numeric) columns are named.
    Wide { categorical: Vec<String> },
    /// One observation per row.
    Long(LongColumns),
}

/// Missingness of one signal (a categorical column counts once, not per category).
#[derive(Clone, Debug, PartialEq)]
pub struct SignalMissingness {
    pub name: String,
    /// Rows (distinct timestamps of an entity) without a value of this signal.
    pub missing_rows: usize,
    pub rows: usize,
    /// Grid slots without any value of this signal.
    pub empty_slots: usize,
    pub slots: usize,
}

impl SignalMissingness {
    pub fn missing_in_rows(&self) -> f64 {
        self.missing_rows as f64 / self.rows.max(1) as f64
    }

    pub fn empty_on_grid(&self) -> f64 {
        self.empty_slots as f64 / self.slots.max(1) as f64
    }
}

/// A summary of one file.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    pub layout: Layout,
    /// One for a wide file; entity values (stations, patients) for a long one.
    pub entities: usize,
    /// Distinct timestamps, summed over entities.
    pub rows: usize,
    /// Median and largest step between consecutive timestamps of an entity, in seconds.
    pub median_interval: i64,
    pub longest_gap: i64,
    /// The longest entity's span, first to last timestamp, in seconds.
    pub longest_span: i64,
    /// The grid the `empty_slots` are counted on (each entity from its first to its last row).
    pub bin_seconds: i64,
    pub signals: Vec<SignalMissingness>,
    /// Wide columns with more numbers than text, read as categorical for their text
    /// (most often a historian's status string among a sensor's values).
    pub text_among_numbers: Vec<TextAmongNumbers>,
    /// What a place counts: `line` (CSV) or `row` (Parquet).
    pub place_unit: &'static str,
    /// A CSV's field separator (`,`, or `;` and tabs, whose numbers may carry a decimal
    /// comma); `,` for Parquet.
    pub delimiter: char,
    /// The CSV was read as Windows-1252, not being UTF-8.
    pub windows_1252: bool,
    /// Each categorical column of a wide file with its number of categories.
    pub category_counts: Vec<(String, usize)>,
    /// Per signal (as `signals`), how much of its variance on the grid its hour of the day,
    /// its weekday and its month explain; `None` for a categorical signal, times elapsed since each
    /// entity's start, or bins of a day or more.
    pub calendar_shares: Vec<Option<CalendarShare>>,
}

/// The share of a signal's variance that a calendar cycle explains: the between-group sum
/// of squares over the total, Σ_g n_g (x̄_g − x̄)² / Σ (x − x̄)², grouping its observed grid
/// values by hour of the day (UTC, or the file's own clock where its times carry no
/// offset; or in a time zone, [`Inspection::read_in_zone`]), by weekday or by month. Near 0: the cycle tells nothing of the level; the
/// calendar inputs (`data.calendar`) can only help if it is well above.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalendarShare {
    pub hour_of_day: f64,
    pub weekday: f64,
    pub month: f64,
}

/// Sums of a signal's observed values per group: (n, Σx, Σx²).
#[derive(Clone, Default)]
struct GroupSums(Vec<(f64, f64, f64)>);

impl GroupSums {
    fn new(groups: usize) -> Self {
        GroupSums(vec![(0.0, 0.0, 0.0); groups])
    }

    fn add(&mut self, group: usize, x: f64) {
        let g = &mut self.0[group];
        *g = (g.0 + 1.0, g.1 + x, g.2 + x * x);
    }

    /// The between-group share of the total sum of squares (0 for a constant signal).
    fn share(&self) -> f64 {
        let (n, sum, squares) = self.0.iter().fold((0.0, 0.0, 0.0), |a, g| (a.0 + g.0, a.1 + g.1, a.2 + g.2));
        let mean = sum / n.max(1.0);
        let total = squares - n * mean * mean;
        let between: f64 = self.0.iter().filter(|g| g.0 > 0.0).map(|g| g.0 * (g.1 / g.0 - mean).powi(2)).sum();
        if total > 0.0 {
            (between / total).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

/// A wide column that holds more numbers than text.
#[derive(Clone, Debug, PartialEq)]
pub struct TextAmongNumbers {
    pub column: String,
    /// Cells that read as numbers.
    pub numbers: usize,
    /// Each distinct text: how often it occurs and the place (line or row) of its first
    /// occurrence, most frequent first.
    pub texts: Vec<(String, usize, usize)>,
}

impl Inspection {
    /// Reads a CSV or Parquet file and summarises it. A file with a `value` column and a
    /// `signal` or `parameter` column is long (time in `timestamp` or `time`; entity in
    /// `entity`, `record_id`, `id` or `station` where there is one); any other is wide, its
    /// non-numeric columns categorical. `bin_seconds`: the grid; `None` takes the median
    /// interval. Cells matching `missing`'s marks are missing; integer times count
    /// `time_unit`.
    ///
    /// # Errors
    /// Every ingestion error, named.
    pub fn read(
        path: impl AsRef<Path>,
        bin_seconds: Option<i64>,
        missing: &MissingValues,
        time_unit: EpochUnit,
    ) -> Result<Inspection> {
        Inspection::read_in_zone(path, bin_seconds, missing, time_unit, None, false)
    }

    /// [`Inspection::read`], what each cycle explains grouped by the local time of `zone`
    /// (`data.time_zone`) where one is given, otherwise by the times as read; with
    /// `naive_local`, the file's naive times read as local times of `zone`
    /// (`data.naive_times = "local"`).
    ///
    /// # Errors
    /// As [`Inspection::read`].
    pub fn read_in_zone(
        path: impl AsRef<Path>,
        bin_seconds: Option<i64>,
        missing: &MissingValues,
        time_unit: EpochUnit,
        zone: Option<&TimeZone>,
        naive_local: bool,
    ) -> Result<Inspection> {
        let table = Table::read(path.as_ref())?;
        let local_times = zone.filter(|_| naive_local).cloned();
        let (layout, text_among_numbers) = detect_layout(&table, missing);
        let entities: Vec<TimeSeries> = match &layout {
            Layout::Long(columns) => {
                let options = LongOptions {
                    columns: columns.clone(),
                    missing: missing.clone(),
                    time_unit,
                    local_times,
                    ..Default::default()
                };
                long_series(&table, &options)?.into_iter().map(|(_, s)| s).collect()
            }
            Layout::Wide { categorical } => {
                let options = WideOptions {
                    categorical: categorical.clone(),
                    missing: missing.clone(),
                    time_unit,
                    local_times,
                    ..Default::default()
                };
                vec![wide_series(&table, &options)?]
            }
        };
        let mut intervals: Vec<i64> =
            entities.iter().flat_map(|s| s.timestamps.windows(2).map(|w| w[1] - w[0])).collect();
        intervals.sort_unstable();
        let median_interval = intervals.get(intervals.len() / 2).copied().unwrap_or(0);
        let bin_seconds = bin_seconds.unwrap_or(median_interval).max(1);
        // one-hot columns `wd=N`, `wd=E`… are one signal `wd`
        let first = &entities[0];
        let mut groups: Vec<(String, usize)> = Vec::new();
        for (j, name) in first.signals.iter().enumerate() {
            let base = match &layout {
                Layout::Wide { categorical } => {
                    categorical.iter().find(|c| is_category_of(name, c)).map_or(name.as_str(), String::as_str)
                }
                Layout::Long(_) => name.as_str(),
            };
            if groups.last().is_none_or(|(g, _)| g != base) {
                groups.push((base.to_string(), j));
            }
        }
        let category_counts = groups
            .iter()
            .filter(|(base, j)| first.signals[*j] != *base)
            .map(|(base, j)| (base.clone(), first.signals[*j..].iter().take_while(|s| is_category_of(s, base)).count()))
            .collect();
        let mut signals: Vec<SignalMissingness> = groups
            .iter()
            .map(|(name, _)| SignalMissingness {
                name: name.clone(),
                missing_rows: 0,
                rows: 0,
                empty_slots: 0,
                slots: 0,
            })
            .collect();
        // per signal: its observed grid values by hour of the day, weekday and month
        let cycles = entities.iter().all(|s| s.clock == Clock::Calendar) && bin_seconds < 86_400;
        let mut by_time: Vec<Option<[GroupSums; 3]>> = groups
            .iter()
            .map(|(name, j)| {
                (cycles && first.signals[*j] == *name)
                    .then(|| [GroupSums::new(24), GroupSums::new(7), GroupSums::new(12)])
            })
            .collect();
        for series in &entities {
            let grid = align_to_grid(series, bin_seconds, Aggregation::Mean)?;
            let c = series.channels();
            // each grid step's hour, weekday and month, once for all signals
            let times: Vec<[usize; 3]> = match cycles {
                true => (0..grid.len() as i64)
                    .map(|n| grid.start + n * grid.bin_seconds)
                    .map(|at| at + zone.map_or(0, |z| i64::from(z.offset_at(at))))
                    .map(|at| [hour_of_day(at), weekday(at), month(at)])
                    .collect(),
                false => Vec::new(),
            };
            for ((summary, &(_, j)), sums) in signals.iter_mut().zip(&groups).zip(&mut by_time) {
                summary.rows += series.len();
                summary.missing_rows += (0..series.len()).filter(|&n| !series.observed[n * c + j]).count();
                summary.slots += grid.len();
                summary.empty_slots += (0..grid.len()).filter(|&n| !grid.observed[n * c + j]).count();
                if let Some(sums) = sums {
                    for (n, groups) in times.iter().enumerate().filter(|&(n, _)| grid.observed[n * c + j]) {
                        let x = f64::from(grid.values[n * c + j]);
                        for (cycle, &g) in sums.iter_mut().zip(groups) {
                            cycle.add(g, x);
                        }
                    }
                }
            }
        }
        let calendar_shares = by_time
            .iter()
            .map(|s| {
                s.as_ref().map(|[h, d, m]| CalendarShare {
                    hour_of_day: h.share(),
                    weekday: d.share(),
                    month: m.share(),
                })
            })
            .collect();
        Ok(Inspection {
            layout,
            entities: entities.len(),
            rows: entities.iter().map(TimeSeries::len).sum(),
            median_interval,
            longest_gap: intervals.last().copied().unwrap_or(0),
            longest_span: entities
                .iter()
                .map(|s| s.timestamps.last().zip(s.timestamps.first()).map_or(0, |(l, f)| l - f))
                .max()
                .unwrap_or(0),
            bin_seconds,
            signals,
            text_among_numbers,
            place_unit: table.place_unit(),
            delimiter: table.delimiter,
            windows_1252: table.windows_1252,
            category_counts,
            calendar_shares,
        })
    }

    /// Grid slots without a value, pooled over every signal and entity.
    pub fn empty_on_grid(&self) -> f64 {
        let empty: usize = self.signals.iter().map(|s| s.empty_slots).sum();
        empty as f64 / self.signals.iter().map(|s| s.slots).sum::<usize>().max(1) as f64
    }

    /// How many categories a categorical column of a wide file holds (its one-hot signals).
    pub fn categories(&self, column: &str) -> usize {
        self.category_counts.iter().find(|(c, _)| c == column).map_or(0, |(_, n)| *n)
    }

    /// The calendar cycles worth a model's inputs (`data.calendar`), each with the signals
    /// it explains at least `share` of (name and share, largest first): the day by the hour,
    /// the week by the weekday, the year by the month — the year only over two years of
    /// data or more, where a month's share is a season rather than a trend.
    pub fn suggested_calendar(&self, share: f64) -> Vec<(CalendarCycle, Vec<(String, f64)>)> {
        let two_years = self.longest_span >= 2 * 31_556_952;
        let by = |cycle: CalendarCycle, pick: fn(&CalendarShare) -> f64| {
            let mut named: Vec<(String, f64)> = self
                .signals
                .iter()
                .zip(&self.calendar_shares)
                .filter_map(|(s, c)| c.as_ref().map(|c| (s.name.clone(), pick(c))))
                .filter(|&(_, v)| v >= share)
                .collect();
            named.sort_by(|a, b| b.1.total_cmp(&a.1));
            (!named.is_empty()).then_some((cycle, named))
        };
        [
            by(CalendarCycle::Day, |c| c.hour_of_day),
            by(CalendarCycle::Week, |c| c.weekday),
            by(CalendarCycle::Year, |c| c.month).filter(|_| two_years),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The missingness of a signal, by name.
    pub fn signal(&self, name: &str) -> Option<&SignalMissingness> {
        self.signals.iter().find(|s| s.name == name)
    }
}

/// Whether `signal` is a one-hot signal of the categorical column `column` (`wd=N` of `wd`).
fn is_category_of(signal: &str, column: &str) -> bool {
    signal.strip_prefix(column).is_some_and(|rest| rest.starts_with('='))
}

/// The layout, and the wide columns that hold more numbers than text.
fn detect_layout(table: &Table, missing: &MissingValues) -> (Layout, Vec<TextAmongNumbers>) {
    let pick = |names: &[&str]| names.iter().find_map(|n| table.column(n)).map(|i| table.names[i].clone());
    if let (Some(time), Some(signal), Some(value)) =
        (pick(&["timestamp", "time"]), pick(&["signal", "parameter"]), pick(&["value"]))
    {
        let entity = pick(&["entity", "record_id", "id", "station"]).unwrap_or_default();
        return (Layout::Long(LongColumns { time, signal, value, entity }), Vec::new());
    }
    let time_like = ["timestamp", "time", "date", "year", "month", "day", "hour", "minute", "__index_level_0__"];
    let (mut categorical, mut mixed) = (Vec::new(), Vec::new());
    for (i, name) in table.names.iter().enumerate() {
        if name.is_empty() || time_like.iter().any(|t| name.eq_ignore_ascii_case(t)) {
            continue;
        }
        let reader = table.cell_reader(missing, name);
        let mut numbers = 0;
        // each distinct text: (count, first place)
        let mut texts: HashMap<&str, (usize, usize)> = HashMap::new();
        for (place, fields) in table.rows() {
            let cell = fields.get(i).trim();
            match reader.read::<f64>(cell) {
                Cell::Missing => {}
                Cell::Number(_) => numbers += 1,
                Cell::Text => texts.entry(cell).or_insert((0, place)).0 += 1,
            }
        }
        if texts.is_empty() {
            continue;
        }
        categorical.push(name.clone());
        if numbers > texts.values().map(|t| t.0).sum() {
            let mut texts: Vec<(String, usize, usize)> =
                texts.into_iter().map(|(text, (count, first))| (text.to_string(), count, first)).collect();
            texts.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
            mixed.push(TextAmongNumbers { column: name.clone(), numbers, texts });
        }
    }
    (Layout::Wide { categorical }, mixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Synthetic (a unit test of the report): a historian's status strings among numbers.
    #[test]
    fn text_among_numbers_is_reported_with_counts_and_first_lines_until_named_missing() {
        let scratch = tempfile::Builder::new().prefix("recur-inspect-").tempdir().unwrap();
        let dir = scratch.path();
        let path = dir.join("historian.csv");
        let rows = "timestamp,flow,state\n0,1.5,OPEN\n60,Bad,OPEN\n120,2.5,SHUT\n180,I/O Timeout,OPEN\n240,3,OPEN\n\
                    300,Bad,SHUT\n360,4,OPEN\n";
        std::fs::write(&path, rows).unwrap();
        let report = Inspection::read(&path, None, &MissingValues::default(), EpochUnit::Seconds).unwrap();
        assert_eq!(report.layout, Layout::Wide { categorical: vec!["flow".into(), "state".into()] });
        assert_eq!(report.place_unit, "line");
        let expected = TextAmongNumbers {
            column: "flow".into(),
            numbers: 4,
            texts: vec![("Bad".into(), 2, 3), ("I/O Timeout".into(), 1, 5)],
        };
        assert_eq!(report.text_among_numbers, [expected], "state is text alone: a category, not a note");
        assert_eq!((report.categories("flow"), report.categories("state")), (6, 2));

        let marks = MissingValues::new(&["Bad".into(), "I/O Timeout".into()], &Default::default()).unwrap();
        let report = Inspection::read(&path, None, &marks, EpochUnit::Seconds).unwrap();
        assert_eq!(report.layout, Layout::Wide { categorical: vec!["state".into()] });
        assert!(report.text_among_numbers.is_empty());
        let flow = report.signal("flow").unwrap();
        assert_eq!((flow.missing_rows, flow.rows), (3, 7));
    }
}
