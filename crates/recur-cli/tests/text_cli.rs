//! `recur text predict` end to end on a saved run folder. The model is an untrained
//! (random) HARNN over a made-up vocabulary and class tree: this checks the command's
//! reading, output format and errors, not a classification result (`text_dbpedia.rs`
//! trains on real data).

use std::process::Command;

use recur::text::{Harnn, HarnnConfig, TextClassifier, Vocabulary};

fn recur(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_recur")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A saved classifier in a scratch folder, removed when dropped.
fn run_folder() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("recur-text-cli-").tempdir().unwrap();
    let vocabulary = Vocabulary::build(["river lake mountain", "player team goal"], 1, 10);
    let config = HarnnConfig {
        vocab_size: vocabulary.len(),
        embedding_size: 4,
        hidden_size: 3,
        attention_size: 4,
        fc_size: 5,
        levels: vec![2, 3],
        beta: 0.5,
        input_dropout: 0.0,
        state_dropout: 0.0,
    };
    TextClassifier {
        model: Harnn::new(config, 1).unwrap(),
        vocabulary,
        level_names: vec!["l1".into(), "l2".into()],
        classes: vec![vec!["Agent".into(), "Place".into()], vec!["Athlete".into(), "Lake".into(), "River, big".into()]],
        max_tokens: 8,
        threshold: 0.5,
    }
    .save(dir.path())
    .unwrap();
    dir
}

#[test]
fn predict_writes_the_classes_of_every_row_and_names_a_missing_column() {
    let scratch = run_folder();
    let dir = scratch.path();
    let input = dir.join("docs.csv");
    std::fs::write(&input, "id,text\n1,\"A lake, and a river.\"\n2,the team scored a goal\n\n3,\n").unwrap();
    let (ok, out, err) =
        recur(&["text", "predict", "--run", dir.to_str().unwrap(), "--input", input.to_str().unwrap()]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "line,l1,l1_score,l2,l2_score");
    assert_eq!(lines.len(), 4, "{out}");
    for (line, place) in lines[1..].iter().zip(["2", "3", "5"]) {
        let fields = recur::data::csv_fields(line);
        assert_eq!(fields.len(), 5, "{line}");
        assert_eq!(fields[0], place);
        assert!(["Agent", "Place"].iter().any(|c| fields[1].split('|').any(|f| f == *c)), "{line}");
        let scores: Vec<f64> = fields[2].split('|').map(|s| s.parse().unwrap()).collect();
        assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)), "{line}");
    }
    let (ok, out, err) = recur(&[
        "text",
        "predict",
        "--run",
        dir.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--explain",
        "2",
    ]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "line,l1,l1_score,l2,l2_score,l1_words,l2_words");
    let fields = recur::data::csv_fields(lines[1]);
    for words in &fields[5..] {
        let listed: Vec<&str> = words.split('|').collect();
        assert_eq!(listed.len(), 2, "{words}");
        assert!(
            listed.iter().all(|w| ["a", "lake", "and", "river"].contains(&w.split(':').next().unwrap())),
            "{words}"
        );
    }
    std::fs::write(&input, "body\nsome words\n").unwrap();
    let (ok, _, err) = recur(&["text", "predict", "--run", dir.to_str().unwrap(), "--input", input.to_str().unwrap()]);
    assert!(!ok && err.contains("docs.csv") && err.contains("no `text` column"), "{err}");
    let (ok, _, err) = recur(&["text", "predict", "--run", "/nonexistent", "--input", input.to_str().unwrap()]);
    assert!(!ok && err.contains("/nonexistent/model.safetensors"), "{err}");
}
