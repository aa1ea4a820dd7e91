//! A minimal argument parser: positional words and `--name value` options.

/// Parsed command line.
pub struct Args {
    pub positional: Vec<String>,
    pub flags: Vec<(String, String)>,
}

/// Splits `raw` into positional words and `--name value` pairs.
pub fn parse_args(raw: &[String]) -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut flags = Vec::new();
    let mut it = raw.iter();
    while let Some(a) = it.next() {
        if let Some(name) = a.strip_prefix("--") {
            let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            if value.starts_with("--") {
                return Err(format!("--{name} needs a value before {value}"));
            }
            flags.push((name.to_string(), value.clone()));
        } else {
            positional.push(a.clone());
        }
    }
    Ok(Args { positional, flags })
}

impl Args {
    /// The value of `--name` parsed as `T`, or `default`; an option not in `known` is an error.
    pub fn get<T: std::str::FromStr>(&self, name: &str, known: &[&str], default: T) -> Result<T, String> {
        if let Some((bad, _)) = self.flags.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            let list: Vec<String> = known.iter().map(|k| format!("--{k}")).collect();
            return Err(format!("unknown option --{bad}; this command takes {}", list.join(", ")));
        }
        match self.flags.iter().rev().find(|(n, _)| n == name) {
            None => Ok(default),
            Some((_, v)) => v.parse().map_err(|_| format!("--{name}: `{v}` is not valid")),
        }
    }
}
