//! Durations in the config (`500ms`, `30s`, `1h30m`) and the range each kind may take.
//!
//! A bound turns a typo such as `interval: 99999999999d` into a config error with its
//! key path. Unbounded, such a value overflows the arithmetic of fire times and
//! deadlines: `run` found no future fire time after one pass and exited 0, which under
//! Kubernetes is a restart loop.

use std::time::Duration;

use super::Checker;

/// The range one kind of duration may take.
#[derive(Debug, Clone, Copy)]
pub(super) struct DurationRange {
    pub shortest: Duration,
    pub longest: Duration,
}

/// The shortest duration that is more than none.
const MORE_THAN_ZERO: Duration = Duration::from_nanos(1);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// A year as humantime reads `1y`: 365.25 days, so `interval: 1y` is accepted.
const YEAR: Duration = Duration::from_secs(31_557_600);

/// Retry delays and cool-downs: zero means none; a day is already far more than any
/// registry asks for (a `Retry-After` is honoured up to 10 × `max_delay`).
pub(super) const WAIT: DurationRange = DurationRange {
    shortest: Duration::ZERO,
    longest: DAY,
};

/// Connect and read timeouts: nothing connects or reads in no time.
pub(super) const TIMEOUT: DurationRange = DurationRange {
    shortest: MORE_THAN_ZERO,
    longest: DAY,
};

/// The time between passes (`interval`).
pub(super) const INTERVAL: DurationRange = DurationRange {
    shortest: Duration::from_secs(1),
    longest: YEAR,
};

/// `tags.min_age`: no age is none (leave the key out); a year is already longer than
/// any tag waits to be trusted.
pub(super) const MIN_AGE: DurationRange = DurationRange {
    shortest: MORE_THAN_ZERO,
    longest: YEAR,
};

/// `max_pass_duration`: a first pass over a large upstream may take days.
pub(super) const PASS_LIMIT: DurationRange = DurationRange {
    shortest: MORE_THAN_ZERO,
    longest: YEAR,
};

impl Checker {
    /// A retry delay or cool-down (see [`WAIT`]); problems are recorded and the default used.
    pub(super) fn duration(&mut self, key: &str, text: Option<&str>, default: Duration) -> Duration {
        self.duration_in(key, text, default, WAIT)
    }

    /// A timeout that may be absent, such as a credential helper's (see [`TIMEOUT`]):
    /// zero is refused, since nothing finishes in no time.
    pub(super) fn optional_duration(&mut self, key: &str, text: Option<&str>) -> Option<Duration> {
        self.optional_duration_in(key, text, TIMEOUT)
    }

    /// A duration that may be absent, in `range`.
    pub(super) fn optional_duration_in(
        &mut self,
        key: &str,
        text: Option<&str>,
        range: DurationRange,
    ) -> Option<Duration> {
        let text = text?;
        let problems = self.problems.len();
        let duration = self.duration_in(key, Some(text), Duration::ZERO, range);
        (self.problems.len() == problems).then_some(duration)
    }

    /// A duration such as `500ms`, `30s` or `5m` in `range`; problems are recorded
    /// and the default used.
    pub(super) fn duration_in(
        &mut self,
        key: &str,
        text: Option<&str>,
        default: Duration,
        range: DurationRange,
    ) -> Duration {
        let Some(text) = text else {
            return default;
        };
        match humantime::parse_duration(text) {
            Ok(duration) if duration < range.shortest => {
                let message = if range.shortest == MORE_THAN_ZERO {
                    "must be more than 0s".to_owned()
                } else {
                    format!("must be at least {}", humantime::format_duration(range.shortest))
                };
                self.problem(key.to_owned(), message);
                default
            }
            Ok(duration) if duration > range.longest => {
                self.problem(
                    key.to_owned(),
                    format!(
                        "{text} is too long: at most {}",
                        humantime::format_duration(range.longest)
                    ),
                );
                default
            }
            Ok(duration) => duration,
            Err(error) => {
                self.problem(
                    key.to_owned(),
                    format!("invalid duration \"{text}\": {error} (e.g. 30s, 5m, 1h30m)"),
                );
                default
            }
        }
    }
}
