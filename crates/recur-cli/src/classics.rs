//! `recur hopfield`, `recur diagnose gradients`, `recur compare`: the lecture's classics, measured.

use std::path::PathBuf;

use recur::classic::compare::{compare as measure, BatchShape};
use recur::classic::gradients::{spectral_norm, state_gradient_norms};
use recur::classic::hopfield::capacity_experiment;
use recur::plot::{LineChart, Series, Style};
use recur::rnn::{CellKind, Rnn, RnnConfig};
use recur::Rng;

use crate::args::Args;

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
    }
    .save(&out.join("capacity.png"), 800, 450)
    .map_err(|e| e.to_string())?;
    println!("wrote {}", out.join("capacity.png").display());
    Ok(())
}

pub fn diagnose(args: &Args) -> Result<(), String> {
    if args.positional.get(1).map(String::as_str) != Some("gradients") {
        return Err("usage: recur diagnose gradients [--steps T] [--hidden H] [--seed S] [--out DIR]".into());
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
    LineChart {
        title: "BPTT: gradient reaching h_t from a loss at T".into(),
        x_label: "distance T - t (steps)".into(),
        y_label: "|dL/dh_t| (log scale)".into(),
        log_y: true,
        bands: Vec::new(),
        series,
    }
    .save(&out.join("gradient_norms.png"), 800, 450)
    .map_err(|e| e.to_string())?;
    println!("wrote {}", out.join("gradient_norms.png").display());
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
    println!("D = {d}, H = {h}, B = {}, T = {}, {threads} thread(s); times are medians", shape.batch, shape.steps);
    let rows = measure(&configs, shape, threads, 0.3).map_err(|e| e.to_string())?;
    let lstm = rows[1].parameters as f64;
    println!("| model  | parameters | vs LSTM | train step (ms) | inference (ms) |");
    println!("|--------|-----------:|--------:|----------------:|---------------:|");
    for r in &rows {
        println!(
            "| {:<6} | {:>10} | {:>6.0} % | {:>15.2} | {:>14.2} |",
            r.name,
            r.parameters,
            100.0 * r.parameters as f64 / lstm,
            r.train_ms,
            r.inference_ms
        );
    }
    Ok(())
}
