//! A live feed's rows read as the run's training data was read: the layout its header
//! gives, and each row's values, time and entity.

use std::collections::HashMap;

use crate::data::{
    csv_fields_separated, csv_header, not_a_time, one_hot_of, one_hot_value, parse_long_time_naive,
    without_byte_order_mark, CellReader, Clock, EpochUnit, MissingValues, TimeColumns,
};
use crate::run::{DataConfig, DataFormat};
use crate::tasks::LiveStream;

/// A feed's header or row refused: the entity whose rows it breaks (a feed with
/// entities), the column at fault, where one is, and why. The caller knows the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedError {
    pub entity: Option<String>,
    pub column: Option<String>,
    pub why: String,
}

impl FeedError {
    pub(crate) fn new(why: impl Into<String>) -> Self {
        FeedError { entity: None, column: None, why: why.into() }
    }

    /// The error at `line` of `source`: ``source: line 6, column `PM10`: why``, or with
    /// `` (entity `132540`)`` where the entity's rows are at fault.
    pub fn at(&self, source: &str, line: usize) -> String {
        format!("{source}: line {line}{self}")
    }
}

impl std::fmt::Display for FeedError {
    /// `, column `C`` and ` (entity `E`)` where known, then `: why`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(column) = &self.column {
            write!(f, ", column `{column}`")?;
        }
        if let Some(entity) = &self.entity {
            write!(f, " (entity `{entity}`)")?;
        }
        write!(f, ": {}", self.why)
    }
}

impl std::error::Error for FeedError {}

/// How a feed's rows give the run's signals, in the layout of its training data.
enum Feed {
    /// One column per signal (a categorical one's categories one-hot); with `time`, each
    /// row at its own time, aligned onto the grid; without, each row one grid step.
    Wide { sources: Vec<FeedColumn>, time: Option<TimeColumns> },
    /// `time,signal,value[,entity]` rows (`data.columns`), each one value of one signal at
    /// its time (aligned onto the grid); rows of other signals are passed over, as in
    /// training. `signals`: each run signal's index and reader.
    Long {
        time: usize,
        signal: usize,
        value: usize,
        entity: Option<usize>,
        signals: HashMap<String, (usize, CellReader)>,
    },
}

/// A row as [`FeedLayout::read`] reads it.
pub(crate) enum FeedRow {
    /// A row that is one grid step (a wide feed not aligned): its time where the model reads
    /// the calendar (and whether it is naive: no UTC offset), each signal's value, the cells
    /// passed through.
    OnGrid { at: Option<(i64, bool)>, values: Vec<Option<f32>>, passed: Vec<String> },
    /// A row at its own time, to be aligned onto its entity's grid: the time, its clock and
    /// whether it is naive, the entity (a long feed with an entity column), each signal's
    /// value (`None`: none in this row), read in the precision the training reader reads it
    /// (f32 wide, f64 long).
    Timed { at: (i64, Clock, bool), entity: Option<String>, values: Vec<Option<f64>> },
}

/// Where one of the run's signals is in the feed: a column of numbers, or one category of a
/// categorical column (`data.categorical`), one-hot as training read it.
struct FeedColumn {
    column: usize,
    category: Option<String>,
    reader: CellReader,
}

impl FeedColumn {
    /// Signal `s` among the feed's column `names`: its own column, or, for a categorical
    /// column's category (`wd=NNE`), that column; otherwise why not.
    fn find(
        s: &str,
        names: &[String],
        categorical: &[String],
        missing: &MissingValues,
        delimiter: char,
    ) -> Result<Self, String> {
        let position = |column: &str| names.iter().position(|n| n == column);
        if let Some(column) = position(s) {
            return Ok(FeedColumn { column, category: None, reader: missing.of(s).separated_by(delimiter) });
        }
        let Some((c, category)) = one_hot_of(s, categorical) else {
            return Err(format!("no column `{s}`"));
        };
        let column =
            position(c).ok_or_else(|| format!("no column `{c}` (data.categorical: its values are signals)"))?;
        Ok(FeedColumn { column, category: Some(category.to_string()), reader: missing.of(c).separated_by(delimiter) })
    }

    /// The signal's value in a row's `fields` (`None` where the cell holds no value).
    fn value(&self, fields: &[String]) -> Result<Option<f32>, String> {
        let cell = fields[self.column].trim();
        match &self.category {
            None => self.reader.value::<f32>(cell),
            Some(category) => Ok(one_hot_value(&self.reader, cell, category)),
        }
    }
}

/// How a feed's header says its rows give a run's signals: one column per signal (a
/// categorical one's categories one-hot), each row one grid step or, with a time column
/// and alignment asked for, each row at its own time; or, for a run trained on a long
/// table, `time,signal,value[,entity]` rows (`data.columns`), each entity on its own grid.
/// Cells are read as training read them: its marks of "no value" (`data.missing_values`),
/// its time unit, a `;`- or tab-separated feed's decimal commas.
pub struct FeedLayout {
    feed: Feed,
    names: Vec<String>,
    delimiter: char,
    time_unit: EpochUnit,
    /// Rows at their own times, aligned onto the grid (a long feed's always are).
    align: bool,
    /// The time columns of rows already on the grid, for a model reading the calendar.
    row_time: Option<TimeColumns>,
    /// The columns passed through (rows already on the grid).
    passed: Vec<usize>,
    /// The entity column's name (a long feed with one): each entity on its own grid,
    /// with its own state.
    entity: Option<String>,
}

impl FeedLayout {
    /// The layout of a feed with `header` (its first line) for streams like `stream` of a
    /// run trained with `data`, its rows aligned by time where `align` asks (a long feed's
    /// always are); otherwise why not (the header's fault).
    pub fn of_header(header: &str, stream: &LiveStream, data: &DataConfig, align: bool) -> Result<Self, FeedError> {
        let (delimiter, names) = csv_header(without_byte_order_mark(header));
        // the run's marks of "no value" (data.missing_values), as its training data was read
        let missing = data.missing().map_err(|e| FeedError::new(format!("the run's data.missing_values: {e}")))?;
        // a long run's feed may be long (`data.columns` in its header) or one column per signal
        let c = &data.columns;
        let long = data.format == DataFormat::Long && [&c.time, &c.signal, &c.value].iter().all(|n| names.contains(n));
        let feed = match long {
            false => {
                let sources = stream
                    .signals()
                    .iter()
                    .map(|s| FeedColumn::find(s, &names, &data.categorical, &missing, delimiter))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(FeedError::new)?;
                // aligned: the feed's time column(s), found as the training data's were
                let time = match align {
                    false => None,
                    true => Some(TimeColumns::find(&names).ok_or_else(|| {
                        FeedError::new(
                            "no time column for --align (`timestamp`, `time`, `date` or `year,month,day[,hour]`)",
                        )
                    })?),
                };
                Feed::Wide { sources, time }
            }
            true => {
                let column = |name: &str| names.iter().position(|n| n == name).unwrap_or_default();
                let entity = if c.entity.is_empty() { None } else { names.iter().position(|n| *n == c.entity) };
                let signals = stream
                    .signals()
                    .iter()
                    .enumerate()
                    .map(|(j, s)| (s.clone(), (j, missing.of(s).separated_by(delimiter))))
                    .collect();
                Feed::Long {
                    time: column(&c.time),
                    signal: column(&c.signal),
                    value: column(&c.value),
                    entity,
                    signals,
                }
            }
        };
        // rows at their own times are aligned onto the grid; a long feed's always are
        let align = matches!(feed, Feed::Long { .. } | Feed::Wide { time: Some(_), .. });
        // rows already on the grid give a model reading the calendar each step's time
        let row_time = match !align && stream.reads_calendar() {
            false => None,
            true => Some(TimeColumns::find(&names).ok_or_else(|| {
                FeedError::new(format!(
                    "the run reads calendar inputs (data.calendar = {:?}): each row needs its time (a column `timestamp`, `time`, `date` or `year,month,day[,hour]`)",
                    data.calendar.iter().map(|c| c.name()).collect::<Vec<_>>()
                ))
            })?),
        };
        // a row's other columns pass through; aligned, a step is a bin of rows, so none do
        let passed: Vec<usize> = match &feed {
            Feed::Wide { sources, time: None } => {
                (0..names.len()).filter(|&i| sources.iter().all(|f| f.column != i)).collect()
            }
            _ => Vec::new(),
        };
        let entity = matches!(feed, Feed::Long { entity: Some(_), .. }).then(|| c.entity.clone());
        Ok(FeedLayout { feed, names, delimiter, time_unit: data.time_unit, align, row_time, passed, entity })
    }

    /// Whether rows at their own times are aligned onto the grid (otherwise each row is one
    /// grid step).
    pub fn is_aligned(&self) -> bool {
        self.align
    }

    /// The entity column's name, in a feed whose rows belong to entities.
    pub fn entity_column(&self) -> Option<&str> {
        self.entity.as_deref()
    }

    /// The time column's name, where the feed has one column of times.
    pub(crate) fn time_column(&self) -> Option<String> {
        let column = match (&self.feed, &self.row_time) {
            (Feed::Long { time, .. }, _) => *time,
            (Feed::Wide { time: Some(TimeColumns::Single(i)), .. }, _) | (_, Some(TimeColumns::Single(i))) => *i,
            _ => return None,
        };
        Some(self.names[column].clone())
    }

    /// The columns a row already on the grid passes through to its answer, by name.
    pub fn passed_columns(&self) -> Vec<&str> {
        self.passed.iter().map(|&i| self.names[i].as_str()).collect()
    }

    /// Whether a long feed's values of one signal at one time are averaged (the long
    /// reader's rule) rather than refused as a duplicate time.
    pub(crate) fn averages_same_time(&self) -> bool {
        matches!(self.feed, Feed::Long { .. })
    }

    /// A non-empty `line` of the feed, read; `None` for a long row that training's reader
    /// passes over (another signal's, or no value: such rows neither open nor move the grid).
    pub(crate) fn read(&self, line: &str) -> Result<Option<FeedRow>, FeedError> {
        let fields = csv_fields_separated(line, self.delimiter);
        if fields.len() != self.names.len() {
            return Err(FeedError::new(format!("{} fields, the header has {}", fields.len(), self.names.len())));
        }
        // a cell that cannot be read: the column where one is at fault
        let at_fault = |(column, why): (Option<usize>, String)| FeedError {
            entity: None,
            column: column.map(|i| self.names[i].clone()),
            why,
        };
        let unit = self.time_unit;
        match &self.feed {
            Feed::Wide { sources, time } => {
                let values = sources
                    .iter()
                    .map(|f| f.value(&fields).map_err(|why| (Some(f.column), why)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(at_fault)?;
                match time {
                    Some(time) => {
                        let (at, naive) = time.read_naive(|i| &fields[i], unit).map_err(at_fault)?;
                        let values = values.into_iter().map(|v| v.map(f64::from)).collect();
                        Ok(Some(FeedRow::Timed { at: (at, Clock::Calendar, naive), entity: None, values }))
                    }
                    None => {
                        let at = self.row_time.as_ref().map(|t| t.read_naive(|i| &fields[i], unit)).transpose();
                        let passed = self.passed.iter().map(|&i| fields[i].clone()).collect();
                        Ok(Some(FeedRow::OnGrid { at: at.map_err(at_fault)?, values, passed }))
                    }
                }
            }
            Feed::Long { time, signal, value, entity, signals } => {
                let Some((j, reader)) = signals.get(fields[*signal].trim()) else { return Ok(None) };
                let Some(v) =
                    reader.value::<f64>(fields[*value].trim()).map_err(|why| at_fault((Some(*value), why)))?
                else {
                    return Ok(None);
                };
                let cell = fields[*time].trim();
                let at = parse_long_time_naive(cell, unit)
                    .ok_or_else(|| at_fault((Some(*time), not_a_time(cell, "time", unit))))?;
                let mut values = vec![None; signals.len()];
                values[*j] = Some(v);
                let entity = entity.map(|e| fields[e].trim().to_string());
                Ok(Some(FeedRow::Timed { at, entity, values }))
            }
        }
    }
}
