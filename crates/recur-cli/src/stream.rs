//! `recur stream`: a causal run as a live service, one grid step per CSV row in, its
//! answer out at once, the state carried — the next step's forecast (or the next N steps',
//! direct, then in closed loop) for a prediction run, every signal filled with a ±2σ band for a
//! reconstruction run; with `--flag`, each value watched for alarms ([`Watch`]); each entity
//! of a long feed with its own state; with `--state`, that state carried from one feed (or
//! one process) to the next.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use recur::data::{
    csv_fields_separated, csv_header, csv_quoted, not_a_time, one_hot_of, one_hot_value, parse_long_time,
    without_byte_order_mark, CellReader, Clock, EpochUnit, LiveGrid, LiveGridState, MissingValues, TimeColumns,
};
use recur::run::ServedRun;
use recur::run::{DataFormat, TaskKind};
use recur::tasks::anomaly::{KeptAlarms, Watch, WatchCounts, WatchState, WatchStep, ALARMS_FILE};
use recur::tasks::{LiveAnswer, LiveState, LiveStream};
use recur::Rng;
use serde::{Deserialize, Serialize};

use crate::args::Args;
use crate::run_folder::{open_run_for_serving, tell_calibration};

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

/// A row as read: its time and clock where the feed is aligned, its entity (long feeds
/// with an entity column), and each signal's value (`None`: none in this row), read in the
/// precision the training reader reads it (f32 wide, f64 long).
struct FeedRow {
    time: Option<(i64, Clock)>,
    entity: Option<String>,
    values: Vec<Option<f64>>,
}

impl Feed {
    /// A row's `fields` of a feed of `c` signals (integer times counting `unit`), `None` for
    /// a long row that training's reader passes over (another signal's, or no value: such
    /// rows neither open nor move the grid); otherwise the column at fault, if one, and why.
    fn read(&self, fields: &[String], c: usize, unit: EpochUnit) -> Result<Option<FeedRow>, (Option<usize>, String)> {
        match self {
            Feed::Wide { sources, time } => {
                let values = sources
                    .iter()
                    .map(|f| Ok(f.value(fields).map_err(|why| (Some(f.column), why))?.map(f64::from)))
                    .collect::<Result<Vec<_>, _>>()?;
                let time = time.as_ref().map(|t| t.read(|i| &fields[i], unit)).transpose()?;
                Ok(Some(FeedRow { time: time.map(|t| (t, Clock::Calendar)), entity: None, values }))
            }
            Feed::Long { time, signal, value, entity, signals } => {
                let Some((j, reader)) = signals.get(fields[*signal].trim()) else { return Ok(None) };
                let Some(v) = reader.value::<f64>(fields[*value].trim()).map_err(|why| (Some(*value), why))? else {
                    return Ok(None);
                };
                let cell = fields[*time].trim();
                let at = parse_long_time(cell, unit).ok_or_else(|| (Some(*time), not_a_time(cell, "time", unit)))?;
                let mut values = vec![None; c];
                values[*j] = Some(v);
                let entity = entity.map(|e| fields[e].trim().to_string());
                Ok(Some(FeedRow { time: Some(at), entity, values }))
            }
        }
    }
}

/// A complete grid step: its bin's start, that time as the data writes times, and each
/// signal's value.
type GridStep = (i64, String, Vec<Option<f32>>);

/// One entity's rows at their own times onto the run's grid, as training read and aligned
/// them: one clock; a wide feed's times increasing, a long feed's values of one signal at
/// one time averaged first (the long reader's rule); each complete bin handed on with its
/// time as the data writes times.
struct FeedAligner {
    grid: LiveGrid,
    /// Whether rows of one time are averaged (a long feed) rather than refused (wide).
    long: bool,
    clock: Option<Clock>,
    /// The rows of the latest time, gathered before they go onto the grid.
    pending: Option<SameTime>,
}

impl FeedAligner {
    /// Adds a row with a time; the bins its time completes, oldest first. Otherwise why not.
    fn add(&mut self, row: &FeedRow) -> Result<Vec<GridStep>, String> {
        let Some((at, clock)) = row.time else { return Ok(Vec::new()) };
        if *self.clock.get_or_insert(clock) != clock {
            let first = self.clock.map_or("", Clock::description);
            return Err(format!("{}, but the rows before hold {first}", clock.description()));
        }
        let mut completed = Vec::new();
        match &mut self.pending {
            Some(p) if at == p.time && self.long => p.add(&row.values),
            Some(p) if at <= p.time => {
                let what = if at == p.time { "duplicate" } else { "decreasing" };
                return Err(format!("{what} time (rows must come in time order)"));
            }
            _ => {
                if let Some(p) = self.pending.take() {
                    self.push(p.time, &p.values(), &mut completed)?;
                }
                // the new time completes the bins before its own
                self.push(at, &vec![None; row.values.len()], &mut completed)?;
                self.pending = Some(SameTime::new(at, &row.values));
            }
        }
        Ok(completed)
    }

    /// What it holds between rows: the open bin, the clock, the rows of the latest time.
    fn state(&self) -> AlignerState {
        AlignerState { grid: self.grid.state(), clock: self.clock, pending: self.pending.clone() }
    }

    /// Goes on from `state` ([`FeedAligner::state`]); otherwise why not.
    fn restore(&mut self, state: AlignerState) -> Result<(), String> {
        let signals = self.grid.channels();
        if let Some(p) = state.pending.as_ref().filter(|p| p.sums.len() != signals) {
            return Err(format!("rows of {} signals pending; the run reads {signals}", p.sums.len()));
        }
        self.grid.restore(&state.grid).map_err(|e| e.to_string())?;
        (self.clock, self.pending) = (state.clock, state.pending);
        Ok(())
    }

    /// Ends the feed: the bins left, its last among them.
    fn finish(&mut self) -> Vec<GridStep> {
        let mut completed = Vec::new();
        if let Some(p) = self.pending.take() {
            // after every earlier time: the grid takes it
            let _ = self.push(p.time, &p.values(), &mut completed);
        }
        let clock = self.clock.unwrap_or_default();
        self.grid.finish(|start, step| completed.push((start, clock.format(start), step.to_vec())));
        completed
    }

    fn push(&mut self, time: i64, values: &[Option<f32>], completed: &mut Vec<GridStep>) -> Result<(), String> {
        let clock = self.clock.unwrap_or_default();
        self.grid
            .push(time, values, |start, step| completed.push((start, clock.format(start), step.to_vec())))
            .map_err(|e| e.to_string())
    }
}

/// The rows of one time before they go onto the grid: each signal's values summed, to be
/// averaged as the long reader averages several values of one signal at one time.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SameTime {
    time: i64,
    sums: Vec<(f64, u32)>,
}

impl SameTime {
    fn new(time: i64, values: &[Option<f64>]) -> Self {
        let mut row = SameTime { time, sums: vec![(0.0, 0); values.len()] };
        row.add(values);
        row
    }

    fn add(&mut self, values: &[Option<f64>]) {
        for (slot, v) in self.sums.iter_mut().zip(values) {
            if let Some(v) = v {
                *slot = (slot.0 + v, slot.1 + 1);
            }
        }
    }

    /// Each signal's mean at this time (`None`: no value).
    fn values(&self) -> Vec<Option<f32>> {
        self.sums.iter().map(|&(sum, n)| (n > 0).then(|| (sum / f64::from(n)) as f32)).collect()
    }
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

/// The output columns after the passed ones (a prediction `horizon` steps ahead, each
/// forecast with a band followed by it: ±2σ or the quantiles; with sample paths, every
/// step's; a reconstruction's every signal, whether filled, and the band of a filled value).
fn answer_header(live: &LiveStream, horizon: usize, paths: usize) -> Vec<String> {
    match live {
        LiveStream::Prediction(s) => {
            let banded = match (s.has_band(), paths) {
                (false, _) => 0,
                (true, 0) => horizon.min(s.steps_ahead()),
                (true, _) => horizon,
            };
            (1..=horizon)
                .flat_map(|h| {
                    s.targets().iter().flat_map(move |name| {
                        let column = if horizon > 1 { format!("{name}_t+{h}") } else { format!("{name}_next") };
                        let band = (h <= banded).then(|| [format!("{column}_low"), format!("{column}_high")]);
                        std::iter::once(column).chain(band.into_iter().flatten())
                    })
                })
                .collect()
        }
        LiveStream::Reconstruction(s) => s
            .signals()
            .iter()
            .flat_map(|s| [s.clone(), format!("{s}_filled"), format!("{s}_low"), format!("{s}_high")])
            .collect(),
    }
}

/// An answer's cells under [`answer_header`]: the forecasts, each followed by its ±2σ band
/// where it has one; or per signal the value (observed, or filled), 1 where filled, and the
/// ±2σ band of a filled value.
fn answer_cells(answer: &LiveAnswer, values: &[Option<f32>]) -> Vec<String> {
    match answer {
        LiveAnswer::Forecast(f) => f
            .values
            .iter()
            .enumerate()
            .flat_map(|(k, &v)| {
                let band = f.low.get(k).zip(f.high.get(k)).map(|(&low, &high)| [low.to_string(), high.to_string()]);
                std::iter::once(v.to_string()).chain(band.into_iter().flatten())
            })
            .collect(),
        LiveAnswer::Filled(filled) => filled
            .iter()
            .zip(values)
            .flat_map(|(r, v)| match v {
                Some(v) => [v.to_string(), "0".into(), String::new(), String::new()],
                None => [r.value.to_string(), "1".into(), r.low.to_string(), r.high.to_string()],
            })
            .collect(),
    }
}

/// `--flag S`: a [`Watch`] over each entity's stream, with the alarms the run keeps; its
/// scores as columns and its counts on stderr.
struct Flags {
    kept: Option<KeptAlarms>,
    threshold: f32,
    join: usize,
    /// The flatline rule's reach (the window's `window − 1`).
    reach: usize,
    targets: Vec<String>,
    flatline: bool,
}

impl Flags {
    /// For streams like `live` of `run`, flagging above `threshold`, flags at most `join`
    /// steps apart one episode.
    fn open(run: &ServedRun, live: &LiveStream, (threshold, join): (f32, usize)) -> Result<Flags, String> {
        let dir = &run.dir;
        let kept = run.kept_alarms().map_err(|e| format!("--flag: {e}"))?;
        if let Some(kept) = &kept {
            eprintln!(
                "surprises scaled by {} (each signal's alarm rate {} % above {} on the validation part)",
                dir.join(ALARMS_FILE).display(),
                100.0 * kept.scales.rate,
                kept.scales.threshold
            );
        }
        let reach = run.flatline_reach();
        let watch = Watch::new(live, threshold, join, kept.as_ref(), reach).map_err(|e| match live {
            LiveStream::Prediction(s) if !s.has_band() && kept.is_none() => format!(
                "{}: --flag: the model has no band (task.uncertainty) and the run keeps no validation errors to band \
                 it by: `recur detect --run {0} --alarm-rate RATE` keeps them (in {ALARMS_FILE})",
                dir.display()
            ),
            _ => format!("{}: --flag: {e}", dir.display()),
        })?;
        let (targets, flatline) = (watch.targets().to_vec(), watch.has_flatline());
        Ok(Flags { kept, threshold, join, reach, targets, flatline })
    }

    /// A fresh watch over an entity's stream `live`.
    fn watch(&self, live: &LiveStream) -> recur::Result<Watch> {
        Watch::new(live, self.threshold, self.join, self.kept.as_ref(), self.reach)
    }

    /// The columns its cells go under: `SIGNAL_surprise`, and with the flatline rule
    /// `SIGNAL_flatline`, per target; then `new_alarms`, the targets whose episode begins at
    /// the step (`;` between them).
    fn header(&self) -> Vec<String> {
        let mut columns: Vec<String> = self.targets.iter().map(|t| format!("{t}_surprise")).collect();
        if self.flatline {
            columns.extend(self.targets.iter().map(|t| format!("{t}_flatline")));
        }
        columns.push("new_alarms".into());
        columns
    }

    /// A step as a watch scored it: its cells under [`Flags::header`].
    fn cells(&self, step: &WatchStep) -> Vec<String> {
        let surprise_cells = step.surprises.iter().map(|s| s.map_or(String::new(), |s| s.surprise.to_string()));
        let flatline_cells = step.flatline.iter().map(|f| f.map_or(String::new(), |f| f.to_string()));
        let begun: Vec<&str> = step.new_alarms.iter().map(|&t| self.targets[t].as_str()).collect();
        let alarm_cell = csv_quoted(&begun.join(";"));
        surprise_cells.chain(flatline_cells).chain(std::iter::once(alarm_cell)).collect()
    }

    /// What the watches of `entities` counted in this feed, together, on stderr.
    fn report(&self, entities: &[EntityLive]) {
        let mut total = vec![WatchCounts::default(); self.targets.len()];
        for entity in entities {
            let Some(watch) = &entity.watch else { continue };
            for (t, (sum, c)) in total.iter_mut().zip(watch.counts()).enumerate() {
                let before = entity.counted_before.get(t).copied().unwrap_or_default();
                sum.flagged += c.flagged - before.flagged;
                sum.withheld += c.withheld - before.withheld;
                sum.flatline += c.flatline - before.flatline;
                sum.episodes += c.episodes - before.episodes;
            }
        }
        let counts = |of: &dyn Fn(&WatchCounts) -> usize, with: &dyn Fn(&WatchCounts) -> String| -> String {
            let named: Vec<String> = self
                .targets
                .iter()
                .zip(&total)
                .filter(|(_, c)| of(c) > 0)
                .map(|(name, c)| format!("{name} {}", with(c)))
                .collect();
            if named.is_empty() {
                "none".to_string()
            } else {
                named.join(", ")
            }
        };
        let sum = |of: &dyn Fn(&WatchCounts) -> usize| total.iter().map(of).sum::<usize>();
        let flag = self.threshold;
        eprintln!(
            "{} values more than {flag} σ (of their band) from what the model expected ({}); withheld from the model \
             (fed as gaps) unless their signal's value the step before was",
            sum(&|c| c.flagged),
            counts(&|c| c.flagged, &|c| format!("{} ({} withheld)", c.flagged, c.withheld))
        );
        if self.flatline {
            eprintln!(
                "{} values ending a run of equal readings scored above {flag} by the flatline rule (a SIGNAL_flatline \
                 column; {}): a sensor frozen?",
                sum(&|c| c.flatline),
                counts(&|c| c.flatline, &|c| c.flatline.to_string())
            );
        }
        eprintln!(
            "{} episodes (a signal's flags at most {} steps apart: one; --join): {}",
            sum(&|c| c.episodes),
            self.join,
            counts(&|c| c.episodes, &|c| c.episodes.to_string())
        );
    }
}

/// One entity of the feed live: its stream, its watch (`--flag`), and the grid its rows go
/// onto (a feed aligned by time).
struct EntityLive<'r> {
    /// Its name (a long feed's entity column; empty: the feed's only one).
    name: String,
    stream: LiveStream<'r>,
    watch: Option<Watch>,
    /// Its watch's counts from the feeds before this one (`--state`).
    counted_before: Vec<WatchCounts>,
    aligner: FeedAligner,
}

/// [`FeedAligner`]'s state between rows.
#[derive(Serialize, Deserialize)]
struct AlignerState {
    grid: LiveGridState,
    clock: Option<Clock>,
    pending: Option<SameTime>,
}

/// `--state FILE`: what a stream carries from one feed to the next, per entity.
#[derive(Serialize, Deserialize)]
struct SavedStream {
    /// The run's signals, in its order, and its model's fingerprint (a state of another
    /// run, or of a model since retrained, is refused).
    signals: Vec<String>,
    model: String,
    entities: Vec<SavedEntity>,
    /// The generator of `--samples`' paths, where it has drawn.
    #[serde(default)]
    rng: Option<Rng>,
    /// The feed rows read into this state, over every feed since the file was made: after
    /// a stream that stopped without ending its feed (`--state-every`), where to go on.
    #[serde(default)]
    rows: u64,
}

#[derive(Serialize, Deserialize)]
struct SavedEntity {
    name: String,
    stream: LiveState,
    /// Its watch, where the feed was watched (`--flag`).
    watch: Option<WatchState>,
    aligner: AlignerState,
}

impl EntityLive<'_> {
    fn saved(&self) -> SavedEntity {
        SavedEntity {
            name: self.name.clone(),
            stream: self.stream.state(),
            watch: self.watch.as_ref().map(Watch::state),
            aligner: self.aligner.state(),
        }
    }

    /// Goes on from `saved`; a watch saved where this feed is not watched is dropped, and
    /// one this feed watches but none was saved for starts now.
    fn restore(&mut self, saved: SavedEntity) -> Result<(), String> {
        self.stream.restore(&saved.stream).map_err(|e| e.to_string())?;
        if let (Some(watch), Some(state)) = (self.watch.as_mut(), saved.watch.as_ref()) {
            watch.restore(state).map_err(|e| e.to_string())?;
            self.counted_before = state.counts.clone();
        }
        self.aligner.restore(saved.aligner)
    }
}

/// How a feed's header says its rows give the run's signals: the feed, whether its rows
/// are aligned by time onto the grid, the time columns of rows already on the grid (a
/// model reading the calendar), and the columns passed through.
struct FeedLayout {
    feed: Feed,
    align: bool,
    row_time: Option<TimeColumns>,
    passed: Vec<usize>,
    /// A long feed with an entity column: each entity on its own grid, with its own state.
    by_entity: bool,
}

impl FeedLayout {
    /// From the feed's column `names` (separated by `delimiter`) for streams like `stream`
    /// of a run trained with `data` (its marks of no value `missing`), its rows aligned by
    /// time where `align` asks (a long feed's always are); otherwise why not (line 1's fault).
    fn of_header(
        (names, delimiter): (&[String], char),
        (data, missing): (&recur::run::DataConfig, &MissingValues),
        stream: &LiveStream,
        align: bool,
    ) -> Result<FeedLayout, String> {
        // a long run's feed may be long (`data.columns` in its header) or one column per signal
        let c = &data.columns;
        let long = data.format == DataFormat::Long && [&c.time, &c.signal, &c.value].iter().all(|n| names.contains(n));
        let feed = match long {
            false => {
                let sources = stream
                    .signals()
                    .iter()
                    .map(|s| FeedColumn::find(s, names, &data.categorical, missing, delimiter))
                    .collect::<Result<Vec<_>, _>>()?;
                // aligned: the feed's time column(s), found as the training data's were
                let time = match align {
                    false => None,
                    true => Some(TimeColumns::find(names).ok_or(
                        "no time column for --align (`timestamp`, `time`, `date` or `year,month,day[,hour]`)",
                    )?),
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
            true => Some(TimeColumns::find(names).ok_or_else(|| {
                format!(
                    "the run reads calendar inputs (data.calendar = {:?}): each row needs its time (a column `timestamp`, `time`, `date` or `year,month,day[,hour]`)",
                    data.calendar.iter().map(|c| c.name()).collect::<Vec<_>>()
                )
            })?),
        };
        // a row's other columns pass through; aligned, a step is a bin of rows, so none do
        let passed: Vec<usize> = match &feed {
            Feed::Wide { sources, time: None } => {
                (0..names.len()).filter(|&i| sources.iter().all(|f| f.column != i)).collect()
            }
            _ => Vec::new(),
        };
        let by_entity = matches!(feed, Feed::Long { entity: Some(_), .. });
        Ok(FeedLayout { feed, align, row_time, passed, by_entity })
    }

    /// The output's first columns: those passed through, or an aligned step's time (after
    /// its entity, named as the data names it, where the feed has entities).
    fn leading_header(&self, names: &[String], entity_column: &str) -> Vec<String> {
        match (self.align, self.by_entity) {
            (false, _) => self.passed.iter().map(|&i| names[i].clone()).collect(),
            (true, false) => vec!["time".to_string()],
            (true, true) => vec![entity_column.to_string(), "time".to_string()],
        }
    }

    /// An aligned step's leading cells: its entity's `name` where the feed has entities,
    /// its `time`.
    fn aligned_leading(&self, name: &str, time: String) -> Vec<String> {
        if self.by_entity {
            vec![csv_quoted(name), time]
        } else {
            vec![time]
        }
    }
}

/// The output side of `recur stream`: each grid step of an entity through its model (and
/// its watch), its answer written at once, the model step timed; what the feed saw, on
/// stderr at its end.
struct Server<'a> {
    out: std::io::StdoutLock<'static>,
    input: &'a str,
    scaler: &'a recur::data::Standardizer,
    flags: Option<&'a Flags>,
    /// Forecasts `horizon` steps ahead, banded by `paths` sample paths from `rng`.
    horizon: usize,
    paths: usize,
    rng: Rng,
    /// The per-step latency budget in µs (0: none), the steps over it (their lines), and
    /// every model step's time.
    budget: f64,
    over_budget: Vec<usize>,
    micros: Vec<f64>,
    /// Each step's watch (`--flag`: screening the values, taking the answer), in µs.
    watch_micros: Vec<f64>,
    /// Per signal, the values training's outlier screen takes out (read as gaps by the model).
    screened: Vec<usize>,
}

impl Server<'_> {
    /// One grid step of `live` (at its bin's start `at`, where known) from `line` of the
    /// feed, its answer written after `leading` cells; false once the reader has gone away.
    fn serve(
        &mut self,
        live: &mut EntityLive,
        values: &[Option<f32>],
        (at, leading): (Option<i64>, Vec<String>),
        line: usize,
    ) -> Result<bool, String> {
        let input = self.input;
        if let Some(at) = at {
            live.stream.at(at);
        }
        for ((j, v), count) in values.iter().enumerate().zip(&mut self.screened) {
            *count += usize::from(v.is_some_and(|v| self.scaler.screens_out(j, v)));
        }
        let mut fed = values.to_vec();
        let watching = std::time::Instant::now();
        let screened = match live.watch.as_mut() {
            Some(watch) => {
                Some(watch.screen(&live.stream, &mut fed).map_err(|e| format!("{input}: line {line}: {e}"))?)
            }
            None => None,
        };
        let mut watch_micros = watching.elapsed().as_secs_f64() * 1e6;
        let started = std::time::Instant::now();
        let answer = live
            .stream
            .step_forecasting(&fed, self.horizon, self.paths, &mut self.rng)
            .map_err(|e| format!("{input}: line {line}: {e}"))?;
        let micros = started.elapsed().as_secs_f64() * 1e6;
        self.micros.push(micros);
        if self.budget > 0.0 && micros > self.budget {
            if self.over_budget.is_empty() {
                eprintln!(
                    "{input}: line {line}: the model step took {micros:.1} µs, over the budget of {} µs",
                    self.budget
                );
            }
            self.over_budget.push(line);
        }
        if let Some(watch) = live.watch.as_mut() {
            let expecting = std::time::Instant::now();
            watch.expect(&answer);
            watch_micros += expecting.elapsed().as_secs_f64() * 1e6;
            self.watch_micros.push(watch_micros);
        }
        let watched = match (screened, self.flags) {
            (Some(step), Some(flags)) => flags.cells(&step),
            _ => Vec::new(),
        };
        // a reconstruction fills a value withheld as it fills a missing one
        let cells: Vec<String> = leading.into_iter().chain(answer_cells(&answer, &fed)).chain(watched).collect();
        Ok(writeln!(self.out, "{}", cells.join(",")).and_then(|()| self.out.flush()).is_ok())
    }

    /// What the feed saw, on stderr: values screened out, the watches' counts, the model
    /// step's times; an error naming the steps over the budget.
    fn report(mut self, signals: &[String], entities: &[EntityLive]) -> Result<(), String> {
        let screened = &self.screened;
        if screened.iter().any(|&n| n > 0) {
            let counts: Vec<String> =
                signals.iter().zip(screened).filter(|(_, &n)| n > 0).map(|(s, n)| format!("{s} {n}")).collect();
            eprintln!(
                "{} values outside the training's outlier screen (data.outlier_mads) read as gaps ({})",
                screened.iter().sum::<usize>(),
                counts.join(", ")
            );
        }
        if let Some(flags) = self.flags {
            flags.report(entities);
        }
        let of = match entities.len() {
            0 | 1 => String::new(),
            n => format!(" ({n} entities, each with its own state)"),
        };
        let watch = match percentiles(&mut self.watch_micros) {
            Some((median, p99, max)) => format!(
                "; the watch (--flag) median {median:.1} µs, 99th percentile {p99:.1} µs, max {max:.1} µs beside it"
            ),
            None => String::new(),
        };
        let micros = &mut self.micros;
        if let Some((median, p99, max)) = percentiles(micros) {
            eprintln!(
                "{} steps streamed{of}; model step median {median:.1} µs, 99th percentile {p99:.1} µs, max {max:.1} µs{watch} (parsing and output excluded)",
                micros.len(),
            );
        }
        match self.over_budget.as_slice() {
            [] => Ok(()),
            lines => Err(format!(
                "{} of {} steps over the budget of {} µs (lines {}{})",
                lines.len(),
                micros.len(),
                self.budget,
                lines.iter().take(10).map(usize::to_string).collect::<Vec<_>>().join(", "),
                if lines.len() > 10 { ", …" } else { "" }
            )),
        }
    }
}

/// The median, 99th percentile and maximum of `times` (sorted in place), if any.
fn percentiles(times: &mut [f64]) -> Option<(f64, f64, f64)> {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    (n > 0).then(|| (times[n / 2], times[(n * 99 / 100).min(n - 1)], times[n - 1]))
}

/// `--state FILE`: the stream saved there, for `run`; none where there is no file yet.
fn read_saved(file: &Path, run: &ServedRun) -> Result<Option<SavedStream>, String> {
    let signals = &run.fitted.signals;
    if !file.exists() {
        return Ok(None);
    }
    let at_file = |why: String| format!("{}: {why}", file.display());
    let text = std::fs::read_to_string(file).map_err(|e| at_file(e.to_string()))?;
    let saved: SavedStream = serde_json::from_str(&text).map_err(|e| at_file(e.to_string()))?;
    if &saved.signals != signals {
        return Err(at_file(format!(
            "the state of a stream of the signals {:?}; this run reads {signals:?}",
            saved.signals
        )));
    }
    if saved.model != run.model_fingerprint {
        return Err(at_file(format!(
            "the state of a stream of another model (fingerprint {}; {}'s is {}): the model was retrained or \
             replaced since; remove the file to start afresh",
            saved.model,
            run.dir.join("model.safetensors").display(),
            run.model_fingerprint
        )));
    }
    Ok(Some(saved))
}

/// `--state FILE`: every entity's state of a stream of `run`, the paths' generator `rng`,
/// and the feed `rows` read into them, into `file`, atomically.
fn write_saved(file: &Path, run: &ServedRun, entities: &[EntityLive], rng: &Rng, rows: u64) -> Result<(), String> {
    let saved = SavedStream {
        signals: run.fitted.signals.clone(),
        model: run.model_fingerprint.clone(),
        entities: entities.iter().map(EntityLive::saved).collect(),
        rng: Some(rng.clone()),
        rows,
    };
    let json = serde_json::to_string(&saved).map_err(|e| e.to_string())?;
    recur::io::write_atomically(file, json.as_bytes()).map_err(|e| format!("--state: {e}"))
}

pub fn stream(args: &Args) -> Result<(), String> {
    let known = ["run", "input", "budget-us", "horizon", "samples", "align", "flag", "join", "state", "state-every"];
    let dir = PathBuf::from(args.get("run", &known, String::new())?);
    if dir.as_os_str().is_empty() {
        return Err(
            "usage: recur stream --run DIR [--input FILE.csv] [--budget-us N] [--horizon N [--samples K]] [--align true] [--flag S [--join STEPS]] [--state FILE.json [--state-every ROWS]] (a causal run; rows on stdin)"
                .into(),
        );
    }
    let paths: usize = args.get("samples", &known, 0)?;
    let input = args.get("input", &known, "-".to_string())?;
    let budget: f64 = args.get("budget-us", &known, 0.0)?;
    let horizon: usize = args.get("horizon", &known, 1)?;
    let align: bool = args.get("align", &known, false)?;
    let flag: f32 = args.get("flag", &known, 0.0)?;
    let join = crate::detect::join_steps(args, &known)?;
    let state_file = PathBuf::from(args.get("state", &known, String::new())?);
    let keeps_state = !state_file.as_os_str().is_empty();
    let state_every: u64 = args.get("state-every", &known, 0)?;
    if state_every > 0 && !keeps_state {
        return Err("--state-every: the state is written to --state FILE".into());
    }
    if horizon == 0 {
        return Err("--horizon: forecasts reach at least one step ahead".into());
    }
    // the run folder alone: its config, model, signals and standardisation
    let run = open_run_for_serving(&dir)?;
    let config = &run.config;
    if horizon > 1 && config.task.kind != TaskKind::Prediction {
        return Err(format!("{}: --horizon needs a prediction run", dir.display()));
    }
    tell_calibration(&dir, run.calibration.as_ref());
    let open = || run.stream().map_err(|e| format!("{}: {e}", dir.display()));
    // every entity's stream is a fresh one like this
    let stream = open()?;
    let flags = match flag {
        0.0 => None,
        threshold => Some(Flags::open(&run, &stream, (threshold, join))?),
    };
    // one step through a throwaway stream first: the first call's page faults and cold
    // caches are the process's start, not a step of the stream
    let mut warm = open()?;
    warm.at(0);
    warm.step_forecasting(&vec![None; stream.signals().len()], horizon, paths, &mut Rng::new(0))
        .map_err(|e| e.to_string())?;
    let reader: Box<dyn BufRead> = if input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(std::fs::File::open(&input).map_err(|e| format!("{input}: {e}"))?))
    };
    let mut lines = reader.lines().enumerate();
    let header = match lines.next() {
        Some((_, line)) => line.map_err(|e| format!("{input}: {e}"))?,
        None => return Err(format!("{input}: no header row")),
    };
    // a `;`- or tab-separated feed (numbers with a decimal comma) answers in commas
    let (delimiter, names) = csv_header(without_byte_order_mark(&header));
    // the run's marks of "no value" (data.missing_values), as its training data was read
    let missing = config.data.missing().map_err(|e| format!("{}: {e}", dir.display()))?;
    let layout = FeedLayout::of_header((&names, delimiter), (&config.data, &missing), &stream, align)
        .map_err(|why| format!("{input}: line 1: {why}"))?;
    let c = stream.signals().len();
    let mut server = Server {
        out: std::io::stdout().lock(),
        input: &input,
        scaler: &run.fitted.scaler,
        flags: flags.as_ref(),
        horizon,
        paths,
        rng: Rng::new(0),
        budget,
        over_budget: Vec::new(),
        micros: Vec::new(),
        watch_micros: Vec::new(),
        screened: vec![0; c],
    };
    let header: Vec<String> = layout
        .leading_header(&names, &config.data.columns.entity)
        .into_iter()
        .chain(answer_header(&stream, horizon, paths))
        .chain(flags.as_ref().map_or(Vec::new(), Flags::header))
        .collect();
    let header: Vec<String> = header.iter().map(|c| csv_quoted(c)).collect();
    writeln!(server.out, "{}", header.join(",")).map_err(|e| e.to_string())?;
    // the feed's entities, in the order they first appear
    let mut entities: Vec<EntityLive> = Vec::new();
    let mut entity_index: HashMap<String, usize> = HashMap::new();
    let mut first_stream = Some(stream);
    let mut new_live = |name: &str| {
        let stream = match first_stream.take() {
            Some(stream) => stream,
            None => open()?,
        };
        let watch = flags.as_ref().map(|f| f.watch(&stream)).transpose().map_err(|e| e.to_string())?;
        let grid = LiveGrid::new(c, run.fitted.bin_seconds, config.data.aggregation).map_err(|e| e.to_string())?;
        let aligner = FeedAligner { grid, long: matches!(layout.feed, Feed::Long { .. }), clock: None, pending: None };
        Ok::<_, String>(EntityLive { name: name.to_string(), stream, watch, counted_before: Vec::new(), aligner })
    };
    // --state: every entity of the feeds before goes on where it stopped, and the paths'
    // generator where it stopped
    let saved = match keeps_state {
        true => read_saved(&state_file, &run)?,
        false => None,
    };
    // the feed rows read into the state before this feed, and in this feed
    let (mut rows_before, mut rows) = (0u64, 0u64);
    if let Some(saved) = saved {
        server.rng = saved.rng.unwrap_or(server.rng);
        rows_before = saved.rows;
        for entity in saved.entities {
            let name = entity.name.clone();
            let mut live = new_live(&name)?;
            live.restore(entity).map_err(|why| {
                let of = if name.is_empty() { String::new() } else { format!("entity `{name}`: ") };
                format!("{}: {of}{why}", state_file.display())
            })?;
            entity_index.insert(name, entities.len());
            entities.push(live);
        }
    }
    let mut last_line = 1;
    // false once the reader has gone away
    let mut reading = true;
    'feed: for (index, line) in lines {
        let line = line.map_err(|e| format!("{input}: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        last_line = index + 1;
        rows += 1;
        'row: {
            let fields = csv_fields_separated(&line, delimiter);
            if fields.len() != names.len() {
                return Err(format!(
                    "{input}: line {last_line}: {} fields, the header has {}",
                    fields.len(),
                    names.len()
                ));
            }
            // a cell that cannot be read: this line, and the column where one is at fault
            let at_fault = |(column, why): (Option<usize>, String)| {
                let column = column.map_or(String::new(), |i| format!(", column `{}`", names[i]));
                format!("{input}: line {last_line}{column}: {why}")
            };
            let row = layout.feed.read(&fields, c, config.data.time_unit).map_err(at_fault)?;
            let Some(row) = row else { break 'row };
            let name = row.entity.as_deref().unwrap_or_default();
            let i = match entity_index.get(name) {
                Some(&i) => i,
                None => {
                    entities.push(new_live(name)?);
                    entity_index.insert(name.to_string(), entities.len() - 1);
                    entities.len() - 1
                }
            };
            let live = &mut entities[i];
            if row.time.is_none() {
                let at = layout
                    .row_time
                    .as_ref()
                    .map(|columns| columns.read(|i| &fields[i], config.data.time_unit))
                    .transpose()
                    .map_err(at_fault)?;
                let values: Vec<Option<f32>> = row.values.iter().map(|v| v.map(|v| v as f32)).collect();
                let passed = layout.passed.iter().map(|&i| csv_quoted(&fields[i])).collect();
                if !server.serve(live, &values, (at, passed), last_line)? {
                    reading = false;
                    break 'feed;
                }
                break 'row;
            }
            let completed = live.aligner.add(&row).map_err(|why| {
                let of = if layout.by_entity { format!(" (entity `{}`)", live.name) } else { String::new() };
                format!("{input}: line {last_line}{of}: {why}")
            })?;
            for (start, time, step) in completed {
                if !server.serve(live, &step, (Some(start), layout.aligned_leading(&live.name, time)), last_line)? {
                    reading = false;
                    break 'feed;
                }
            }
        }
        // --state-every: a stream stopped without ending its feed goes on from here
        if state_every > 0 && rows.is_multiple_of(state_every) {
            write_saved(&state_file, &run, &entities, &server.rng, rows_before + rows)?;
        }
    }
    if keeps_state {
        // the feed pauses here: its open bins wait for the next one
        write_saved(&state_file, &run, &entities, &server.rng, rows_before + rows)?;
        eprintln!(
            "state of {} entit{} after {} feed rows ({rows} of this feed) kept in {} for the next feed",
            entities.len(),
            if entities.len() == 1 { "y" } else { "ies" },
            rows_before + rows,
            state_file.display()
        );
    } else if reading {
        // aligned, the feed's end completes each entity's last bin
        'entities: for live in &mut entities {
            for (start, time, step) in live.aligner.finish() {
                if !server.serve(live, &step, (Some(start), layout.aligned_leading(&live.name, time)), last_line)? {
                    reading = false;
                    break 'entities;
                }
            }
        }
    }
    match reading {
        true => server.report(&run.fitted.signals, &entities),
        false => Ok(()),
    }
}
