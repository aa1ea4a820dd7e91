//! Every entity of a live feed with its own stream, watch and grid, and what they carry
//! from one feed to the next.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::aligner::{AlignerState, FeedAligner};
use super::feed::{FeedError, FeedLayout, FeedRow};
use super::ServedRun;
use crate::data::Clock;
use crate::error::{Error, Result};
use crate::tasks::anomaly::{KeptAlarms, Watch, WatchCounts, WatchState, WatchStep};
use crate::tasks::{LiveAnswer, LiveState, LiveStream};
use crate::Rng;

/// How a fleet watches each value ([`Watch`]): flagged above `threshold` σ of its band,
/// a signal's flags at most `join` steps apart one episode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WatchRule {
    pub threshold: f32,
    pub join: usize,
}

/// One entity of the feed live: its stream, its watch, and the grid its rows go onto.
struct FleetEntity<'r> {
    /// Its name (a long feed's entity column; empty: the feed's only one).
    name: String,
    stream: LiveStream<'r>,
    watch: Option<Watch>,
    /// Its watch's counts when this feed began (restored from an earlier feed's state).
    counted_before: Vec<WatchCounts>,
    aligner: FeedAligner,
    /// The time of its latest row already on the grid (a feed not aligned), in UTC.
    last_row_time: Option<i64>,
    /// The number of its latest row, counted over every feed ([`Fleet::rows`]).
    last_row: u64,
}

/// A grid step of one entity, ready to serve ([`Fleet::serve`]).
#[derive(Clone, Debug, PartialEq)]
pub struct FeedStep {
    /// The entity's index ([`Fleet::entity_name`]).
    pub entity: usize,
    /// The step's bin start (seconds since the Unix epoch), where the feed gives times.
    pub start: Option<i64>,
    /// An aligned step's bin start as the data writes times.
    pub time: Option<String>,
    /// A row already on the grid: the cells of its other columns
    /// ([`FeedLayout::passed_columns`]), passed through to its answer.
    pub passed: Vec<String>,
    /// Each signal's value, in original units (`None`: missing).
    pub values: Vec<Option<f32>>,
}

/// A step served: the values the model read (those the watch withheld as gaps), its
/// answer, the watch's scores, and the time each took.
pub struct ServedStep {
    pub fed: Vec<Option<f32>>,
    pub answer: LiveAnswer,
    pub watched: Option<WatchStep>,
    /// The model's step (with its forecasts ahead and their sample paths), in µs.
    pub model_micros: f64,
    /// The watch's screening of the values and taking of the answer, in µs.
    pub watch_micros: Option<f64>,
}

/// What a [`Fleet`] carries from one feed to the next, per entity ([`Fleet::state`]);
/// serde, written as JSON by [`Fleet::save_state`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FleetState {
    /// The run's signals, in its order, and its model's fingerprint (a state of another
    /// run, or of a model since retrained, is refused).
    pub signals: Vec<String>,
    pub model: String,
    pub entities: Vec<EntityState>,
    /// The generator of the forecasts' sample paths, where it has drawn.
    #[serde(default)]
    pub rng: Option<Rng>,
    /// The feed rows read into this state, over every feed since the first: after a feed
    /// that stopped without ending, where to go on.
    #[serde(default)]
    pub rows: u64,
    /// The rows of the feed being read when the state was written, where that feed had not
    /// ended (0: it had): fed again, its first rows are passed over ([`Fleet::resume_feed`]).
    #[serde(default)]
    pub feed_rows: u64,
    /// The length in bytes of the answers' file when the state was written, where the
    /// answers go to one ([`AnswerFile`](super::AnswerFile)): restarted from this state, the
    /// file is cut back to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers_written: Option<u64>,
}

/// One entity's part of a [`FleetState`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EntityState {
    pub name: String,
    pub stream: LiveState,
    /// Its watch, where the feed was watched.
    pub watch: Option<WatchState>,
    pub aligner: AlignerState,
    /// The time of its latest row already on the grid (a feed not aligned), in UTC: where a
    /// naive local time repeated when clocks go back is read after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_row_time: Option<i64>,
    /// The number of its latest row, counted over every feed ([`Fleet::silent_for`]).
    #[serde(default)]
    pub last_row: u64,
}

/// A causal run served live to a feed of raw rows, as `recur stream` serves it: each row
/// read as training read its data ([`FeedLayout`]), each entity's rows aligned onto its own
/// grid, each complete step through the entity's own stream of the run's task and, with a
/// [`WatchRule`], its own [`Watch`]; everything it carries kept across feeds and restarts
/// ([`Fleet::state`], [`Fleet::save_state`]).
///
/// ```no_run
/// use recur::serve::{Fleet, ServedRun, WatchRule};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let run = ServedRun::open("runs/physionet")?;
/// let mut fleet = Fleet::new(&run, Some(WatchRule { threshold: 4.0, join: 3 }))?;
/// let layout = fleet.layout("timestamp,signal,value,record_id", false)?;
/// fleet.load_state("state.json")?; // where an earlier feed left off, if it did
/// for line in ["0,HR,80,132539", "0,HR,72,132540", "3600,HR,81,132539"] {
///     for step in fleet.read_line(&layout, line)? {
///         let served = fleet.serve(&step, 1, 0)?;
///         for &t in served.watched.iter().flat_map(|w| &w.new_alarms) {
///             println!("{}: alarm on {}", fleet.entity_name(step.entity), fleet.targets()[t]);
///         }
///     }
/// }
/// fleet.save_state("state.json")?; // the open bins wait for the next feed
/// # Ok(())
/// # }
/// ```
pub struct Fleet<'r> {
    run: &'r ServedRun,
    /// A stream never stepped: what every entity's is like.
    template: LiveStream<'r>,
    rule: Option<WatchRule>,
    kept: Option<KeptAlarms>,
    /// Whether its watches run the flatline rule.
    flatline: bool,
    entities: Vec<FleetEntity<'r>>,
    index: HashMap<String, usize>,
    /// The generator of the forecasts' sample paths.
    rng: Rng,
    /// Rows read into the state before this feed, and in it.
    rows_before: u64,
    rows: u64,
    /// The rows of an unfinished feed its restored state had read, and of those, the ones
    /// this feed takes as its own first rows ([`Fleet::resume_feed`]).
    unfinished: u64,
    resumed: u64,
    /// Whether this feed has ended ([`Fleet::end_feed`]).
    ended: bool,
    /// What the watches of entities that left ([`Fleet::leave`]) counted in this feed.
    departed: Vec<WatchCounts>,
    /// The answers' file's length, as restored or as last set ([`Fleet::set_answers_written`]).
    answers_written: Option<u64>,
}

impl<'r> Fleet<'r> {
    /// A fleet of `run`'s streams, each watched by `rule` where one is given, with the alarm
    /// scales and flatline rule the run folder keeps.
    ///
    /// # Errors
    /// As [`ServedRun::stream`] and [`ServedRun::watch`].
    pub fn new(run: &'r ServedRun, rule: Option<WatchRule>) -> Result<Self> {
        let template = run.stream()?;
        let (kept, flatline) = match rule {
            Some(rule) => {
                let kept = run.kept_alarms()?;
                let watch = run.watch_kept(&template, rule.threshold, rule.join, kept.as_ref())?;
                (kept, watch.has_flatline())
            }
            None => (None, false),
        };
        Ok(Fleet {
            run,
            rule,
            kept,
            flatline,
            entities: Vec::new(),
            index: HashMap::new(),
            rng: Rng::new(0),
            rows_before: 0,
            rows: 0,
            unfinished: 0,
            resumed: 0,
            ended: false,
            departed: vec![WatchCounts::default(); template.targets().len()],
            answers_written: None,
            template,
        })
    }

    /// The layout of a feed with `header` (its first line) for this run, each row at its own
    /// time aligned onto the grid where `align` asks (a long feed's always are).
    ///
    /// # Errors
    /// What the header lacks: a signal's column, a time column where one is needed.
    pub fn layout(&self, header: &str, align: bool) -> Result<FeedLayout, FeedError> {
        FeedLayout::of_header(header, &self.template, &self.run.config.data, align)
    }

    /// A stream like each entity's, never stepped: its signals, targets, band.
    pub fn stream(&self) -> &LiveStream<'r> {
        &self.template
    }

    /// The signals its answers and watches are for ([`LiveStream::targets`]).
    pub fn targets(&self) -> &[String] {
        self.template.targets()
    }

    /// The alarm scales (and what else `recur detect --alarm-rate` keeps) its watches use.
    pub fn kept_alarms(&self) -> Option<&KeptAlarms> {
        self.kept.as_ref()
    }

    /// Whether its watches run the flatline rule (the run keeps its scale).
    pub fn has_flatline(&self) -> bool {
        self.flatline
    }

    /// How many entities it holds: those of the feeds before it ([`Fleet::restore`]) and
    /// those this feed brought, numbered in the order they first appeared.
    pub fn entity_count(&self) -> usize {
        self.entities.len()
    }

    /// Entity `i`'s name (empty: the feed's only one).
    pub fn entity_name(&self, i: usize) -> &str {
        &self.entities[i].name
    }

    /// The rows read into its state: before this feed ([`Fleet::restore`]), and in all.
    pub fn rows(&self) -> (u64, u64) {
        (self.rows_before, self.rows_before + self.rows)
    }

    /// The index of entity `name`, opened fresh where it is new.
    fn entity(&mut self, name: &str) -> Result<usize> {
        if let Some(&i) = self.index.get(name) {
            return Ok(i);
        }
        let fresh = self.fresh_entity(name)?;
        self.entities.push(fresh);
        self.index.insert(name.to_string(), self.entities.len() - 1);
        Ok(self.entities.len() - 1)
    }

    /// Entity `name` as it begins: a fresh stream, watch and grid.
    fn fresh_entity(&self, name: &str) -> Result<FleetEntity<'r>> {
        let stream = self.run.stream()?;
        let watch = match self.rule {
            Some(rule) => Some(self.run.watch_kept(&stream, rule.threshold, rule.join, self.kept.as_ref())?),
            None => None,
        };
        let (signals, data) = (stream.signals().len(), &self.run.config.data);
        let aligner = FeedAligner::new(signals, self.run.fitted.bin_seconds, data.aggregation)?;
        Ok(FleetEntity {
            name: name.to_string(),
            stream,
            watch,
            counted_before: Vec::new(),
            aligner,
            last_row_time: None,
            last_row: 0,
        })
    }

    /// One `line` of a feed laid out as `layout`: the grid steps it completes (a row
    /// already on the grid is one; an aligned row completes the bins before its time, of
    /// its entity; a long row of a signal the run does not read, none). A blank line is
    /// not a row.
    ///
    /// # Errors
    /// A cell that cannot be read (naming its column), rows out of time order (naming the
    /// entity); nothing read from the line is kept but the count of rows read
    /// ([`Fleet::rows`]), and the fleet takes the next line as if it had not come
    /// ([`Fleet::gap_step`] keeps a grid-step feed's place).
    pub fn read_line(&mut self, layout: &FeedLayout, line: &str) -> Result<Vec<FeedStep>, FeedError> {
        if line.trim().is_empty() {
            return Ok(Vec::new());
        }
        self.rows += 1;
        let Some(row) = layout.read(line)? else { return Ok(Vec::new()) };
        let name = match &row {
            FeedRow::Timed { entity: Some(name), .. } => name.clone(),
            _ => String::new(),
        };
        let of_entity = layout.entity_column().map(|_| name.clone());
        // a naive local time (data.naive_times = "local") back to UTC, after the entity's
        // latest; before the entity is opened, so that a time refused leaves no trace
        let known = self.index.get(&name).map(|&i| &self.entities[i]);
        let utc = |(time, naive): (i64, bool), latest: Option<i64>| match (naive, self.run.fitted.calendar.naive_zone())
        {
            (true, Some(zone)) => zone.to_utc(time, latest).map_err(|why| FeedError {
                entity: of_entity.clone(),
                column: layout.time_column(),
                why: format!("{} {why}", Clock::Calendar.format(time)),
            }),
            _ => Ok(time),
        };
        let row = match row {
            FeedRow::OnGrid { at, values, passed } => {
                let start = at.map(|at| utc(at, known.and_then(|e| e.last_row_time))).transpose()?;
                FeedRow::OnGrid { at: start.map(|t| (t, false)), values, passed }
            }
            FeedRow::Timed { at: (time, clock, naive), entity, values } => {
                let time = utc((time, naive), known.and_then(|e| e.aligner.latest()))?;
                FeedRow::Timed { at: (time, clock, false), entity, values }
            }
        };
        let entity = self.entity(&name).map_err(|e| FeedError::new(e.to_string()))?;
        let row_number = self.rows_before + self.rows;
        let live = &mut self.entities[entity];
        match row {
            FeedRow::OnGrid { at, values, passed } => {
                let start = at.map(|(t, _)| t);
                live.last_row_time = start.or(live.last_row_time);
                live.last_row = row_number;
                Ok(vec![FeedStep { entity, start, time: None, passed, values }])
            }
            FeedRow::Timed { at: (time, clock, _), values, .. } => {
                let completed = live
                    .aligner
                    .add((time, clock), &values, layout.averages_same_time())
                    .map_err(|why| FeedError { entity: of_entity, column: None, why })?;
                live.last_row = row_number;
                Ok(completed.into_iter().map(|step| self.aligned_step(entity, step)).collect())
            }
        }
    }

    /// In place of a line that could not be read, where the feed's rows are grid steps (not
    /// aligned by time): a step with every value missing, so that the steps after it keep
    /// their place on the grid; `None` for a feed aligned by time (the grid keeps the place).
    ///
    /// # Errors
    /// A fleet that cannot open its stream (as [`ServedRun::stream`]).
    pub fn gap_step(&mut self, layout: &FeedLayout) -> Result<Option<FeedStep>> {
        if layout.is_aligned() {
            return Ok(None);
        }
        let entity = self.entity("")?;
        let (signals, passed) = (self.template.signals().len(), layout.passed_columns().len());
        Ok(Some(FeedStep {
            entity,
            start: None,
            time: None,
            passed: vec![String::new(); passed],
            values: vec![None; signals],
        }))
    }

    /// Ends the feed: each entity's last bins (for a feed that does not go on; one that
    /// does keeps them open in its state).
    pub fn finish(&mut self) -> Vec<FeedStep> {
        let mut completed = Vec::new();
        for (i, live) in self.entities.iter_mut().enumerate() {
            completed.extend(live.aligner.finish().into_iter().map(|step| (i, step)));
        }
        completed.into_iter().map(|(i, step)| self.aligned_step(i, step)).collect()
    }

    /// `step` through its entity's stream: the values screened by its watch (one it flags
    /// is withheld, fed as a gap), the model's answer — the next `horizon` steps' forecast
    /// (past the direct steps in closed loop, banded by `paths` sample paths) or this step
    /// filled — and the answer handed to the watch for the next step.
    ///
    /// # Errors
    /// As [`Watch::screen`] and [`LiveStream::step_forecasting`]; a refused step changes
    /// nothing.
    pub fn serve(&mut self, step: &FeedStep, horizon: usize, paths: usize) -> Result<ServedStep> {
        let held = self.entities.len();
        let live = self
            .entities
            .get_mut(step.entity)
            .ok_or_else(|| Error::invalid("entity", format!("number {}, but the fleet holds {held}", step.entity)))?;
        if let Some(at) = step.start {
            live.stream.at(at);
        }
        let mut fed = step.values.clone();
        let watching = Instant::now();
        let watched = live.watch.as_mut().map(|w| w.screen(&live.stream, &mut fed)).transpose()?;
        let watch_micros = watching.elapsed().as_secs_f64() * 1e6;
        let started = Instant::now();
        let answer = live.stream.step_forecasting(&fed, horizon, paths, &mut self.rng)?;
        let model_micros = started.elapsed().as_secs_f64() * 1e6;
        let watch_micros = live.watch.as_mut().map(|watch| {
            let expecting = Instant::now();
            watch.expect(&answer);
            watch_micros + expecting.elapsed().as_secs_f64() * 1e6
        });
        Ok(ServedStep { fed, answer, watched, model_micros, watch_micros })
    }

    /// What its watches counted in this feed, per target, all entities together; `None`
    /// unwatched.
    pub fn feed_counts(&self) -> Option<Vec<WatchCounts>> {
        self.rule?;
        let mut total = self.departed.clone();
        for entity in &self.entities {
            entity.add_feed_counts(&mut total);
        }
        Some(total)
    }

    /// The entities with no row among the last `rows` rows read (over every feed; rows of
    /// signals the run does not read are not theirs): gone quiet, to [`Fleet::leave`] where
    /// an entity that stops sending has left.
    pub fn silent_for(&self, rows: u64) -> Vec<String> {
        let now = self.rows_before + self.rows;
        self.entities.iter().filter(|e| now.saturating_sub(e.last_row) > rows).map(|e| e.name.clone()).collect()
    }

    /// Entity `name` leaves for good (a patient discharged, a machine retired): its open
    /// grid steps, completed as at a feed's end, served (`horizon` and `paths` as
    /// [`Fleet::serve`]), and the entity forgotten — no longer in the fleet or its state, so
    /// that a fleet whose members come and go does not grow; its watch's counts stay in
    /// [`Fleet::feed_counts`]. The entities after it are numbered one less: call it between
    /// lines, every step read so far served. Nothing for an entity it does not hold.
    ///
    /// # Errors
    /// As [`Fleet::serve`]; the entity is then kept, without its steps not yet served.
    pub fn leave(&mut self, name: &str, horizon: usize, paths: usize) -> Result<Vec<(FeedStep, ServedStep)>> {
        let Some(&i) = self.index.get(name) else { return Ok(Vec::new()) };
        let completed = self.entities[i].aligner.finish();
        let steps: Vec<FeedStep> = completed.into_iter().map(|step| self.aligned_step(i, step)).collect();
        let mut served = Vec::with_capacity(steps.len());
        for step in steps {
            let answer = self.serve(&step, horizon, paths)?;
            served.push((step, answer));
        }
        let gone = self.entities.remove(i);
        gone.add_feed_counts(&mut self.departed);
        self.index = self.entities.iter().enumerate().map(|(j, e)| (e.name.clone(), j)).collect();
        Ok(served)
    }

    /// Everything it carries to the next feed: each entity's model state, task state,
    /// watch and open grid step, the sample paths' generator, the rows read.
    pub fn state(&self) -> FleetState {
        FleetState {
            signals: self.run.fitted.signals.clone(),
            model: self.run.model_fingerprint.clone(),
            entities: self
                .entities
                .iter()
                .map(|e| EntityState {
                    name: e.name.clone(),
                    stream: e.stream.state(),
                    watch: e.watch.as_ref().map(Watch::state),
                    aligner: e.aligner.state(),
                    last_row_time: e.last_row_time,
                    last_row: e.last_row,
                })
                .collect(),
            rng: Some(self.rng.clone()),
            rows: self.rows_before + self.rows,
            feed_rows: if self.ended { 0 } else { self.resumed + self.rows },
            answers_written: self.answers_written,
        }
    }

    /// Goes on from `state` (a fleet's [`Fleet::state`], before this one has read a row):
    /// every entity where it stopped — a watch saved where this fleet does not watch is
    /// dropped, one this fleet watches but none was saved for starts now.
    ///
    /// # Errors
    /// A state of another run's signals or another model (retrained since), or one that
    /// does not fit the run (naming the entity and what does not fit); the fleet is then as
    /// it was.
    pub fn restore(&mut self, state: FleetState) -> Result<()> {
        let signals = &self.run.fitted.signals;
        if &state.signals != signals {
            return Err(Error::invalid(
                "stream state",
                format!("the state of a stream of the signals {:?}; this run reads {signals:?}", state.signals),
            ));
        }
        if state.model != self.run.model_fingerprint {
            return Err(Error::invalid(
                "stream state",
                format!(
                    "the state of a stream of another model (fingerprint {}; {}'s is {}): the model was retrained or \
                     replaced since; remove the file to start afresh",
                    state.model,
                    self.run.dir.join("model.safetensors").display(),
                    self.run.model_fingerprint
                ),
            ));
        }
        if self.rows > 0 || !self.entities.is_empty() {
            return Err(Error::invalid("stream state", "restored after rows were read: restore first"));
        }
        let (mut entities, mut index) = (Vec::new(), HashMap::new());
        for saved in state.entities {
            let name = saved.name.clone();
            let of = if name.is_empty() { String::new() } else { format!("entity `{name}`: ") };
            let mut entity = self.fresh_entity(&name)?;
            entity.restore(saved).map_err(|why| Error::invalid("stream state", format!("{of}{why}")))?;
            index.insert(name, entities.len());
            entities.push(entity);
        }
        (self.entities, self.index) = (entities, index);
        self.rng = state.rng.unwrap_or_else(|| self.rng.clone());
        (self.rows_before, self.unfinished) = (state.rows, state.feed_rows);
        self.answers_written = state.answers_written;
        Ok(())
    }

    /// The length of the answers' file that the restored state was written after (`None`:
    /// it kept none; [`AnswerFile::continued`](super::AnswerFile::continued) goes on from it).
    pub fn answers_written(&self) -> Option<u64> {
        self.answers_written
    }

    /// The answers' file holds `bytes` now, on the disk
    /// ([`AnswerFile::commit`](super::AnswerFile::commit)), kept in the states written next;
    /// `None`: the answers go elsewhere (no file holds them all).
    pub fn set_answers_written(&mut self, bytes: Option<u64>) {
        self.answers_written = bytes;
    }

    /// This feed is the one its restored state was reading when it stopped (a service
    /// killed and the same feed sent again): how many of its first rows were read then, to
    /// be passed over, not read again (0 where that feed had ended). Without it, a feed is
    /// a new one.
    pub fn resume_feed(&mut self) -> u64 {
        self.resumed = self.unfinished;
        self.resumed
    }

    /// This feed has ended: the state written after it counts no unfinished feed.
    pub fn end_feed(&mut self) {
        self.ended = true;
    }

    /// [`Fleet::restore`] from the JSON file `file` ([`Fleet::save_state`]), where it
    /// exists; whether it did.
    ///
    /// # Errors
    /// As [`Fleet::restore`], naming the file; a file that cannot be read or parsed.
    pub fn load_state(&mut self, file: impl AsRef<Path>) -> Result<bool> {
        let file = file.as_ref();
        if !file.exists() {
            return Ok(false);
        }
        let at_file = |why: String| Error::Format { path: file.to_path_buf(), why };
        let text = std::fs::read_to_string(file).map_err(|source| Error::Io { path: file.to_path_buf(), source })?;
        let state: FleetState = serde_json::from_str(&text).map_err(|e| at_file(e.to_string()))?;
        self.restore(state).map_err(|e| match e {
            Error::Invalid { why, .. } => at_file(why),
            e => at_file(e.to_string()),
        })?;
        Ok(true)
    }

    /// [`Fleet::state`] as JSON into `file`, atomically.
    ///
    /// # Errors
    /// The file cannot be written (the one before is then kept).
    pub fn save_state(&self, file: impl AsRef<Path>) -> Result<()> {
        let json = serde_json::to_string(&self.state())
            .map_err(|e| Error::Format { path: file.as_ref().to_path_buf(), why: e.to_string() })?;
        crate::io::write_atomically(file.as_ref(), json.as_bytes())
    }

    /// A grid step `(start, values)` of entity `entity`'s aligner, its time written as the
    /// data writes times.
    fn aligned_step(&self, entity: usize, (start, values): super::aligner::GridStep) -> FeedStep {
        let time = self.run.fitted.calendar.format(self.entities[entity].aligner.clock(), start);
        FeedStep { entity, start: Some(start), time: Some(time), passed: Vec::new(), values }
    }
}

impl FleetEntity<'_> {
    /// Adds what its watch counted in this feed (since `counted_before`) to `total`.
    fn add_feed_counts(&self, total: &mut [WatchCounts]) {
        let Some(watch) = &self.watch else { return };
        for (t, (sum, c)) in total.iter_mut().zip(watch.counts()).enumerate() {
            let before = self.counted_before.get(t).copied().unwrap_or_default();
            sum.flagged += c.flagged - before.flagged;
            sum.withheld += c.withheld - before.withheld;
            sum.flatline += c.flatline - before.flatline;
            sum.episodes += c.episodes - before.episodes;
        }
    }

    /// Goes on from `saved`; otherwise why not.
    fn restore(&mut self, saved: EntityState) -> Result<(), String> {
        self.stream.restore(&saved.stream).map_err(|e| e.to_string())?;
        if let (Some(watch), Some(state)) = (self.watch.as_mut(), saved.watch.as_ref()) {
            watch.restore(state).map_err(|e| e.to_string())?;
            self.counted_before = state.counts.clone();
        }
        self.aligner.restore(saved.aligner)?;
        self.last_row_time = saved.last_row_time;
        self.last_row = saved.last_row;
        Ok(())
    }
}
