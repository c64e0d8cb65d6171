//! Turns parsed fields into schedules of the `cron` crate, which speaks Quartz.
//!
//! Quartz differs from Kubernetes cron in three ways that matter here: a seconds field
//! comes first, day-of-week runs 1-7 with Sunday = 1, and day-of-month and day-of-week
//! always combine with AND. Every field is written out as explicit numbers, so nothing
//! depends on how the `cron` crate reads names, ranges or steps.

use std::str::FromStr;

use super::error::ScheduleError;
use super::expression::{FieldSet, Fields};

/// One Quartz schedule, or two whose union is the Kubernetes schedule (the OR rule).
pub(super) fn compile(fields: &Fields) -> Result<Vec<::cron::Schedule>, ScheduleError> {
    quartz_expressions(fields)
        .into_iter()
        .map(|quartz| {
            ::cron::Schedule::from_str(&quartz).map_err(|error| ScheduleError::Compile {
                message: error.to_string(),
                quartz,
            })
        })
        .collect()
}

/// robfig's rule (`dayMatches`): if either day field is a star, a day must match both
/// (which is then just the other one); if both are restricted, matching either is enough.
/// The OR case becomes a day-of-month-only and a day-of-week-only schedule; the caller
/// takes the earlier of their next fire times.
pub(super) fn quartz_expressions(fields: &Fields) -> Vec<String> {
    let minute = numbers(fields.minute, |value| value);
    let hour = numbers(fields.hour, |value| value);
    let month = numbers(fields.month, |value| value);
    let day_of_month = numbers(fields.day_of_month, |value| value);
    let day_of_week = numbers(fields.day_of_week, |sunday_zero| sunday_zero + 1);
    let with_days =
        |day_of_month: &str, day_of_week: &str| format!("0 {minute} {hour} {day_of_month} {month} {day_of_week}");
    if fields.day_of_month.star || fields.day_of_week.star {
        vec![with_days(&day_of_month, &day_of_week)]
    } else {
        vec![with_days(&day_of_month, "*"), with_days("*", &day_of_week)]
    }
}

/// `*` for a star field, else the selected values as a comma list.
fn numbers(set: FieldSet, to_quartz: impl Fn(u32) -> u32) -> String {
    if set.star {
        return "*".to_owned();
    }
    set.values()
        .map(|value| to_quartz(value).to_string())
        .collect::<Vec<_>>()
        .join(",")
}
