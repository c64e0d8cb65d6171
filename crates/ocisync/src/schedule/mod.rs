//! When syncs run: Kubernetes CronJob expressions in a time zone, or a fixed interval.
//!
//! [`CronSchedule::parse`] reads the 5-field syntax users know from Kubernetes
//! (`expression.rs`), and [`CronSchedule::next_after`] answers with the `cron` crate,
//! which speaks Quartz (`quartz.rs` translates).
//!
//! Time zones and daylight saving time, as the `cron` crate does it with chrono-tz:
//! - fire times are wall-clock times in the schedule's zone (`0 2 * * *` in Europe/Berlin
//!   is 02:00 Berlin time, 00:00 UTC in summer and 01:00 UTC in winter);
//! - a wall-clock time that does not exist (skipped by a spring-forward) does not fire
//!   that day: `30 2 * * *` in Berlin skips the last Sunday of March;
//! - the search runs forward in wall-clock time from the wall-clock time of `after`, so
//!   when a fall-back repeats an hour, times already passed in the first pass are not
//!   fired again (a job at 02:30 fires once, at the first 02:30). Only when `after` itself
//!   lies in the repeated hour does a later match in that hour fire.
//! - the `cron` crate searches up to the year 2100; after that there is no next time.

mod error;
mod expression;
mod quartz;
#[cfg(test)]
mod tests;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

pub use error::ScheduleError;

/// When a sync runs.
#[derive(Debug, Clone)]
pub enum Schedule {
    Cron(CronSchedule),
    /// A fixed time between runs.
    Interval(Duration),
}

impl Schedule {
    /// The next run strictly after `after`, or `None` if there is none. An interval adds
    /// its duration (so a zero interval, which config loading should refuse, gives `after`).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron(cron) => cron.next_after(after),
            Schedule::Interval(interval) => after.checked_add_signed(TimeDelta::from_std(*interval).ok()?),
        }
    }
}

/// A validated cron expression with its time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    time_zone: Tz,
    /// One schedule, or two when day-of-month and day-of-week combine with OR.
    compiled: Vec<::cron::Schedule>,
}

impl CronSchedule {
    /// Parses a Kubernetes CronJob expression (5 fields or a macro such as `@daily`).
    pub fn parse(expression: &str, time_zone: Tz) -> Result<CronSchedule, ScheduleError> {
        let text = expression.trim();
        let fields_text = if text.is_empty() {
            return Err(ScheduleError::Empty);
        } else if text == "@every" || text.starts_with("@every ") {
            // robfig (and so Kubernetes, undocumented) accepts `@every 5m`; ocisync keeps
            // intervals in their own setting.
            return Err(ScheduleError::Every);
        } else if text.starts_with('@') {
            expression::expand_macro(text).ok_or_else(|| ScheduleError::UnknownMacro { name: text.to_owned() })?
        } else if let Some(prefix) = ["CRON_TZ=", "TZ="].into_iter().find(|prefix| text.starts_with(prefix)) {
            return Err(ScheduleError::TimeZonePrefix {
                prefix: prefix.to_owned(),
            });
        } else {
            text
        };
        let fields = expression::parse_fields(fields_text)?;
        Ok(CronSchedule {
            expression: expression.to_owned(),
            time_zone,
            compiled: quartz::compile(&fields)?,
        })
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local_after = after.with_timezone(&self.time_zone);
        self.compiled
            .iter()
            .filter_map(|schedule| {
                // In a fall-back fold the crate yields both instants of one wall-clock time,
                // the earlier first; that one may precede `after`, the later one cannot.
                schedule
                    .after(&local_after)
                    .take(2)
                    .find(|candidate| *candidate > local_after)
            })
            .min()
            .map(|next| next.with_timezone(&Utc))
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }
}

/// Reads an IANA time zone name such as `UTC` or `Europe/Berlin`.
pub fn parse_time_zone(name: &str) -> Result<Tz, ScheduleError> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| ScheduleError::UnknownTimeZone { name: name.to_owned() })
}
