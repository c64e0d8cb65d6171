//! Transfer rates in the config (`min_transfer_rate: 8KiB/s`, or a plain number of bytes
//! per second), and how `ocisync config` shows them.

use super::raw::RawAmount;
use super::sizes::{format_size, parse_size};
use super::Checker;

impl Checker {
    /// A rate in bytes per second; `0` means none (`None`). Problems are recorded and
    /// `default` used.
    pub(super) fn transfer_rate(&mut self, key: &str, raw: Option<&RawAmount>, default: Option<u64>) -> Option<u64> {
        let bytes_per_second = match raw {
            None => return default,
            Some(RawAmount::Bytes(value)) => *value,
            Some(RawAmount::Text(text)) => match parse_rate(text) {
                Some(value) => value,
                None => {
                    self.problem(
                        key.to_owned(),
                        format!(
                            "invalid rate \"{text}\": bytes per second, e.g. 8KiB/s, 1MiB/s, 500kB/s or 8192 \
                             (0: none)"
                        ),
                    );
                    return default;
                }
            },
        };
        (bytes_per_second > 0).then_some(bytes_per_second)
    }
}

/// `8KiB/s`, `8 KiB/s`, `8KiB`, `8192`: bytes per second, in the units of sizes.
fn parse_rate(text: &str) -> Option<u64> {
    let text = text.trim();
    parse_size(text.strip_suffix("/s").unwrap_or(text)).ok()
}

/// A rate as the config reads it (see [`format_size`]), `0B/s` for none.
pub fn show_rate(bytes_per_second: Option<u64>) -> String {
    format!("{}/s", format_size(bytes_per_second.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_with_units_and_show_back() {
        let cases = [
            ("8KiB/s", Some(8192)),
            ("8 KiB/s", Some(8192)),
            ("1MiB", Some(1 << 20)),
            ("500kB/s", Some(500_000)),
            ("2GB/s", Some(2_000_000_000)),
            ("8192", Some(8192)),
            ("100B/s", Some(100)),
            ("0", Some(0)),
            ("fast", None),
            ("8 KiB/min", None),
            ("-1", None),
            ("8.5KiB/s", Some(8704)),
            ("99999999999999999999GiB/s", None),
            ("18446744073709551615GiB/s", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_rate(text), expected, "{text}");
        }
        assert_eq!(show_rate(Some(8192)), "8KiB/s");
        assert_eq!(show_rate(Some(3 << 20)), "3MiB/s");
        assert_eq!(show_rate(Some(1000)), "1kB/s");
        assert_eq!(show_rate(None), "0B/s");
        for value in [8192, 3 << 20, 1000, 1] {
            assert_eq!(parse_rate(&show_rate(Some(value))), Some(value), "read back");
        }
    }
}
