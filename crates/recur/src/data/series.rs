//! A multivariate series on a time axis, with an explicit observation mask.

/// Values `[N, C]` at `timestamps` (seconds since the Unix epoch, increasing), with
/// `observed[n·C + c]` telling whether `values[n·C + c]` was measured. Missing values are
/// stored as 0 and never used as data: the mask travels with them.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeSeries {
    pub signals: Vec<String>,
    pub timestamps: Vec<i64>,
    pub values: Vec<f32>,
    pub observed: Vec<bool>,
}

impl TimeSeries {
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    pub fn channels(&self) -> usize {
        self.signals.len()
    }

    /// Fraction of missing entries per signal.
    pub fn missing_fraction(&self) -> Vec<f64> {
        let c = self.channels();
        (0..c)
            .map(|j| {
                let missing = (0..self.len()).filter(|&n| !self.observed[n * c + j]).count();
                missing as f64 / self.len().max(1) as f64
            })
            .collect()
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2013, 3, 1), 15_765);
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
    }
}
