//! Learning-rate schedules: linear warm-up, then cosine decay, step decay, or
//! reduce-on-plateau (driven by the validation score between epochs).

use serde::{Deserialize, Serialize};

/// What follows the warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum ScheduleKind {
    /// base·(floor + (1 − floor)·½(1 + cos(π·progress))).
    Cosine {
        floor: f64,
    },
    /// base·gammaᵏ after k·`every_epochs` epochs.
    Step {
        every_epochs: usize,
        gamma: f64,
    },
    /// base·factorᵏ, k = times the validation score failed to improve for `patience` epochs.
    Plateau {
        patience: usize,
        factor: f64,
    },
    Constant,
}

impl Default for ScheduleKind {
    fn default() -> Self {
        ScheduleKind::Cosine { floor: 0.05 }
    }
}

/// lr(step) = base · step/warmup during warm-up, then `kind`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub base: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
    pub kind: ScheduleKind,
}

/// Reduce-on-plateau bookkeeping, carried in the training state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlateauState {
    pub scale: f64,
    pub best: Option<f64>,
    pub wait: usize,
}

impl PlateauState {
    pub fn new() -> Self {
        PlateauState { scale: 1.0, best: None, wait: 0 }
    }

    /// Updates after an epoch's validation score.
    pub fn observe(&mut self, kind: ScheduleKind, score: f64) {
        if let ScheduleKind::Plateau { patience, factor } = kind {
            if self.best.is_none_or(|b| score < b) {
                self.best = Some(score);
                self.wait = 0;
            } else {
                self.wait += 1;
                if self.wait >= patience {
                    self.scale *= factor;
                    self.wait = 0;
                }
            }
        }
    }
}

impl Schedule {
    /// The rate at optimizer step `step` (0-based) during epoch `epoch` (1-based).
    pub fn lr(&self, step: usize, epoch: usize, plateau: &PlateauState) -> f64 {
        if step < self.warmup_steps {
            return self.base * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.kind {
            ScheduleKind::Cosine { floor } => {
                let span = (self.total_steps.saturating_sub(self.warmup_steps)).max(1) as f64;
                let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
                self.base * (floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()))
            }
            ScheduleKind::Step { every_epochs, gamma } => {
                self.base * gamma.powi(((epoch - 1) / every_epochs.max(1)) as i32)
            }
            ScheduleKind::Plateau { .. } => self.base * plateau.scale,
            ScheduleKind::Constant => self.base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_each_kind() {
        let s = |kind| Schedule { base: 1.0, warmup_steps: 10, total_steps: 110, kind };
        let p = PlateauState::new();
        let cos = s(ScheduleKind::Cosine { floor: 0.1 });
        assert_eq!(cos.lr(0, 1, &p), 0.1);
        assert_eq!(cos.lr(9, 1, &p), 1.0);
        assert!((cos.lr(60, 1, &p) - 0.55).abs() < 1e-12);
        assert!((cos.lr(110, 1, &p) - 0.1).abs() < 1e-12);
        let step = s(ScheduleKind::Step { every_epochs: 2, gamma: 0.5 });
        assert_eq!((step.lr(20, 2, &p), step.lr(20, 3, &p), step.lr(20, 5, &p)), (1.0, 0.5, 0.25));
        let kind = ScheduleKind::Plateau { patience: 2, factor: 0.1 };
        let mut plateau = PlateauState::new();
        for score in [1.0, 0.9, 0.95, 0.96, 0.97] {
            plateau.observe(kind, score);
        }
        assert!((s(kind).lr(20, 1, &plateau) - 0.1).abs() < 1e-12);
    }
}
