//! Running a contender as a child process: wall time, peak RSS and a deadline.
//!
//! Peak RSS comes from GNU time (`/usr/bin/time -f %M`), which reads the child's own
//! `wait4` rusage. `getrusage(RUSAGE_CHILDREN)` would not do: it is the maximum over all
//! children ever waited for, and the registries the bench starts are children too.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// GNU time, which reports the peak RSS of the command it runs.
pub const GNU_TIME: &str = "/usr/bin/time";

/// How often a running child is checked for exit.
const POLL: Duration = Duration::from_millis(5);

/// What one run of a child process measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timed {
    /// From spawn to exit.
    pub wall: Duration,
    /// Peak resident set size of the command, in KiB (0 if GNU time gave none).
    pub peak_rss_kib: u64,
    /// CPU time the command used, user plus system (zero if GNU time gave none).
    pub cpu: Duration,
    /// Exit code (`None`: killed, e.g. at the deadline).
    pub exit_code: Option<i32>,
    /// The last lines of the child's stderr, for failures.
    pub stderr_tail: String,
}

impl Timed {
    /// Whether the child exited 0.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// Runs `program args...` under GNU time in `work_dir` (its stderr and the RSS file go
/// there), killing it at `deadline`.
pub fn run_timed(
    program: &Path,
    args: &[String],
    envs: &[(&str, &str)],
    work_dir: &Path,
    deadline: Duration,
) -> std::io::Result<Timed> {
    let rss_file = work_dir.join("peak-rss-kib");
    let stderr_file = work_dir.join("stderr.log");
    let mut command = Command::new(GNU_TIME);
    command
        .arg("-f")
        .arg("%U %S\n%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_file)?);
    for (key, value) in envs {
        command.env(key, value);
    }
    let started = Instant::now();
    let mut child = command.spawn()?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(POLL);
    };
    let wall = started.elapsed();
    let usage = std::fs::read_to_string(&rss_file).unwrap_or_default();
    let peak_rss_kib = parse_peak_rss(&usage).unwrap_or(0);
    let cpu = parse_cpu(&usage).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_file).unwrap_or_default();
    Ok(Timed {
        wall,
        peak_rss_kib,
        cpu,
        exit_code: status.and_then(|s| s.code()),
        stderr_tail: tail(&stderr, 15),
    })
}

/// GNU time's `-o` file: possibly a "Command exited with non-zero status" line, then
/// the `%M` value on the last line.
pub fn parse_peak_rss(text: &str) -> Option<u64> {
    text.lines().rev().find_map(|line| line.trim().parse().ok())
}

/// The `%U %S` line of GNU time's `-o` file: user plus system seconds.
pub fn parse_cpu(text: &str) -> Option<Duration> {
    text.lines().rev().find_map(|line| {
        let (user, system) = line.trim().split_once(' ')?;
        let seconds = user.parse::<f64>().ok()? + system.parse::<f64>().ok()?;
        Some(Duration::from_secs_f64(seconds))
    })
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// CPU time (user plus system) a process has used so far, from `/proc/PID/stat`
/// (`"self"` for this process); `None` where that cannot be read.
pub fn cpu_of(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / CLOCK_TICKS_PER_SECOND))
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux architecture the bench runs on.
const CLOCK_TICKS_PER_SECOND: u64 = 100;
