//! Multi-label classification scores over multi-hot rows: micro and macro precision,
//! recall and F1, and subset accuracy (a row counts only if every class is right).

use std::ops::Range;

use serde::Serialize;

/// Scores of one set of classes (a level, or all of them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LabelScores {
    /// `TP / (TP + FP)` pooled over classes and rows.
    pub micro_precision: f64,
    pub micro_recall: f64,
    pub micro_f1: f64,
    /// The mean over classes of each class's precision (recall, F1), over the classes
    /// that occur in the truth or the predictions (scikit-learn's set when it is given
    /// labels rather than an indicator matrix); an undefined ratio counts 0.
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub macro_f1: f64,
    /// Rows whose classes in the set are all right.
    pub subset_accuracy: f64,
    /// Classes in the macro average.
    pub classes: usize,
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

/// Scores of the classes `columns` of `predicted` against `truth`, both multi-hot rows
/// of `width` values.
///
/// # Panics
/// If the two differ in length, or `columns` reaches past `width`.
pub fn multilabel_scores(predicted: &[bool], truth: &[bool], width: usize, columns: Range<usize>) -> LabelScores {
    assert_eq!(predicted.len(), truth.len(), "predictions and truth differ in length");
    assert!(columns.end <= width, "columns {columns:?} outside rows of {width}");
    let k = columns.len();
    let (mut tp, mut fp, mut fneg) = (vec![0u64; k], vec![0u64; k], vec![0u64; k]);
    let mut exact = 0u64;
    let rows = predicted.len() / width.max(1);
    for row in 0..rows {
        let p = &predicted[row * width + columns.start..row * width + columns.end];
        let t = &truth[row * width + columns.start..row * width + columns.end];
        let mut all_right = true;
        for (j, (&p, &t)) in p.iter().zip(t).enumerate() {
            tp[j] += u64::from(p && t);
            fp[j] += u64::from(p && !t);
            fneg[j] += u64::from(!p && t);
            all_right &= p == t;
        }
        exact += u64::from(all_right);
    }
    let (tp_all, fp_all, fn_all) = (tp.iter().sum::<u64>(), fp.iter().sum::<u64>(), fneg.iter().sum::<u64>());
    let micro_precision = ratio(tp_all, tp_all + fp_all);
    let micro_recall = ratio(tp_all, tp_all + fn_all);
    let (mut mp, mut mr, mut mf, mut classes) = (0.0, 0.0, 0.0, 0usize);
    for j in 0..k {
        if tp[j] + fp[j] + fneg[j] == 0 {
            continue;
        }
        let (p, r) = (ratio(tp[j], tp[j] + fp[j]), ratio(tp[j], tp[j] + fneg[j]));
        mp += p;
        mr += r;
        mf += f1(p, r);
        classes += 1;
    }
    let n = classes.max(1) as f64;
    LabelScores {
        micro_precision,
        micro_recall,
        micro_f1: f1(micro_precision, micro_recall),
        macro_precision: mp / n,
        macro_recall: mr / n,
        macro_f1: mf / n,
        subset_accuracy: ratio(exact, rows as u64),
        classes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_a_hand_count() {
        // Three rows of four classes. Class 0: TP 2, FP 0, FN 0; class 1: TP 0, FP 1,
        // FN 1; class 2: TP 1, FP 0, FN 0; class 3 never occurs (left out of the macro).
        let truth = [true, false, true, false, true, true, false, false, false, false, false, false];
        let predicted = [true, true, true, false, true, false, false, false, false, false, false, false];
        let s = multilabel_scores(&predicted, &truth, 4, 0..4);
        assert_eq!(s.classes, 3);
        assert!((s.micro_precision - 3.0 / 4.0).abs() < 1e-12);
        assert!((s.micro_recall - 3.0 / 4.0).abs() < 1e-12);
        assert!((s.micro_f1 - 0.75).abs() < 1e-12);
        assert!((s.macro_precision - (1.0 + 0.0 + 1.0) / 3.0).abs() < 1e-12);
        assert!((s.macro_f1 - 2.0 / 3.0).abs() < 1e-12);
        // Row 0 has a false positive, row 1 a false negative, row 2 is right.
        assert!((s.subset_accuracy - 1.0 / 3.0).abs() < 1e-12);
        let first_two = multilabel_scores(&predicted, &truth, 4, 2..4);
        assert_eq!((first_two.micro_f1, first_two.subset_accuracy), (1.0, 1.0));
    }
}
