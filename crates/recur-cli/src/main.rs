//! `recur`: the command line over the `recur` library. Errors print one line and exit 2.

mod args;
mod bench;
mod calibrate;
mod classics;
mod demo;
mod detect;
mod evaluate;
mod experiment;
mod inspect;
mod run_folder;
mod stream;
mod text;
mod torch;
mod wording;

use std::process::ExitCode;

const USAGE: &str = "usage:
  recur demo [--epochs N] [--threads N] [--out DIR]
      The case study on the bundled Beijing station (real data with natural gaps):
      next-hour prediction (GRU, trained on windows and on streams with truncated BPTT,
      and a decoupled BiGRU on streams, each scored also as streamed), a day ahead (a
      GRU forecasting the next 24 hours directly against the next-hour GRU in closed
      loop; DIR/day_ahead.png) and reconstruction of hidden values (BiGRU with an
      uncertainty), each against its baselines. Runs configs/beijing-prediction.toml,
      beijing-prediction-stream.toml, beijing-prediction-twin.toml,
      beijing-prediction-direct.toml and beijing-reconstruction.toml, N at a time
      (default 2) on one thread each; no number depends on N.
  recur train --config FILE [--out DIR] [--resume true]
      Trains a run from a TOML config (every key: configs/reference.toml).
  recur eval --run DIR [--data FILE,...] [--horizon N [--samples K]] [--by hour|weekday|month]
      Evaluates a trained run folder on its test part, with the baselines; with --data,
      on those files instead (another period, another machine: read with the run's data
      settings, standardised with its scaler.json, all of it scored). The run's own data
      file changed since training (rows added) is refused, naming what changed. Several
      entities (files, stays, machines): each one's micro MSE too, worst against the best
      baseline first, all in DIR/per_entity.csv (with --data: per_entity_STEM.csv). --horizon N
      (a causal prediction run): also 1..N steps ahead (streamed; the model's direct
      forecasts as far as task.steps_ahead reaches, then closed loop, fed its own
      forecasts) against persistence and the same time a day before, as a table and
      DIR/horizon.png (with --data: DIR/horizon_STEM.png, STEM the first file's name
      without its extension). A model with a band: its coverage (pooled, per signal, per
      step ahead), mean width and interval score. --samples K: past the direct steps too, a
      band from K sample paths (each fed draws from its own forecasts; seeded).
      --by hour|weekday|month: a causal prediction run's one step ahead, streamed, the
      model's and persistence's micro MSE by the local hour (weekday, month) of the step
      forecast; a reconstruction run's, and linear interpolation's, on the values hidden
      on purpose, by the time of their step; as a table and DIR/by_hour.png
      (by_weekday.png, by_month.png; with --data: _STEM).
  recur calibrate --run DIR [--data FILE,... [--fit F] --out DIR2] [--horizon N [--samples K]]
      Calibrates a run's bands (split conformal). A causal prediction run: on the
      validation part, streamed as eval --horizon runs it, one factor per step ahead (1..N;
      default the model's direct steps; past them from K sample paths) and signal that
      scales each band's reach so that it holds 95.45 % of the truths there; prints the test part's
      coverage and interval score before and after, and writes DIR/calibration.json,
      which eval --horizon, predict and stream then apply. A reconstruction run: one
      factor per signal (its values hidden on purpose), applied by reconstruct and stream.
      With --data (a new site or period, read as eval reads it): fitted on the first F
      (default 0.5) of each entity, checked on the rest, and written with a copy of the
      run (run.toml, model, scaler.json) into DIR2, which then serves with those bands;
      the run keeps its own.
  recur predict --run DIR [--data FILE,...] [--horizon N [--samples K]] [--signal NAME] [--out FILE.csv]
      Forecasts the step (or, with --horizon, the N steps: direct, then closed loop) after
      the end of each entity (of the run's data, or of the files --data names, read as
      eval reads them) with a trained prediction run (each row: entity, steps
      ahead, the step's time as the data writes times), with its band where the
      model has one (±2σ or its quantiles; skewed for the signals in data.log1p; past the
      direct steps with --samples K, as eval's); with --horizon, forecast_ahead.png
      beside FILE.csv: one signal (the first, or NAME) of the first entity, its recent
      history and the forecast.
  recur stream --run DIR [--input FILE.csv] [--budget-us N] [--horizon N [--samples K]] [--align true]
               [--flag S [--join STEPS]] [--state FILE.json [--state-every ROWS] [--resume true]]
               [--bad-rows stop|skip] [--leave-after ROWS] [--out FILE.csv]
      Streams a causal run: one grid step per CSV row in (stdin; a header naming the
      run's signals), state carried; out at once, a prediction run's forecast of the next
      step (of every signal, or of its task.targets; --horizon N: of the next N steps,
      direct, then closed loop; --samples K: with bands past the direct steps, as eval's),
      or a reconstruction run's (task.residual = false) every signal, missing ones filled
      with a ±2σ band from λ̂.
      --budget-us: a per-step latency budget; every forecast is still written, and the
      command fails at the end naming the steps (lines) whose model step exceeded it.
      Reads the run folder only (run.toml, model.safetensors, scaler.json, and
      calibration.json if any), not the training data: copy those to deploy.
      --align true: rows are raw observations at their own times (a time column as
      training read them); they are put on the run's grid (its bin, data.aggregation),
      and each bin is answered, as `time,...`, once a row past its end arrives. A run
      trained on long data also takes a long feed (its data.columns: time, signal, value
      and entity), always aligned so; with an entity column, each entity (a machine, a
      patient) is streamed on its own grid with its own state and alarms, their rows in
      any interleaving (each entity's in time order), answered as `entity,time,...`.
      --flag S: each arriving value scored as `recur detect` scores it — against the
      forecast of its step made the step before (a prediction run with a band), or the
      reconstruction of it with it alone hidden (a reconstruction run) — in a column
      SIGNAL_surprise after the answer; a value above S is withheld from the model (fed as
      a gap; a reconstruction run fills it) unless its signal's value the step before was;
      counts on stderr, and the episodes they make (as detect's, --join STEPS, default 3):
      a column new_alarms names the signals whose episode begins at the step.
      Scaled by DIR/alarms.json where `recur detect --alarm-rate` kept
      it (a prediction run without a band needs it: its validation RMS is kept there);
      with it, also the flatline rule (runs of equal readings) in SIGNAL_flatline columns.
      --state FILE.json: the stream goes on where the feed before it stopped — each
      entity's model state, its watch (--flag) and its open grid step are read from FILE
      if it exists and written back (atomically) when this feed ends, which then leaves
      its last step open for the next feed rather than answering it: feed the new rows
      every hour, or restart the service, and the answers are those of one long feed
      (sample paths included); a state of another run, or of its model before it was
      retrained, is refused. --state-every ROWS also writes it after every ROWS rows
      of the feed, with the rows read into it (`rows`): a service killed mid-feed goes
      on from the row after them. --resume true: the feed is the one the state's stream
      was reading when it stopped, sent again from its start: the rows it had read are
      passed over, so each row is answered once.
      --bad-rows skip: a row that cannot be read (a cell, the number of fields, a time out
      of order) is told on stderr (the first 10; then counted) and passed over instead of
      stopping the stream, a row of a feed of grid steps answered as a step with every
      value missing, so that the rows after it keep their time; so is a step the model
      refuses. Default stop: the first bad row ends the stream with its error.
      --leave-after ROWS: an entity with no row among the last ROWS rows (of the signals
      the run reads) has left (a patient discharged): its last open step is answered and
      its state dropped, so a feed whose members come and go does not grow; a row of it
      after that starts it afresh.
      --out FILE.csv: the answers into FILE, not stdout. With --state, FILE is the
      service's answers over every feed, appended to, and made durable before each state
      write, which keeps its length: restarted from a state, the answers written after it
      are cut from FILE and their rows answered again as they are read, so with --resume
      each answer is in FILE once, whenever the stream stopped. Without --state, FILE is
      replaced when the feed has been answered whole (a stopped stream leaves it as it was).
      FILE may not be the --input or the --state file.
  recur detect --run DIR [--data FILE,...] [--threshold S] [--alarm-rate A|none] [--guard true|false]
               [--signal NAME] [--join STEPS] [--out FILE.csv]
               [--inject SIZE [--fault spike|stuck|drift] [--length L] [--rate R] [--seed N]]
      Anomalies found by a causal run: every observed test value (of the run's data, or all
      of the files --data names, read as eval reads them) against what the model expected
      of it, streamed as deployed — a prediction run's forecast of it made the step before,
      a causal reconstruction run's reconstruction of it with it alone hidden (the other
      signals of its step read); its surprise s is its distance from that in σ of the band
      (calibrated if the run is; a prediction run without a band: ±2 × its validation
      RMS), 2 on the band's edge. Beside it, persistence's (the
      jump from the last value, in σ of its training jumps), the level's (|z|, the 3σ
      rule) and the flatline rule's (the run of equal readings a value ends, 2 at the
      training part's 95 % quantile of such runs). Per signal, how many each flags above S
      (default 4) and the most surprising value (several entities: also the ten with the
      largest share flagged); the values the model or the flatline rule flags in FILE.csv
      (default DIR/anomalies.csv) and the most
      surprising value's days (of NAME, or of any signal) in FILE.png. The flags as
      episodes, one alarm each: a signal's flags at most STEPS (default 3) apart, per
      signal how many, how long, the longest and the strongest; every one in
      DIR/episodes.csv (or FILE_episodes.csv), on a timeline beside it (.png). --guard (default
      true): a value scored above S is withheld from what the model (and persistence)
      reads next, fed as missing, so that a fault is not read as the truth the step after
      it (not twice in a row: a lasting change is taken). --alarm-rate A (the run's own
      data): each detector's scores of each signal scaled so that a fraction A of the
      validation part's values score above S (their thresholds printed): every signal and
      detector then raises alarms at one rate there; kept in DIR/alarms.json, which later
      `recur detect` (also on --data) and `recur stream --flag` scale by (none: not).
      --inject SIZE: spikes of ±SIZE training SDs put into a fraction R
      (default 0.01; seeded by N, default 1) of those values; each detector's ROC AUC and
      average precision in finding them, pooled and per signal, and its precision and
      recall above S. --fault stuck: a value read for L steps (default 24) while the truth
      moves at least SIZE SDs away; --fault drift: an offset growing to ±SIZE SDs over L
      steps; then also how many faults each detector finds (a value of the faulty signal
      within its steps above S), how many steps in, the values outside the faults it flags
      per 1,000, and what it finds flagging 1 in 1,000 of those.
  recur export --run DIR [--out DIR/pytorch]
      A trained run for PyTorch: its model.safetensors, recur_torch.py (builds the
      torch.nn module from it) and preprocessing.json (signals, standardisation and
      data.log1p, each signal's marks of no value, input).
  recur import --torch FILE.safetensors --config RUN.toml [--rename from=to,...] [--out DIR]
      A PyTorch state dict (or recur_torch.save's file) as a run folder for eval, predict,
      stream and reconstruct: the model RUN.toml describes, its tensors renamed by prefix
      (e.g. rnn.=forward.,fc.=head.mean.); scored on the test part at once.
  recur reconstruct --run DIR [--data FILE,...] [--out FILE.csv]
      Fills every missing value of a reconstruction run's data (or of the files --data
      names, read as eval reads them), with a ±2σ band.
  recur inspect FILE... [--bin SECONDS] [--missing-values A,B] [--time-unit s|ms|us|ns]
                [--time-zone ZONE [--naive-times local]]
      Layout, entities, sampling intervals and missingness per signal of CSV or
      Parquet files, wide or long (grid: the median interval unless --bin), and how much
      of each signal's variance its hour of the day, weekday and month explain (what
      data.calendar can give a model); the categorical columns, and text among a
      column's numbers (a status string such as `Bad`?). --missing-values: marks of no
      value (data.missing_values), read as gaps; --time-unit: what integer times count
      (data.time_unit; default seconds); --time-zone: the hours in local time of an IANA
      zone (Europe/Berlin) or a POSIX TZ rule (data.time_zone); --naive-times local: times
      without a UTC offset are local times there (data.naive_times).
  recur experiment --config GRID.toml [--out DIR] [--quick true] [--shard i/n]
  recur experiment merge DIR... [--out DIR] [--config GRID.toml]
      A grid of configurations over seeds: table (Markdown, CSV) and plot (and, with the
      grid's `horizon`, a plot of the scores that far ahead against persistence); with its
      `signal`, every run scored on that signal alone (models of every signal and of it
      alone, task.targets, in one table); resumable.
  recur text [--data FILE] [--config FILE.toml] [--epochs N] [--max-tokens N] [--seed S]
             [--seeds K] [--threads N] [--out DIR] [--resume true]
      Hierarchical multi-label text classification (HARNN: BiLSTM, per-level
      attention, category dependency, hybrid prediction) on the bundled DBpedia slice
      (9 / 70 / 219 classes), against TF-IDF + logistic regression, TF-IDF + boosted
      trees and the majority class; writes a run folder with the model and a checkpoint
      after every epoch (--resume true continues it); --seeds K trains seeds S..S+K-1
      into DIR/seed-*/ and tables them, mean ± std. Every key of FILE.toml:
      configs/text-reference.toml.
  recur text predict --run DIR --input FILE [--out FILE.csv] [--explain K]
      The classes of every document in FILE's `text` column, from a trained run
      (--explain K: and the K words each level attended to most).
  recur hopfield [--neurons N] [--trials K] [--noise F] [--out DIR]
      Hopfield memory: recall against patterns per neuron (classic vs modern), plotted.
  recur diagnose gradients [--steps T] [--hidden H] [--seed S] [--out DIR]
      |dL/dh_t| for every t for fresh Elman, LSTM and GRU, against the bound
      |W_hh|^(T-t); then each trained on the adding problem, and how far back its
      answer reads (|dy_T/dx_t|), plotted.
  recur diagnose gradients --run DIR [--data FILE,...] [--steps T] [--windows K] [--seed S]
      How far back a trained causal prediction run's forecast (or a causal reconstruction
      run's reconstruction of the last step) reads: over K stretches
      (default 128) of T steps (default 4x what training backpropagated through) of
      the test part (or of the files --data names, read as eval reads them),
      |dy_T/dh_t| (state) and |dy_T/dx_t| (all inputs, the four signals read most) by
      steps back, where they fade below 1 %, and DIR/look_back.png.
  recur compare [--input D] [--hidden H] [--batch B] [--steps T] [--threads N]
      Parameters and measured training/inference speed of Elman, LSTM, GRU, BiLSTM, BiGRU.
  recur bench [--only S1,LSTM] [--quick true] [--out FILE.jsonl]
      The fused kernels' benchmark (training step, inference, streaming; LSTM and GRU;
      1 and 2 directions and threads; plain and layer norm + dropout) at S1 (B=32, T=60,
      H=64), S2 (B=64, T=120, H=128) and S3 (one step), as % of the sgemm peak measured in
      the same run (~90 s; --only restricts it to shapes, cells, uni/bi or t1/t2).";

/// Ends quietly when the reader of stdout goes away (`recur inspect … | head`), as a
/// Unix tool should, instead of panicking on the broken pipe.
fn default_sigpipe() {
    #[cfg(unix)]
    {
        extern "C" {
            fn signal(signum: i32, handler: usize) -> usize;
        }
        const SIGPIPE: i32 = 13;
        const SIG_DFL: usize = 0;
        // SAFETY: restores the default disposition of one signal before any thread starts.
        unsafe {
            signal(SIGPIPE, SIG_DFL);
        }
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    recur::keep_freed_memory();
    let raw: Vec<String> = std::env::args().skip(1).collect();
    match help_asked(&raw) {
        Some(Ok(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Some(Err(e)) => {
            eprintln!("recur: {e}");
            return ExitCode::from(2);
        }
        None => {}
    }
    let result = args::parse_args(&raw).and_then(|args| match args.positional.first().map(String::as_str) {
        Some("demo") => demo::demo(&args),
        Some("inspect") => inspect::inspect(&args),
        Some("train") => demo::train(&args),
        Some("eval") => evaluate::eval(&args),
        Some("reconstruct") => evaluate::reconstruct(&args),
        Some("predict") => evaluate::predict(&args),
        Some("calibrate") => calibrate::calibrate(&args),
        Some("stream") => stream::stream(&args),
        Some("detect") => detect::detect(&args),
        Some("hopfield") => classics::hopfield(&args),
        Some("diagnose") => classics::diagnose(&args),
        Some("compare") => classics::compare(&args),
        Some("bench") => bench::bench(&args),
        Some("export") => torch::export(&args),
        Some("import") => torch::import(&args),
        Some("experiment") => experiment::experiment(&args),
        Some("text") => text::text(&args),
        None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n{USAGE}")),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("recur: {e}");
            ExitCode::from(2)
        }
    }
}

/// The usage to print when the command line asks for it: `--help` or `-h` anywhere, or
/// `help` as the command; for a command named beside it (`recur train --help`, `recur
/// help stream`), that command's entries only.
fn help_asked(raw: &[String]) -> Option<Result<String, String>> {
    let flag = |a: &String| a == "--help" || a == "-h";
    let words: Vec<&String> = match raw.first().map(String::as_str) {
        Some("help") => raw[1..].iter().collect(),
        _ if raw.iter().any(flag) => raw.iter().filter(|a| !flag(a)).collect(),
        _ => return None,
    };
    let Some(command) = words.first().filter(|w| !w.starts_with('-')) else {
        return Some(Ok(USAGE.to_string()));
    };
    let entries = usage_entries(command);
    Some(match entries.is_empty() {
        true => Err(format!("unknown command `{command}`\n{USAGE}")),
        false => Ok(format!("usage:\n{entries}")),
    })
}

/// The entries of [`USAGE`] for `command`: each starts with a line `  recur COMMAND` and
/// runs to the next such line.
fn usage_entries(command: &str) -> String {
    let mut out = String::new();
    let mut keep = false;
    for line in USAGE.lines().skip(1) {
        if let Some(entry) = line.strip_prefix("  recur ") {
            keep = entry.split_whitespace().next() == Some(command);
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.trim_end().to_string()
}
