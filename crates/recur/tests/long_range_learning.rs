//! The lecture's point, as a learning test: on the adding problem (Hochreiter &
//! Schmidhuber 1997; synthetic by construction) with T = 50, LSTM and GRU learn to add
//! the two marked values across the lag, while an Elman network stays at the
//! mean-predictor's error (1/6).

use recur::rnn::CellKind;
use recur::tasks::adding::train_adding;

#[test]
fn lstm_and_gru_solve_a_lag_at_which_elman_fails() {
    let results: Vec<_> = [CellKind::ElmanTanh, CellKind::Lstm, CellKind::GruResetAfter]
        .iter()
        .map(|&c| train_adding(c, 50, 32, 800, 1).unwrap())
        .collect();
    for r in &results {
        println!("adding problem, T = {}: {:?} test MSE {:.4} (mean predictor: 0.1667)", r.steps, r.cell, r.test_mse);
    }
    assert!(results[0].test_mse > 0.12, "Elman should fail at T = 50: {}", results[0].test_mse);
    assert!(results[1].test_mse < 0.02, "LSTM should solve T = 50: {}", results[1].test_mse);
    assert!(results[2].test_mse < 0.02, "GRU should solve T = 50: {}", results[2].test_mse);
}
