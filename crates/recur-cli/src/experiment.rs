//! `recur experiment`: run a grid of configurations over seeds and tabulate it.

use std::path::{Path, PathBuf};

use recur::experiments::{collect_results, run_grid, write_table, GridConfig};

use crate::args::Args;

pub fn experiment(args: &Args) -> Result<(), String> {
    if args.positional.get(1).map(String::as_str) == Some("merge") {
        return merge(args);
    }
    let known = ["config", "out", "quick", "shard"];
    let path = PathBuf::from(args.get("config", &known, String::new())?);
    if path.as_os_str().is_empty() {
        return Err("usage: recur experiment --config GRID.toml [--out DIR] [--quick true] [--shard i/n]\n       recur experiment merge DIR... (--out is the table's folder)".into());
    }
    let mut grid = GridConfig::load(&path).map_err(|e| e.to_string())?;
    if args.get("quick", &known, false)? {
        grid = grid.quick();
    }
    let shard_text = args.get("shard", &known, "0/1".to_string())?;
    let shard = shard_text
        .split_once('/')
        .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)))
        .filter(|&(i, n)| n > 0 && i < n)
        .ok_or_else(|| format!("--shard {shard_text}: expected i/n with 0 <= i < n"))?;
    let out = PathBuf::from(args.get("out", &known, "runs/experiments".to_string())?);
    let started = std::time::Instant::now();
    let base = path.parent().unwrap_or(Path::new("."));
    run_grid(&grid, &path, &out, shard, base).map_err(|e| e.to_string())?;
    let dir = out.join(&grid.name);
    let results = collect_results(std::slice::from_ref(&dir)).map_err(|e| e.to_string())?;
    let title = match &grid.signal {
        Some(signal) => format!("{}: {signal} alone", grid.name),
        None => grid.name.clone(),
    };
    let md = write_table(&dir, &title, &results, &grid.lecture).map_err(|e| e.to_string())?;
    println!("\n{md}");
    let ahead = if grid.horizon.is_some() { ", results_ahead.png" } else { "" };
    println!(
        "wrote {}/table.md, table.csv, results.png{ahead} in {:.0} s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn merge(args: &Args) -> Result<(), String> {
    let known = ["out", "config"];
    let dirs: Vec<PathBuf> = args.positional[2..].iter().map(PathBuf::from).collect();
    if dirs.is_empty() {
        return Err("usage: recur experiment merge DIR... [--out DIR] [--config GRID.toml]".into());
    }
    let out = PathBuf::from(args.get("out", &known, dirs[0].display().to_string())?);
    let config = args.get("config", &known, String::new())?;
    let lecture = if config.is_empty() {
        Default::default()
    } else {
        GridConfig::load(Path::new(&config)).map_err(|e| e.to_string())?.lecture
    };
    let results = collect_results(&dirs).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let title = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let md = write_table(&out, &title, &results, &lecture).map_err(|e| e.to_string())?;
    println!("{md}\nmerged {} runs into {}", results.len(), out.display());
    Ok(())
}
