//! `recur text`: hierarchical multi-label classification of the bundled DBpedia slice
//! (or any `text,l1,l2,…` file) with HARNN, against TF-IDF + logistic regression and the
//! majority class.

use std::path::{Path, PathBuf};
use std::time::Instant;

use recur::text::{run_text_task, text_score_table, write_text_run, LabeledCorpus, TextTaskConfig};

use crate::args::Args;
use crate::demo::bundled;

pub const DEFAULT_DATA: &str = "data/dbpedia/dbpedia-train-first5000.csv";

pub fn text(args: &Args) -> Result<(), String> {
    let known = ["data", "config", "epochs", "max-tokens", "threads", "seed", "out"];
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
    let mut outcome = run_text_task(&corpus, &config).map_err(|e| e.to_string())?;
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
    write_text_run(&out, &config, &mut outcome).map_err(|e| e.to_string())?;
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
