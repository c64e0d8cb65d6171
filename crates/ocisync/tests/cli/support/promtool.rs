//! Prometheus' `promtool` (Debian's `prometheus` package; `make deps` installs it): the
//! linter of metric expositions, alert rules and their unit tests.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// What a promtool run said: whether it succeeded, and everything it printed.
struct Verdict {
    succeeded: bool,
    printed: String,
}

/// `promtool ARGS` in `dir`, `input` on its stdin.
fn run_promtool(args: &[&str], dir: &Path, input: &str) -> Verdict {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; `make deps` installs it)");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    Verdict {
        succeeded: output.status.success(),
        printed: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// `promtool ARGS` on files of `dir`, which must succeed; returns what it printed.
pub fn promtool(args: &[&str], dir: &Path) -> String {
    let verdict = run_promtool(args, dir, "");
    assert!(verdict.succeeded, "promtool {args:?}:\n{}", verdict.printed);
    verdict.printed
}

/// `promtool check metrics` reads the exposition from stdin and lints it (a counter
/// without `_total`, a unit in the wrong place, missing help): it must find nothing.
pub fn promtool_accepts_metrics(exposition: &str) {
    let verdict = run_promtool(&["check", "metrics"], Path::new("."), exposition);
    assert!(
        verdict.succeeded && verdict.printed.is_empty(),
        "promtool check metrics:\n{}\n--- input\n{exposition}",
        verdict.printed
    );
}
