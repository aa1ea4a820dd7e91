//! Anomalies as tables, CSV and charts: values flagged per signal and entity, alarm
//! thresholds, alarm episodes, faults found.

use std::ops::Range;
use std::path::Path;

use super::markdown_cell;
use crate::data::{csv_quoted, PreparedSeries};
use crate::error::{Error, Result};
use crate::plot::{Band, LineChart, Series, Style, TimelineChart};
use crate::tasks::anomaly::{median_steps, AlarmScales, Detections, Detector, Episode, ScoredValue};

/// Per target of `targets`: the values scored, how many each detector scores above
/// `threshold` (and their share), and the model's most surprising value with its time and
/// the value expected, as a Markdown table.
pub fn anomaly_table(scored: &[ScoredValue], data: &PreparedSeries, targets: &[String], threshold: f32) -> String {
    let mut out = format!(
        "| signal | values | model s > {threshold} | persistence > {threshold} | level > {threshold} | flatline > {threshold} | the most surprising (s, time: value, expected) |\n"
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---|\n");
    for (t, name) in targets.iter().enumerate() {
        let of_target: Vec<&ScoredValue> = scored.iter().filter(|v| v.target == t).collect();
        let cell = |d: Detector| {
            let n = of_target.iter().filter(|v| d.of(v) > threshold).count();
            format!("{n} ({:.2} %)", 100.0 * n as f64 / of_target.len().max(1) as f64)
        };
        let top = of_target.iter().max_by(|a, b| a.surprise.total_cmp(&b.surprise));
        let top = top.map_or("—".to_string(), |v| {
            let (entity, time) = data.step_label(v.step);
            let at = if data.entities.len() > 1 { format!("{} {time}", markdown_cell(entity)) } else { time };
            format!("{:.1}, {at}: {}, {:.4}", v.surprise, v.value, v.expected)
        });
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {top} |\n",
            markdown_cell(name),
            of_target.len(),
            cell(Detector::Model),
            cell(Detector::Persistence),
            cell(Detector::Level),
            cell(Detector::Flatline)
        ));
    }
    out
}

/// Each detector's threshold per target in its own score (the score above which the
/// validation part's fraction `scales.rate` of the target's values lie), as a Markdown table.
pub fn alarm_threshold_table(scales: &AlarmScales, targets: &[String]) -> String {
    let names: Vec<&str> = Detector::ALL.iter().map(|d| d.short_name()).collect();
    let mut out = format!("| signal | {} |\n", names.join(" | "));
    out.push_str(&format!("|---|{}\n", "---:|".repeat(names.len())));
    for (t, name) in targets.iter().enumerate() {
        let cells: Vec<String> = Detector::ALL.iter().map(|&d| format!("{:.2}", scales.raw_threshold(d, t))).collect();
        out.push_str(&format!("| {} | {} |\n", markdown_cell(name), cells.join(" | ")));
    }
    out
}

/// Per entity of `data` with a value scored: the values scored, how many the model scores
/// above `threshold` (and their share), and its most surprising value (signal, time,
/// surprise), the `shown` entities with the largest share first, as a Markdown table.
pub fn anomaly_entity_table(
    scored: &[ScoredValue],
    data: &PreparedSeries,
    targets: &[String],
    threshold: f32,
    shown: usize,
) -> String {
    let mut rows: Vec<(usize, usize, usize, Option<&ScoredValue>)> = Vec::new();
    for v in scored {
        let e = data.entity_index(v.step);
        if rows.last().is_none_or(|r| r.0 != e) {
            rows.push((e, 0, 0, None));
        }
        let row = rows.last_mut().expect("pushed above");
        row.1 += 1;
        row.2 += usize::from(v.surprise > threshold);
        if row.3.is_none_or(|top| v.surprise > top.surprise) {
            row.3 = Some(v);
        }
    }
    let share = |r: &(usize, usize, usize, Option<&ScoredValue>)| r.2 as f64 / r.1.max(1) as f64;
    rows.sort_by(|a, b| share(b).total_cmp(&share(a)));
    let mut out = format!("| entity | values | model s > {threshold} | the most surprising (signal, time, s) |\n");
    out.push_str("|---|---:|---:|---|\n");
    for r in rows.iter().take(shown) {
        let top = r.3.map_or("—".to_string(), |v| {
            format!("{} {}, {:.1}", markdown_cell(&targets[v.target]), data.step_label(v.step).1, v.surprise)
        });
        out.push_str(&format!(
            "| {} | {} | {} ({:.2} %) | {top} |\n",
            markdown_cell(&data.entities[r.0].0),
            r.1,
            r.2,
            100.0 * share(r)
        ));
    }
    out
}

/// The values the detectors `recur stream --flag` runs — the model and the flatline rule —
/// score above `threshold`, in step order, as CSV:
/// `entity,time,signal,value,expected,low,high,surprise,persistence,level,flatline`
/// (original units; the four scores as [`crate::tasks::anomaly`] defines them).
pub fn anomalies_csv(scored: &[ScoredValue], data: &PreparedSeries, targets: &[String], threshold: f32) -> String {
    let mut out = String::from("entity,time,signal,value,expected,low,high,surprise,persistence,level,flatline\n");
    for v in scored.iter().filter(|v| v.is_flagged(threshold)) {
        let (entity, time) = data.step_label(v.step);
        out.push_str(&format!(
            "{},{time},{},{},{},{},{},{},{},{},{}\n",
            csv_quoted(entity),
            csv_quoted(&targets[v.target]),
            v.value,
            v.expected,
            v.low,
            v.high,
            v.surprise,
            v.persistence,
            v.level,
            v.flatline
        ));
    }
    out
}

/// Per target: its flagged values, the [`Episode`]s they make, the median steps an episode
/// spans, the longest (its first step's time, its steps) and the strongest (its peak's time
/// and score), as a Markdown table.
pub fn episode_table(episodes: &[Episode], data: &PreparedSeries, targets: &[String]) -> String {
    let mut out = String::from(
        "| signal | values flagged | episodes | median steps spanned | the longest (from, steps) | the strongest (time, score) |\n",
    );
    out.push_str("|---|---:|---:|---:|---|---|\n");
    let at = |step: usize| {
        let (entity, time) = data.step_label(step);
        if data.entities.len() > 1 {
            format!("{} {time}", markdown_cell(entity))
        } else {
            time
        }
    };
    for (t, name) in targets.iter().enumerate() {
        let of_target: Vec<&Episode> = episodes.iter().filter(|e| e.target == t).collect();
        let median = median_steps(of_target.iter().map(|e| e.steps()).collect());
        let longest = of_target.iter().max_by_key(|e| (e.steps(), std::cmp::Reverse(e.first)));
        let strongest = of_target.iter().max_by(|a, b| a.peak.total_cmp(&b.peak).then(b.first.cmp(&a.first)));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            markdown_cell(name),
            of_target.iter().map(|e| e.flagged).sum::<usize>(),
            of_target.len(),
            median.map_or("—".to_string(), |m| format!("{m:.1}")),
            longest.map_or("—".to_string(), |e| format!("{}, {}", at(e.first), e.steps())),
            strongest.map_or("—".to_string(), |e| format!("{}, {:.1}", at(e.peak_step), e.peak)),
        ));
    }
    out
}

/// Every episode, in order, as CSV: its entity and signal, the times of its first and last
/// flagged steps, the steps it spans, its values flagged (by the model, by the flatline
/// rule), and its peak's time and score.
pub fn episodes_csv(episodes: &[Episode], data: &PreparedSeries, targets: &[String]) -> String {
    let mut out = String::from("entity,signal,start,end,steps,flagged,model,flatline,peak_time,peak\n");
    for e in episodes {
        let (entity, start) = data.step_label(e.first);
        let time = |step: usize| data.step_label(step).1;
        out.push_str(&format!(
            "{},{},{start},{},{},{},{},{},{},{}\n",
            csv_quoted(entity),
            csv_quoted(&targets[e.target]),
            time(e.last),
            e.steps(),
            e.flagged,
            e.by_model,
            e.by_flatline,
            time(e.peak_step),
            e.peak
        ));
    }
    out
}

/// Each detector's [`crate::tasks::anomaly::Detection`] of the faults injected, pooled over the targets, as a
/// Markdown table.
pub fn detection_table(detections: &Detections, threshold: f32) -> String {
    let mut out =
        format!("| detector | ROC AUC | average precision | flagged (> {threshold}) | precision | recall |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|\n");
    for (d, m) in &detections.pooled {
        out.push_str(&format!(
            "| {} | {:.4} | {:.4} | {} | {:.3} | {:.3} |\n",
            d.name(),
            m.auc,
            m.average_precision,
            m.flagged,
            m.precision(),
            m.recall()
        ));
    }
    out
}

/// Each detector's [`crate::tasks::anomaly::EventDetection`] of the faults injected: the
/// share found above `threshold`, the median steps to the first flag, the values outside
/// the faults it flags, per 1,000, its alarms ([`crate::tasks::anomaly::AlarmCount`]: its
/// flags as episodes) and the share of them on a fault, and what it finds at 1 flag in
/// 1,000 outside, as a Markdown table.
pub fn fault_event_table(detections: &Detections, threshold: f32) -> String {
    let mut out = format!(
        "| detector | faults found (> {threshold}) | median steps to the first flag | flags outside the faults, per 1,000 values | alarms (episodes) on a fault | found at 1 flag per 1,000 outside (median steps) |\n"
    );
    out.push_str("|---|---:|---:|---:|---:|---:|\n");
    let delay =
        |e: &crate::tasks::anomaly::EventDetection| e.median_delay().map_or("—".to_string(), |m| format!("{m:.1}"));
    for ((d, e), (_, at_rate)) in detections.events.iter().zip(&detections.events_at_false_alarm_rate) {
        let alarms = detections.alarms.iter().find(|(a, _)| a == d).map_or("—".to_string(), |(_, a)| {
            format!("{} of {} ({:.1} %)", a.on_faults, a.episodes, 100.0 * a.precision())
        });
        out.push_str(&format!(
            "| {} | {} of {} ({:.1} %) | {} | {:.2} | {alarms} | {:.1} % ({}) |\n",
            d.name(),
            e.delays.len(),
            e.events,
            100.0 * e.found(),
            delay(e),
            e.false_alarms_per_1000(),
            100.0 * at_rate.found(),
            delay(at_rate)
        ));
    }
    out
}

/// Each target's faults and each detector's average precision (and ROC AUC) on the
/// target's values alone, as a Markdown table (— where a target has no fault).
pub fn detection_signal_table(detections: &Detections, targets: &[String]) -> String {
    let names: Vec<&str> = Detector::ALL.iter().map(|d| d.short_name()).collect();
    let mut out = format!(
        "| signal | faults | {} |\n",
        names.iter().map(|n| format!("{n} AP (AUC)")).collect::<Vec<_>>().join(" | ")
    );
    out.push_str(&format!("|---|---:|{}\n", "---:|".repeat(names.len())));
    for (name, row) in targets.iter().zip(&detections.per_target) {
        let faults = row.iter().flatten().map(|m| m.faults).next().unwrap_or(0);
        let cells: Vec<String> = row
            .iter()
            .map(|m| m.map_or("—".to_string(), |m| format!("{:.3} ({:.4})", m.average_precision, m.auc)))
            .collect();
        out.push_str(&format!("| {} | {faults} | {} |\n", markdown_cell(name), cells.join(" | ")));
    }
    out
}

/// The [`Episode`]s of the entity with the most of them, one lane per target, over its
/// range of `part` (in days, or hours where it spans under three days), coloured by what
/// flagged them — the model, the flatline rule, or both — as a PNG.
///
/// # Errors
/// The file cannot be written.
pub fn save_episode_chart(
    episodes: &[Episode],
    data: &PreparedSeries,
    part: &[Range<usize>],
    targets: &[String],
    path: &Path,
) -> Result<()> {
    let mut per_entity = vec![0usize; data.entities.len().max(1)];
    for e in episodes {
        if let Some(count) = per_entity.get_mut(e.entity) {
            *count += 1;
        }
    }
    let entity = (0..per_entity.len()).max_by_key(|&i| (per_entity[i], std::cmp::Reverse(i))).unwrap_or(0);
    let range = part.iter().find(|r| data.entity_index(r.start) == entity).cloned().unwrap_or(0..1);
    let hours = (range.len() as i64 * data.grid.bin_seconds) as f64 / 3600.0;
    let (unit, per) = if hours >= 72.0 { ("days", 86_400.0) } else { ("hours", 3_600.0) };
    let x = |step: usize| (step as f64 - range.start as f64) * data.grid.bin_seconds as f64 / per;
    let (name, start) = data.step_label(range.start);
    let spans = episodes
        .iter()
        .filter(|e| e.entity == entity)
        .map(|e| (e.target, kind(e), x(e.first), x(e.last + 1)))
        .collect();
    let of = if data.entities.len() > 1 { format!(" of {name}") } else { String::new() };
    TimelineChart {
        title: format!("alarm episodes{of}: {} (a signal's flags close together, one alarm)", per_entity[entity]),
        x_label: format!("{unit} from {start}"),
        x_range: (0.0, x(range.end)),
        lanes: targets.to_vec(),
        kinds: EPISODE_KINDS.map(String::from).to_vec(),
        spans,
    }
    .save(path, 1000, (110 + 26 * targets.len()).max(300))
}

/// What flagged an episode, as the timelines colour it (an index into [`EPISODE_KINDS`]).
fn kind(e: &Episode) -> usize {
    match (e.by_model > 0, e.by_flatline > 0) {
        (true, false) => 0,
        (false, true) => 1,
        _ => 2,
    }
}

const EPISODE_KINDS: [&str; 3] = ["the model", "the flatline rule", "both"];

/// The entities a fleet timeline shows at most.
pub const FLEET_LANES: usize = 20;

/// Data of several entities (machines, patients): the [`Episode`]s of every signal of each
/// of the (at most [`FLEET_LANES`]) entities with the most, one lane per entity, most first,
/// over their ranges of `part` on one time axis (the data's clock: calendar time, or time
/// since each entity's own start where that is what the data writes), coloured as
/// [`save_episode_chart`] colours them, the longest drawn first so that a short one over it
/// shows; `None` where fewer than two entities have one.
pub fn fleet_episode_timeline(
    episodes: &[Episode],
    data: &PreparedSeries,
    part: &[Range<usize>],
) -> Option<TimelineChart> {
    let mut per_entity = vec![0usize; data.entities.len()];
    for e in episodes {
        if let Some(count) = per_entity.get_mut(e.entity) {
            *count += 1;
        }
    }
    let with_any = per_entity.iter().filter(|&&n| n > 0).count();
    if with_any < 2 {
        return None;
    }
    let mut shown: Vec<usize> = (0..per_entity.len()).filter(|&i| per_entity[i] > 0).collect();
    shown.sort_by_key(|&i| (std::cmp::Reverse(per_entity[i]), i));
    shown.truncate(FLEET_LANES);
    let ranges: Vec<Range<usize>> = shown
        .iter()
        .map(|&i| part.iter().find(|r| data.entity_index(r.start) == i).cloned().unwrap_or(data.entities[i].1.clone()))
        .collect();
    let first = ranges.iter().min_by_key(|r| data.step_time(r.start))?.start;
    // a range's or an episode's end: its last step's bin's end (the step after it may be
    // another entity's)
    let bin = data.grid.bin_seconds;
    let (t0, t1) =
        (data.step_time(first), ranges.iter().map(|r| data.step_time(r.end.max(r.start + 1) - 1) + bin).max()?);
    let (unit, per) = if t1 - t0 >= 72 * 3600 { ("days", 86_400.0) } else { ("hours", 3_600.0) };
    let x = |step: usize| (data.step_time(step) - t0) as f64 / per;
    let bin_x = bin as f64 / per;
    let lane: std::collections::HashMap<usize, usize> = shown.iter().enumerate().map(|(l, &i)| (i, l)).collect();
    let mut spans: Vec<(usize, usize, f64, f64)> = episodes
        .iter()
        .filter_map(|e| lane.get(&e.entity).map(|&l| (l, kind(e), x(e.first), x(e.last) + bin_x)))
        .collect();
    // the longest drawn first: a short episode of another signal stays visible over a long one
    spans.sort_by(|a, b| (b.3 - b.2).total_cmp(&(a.3 - a.2)));
    let lanes = shown.iter().map(|&i| format!("{} ({})", data.entities[i].0, per_entity[i])).collect();
    let of = if with_any > shown.len() { format!("the {} with most of ", shown.len()) } else { String::new() };
    Some(TimelineChart {
        title: format!(
            "alarm episodes by entity: {of}{with_any} entities with any ({} episodes in all)",
            per_entity.iter().sum::<usize>()
        ),
        x_label: format!("{unit} from {}", data.step_label(first).1),
        x_range: (0.0, (t1 - t0) as f64 / per),
        lanes,
        kinds: EPISODE_KINDS.map(String::from).to_vec(),
        spans,
    })
}

/// [`fleet_episode_timeline`] as a PNG at `path`, if there is one to draw: whether it was.
///
/// # Errors
/// The file cannot be written.
pub fn save_fleet_episode_chart(
    episodes: &[Episode],
    data: &PreparedSeries,
    part: &[Range<usize>],
    path: &Path,
) -> Result<bool> {
    let Some(chart) = fleet_episode_timeline(episodes, data, part) else { return Ok(false) };
    let height = (110 + 26 * chart.lanes.len()).max(300);
    chart.save(path, 1000, height)?;
    Ok(true)
}

/// The model's most surprising value (of target `target`, or of any) and the days around
/// it (its target, its entity; 72 steps before it and 24 after, those scored): the values,
/// the values expected with their band (`expected` says what they are), and the values
/// scored above `threshold` marked, in original units, as a PNG.
///
/// # Errors
/// Nothing scored (of that target); the file cannot be written.
pub fn save_anomaly_chart(
    scored: &[ScoredValue],
    data: &PreparedSeries,
    (targets, target): (&[String], Option<usize>),
    (threshold, expected): (f32, &str),
    path: &Path,
) -> Result<()> {
    let top = scored
        .iter()
        .filter(|v| target.is_none_or(|t| v.target == t))
        .max_by(|a, b| a.surprise.total_cmp(&b.surprise))
        .ok_or_else(|| Error::invalid("anomaly chart", "no value was scored"))?;
    let entity = data.entity_of(top.step);
    let near = |v: &&ScoredValue| {
        v.target == top.target && entity.contains(&v.step) && v.step + 72 >= top.step && v.step <= top.step + 24
    };
    let shown: Vec<&ScoredValue> = scored.iter().filter(near).collect();
    let x = |v: &ScoredValue| v.step as f64 - top.step as f64;
    let (name, (_, time)) = (&targets[top.target], data.step_label(top.step));
    LineChart {
        title: format!(
            "{name}: the most surprising value, {time}: {} where {:.4} was expected (s = {:.1})",
            top.value, top.expected, top.surprise
        ),
        x_label: format!("steps from it ({} s each)", data.grid.bin_seconds),
        y_label: format!("{name} (original units)"),
        log_y: false,
        bands: vec![Band {
            name: "its band".into(),
            points: shown.iter().map(|v| (x(v), f64::from(v.low), f64::from(v.high))).collect(),
        }],
        series: vec![
            Series {
                name: "value".into(),
                points: shown.iter().map(|v| (x(v), f64::from(v.value))).collect(),
                style: Style::Line,
            },
            Series {
                name: expected.into(),
                points: shown.iter().map(|v| (x(v), f64::from(v.expected))).collect(),
                style: Style::Dashed,
            },
            Series {
                name: format!("surprise above {threshold}"),
                points: shown.iter().filter(|v| v.surprise > threshold).map(|v| (x(v), f64::from(v.value))).collect(),
                style: Style::Points,
            },
        ],
    }
    .save(path, 900, 420)
}
