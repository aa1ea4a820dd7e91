//! Calendar inputs: where a grid step's time lies in its day, week and year, as known
//! inputs a model reads beside its signals (never predicted, never missing, known ahead:
//! a closed-loop or direct forecast reads them for the steps it forecasts from).
//!
//! For each cycle of period P, the step's local time t (its bin's start, UTC plus a fixed
//! offset, or plus its time zone's offset at that time where clocks change: [`TimeZone`]) gives the phase φ = ((t − t₀) mod P) / P ∈ [0, 1) and two inputs
//! (sin 2πφ, cos 2πφ): a smooth clock on which the cycle's end meets its start. t₀ places
//! φ = 0 at midnight (day), Monday midnight (week) and 1 January (year, whose period is the
//! mean Gregorian year of 365.2425 days: within a day of 1 January every year).

use serde::{Deserialize, Serialize};

use super::series::Clock;
use super::zone::TimeZone;
use crate::error::{Error, Result};

/// A cycle of the calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CalendarCycle {
    Day,
    Week,
    Year,
}

const DAY: i64 = 86_400;

impl CalendarCycle {
    /// P in seconds.
    fn period(self) -> i64 {
        match self {
            CalendarCycle::Day => DAY,
            CalendarCycle::Week => 7 * DAY,
            CalendarCycle::Year => 31_556_952,
        }
    }

    /// t₀ mod P: the Unix epoch, 1970-01-01 00:00, was a Thursday at midnight, 1 January.
    fn origin(self) -> i64 {
        match self {
            CalendarCycle::Week => -3 * DAY,
            CalendarCycle::Day | CalendarCycle::Year => 0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CalendarCycle::Day => "day",
            CalendarCycle::Week => "week",
            CalendarCycle::Year => "year",
        }
    }
}

/// The hour of the day (0–23) of `seconds` since 1970-01-01 00:00 (a local time).
pub fn hour_of_day(seconds: i64) -> usize {
    (seconds.rem_euclid(DAY) / 3600) as usize
}

/// The day of the week (0 = Monday … 6 = Sunday) of `seconds` since 1970-01-01 00:00, a
/// Thursday (a local time).
pub fn weekday(seconds: i64) -> usize {
    (seconds.div_euclid(DAY) + 3).rem_euclid(7) as usize
}

/// The month (0 = January … 11 = December) of `seconds` since 1970-01-01 00:00 (a local
/// time).
pub fn month(seconds: i64) -> usize {
    super::series::civil_from_days(seconds.div_euclid(DAY)).1 as usize - 1
}

/// The calendar inputs a model reads (`data.calendar`), and the local time they follow:
/// UTC plus a fixed offset (`data.calendar_utc_offset_hours`), or plus a time zone's offset
/// at each time, clocks changing for daylight saving (`data.time_zone`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calendar {
    pub cycles: Vec<CalendarCycle>,
    #[serde(default)]
    pub utc_offset_seconds: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<TimeZone>,
    /// Whether the data writes naive times (no UTC offset) as local times of `time_zone`
    /// (`data.naive_times = "local"`): read back to UTC, and shown as local times again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local_times: bool,
}

impl Calendar {
    /// The calendar of `cycles` in local time UTC + `offset_hours`.
    ///
    /// # Errors
    /// A cycle named twice, or an offset beyond ±24 hours or not a whole number of minutes.
    pub fn new(cycles: &[CalendarCycle], offset_hours: f64) -> Result<Self> {
        if let Some(twice) = cycles.iter().enumerate().find(|(i, c)| cycles[..*i].contains(c)) {
            return Err(Error::invalid("data.calendar", format!("`{}` named twice", twice.1.name())));
        }
        let minutes = offset_hours * 60.0;
        if !(offset_hours.abs() <= 24.0 && (minutes - minutes.round()).abs() < 1e-6) {
            return Err(Error::invalid(
                "data.calendar_utc_offset_hours",
                format!("{offset_hours}: an offset from UTC is within ±24 hours, in whole minutes (5.5, -3.5)"),
            ));
        }
        Ok(Calendar {
            cycles: cycles.to_vec(),
            utc_offset_seconds: minutes.round() as i64 * 60,
            time_zone: None,
            local_times: false,
        })
    }

    /// The calendar in local time of `zone` instead of a fixed offset.
    ///
    /// # Errors
    /// A fixed offset given too: the zone gives the offset.
    pub fn in_time_zone(mut self, zone: TimeZone) -> Result<Self> {
        if self.utc_offset_seconds != 0 {
            return Err(Error::invalid(
                "data.time_zone",
                format!(
                    "`{}` with data.calendar_utc_offset_hours = {}: the zone gives the offset (leave it 0)",
                    zone.name,
                    self.utc_offset_seconds as f64 / 3600.0
                ),
            ));
        }
        self.time_zone = Some(zone);
        Ok(self)
    }

    /// The zone the data's naive times are local times of, where they are
    /// ([`Calendar::local_times`]).
    pub fn naive_zone(&self) -> Option<&TimeZone> {
        self.time_zone.as_ref().filter(|_| self.local_times)
    }

    /// `utc` as the data writes times: local where its naive times are local
    /// ([`Calendar::local_times`]), else UTC.
    pub fn shown(&self, utc: i64) -> i64 {
        match self.naive_zone() {
            Some(zone) => utc + i64::from(zone.offset_at(utc)),
            None => utc,
        }
    }

    /// A grid time `time` on `clock` as the data writes times (an elapsed time as it is; a
    /// calendar time local where the data's naive times are, [`Calendar::shown`]).
    pub fn format(&self, clock: Clock, time: i64) -> String {
        match clock {
            Clock::Calendar => clock.format(self.shown(time)),
            Clock::Elapsed => clock.format(time),
        }
    }

    /// The local time at `utc` (both in seconds since 1970-01-01 00:00).
    pub fn local(&self, utc: i64) -> i64 {
        utc + self.time_zone.as_ref().map_or(self.utc_offset_seconds, |z| i64::from(z.offset_at(utc)))
    }

    pub fn is_empty(&self) -> bool {
        self.cycles.is_empty()
    }

    /// The inputs per step: two per cycle.
    pub fn width(&self) -> usize {
        2 * self.cycles.len()
    }

    /// The inputs' names, in the order [`Calendar::write`] writes them (`day sin`, `day cos`, …).
    pub fn input_names(&self) -> Vec<String> {
        self.cycles.iter().flat_map(|c| ["sin", "cos"].map(|f| format!("{} {f}", c.name()))).collect()
    }

    /// (sin 2πφ, cos 2πφ) of every cycle at `time` (seconds since the Unix epoch, UTC)
    /// into `out` (`[width]`).
    pub fn write(&self, time: i64, out: &mut [f32]) {
        let local = self.local(time);
        for (cycle, pair) in self.cycles.iter().zip(out.chunks_exact_mut(2)) {
            let period = cycle.period();
            let phase = (local - cycle.origin()).rem_euclid(period) as f64 / period as f64;
            let (sin, cos) = (std::f64::consts::TAU * phase).sin_cos();
            (pair[0], pair[1]) = (sin as f32, cos as f32);
        }
    }

    /// How the inputs are made, for a reader outside recur (`recur export`'s preprocessing).
    pub fn description(&self) -> String {
        let cycles: Vec<String> = self
            .cycles
            .iter()
            .map(|&c| {
                let (period, origin) = match c {
                    CalendarCycle::Day => ("", "midnight"),
                    CalendarCycle::Week => ("", "Monday midnight"),
                    CalendarCycle::Year => (" (365.2425 days)", "1 January 1970"),
                };
                format!("{}: P = {}{period}, t0 = {} ({origin})", c.name(), c.period(), c.origin())
            })
            .collect();
        let (offset, zone) = match &self.time_zone {
            None => (self.utc_offset_seconds.to_string(), String::new()),
            Some(z) => (
                "o(t)".to_string(),
                format!(
                    ", o(t) the offset in seconds of local time in {} from UTC at t (its transitions in `time_zone`; \
                     after the last, the POSIX TZ rule {})",
                    z.name,
                    z.rule().unwrap_or("of none: the last offset")
                ),
            ),
        };
        format!(
            "then per cycle [sin 2πφ, cos 2πφ], φ = ((t + {offset} - t0) mod P) / P, t the step's time (its bin's \
             start) in seconds since 1970-01-01 UTC{zone}; cycles: {}",
            cycles.join("; ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phases(calendar: &Calendar, time: i64) -> Vec<f64> {
        let mut out = vec![0.0f32; calendar.width()];
        calendar.write(time, &mut out);
        out.chunks(2)
            .map(|p| (f64::from(p[0]).atan2(f64::from(p[1])) / std::f64::consts::TAU).rem_euclid(1.0))
            .collect()
    }

    #[test]
    fn phases_start_at_midnight_monday_and_new_year() {
        let all = Calendar::new(&[CalendarCycle::Day, CalendarCycle::Week, CalendarCycle::Year], 0.0).unwrap();
        // 2024-01-01 00:00 UTC was a Monday: 1704067200 s
        let monday = 1_704_067_200;
        let p = phases(&all, monday);
        assert!(p[0].min(1.0 - p[0]) < 1e-6 && p[1].min(1.0 - p[1]) < 1e-6, "{p:?}");
        // the mean year drifts from 1 January by under a day
        assert!(p[2].min(1.0 - p[2]) < 1.0 / 365.0, "{p:?}");
        // 18:00 on the Wednesday after: 3/4 of a day, (2 + 3/4)/7 of a week
        let p = phases(&all, monday + 2 * DAY + 18 * 3600);
        assert!((p[0] - 0.75).abs() < 1e-6 && (p[1] - 2.75 / 7.0).abs() < 1e-6, "{p:?}");
        // 1 July is about half a year on
        assert!((phases(&all, 1_719_792_000)[2] - 0.5).abs() < 0.01);
        assert_eq!(all.input_names()[..3], ["day sin", "day cos", "week sin"]);
    }

    #[test]
    fn the_offset_moves_local_midnight() {
        // 16:00 UTC is midnight at UTC+8
        let beijing = Calendar::new(&[CalendarCycle::Day], 8.0).unwrap();
        assert!(phases(&beijing, 16 * 3600)[0].min(1.0 - phases(&beijing, 16 * 3600)[0]) < 1e-6);
        let india = Calendar::new(&[CalendarCycle::Day], 5.5).unwrap();
        assert_eq!(india.utc_offset_seconds, 19_800);
        // before the epoch too
        assert!((phases(&india, -19_800 - DAY / 4)[0] - 0.75).abs() < 1e-6);
    }

    #[test]
    fn a_time_zone_moves_local_midnight_with_daylight_saving() {
        let zone = TimeZone::resolve_in("CET-1CEST,M3.5.0,M10.5.0/3", std::path::Path::new("/nonexistent")).unwrap();
        let berlin = Calendar::new(&[CalendarCycle::Day], 0.0).unwrap().in_time_zone(zone.clone()).unwrap();
        // local midnight is 23:00 UTC in winter (2024-01-15) and 22:00 UTC in summer (2024-07-15)
        let (winter, summer) = (1_705_276_800, 1_721_001_600);
        for midnight in [winter - 3600, summer - 7200] {
            let p = phases(&berlin, midnight)[0];
            assert!(p.min(1.0 - p) < 1e-6, "{p}");
        }
        assert_eq!(berlin.local(summer), summer + 7200);
        let text = berlin.description();
        assert!(
            text.contains("φ = ((t + o(t) - t0) mod P) / P") && text.contains("CET-1CEST,M3.5.0,M10.5.0/3"),
            "{text}"
        );
        // a zone gives the offset: a fixed one beside it is refused
        let both = Calendar::new(&[CalendarCycle::Day], 1.0).unwrap().in_time_zone(zone).unwrap_err().to_string();
        assert!(both.contains("data.time_zone") && both.contains("calendar_utc_offset_hours = 1"), "{both}");
    }

    #[test]
    fn the_description_gives_each_cycles_period_and_origin() {
        let all = Calendar::new(&[CalendarCycle::Day, CalendarCycle::Week, CalendarCycle::Year], 8.0).unwrap();
        let text = all.description();
        assert!(text.contains("φ = ((t + 28800 - t0) mod P) / P"), "{text}");
        assert!(
            text.ends_with(
                "cycles: day: P = 86400, t0 = 0 (midnight); week: P = 604800, t0 = -259200 (Monday midnight); \
                 year: P = 31556952 (365.2425 days), t0 = 0 (1 January 1970)"
            ),
            "{text}"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let twice = Calendar::new(&[CalendarCycle::Day, CalendarCycle::Day], 0.0).unwrap_err().to_string();
        assert!(twice.contains("data.calendar") && twice.contains("`day` named twice"), "{twice}");
        let offset = Calendar::new(&[CalendarCycle::Day], 0.01).unwrap_err().to_string();
        assert!(offset.contains("calendar_utc_offset_hours") && offset.contains("0.01"), "{offset}");
        assert!(Calendar::new(&[], 25.0).is_err());
    }
}
