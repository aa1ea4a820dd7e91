//! How the commands word counts and lists of signals.

/// `PM2.5 12`, one per signal whose count is not zero.
pub(crate) fn nonzero_counts(signals: &[String], counts: &[usize]) -> Vec<String> {
    signals.iter().zip(counts).filter(|(_, &n)| n > 0).map(|(s, n)| format!("{s} {n}")).collect()
}

/// `wd (16 values)`, `station (1 value)`.
pub(crate) fn plural_values(column: &str, n: usize) -> String {
    format!("{column} ({})", plural(n, "value"))
}

/// `1 signal`, `11 signals`.
pub(crate) fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// `all 11 signals`, or the one signal by name.
pub(crate) fn every_signal(signals: &[String]) -> String {
    match signals {
        [one] => format!("`{one}`"),
        all => format!("all {} signals", all.len()),
    }
}
