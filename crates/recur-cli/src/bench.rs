//! `recur bench`: the fused kernels' benchmark on this machine, as tables read against
//! the sgemm peak measured in the same run (`recur::benchmark`; `bench/compare.py` puts
//! the same rows beside PyTorch's).

use recur::benchmark::{plan, run_job, tables};
use recur::train::progress_bar;

use crate::args::Args;

pub fn bench(args: &Args) -> Result<(), String> {
    let known = ["only", "quick", "out"];
    let only: String = args.get("only", &known, String::new())?;
    let quick = args.get("quick", &known, false)?;
    let out: String = args.get("out", &known, String::new())?;
    let words: Vec<String> =
        only.split([',', ' ']).map(str::trim).filter(|w| !w.is_empty()).map(str::to_string).collect();
    let jobs = plan(&words).map_err(|e| format!("--{e}"))?;
    let budget = if quick { 0.15 } else { 0.5 };
    let bar = progress_bar(jobs.len() as u64, "bench");
    let mut rows = Vec::new();
    for job in &jobs {
        rows.extend(run_job(job, budget).map_err(|e| e.to_string())?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    print!("{}", tables(&rows));
    if !out.is_empty() {
        let lines = recur::train::json_lines(&rows);
        recur::io::write_atomically(std::path::Path::new(&out), lines.as_bytes()).map_err(|e| e.to_string())?;
        println!("wrote {out}: one JSON line per row");
    }
    Ok(())
}
