//! `recur inspect`: a look at data files before a run reads them.

use recur::data::inspect::TextAmongNumbers;
use recur::data::{CalendarCycle, EpochUnit, Inspection, Layout, MissingValues, TimeZone};

use crate::args::Args;
use crate::wording::plural_values;

/// `recur inspect FILE... [--bin SECONDS] [--missing-values A,B] [--time-unit s|ms|us|ns]
/// [--time-zone ZONE [--naive-times local]]`: each file's layout (and how it was read: separator, encoding),
/// entities, intervals and missingness per signal, what the hour, weekday and month explain
/// of each (in local time of ZONE: `data.time_zone`), its categorical columns, and the
/// columns whose few text cells look like marks of "no value".
pub fn inspect(args: &Args) -> Result<(), String> {
    if args.positional.len() < 2 {
        return Err("usage: recur inspect FILE... [--bin SECONDS] [--missing-values A,B] [--time-unit s|ms|us|ns] \
             [--time-zone ZONE [--naive-times local]] (CSV or Parquet, wide or long)"
            .into());
    }
    let known = ["bin", "missing-values", "time-unit", "time-zone", "naive-times"];
    let bin: i64 = args.get("bin", &known, 0)?;
    let unit: String = args.get("time-unit", &known, "s".to_string())?;
    let unit = EpochUnit::parse(&unit).ok_or(format!("--time-unit: `{unit}` is none of s, ms, us, ns"))?;
    let marks: String = args.get("missing-values", &known, String::new())?;
    let marks: Vec<String> = marks.split(',').filter(|m| !m.trim().is_empty()).map(String::from).collect();
    let missing = MissingValues::new(&marks, &Default::default()).map_err(|e| e.to_string())?;
    let zone = match args.get("time-zone", &known, String::new())? {
        zone if zone.is_empty() => None,
        zone => Some(TimeZone::resolve(&zone).map_err(|e| format!("--time-zone: {e}"))?),
    };
    let naive_local = match args.get("naive-times", &known, "utc".to_string())?.as_str() {
        "utc" => false,
        "local" if zone.is_some() => true,
        "local" => return Err("--naive-times local: the times are local to --time-zone ZONE".into()),
        other => return Err(format!("--naive-times {other}: `utc` (the default) or `local`")),
    };
    for file in &args.positional[1..] {
        let report =
            Inspection::read_in_zone(file, (bin > 0).then_some(bin), &missing, unit, zone.as_ref(), naive_local)
                .map_err(|e| e.to_string())?;
        let mut notes = Vec::new();
        match report.delimiter {
            ',' => {}
            '\t' => notes.push("tab-separated, decimal commas read".to_string()),
            d => notes.push(format!("`{d}`-separated, decimal commas read")),
        }
        if report.windows_1252 {
            notes.push("not UTF-8: read as Windows-1252".into());
        }
        let how_read = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) };
        let layout = match &report.layout {
            Layout::Wide { .. } => format!("wide{how_read}"),
            Layout::Long(c) if c.entity.is_empty() => format!("long ({}, {}, {}){how_read}", c.time, c.signal, c.value),
            Layout::Long(c) => format!("long ({}, {}, {}; entity {}){how_read}", c.time, c.signal, c.value, c.entity),
        };
        println!(
            "{file}: {layout}, {} entit{}, {} rows, median interval {} s, longest gap {} s",
            report.entities,
            if report.entities == 1 { "y" } else { "ies" },
            report.rows,
            report.median_interval,
            report.longest_gap
        );
        let grid = format!("empty on the {}-s grid", report.bin_seconds);
        // how much of each signal's variance its hour of the day, weekday and month explain
        let cycles = report.calendar_shares.iter().any(Option::is_some);
        let explains = match cycles {
            true => format!(" {:>14} {:>9} {:>9}", "hour explains", "weekday", "month"),
            false => String::new(),
        };
        println!("  {:<20} {:>16} {:>28}{explains}", "signal", "missing in rows", grid);
        for (s, share) in report.signals.iter().zip(&report.calendar_shares) {
            let explains = match share {
                Some(c) => {
                    format!(
                        " {:>12.1} % {:>7.1} % {:>7.1} %",
                        100.0 * c.hour_of_day,
                        100.0 * c.weekday,
                        100.0 * c.month
                    )
                }
                None if cycles => format!(" {:>14} {:>9} {:>9}", "—", "—", "—"),
                None => String::new(),
            };
            println!(
                "  {:<20} {:>14.1} % {:>26.1} %{explains}",
                s.name,
                100.0 * s.missing_in_rows(),
                100.0 * s.empty_on_grid()
            );
        }
        println!("  {:<20} {:>16} {:>26.1} %", "all signals", "", 100.0 * report.empty_on_grid());
        let suggested = report.suggested_calendar(0.1);
        if !suggested.is_empty() {
            let what: Vec<String> = suggested
                .iter()
                .map(|(cycle, signals)| {
                    let by = match cycle {
                        CalendarCycle::Day => "the hour of the day",
                        CalendarCycle::Week => "the weekday",
                        CalendarCycle::Year => "the month",
                    };
                    let named: Vec<String> =
                        signals.iter().take(4).map(|(s, v)| format!("{:.0} % of {s}", 100.0 * v)).collect();
                    format!("{by} explains {}", named.join(", "))
                })
                .collect();
            let cycles: Vec<String> = suggested.iter().map(|(c, _)| format!("\"{}\"", c.name())).collect();
            println!("  calendar: {}: data.calendar = [{}] lets a model read them", what.join("; "), cycles.join(", "));
        }
        if let Layout::Wide { categorical } = &report.layout {
            if !categorical.is_empty() {
                let listed: Vec<String> = categorical.iter().map(|c| plural_values(c, report.categories(c))).collect();
                println!("  categorical (one-hot as data.categorical): {}", listed.join(", "));
            }
        }
        for column in &report.text_among_numbers {
            println!("  {}", text_among_numbers_note(column, report.place_unit));
        }
    }
    Ok(())
}

/// What `recur inspect` says of a column that holds more numbers than text.
fn text_among_numbers_note(column: &TextAmongNumbers, place_unit: &str) -> String {
    const SHOWN: usize = 5;
    let cells: usize = column.texts.iter().map(|t| t.1).sum();
    let mut listed: Vec<String> = column
        .texts
        .iter()
        .take(SHOWN)
        .map(|(text, count, first)| format!("`{text}` ×{count} (first on {place_unit} {first})"))
        .collect();
    if column.texts.len() > SHOWN {
        listed.push(format!("{} more", column.texts.len() - SHOWN));
    }
    let marks: Vec<&str> = column.texts.iter().take(SHOWN).map(|t| t.0.as_str()).collect();
    format!(
        "note: `{}` holds {} numbers and {cells} text cell{}: {}. Read as categorical here; if the text \
         means \"no value\", list it in data.missing_values (recur inspect --missing-values '{}' shows the result)",
        column.column,
        column.numbers,
        if cells == 1 { "" } else { "s" },
        listed.join(", "),
        marks.join(",")
    )
}
