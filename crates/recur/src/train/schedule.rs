//! Learning-rate schedule: linear warm-up, then cosine decay to a floor.

/// lr(step) = base · step/warmup during warm-up, then
/// base · (floor + (1 − floor)·½(1 + cos(π·progress))).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarmupCosine {
    pub base: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
    /// Final lr as a fraction of `base`.
    pub floor: f64,
}

impl WarmupCosine {
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.base * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = (self.total_steps - self.warmup_steps).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
        self.base * (self.floor + (1.0 - self.floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()))
    }
}
