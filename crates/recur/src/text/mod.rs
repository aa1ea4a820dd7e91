//! Text: hierarchical multi-label classification (SPEC §7, the deck's "Caso de Uso em
//! PLN"). A labelled corpus and its class tree ([`corpus`]), words and a vocabulary
//! built from the training text ([`vocab`]), the HARNN model with its loss and decision
//! rule ([`harnn`]), multi-label metrics ([`metrics`]), the TF-IDF + logistic-regression
//! and boosted-trees baselines ([`baseline`]), a trained model as a classifier of new
//! text ([`classify`]), and the whole task, trained and scored ([`task`]).

pub mod baseline;
pub mod classify;
pub mod corpus;
pub mod harnn;
pub mod metrics;
pub mod task;
pub mod vocab;

pub use classify::{Classification, TextClassifier};
pub use corpus::{read_texts, split_indices, Document, Hierarchy, LabeledCorpus};
pub use harnn::{
    decide, harnn_loss, harnn_loss_in_batch, Harnn, HarnnConfig, HarnnLoss, HarnnOutput, PaddedTokens, TokenBatch,
};
pub use metrics::{multilabel_scores, LabelScores};
pub use task::{
    run_text_task, run_text_task_in, seed_table, text_score_table, write_text_run, MethodScores, TextEpoch,
    TextOutcome, TextRunOptions, TextTaskConfig,
};
pub use vocab::{tokenize, Vocabulary};
