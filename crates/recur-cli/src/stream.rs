//! `recur stream`: a causal run as a live service, one grid step per CSV row in, its
//! answer out at once, the state carried — the next step's forecast (or the next N steps',
//! direct, then in closed loop) for a prediction run, every signal filled with a ±2σ band for a
//! reconstruction run.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use recur::data::{
    csv_fields_separated, csv_header, csv_quoted, one_hot_signal, one_hot_value, without_byte_order_mark, CellReader,
    Clock, LiveGrid, TimeColumns,
};
use recur::run::TaskKind;
use recur::tasks::{Forecast, PredictionStream, Reconstructed, ReconstructionStream};
use recur::Rng;

use crate::args::Args;
use crate::demo::{open_run_for_serving, run_calibration};

/// Where one of the run's signals is in the feed: a column of numbers, or one category of a
/// categorical column (`data.categorical`), one-hot as training read it.
struct FeedColumn {
    column: usize,
    category: Option<String>,
    reader: CellReader,
}

impl FeedColumn {
    /// The signal's value in a row's `fields` (`None` where the cell holds no value).
    fn value(&self, fields: &[String]) -> Result<Option<f32>, String> {
        let cell = fields[self.column].trim();
        match &self.category {
            None => self.reader.value::<f32>(cell),
            Some(category) => Ok(one_hot_value(&self.reader, cell, category)),
        }
    }
}

/// The stream of either task.
enum Live<'m> {
    Prediction(PredictionStream<'m>),
    Reconstruction(ReconstructionStream<'m>),
}

impl Live<'_> {
    fn signals(&self) -> &[String] {
        match self {
            Live::Prediction(s) => s.signals(),
            Live::Reconstruction(s) => s.signals(),
        }
    }

    /// The output columns after the passed ones (a prediction `horizon` steps ahead, each
    /// forecast with a band followed by it: ±2σ or the quantiles; with sample paths,
    /// every step's).
    fn header(&self, horizon: usize, paths: usize) -> Vec<String> {
        match self {
            Live::Prediction(s) => {
                let banded = match (s.has_band(), paths) {
                    (false, _) => 0,
                    (true, 0) => horizon.min(s.steps_ahead()),
                    (true, _) => horizon,
                };
                (1..=horizon)
                    .flat_map(|h| {
                        s.signals().iter().flat_map(move |name| {
                            let column = if horizon > 1 { format!("{name}_t+{h}") } else { format!("{name}_next") };
                            let band = (h <= banded).then(|| [format!("{column}_low"), format!("{column}_high")]);
                            std::iter::once(column).chain(band.into_iter().flatten())
                        })
                    })
                    .collect()
            }
            Live::Reconstruction(s) => s
                .signals()
                .iter()
                .flat_map(|s| [s.clone(), format!("{s}_filled"), format!("{s}_low"), format!("{s}_high")])
                .collect(),
        }
    }

    /// One step through the model, and for a prediction the forecasts `horizon` steps
    /// ahead, past the model's direct ones in closed loop, banded by `paths` sample paths
    /// drawn from `rng` if any (what `--budget-us` times).
    fn step(&mut self, values: &[Option<f32>], horizon: usize, paths: usize, rng: &mut Rng) -> recur::Result<Answer> {
        Ok(match self {
            Live::Prediction(s) => Answer::Forecast(s.step_forecast_with_paths(values, horizon, paths, rng)?),
            Live::Reconstruction(s) => Answer::Filled(s.step(values)?),
        })
    }
}

/// A step's answer: the next steps' forecasts, or each signal's reconstruction and band.
enum Answer {
    Forecast(Forecast),
    Filled(Vec<Reconstructed>),
}

impl Answer {
    /// The output cells: the forecasts, each followed by its ±2σ band where it has one; or
    /// per signal the value (observed, or filled), 1 where filled, and the ±2σ band of a
    /// filled value.
    fn cells(&self, values: &[Option<f32>]) -> Vec<String> {
        match self {
            Answer::Forecast(f) => f
                .values
                .iter()
                .enumerate()
                .flat_map(|(k, &v)| {
                    let band = f.low.get(k).zip(f.high.get(k)).map(|(&low, &high)| [low.to_string(), high.to_string()]);
                    std::iter::once(v.to_string()).chain(band.into_iter().flatten())
                })
                .collect(),
            Answer::Filled(filled) => filled
                .iter()
                .zip(values)
                .flat_map(|(r, v)| match v {
                    Some(v) => [v.to_string(), "0".into(), String::new(), String::new()],
                    None => [r.value.to_string(), "1".into(), r.low.to_string(), r.high.to_string()],
                })
                .collect(),
        }
    }
}

pub fn stream(args: &Args) -> Result<(), String> {
    let known = ["run", "input", "budget-us", "horizon", "samples", "align"];
    let dir = PathBuf::from(args.get("run", &known, String::new())?);
    if dir.as_os_str().is_empty() {
        return Err(
            "usage: recur stream --run DIR [--input FILE.csv] [--budget-us N] [--horizon N [--samples K]] (a causal run; rows on stdin)"
                .into(),
        );
    }
    let paths: usize = args.get("samples", &known, 0)?;
    let mut rng = Rng::new(0);
    let input = args.get("input", &known, "-".to_string())?;
    let budget: f64 = args.get("budget-us", &known, 0.0)?;
    let horizon: usize = args.get("horizon", &known, 1)?;
    let align: bool = args.get("align", &known, false)?;
    if horizon == 0 {
        return Err("--horizon: forecasts reach at least one step ahead".into());
    }
    // the run folder alone: its config, model, signals and standardisation
    let (config, model, fitted) = open_run_for_serving(&dir)?;
    if horizon > 1 && config.task.kind != TaskKind::Prediction {
        return Err(format!("{}: --horizon needs a prediction run", dir.display()));
    }
    let calibration = run_calibration(&dir, &fitted.signals)?;
    let (window, residual) = (config.task.window, config.task.residual);
    let open = || -> Result<Live<'_>, String> {
        let live = match config.task.kind {
            TaskKind::Prediction => {
                PredictionStream::new(&model, &fitted, window, residual, calibration.clone()).map(Live::Prediction)
            }
            TaskKind::Reconstruction => {
                ReconstructionStream::new(&model, &fitted, residual, calibration.clone()).map(Live::Reconstruction)
            }
        };
        live.map_err(|e| format!("{}: {e}", dir.display()))
    };
    let mut stream = open()?;
    // one step through a throwaway stream first: the first call's page faults and cold
    // caches are the process's start, not a step of the stream
    open()?.step(&vec![None; stream.signals().len()], horizon, paths, &mut Rng::new(0)).map_err(|e| e.to_string())?;
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
    let sources: Vec<FeedColumn> = stream
        .signals()
        .iter()
        .map(|s| {
            let position = |column: &str| names.iter().position(|n| n == column);
            if let Some(column) = position(s) {
                return Ok(FeedColumn { column, category: None, reader: missing.of(s).separated_by(delimiter) });
            }
            // one category of a categorical column, one-hot (data.categorical)
            let categorical = config.data.categorical.iter().find_map(|c| {
                let category = s.strip_prefix(&one_hot_signal(c, ""))?;
                Some((c, category))
            });
            match categorical {
                Some((c, category)) => match position(c) {
                    Some(column) => Ok(FeedColumn {
                        column,
                        category: Some(category.to_string()),
                        reader: missing.of(c).separated_by(delimiter),
                    }),
                    None => Err(format!("{input}: line 1: no column `{c}` (data.categorical: its values are signals)")),
                },
                None => Err(format!(
                    "{input}: line 1: no column `{s}` (the run's signals: {})",
                    stream.signals().join(", ")
                )),
            }
        })
        .collect::<Result<_, _>>()?;
    // aligned: the feed's time column(s), found as the training data's were
    let time = match align {
        false => None,
        true => Some(TimeColumns::find(&names).ok_or_else(|| {
            format!(
                "{input}: line 1: no time column for --align (`timestamp`, `time`, `date` or `year,month,day[,hour]`)"
            )
        })?),
    };
    // a row's other columns pass through; aligned, a step is a bin of rows, so none do
    let passed: Vec<usize> = match align {
        false => (0..names.len()).filter(|&i| sources.iter().all(|f| f.column != i)).collect(),
        true => Vec::new(),
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    let leading = match align {
        false => passed.iter().map(|&i| csv_quoted(&names[i])).collect(),
        true => vec!["time".to_string()],
    };
    let header: Vec<String> = leading.into_iter().chain(stream.header(horizon, paths)).collect();
    writeln!(out, "{}", header.join(",")).map_err(|e| e.to_string())?;
    let (mut micros, mut over_budget) = (Vec::new(), Vec::new());
    // one grid step through the model, its answer written after `leading` cells; false once
    // the reader has gone away
    let mut serve = |values: &[Option<f32>], leading: Vec<String>, line: usize| -> Result<bool, String> {
        let started = std::time::Instant::now();
        let answer = stream.step(values, horizon, paths, &mut rng).map_err(|e| format!("{input}: line {line}: {e}"))?;
        let micros_now = started.elapsed().as_secs_f64() * 1e6;
        micros.push(micros_now);
        if budget > 0.0 && micros_now > budget {
            if over_budget.is_empty() {
                eprintln!(
                    "{input}: line {line}: the model step took {micros_now:.1} µs, over the budget of {budget} µs"
                );
            }
            over_budget.push(line);
        }
        let cells: Vec<String> = leading.into_iter().chain(answer.cells(values)).collect();
        Ok(writeln!(out, "{}", cells.join(",")).and_then(|()| out.flush()).is_ok())
    };
    let mut grid =
        LiveGrid::new(sources.len(), fitted.bin_seconds, config.data.aggregation).map_err(|e| e.to_string())?;
    let mut completed: Vec<(i64, Vec<Option<f32>>)> = Vec::new();
    let mut last_line = 1;
    for (index, line) in lines {
        let line = line.map_err(|e| format!("{input}: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        last_line = index + 1;
        let fields = csv_fields_separated(&line, delimiter);
        if fields.len() != names.len() {
            return Err(format!("{input}: line {last_line}: {} fields, the header has {}", fields.len(), names.len()));
        }
        let values = sources
            .iter()
            .map(|f| {
                f.value(&fields)
                    .map_err(|why| format!("{input}: line {last_line}, column `{}`: {why}", names[f.column]))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let Some(time) = &time else {
            if !serve(&values, passed.iter().map(|&i| csv_quoted(&fields[i])).collect(), last_line)? {
                return Ok(());
            }
            continue;
        };
        let at = time.read(|i| &fields[i], config.data.time_unit).map_err(|(column, why)| {
            let column = column.map_or(String::new(), |i| format!(", column `{}`", names[i]));
            format!("{input}: line {last_line}{column}: {why}")
        })?;
        grid.push(at, &values, |start, step| completed.push((start, step.to_vec())))
            .map_err(|e| format!("{input}: line {last_line}: {e}"))?;
        for (start, step) in completed.drain(..) {
            if !serve(&step, vec![Clock::Calendar.format(start)], last_line)? {
                return Ok(());
            }
        }
    }
    // aligned, the feed's end completes its last bin
    grid.finish(|start, step| completed.push((start, step.to_vec())));
    for (start, step) in completed {
        if !serve(&step, vec![Clock::Calendar.format(start)], last_line)? {
            return Ok(());
        }
    }
    micros.sort_by(f64::total_cmp);
    if let (Some(median), Some(max)) = (micros.get(micros.len() / 2), micros.last()) {
        let p99 = micros[(micros.len() * 99 / 100).min(micros.len() - 1)];
        eprintln!(
            "{} steps streamed; model step median {median:.1} µs, 99th percentile {p99:.1} µs, max {max:.1} µs (parsing and output excluded)",
            micros.len()
        );
    }
    match over_budget.as_slice() {
        [] => Ok(()),
        lines => Err(format!(
            "{} of {} steps over the budget of {budget} µs (lines {}{})",
            lines.len(),
            micros.len(),
            lines.iter().take(10).map(usize::to_string).collect::<Vec<_>>().join(", "),
            if lines.len() > 10 { ", …" } else { "" }
        )),
    }
}
