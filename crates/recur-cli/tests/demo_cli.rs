//! `recur demo` on the bundled Beijing station (real data), one epoch per run: its five runs
//! trained three at a time print the same reports, in the same order, and write the same
//! models to the bit as when trained one after another.

use std::path::Path;
use std::process::Command;

const RUNS: [&str; 5] = ["prediction", "prediction-streams", "prediction-twin", "prediction-day", "reconstruction"];

/// The demo's stdout for `threads`, its output folder written as `OUT`.
fn demo(threads: usize, out: &Path) -> String {
    let threads = threads.to_string();
    let run = Command::new(env!("CARGO_BIN_EXE_recur"))
        .args(["demo", "--epochs", "1", "--threads", &threads, "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    String::from_utf8_lossy(&run.stdout).replace(out.to_str().unwrap(), "OUT")
}

#[test]
fn the_runs_side_by_side_report_and_train_what_they_do_one_after_another() {
    let scratch = tempfile::Builder::new().prefix("recur-demo-").tempdir().unwrap();
    let (alone, side_by_side) = (scratch.path().join("alone"), scratch.path().join("side-by-side"));
    let (printed_alone, printed_side_by_side) = (demo(1, &alone), demo(3, &side_by_side));
    assert!(printed_alone.starts_with("5 runs, 1 at a time on 1 thread(s) each"), "{printed_alone}");
    assert!(printed_side_by_side.starts_with("5 runs, 3 at a time on 1 thread(s) each"), "{printed_side_by_side}");
    // everything after the first line, up to the closing time
    let body = |text: &str| -> String {
        let end = text.rfind("\ndone in ").expect("closing line");
        text[text.find('\n').unwrap()..end].to_string()
    };
    assert_eq!(body(&printed_alone), body(&printed_side_by_side));
    let headers: Vec<usize> =
        RUNS.iter().map(|run| printed_side_by_side.find(&format!("== {run} (")).expect("a report per run")).collect();
    assert!(headers.windows(2).all(|w| w[0] < w[1]), "reports in the demo's order: {headers:?}");
    assert!(printed_side_by_side.contains("== a day ahead"), "{printed_side_by_side}");
    // the day-ahead run's flags as alarm episodes, as `recur detect` writes them
    assert!(printed_side_by_side.contains(" alarm episodes (a signal's flags at most 3 hours apart: one), in OUT/"));
    let day = side_by_side.join("prediction-day");
    let episodes = std::fs::read_to_string(day.join("episodes.csv")).unwrap();
    assert!(episodes.starts_with("entity,signal,start,end,steps,flagged,model,flatline,peak_time,peak\n"));
    assert!(std::fs::read(day.join("episodes.png")).unwrap().starts_with(b"\x89PNG"));
    for run in RUNS {
        let model = |dir: &Path| std::fs::read(dir.join(run).join("model.safetensors")).unwrap();
        assert!(model(&alone) == model(&side_by_side), "{run}: the models differ");
    }
}
