//! Local time where clocks change: a time zone of the IANA database (`Europe/Berlin`, read
//! from its TZif file, as `/usr/share/zoneinfo` holds them: RFC 8536) or a POSIX TZ rule
//! (`CET-1CEST,M3.5.0,M10.5.0/3`: IEEE 1003.1 §8.3, what an edge box's `TZ` holds).
//!
//! A zone is resolved once, where the run is trained; what it resolves to — every
//! transition of the file and the rule after them — travels with the run (`scaler.json`),
//! so a model serves the same local times on a box without the database.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::series::{civil_from_days, days_from_civil};
use crate::error::{Error, Result};

/// A time zone: local time = UTC + [`TimeZone::offset_at`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeZone {
    /// As given: an IANA name or a POSIX TZ rule.
    pub name: String,
    /// The offset east of UTC, in seconds, before the first transition.
    before: i32,
    /// Each transition: from this UTC time (seconds since the Unix epoch) on, this offset.
    transitions: Vec<(i64, i32)>,
    /// The rule from the last transition on (a TZif file's footer, or the rule given).
    rule: Option<PosixRule>,
}

impl TimeZone {
    /// `spec`: a zone of the IANA database in `$TZDIR` (else `/usr/share/zoneinfo`), or a
    /// POSIX TZ rule.
    ///
    /// # Errors
    /// Neither, naming both places looked in; a damaged TZif file, naming it.
    pub fn resolve(spec: &str) -> Result<TimeZone> {
        let dir = std::env::var_os("TZDIR").map_or_else(|| PathBuf::from("/usr/share/zoneinfo"), PathBuf::from);
        TimeZone::resolve_in(spec, &dir)
    }

    /// [`TimeZone::resolve`] with the IANA database in `dir`.
    ///
    /// # Errors
    /// As [`TimeZone::resolve`].
    pub fn resolve_in(spec: &str, dir: &Path) -> Result<TimeZone> {
        let spec = spec.trim();
        let named = !spec.is_empty() && !spec.starts_with('/') && spec.split('/').all(|part| part != "..");
        let file = dir.join(spec);
        if named && file.is_file() {
            let bytes = std::fs::read(&file).map_err(|source| Error::Io { path: file.clone(), source })?;
            return TimeZone::from_tzif(spec, &bytes).map_err(|why| Error::Format { path: file, why });
        }
        let rule = PosixRule::parse(spec).map_err(|why| {
            // a name of the database's form is told where it was looked for, a rule what is wrong with it
            let why =
                if spec.contains('/') && !spec.contains(',') { format!("no file {}", file.display()) } else { why };
            Error::invalid(
                "data.time_zone",
                format!(
                    "`{spec}` is neither a time zone in {} (the IANA database: `Europe/Berlin`) nor a POSIX TZ rule \
                     (`CET-1CEST,M3.5.0,M10.5.0/3`): {why}",
                    dir.display()
                ),
            )
        })?;
        Ok(TimeZone { name: spec.to_string(), before: rule.standard, transitions: Vec::new(), rule: Some(rule) })
    }

    /// The zone `name` from the bytes of its TZif file (versions 1 to 4); otherwise why not.
    pub fn from_tzif(name: &str, bytes: &[u8]) -> Result<TimeZone, String> {
        let mut at = 0;
        let (version, counts) = tzif_header(bytes, &mut at)?;
        if version == 1 {
            return tzif_block(name, bytes, at, &counts, 4, false);
        }
        // past the version 1 block (32-bit times): the header again, the block with 64-bit
        // times, and the footer
        at += counts.block_len(4);
        let (_, counts) = tzif_header(bytes, &mut at)?;
        tzif_block(name, bytes, at, &counts, 8, true)
    }

    /// The offset of local time from UTC at `utc` (seconds since the Unix epoch), in
    /// seconds east.
    pub fn offset_at(&self, utc: i64) -> i32 {
        match (self.transitions.partition_point(|&(at, _)| at <= utc), &self.rule) {
            // after the last transition (or without any), the rule
            (n, Some(rule)) if n == self.transitions.len() => rule.offset_at(utc),
            (0, _) => self.before,
            (n, _) => self.transitions[n - 1].1,
        }
    }

    /// The UTC time of the local time `local` (both in seconds since 1970-01-01 00:00), the
    /// first after `after` where the local time occurs twice (the hour repeated when clocks
    /// go back: read in order, the first is the earlier), the earlier where there is no
    /// `after`; otherwise why not (a local time skipped when clocks go forward).
    pub fn to_utc(&self, local: i64, after: Option<i64>) -> Result<i64, String> {
        // the offsets a day either side: a time's own is one of them (read per row: no allocation)
        let candidate = |offset: i32| {
            let utc = local - i64::from(offset);
            (i64::from(self.offset_at(utc)) == local - utc).then_some(utc)
        };
        match (candidate(self.offset_at(local - 86_400)), candidate(self.offset_at(local + 86_400))) {
            (None, None) => {
                Err(format!("does not exist in {}: the clocks went forward over it (daylight saving)", self.name))
            }
            (Some(only), None) | (None, Some(only)) => Ok(only),
            (Some(a), Some(b)) => {
                let (earlier, latest) = (a.min(b), a.max(b));
                Ok(match after {
                    Some(last) if earlier <= last => latest,
                    _ => earlier,
                })
            }
        }
    }

    /// The POSIX rule it follows from its last transition on, as written.
    pub fn rule(&self) -> Option<&str> {
        self.rule.as_ref().map(|r| r.text.as_str())
    }
}

/// A TZif header's counts (RFC 8536 §3.1).
struct TzifCounts {
    isut: usize,
    isstd: usize,
    leap: usize,
    time: usize,
    types: usize,
    chars: usize,
}

impl TzifCounts {
    /// The data block's length, with times of `time_size` bytes.
    fn block_len(&self, time_size: usize) -> usize {
        self.time * time_size
            + self.time
            + self.types * 6
            + self.chars
            + self.leap * (time_size + 4)
            + self.isstd
            + self.isut
    }
}

/// The header at `*at` (moved past it): the version and the counts.
fn tzif_header(bytes: &[u8], at: &mut usize) -> Result<(u8, TzifCounts), String> {
    let header = bytes.get(*at..*at + 44).ok_or("not a TZif file (shorter than its header)")?;
    if &header[..4] != b"TZif" {
        return Err("not a TZif file (no `TZif` at its start)".into());
    }
    let version = match header[4] {
        0 => 1,
        v @ b'2'..=b'9' => v - b'0',
        v => return Err(format!("TZif version byte {v:#04x}")),
    };
    let count = |k: usize| u32::from_be_bytes(header[20 + 4 * k..24 + 4 * k].try_into().expect("4 bytes")) as usize;
    *at += 44;
    let counts = TzifCounts {
        isut: count(0),
        isstd: count(1),
        leap: count(2),
        time: count(3),
        types: count(4),
        chars: count(5),
    };
    if counts.types == 0 {
        return Err("a TZif file without local time types".into());
    }
    Ok((version, counts))
}

/// The zone in the data block at `at`, with times of `time_size` bytes, and its footer's
/// rule where the file has one.
fn tzif_block(
    name: &str,
    bytes: &[u8],
    at: usize,
    counts: &TzifCounts,
    time_size: usize,
    footer: bool,
) -> Result<TimeZone, String> {
    let block = bytes.get(at..at + counts.block_len(time_size)).ok_or("a TZif file cut short")?;
    let times = &block[..counts.time * time_size];
    let indices = &block[counts.time * time_size..counts.time * (time_size + 1)];
    let types = &block[counts.time * (time_size + 1)..counts.time * (time_size + 1) + counts.types * 6];
    let offset = |t: usize| -> Result<i32, String> {
        let entry = types.get(6 * t..6 * t + 6).ok_or(format!("time type {t} of {}", counts.types))?;
        Ok(i32::from_be_bytes(entry[..4].try_into().expect("4 bytes")))
    };
    let mut transitions = Vec::with_capacity(counts.time);
    for (k, &index) in indices.iter().enumerate() {
        let at = match time_size {
            8 => i64::from_be_bytes(times[8 * k..8 * k + 8].try_into().expect("8 bytes")),
            _ => i64::from(i32::from_be_bytes(times[4 * k..4 * k + 4].try_into().expect("4 bytes"))),
        };
        if transitions.last().is_some_and(|&(before, _)| before >= at) {
            return Err(format!("transition {k} is not after the one before it"));
        }
        transitions.push((at, offset(usize::from(index))?));
    }
    let rule = match footer {
        false => None,
        true => {
            let rest = &bytes[at + block.len()..];
            let text = rest.strip_prefix(b"\n").and_then(|r| r.split(|&b| b == b'\n').next()).unwrap_or_default();
            let text = std::str::from_utf8(text).map_err(|_| "a footer that is not text".to_string())?;
            match text.is_empty() {
                true => None,
                false => Some(PosixRule::parse(text).map_err(|why| format!("its footer `{text}`: {why}"))?),
            }
        }
    };
    Ok(TimeZone { name: name.to_string(), before: offset(0)?, transitions, rule })
}

/// A POSIX TZ rule: standard time's offset and, where clocks change, daylight saving's and
/// when it begins and ends each year.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
struct PosixRule {
    text: String,
    /// Seconds east of UTC (POSIX writes them west: `CET-1` is UTC+1).
    standard: i32,
    daylight: Option<Daylight>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Daylight {
    offset: i32,
    /// Each the day and the local time of day (seconds; may be negative or past 24 h)
    /// at which it begins (in standard time) and ends (in daylight time).
    start: (RuleDay, i64),
    end: (RuleDay, i64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum RuleDay {
    /// `Mm.w.d`: weekday d (0 = Sunday) of week w (1–4; 5: the last) of month m.
    MonthWeek { month: u32, week: u32, weekday: u32 },
    /// `Jn`: day n of the year, 1–365, 29 February never counted.
    Julian(u32),
    /// `n`: day n of the year, 0–365, 29 February counted.
    Ordinal(u32),
}

impl TryFrom<String> for PosixRule {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        PosixRule::parse(&text)
    }
}

impl From<PosixRule> for String {
    fn from(rule: PosixRule) -> String {
        rule.text
    }
}

/// Reads a POSIX rule's parts from the front of a text.
struct RuleReader<'a> {
    rest: &'a str,
}

impl RuleReader<'_> {
    /// A zone's abbreviation: 3 or more letters, or anything but `>` between `<` and `>`.
    fn abbreviation(&mut self) -> Result<(), String> {
        let len = match self.rest.strip_prefix('<') {
            Some(quoted) => quoted.find('>').ok_or("a `<` without its `>`")? + 2,
            None => self.rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(self.rest.len()),
        };
        if len < 3 {
            return Err(format!("`{}`: a zone's abbreviation has at least 3 letters", self.rest));
        }
        self.rest = &self.rest[len..];
        Ok(())
    }

    /// `[+-]hh[:mm[:ss]]`, in seconds.
    fn duration(&mut self) -> Result<i64, String> {
        let sign = match self.rest.as_bytes().first() {
            Some(b'-') => -1,
            _ => 1,
        };
        let unsigned = self.rest.strip_prefix(['+', '-']).unwrap_or(self.rest);
        let len = unsigned.find(|c: char| !(c.is_ascii_digit() || c == ':')).unwrap_or(unsigned.len());
        let (text, rest) = unsigned.split_at(len);
        if text.is_empty() {
            return Err(format!("a time ([+-]hh[:mm[:ss]]) where `{}` is", self.rest));
        }
        let mut seconds = 0;
        let parts: Vec<&str> = text.split(':').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty() || p.len() > 3) {
            return Err(format!("`{text}`: a time is hh[:mm[:ss]]"));
        }
        for (part, unit) in parts.iter().zip([3600, 60, 1]) {
            seconds += part.parse::<i64>().map_err(|_| format!("`{part}` in `{text}`"))? * unit;
        }
        if seconds > 167 * 3600 {
            return Err(format!("`{text}`: more than 167 hours"));
        }
        self.rest = rest;
        Ok(sign * seconds)
    }

    /// `Mm.w.d`, `Jn` or `n`, then an optional `/time` (02:00 by default).
    fn change(&mut self) -> Result<(RuleDay, i64), String> {
        let len = self.rest.find([',', '/']).unwrap_or(self.rest.len());
        let (text, rest) = self.rest.split_at(len);
        let number = |s: &str, range: std::ops::RangeInclusive<u32>| -> Result<u32, String> {
            s.parse::<u32>().ok().filter(|n| range.contains(n)).ok_or(format!("`{s}` in `{text}`: not in {range:?}"))
        };
        let day = if let Some(mwd) = text.strip_prefix('M') {
            let parts: Vec<&str> = mwd.split('.').collect();
            let [month, week, weekday] = parts[..] else { return Err(format!("`{text}`: Mm.w.d")) };
            RuleDay::MonthWeek {
                month: number(month, 1..=12)?,
                week: number(week, 1..=5)?,
                weekday: number(weekday, 0..=6)?,
            }
        } else if let Some(julian) = text.strip_prefix('J') {
            RuleDay::Julian(number(julian, 1..=365)?)
        } else {
            RuleDay::Ordinal(number(text, 0..=365)?)
        };
        self.rest = rest;
        let time = match self.rest.strip_prefix('/') {
            Some(rest) => {
                self.rest = rest;
                self.duration()?
            }
            None => 2 * 3600,
        };
        Ok((day, time))
    }
}

impl PosixRule {
    /// The rule `text` (`std offset [dst [offset] ,start[/time],end[/time]]`); otherwise why not.
    fn parse(text: &str) -> Result<PosixRule, String> {
        let mut r = RuleReader { rest: text };
        r.abbreviation()?;
        let standard = -r.duration()?;
        let daylight = match r.rest.is_empty() {
            true => None,
            false => {
                r.abbreviation()?;
                let offset = match r.rest.chars().next() {
                    Some(',') | None => standard + 3600,
                    Some(_) => -r.duration()?,
                };
                r.rest =
                    r.rest.strip_prefix(',').ok_or("daylight saving without the rule of when it begins and ends")?;
                let start = r.change()?;
                r.rest = r.rest.strip_prefix(',').ok_or("daylight saving's beginning without its end")?;
                let end = r.change()?;
                if !r.rest.is_empty() {
                    return Err(format!("`{}` after the rule", r.rest));
                }
                Some(Daylight { offset: offset as i32, start, end })
            }
        };
        Ok(PosixRule { text: text.to_string(), standard: standard as i32, daylight })
    }

    /// The offset east of UTC at `utc`.
    fn offset_at(&self, utc: i64) -> i32 {
        let Some(d) = self.daylight else { return self.standard };
        let year = civil_from_days((utc + i64::from(self.standard)).div_euclid(86_400)).0;
        let start = d.start.0.day_in(year) * 86_400 + d.start.1 - i64::from(self.standard);
        let end = d.end.0.day_in(year) * 86_400 + d.end.1 - i64::from(d.offset);
        let in_daylight = match start < end {
            true => (start..end).contains(&utc),
            // the southern hemisphere's: daylight saving across the new year
            false => !(end..start).contains(&utc),
        };
        if in_daylight {
            d.offset
        } else {
            self.standard
        }
    }
}

impl RuleDay {
    /// Its day in `year`, in days since 1970-01-01.
    fn day_in(self, year: i64) -> i64 {
        let january = days_from_civil(year, 1, 1);
        let leap = days_from_civil(year, 3, 1) - days_from_civil(year, 2, 1) == 29;
        match self {
            RuleDay::Ordinal(n) => january + i64::from(n),
            RuleDay::Julian(n) => january + i64::from(n) - 1 + i64::from(leap && n >= 60),
            RuleDay::MonthWeek { month, week, weekday } => {
                let first = days_from_civil(year, month, 1);
                let next =
                    if month == 12 { days_from_civil(year + 1, 1, 1) } else { days_from_civil(year, month + 1, 1) };
                // 1970-01-01 was a Thursday (4, Sunday = 0)
                let first_weekday = (first + 4).rem_euclid(7);
                let mut day = first + (i64::from(weekday) - first_weekday).rem_euclid(7) + 7 * (i64::from(week) - 1);
                while day >= next {
                    day -= 7;
                }
                day
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds since the epoch of `y-m-d h:mm` UTC.
    fn utc(y: i64, m: u32, d: u32, h: i64, mi: i64) -> i64 {
        days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60
    }

    fn rule(text: &str) -> TimeZone {
        TimeZone::resolve_in(text, Path::new("/nonexistent")).unwrap()
    }

    #[test]
    fn posix_rules_change_the_clocks_when_their_zones_do() {
        // central Europe: 2024-03-31 01:00 UTC on, UTC+2; from 2024-10-27 01:00 UTC, UTC+1
        let berlin = rule("CET-1CEST,M3.5.0,M10.5.0/3");
        let at = |t| berlin.offset_at(t) / 3600;
        assert_eq!([at(utc(2024, 3, 31, 0, 59)), at(utc(2024, 3, 31, 1, 0))], [1, 2]);
        assert_eq!([at(utc(2024, 10, 27, 0, 59)), at(utc(2024, 10, 27, 1, 0))], [2, 1]);
        assert_eq!([at(utc(2024, 1, 15, 12, 0)), at(utc(2024, 7, 15, 12, 0))], [1, 2]);
        // the United States' east: 2024-03-10 07:00 UTC and 2024-11-03 06:00 UTC
        let new_york = rule("EST5EDT,M3.2.0,M11.1.0");
        let at = |t| new_york.offset_at(t) / 3600;
        assert_eq!([at(utc(2024, 3, 10, 6, 59)), at(utc(2024, 3, 10, 7, 0))], [-5, -4]);
        assert_eq!([at(utc(2024, 11, 3, 5, 59)), at(utc(2024, 11, 3, 6, 0))], [-4, -5]);
        // Sydney, daylight saving across the new year: ends 2024-04-07 03:00 local
        // (16:00 UTC the day before), begins 2024-10-06 02:00 local (16:00 UTC the day before)
        let sydney = rule("AEST-10AEDT,M10.1.0,M4.1.0/3");
        let at = |t| sydney.offset_at(t) / 3600;
        assert_eq!([at(utc(2024, 1, 1, 0, 0)), at(utc(2024, 4, 6, 15, 59)), at(utc(2024, 4, 6, 16, 0))], [11, 11, 10]);
        assert_eq!(
            [at(utc(2024, 10, 5, 15, 59)), at(utc(2024, 10, 5, 16, 0)), at(utc(2024, 12, 31, 0, 0))],
            [10, 11, 11]
        );
        // fixed offsets, quoted abbreviations, minutes
        assert_eq!(rule("<+0530>-5:30").offset_at(0), 19_800);
        assert_eq!(rule("UTC0").offset_at(utc(2024, 7, 1, 0, 0)), 0);
        assert_eq!(rule("<-03>3").offset_at(0), -3 * 3600);
        // a day of the year: J60 is 1 March in every year, 59 is 29 February in a leap one
        assert_eq!(RuleDay::Julian(60).day_in(2024), days_from_civil(2024, 3, 1));
        assert_eq!(RuleDay::Ordinal(59).day_in(2024), days_from_civil(2024, 2, 29));
        assert_eq!(RuleDay::Ordinal(59).day_in(2023), days_from_civil(2023, 3, 1));
    }

    #[test]
    fn a_tzif_file_gives_the_zones_history_and_its_rule_after_it() {
        // tzdata 2025b's Europe/Berlin (public domain), as Debian installs it
        let bytes = include_bytes!("../../tests/fixtures/zoneinfo/Europe/Berlin");
        let berlin = TimeZone::from_tzif("Europe/Berlin", bytes).unwrap();
        let at = |t| berlin.offset_at(t) / 3600;
        // West Germany kept no summer time from 1950 to 1979; it did from 1980
        assert_eq!([at(utc(1979, 7, 1, 12, 0)), at(utc(1980, 7, 1, 12, 0))], [1, 2]);
        // 1945's "double summer time" (UTC+3) in the Soviet zone, which Berlin followed
        assert_eq!(at(utc(1945, 6, 1, 12, 0)), 3);
        // local mean time before 1893 (0:53:28)
        assert_eq!(berlin.offset_at(utc(1880, 1, 1, 0, 0)), 3208);
        // the file's last transition is in 2037; its footer's rule goes on after it
        assert_eq!(berlin.rule(), Some("CET-1CEST,M3.5.0,M10.5.0/3"));
        assert_eq!([at(utc(2050, 1, 15, 12, 0)), at(utc(2050, 7, 15, 12, 0))], [1, 2]);
        // in the years both cover, the file and its rule agree hour by hour
        let posix = rule("CET-1CEST,M3.5.0,M10.5.0/3");
        for t in (utc(1996, 1, 1, 0, 0)..utc(2037, 1, 1, 0, 0)).step_by(3600) {
            assert_eq!(berlin.offset_at(t), posix.offset_at(t), "at {t}");
        }
        // found by name in a folder laid out as the database
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("Europe")).unwrap();
        std::fs::write(dir.path().join("Europe/Berlin"), bytes).unwrap();
        assert_eq!(TimeZone::resolve_in("Europe/Berlin", dir.path()).unwrap(), berlin);
        // and it travels as JSON
        let json = serde_json::to_string(&berlin).unwrap();
        assert_eq!(serde_json::from_str::<TimeZone>(&json).unwrap(), berlin);
        assert!(json.contains("\"rule\":\"CET-1CEST,M3.5.0,M10.5.0/3\""), "{}", &json[json.len() - 60..]);
    }

    #[test]
    fn local_times_go_back_to_utc_the_repeated_hour_in_order() {
        let berlin = rule("CET-1CEST,M3.5.0,M10.5.0/3");
        let local = |d: u32, h: i64, mi: i64| utc(2024, 10, d, h, mi);
        // a plain summer and winter time
        assert_eq!(berlin.to_utc(utc(2024, 7, 1, 12, 0), None), Ok(utc(2024, 7, 1, 10, 0)));
        assert_eq!(berlin.to_utc(utc(2024, 1, 1, 12, 0), None), Ok(utc(2024, 1, 1, 11, 0)));
        // 2024-10-27: 02:00–02:59 local happen twice, at 00:00 UTC (CEST) and 01:00 UTC (CET)
        let (first, second) = (utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 1, 30));
        assert_eq!(berlin.to_utc(local(27, 2, 30), None), Ok(first));
        assert_eq!(berlin.to_utc(local(27, 2, 30), Some(utc(2024, 10, 27, 0, 0))), Ok(first));
        assert_eq!(berlin.to_utc(local(27, 2, 30), Some(first)), Ok(second));
        assert_eq!(berlin.to_utc(local(27, 2, 0), Some(first)), Ok(utc(2024, 10, 27, 1, 0)));
        // 2024-03-31: 02:00–02:59 local never happen
        let err = berlin.to_utc(utc(2024, 3, 31, 2, 30), None).unwrap_err();
        assert!(err.contains("does not exist in CET-1CEST") && err.contains("went forward"), "{err}");
        assert_eq!(berlin.to_utc(utc(2024, 3, 31, 3, 0), None), Ok(utc(2024, 3, 31, 1, 0)));
        // every half hour of two years, written as local time and read back in order: in
        // Berlin, New York, Sydney (the repeated hour in April), and from tzdata's file
        let file = TimeZone::from_tzif("Europe/Berlin", include_bytes!("../../tests/fixtures/zoneinfo/Europe/Berlin"));
        let zones = [berlin, rule("EST5EDT,M3.2.0,M11.1.0"), rule("AEST-10AEDT,M10.1.0,M4.1.0/3"), file.unwrap()];
        for zone in &zones {
            let mut last = None;
            for t in (utc(2023, 1, 1, 0, 0)..utc(2025, 1, 1, 0, 0)).step_by(1800) {
                let back = zone.to_utc(t + i64::from(zone.offset_at(t)), last);
                assert_eq!(back, Ok(t), "{} at {t}", zone.name);
                last = Some(t);
            }
        }
    }

    #[test]
    fn what_is_neither_a_zone_nor_a_rule_is_named() {
        let dir = Path::new("/nonexistent/zoneinfo");
        let err = TimeZone::resolve_in("Europe/Atlantis", dir).unwrap_err().to_string();
        assert!(err.contains("data.time_zone") && err.contains("`Europe/Atlantis` is neither"), "{err}");
        assert!(
            err.contains("/nonexistent/zoneinfo") && err.contains("no file /nonexistent/zoneinfo/Europe/Atlantis"),
            "{err}"
        );
        for (bad, why) in [
            ("CET-1CEST", "without the rule"),
            ("CET-1CEST,M3.5.0", "without its end"),
            ("CET-1CEST,M13.5.0,M10.5.0", "`13`"),
            ("CET-1CEST,M3.5.0,M10.5.0/3x", "`x` after the rule"),
            ("CE-1", "at least 3 letters"),
            ("<CET-1", "without its `>`"),
            ("CET-200", "more than 167 hours"),
            ("CET", "a time ([+-]hh[:mm[:ss]]) where `` is"),
            ("CET-1CEST,M3.5.0/x,M10.5.0", "where `x,M10.5.0` is"),
        ] {
            let err = TimeZone::resolve_in(bad, dir).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let err = TimeZone::from_tzif("x", b"TZif2").unwrap_err();
        assert!(err.contains("shorter than its header"), "{err}");
        let mut cut = include_bytes!("../../tests/fixtures/zoneinfo/Europe/Berlin").to_vec();
        cut.truncate(1000);
        assert!(TimeZone::from_tzif("x", &cut).unwrap_err().contains("cut short"));
        // a path outside the database is not looked for there
        assert!(TimeZone::resolve_in("../../etc/passwd", Path::new("/usr/share/zoneinfo")).is_err());
    }
}
