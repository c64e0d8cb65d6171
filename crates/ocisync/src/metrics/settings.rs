//! What the config says about a sync that alerts compare against: how long a pass may
//! take and how often the sync runs.

use std::time::Duration;

use crate::schedule::Schedule;
use chrono::{DateTime, TimeDelta, Utc};

use crate::config::SyncConfig;

/// One sync as the metrics know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    pub name: String,
    /// `max_pass_duration`: `/readyz` and the "pass running too long" alert.
    pub max_pass_duration: Option<Duration>,
    /// The longest wait between two passes the schedule allows: the basis of the
    /// "mirror is stale" alert. `None` without a schedule (a CronJob's own).
    pub schedule_interval: Option<Duration>,
}

impl SyncSettings {
    pub fn of(sync: &SyncConfig) -> SyncSettings {
        SyncSettings {
            name: sync.name.clone(),
            max_pass_duration: sync.max_pass_duration,
            schedule_interval: sync
                .schedule
                .as_ref()
                .and_then(|schedule| longest_gap(schedule, Utc::now())),
        }
    }

    /// A sync with nothing configured (tests).
    #[cfg(test)]
    pub fn named(name: &str) -> SyncSettings {
        SyncSettings {
            name: name.to_owned(),
            max_pass_duration: None,
            schedule_interval: None,
        }
    }
}

/// Fire times looked at: a week and a day covers weekday-only schedules (the weekend
/// is their longest gap); at least this many gaps cover monthly ones.
const LOOK_AHEAD: TimeDelta = TimeDelta::days(8);
const MIN_GAPS: usize = 3;
/// Every minute for eight days, and then some: a bound on the work, never reached by
/// a schedule that still has gaps to find.
const MAX_FIRE_TIMES: usize = 20_000;

/// The longest time between consecutive fire times from `now` on: the interval, or
/// for a cron schedule the longest gap over the coming week (`0 2 * * 1-5` waits three
/// days over a weekend, and a mirror that old is not yet stale).
fn longest_gap(schedule: &Schedule, now: DateTime<Utc>) -> Option<Duration> {
    if let Schedule::Interval(interval) = schedule {
        return Some(*interval);
    }
    let mut previous = schedule.next_after(now)?;
    let mut longest: Option<TimeDelta> = None;
    for gaps in 1..=MAX_FIRE_TIMES {
        let Some(next) = schedule.next_after(previous) else {
            break;
        };
        let gap = next - previous;
        longest = Some(longest.map_or(gap, |longest| longest.max(gap)));
        previous = next;
        if gaps >= MIN_GAPS && next - now > LOOK_AHEAD {
            break;
        }
    }
    longest.and_then(|gap| gap.to_std().ok())
}

#[cfg(test)]
mod tests {
    use crate::schedule::CronSchedule;
    use chrono::TimeZone as _;

    use super::*;

    fn cron(expression: &str) -> Schedule {
        Schedule::Cron(CronSchedule::parse(expression, chrono_tz::UTC).unwrap())
    }

    #[test]
    fn the_longest_gap_of_a_schedule() {
        // A Wednesday.
        let now = Utc.with_ymd_and_hms(2026, 3, 4, 10, 0, 0).unwrap();
        let hours = |hours: u64| Some(Duration::from_secs(hours * 3600));
        assert_eq!(
            longest_gap(&Schedule::Interval(Duration::from_secs(90)), now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(longest_gap(&cron("*/15 * * * *"), now), Some(Duration::from_secs(900)));
        assert_eq!(longest_gap(&cron("0 2 * * *"), now), hours(24));
        // Weekdays: the weekend is three days.
        assert_eq!(longest_gap(&cron("0 2 * * 1-5"), now), hours(72));
        // Monthly: the longest month of the next three (May).
        assert_eq!(longest_gap(&cron("0 0 1 * *"), now), hours(31 * 24));
    }
}
