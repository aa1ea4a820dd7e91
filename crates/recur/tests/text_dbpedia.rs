//! HARNN on real data: the bundled DBpedia slice (`data/dbpedia`, the first 5,000 rows
//! of the Kaggle "DBpedia Classes" training file), the default `recur text`
//! configuration, seed 0. Trained here, scored on 1,000 held-out documents.
//!
//! Measured on the 2-core AVX2 machine, default configuration (25 epochs, each batch in two
//! shards): HARNN micro-F1 0.842 / 0.840 / 0.826 for seeds 0 / 1 / 2, macro-F1 0.631 / 0.638
//! / 0.614, subset accuracy 0.712 / 0.714 / 0.698; TF-IDF + logistic regression 0.781,
//! 0.591, 0.577; TF-IDF + boosted trees 0.797, 0.560, 0.605. The bounds below leave room
//! for another CPU's matrix-product rounding (the training trajectory differs in its
//! last bits).

use std::path::Path;

use recur::text::{run_text_task, LabeledCorpus, TextTaskConfig};

#[test]
fn harnn_classifies_dbpedia_better_than_both_tf_idf_baselines_and_far_above_the_majority() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/dbpedia/dbpedia-train-first5000.csv");
    let corpus = LabeledCorpus::read(&path).unwrap();
    assert_eq!(corpus.documents.len(), 5000);
    assert_eq!(corpus.hierarchy.sizes(), vec![9, 70, 219]);
    let outcome = run_text_task(&corpus, &TextTaskConfig::default()).unwrap();
    assert_eq!(outcome.sizes, [3500, 500, 1000]);
    let by_name = |name: &str| outcome.methods.iter().find(|m| m.method.starts_with(name)).unwrap();
    let (harnn, tfidf, trees, majority) =
        (by_name("HARNN"), by_name("TF-IDF + logistic"), by_name("TF-IDF + boosted"), by_name("majority"));
    for m in &outcome.methods {
        let levels: Vec<String> = m.levels.iter().map(|l| format!("{:.4}", l.micro_f1)).collect();
        println!(
            "{:<30} levels {:?} micro-F1 {:.4} macro-F1 {:.4} subset {:.4}",
            m.method, levels, m.overall.micro_f1, m.overall.macro_f1, m.overall.subset_accuracy
        );
    }
    // The majority class: one path for every document, exactly as counted.
    assert!((majority.overall.micro_f1 - 0.2053).abs() < 5e-4, "{}", majority.overall.micro_f1);
    assert_eq!(majority.overall.subset_accuracy, 0.0);
    assert!((0.76..0.80).contains(&tfidf.overall.micro_f1), "TF-IDF + LR micro-F1 {}", tfidf.overall.micro_f1);
    assert!(harnn.overall.micro_f1 >= 0.80, "HARNN micro-F1 {}", harnn.overall.micro_f1);
    assert!((0.76..0.82).contains(&trees.overall.micro_f1), "boosted trees micro-F1 {}", trees.overall.micro_f1);
    for baseline in [tfidf, trees] {
        assert!(harnn.overall.micro_f1 > baseline.overall.micro_f1 + 0.01, "{} is as good", baseline.method);
    }
    assert!(harnn.levels[0].micro_f1 >= 0.90, "level-1 micro-F1 {}", harnn.levels[0].micro_f1);
    assert!(
        harnn.overall.subset_accuracy > tfidf.overall.subset_accuracy,
        "HARNN gets the whole path right less often than TF-IDF: {} vs {}",
        harnn.overall.subset_accuracy,
        tfidf.overall.subset_accuracy
    );
    // The saved model reads back and classifies as the trained one.
    let scratch = tempfile::Builder::new().prefix("recur-text-run-").tempdir().unwrap();
    let dir = scratch.path();
    let classifier = outcome.classifier(&TextTaskConfig::default());
    classifier.save(dir).unwrap();
    let loaded = recur::text::TextClassifier::load(dir).unwrap();
    let texts: Vec<&str> = corpus.documents[..64].iter().map(|d| d.text.as_str()).collect();
    assert_eq!(loaded.scores(&texts).unwrap(), classifier.scores(&texts).unwrap());
    assert!(outcome.best_epoch >= 8, "the validation score kept improving: best epoch {}", outcome.best_epoch);
}
