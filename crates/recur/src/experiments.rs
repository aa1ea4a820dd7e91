//! Experiment grids: each variant of a base configuration run over several seeds, on the
//! same data, then one table per grid sorted by mean test micro MSE with its spread, the
//! number of seeds, parameters and training time, as Markdown and CSV, with a bar plot and
//! the lecture's own numbers beside (they come from other data: compare orderings).
//!
//! Every run writes `result.json` atomically when it finishes, so an interrupted grid run
//! again finishes only the missing runs; `shard = (i, n)` runs every n-th run from the
//! i-th, and [`collect_results`] merges the folders of several shards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::data::{csv_quoted, PreparedSeries};
use crate::error::{Error, Result};
use crate::io::write_atomically;
use crate::plot::BarChart;
use crate::run::{load_data, run, DataConfig, RunConfig, Score, TaskKind};
use crate::tasks::{Metrics, PredictionTask};

/// A grid file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridConfig {
    pub name: String,
    pub seeds: Vec<u64>,
    /// Runs at the same time (each uses `base.train.threads` threads).
    #[serde(default = "one")]
    pub parallel: usize,
    /// The configuration every variant starts from.
    pub base: toml::Table,
    /// Each variant: a `name` and any keys of a run configuration, merged over `base`.
    pub variants: Vec<toml::Table>,
    /// The lecture's micro MSE for the same names: `"GRU" = [mean, std]`.
    #[serde(default)]
    pub lecture: BTreeMap<String, (f64, f64)>,
    /// Also score every causal prediction model this many steps ahead (direct as far as
    /// the model forecasts, then in closed loop:
    /// [`crate::tasks::PredictionTask::evaluate_horizon`]): a column of the table.
    #[serde(default)]
    pub horizon: Option<usize>,
    /// Score every run on this signal alone (its MSE is the table's micro MSE, the
    /// baselines' and the streamed and ahead columns too): models that forecast every
    /// signal and models of this one alone (`task.targets`) in one table.
    #[serde(default)]
    pub signal: Option<String>,
}

fn one() -> usize {
    1
}

/// One finished run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    pub variant: String,
    pub seed: u64,
    pub micro_mse: f64,
    pub mae: f64,
    pub parameters: usize,
    pub train_seconds: f64,
    pub best_epoch: usize,
    /// The baselines on the same test entries: (name, micro MSE).
    pub baselines: Vec<(String, f64)>,
    /// A causal prediction model's micro MSE on the same entries, run as deployed (its
    /// state carried from the series' first step).
    #[serde(default)]
    pub streamed_micro_mse: Option<f64>,
    /// With the grid's `horizon`: (steps ahead, the micro MSE that far ahead).
    #[serde(default)]
    pub ahead: Option<(usize, f64)>,
    /// A model with a band (a Gaussian head): the fraction of the scored test entries
    /// inside its ±2σ.
    #[serde(default)]
    pub coverage_2sigma: Option<f64>,
    /// And the band's interval score ([`crate::tasks::Metrics::interval_score_2sigma`]).
    #[serde(default)]
    pub interval_score_2sigma: Option<f64>,
}

/// One row of the table.
#[derive(Clone, Debug, Serialize)]
pub struct TableRow {
    pub variant: String,
    pub mean: f64,
    pub std: f64,
    pub seeds: usize,
    pub parameters: usize,
    pub train_seconds: f64,
    pub lecture: Option<(f64, f64)>,
    /// Mean ± std of the streamed micro MSE, when every run of the variant has one.
    pub streamed: Option<(f64, f64)>,
    /// Steps ahead and the mean ± std of the micro MSE there, when every run of the variant
    /// has one.
    pub ahead: Option<(usize, f64, f64)>,
    /// Mean ± std of the ±2σ coverage, when every run of the variant has one.
    pub coverage: Option<(f64, f64)>,
    /// Mean ± std of the band's interval score, likewise.
    pub interval_score: Option<(f64, f64)>,
}

fn merge_tables(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

fn slug(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

impl GridConfig {
    /// # Errors
    /// An unreadable or malformed file (with line and column), a variant without a name
    /// or with an unknown key, a variant that changes the data, variants that score other
    /// signals or cannot reach the horizon.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        let grid: GridConfig =
            toml::from_str(&text).map_err(|e| Error::Format { path: path.to_path_buf(), why: e.to_string() })?;
        let variants: Vec<(String, RunConfig)> =
            (0..grid.variants.len()).map(|v| grid.variant(v, path)).collect::<Result<_>>()?;
        check_targets(&grid, &variants, path)?;
        Ok(grid)
    }

    /// The name and full configuration of variant `index`.
    ///
    /// # Errors
    /// A missing name, an unknown key, or a `data` section in the variant.
    pub fn variant(&self, index: usize, origin: &Path) -> Result<(String, RunConfig)> {
        let mut over = self.variants[index].clone();
        let name = match over.remove("name") {
            Some(toml::Value::String(s)) => s,
            _ => {
                return Err(Error::Format {
                    path: origin.to_path_buf(),
                    why: format!("variant {} has no `name`", index + 1),
                })
            }
        };
        // the same entries scored in the same units: only the transform and the calendar
        // inputs may change
        let changed = match over.get("data") {
            Some(toml::Value::Table(data)) => data.keys().find(|k| !VARIANT_DATA_KEYS.contains(&k.as_str())).cloned(),
            Some(_) => Some(String::new()),
            None => None,
        };
        if let Some(key) = changed {
            return Err(Error::Format {
                path: origin.to_path_buf(),
                why: format!(
                    "variant `{name}` changes `data{}`; a grid runs on one data set (a variant may change data.{} only)",
                    if key.is_empty() { String::new() } else { format!(".{key}") },
                    VARIANT_DATA_KEYS.join(", data.")
                ),
            });
        }
        let mut table = self.base.clone();
        merge_tables(&mut table, &over);
        let text = toml::to_string(&table).map_err(|e| Error::invalid("grid", e.to_string()))?;
        let config = RunConfig::from_toml(&text, origin)
            .map_err(|e| Error::Format { path: origin.to_path_buf(), why: format!("variant `{name}`: {e}") })?;
        Ok((name, config))
    }

    /// A reduced grid for a smoke test: the first seed, 3 short epochs per run.
    pub fn quick(mut self) -> Self {
        self.seeds.truncate(1);
        let train = self.base.entry("train").or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = train {
            t.insert("epochs".into(), toml::Value::Integer(3));
            t.insert("max_batches_per_epoch".into(), toml::Value::Integer(20));
        }
        self.name.push_str("-quick");
        self
    }
}

/// Refuses variants whose scores would not compare or whose horizon cannot be reached: a
/// table's micro MSE pools the signals a run scores, so every variant must score the same
/// ones (`task.targets`), or, with the grid's `signal`, score that one among others; and a
/// model forecasting only some signals reaches no further than its direct steps (no closed
/// loop), so not the grid's `horizon` past them.
fn check_targets(grid: &GridConfig, variants: &[(String, RunConfig)], origin: &Path) -> Result<()> {
    let refuse = |why: String| Err(Error::Format { path: origin.to_path_buf(), why });
    let Some((first, reference)) = variants.first() else { return Ok(()) };
    for (name, config) in variants {
        let targets = &config.task.targets;
        if let Some(signal) = grid.signal.as_ref().filter(|s| !targets.is_empty() && !targets.contains(s)) {
            return refuse(format!(
                "variant `{name}` forecasts {targets:?} (task.targets), not the grid's signal `{signal}`"
            ));
        }
        if grid.signal.is_none() && config.task.targets != reference.task.targets {
            return refuse(format!(
                "variants `{first}` and `{name}` score other signals (task.targets {:?} and {:?}): their micro MSEs \
                 would not compare; give them a grid each",
                reference.task.targets, config.task.targets
            ));
        }
        let reach = config.task.steps_ahead;
        if let Some(h) = grid.horizon.filter(|&h| h > reach && !config.task.targets.is_empty()) {
            return refuse(format!(
                "variant `{name}` forecasts task.targets alone {reach} step(s) ahead and cannot reach the grid's \
                 horizon {h} (no closed loop without the other signals); set task.steps_ahead = {h}"
            ));
        }
    }
    Ok(())
}

/// The keys of `[data]` a grid's variant may set: how the one data set is read, not which.
const VARIANT_DATA_KEYS: [&str; 5] = ["log1p", "floor", "calendar", "calendar_utc_offset_hours", "time_zone"];

/// Runs every (variant, seed) of `grid` not yet finished under `out/<grid name>/`, this
/// shard's share only; `base_dir` resolves the data paths. Returns how many ran.
///
/// # Errors
/// Data that cannot be loaded, or a run that fails (named by variant and seed).
pub fn run_grid(grid: &GridConfig, origin: &Path, out: &Path, shard: (usize, usize), base_dir: &Path) -> Result<usize> {
    let dir = out.join(&grid.name);
    // the grid's data, prepared once for each transform and calendar its variants ask for
    let mut prepared: Vec<(&DataConfig, PreparedSeries)> = Vec::new();
    let variants: Vec<(String, RunConfig)> =
        (0..grid.variants.len()).map(|v| grid.variant(v, origin)).collect::<Result<_>>()?;
    let same_transforms = |a: &DataConfig, b: &DataConfig| {
        a.log1p == b.log1p
            && a.floor == b.floor
            && a.calendar == b.calendar
            && a.calendar_utc_offset_hours == b.calendar_utc_offset_hours
            && a.time_zone == b.time_zone
    };
    for (_, config) in &variants {
        if !prepared.iter().any(|(data, _)| same_transforms(data, &config.data)) {
            prepared.push((&config.data, load_data(&config.data, base_dir)?));
        }
    }
    let data_for = |config: &RunConfig| -> &PreparedSeries {
        &prepared.iter().find(|(data, _)| same_transforms(data, &config.data)).expect("prepared above").1
    };
    let mut jobs = Vec::new();
    for (v, (name, config)) in variants.iter().enumerate() {
        for &seed in &grid.seeds {
            let run_dir = dir.join(slug(name)).join(format!("seed-{seed}"));
            let index = v * grid.seeds.len() + grid.seeds.iter().position(|&s| s == seed).unwrap_or(0);
            if index % shard.1 == shard.0 && !run_dir.join("result.json").exists() {
                jobs.push((name.clone(), config.clone(), seed, run_dir));
            }
        }
    }
    let total = jobs.len();
    println!(
        "{}: {} runs to do in {} (of {} in the grid)",
        grid.name,
        total,
        dir.display(),
        grid.variants.len() * grid.seeds.len()
    );
    let queue = Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let worker = || loop {
        let next = queue.lock().expect("queue").pop();
        let Some((i, (name, mut config, seed, run_dir))) = next else { break };
        let data = data_for(&config);
        config.train.seed = seed;
        crate::train::set_progress(crate::train::Progress::Hidden);
        let finished = signal_index(grid, &config, data).and_then(|signal| {
            let outcome = run(&config, data, Some(&run_dir), true)?;
            let ahead = match grid.horizon {
                Some(h) if config.task.kind == TaskKind::Prediction && outcome.model.is_causal() => {
                    let task = PredictionTask::from_config(data, &config.prediction())?;
                    Some((h, task.evaluate_horizon(&outcome.model, &data.test, h)?))
                }
                _ => None,
            };
            Ok((outcome, ahead, signal))
        });
        match finished {
            Ok((outcome, ahead, signal)) => {
                // the grid's signal alone, or every signal the run scores
                let scored = |m: &Metrics| signal.map_or_else(|| m.clone(), |j| m.of_signal(j));
                let scores: Vec<Score> = outcome
                    .scores
                    .iter()
                    .map(|s| {
                        let metrics = scored(&s.metrics);
                        let coverage_2sigma = s.coverage_2sigma.and(metrics.coverage_2sigma);
                        Score {
                            name: s.name.clone(),
                            metrics,
                            coverage_2sigma,
                            streamed: s.streamed.as_ref().map(scored),
                        }
                    })
                    .collect();
                let mut result =
                    result_of(&name, seed, &scores, outcome.parameters, outcome.train_seconds, outcome.best_epoch);
                if let Some((h, scores)) = ahead {
                    result.ahead = Some((h, scored(&scores.model[h - 1]).micro_mse));
                    result.baselines.push((persistence_ahead_name(h), scored(&scores.persistence[h - 1]).micro_mse));
                    if let Some((period, same)) = scores.seasonal {
                        let name = format!("seasonal persistence ({period} steps back) {h} steps ahead");
                        result.baselines.push((name, scored(&same[h - 1]).micro_mse));
                    }
                }
                let text = serde_json::to_string_pretty(&result).unwrap_or_default();
                if let Err(e) = write_atomically(&run_dir.join("result.json"), text.as_bytes()) {
                    *failure.lock().expect("failure") = Some(e);
                    break;
                }
                println!(
                    "[{}/{total}] {name}, seed {seed}: micro MSE {:.4} ({:.0} s)",
                    total - i,
                    result.micro_mse,
                    result.train_seconds
                );
            }
            Err(e) => {
                *failure.lock().expect("failure") =
                    Some(Error::invalid(format!("run `{name}` seed {seed}"), e.to_string()));
                break;
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 1..grid.parallel.max(1) {
            s.spawn(worker);
        }
        worker();
    });
    match failure.into_inner().expect("failure") {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

/// Where the grid's `signal` is among the signals a variant's run scores (None: no
/// `signal`, every scored signal counts).
///
/// # Errors
/// A signal the data does not have.
fn signal_index(grid: &GridConfig, config: &RunConfig, data: &PreparedSeries) -> Result<Option<usize>> {
    let Some(signal) = &grid.signal else { return Ok(None) };
    let scored = config.scored_signals(&data.grid.signals);
    match scored.iter().position(|s| s == signal) {
        Some(j) => Ok(Some(j)),
        None => Err(Error::invalid(
            "signal",
            format!("the grid scores `{signal}`; the data's signals are {}", data.grid.signals.join(", ")),
        )),
    }
}

fn result_of(
    name: &str,
    seed: u64,
    scores: &[Score],
    parameters: usize,
    train_seconds: f64,
    best_epoch: usize,
) -> RunResult {
    RunResult {
        variant: name.to_string(),
        seed,
        micro_mse: scores[0].metrics.micro_mse,
        mae: scores[0].metrics.mae,
        parameters,
        train_seconds,
        best_epoch,
        baselines: scores[1..].iter().map(|s| (s.name.clone(), s.metrics.micro_mse)).collect(),
        streamed_micro_mse: scores[0].streamed.as_ref().map(|m| m.micro_mse),
        ahead: None,
        coverage_2sigma: scores[0].coverage_2sigma,
        interval_score_2sigma: scores[0].metrics.interval_score_2sigma,
    }
}

/// Every `result.json` under the given folders.
///
/// # Errors
/// An unreadable or malformed result file (named).
pub fn collect_results(dirs: &[PathBuf]) -> Result<Vec<RunResult>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.file_name().is_some_and(|n| n == "result.json") {
                    out.push(p);
                }
            }
        }
    }
    let mut files = Vec::new();
    for d in dirs {
        walk(d, &mut files);
    }
    files.sort();
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).map_err(|source| Error::Io { path: f.clone(), source })?;
            serde_json::from_str(&text).map_err(|e| Error::Format { path: f.clone(), why: e.to_string() })
        })
        .collect()
}

/// Rows sorted by mean micro MSE (sample standard deviation over seeds).
pub fn table(results: &[RunResult], lecture: &BTreeMap<String, (f64, f64)>) -> Vec<TableRow> {
    let mut by: BTreeMap<&str, Vec<&RunResult>> = BTreeMap::new();
    for r in results {
        by.entry(&r.variant).or_default().push(r);
    }
    let mut rows: Vec<TableRow> = by
        .into_iter()
        .map(|(name, rs)| {
            let n = rs.len() as f64;
            let (mean, std) = mean_and_std(&rs.iter().map(|r| r.micro_mse).collect::<Vec<_>>());
            let streamed: Option<Vec<f64>> = rs.iter().map(|r| r.streamed_micro_mse).collect();
            let coverage: Option<Vec<f64>> = rs.iter().map(|r| r.coverage_2sigma).collect();
            let interval: Option<Vec<f64>> = rs.iter().map(|r| r.interval_score_2sigma).collect();
            let ahead: Option<Vec<(usize, f64)>> = rs.iter().map(|r| r.ahead).collect();
            let ahead = ahead.filter(|a| a.iter().all(|x| x.0 == a[0].0)).map(|a| {
                let (m, s) = mean_and_std(&a.iter().map(|x| x.1).collect::<Vec<_>>());
                (a[0].0, m, s)
            });
            TableRow {
                variant: name.to_string(),
                mean,
                std,
                streamed: streamed.map(|v| mean_and_std(&v)),
                ahead,
                coverage: coverage.map(|v| mean_and_std(&v)),
                interval_score: interval.map(|v| mean_and_std(&v)),
                seeds: rs.len(),
                parameters: rs[0].parameters,
                train_seconds: rs.iter().map(|r| r.train_seconds).sum::<f64>() / n,
                lecture: lecture.get(name).copied(),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.mean.total_cmp(&b.mean));
    rows
}

/// Mean and sample standard deviation (0 for one value).
fn mean_and_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// The table as bars, mean ± std, in its order; where some model streams, each model as a
/// pair: on windows, then streamed (an empty bar for a model that cannot stream).
fn results_chart(title: &str, rows: &[TableRow]) -> BarChart {
    let streams = rows.iter().any(|r| r.streamed.is_some());
    let bars = rows
        .iter()
        .flat_map(|r| {
            let windows = (r.variant.clone(), r.mean, r.std);
            let streamed = match r.streamed {
                Some((mean, std)) => ("streamed".to_string(), mean, std),
                None => ("cannot stream".to_string(), 0.0, 0.0),
            };
            std::iter::once(windows).chain(streams.then_some(streamed))
        })
        .collect();
    let how = if streams { " (each model: on windows, then streamed with its state carried)" } else { "" };
    BarChart {
        title: format!("{title}: test micro MSE, mean +- std over seeds{how}"),
        y_label: "micro MSE (standardised)".into(),
        bars,
        group: if streams { 2 } else { 0 },
        y_max: None,
    }
}

/// The name a run's result gives persistence's score `h` steps ahead among its baselines.
fn persistence_ahead_name(h: usize) -> String {
    format!("persistence {h} steps ahead")
}

/// Persistence's score `h` steps ahead, from the first run that scored it.
fn persistence_ahead(results: &[RunResult], h: usize) -> Option<f64> {
    let name = persistence_ahead_name(h);
    results.iter().find_map(|r| r.baselines.iter().find(|(n, _)| *n == name)).map(|&(_, v)| v)
}

/// The models scored `h` steps ahead, mean ± std, in the table's order, after the
/// `baseline` they are to beat there (persistence, where the runs scored it): an axis of
/// its own, since a closed loop that diverges lands orders of magnitude above the rest,
/// ending at three times the baseline (a bar past it drawn to the top, its mean written).
fn ahead_chart(title: &str, h: usize, rows: &[TableRow], baseline: Option<(&str, f64)>) -> BarChart {
    let scored = rows.iter().filter_map(|r| r.ahead.map(|(_, mean, std)| (r.variant.clone(), mean, std)));
    let bars: Vec<(String, f64, f64)> =
        baseline.map(|(name, v)| (name.to_string(), v, 0.0)).into_iter().chain(scored).collect();
    BarChart {
        title: format!("{title}: test micro MSE {h} steps ahead (streamed, then fed its own forecasts past the direct steps), mean +- std over seeds"),
        y_label: "micro MSE (standardised)".into(),
        bars,
        group: 0,
        y_max: baseline.map(|(_, v)| 3.0 * v),
    }
}

/// Writes `table.md`, `table.csv` and `results.png` (and, for a grid scored ahead,
/// `results_ahead.png`) into `dir`; returns the Markdown.
///
/// # Errors
/// The folder is not writable.
pub fn write_table(
    dir: &Path,
    title: &str,
    results: &[RunResult],
    lecture: &BTreeMap<String, (f64, f64)>,
) -> Result<String> {
    let rows = table(results, lecture);
    let lecture_rank: BTreeMap<&str, usize> = {
        let mut named: Vec<(&String, &(f64, f64))> = lecture.iter().collect();
        named.sort_by(|a, b| a.1 .0.total_cmp(&b.1 .0));
        named.iter().enumerate().map(|(i, (n, _))| (n.as_str(), i + 1)).collect()
    };
    // the streamed column only where some model streams (prediction with a causal model),
    // the closed-loop one only where some run was scored ahead
    let streams = rows.iter().any(|r| r.streamed.is_some());
    let ahead = rows.iter().find_map(|r| r.ahead).map(|a| a.0);
    // and the band's coverage and interval score where some model has a band (in the
    // Markdown; each run's result.json holds them, the CSV keeps its columns)
    let banded = rows.iter().any(|r| r.coverage.is_some());
    let mut md = format!("### {title}\n\nTest micro MSE (standardised), mean ± std over seeds, sorted.\n\n");
    if streams {
        md.push_str("Streamed: the same entries with the model run as deployed, its state carried from the series' first step (— for a model that reads the future).\n\n");
    }
    if let Some(h) = ahead {
        md.push_str(&format!(
            "{h} steps ahead: streamed, then the model's forecast {h} steps ahead (direct where `task.steps_ahead` reaches that far, closed loop, fed its own forecasts, past it).\n\n"
        ));
    }
    let mut header = vec!["rank", "model", "micro MSE"];
    let ahead_name = ahead.map(|h| format!("{h} steps ahead"));
    header.extend(streams.then_some("streamed"));
    header.extend(ahead_name.as_deref());
    header.extend(if banded { &["±2σ coverage", "interval score"][..] } else { &[] });
    header.extend(["seeds", "parameters", "train s/run", "lecture (mean ± std)", "lecture rank"]);
    md.push_str(&format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len())));
    let mut csv = String::from(
        "rank,model,mean,std,seeds,parameters,train_seconds,lecture_mean,lecture_std,lecture_rank,streamed_mean,streamed_std,\
         ahead_steps,ahead_mean,ahead_std\n",
    );
    for (i, r) in rows.iter().enumerate() {
        let (lm, lr) = match r.lecture {
            Some((m, s)) => (
                format!("{m:.4} ± {s:.4}"),
                lecture_rank.get(r.variant.as_str()).map(|k| k.to_string()).unwrap_or_default(),
            ),
            None => ("—".to_string(), String::new()),
        };
        let streamed = match (streams, r.streamed) {
            (false, _) => String::new(),
            (true, Some((m, s))) => format!(" {m:.4} ± {s:.4} |"),
            (true, None) => " — |".to_string(),
        };
        let far = match (ahead, r.ahead) {
            (None, _) => String::new(),
            (Some(_), Some((_, m, s))) => format!(" {m:.4} ± {s:.4} |"),
            (Some(_), None) => " — |".to_string(),
        };
        let coverage = match (banded, r.coverage, r.interval_score) {
            (false, ..) => String::new(),
            (true, Some((m, s)), Some((im, is))) => {
                format!(" {:.1} ± {:.1} % | {im:.4} ± {is:.4} |", 100.0 * m, 100.0 * s)
            }
            (true, Some((m, s)), None) => format!(" {:.1} ± {:.1} % | — |", 100.0 * m, 100.0 * s),
            (true, None, _) => " — | — |".to_string(),
        };
        md.push_str(&format!(
            "| {} | {} | {:.4} ± {:.4} |{streamed}{far}{coverage} {} | {} | {:.0} | {} | {} |\n",
            i + 1,
            crate::report::markdown_cell(&r.variant),
            r.mean,
            r.std,
            r.seeds,
            r.parameters,
            r.train_seconds,
            lm,
            lr
        ));
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            i + 1,
            csv_quoted(&r.variant),
            r.mean,
            r.std,
            r.seeds,
            r.parameters,
            r.train_seconds,
            r.lecture.map_or(String::new(), |l| l.0.to_string()),
            r.lecture.map_or(String::new(), |l| l.1.to_string()),
            lr,
            r.streamed.map_or(String::new(), |s| s.0.to_string()),
            r.streamed.map_or(String::new(), |s| s.1.to_string()),
            r.ahead.map_or(String::new(), |a| a.0.to_string()),
            r.ahead.map_or(String::new(), |a| a.1.to_string()),
            r.ahead.map_or(String::new(), |a| a.2.to_string()),
        ));
    }
    // the runs scored ahead carry the baselines that far ahead too
    if let Some(first) = results.iter().max_by_key(|r| r.baselines.len()) {
        md.push_str("\nBaselines on the same test entries (deterministic): ");
        let parts: Vec<String> = first.baselines.iter().map(|(n, v)| format!("{n} {v:.4}")).collect();
        md.push_str(&parts.join(", "));
        md.push('\n');
    }
    write_atomically(&dir.join("table.md"), md.as_bytes())?;
    write_atomically(&dir.join("table.csv"), csv.as_bytes())?;
    let chart = results_chart(title, &rows);
    let width = if chart.group > 0 { 90 * chart.group * rows.len() } else { 1100 }.max(1100);
    chart.save(&dir.join("results.png"), width, 480)?;
    if let Some(h) = ahead {
        let baseline = persistence_ahead(results, h).map(|v| ("persistence", v));
        let chart = ahead_chart(title, h, &rows, baseline);
        chart.save(&dir.join("results_ahead.png"), (100 * chart.bars.len()).max(1100), 480)?;
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::csv_fields;

    fn row(variant: &str, mean: f64, streamed: Option<(f64, f64)>) -> TableRow {
        TableRow {
            variant: variant.into(),
            mean,
            std: 0.01,
            seeds: 3,
            parameters: 10,
            train_seconds: 1.0,
            lecture: None,
            streamed,
            ahead: None,
            coverage: None,
            interval_score: None,
        }
    }

    #[test]
    fn the_chart_pairs_each_model_with_its_streamed_score_where_some_model_streams() {
        let rows = [row("GRU", 0.18, Some((0.19, 0.02))), row("BiGRU coupled", 0.17, None)];
        let chart = results_chart("t", &rows);
        let bars: Vec<(&str, f64)> = chart.bars.iter().map(|(l, v, _)| (l.as_str(), *v)).collect();
        assert_eq!(bars, [("GRU", 0.18), ("streamed", 0.19), ("BiGRU coupled", 0.17), ("cannot stream", 0.0)]);
        assert_eq!(chart.group, 2);
        let plain = results_chart("t", &rows[1..]);
        assert_eq!(plain.bars.len(), 1);
        assert_eq!(plain.group, 0);
    }

    #[test]
    fn the_table_has_a_closed_loop_column_where_runs_were_scored_ahead() {
        let result = |variant: &str, seed: u64, mse: f64, ahead: Option<(usize, f64)>| RunResult {
            variant: variant.into(),
            seed,
            micro_mse: mse,
            mae: 0.1,
            parameters: 10,
            train_seconds: 1.0,
            best_epoch: 1,
            baselines: vec![("last observation carried forward".into(), 0.3)],
            streamed_micro_mse: ahead.map(|_| mse),
            ahead,
            coverage_2sigma: None,
            interval_score_2sigma: None,
        };
        let results = [
            result("GRU", 1, 0.18, Some((24, 0.80))),
            result("GRU", 2, 0.20, Some((24, 0.84))),
            result("BiGRU coupled", 1, 0.17, None),
        ];
        let rows = table(&results, &BTreeMap::new());
        assert_eq!(rows[1].ahead.map(|a| (a.0, (a.1 * 100.0).round())), Some((24, 82.0)));
        let scratch = tempfile::Builder::new().prefix("recur-grid-table-").tempdir().unwrap();
        let dir = scratch.path();
        let md = write_table(dir, "t", &results, &BTreeMap::new()).unwrap();
        assert!(md.contains("| rank | model | micro MSE | streamed | 24 steps ahead | seeds |"), "{md}");
        assert!(md.contains("| 2 | GRU | 0.1900 ± 0.0141 | 0.1900 ± 0.0141 | 0.8200 ± 0.0283 | 2 |"), "{md}");
        assert!(md.contains("| 1 | BiGRU coupled | 0.1700 ± 0.0000 | — | — | 1 |"), "{md}");
        let csv = std::fs::read_to_string(dir.join("table.csv")).unwrap();
        assert!(csv.lines().next().unwrap().ends_with(",ahead_steps,ahead_mean,ahead_std"), "{csv}");
        assert!(csv.lines().all(|l| csv_fields(l).len() == 15), "{csv}");
        assert!(!md.contains("coverage"), "no band, no coverage column: {md}");
        // the steps ahead on an axis of their own, the baseline first, ending at 3× it
        assert!(std::fs::read(dir.join("results_ahead.png")).unwrap().starts_with(b"\x89PNG"));
        assert_eq!(results_chart("t", &rows).bars.len(), 4, "windows and streamed per model, nothing ahead");
        let ahead = ahead_chart("t", 24, &rows, Some(("persistence", 0.9)));
        let names: Vec<&str> = ahead.bars.iter().map(|b| b.0.as_str()).collect();
        assert_eq!(names, ["persistence", "GRU"], "a model not scored ahead has no bar");
        assert_eq!(ahead.y_max, Some(2.7));
        // the chart's baseline is the one the runs recorded under persistence's name
        assert_eq!(persistence_ahead(&results, 24), None);
        let mut scored = results[0].clone();
        scored.baselines.push((persistence_ahead_name(24), 0.9584));
        assert_eq!(persistence_ahead(&[results[2].clone(), scored], 24), Some(0.9584));

        // a model with a band: its coverage, mean ± std over its runs
        let banded = [
            RunResult { coverage_2sigma: Some(0.95), interval_score_2sigma: Some(2.0), ..results[0].clone() },
            RunResult { coverage_2sigma: Some(0.97), interval_score_2sigma: Some(3.0), ..results[1].clone() },
            results[2].clone(),
        ];
        let md = write_table(dir, "t", &banded, &BTreeMap::new()).unwrap();
        assert!(md.contains("| streamed | 24 steps ahead | ±2σ coverage | interval score | seeds |"), "{md}");
        assert!(md.contains("| 0.8200 ± 0.0283 | 96.0 ± 1.4 % | 2.5000 ± 0.7071 | 2 |"), "{md}");
        assert!(md.contains("| 1 | BiGRU coupled | 0.1700 ± 0.0000 | — | — | — | — | 1 |"), "{md}");
        let csv = std::fs::read_to_string(dir.join("table.csv")).unwrap();
        assert!(csv.lines().all(|l| csv_fields(l).len() == 15), "the CSV keeps its columns: {csv}");
    }
}
