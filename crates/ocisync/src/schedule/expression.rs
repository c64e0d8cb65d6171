//! Parses a 5-field Kubernetes CronJob expression into explicit value sets.
//!
//! The grammar and meaning follow robfig/cron v3's standard parser, which Kubernetes uses
//! to validate and run CronJobs, with these deliberate differences:
//! - day-of-week also accepts `7` for Sunday (Vixie cron does; robfig's range is 0-6);
//! - an empty list item (`1,,2`), `*-5` and a day-of-month that no selected month has
//!   (`0 0 30 2 *`) are errors, where robfig silently drops, ignores or never fires.

use super::error::{CronField, FieldProblem, ScheduleError};

/// The values one field selects, as a bit set (bit `n` set = value `n` selected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FieldSet {
    pub bits: u64,
    /// Written as `*` or `?` without a step above 1. For day-of-month and day-of-week this
    /// is robfig's "star bit": only when neither day field has it do the two combine with
    /// OR. So `*/2` counts as restricted, unlike Vixie cron, where any leading `*` does.
    pub star: bool,
}

impl FieldSet {
    pub fn values(self) -> impl Iterator<Item = u32> {
        (0..64).filter(move |value| self.bits & (1u64 << value) != 0)
    }
}

/// The five fields, with day-of-week folded to 0-6 (Sunday = 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fields {
    pub minute: FieldSet,
    pub hour: FieldSet,
    pub day_of_month: FieldSet,
    pub month: FieldSet,
    pub day_of_week: FieldSet,
}

struct FieldSpec {
    field: CronField,
    min: u32,
    max: u32,
    /// Where `*` and `a/n` end. Only day-of-week differs from `max`: `*` means 0-6 there,
    /// so `7` is reachable only when written.
    star_max: u32,
    /// Lower-case names for `min`, `min + 1`, … (three letters, as robfig accepts).
    names: &'static [&'static str],
    expected: &'static str,
}

const MINUTE: FieldSpec = FieldSpec {
    field: CronField::Minute,
    min: 0,
    max: 59,
    star_max: 59,
    names: &[],
    expected: "a number",
};
const HOUR: FieldSpec = FieldSpec {
    field: CronField::Hour,
    min: 0,
    max: 23,
    star_max: 23,
    names: &[],
    expected: "a number",
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    field: CronField::DayOfMonth,
    min: 1,
    max: 31,
    star_max: 31,
    names: &[],
    expected: "a number",
};
const MONTH: FieldSpec = FieldSpec {
    field: CronField::Month,
    min: 1,
    max: 12,
    star_max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    expected: "a number 1-12 or a month name (JAN-DEC)",
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    field: CronField::DayOfWeek,
    min: 0,
    max: 7,
    star_max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    expected: "a number 0-7 or a day name (SUN-SAT)",
};

/// The 5-field form of each macro robfig accepts (`@every` is handled by the caller).
pub(super) fn expand_macro(name: &str) -> Option<&'static str> {
    match name {
        "@yearly" | "@annually" => Some("0 0 1 1 *"),
        "@monthly" => Some("0 0 1 * *"),
        "@weekly" => Some("0 0 * * 0"),
        "@daily" | "@midnight" => Some("0 0 * * *"),
        "@hourly" => Some("0 * * * *"),
        _ => None,
    }
}

/// Parses exactly five whitespace-separated fields.
pub(super) fn parse_fields(text: &str) -> Result<Fields, ScheduleError> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [minute, hour, day_of_month, month, day_of_week] = parts[..] else {
        return Err(ScheduleError::FieldCount { found: parts.len() });
    };
    let mut day_of_week = parse_field(day_of_week, &DAY_OF_WEEK)?;
    // 7 is Sunday's second name; the cron library knows only one Sunday.
    if day_of_week.bits & (1 << 7) != 0 {
        day_of_week.bits = (day_of_week.bits & !(1 << 7)) | 1;
    }
    let fields = Fields {
        minute: parse_field(minute, &MINUTE)?,
        hour: parse_field(hour, &HOUR)?,
        day_of_month: parse_field(day_of_month, &DAY_OF_MONTH)?,
        month: parse_field(month, &MONTH)?,
        day_of_week,
    };
    check_some_day_exists(&fields)?;
    Ok(fields)
}

/// With day-of-week unrestricted, days combine with AND, so a day-of-month that none of
/// the selected months has (`0 0 31 4 *`) would never fire; say so at load time.
fn check_some_day_exists(fields: &Fields) -> Result<(), ScheduleError> {
    // With both restricted, days combine with OR and the weekdays still fire.
    if fields.day_of_month.star || !fields.day_of_week.star {
        return Ok(());
    }
    let Some(first_day) = fields.day_of_month.values().next() else {
        return Ok(());
    };
    let longest_month = fields
        .month
        .values()
        .map(|month| match month {
            2 => 29,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        })
        .max()
        .unwrap_or(31);
    if first_day > longest_month {
        return Err(ScheduleError::Field {
            field: CronField::DayOfMonth,
            problem: FieldProblem::NoSuchDay { day: first_day },
        });
    }
    Ok(())
}

fn parse_field(text: &str, spec: &FieldSpec) -> Result<FieldSet, ScheduleError> {
    let field_error = |problem| ScheduleError::Field {
        field: spec.field,
        problem,
    };
    let mut set = FieldSet { bits: 0, star: false };
    for item in text.split(',') {
        if item.is_empty() {
            return Err(field_error(FieldProblem::EmptyItem { text: text.to_owned() }));
        }
        let parsed = parse_item(item, spec).map_err(field_error)?;
        set.bits |= parsed.bits;
        set.star |= parsed.star;
    }
    Ok(set)
}

/// One list item: `*`, `?`, `a`, `a-b`, each optionally followed by `/n`.
fn parse_item(item: &str, spec: &FieldSpec) -> Result<FieldSet, FieldProblem> {
    let malformed = || FieldProblem::Malformed { text: item.to_owned() };
    let (range, step) = match item.split_once('/') {
        None => (item, None),
        Some((_, step_text)) if step_text.contains('/') => return Err(malformed()),
        Some((range, step_text)) => (range, Some(parse_step(step_text, item)?)),
    };

    let (start, end, star) = if range == "*" || range == "?" {
        (spec.min, spec.star_max, step.unwrap_or(1) <= 1)
    } else {
        let (low, high) = match range.split_once('-') {
            None => (range, None),
            Some((_, high)) if high.contains('-') => return Err(malformed()),
            Some((low, high)) => (low, Some(high)),
        };
        let is_value = |text: &str| !text.is_empty() && text != "*" && text != "?";
        if !is_value(low) || !high.is_none_or(is_value) {
            return Err(malformed());
        }
        let start = parse_value(low, spec)?;
        let end = match (high, step) {
            (Some(high), _) => parse_value(high, spec)?,
            // `a/n` means "from a to the end, every n" (robfig and Vixie agree).
            (None, Some(_)) => spec.star_max.max(start),
            (None, None) => start,
        };
        (start, end, false)
    };
    if start > end {
        return Err(FieldProblem::ReversedRange { text: range.to_owned() });
    }
    let bits = (start..=end)
        .step_by(step.unwrap_or(1) as usize)
        .fold(0u64, |bits, value| bits | (1u64 << value));
    Ok(FieldSet { bits, star })
}

fn parse_step(text: &str, item: &str) -> Result<u32, FieldProblem> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(FieldProblem::BadStep { text: text.to_owned() });
    }
    match text.parse::<u32>() {
        Ok(0) => Err(FieldProblem::ZeroStep { text: item.to_owned() }),
        Ok(step) => Ok(step),
        // Larger than any field: like a step of 64, it selects only the start.
        Err(_) => Ok(64),
    }
}

/// A number or (for month and day-of-week) a case-insensitive three-letter name.
fn parse_value(text: &str, spec: &FieldSpec) -> Result<u32, FieldProblem> {
    if text.bytes().all(|byte| byte.is_ascii_digit()) {
        let out_of_range = || FieldProblem::OutOfRange {
            text: text.to_owned(),
            min: spec.min,
            max: spec.max,
        };
        let value = text.parse::<u32>().map_err(|_| out_of_range())?;
        if value < spec.min || value > spec.max {
            return Err(out_of_range());
        }
        return Ok(value);
    }
    let lower = text.to_ascii_lowercase();
    match spec.names.iter().position(|name| *name == lower) {
        Some(index) => Ok(spec.min + index as u32),
        None => Err(FieldProblem::NotAValue {
            text: text.to_owned(),
            expected: spec.expected,
        }),
    }
}
