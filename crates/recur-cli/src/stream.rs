//! `recur stream`: a causal run as a live service, one grid step per CSV row in, its
//! answer out at once, the state carried — the next step's forecast (or the next N steps',
//! direct, then in closed loop) for a prediction run, every signal filled with a ±2σ band for a
//! reconstruction run; with `--flag`, each value watched for alarms; each entity of a long
//! feed with its own state; with `--state`, that state carried from one feed (or one
//! process) to the next; with `--out`, the answers in a file kept in step with that state.
//! The library's [`Fleet`] does the serving; this is its CSV shell.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use recur::data::csv_quoted;
use recur::run::TaskKind;
use recur::serve::{AnswerFile, FeedLayout, FeedStep, Fleet, ServedStep, WatchRule};
use recur::tasks::anomaly::{WatchCounts, WatchStep, ALARMS_FILE};
use recur::tasks::{LiveAnswer, LiveStream};
use recur::Rng;

use crate::args::Args;
use crate::run_folder::{open_run_for_serving, refuse_writing_over, tell_calibration};

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

/// `--flag S`: the fleet's watches' scores as columns, and their counts on stderr.
struct Flags {
    rule: WatchRule,
    targets: Vec<String>,
    flatline: bool,
}

impl Flags {
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

    /// What the watches counted in this feed (`total`, per target), on stderr.
    fn report(&self, total: &[WatchCounts]) {
        let counts = |of: &dyn Fn(&WatchCounts) -> usize, with: &dyn Fn(&WatchCounts) -> String| -> String {
            let named: Vec<String> = self
                .targets
                .iter()
                .zip(total)
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
        let flag = self.rule.threshold;
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
            self.rule.join,
            counts(&|c| c.episodes, &|c| c.episodes.to_string())
        );
    }
}

/// Where `recur stream` writes its answers.
enum Answers {
    Stdout(std::io::StdoutLock<'static>),
    /// `--out FILE`: in step with the state (`--state`), or replacing the file at the end.
    File(AnswerFile),
}

impl Answers {
    /// `line` written at once; false once stdout's reader has gone away.
    fn write_line(&mut self, line: &str) -> Result<bool, String> {
        match self {
            Answers::Stdout(out) => Ok(writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()),
            Answers::File(file) => file.write_line(line).map(|()| true).map_err(|e| e.to_string()),
        }
    }
}

/// `fleet`'s state into `file`, after the answers written so far are on the disk (their
/// length kept in it, where they go to a file; where they go to stdout, no length: an
/// answers file the state was kept with before no longer holds every answer).
fn save_state(fleet: &mut Fleet, answers: &mut Answers, file: &std::path::Path) -> Result<(), String> {
    let written = match answers {
        Answers::File(answers) => Some(answers.commit().map_err(|e| format!("--out: {e}"))?),
        Answers::Stdout(_) => None,
    };
    fleet.set_answers_written(written);
    fleet.save_state(file).map_err(|e| format!("--state: {e}"))
}

/// The output side of `recur stream`: each grid step of an entity through the fleet, its
/// answer written at once, the model step's and the watch's times kept; what the feed saw,
/// on stderr at its end.
struct Server<'a> {
    out: Answers,
    input: &'a str,
    scaler: &'a recur::data::Standardizer,
    flags: Option<&'a Flags>,
    /// Forecasts `horizon` steps ahead, banded by `paths` sample paths.
    horizon: usize,
    paths: usize,
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
    /// `step` of the feed laid out as `layout`, read from its `line`, through `fleet`, its
    /// answer written ([`Server::write`]); false once the reader has gone away.
    fn serve(&mut self, fleet: &mut Fleet, layout: &FeedLayout, step: &FeedStep, line: usize) -> Result<bool, String> {
        let input = self.input;
        let served = fleet.serve(step, self.horizon, self.paths).map_err(|e| format!("{input}: line {line}: {e}"))?;
        self.write(layout, fleet.entity_name(step.entity), step, &served, line)
    }

    /// A step `served` of entity `entity`, read from `line`: its times kept, its answer
    /// written after its leading cells (those passed through, or its entity and its time);
    /// false once the reader has gone away.
    fn write(
        &mut self,
        layout: &FeedLayout,
        entity: &str,
        step: &FeedStep,
        served: &ServedStep,
        line: usize,
    ) -> Result<bool, String> {
        for ((j, v), count) in step.values.iter().enumerate().zip(&mut self.screened) {
            *count += usize::from(v.is_some_and(|v| self.scaler.screens_out(j, v)));
        }
        let micros = served.model_micros;
        self.micros.push(micros);
        if self.budget > 0.0 && micros > self.budget {
            if self.over_budget.is_empty() {
                eprintln!(
                    "{}: line {line}: the model step took {micros:.1} µs, over the budget of {} µs",
                    self.input, self.budget
                );
            }
            self.over_budget.push(line);
        }
        self.watch_micros.extend(served.watch_micros);
        let leading: Vec<String> = match &step.time {
            None => step.passed.iter().map(|cell| csv_quoted(cell)).collect(),
            Some(time) => match layout.entity_column() {
                Some(_) => vec![csv_quoted(entity), time.clone()],
                None => vec![time.clone()],
            },
        };
        let watched = match (&served.watched, self.flags) {
            (Some(step), Some(flags)) => flags.cells(step),
            _ => Vec::new(),
        };
        // a reconstruction fills a value withheld as it fills a missing one
        let cells: Vec<String> =
            leading.into_iter().chain(answer_cells(&served.answer, &served.fed)).chain(watched).collect();
        self.out.write_line(&cells.join(","))
    }

    /// The answers' file closed (`--out`), and what the feed saw, on stderr: values
    /// screened out, the watches' counts, the model step's times; an error naming the steps
    /// over the budget.
    fn report(mut self, signals: &[String], fleet: &Fleet) -> Result<(), String> {
        if let Answers::File(file) = self.out {
            file.close().map_err(|e| format!("--out: {e}"))?;
        }
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
        if let (Some(flags), Some(counts)) = (self.flags, fleet.feed_counts()) {
            flags.report(&counts);
        }
        let of = match fleet.entity_count() {
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

/// The output's first columns: those passed through, or an aligned step's time (after its
/// entity, named as the data names it, where the feed has entities).
fn leading_header(layout: &FeedLayout) -> Vec<String> {
    match (layout.is_aligned(), layout.entity_column()) {
        (false, _) => layout.passed_columns().into_iter().map(String::from).collect(),
        (true, None) => vec!["time".to_string()],
        (true, Some(entity)) => vec![entity.to_string(), "time".to_string()],
    }
}

pub fn stream(args: &Args) -> Result<(), String> {
    let known = [
        "run",
        "input",
        "budget-us",
        "horizon",
        "samples",
        "align",
        "flag",
        "join",
        "state",
        "state-every",
        "bad-rows",
        "resume",
        "leave-after",
        "out",
    ];
    let dir = PathBuf::from(args.get("run", &known, String::new())?);
    if dir.as_os_str().is_empty() {
        return Err(
            "usage: recur stream --run DIR [--input FILE.csv] [--budget-us N] [--horizon N [--samples K]] [--align true] [--flag S [--join STEPS]] [--state FILE.json [--state-every ROWS] [--resume true]] [--bad-rows stop|skip] [--leave-after ROWS] [--out FILE.csv] (a causal run; rows on stdin)"
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
    let resume: bool = args.get("resume", &known, false)?;
    let leave_after: u64 = args.get("leave-after", &known, 0)?;
    let out = args.get("out", &known, String::new())?;
    if resume && !keeps_state {
        return Err("--resume: the feed goes on from the state in --state FILE".into());
    }
    if !out.is_empty() {
        let mut inputs = vec![("the --state file", state_file.as_path())];
        if input != "-" {
            inputs.push(("the --input file", std::path::Path::new(&input)));
        }
        refuse_writing_over(std::path::Path::new(&out), &inputs)?;
    }
    if horizon == 0 {
        return Err("--horizon: forecasts reach at least one step ahead".into());
    }
    let skip_bad_rows = match args.get("bad-rows", &known, "stop".to_string())?.as_str() {
        "stop" => false,
        "skip" => true,
        other => return Err(format!("--bad-rows {other}: `stop` (the default) or `skip`")),
    };
    // the run folder alone: its config, model, signals and standardisation
    let run = open_run_for_serving(&dir)?;
    let config = &run.config;
    if horizon > 1 && config.task.kind != TaskKind::Prediction {
        return Err(format!("{}: --horizon needs a prediction run", dir.display()));
    }
    tell_calibration(&dir, run.calibration.as_ref());
    // one step through a throwaway stream first: the first call's page faults and cold
    // caches are the process's start, not a step of the stream
    let mut warm = run.stream().map_err(|e| format!("{}: {e}", dir.display()))?;
    let rule = (flag != 0.0).then_some(WatchRule { threshold: flag, join });
    let mut fleet = Fleet::new(&run, rule).map_err(|e| format!("{}: --flag: {e}", dir.display()))?;
    if let Some(kept) = fleet.kept_alarms() {
        eprintln!(
            "surprises scaled by {} (each signal's alarm rate {} % above {} on the validation part)",
            dir.join(ALARMS_FILE).display(),
            100.0 * kept.scales.rate,
            kept.scales.threshold
        );
    }
    let flags = rule.map(|rule| Flags { rule, targets: fleet.targets().to_vec(), flatline: fleet.has_flatline() });
    warm.at(0);
    warm.step_forecasting(&vec![None; warm.signals().len()], horizon, paths, &mut Rng::new(0))
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
    let layout = fleet.layout(&header, align).map_err(|e| e.at(&input, 1))?;
    let header: Vec<String> = leading_header(&layout)
        .into_iter()
        .chain(answer_header(fleet.stream(), horizon, paths))
        .chain(flags.as_ref().map_or(Vec::new(), Flags::header))
        .collect();
    let header = header.iter().map(|c| csv_quoted(c)).collect::<Vec<_>>().join(",");
    // --state: every entity of the feeds before goes on where it stopped, and the paths'
    // generator where it stopped
    if keeps_state {
        fleet.load_state(&state_file).map_err(|e| e.to_string())?;
    }
    let answers = match (out.as_str(), keeps_state) {
        ("", _) => {
            let mut stdout = Answers::Stdout(std::io::stdout().lock());
            stdout.write_line(&header)?;
            stdout
        }
        // the answers of rows read after the state was written are cut: those rows are
        // answered again as they come
        (out, true) => {
            let (file, cut) =
                AnswerFile::continued(out, &header, fleet.answers_written()).map_err(|e| format!("--out: {e}"))?;
            if cut.lines > 0 {
                eprintln!(
                    "{out}: the last {} answers were written after the state in {} and are cut: their rows are \
                     answered again as they are read",
                    cut.lines,
                    state_file.display()
                );
            }
            Answers::File(file)
        }
        (out, false) => Answers::File(AnswerFile::replaced(out, &header).map_err(|e| format!("--out: {e}"))?),
    };
    let mut server = Server {
        out: answers,
        input: &input,
        scaler: &run.fitted.scaler,
        flags: flags.as_ref(),
        horizon,
        paths,
        budget,
        over_budget: Vec::new(),
        micros: Vec::new(),
        watch_micros: Vec::new(),
        screened: vec![0; run.fitted.signals.len()],
    };
    // --resume: the feed the state was reading when its stream stopped, sent again
    let mut passed_over = match resume {
        true => fleet.resume_feed(),
        false => 0,
    };
    if passed_over > 0 {
        eprintln!(
            "resuming the feed {} stopped in: its first {passed_over} rows were read then, passed over",
            state_file.display()
        );
    }
    let mut skipped = Skipped::default();
    // entities that left (--leave-after)
    let mut gone = 0;
    let mut last_line = 1;
    // false once the reader has gone away
    let mut reading = true;
    'feed: for (index, line) in lines {
        let line = line.map_err(|e| format!("{input}: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        last_line = index + 1;
        if passed_over > 0 {
            passed_over -= 1;
            continue;
        }
        let steps = match fleet.read_line(&layout, &line) {
            Ok(steps) => steps,
            Err(e) if skip_bad_rows => {
                skipped.note(e.at(&input, last_line));
                // a feed of grid steps keeps the step's place, every value missing
                fleet.gap_step(&layout).map_err(|e| e.to_string())?.into_iter().collect()
            }
            Err(e) => return Err(e.at(&input, last_line)),
        };
        for step in steps {
            let served = match server.serve(&mut fleet, &layout, &step, last_line) {
                // the step refused changed nothing: in its place, the step with every value missing
                Err(why) if skip_bad_rows => {
                    skipped.note(why);
                    let gap = FeedStep { values: vec![None; step.values.len()], ..step };
                    server.serve(&mut fleet, &layout, &gap, last_line)
                }
                served => served,
            };
            if !served? {
                reading = false;
                break 'feed;
            }
        }
        // --leave-after: an entity quiet that long has left: its last step answered, forgotten
        if leave_after > 0 {
            for name in fleet.silent_for(leave_after) {
                let left = fleet.leave(&name, horizon, paths).map_err(|e| format!("{input}: entity `{name}`: {e}"))?;
                for (step, served) in left {
                    if !server.write(&layout, &name, &step, &served, last_line)? {
                        reading = false;
                        break 'feed;
                    }
                }
                gone += 1;
            }
        }
        // --state-every: a stream stopped without ending its feed goes on from here
        let (before, rows) = fleet.rows();
        if state_every > 0 && (rows - before).is_multiple_of(state_every) {
            save_state(&mut fleet, &mut server.out, &state_file)?;
        }
    }
    if keeps_state {
        // the feed pauses here (where it was read to its end): its open bins wait for the next one
        if reading {
            fleet.end_feed();
        }
        save_state(&mut fleet, &mut server.out, &state_file)?;
        let ((before, rows), entities) = (fleet.rows(), fleet.entity_count());
        eprintln!(
            "state of {entities} entit{} after {rows} feed rows ({} of this feed) kept in {} for the next feed",
            if entities == 1 { "y" } else { "ies" },
            rows - before,
            state_file.display()
        );
    } else if reading {
        // aligned, the feed's end completes each entity's last bin
        for step in fleet.finish() {
            if !server.serve(&mut fleet, &layout, &step, last_line)? {
                reading = false;
                break;
            }
        }
    }
    skipped.report();
    if gone > 0 {
        eprintln!("{gone} entities left after {leave_after} rows without one of theirs (--leave-after): answered and forgotten");
    }
    match reading {
        true => server.report(&run.fitted.signals, &fleet),
        false => Ok(()),
    }
}

/// `--bad-rows skip`: the rows (and steps) refused, the first few told on stderr as they
/// come, all counted at the end.
#[derive(Default)]
struct Skipped {
    count: usize,
}

impl Skipped {
    const TOLD: usize = 10;

    fn note(&mut self, why: String) {
        self.count += 1;
        if self.count <= Self::TOLD {
            eprintln!("{why} (skipped: --bad-rows skip)");
        }
    }

    fn report(&self) {
        if self.count > Self::TOLD {
            eprintln!("{} rows or steps skipped in all (--bad-rows skip; the first {} above)", self.count, Self::TOLD);
        }
    }
}
