//! Why a schedule or time zone was refused, worded to follow a config key path.

use std::fmt;

/// A refused cron expression or time zone name.
///
/// `Display` is one line without the expression itself, so that a config loader can print
/// `syncs[0].schedule: day-of-week: 8 is out of range 0-7`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "the schedule is empty; write 5 fields (minute hour day-of-month month day-of-week) or a macro such as @daily"
    )]
    Empty,
    #[error("expected 5 fields (minute hour day-of-month month day-of-week), found {found}")]
    FieldCount { found: usize },
    #[error("{field}: {problem}")]
    Field { field: CronField, problem: FieldProblem },
    #[error("@every is not a cron schedule; use `interval:` for a fixed interval")]
    Every,
    #[error("unknown macro `{name}`; use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly")]
    UnknownMacro { name: String },
    #[error("a time zone prefix (`{prefix}`) is not allowed in the schedule; set the time zone on its own")]
    TimeZonePrefix { prefix: String },
    #[error("unknown time zone `{name}`; use an IANA name such as UTC or Europe/Berlin")]
    UnknownTimeZone { name: String },
    /// The `cron` crate refused an expression built here: a bug in this module, not in the input.
    #[error("internal error: the cron library refused `{quartz}`: {message}")]
    Compile { quartz: String, message: String },
}

/// One of the five fields of a cron expression, named as users know them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronField {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl fmt::Display for CronField {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
        })
    }
}

/// What is wrong inside one field; each variant quotes the text the user wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    #[error("{text} is out of range {min}-{max}")]
    OutOfRange { text: String, min: u32, max: u32 },
    #[error("`{text}` is not {expected}")]
    NotAValue { text: String, expected: &'static str },
    #[error("step `{text}` is not a number")]
    BadStep { text: String },
    #[error("step must be at least 1 in `{text}`")]
    ZeroStep { text: String },
    #[error("range `{text}` runs backwards (its start is after its end)")]
    ReversedRange { text: String },
    #[error("`{text}` is not a value, a range a-b or a step */n, a-b/n or a/n")]
    Malformed { text: String },
    #[error("empty item in the list `{text}`")]
    EmptyItem { text: String },
    #[error("no selected month has a day {day}, so the schedule never fires")]
    NoSuchDay { day: u32 },
}
