//! A text run interrupted after 2 of 4 epochs and resumed from its checkpoint ends
//! bit-identical to the uninterrupted run: weights, epoch log (but for wall time) and
//! test scores; so does the same run on one thread instead of two. On the bundled DBpedia slice (real data) with a small model, so that it
//! takes seconds; what it checks is the checkpoint, not a result.

use std::path::Path;

use recur::text::{run_text_task_in, LabeledCorpus, TextOutcome, TextRunOptions, TextTaskConfig};

fn small() -> TextTaskConfig {
    TextTaskConfig {
        max_tokens: 30,
        embedding_size: 16,
        hidden_size: 16,
        attention_size: 16,
        fc_size: 32,
        epochs: 4,
        patience: 10,
        warmup_steps: 10,
        baseline_iterations: 1,
        boosting_rounds: 0,
        ..TextTaskConfig::default()
    }
}

fn run(corpus: &LabeledCorpus, dir: &Path, resume: bool, stop_after: Option<usize>) -> TextOutcome {
    run_text_task_in(corpus, &small(), TextRunOptions { dir: Some(dir), resume, stop_after, skip_baselines: false })
        .unwrap()
}

#[test]
fn a_resumed_run_ends_bit_identical_to_an_uninterrupted_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/dbpedia/dbpedia-train-first5000.csv");
    let corpus = LabeledCorpus::read(&path).unwrap();
    let scratch = tempfile::Builder::new().prefix("recur-text-resume-").tempdir().unwrap();
    let (whole_dir, split_dir) = (scratch.path().join("whole"), scratch.path().join("split"));
    let mut whole = run(&corpus, &whole_dir, false, None);
    let first = run(&corpus, &split_dir, false, Some(2));
    assert_eq!(first.epochs.len(), 2);
    let mut resumed = run(&corpus, &split_dir, true, None);
    assert_eq!(resumed.epochs.len(), 4);
    let strip = |o: &TextOutcome| -> Vec<(usize, f64, f64, f64)> {
        o.epochs.iter().map(|e| (e.epoch, e.train_loss, e.validation_micro_f1, e.lr)).collect()
    };
    assert_eq!(strip(&resumed), strip(&whole));
    assert_eq!(resumed.best_epoch, whole.best_epoch);
    for ((name, a), (_, b)) in resumed.model.named_mut().into_iter().zip(whole.model.named_mut()) {
        assert!(a.data == b.data, "{name} differs after resuming");
    }
    assert_eq!(resumed.methods[0].overall, whole.methods[0].overall);
    // One thread runs the batches' two shards one after the other: the same bits.
    let one_thread_config = TextTaskConfig { threads: 1, ..small() };
    let mut one_thread = run_text_task_in(&corpus, &one_thread_config, TextRunOptions::default()).unwrap();
    assert_eq!(strip(&one_thread), strip(&whole));
    for ((name, a), (_, b)) in one_thread.model.named_mut().into_iter().zip(whole.model.named_mut()) {
        assert!(a.data == b.data, "{name} differs on one thread");
    }
    // Two identical runs tabled as two seeds: a standard deviation of zero.
    let micro = whole.methods[0].overall.micro_f1;
    let table = recur::text::seed_table(&[(0, whole), (1, resumed)]);
    assert!(table.contains(&format!("{micro:.4} ± 0.0000")) && table.contains("| majority class"), "{table}");
    // A checkpoint of another configuration is refused, naming the file.
    let other = TextTaskConfig { lr: 0.001, ..small() };
    let err = run_text_task_in(
        &corpus,
        &other,
        TextRunOptions { dir: Some(&split_dir), resume: true, ..TextRunOptions::default() },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("checkpoint.safetensors") && err.contains("another text configuration"), "{err}");
}
