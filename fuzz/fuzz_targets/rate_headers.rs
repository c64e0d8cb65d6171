//! `Retry-After` (seconds or an HTTP date) and the `ratelimit-limit` /
//! `ratelimit-remaining` pull-quota headers.
//!
//! Input: three header values separated by `\n`. Properties: delay-seconds read as that
//! many seconds, a date never gives a delay beyond it, and a quota's numbers are the
//! leading numbers of the values.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use ocisync_registry::fuzzing::{rate_limit, retry_after};
use ocisync_registry::parse_quota_value;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |byte| *byte == b'\n');
    let retry = parts.next().unwrap_or_default();
    let limit = parts.next().unwrap_or_default();
    let remaining = parts.next().unwrap_or_default();

    // 2015-10-21T07:28:00Z, a fixed now.
    let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480);
    let delay = retry_after(retry, now);
    // What a header value is read as: visible ASCII, spaces and tabs (CR, LF and other
    // controls never arrive; anything else is no text). HTTP's whitespace is trimmed.
    let header_text = retry.iter().all(|&byte| byte == b'\t' || (0x20..0x7f).contains(&byte));
    if let Some(text) = std::str::from_utf8(retry).ok().filter(|_| header_text) {
        if let Ok(seconds) = text.trim_matches([' ', '\t']).parse::<u64>() {
            assert_eq!(delay, Some(Duration::from_secs(seconds)), "{text:?}");
        } else if let Some(delay) = delay {
            // A date: at most from now to the latest date httpdate accepts (year 9999).
            assert!(now + delay <= SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_800), "{text:?}");
        }
    }

    if let Some(quota) = rate_limit(limit, remaining) {
        let (count, _) = parse_quota_value(std::str::from_utf8(remaining).unwrap()).unwrap();
        assert_eq!(quota.remaining, count);
        if let Some(announced) = quota.limit {
            let (count, _) = parse_quota_value(std::str::from_utf8(limit).unwrap()).unwrap();
            assert_eq!(announced, count);
        }
    }
    for text in [limit, remaining].into_iter().filter_map(|bytes| std::str::from_utf8(bytes).ok()) {
        if let Some((count, _)) = parse_quota_value(text) {
            let first = text.split([',', ';']).next().unwrap_or("").trim();
            assert_eq!(first.parse::<u64>(), Ok(count), "{text:?}");
        }
    }
});
