//! `recur hopfield`, `recur diagnose gradients`, `recur compare`: the lecture's classics, measured.

use std::path::PathBuf;

use recur::classic::compare::{compare as measure, slide_claims, BatchShape, SlideClaim};
use recur::classic::gradients::{look_back, spectral_norm, state_gradient_norms};
use recur::classic::hopfield::capacity_experiment;
use recur::plot::{LineChart, Series, Style};
use recur::rnn::{CellKind, Rnn, RnnConfig, SequenceBatch};
use recur::run::{model_name, TaskKind};
use recur::tasks::adding::{adding_batch, train_adding};
use recur::tasks::{PredictionTask, ReconstructionTask};
use recur::Rng;

use crate::args::Args;
use crate::run_folder::open_run_on_data;

fn out_dir(args: &Args, known: &[&str], default: &str) -> Result<PathBuf, String> {
    let out = PathBuf::from(args.get("out", known, default.to_string())?);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

pub fn hopfield(args: &Args) -> Result<(), String> {
    let known = ["neurons", "trials", "noise", "out"];
    let n = args.get("neurons", &known, 200usize)?;
    let trials = args.get("trials", &known, 5usize)?;
    let noise = args.get("noise", &known, 0.05f64)?;
    let out = out_dir(args, &known, "runs/hopfield")?;
    let loads: Vec<f64> = (1..=16).map(|k| 0.02 * k as f64).collect();
    println!(
        "Hopfield network, N = {n}, probes with {:.0} % of units flipped, {trials} networks per load",
        100.0 * noise
    );
    let points = capacity_experiment(n, &loads, trials, noise, 1);
    println!("| P/N  | patterns | recall (async) | recall (sync) | recall (modern) | stored = fixed point |");
    println!("|------|---------:|---------------:|--------------:|----------------:|---------------------:|");
    for p in &points {
        println!(
            "| {:.2} | {:>8} | {:>14.2} | {:>13.2} | {:>15.2} | {:>20.2} |",
            p.load, p.patterns, p.recall_async, p.recall_sync, p.recall_modern, p.fixed_points
        );
    }
    let series = |name: &str, f: &dyn Fn(&recur::classic::hopfield::CapacityPoint) -> f64| Series {
        name: name.into(),
        points: points.iter().map(|p| (p.load, f(p))).collect(),
        style: Style::Line,
    };
    write_chart(
        &out.join("capacity.png"),
        LineChart {
            title: format!("Hopfield capacity, N = {n}: recall from {:.0} % corrupted probes", 100.0 * noise),
            x_label: "stored patterns per neuron, P/N".into(),
            y_label: "fraction recalled (overlap >= 0.98)".into(),
            log_y: false,
            bands: Vec::new(),
            series: vec![
                series("classic, asynchronous", &|p| p.recall_async),
                series("classic, synchronous", &|p| p.recall_sync),
                series("modern (softmax)", &|p| p.recall_modern),
                Series { name: "0.138 N".into(), points: vec![(0.138, 0.0), (0.138, 1.0)], style: Style::Dashed },
            ],
        },
    )?;
    Ok(())
}

const DIAGNOSE_USAGE: &str = "usage: recur diagnose gradients [--steps T] [--hidden H] [--seed S] [--out DIR]\n       \
     recur diagnose gradients --run DIR [--steps T] [--windows K] [--seed S]";

pub fn diagnose(args: &Args) -> Result<(), String> {
    if args.positional.get(1).map(String::as_str) != Some("gradients") {
        return Err(DIAGNOSE_USAGE.into());
    }
    if args.flags.iter().any(|(name, _)| name == "run") {
        return diagnose_run(args);
    }
    let known = ["steps", "hidden", "seed", "out"];
    let steps = args.get("steps", &known, 100usize)?;
    let h = args.get("hidden", &known, 32usize)?;
    let seed = args.get("seed", &known, 1u64)?;
    let out = out_dir(args, &known, "runs/diagnose")?;
    let d = 4;
    let mut rng = Rng::new(seed);
    let x: Vec<f64> = (0..steps * d).map(|_| rng.normal()).collect();
    let probe: Vec<f64> = (0..h).map(|_| rng.normal() / (h as f64).sqrt()).collect();
    println!(
        "fresh one-layer models (PyTorch initialisation), T = {steps}, H = {h}, L = v.h_T with |v| = {:.3}",
        norm(&probe)
    );
    let mut series = Vec::new();
    let mut elman_sigma = 0.0;
    let cases = [
        ("Elman (tanh)", CellKind::ElmanTanh, 0.0),
        ("LSTM", CellKind::Lstm, 0.0),
        ("LSTM, forget bias +3", CellKind::Lstm, 3.0),
        ("GRU", CellKind::GruResetAfter, 0.0),
    ];
    for (name, cell, forget_bias) in cases {
        let mut rnn = Rnn::<f64>::new(RnnConfig { cell, input_size: d, hidden_size: h, ..RnnConfig::default() }, seed)
            .map_err(|e| e.to_string())?;
        if forget_bias != 0.0 {
            // f_t = σ(… + b_if + b_hf): both biases of the forget block (rows H..2H)
            let p = &mut rnn.cells_mut()[0];
            p.bias_ih.data[h..2 * h].iter_mut().for_each(|b| *b = forget_bias / 2.0);
            p.bias_hh.data[h..2 * h].iter_mut().for_each(|b| *b = forget_bias / 2.0);
        }
        let w = &rnn.cells()[0].weight_hh;
        let sigma = spectral_norm(&w.data, w.shape[0], w.shape[1], 300);
        if cell == CellKind::ElmanTanh {
            elman_sigma = sigma;
        }
        let norms = state_gradient_norms(&rnn, &x, &probe).map_err(|e| e.to_string())?;
        let at = |k: usize| norms[steps - 1 - k.min(steps - 1)];
        println!(
            "{name:<21} |W_hh|_2 = {sigma:.3}   |dL/dh_t| at T-t = 0: {:.2e}, 10: {:.2e}, 50: {:.2e}, {}: {:.2e}",
            at(0),
            at(10),
            at(50),
            steps - 1,
            at(steps - 1)
        );
        series.push(Series {
            name: name.into(),
            points: norms.iter().enumerate().map(|(t, &g)| ((steps - 1 - t) as f64, g)).collect(),
            style: Style::Line,
        });
    }
    series.push(Series {
        name: format!("bound |v| {elman_sigma:.2}^(T-t) (Elman)"),
        points: (0..steps).map(|k| (k as f64, norm(&probe) * elman_sigma.powi(k as i32))).collect(),
        style: Style::Dashed,
    });
    write_chart(
        &out.join("gradient_norms.png"),
        LineChart {
            title: "BPTT: gradient reaching h_t from a loss at T".into(),
            x_label: "distance T - t (steps)".into(),
            y_label: "|dL/dh_t| (log scale)".into(),
            log_y: true,
            bands: Vec::new(),
            series,
        },
    )?;
    adding_look_back(seed, &out)
}

/// The three cells trained on the same long-range task, the adding problem at T = 50
/// (the marked values lie 0–4 and 25–49 steps before the last), and how far back each
/// trained model's answer reads.
fn adding_look_back(seed: u64, out: &std::path::Path) -> Result<(), String> {
    let (steps, hidden, updates) = (50, 32, 800);
    println!(
        "\ntrained on the adding problem (T = {steps}, H = {hidden}, {updates} updates; the first marked value lies \
         45-49 steps before the last, the second 0-24): gradient of the answer, root mean square over 256 sequences"
    );
    let cells = [CellKind::ElmanTanh, CellKind::Lstm, CellKind::GruResetAfter];
    let trained: Vec<_> = std::thread::scope(|scope| {
        let jobs: Vec<_> =
            cells.iter().map(|&cell| scope.spawn(move || train_adding(cell, steps, hidden, updates, seed))).collect();
        jobs.into_iter().map(|j| j.join().expect("adding-problem training thread")).collect()
    });
    let mut rng = Rng::new(seed ^ 0x100c);
    let (x, _) = adding_batch(steps, 256, &mut rng);
    let input = SequenceBatch { x: &x, steps, batch: 256, lengths: None };
    let mut series = Vec::new();
    for (name, result) in ["Elman (tanh)", "LSTM", "GRU"].into_iter().zip(trained) {
        let result = result.map_err(|e| e.to_string())?;
        let reach = look_back(&result.model, &input, seed).map_err(|e| e.to_string())?;
        let first_mark = (45..50).map(|k| reach.all_inputs(k)).sum::<f64>() / 5.0;
        println!(
            "{name:<13} test MSE {:.4} (the mean: 0.1667)   |dy/dx| 0 steps back: {:.2e}, 10: {:.2e}, 45-49: {first_mark:.2e}",
            result.test_mse,
            reach.all_inputs(0),
            reach.all_inputs(10),
        );
        series.push(Series {
            name: format!("{name} (test MSE {:.4})", result.test_mse),
            points: (0..steps).map(|k| (k as f64, reach.all_inputs(k))).collect(),
            style: Style::Line,
        });
    }
    write_chart(
        &out.join("adding_look_back.png"),
        LineChart {
            title: format!("The adding problem, T = {steps}: how far back each trained cell's answer reads"),
            x_label: "steps back from the last".into(),
            y_label: "|dy_T / dx_t| (log scale)".into(),
            log_y: true,
            bands: Vec::new(),
            series,
        },
    )?;
    Ok(())
}

/// Writes `chart` as an 800 × 450 PNG at `path` and says so.
fn write_chart(path: &std::path::Path, chart: LineChart) -> Result<(), String> {
    chart.save(path, 800, 450).map_err(|e| e.to_string())?;
    println!("wrote {}", path.display());
    Ok(())
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

pub fn compare(args: &Args) -> Result<(), String> {
    let known = ["input", "hidden", "batch", "steps", "threads"];
    let d = args.get("input", &known, 12usize)?;
    let h = args.get("hidden", &known, 64usize)?;
    let shape = BatchShape { batch: args.get("batch", &known, 32usize)?, steps: args.get("steps", &known, 60usize)? };
    let threads = args.get("threads", &known, 1usize)?;
    let make =
        |cell, bidirectional| RnnConfig { cell, input_size: d, hidden_size: h, bidirectional, ..RnnConfig::default() };
    let configs = vec![
        ("Elman".to_string(), make(CellKind::ElmanTanh, false)),
        ("LSTM".to_string(), make(CellKind::Lstm, false)),
        ("GRU".to_string(), make(CellKind::GruResetAfter, false)),
        ("BiLSTM".to_string(), make(CellKind::Lstm, true)),
        ("BiGRU".to_string(), make(CellKind::GruResetAfter, true)),
    ];
    println!(
        "D = {d}, H = {h}, B = {}, T = {}, {threads} thread(s); times are medians, each model timed alternately \
         with the LSTM",
        shape.batch, shape.steps
    );
    let rows = measure(&configs, 1, shape, threads, 0.5).map_err(|e| e.to_string())?;
    let lstm = rows[1].parameters as f64;
    println!("| model  | parameters | vs LSTM | train step (ms) | vs LSTM | inference (ms) | vs LSTM |");
    println!("|--------|-----------:|--------:|----------------:|--------:|---------------:|--------:|");
    for r in &rows {
        println!(
            "| {:<6} | {:>10} | {:>5.0} % | {:>15.2} | {:>6.2}x | {:>14.2} | {:>6.2}x |",
            r.name,
            r.parameters,
            100.0 * r.parameters as f64 / lstm,
            r.train_ms,
            r.train_vs_reference,
            r.inference_ms,
            r.inference_vs_reference
        );
    }
    let claims = slide_claims(&rows).map_err(|e| e.to_string())?;
    println!("\nthe lecture's comparison slide, measured here:");
    println!("| the slide says | measured | holds here |");
    println!("|---|---|---|");
    for SlideClaim { claim, measured, holds } in claims {
        println!("| {claim} | {measured} | {holds} |");
    }
    Ok(())
}

/// `recur diagnose gradients --run DIR`: how far back a trained causal prediction run's
/// forecast reads, on stretches of its test part (or of the files `--data` names).
fn diagnose_run(args: &Args) -> Result<(), String> {
    let known = ["run", "steps", "windows", "seed", "data"];
    let dir = PathBuf::from(args.get("run", &known, String::new())?);
    let (config, model, data) = open_run_on_data(&dir, None, args, &known)?;
    let (prediction, reconstruction) = (config.prediction(), config.reconstruction());
    // what the model answers, and the steps back training backpropagated through
    let (what, stream, window) = match config.task.kind {
        TaskKind::Prediction => ("forecast", prediction.stream, prediction.window - 1),
        TaskKind::Reconstruction => ("reconstruction", reconstruction.stream, reconstruction.window),
    };
    let (trained_reach, trained_on) = match stream {
        Some(s) => (s.k2, format!("on streams, backpropagating k2 = {} steps", s.k2)),
        None => (window, format!("on windows of {window} input steps")),
    };
    let longest = data.test.iter().map(|r| r.len()).max().unwrap_or(0);
    let steps = args.get("steps", &known, (4 * trained_reach).min(longest).max(2))?;
    let windows = args.get("windows", &known, 128usize)?;
    let seed = args.get("seed", &known, 1u64)?;
    let part = (if data.is_unseen() { "data" } else { "test" }, &data.test[..]);
    let reach = match config.task.kind {
        TaskKind::Prediction => PredictionTask::from_config(&data, &prediction)
            .and_then(|task| task.look_back(&model, part, steps, windows, seed)),
        TaskKind::Reconstruction => ReconstructionTask::new(&data, reconstruction)
            .and_then(|task| task.look_back(&model, part, steps, windows, seed)),
    }
    .map_err(|e| format!("{}: {e}", dir.display()))?;
    let signals = &data.grid.signals;
    let c = signals.len();
    let e = &model.config().encoder;
    println!(
        "{}: {} ({} layer(s), H = {}) trained {trained_on}; its {what}'s gradients over {} stretches of {steps} \
         steps of {} (root mean square over them; standardised units)",
        dir.display(),
        model_name(&model),
        e.num_layers,
        e.hidden_size,
        reach.sequences,
        if data.is_unseen() { "the data given" } else { "the test part" }
    );
    let signal_total = |j: usize| (0..steps).map(|k| reach.inputs[k * reach.input_size + j].powi(2)).sum::<f64>();
    let mut top: Vec<usize> = (0..c).collect();
    top.sort_by(|&a, &b| signal_total(b).total_cmp(&signal_total(a)));
    top.truncate(4);
    let mut header = vec!["steps back".to_string(), "state ‖∂ŷ/∂h‖".into(), "all inputs ‖∂ŷ/∂x‖".into()];
    header.extend(top.iter().map(|&j| recur::report::markdown_cell(&signals[j])));
    let mut rows: Vec<usize> =
        [0, 1, 2, 3, 6, 12, 24, 48, 96, 168, 336, 720].into_iter().filter(|&k| k < steps).collect();
    rows.extend([trained_reach, steps - 1].into_iter().filter(|&k| k < steps));
    rows.sort_unstable();
    rows.dedup();
    println!("| {} |", header.join(" | "));
    println!("|{}", header.iter().map(|_| "---:|").collect::<String>());
    let state_at = |k: usize| if k == 0 { "—".to_string() } else { format!("{:.2e}", reach.state[k - 1]) };
    for k in rows {
        let mut cells = vec![k.to_string(), state_at(k), format!("{:.2e}", reach.all_inputs(k))];
        cells.extend(top.iter().map(|&j| format!("{:.2e}", reach.inputs[k * reach.input_size + j])));
        println!("| {} |", cells.join(" | "));
    }
    let (fades, most) = (reach.fades_below(0.01), reach.steps_holding(0.99));
    let faded = if fades < steps {
        format!("stays below 1 % of its largest from {fades} steps back on")
    } else {
        format!("does not fade below 1 % of its largest within the {steps} steps measured (--steps)")
    };
    println!(
        "the {what}'s input gradient {faded}; 99 % of its square lies in the last {most} steps (trained {trained_on})"
    );
    if fades > trained_reach {
        println!("it reads further back than training backpropagated: a longer window (or k2) may help");
    }
    let mut series = vec![Series {
        name: "state h (every layer)".into(),
        points: reach.state.iter().enumerate().map(|(k, &v)| ((k + 1) as f64, v)).collect(),
        style: Style::Line,
    }];
    series.push(Series {
        name: "all inputs".into(),
        points: (0..steps).map(|k| (k as f64, reach.all_inputs(k))).collect(),
        style: Style::Line,
    });
    for &j in &top {
        series.push(Series {
            name: signals[j].clone(),
            points: (0..steps).map(|k| (k as f64, reach.inputs[k * reach.input_size + j])).collect(),
            style: Style::Line,
        });
    }
    let positive = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|&v| v > 0.0);
    let (low, high) = positive.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if trained_reach < steps && high > 0.0 {
        series.push(Series {
            name: format!("trained through {trained_reach} steps"),
            points: vec![(trained_reach as f64, low), (trained_reach as f64, high)],
            style: Style::Dashed,
        });
    }
    write_chart(
        &dir.join("look_back.png"),
        LineChart {
            title: format!("How far back the {what} reads: {}", model_name(&model)),
            x_label: format!("steps back from the {what}'s last input"),
            y_label: format!("|d {what} / d .| (log scale)"),
            log_y: true,
            bands: Vec::new(),
            series,
        },
    )?;
    Ok(())
}
