//! A whole run from one TOML configuration: data → task → model → training → test
//! metrics against the baselines. `recur train`, `recur demo` and the experiment grid all
//! go through [`run`]. Every key has a default (see `configs/reference.toml`); an unknown
//! key is an error naming it, with its line and column.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::prepare::unknown_signal;
use crate::data::{
    align_to_grid, read_long, read_wide, Aggregation, Calendar, CalendarCycle, EpochUnit, FittedScaler, GridSeries,
    LongColumns, LongOptions, MissingValues, PreparedSeries, SplitFractions, TimeZone, WideOptions,
};
use crate::error::{Error, Result};
use crate::model::{ModelSection, SequenceModel};
use crate::tasks::metrics::Metrics;
use crate::tasks::prediction::{PredictionConfig, PredictionTask, Uncertainty};
use crate::tasks::reconstruction::{MissingnessDiffusion, ReconstructionConfig, ReconstructionTask};
use crate::tasks::{BandCalibration, StreamTraining};
use crate::train::{train, EpochLog, TrainConfig};

/// What a time without a UTC offset in the data files is (`data.naive_times`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NaiveTimes {
    #[default]
    Utc,
    /// A local time of `data.time_zone`.
    Local,
}

/// Layout of the data files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// A time column (or `year,month,day[,hour]`) and one column per signal.
    #[default]
    Wide,
    /// One observation per row: time, signal, value[, entity].
    Long,
}

/// Where the data comes from and how it is put on a grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// CSV files; with several wide files each is an entity (e.g. one per station).
    pub files: Vec<String>,
    pub format: DataFormat,
    /// Long format: the column names.
    pub columns: LongColumns,
    /// Signals to keep; empty: every numeric column not dropped.
    pub signals: Vec<String>,
    /// Columns to ignore (row numbers, names, categorical signals not wanted).
    pub drop: Vec<String>,
    /// Wide format: categorical columns encoded one-hot (`wd` → `wd=E`, `wd=N`, …).
    pub categorical: Vec<String>,
    /// Grid bin width in seconds.
    pub bin_seconds: i64,
    pub aggregation: Aggregation,
    /// Observed values further than this many robust standard deviations (1.4826·MAD)
    /// from their signal's training median are treated as missing; 0 keeps every value.
    pub outlier_mads: f64,
    /// Signals standardised after ln(1 + x): non-negative signals whose changes scale with
    /// their level (concentrations, flows). Forecast bands then stay above −1 and skew
    /// upwards; scores stay in the signal's own units.
    pub log1p: Vec<String>,
    /// Floors of signals that cannot fall below a known value (concentrations, counts: 0):
    /// forecasts, reconstructions and band edges are lifted to them
    /// ([`crate::data::Standardizer`]).
    pub floor: BTreeMap<String, f64>,
    /// What integer times count since the Unix epoch: `"s"` (seconds), `"ms"` (Cognite's
    /// and many historians' exports), `"us"`, `"ns"`. A Parquet timestamp column keeps its
    /// own unit.
    pub time_unit: EpochUnit,
    /// Marks of "no value" in every signal, besides empty cells, `NA` and `NaN`: a
    /// historian's status strings (`"Bad"`, `"I/O Timeout"`), matched exactly, and sentinel
    /// numbers (`"-9999"`), matched by value ([`MissingValues`]). They become gaps in the
    /// mask, never values.
    pub missing_values: Vec<String>,
    /// Marks of "no value" in one signal only (name → marks), for a sentinel that is a real
    /// value elsewhere: PhysioNet 2012's `{ Weight = ["-1"], Height = ["-1"] }`.
    pub missing_values_per_signal: BTreeMap<String, Vec<String>>,
    /// Calendar inputs the model reads beside the signals ([`crate::data::Calendar`]): for
    /// each of `day`, `week`, `year`, the sine and cosine of the phase of a step's local time
    /// in it. Known ahead, never predicted nor scored; calendar times only.
    pub calendar: Vec<CalendarCycle>,
    /// The local time the calendar inputs (and `recur eval --by`) follow, UTC + this many
    /// hours (fixed: no daylight saving). Times read without an offset are taken as UTC:
    /// leave it 0 for them.
    pub calendar_utc_offset_hours: f64,
    /// Or the time zone local time follows, its clocks changing for daylight saving: a zone
    /// of the IANA database (`"Europe/Berlin"`, read from `$TZDIR` or `/usr/share/zoneinfo`
    /// where the run is trained, and kept with it: serving needs no database) or a POSIX TZ
    /// rule (`"CET-1CEST,M3.5.0,M10.5.0/3"`) ([`crate::data::TimeZone`]). Empty: none.
    pub time_zone: String,
    /// What a time without a UTC offset in the files is (a date and clock time; counts
    /// since the epoch and times with `Z` or an offset are exact): `"utc"`, or `"local"`,
    /// a local time of `time_zone` — read back to UTC (the hour repeated when clocks go back
    /// read in file order; one skipped when they go forward refused, named) and shown as
    /// local times in every output.
    pub naive_times: NaiveTimes,
    pub split: SplitFractions,
}

impl DataConfig {
    /// The marks of "no value" this config names.
    ///
    /// # Errors
    /// An empty mark, naming its key.
    pub fn missing(&self) -> Result<MissingValues> {
        MissingValues::new(&self.missing_values, &self.missing_values_per_signal)
    }

    /// The calendar inputs this config names.
    ///
    /// # Errors
    /// As [`Calendar::new`], [`Calendar::in_time_zone`] and [`TimeZone::resolve`].
    pub fn calendar(&self) -> Result<Calendar> {
        let calendar = Calendar::new(&self.calendar, self.calendar_utc_offset_hours)?;
        let mut calendar = match self.time_zone.trim() {
            "" => calendar,
            zone => calendar.in_time_zone(TimeZone::resolve(zone)?)?,
        };
        if self.naive_times == NaiveTimes::Local {
            if calendar.time_zone.is_none() {
                return Err(Error::invalid(
                    "data.naive_times",
                    "\"local\" needs the zone they are local times of: data.time_zone (\"Europe/Berlin\")",
                ));
            }
            calendar.local_times = true;
        }
        Ok(calendar)
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            files: Vec::new(),
            format: DataFormat::Wide,
            columns: LongColumns::default(),
            signals: Vec::new(),
            drop: Vec::new(),
            categorical: Vec::new(),
            bin_seconds: 3600,
            aggregation: Aggregation::Mean,
            outlier_mads: 0.0,
            log1p: Vec::new(),
            floor: BTreeMap::new(),
            time_unit: EpochUnit::Seconds,
            missing_values: Vec::new(),
            missing_values_per_signal: BTreeMap::new(),
            calendar: Vec::new(),
            calendar_utc_offset_hours: 0.0,
            time_zone: String::new(),
            naive_times: NaiveTimes::Utc,
            split: SplitFractions::default(),
        }
    }
}

/// Which task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Prediction,
    Reconstruction,
}

/// The task's settings (the reconstruction-only keys are ignored for prediction).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskConfig {
    pub kind: TaskKind,
    /// L, steps per window.
    pub window: usize,
    /// Predict a correction to persistence (prediction) or interpolation (reconstruction).
    pub residual: bool,
    /// Reconstruction: training windows start every `stride` steps.
    pub stride: usize,
    /// Reconstruction: seed of the evaluation corruption.
    pub evaluation_seed: u64,
    pub corruption: MissingnessDiffusion,
    /// Train on long streams with truncated BPTT (`[task.stream]`) instead of on windows
    /// (a unidirectional or decoupled model).
    pub stream: Option<StreamTraining>,
    /// Prediction: forecast the next `steps_ahead` steps directly from every state (one
    /// output block per step ahead) instead of the next step only.
    pub steps_ahead: usize,
    /// Prediction: a band for every forecast (`true`: a Gaussian head, a learned precision
    /// per value trained with the NLL, ±2σ; `"quantile"`: learned distances to the 2.275 %
    /// and 97.725 % quantiles); reconstruction always has the deck's λ̂.
    pub uncertainty: Uncertainty,
    /// Prediction: the signals forecast and scored (empty: every one); the model reads
    /// every signal either way ([`crate::tasks::Targets`]).
    pub targets: Vec<String>,
}

impl Default for TaskConfig {
    fn default() -> Self {
        TaskConfig {
            kind: TaskKind::Prediction,
            window: 24,
            residual: true,
            stride: 4,
            evaluation_seed: 2024,
            corruption: MissingnessDiffusion::default(),
            stream: None,
            steps_ahead: 1,
            uncertainty: Uncertainty::None,
            targets: Vec::new(),
        }
    }
}

/// A whole run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    pub data: DataConfig,
    pub task: TaskConfig,
    pub model: ModelSection,
    pub train: TrainConfig,
}

impl RunConfig {
    /// Parses TOML text; `origin` names the file in errors.
    ///
    /// # Errors
    /// Malformed TOML or an unknown key, with its line and column.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        parse_toml::<Self>(text, origin)?.checked()
    }

    /// # Errors
    /// An unreadable file, or as [`RunConfig::from_toml`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        load_toml::<Self>(path.as_ref())?.checked()
    }

    /// Refuses settings that contradict each other.
    fn checked(self) -> Result<Self> {
        if self.task.kind == TaskKind::Reconstruction && self.task.uncertainty == Uncertainty::Quantile {
            return Err(Error::invalid(
                "task.uncertainty",
                "\"quantile\" is a prediction band; a reconstruction's band is the deck's λ̂ (always on)",
            ));
        }
        if self.task.kind == TaskKind::Reconstruction && !self.task.targets.is_empty() {
            return Err(Error::invalid(
                "task.targets",
                "a reconstruction fills in every signal; targets choose what a prediction forecasts",
            ));
        }
        Ok(self)
    }

    /// The resolved configuration, every default written out.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// The prediction task's view of this config.
    pub fn prediction(&self) -> PredictionConfig {
        PredictionConfig {
            model: self.model.clone(),
            window: self.task.window,
            residual: self.task.residual,
            stream: self.task.stream,
            steps_ahead: self.task.steps_ahead,
            uncertainty: self.task.uncertainty,
            calendar_inputs: 2 * self.data.calendar.len(),
            targets: self.task.targets.clone(),
            train: self.train.clone(),
        }
    }

    /// The signals its scores are per, of the data's `signals`: a prediction's
    /// `task.targets` (in the data's order), else every signal.
    pub fn scored_signals(&self, signals: &[String]) -> Vec<String> {
        let scored = |s: &&String| self.task.targets.is_empty() || self.task.targets.contains(s);
        signals.iter().filter(scored).cloned().collect()
    }

    /// The model this config trains for data of `channels` signals.
    pub fn model_config(&self, channels: usize) -> crate::model::ModelConfig {
        match self.task.kind {
            TaskKind::Prediction => self.prediction().model_config(channels),
            TaskKind::Reconstruction => self.reconstruction().model_config(channels),
        }
    }

    /// The reconstruction task's view of this config.
    pub fn reconstruction(&self) -> ReconstructionConfig {
        ReconstructionConfig {
            model: self.model.clone(),
            window: self.task.window,
            stride: self.task.stride,
            corruption: self.task.corruption,
            evaluation_seed: self.task.evaluation_seed,
            residual: self.task.residual,
            stream: self.task.stream,
            calendar_inputs: 2 * self.data.calendar.len(),
            train: self.train.clone(),
        }
    }
}

/// Any configuration from TOML text; `origin` names the file in errors.
///
/// # Errors
/// Malformed TOML or an unknown key, with its line and column.
pub fn parse_toml<C: serde::de::DeserializeOwned>(text: &str, origin: &Path) -> Result<C> {
    toml::from_str(text)
        .map_err(|e| Error::Format { path: origin.to_path_buf(), why: e.to_string().trim_end().to_string() })
}

/// Any configuration from a TOML file.
///
/// # Errors
/// An unreadable file, or as [`parse_toml`].
pub fn load_toml<C: serde::de::DeserializeOwned>(path: &Path) -> Result<C> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    parse_toml(&text, path)
}

/// Reads, aligns, splits and standardises the data of a config. Relative paths are
/// resolved against `base`. Every file (wide) or every entity of every file (long) is an
/// entity; each is put on its own grid starting at its first observation.
///
/// # Errors
/// No file, and every error of ingestion, named.
pub fn load_data(config: &DataConfig, base: &Path) -> Result<PreparedSeries> {
    if config.files.is_empty() {
        return Err(Error::invalid("data.files", "no file given"));
    }
    let files: Vec<PathBuf> = config.files.iter().map(|f| base.join(f)).collect();
    let calendar = config.calendar()?;
    let (entities, marked) = read_entities(config, &files, &config.signals, calendar.naive_zone())?;
    let mut prepared = PreparedSeries::from_entities_screened(
        entities,
        config.split,
        config.outlier_mads,
        &config.log1p,
        &config.floor,
    )?;
    prepared.marked = prepared.grid.signals.iter().map(|s| marked.get(s).copied().unwrap_or(0)).collect();
    prepared.with_calendar(calendar)
}

/// A run's own data (`config.data`, read again), checked against what the run was trained
/// on: read now, its training part must give the signals, grid step and standardisation
/// the run keeps in `dir` ([`FittedScaler`], `scaler.json`). Otherwise its files changed
/// since (rows added or removed, a file replaced), and with them the parts the run was
/// trained, validated and tested on and the scale its model reads: scoring it there would
/// mislead, so it is refused; [`load_unseen_data`] reads other data for a trained run. A
/// folder written before `scaler.json` was kept is not checked.
///
/// # Errors
/// As [`load_data`]; data that is not what the run was trained on, with the first
/// difference named.
pub fn load_run_data(dir: &Path, config: &RunConfig) -> Result<PreparedSeries> {
    let data = load_data(&config.data, Path::new("."))?;
    let Some(kept) = FittedScaler::load_from_run(dir)? else { return Ok(data) };
    if let Some(difference) = kept.difference(&FittedScaler::of(&data)) {
        return Err(Error::invalid(
            format!("data.files ({})", config.data.files.join(", ")),
            format!(
                "not the data the run in {} was trained on (its scaler.json → read now): {difference}; rows added, removed or changed since?",
                dir.display()
            ),
        ));
    }
    Ok(data)
}

/// Files a trained run has not seen, read with its data settings (`config`: format, columns,
/// marks of no value, time unit, grid step, aggregation, categorical columns) and prepared
/// with what it was fitted on ([`PreparedSeries::unseen`]): only the run's signals are read
/// (other columns are ignored), its outlier screen and standardisation are applied, not
/// refitted, and all of it is the test part.
///
/// # Errors
/// No file, every error of ingestion, and a file without a signal the run reads, named.
pub fn load_unseen_data(config: &DataConfig, files: &[PathBuf], fitted: &FittedScaler) -> Result<PreparedSeries> {
    if files.is_empty() {
        return Err(Error::invalid("data", "no file given"));
    }
    let read: Vec<String> =
        fitted.signals.iter().filter(|s| crate::data::one_hot_of(s, &config.categorical).is_none()).cloned().collect();
    // naive local times read in the zone the run keeps (no database needed where it serves)
    let (entities, marked) = read_entities(config, files, &read, fitted.calendar.naive_zone())?;
    let mut prepared = PreparedSeries::unseen(entities, fitted, &config.categorical)?;
    prepared.marked = prepared.grid.signals.iter().map(|s| marked.get(s).copied().unwrap_or(0)).collect();
    Ok(prepared)
}

/// Every entity of `files` (one per wide file; each of a long file's) on its own grid, read
/// with `config`'s settings but only the signals in `signals` (all of them: empty), naive
/// times as local times of `local_times` where given; and per signal, the cells read as
/// gaps for holding a mark of "no value".
///
/// # Errors
/// Every error of ingestion, named; a mark for a signal that is not read.
#[allow(clippy::type_complexity)]
fn read_entities(
    config: &DataConfig,
    files: &[PathBuf],
    signals: &[String],
    local_times: Option<&TimeZone>,
) -> Result<(Vec<(String, GridSeries)>, BTreeMap<String, usize>)> {
    let missing = config.missing()?;
    let mut entities = Vec::new();
    let mut marked: BTreeMap<String, usize> = BTreeMap::new();
    for path in files {
        let series: Vec<(String, crate::data::TimeSeries)> = match config.format {
            DataFormat::Wide => {
                let options = WideOptions {
                    signals: signals.to_vec(),
                    drop: config.drop.clone(),
                    categorical: config.categorical.clone(),
                    missing: missing.clone(),
                    time_unit: config.time_unit,
                    local_times: local_times.cloned(),
                };
                let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                vec![(name, read_wide(path, &options)?)]
            }
            DataFormat::Long => {
                let options = LongOptions {
                    columns: config.columns.clone(),
                    signals: signals.to_vec(),
                    drop: config.drop.clone(),
                    missing: missing.clone(),
                    time_unit: config.time_unit,
                    local_times: local_times.cloned(),
                };
                read_long(path, &options)?
            }
        };
        for (name, s) in series {
            for (signal, &count) in s.signals.iter().zip(&s.marked) {
                *marked.entry(signal.clone()).or_default() += count;
            }
            entities.push((name, align_to_grid(&s, config.bin_seconds, config.aggregation)?));
        }
    }
    // a mark for a signal that is not read would silently do nothing
    if let Some((_, first)) = entities.first() {
        let known: Vec<&str> = first.signals.iter().chain(&config.categorical).map(String::as_str).collect();
        if let Some(name) = missing.unknown_signal(&known) {
            return Err(unknown_signal("data.missing_values_per_signal", name, &first.signals));
        }
    }
    Ok((entities, marked))
}

/// One method's score on the test part.
#[derive(Clone, Debug, Serialize)]
pub struct Score {
    pub name: String,
    pub metrics: Metrics,
    /// Fraction of hidden truths inside the model's ±2σ band (reconstruction only).
    pub coverage_2sigma: Option<f64>,
    /// A causal prediction model's metrics on the same entries when run as deployed, its
    /// state carried from each entity's first step ([`PredictionTask::evaluate_streamed`]).
    pub streamed: Option<Metrics>,
}

/// What a run produced.
pub struct RunOutcome {
    pub model: SequenceModel<f32>,
    pub log: Vec<EpochLog>,
    pub best_epoch: usize,
    /// The model first, then the baselines, on the same test entries.
    pub scores: Vec<Score>,
    pub parameters: usize,
    pub train_seconds: f64,
}

/// A short name for a model: `GRU`, `BiLSTM Decoupled Gated`.
pub fn model_name(model: &SequenceModel<f32>) -> String {
    let e = &model.config().encoder;
    let kind = if e.bidirectional {
        format!("Bi{:?} {:?} {:?}", e.cell, model.config().coupling, model.config().fusion)
    } else {
        format!("{:?}", e.cell)
    };
    kind.replace("GruResetAfter", "GRU").replace("GruResetBefore", "GRU (reset before)").replace("Lstm", "LSTM")
}

/// The model and the baselines on the test part, on the same entries.
///
/// # Errors
/// Windows that do not fit the data, or a model that does not fit the task.
pub fn evaluate(config: &RunConfig, data: &PreparedSeries, model: &SequenceModel<f32>) -> Result<Vec<Score>> {
    evaluate_calibrated(config, data, model, None)
}

/// [`evaluate`] with the model's bands scaled by `calibration` (`recur calibrate`); the
/// errors are the same with or without it.
///
/// # Errors
/// As [`evaluate`].
pub fn evaluate_calibrated(
    config: &RunConfig,
    data: &PreparedSeries,
    model: &SequenceModel<f32>,
    calibration: Option<BandCalibration>,
) -> Result<Vec<Score>> {
    evaluate_part(config, data, model, calibration, &data.test)
}

/// Each entity's scores on its own steps of the test part, as [`evaluate_calibrated`]
/// scores the whole part; an entity whose test steps hold no window is left out. The
/// entities' scores pool to the whole part's: each forecast, or each value a
/// reconstruction hides (the whole part's, [`ReconstructionTask::evaluate_by_entity`]), is
/// scored once either way.
///
/// # Errors
/// As [`evaluate`].
pub fn evaluate_by_entity(
    config: &RunConfig,
    data: &PreparedSeries,
    model: &SequenceModel<f32>,
    calibration: Option<BandCalibration>,
) -> Result<Vec<(String, Vec<Score>)>> {
    if config.task.kind == TaskKind::Reconstruction {
        let task = ReconstructionTask::new(data, config.reconstruction())?.with_calibration(calibration);
        let streams = model.is_causal() && !config.task.residual;
        let streamed = if streams { task.evaluate_streamed_by_entity(model, &data.test)? } else { Vec::new() };
        let mut rows = Vec::new();
        for (entity, scores) in task.evaluate_by_entity(Some(model), &data.test)? {
            let mut scores = reconstruction_scores(scores);
            scores[0].name = model_name(model);
            scores[0].streamed = streamed.iter().find(|(e, _)| *e == entity).map(|(_, m)| m.clone());
            rows.push((data.entities[entity].0.clone(), scores));
        }
        return Ok(rows);
    }
    let mut rows = Vec::new();
    for (name, steps) in &data.entities {
        let part: Vec<Range<usize>> = data
            .test
            .iter()
            .map(|r| r.start.max(steps.start)..r.end.min(steps.end))
            .filter(|r| r.len() >= config.task.window)
            .collect();
        if !part.is_empty() {
            rows.push((name.clone(), evaluate_part(config, data, model, calibration.clone(), &part)?));
        }
    }
    Ok(rows)
}

/// The scores of [`evaluate_calibrated`] on the steps `part` of `data`.
fn evaluate_part(
    config: &RunConfig,
    data: &PreparedSeries,
    model: &SequenceModel<f32>,
    calibration: Option<BandCalibration>,
    part: &[Range<usize>],
) -> Result<Vec<Score>> {
    let mut scores = match config.task.kind {
        TaskKind::Prediction => {
            let p = config.prediction();
            let task = PredictionTask::new(data, p.window, p.residual)?
                .with_targets(&p.targets)?
                .with_calibration(calibration);
            let streamed = model.is_causal().then(|| task.evaluate_streamed(model, part)).transpose()?;
            let metrics = task.evaluate(model, part)?;
            let mut scores =
                vec![Score { name: String::new(), coverage_2sigma: metrics.coverage_2sigma, metrics, streamed }];
            for (n, m) in task.baselines(part)? {
                scores.push(Score { name: n.to_string(), metrics: m, coverage_2sigma: None, streamed: None });
            }
            scores
        }
        TaskKind::Reconstruction => {
            let task = ReconstructionTask::new(data, config.reconstruction())?.with_calibration(calibration);
            let streams = model.is_causal() && !config.task.residual;
            let streamed = streams.then(|| task.evaluate_streamed(model, part)).transpose()?;
            let mut scores = reconstruction_scores(task.evaluate(Some(model), part)?);
            scores[0].streamed = streamed;
            scores
        }
    };
    scores[0].name = model_name(model);
    Ok(scores)
}

/// A reconstruction's scores as a run's (none streamed).
fn reconstruction_scores(scores: Vec<crate::tasks::reconstruction::ReconstructionScore>) -> Vec<Score> {
    scores
        .into_iter()
        .map(|s| Score { name: s.name, metrics: s.metrics, coverage_2sigma: s.coverage_2sigma, streamed: None })
        .collect()
}

/// Trains and evaluates one configuration on prepared data (checkpoints and the epoch
/// log in `run_dir` when given; `resume` continues a checkpoint there).
///
/// # Errors
/// Windows that do not fit the data, a checkpoint from another config, I/O.
pub fn run(config: &RunConfig, data: &PreparedSeries, run_dir: Option<&Path>, resume: bool) -> Result<RunOutcome> {
    let started = std::time::Instant::now();
    let channels = data.grid.channels();
    let report = match config.task.kind {
        TaskKind::Prediction => {
            let task = PredictionTask::from_config(data, &config.prediction())?;
            train(&task, &config.model_config(channels), &config.train, run_dir, resume, None)?
        }
        TaskKind::Reconstruction => {
            let task = ReconstructionTask::new(data, config.reconstruction())?;
            train(&task, &config.model_config(channels), &config.train, run_dir, resume, None)?
        }
    };
    let train_seconds = started.elapsed().as_secs_f64();
    let scores = evaluate(config, data, &report.model)?;
    let parameters = report.model.num_parameters();
    Ok(RunOutcome {
        model: report.model,
        log: report.log,
        best_epoch: report.best_epoch,
        scores,
        parameters,
        train_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantile_band_is_refused_for_reconstruction_and_read_for_prediction() {
        let toml = |kind: &str| format!("[task]\nkind = \"{kind}\"\nuncertainty = \"quantile\"\n");
        let origin = Path::new("run.toml");
        let err = RunConfig::from_toml(&toml("reconstruction"), origin).err().unwrap().to_string();
        assert!(err.contains("task.uncertainty") && err.contains("prediction band"), "{err}");
        let config = RunConfig::from_toml(&toml("prediction"), origin).unwrap();
        assert_eq!(config.prediction().uncertainty, Uncertainty::Quantile);
        assert!(config.to_toml().contains("uncertainty = \"quantile\""));
    }
}
