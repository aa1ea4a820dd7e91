//! `recur text`: hierarchical multi-label classification of the bundled DBpedia slice
//! (or any `text,l1,l2,…` file) with HARNN, against TF-IDF + logistic regression and the
//! majority class.

use std::path::{Path, PathBuf};
use std::time::Instant;

use recur::data::csv_quoted;
use recur::text::{
    read_texts, run_text_task_in, seed_table, text_score_table, write_text_run, LabeledCorpus, TextClassifier,
    TextRunOptions, TextTaskConfig,
};

use crate::args::Args;
use crate::run_folder::bundled;

pub const DEFAULT_DATA: &str = "data/dbpedia/dbpedia-train-first5000.csv";

pub fn text(args: &Args) -> Result<(), String> {
    if args.positional.get(1).map(String::as_str) == Some("predict") {
        return predict(args);
    }
    let known = ["data", "config", "epochs", "max-tokens", "threads", "seed", "seeds", "out", "resume"];
    let config_path: String = args.get("config", &known, String::new())?;
    let mut config = if config_path.is_empty() {
        TextTaskConfig::default()
    } else {
        recur::run::load_toml(Path::new(&config_path)).map_err(|e| e.to_string())?
    };
    config.epochs = args.get("epochs", &known, config.epochs)?;
    config.max_tokens = args.get("max-tokens", &known, config.max_tokens)?;
    config.threads = args.get("threads", &known, config.threads)?;
    config.seed = args.get("seed", &known, config.seed)?;
    let data = PathBuf::from(args.get("data", &known, bundled(DEFAULT_DATA).display().to_string())?);
    let out = PathBuf::from(args.get("out", &known, "runs/text".to_string())?);
    let resume = args.get("resume", &known, false)?;
    let seeds: u64 = args.get("seeds", &known, 1)?;
    let started = Instant::now();
    let corpus = LabeledCorpus::read(&data).map_err(|e| e.to_string())?;
    let h = &corpus.hierarchy;
    let levels: Vec<String> = h.level_names.iter().zip(h.sizes()).map(|(name, n)| format!("{name} {n}")).collect();
    println!("{}: {} documents; classes per level: {}", display(&data), corpus.documents.len(), levels.join(" / "));
    println!(
        "HARNN: BiLSTM H={} over the first {} words (embeddings {}), attention {}, CPM/HPL width {}; β = {}, \
         hierarchy penalty λ = {}; up to {} epochs",
        config.hidden_size,
        config.max_tokens,
        config.embedding_size,
        config.attention_size,
        config.fc_size,
        config.beta,
        config.hierarchy_penalty,
        config.epochs
    );
    if seeds > 1 {
        // One run folder per seed; the baselines (seed-independent) with the first.
        let mut runs = Vec::new();
        for seed in config.seed..config.seed + seeds {
            let dir = out.join(format!("seed-{seed}"));
            let config = TextTaskConfig { seed, ..config.clone() };
            let options =
                TextRunOptions { dir: Some(&dir), resume, stop_after: None, skip_baselines: !runs.is_empty() };
            let outcome = run_text_task_in(&corpus, &config, options).map_err(|e| e.to_string())?;
            write_text_run(&dir, &config, &outcome).map_err(|e| e.to_string())?;
            let m = &outcome.methods[0].overall;
            println!(
                "seed {seed}: HARNN micro-F1 {:.4}, macro-F1 {:.4}, subset accuracy {:.4} (best epoch {}; {})",
                m.micro_f1,
                m.macro_f1,
                m.subset_accuracy,
                outcome.best_epoch,
                dir.display()
            );
            runs.push((seed, outcome));
        }
        let table = seed_table(&runs);
        print!("{table}");
        recur::io::write_atomically(&out.join("seeds.md"), table.as_bytes()).map_err(|e| e.to_string())?;
        println!("wrote {}", out.join("seeds.md").display());
        println!("done in {:.1} s", started.elapsed().as_secs_f64());
        return Ok(());
    }
    let options = TextRunOptions { dir: Some(&out), resume, ..TextRunOptions::default() };
    let outcome = run_text_task_in(&corpus, &config, options).map_err(|e| e.to_string())?;
    println!(
        "split {} / {} / {} documents (train / validation / test, seed {}); vocabulary {} words; {} parameters; best epoch {}",
        outcome.sizes[0],
        outcome.sizes[1],
        outcome.sizes[2],
        config.split_seed,
        outcome.vocabulary.len(),
        outcome.model.num_parameters(),
        outcome.best_epoch
    );
    print!("{}", text_score_table(&outcome));
    println!(
        "HARNN decisions: threshold {} with an arg-max fallback per level; {} of {} test documents break the class tree",
        config.threshold, outcome.hierarchy_violations, outcome.sizes[2]
    );
    write_text_run(&out, &config, &outcome).map_err(|e| e.to_string())?;
    println!("wrote {} (metrics.json, epochs.jsonl, model.safetensors, vocabulary.txt, scores.png, loss.png, validation.png)", out.display());
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn display(path: &Path) -> String {
    std::fs::canonicalize(path)
        .ok()
        .and_then(|p| std::env::current_dir().ok().and_then(|d| p.strip_prefix(d).ok().map(Path::to_path_buf)))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// `recur text predict --run DIR --input FILE [--out FILE.csv]`: the classes of every
/// document in the input's `text` column, as CSV (stdout without `--out`): the input's
/// line, then per level the chosen classes and their scores (several joined by `|`),
/// and with `--explain K` the K words each level attended to most, with their weights.
fn predict(args: &Args) -> Result<(), String> {
    let known = ["run", "input", "out", "explain"];
    let run: String = args.get("run", &known, String::new())?;
    let input: String = args.get("input", &known, String::new())?;
    if run.is_empty() || input.is_empty() {
        return Err(
            "text predict needs --run DIR (a `recur text` run folder) and --input FILE (a `text` column)".into()
        );
    }
    let out: String = args.get("out", &known, String::new())?;
    let explain: usize = args.get("explain", &known, 0)?;
    let classifier = TextClassifier::load(Path::new(&run)).map_err(|e| e.to_string())?;
    let rows = read_texts(Path::new(&input)).map_err(|e| e.to_string())?;
    let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
    let classes = classifier.classify(&texts).map_err(|e| e.to_string())?;
    let mut csv = String::from("line");
    for name in &classifier.level_names {
        csv.push_str(&format!(",{name},{name}_score"));
    }
    if explain > 0 {
        for name in &classifier.level_names {
            csv.push_str(&format!(",{name}_words"));
        }
    }
    csv.push('\n');
    for ((place, text), levels) in rows.iter().zip(&classes) {
        csv.push_str(&place.to_string());
        for picked in levels {
            let names: Vec<&str> = picked.iter().map(|(c, _)| c.as_str()).collect();
            let scores: Vec<String> = picked.iter().map(|(_, s)| format!("{s:.4}")).collect();
            csv.push_str(&format!(",{},{}", csv_quoted(&names.join("|")), scores.join("|")));
        }
        if explain > 0 {
            for words in classifier.attended_words(text, explain).map_err(|e| e.to_string())? {
                let listed: Vec<String> = words.iter().map(|(w, a)| format!("{w}:{a:.3}")).collect();
                csv.push_str(&format!(",{}", csv_quoted(&listed.join("|"))));
            }
        }
        csv.push('\n');
    }
    if out.is_empty() {
        print!("{csv}");
    } else {
        recur::io::write_atomically(Path::new(&out), csv.as_bytes()).map_err(|e| e.to_string())?;
        eprintln!("wrote {} documents' classes to {out}", rows.len());
    }
    Ok(())
}
