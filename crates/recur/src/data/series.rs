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
    /// Per signal: cells that held one of the config's marks of "no value"
    /// ([`crate::data::MissingValues`]), now gaps in the mask (one-hot columns: 0).
    pub marked: Vec<usize>,
    /// What the timestamps count from.
    pub clock: Clock,
}

/// What a series' times are: calendar times (seconds since the Unix epoch, UTC), or time
/// elapsed since its entity's start, as PhysioNet 2012 writes it (`47:30`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Clock {
    #[default]
    Calendar,
    Elapsed,
}

impl Clock {
    /// How an error names what a time is.
    pub fn description(self) -> &'static str {
        match self {
            Clock::Calendar => "a calendar time",
            Clock::Elapsed => "a time elapsed since the entity's start (H:MM)",
        }
    }

    /// `seconds` as the readers take it back: `YYYY-MM-DD hh:mm:ss` (UTC) for a calendar
    /// time, `H:MM` (or `H:MM:SS` off whole minutes) for an elapsed one.
    pub fn format(self, seconds: i64) -> String {
        match self {
            Clock::Calendar => format_timestamp(seconds),
            Clock::Elapsed => {
                let (sign, s) = if seconds < 0 { ("-", -seconds) } else { ("", seconds) };
                match s % 60 {
                    0 => format!("{sign}{}:{:02}", s / 3600, s / 60 % 60),
                    r => format!("{sign}{}:{:02}:{r:02}", s / 3600, s / 60 % 60),
                }
            }
        }
    }
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

/// Whether `year-month-day` is a date of the proleptic Gregorian calendar (no month 13,
/// no February 30; February 29 in leap years only).
pub fn is_valid_date(year: i64, month: u32, day: u32) -> bool {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
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

/// A Unix time as `YYYY-MM-DD hh:mm:ss` (UTC): how errors name a point in time.
pub fn format_timestamp(seconds: i64) -> String {
    let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The proleptic Gregorian date (year, month 1–12, day 1–31) of `days` since 1970-01-01,
/// the inverse of [`days_from_civil`] (Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
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

    #[test]
    fn timestamps_format_back_to_their_dates() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(format_timestamp(15_765 * 86_400 + 5 * 3600 + 7 * 60 + 9), "2013-03-01 05:07:09");
        assert_eq!(format_timestamp(11_016 * 86_400), "2000-02-29 00:00:00");
        assert_eq!(format_timestamp(-1), "1969-12-31 23:59:59");
        assert_eq!(Clock::Calendar.format(0), "1970-01-01 00:00:00");
        assert_eq!(Clock::Elapsed.format(47 * 3600 + 30 * 60), "47:30");
        assert_eq!(Clock::Elapsed.format(0), "0:00");
        assert_eq!(Clock::Elapsed.format(3600 + 5), "1:00:05");
        for days in (-800_000..800_000).step_by(997) {
            let text = format_timestamp(days * 86_400);
            let (y, m, d) = (
                text[..text.len() - 15].parse().unwrap(),
                text[text.len() - 14..text.len() - 12].parse().unwrap(),
                text[text.len() - 11..text.len() - 9].parse().unwrap(),
            );
            assert_eq!(days_from_civil(y, m, d), days, "{text}");
        }
    }
}
