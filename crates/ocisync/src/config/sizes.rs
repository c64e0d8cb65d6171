//! Sizes in the config (`max_blob_size`): a number of bytes, or a number with a unit,
//! `2GiB` (powers of 1024) or `500MB` (powers of 1000); units in any case, a space
//! allowed before them, a decimal point allowed (`1.5GiB`, rounded down to a byte).

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::{Checker, RegistryConfig, SyncConfig};

/// Units and their bytes, matched without regard to case.
const UNITS: [(&str, u64); 9] = [
    ("B", 1),
    ("kB", 1000),
    ("MB", 1000 * 1000),
    ("GB", 1000 * 1000 * 1000),
    ("TB", 1000 * 1000 * 1000 * 1000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

const EXPECTED: &str =
    "expected a number of bytes or a number with a unit (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 2GiB or 500MB";

impl Checker {
    /// A size of more than 0 bytes; a problem (and `None`) otherwise.
    pub(super) fn size(&mut self, key: &str, value: &Value) -> Option<u64> {
        let parsed = match value {
            Value::Number(number) => number
                .as_u64()
                .ok_or_else(|| format!("invalid size {number}: {EXPECTED}")),
            Value::String(text) => parse_size(text),
            _ => Err(EXPECTED.to_owned()),
        };
        match parsed {
            Ok(0) => {
                self.problem(key.to_owned(), "must be more than 0 bytes".to_owned());
                None
            }
            Ok(bytes) => Some(bytes),
            Err(message) => {
                self.problem(key.to_owned(), message);
                None
            }
        }
    }

    /// `max_blob_size` limits what is read from a registry: on one no sync reads from,
    /// it does nothing, which is probably not what was meant.
    pub(super) fn warn_unused_blob_limits(
        &mut self,
        registries: &BTreeMap<String, RegistryConfig>,
        syncs: &[SyncConfig],
    ) {
        for (name, registry) in registries {
            if registry.max_blob_size.is_some() && !syncs.iter().any(|sync| &sync.from == name) {
                self.warning(
                    format!("registries.{name}.max_blob_size"),
                    format!("no sync reads from {name}; max_blob_size applies to a sync's source"),
                );
            }
        }
    }
}

/// `4096`, `2GiB`, `1.5 GB`, `500mb`: the bytes, or what is wrong.
pub(super) fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = || format!("invalid size \"{text}\": {EXPECTED}");
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim_start();
    let multiplier = if unit.is_empty() {
        1
    } else {
        UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))
            .map(|(_, bytes)| *bytes)
            .ok_or_else(invalid)?
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || (number.contains('.') && fraction.is_empty()) {
        return Err(invalid());
    }
    let digits = format!("{whole}{fraction}");
    let scale = 10u128
        .checked_pow(u32::try_from(fraction.len()).map_err(|_| invalid())?)
        .ok_or_else(invalid)?;
    let mantissa: u128 = digits.parse().map_err(|_| invalid())?;
    let bytes = mantissa
        .checked_mul(u128::from(multiplier))
        .map(|scaled| scaled / scale)
        .and_then(|bytes| u64::try_from(bytes).ok())
        .ok_or_else(|| format!("size \"{text}\" is too large: at most {} bytes", u64::MAX))?;
    Ok(bytes)
}

/// The size as the config could say it: the largest unit that divides it exactly
/// (`2GiB`, `500MB`), else bytes (`1500B`).
pub(crate) fn format_size(bytes: u64) -> String {
    UNITS
        .iter()
        .filter(|(_, unit)| *unit > 1 && bytes > 0 && bytes.is_multiple_of(*unit))
        .max_by_key(|(_, unit)| *unit)
        .map_or_else(|| format!("{bytes}B"), |(name, unit)| format!("{}{name}", bytes / unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_units_of_1000_or_1024() {
        for (text, bytes) in [
            ("4096", 4096),
            ("1KiB", 1024),
            ("1 kib", 1024),
            ("2GiB", 2 << 30),
            ("500MB", 500_000_000),
            ("500mb", 500_000_000),
            ("1.5GiB", 3 << 29),
            ("0.5 kB", 500),
            ("10B", 10),
            ("16383TiB", 16383 << 40),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for text in [
            "",
            "GiB",
            "2 GiBs",
            "1.2.3MB",
            "1.MB",
            "-1KiB",
            "2 PB",
            "1e3",
            "99999999TiB",
        ] {
            assert!(parse_size(text).is_err(), "{text} should be refused");
        }
        assert!(parse_size("99999999TiB").unwrap_err().contains("too large"));
    }

    #[test]
    fn sizes_print_in_the_largest_exact_unit() {
        assert_eq!(format_size(2 << 30), "2GiB");
        assert_eq!(format_size(1024), "1KiB");
        assert_eq!(format_size(500_000_000), "500MB");
        assert_eq!(format_size(1500), "1500B");
        assert_eq!(format_size(4096 * 1000), "4000KiB");
        for bytes in [1, 1024, 1500, 3 << 29, 500_000_000] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
        }
    }

    const CONFIG: &str = "version: 1
registries:
  upstream:
    urls: [\"http://127.0.0.1:5001\"]
    max_blob_size: LIMIT
  mirror:
    urls: [\"http://127.0.0.1:5002\"]
syncs:
  - from: upstream
    to: mirror
";

    fn load(limit: &str) -> Result<crate::config::Config, crate::config::ConfigError> {
        let text = CONFIG.replace("LIMIT", limit);
        crate::config::Config::from_yaml(&text, std::path::Path::new("ocisync.yaml"), &|_| None)
    }

    #[test]
    fn max_blob_size_is_bytes_or_a_size_with_a_unit_and_shows_in_the_effective_config() {
        let config = load("2GiB").unwrap();
        assert_eq!(config.registries["upstream"].max_blob_size, Some(2 << 30));
        assert_eq!(config.registries["mirror"].max_blob_size, None);
        let shown = crate::show_config::render(&config).unwrap();
        assert!(shown.contains("max_blob_size: 2GiB"), "{shown}");
        assert_eq!(load("4096").unwrap().registries["upstream"].max_blob_size, Some(4096));
        assert!(load("1KiB").unwrap().warnings.is_empty());
    }

    #[test]
    fn a_bad_max_blob_size_names_its_key_and_position() {
        for (limit, message) in [
            (
                "0",
                "ocisync.yaml:5:5: registries.upstream.max_blob_size: must be more than 0 bytes",
            ),
            (
                "2 GiBs",
                "registries.upstream.max_blob_size: invalid size \"2 GiBs\": expected a number of bytes",
            ),
            ("-5", "registries.upstream.max_blob_size: invalid size -5"),
            ("1.5", "registries.upstream.max_blob_size: invalid size 1.5"),
            ("[1]", "registries.upstream.max_blob_size: expected a number of bytes"),
        ] {
            let error = load(limit).expect_err(limit).to_string();
            assert!(error.contains(message), "{limit}: {error}");
        }
    }

    #[test]
    fn a_max_blob_size_on_a_registry_no_sync_reads_from_is_a_warning() {
        let text = CONFIG.replace("    max_blob_size: LIMIT\n", "").replace(
            "    urls: [\"http://127.0.0.1:5002\"]",
            "    urls: [\"http://127.0.0.1:5002\"]\n    max_blob_size: 1GiB",
        );
        let config = crate::config::Config::from_yaml(&text, std::path::Path::new("ocisync.yaml"), &|_| None).unwrap();
        let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("registries.mirror.max_blob_size: no sync reads from mirror"),
            "{warnings:?}"
        );
    }
}
