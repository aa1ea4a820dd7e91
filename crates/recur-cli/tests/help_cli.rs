//! `--help`, `-h` and `recur help`: the usage, or one command's entries of it, on stdout
//! with success; an unknown command named for help is refused.

use std::process::Command;

fn recur(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_recur")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn help_prints_the_usage_or_one_commands_entries() {
    for args in [&["--help"][..], &["-h"], &["help"], &[]] {
        let (ok, stdout, stderr) = recur(args);
        assert!(ok, "{args:?}: {stderr}");
        assert!(stdout.starts_with("usage:\n  recur demo"), "{args:?}: {stdout}");
        assert!(stdout.contains("  recur bench"), "{args:?}: the whole usage");
    }
    for args in [&["train", "--help"][..], &["help", "train"], &["train", "--config", "x.toml", "-h"]] {
        let (ok, stdout, stderr) = recur(args);
        assert!(ok, "{args:?}: {stderr}");
        assert!(stdout.starts_with("usage:\n  recur train --config FILE"), "{args:?}: {stdout}");
        assert!(!stdout.contains("recur eval"), "{args:?}: only train's entry: {stdout}");
    }
    let (ok, stdout, _) = recur(&["text", "--help"]);
    assert!(ok && stdout.contains("  recur text [--data FILE]") && stdout.contains("  recur text predict"), "{stdout}");

    let (ok, _, stderr) = recur(&["help", "tarin"]);
    assert!(!ok && stderr.starts_with("recur: unknown command `tarin`"), "{stderr}");
}
