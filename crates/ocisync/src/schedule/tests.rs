//! Tables of expressions with fire times worked out by hand from a calendar.
//!
//! Calendar anchors: 2026-01-01 is a Thursday, so 2026-01-02 Fri, 01-05 Mon, 01-09 Fri,
//! 01-12 Mon, 02-01 Sun, 07-01 Wed. Berlin switches to summer time on Sunday 2026-03-29
//! (02:00 CET becomes 03:00 CEST) and back on Sunday 2026-10-25 (03:00 CEST becomes
//! 02:00 CET). New York is on EST (-05:00) in January and EDT (-04:00) in July.

use super::error::{CronField, FieldProblem};
use super::quartz::quartz_expressions;
use super::*;
use chrono::FixedOffset;

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::<FixedOffset>::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("bad instant {text} in the table: {error}"))
        .with_timezone(&Utc)
}

/// Follows `next_after` from `from` and compares each fire time with `expected`.
fn check(expression: &str, zone: &str, from: &str, expected: &[&str]) {
    let time_zone = parse_time_zone(zone).unwrap();
    let schedule =
        CronSchedule::parse(expression, time_zone).unwrap_or_else(|error| panic!("`{expression}` refused: {error}"));
    let mut after = instant(from);
    for (index, want) in expected.iter().enumerate() {
        let got = schedule.next_after(after);
        assert_eq!(
            got,
            Some(instant(want)),
            "`{expression}` in {zone}, fire #{} after {after}: got {:?}",
            index + 1,
            got.map(|time| time.with_timezone(&time_zone).to_rfc3339())
        );
        after = instant(want);
    }
}

#[test]
fn weekdays_only() {
    // From Friday 03:00, after Friday's 02:00 run: the next run is Monday.
    check(
        "0 2 * * 1-5",
        "UTC",
        "2026-01-02T03:00:00Z", // Fri
        &[
            "2026-01-05T02:00:00Z", // Mon
            "2026-01-06T02:00:00Z", // Tue
            "2026-01-07T02:00:00Z", // Wed
            "2026-01-08T02:00:00Z", // Thu
            "2026-01-09T02:00:00Z", // Fri
            "2026-01-12T02:00:00Z", // Mon
        ],
    );
    check(
        "0 22 * * 1-5",
        "UTC",
        "2026-01-09T22:00:00Z", // Fri, exactly at a fire time: strictly after
        &["2026-01-12T22:00:00Z", "2026-01-13T22:00:00Z"], // Mon, Tue
    );
}

#[test]
fn day_of_month_or_day_of_week_when_both_are_restricted() {
    // The 1st of each month OR any Monday.
    check(
        "0 0 1 * 1",
        "UTC",
        "2026-01-01T00:00:00Z", // Thu the 1st, at its own fire time
        &[
            "2026-01-05T00:00:00Z", // Mon
            "2026-01-12T00:00:00Z", // Mon
            "2026-01-19T00:00:00Z", // Mon
            "2026-01-26T00:00:00Z", // Mon
            "2026-02-01T00:00:00Z", // Sun, the 1st
            "2026-02-02T00:00:00Z", // Mon
            "2026-02-09T00:00:00Z", // Mon
        ],
    );
    // robfig clears the star bit for `*/2`, so this is odd days OR Mondays (Vixie would AND).
    check(
        "0 0 */2 * 1",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-03T00:00:00Z", // Sat, odd
            "2026-01-05T00:00:00Z", // Mon, odd
            "2026-01-07T00:00:00Z", // Wed, odd
            "2026-01-09T00:00:00Z", // Fri, odd
            "2026-01-11T00:00:00Z", // Sun, odd
            "2026-01-12T00:00:00Z", // Mon, even
            "2026-01-13T00:00:00Z", // Tue, odd
        ],
    );
    // A day-of-month February never has, OR Mondays in February: only the Mondays fire.
    check(
        "0 0 30 2 1",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-02-02T00:00:00Z", // Mon
            "2026-02-09T00:00:00Z",
            "2026-02-16T00:00:00Z",
            "2026-02-23T00:00:00Z",
            "2027-02-01T00:00:00Z", // Mon (364 days after 2026-02-02)
        ],
    );
}

#[test]
fn a_star_day_field_means_and() {
    // `?` and `*/1` keep the star bit: Mondays only, not every day.
    for expression in ["0 0 ? * MON", "0 0 */1 * 1", "0 0 * * 1"] {
        check(
            expression,
            "UTC",
            "2026-01-01T00:00:00Z",
            &["2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z"],
        );
    }
    // Only Mondays in January and July.
    for expression in ["0 12 * JAN,JUL MON", "0 12 * jan,Jul mon"] {
        check(
            expression,
            "UTC",
            "2026-01-01T00:00:00Z",
            &[
                "2026-01-05T12:00:00Z",
                "2026-01-12T12:00:00Z",
                "2026-01-19T12:00:00Z",
                "2026-01-26T12:00:00Z",
                "2026-07-06T12:00:00Z", // Jul 1 is a Wed, so the first Monday is the 6th
                "2026-07-13T12:00:00Z",
            ],
        );
    }
}

#[test]
fn steps_ranges_and_the_weekend_jump() {
    check(
        "*/15 9-17 * * MON-FRI",
        "UTC",
        "2026-01-09T17:20:00Z", // Fri
        &[
            "2026-01-09T17:30:00Z",
            "2026-01-09T17:45:00Z",
            "2026-01-12T09:00:00Z", // Mon
            "2026-01-12T09:15:00Z",
        ],
    );
    check(
        "23 0-20/2 * * *",
        "UTC",
        "2026-01-01T19:00:00Z",
        &[
            "2026-01-01T20:23:00Z",
            "2026-01-02T00:23:00Z",
            "2026-01-02T02:23:00Z",
            "2026-01-02T04:23:00Z",
        ],
    );
    // `a/n` runs from a to the end of the field.
    check(
        "5/20 * * * *",
        "UTC",
        "2026-01-01T10:00:00Z",
        &[
            "2026-01-01T10:05:00Z",
            "2026-01-01T10:25:00Z",
            "2026-01-01T10:45:00Z",
            "2026-01-01T11:05:00Z",
        ],
    );
    // In day-of-week `1/2` ends at 6 (as in robfig), so it is Mon, Wed, Fri and not Sunday.
    check(
        "0 0 * * 1/2",
        "UTC",
        "2026-01-01T00:00:00Z", // Thu
        &[
            "2026-01-02T00:00:00Z", // Fri
            "2026-01-05T00:00:00Z", // Mon
            "2026-01-07T00:00:00Z", // Wed
            "2026-01-09T00:00:00Z", // Fri
            "2026-01-12T00:00:00Z", // Mon
        ],
    );
    // A written 7 is Sunday, also as the end of a range.
    check(
        "0 0 * * 5-7",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-02T00:00:00Z", // Fri
            "2026-01-03T00:00:00Z", // Sat
            "2026-01-04T00:00:00Z", // Sun
            "2026-01-09T00:00:00Z", // Fri
        ],
    );
    check(
        "5 4 * * *",
        "UTC",
        "2026-01-01T04:05:00Z",
        &["2026-01-02T04:05:00Z", "2026-01-03T04:05:00Z"],
    );
}

#[test]
fn sunday_has_three_spellings_and_weekly_means_sunday() {
    for expression in ["0 0 * * 0", "0 0 * * 7", "0 0 * * SUN", "0 0 * * sun", "@weekly"] {
        check(
            expression,
            "UTC",
            "2026-01-01T00:00:00Z", // Thu
            &[
                "2026-01-04T00:00:00Z", // Sun
                "2026-01-11T00:00:00Z",
                "2026-01-18T00:00:00Z",
            ],
        );
    }
}

#[test]
fn macros() {
    check(
        "@hourly",
        "UTC",
        "2026-01-01T10:00:00Z",
        &["2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z"],
    );
    for expression in ["@daily", "@midnight"] {
        check(
            expression,
            "UTC",
            "2026-01-31T12:00:00Z",
            &["2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z"],
        );
    }
    check(
        "@monthly",
        "UTC",
        "2026-01-15T00:00:00Z",
        &["2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"],
    );
    for expression in ["@yearly", "@annually"] {
        check(
            expression,
            "UTC",
            "2026-01-01T00:00:00Z",
            &["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"],
        );
    }
}

#[test]
fn days_that_some_months_lack() {
    check(
        "0 0 29 2 *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z"],
    );
    check(
        "0 0 31 * *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-31T00:00:00Z",
            "2026-03-31T00:00:00Z",
            "2026-05-31T00:00:00Z",
            "2026-07-31T00:00:00Z",
            "2026-08-31T00:00:00Z",
            "2026-10-31T00:00:00Z",
            "2026-12-31T00:00:00Z",
        ],
    );
}

#[test]
fn wall_clock_time_in_the_schedule_time_zone() {
    // 02:00 in Berlin is 01:00 UTC in winter and 00:00 UTC in summer.
    check(
        "0 2 * * *",
        "Europe/Berlin",
        "2026-01-10T00:00:00Z",
        &["2026-01-10T02:00:00+01:00", "2026-01-11T02:00:00+01:00"],
    );
    check(
        "0 2 * * *",
        "Europe/Berlin",
        "2026-06-30T12:00:00Z",
        &["2026-07-01T02:00:00+02:00", "2026-07-02T02:00:00+02:00"],
    );
    check(
        "0 9 * * 1-5",
        "America/New_York",
        "2026-01-09T15:00:00Z",         // Fri 10:00 EST
        &["2026-01-12T09:00:00-05:00"], // Mon
    );
    check(
        "0 9 * * 1-5",
        "America/New_York",
        "2026-07-03T14:00:00Z",         // Fri 10:00 EDT
        &["2026-07-06T09:00:00-04:00"], // Mon
    );
    // The weekday is Tokyo's: Monday 00:00 there is Sunday 15:00 UTC.
    check(
        "0 0 * * 1",
        "Asia/Tokyo",
        "2026-01-01T00:00:00Z",
        &["2026-01-04T15:00:00Z", "2026-01-11T15:00:00Z"],
    );
}

#[test]
fn spring_forward_skips_the_missing_wall_clock_time() {
    // 02:30 does not exist in Berlin on 2026-03-29: no run that day.
    check(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-27T12:00:00Z",
        &[
            "2026-03-28T02:30:00+01:00",
            "2026-03-30T02:30:00+02:00",
            "2026-03-31T02:30:00+02:00",
        ],
    );
    check(
        "*/30 * * * *",
        "Europe/Berlin",
        "2026-03-29T01:20:00+01:00",
        &[
            "2026-03-29T01:30:00+01:00",
            "2026-03-29T03:00:00+02:00", // the clock jumped from 02:00 to 03:00
            "2026-03-29T03:30:00+02:00",
        ],
    );
    // Only ever 02:00 on March 29, missing in 2026: found in a later year, without hanging.
    // In 2027 and 2028 summer time starts on March 28 and 26, before the 29th.
    check(
        "0 2 29 3 *",
        "Europe/Berlin",
        "2026-03-01T00:00:00Z",
        &["2027-03-29T02:00:00+02:00", "2028-03-29T02:00:00+02:00"],
    );
}

#[test]
fn fall_back_fires_a_repeated_wall_clock_time_once() {
    check(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-24T12:00:00Z",
        &["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
    );
    // From inside the repeated hour (02:10 CET, after the first 02:30 CEST has passed), the
    // next run is the second 02:30, never the first one, which lies before `after`.
    check(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-25T02:10:00+01:00",
        &["2026-10-25T02:30:00+01:00", "2026-10-26T02:30:00+01:00"],
    );
}

#[test]
fn invalid_expressions_name_the_field_and_the_value() {
    let table: &[(&str, &str)] = &[
        ("", "the schedule is empty"),
        ("   ", "the schedule is empty"),
        (
            "0 0 * *",
            "expected 5 fields (minute hour day-of-month month day-of-week), found 4",
        ),
        (
            "0 0 0 * * *",
            "expected 5 fields (minute hour day-of-month month day-of-week), found 6",
        ),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("* 24 * * *", "hour: 24 is out of range 0-23"),
        ("* * 0 * *", "day-of-month: 0 is out of range 1-31"),
        ("* * * 13 *", "month: 13 is out of range 1-12"),
        ("* * * * 8", "day-of-week: 8 is out of range 0-7"),
        ("* * * * 99999999999", "day-of-week: 99999999999 is out of range 0-7"),
        (
            "* * * * FOO",
            "day-of-week: `FOO` is not a number 0-7 or a day name (SUN-SAT)",
        ),
        (
            "* * * * MONDAY",
            "day-of-week: `MONDAY` is not a number 0-7 or a day name",
        ),
        (
            "* * * FOO *",
            "month: `FOO` is not a number 1-12 or a month name (JAN-DEC)",
        ),
        ("* * MON * *", "day-of-month: `MON` is not a number"),
        ("*/0 * * * *", "minute: step must be at least 1 in `*/0`"),
        ("*/x * * * *", "minute: step `x` is not a number"),
        (
            "5-1 * * * *",
            "minute: range `5-1` runs backwards (its start is after its end)",
        ),
        ("* * * * FRI-MON", "day-of-week: range `FRI-MON` runs backwards"),
        ("1-2-3 * * * *", "minute: `1-2-3` is not a value, a range a-b or a step"),
        ("1/2/3 * * * *", "minute: `1/2/3` is not a value"),
        ("*-5 * * * *", "minute: `*-5` is not a value"),
        ("-5 * * * *", "minute: `-5` is not a value"),
        ("1,,2 * * * *", "minute: empty item in the list `1,,2`"),
        (
            "0 0 30 2 *",
            "day-of-month: no selected month has a day 30, so the schedule never fires",
        ),
        ("0 0 31 4,6,9,11 *", "day-of-month: no selected month has a day 31"),
        (
            "@every 5m",
            "@every is not a cron schedule; use `interval:` for a fixed interval",
        ),
        ("@reboot", "unknown macro `@reboot`; use @yearly, @annually, @monthly"),
        ("@Daily", "unknown macro `@Daily`"),
        ("TZ=UTC 0 0 * * *", "a time zone prefix (`TZ=`) is not allowed"),
        (
            "CRON_TZ=UTC 0 0 * * *",
            "a time zone prefix (`CRON_TZ=`) is not allowed",
        ),
    ];
    for (expression, fragment) in table {
        match CronSchedule::parse(expression, Tz::UTC) {
            Ok(_) => panic!("`{expression}` was accepted; expected an error with {fragment:?}"),
            Err(error) => {
                let message = error.to_string();
                assert!(
                    message.contains(fragment),
                    "`{expression}`: message {message:?} lacks {fragment:?}"
                );
                assert!(!message.contains('\n'), "`{expression}`: multi-line message");
            }
        }
    }
}

#[test]
fn field_errors_are_structured() {
    assert_eq!(
        CronSchedule::parse("* * * * 8", Tz::UTC).err(),
        Some(ScheduleError::Field {
            field: CronField::DayOfWeek,
            problem: FieldProblem::OutOfRange {
                text: "8".to_owned(),
                min: 0,
                max: 7
            },
        })
    );
}

#[test]
fn translation_to_quartz() {
    let table: &[(&str, &[&str])] = &[
        // Sunday-zero weekdays become Quartz's Sunday-one numbers.
        ("0 2 * * 1-5", &["0 0 2 * * 2,3,4,5,6"]),
        ("0 0 * * 0,7", &["0 0 0 * * 1"]),
        ("*/20 9-11 1 1,7 *", &["0 0,20,40 9,10,11 1 1,7 *"]),
        // Both day fields restricted: one schedule per day field, unioned by next_after.
        ("0 0 1 * 1", &["0 0 0 1 * *", "0 0 0 * * 2"]),
    ];
    for (expression, expected) in table {
        let fields = expression::parse_fields(expression).unwrap();
        assert_eq!(quartz_expressions(&fields), *expected, "`{expression}`");
    }
}

#[test]
fn expression_and_time_zone_are_kept() {
    let berlin = parse_time_zone("Europe/Berlin").unwrap();
    let schedule = CronSchedule::parse(" @daily ", berlin).unwrap();
    assert_eq!(schedule.expression(), " @daily ");
    assert_eq!(schedule.time_zone(), berlin);
}

#[test]
fn time_zone_names() {
    assert_eq!(parse_time_zone("UTC"), Ok(Tz::UTC));
    assert_eq!(parse_time_zone("Europe/Berlin"), Ok(Tz::Europe__Berlin));
    assert_eq!(
        parse_time_zone("Europe/Berln").unwrap_err().to_string(),
        "unknown time zone `Europe/Berln`; use an IANA name such as UTC or Europe/Berlin"
    );
}

#[test]
fn interval_adds_its_duration_and_cron_delegates() {
    let from = instant("2026-01-01T10:00:00Z");
    let interval = Schedule::Interval(Duration::from_secs(90 * 60));
    assert_eq!(interval.next_after(from), Some(instant("2026-01-01T11:30:00Z")));
    assert_eq!(Schedule::Interval(Duration::MAX).next_after(from), None);

    let hourly = Schedule::Cron(CronSchedule::parse("@hourly", Tz::UTC).unwrap());
    assert_eq!(hourly.next_after(from), Some(instant("2026-01-01T11:00:00Z")));
}
