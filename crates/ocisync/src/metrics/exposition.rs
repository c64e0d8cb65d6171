//! The Prometheus text exposition format (version 0.0.4), written family by family.

use std::fmt::Write as _;

/// Writes metric families. A family's `# HELP` and `# TYPE` lines are written with its
/// first sample, so a family without samples is left out: a Pushgateway `POST`
/// replaces every family it names, and an empty one would erase what an earlier push
/// left (the last success of a CronJob whose latest run failed).
pub struct Exposition {
    text: String,
    /// A label every sample would carry but the receiver adds itself (a Pushgateway's
    /// grouping key, which pushed samples must not repeat).
    omitted_label: Option<&'static str>,
    family: Option<Family>,
}

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    written: bool,
}

impl Exposition {
    pub fn new(omitted_label: Option<&'static str>) -> Exposition {
        Exposition {
            text: String::new(),
            omitted_label,
            family: None,
        }
    }

    /// Starts a family; the samples that follow belong to it.
    pub fn family(&mut self, name: &'static str, kind: &'static str, help: &'static str) {
        self.family = Some(Family {
            name,
            kind,
            help,
            written: false,
        });
    }

    /// A sample named like its family.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let name = self.family.as_ref().map_or("", |family| family.name);
        self.named_sample(name, labels, value);
    }

    /// A sample with a suffixed name (`_sum`, `_count` of a summary).
    pub fn named_sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        if let Some(family) = self.family.as_mut().filter(|family| !family.written) {
            family.written = true;
            // Writing to a String cannot fail.
            let _ = writeln!(
                self.text,
                "# HELP {0} {1}\n# TYPE {0} {2}",
                family.name, family.help, family.kind
            );
        }
        let labels: Vec<String> = labels
            .iter()
            .filter(|(key, _)| Some(*key) != self.omitted_label)
            .map(|(key, value)| format!("{key}=\"{}\"", escape_label(value)))
            .collect();
        let _ = if labels.is_empty() {
            writeln!(self.text, "{name} {value}")
        } else {
            writeln!(self.text, "{name}{{{}}} {value}", labels.join(","))
        };
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// Label values escape backslash, double quote and newline (exposition format spec).
pub fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn a_family_without_samples_is_left_out_and_the_omitted_label_dropped() {
        let mut out = Exposition::new(Some("sync"));
        out.family("empty_total", "counter", "Nothing.");
        out.family("full_total", "counter", "Something.");
        out.sample(&[("sync", "hub"), ("outcome", "copied")], 3);
        out.sample(&[("sync", "hub")], 4);
        assert_eq!(
            out.finish(),
            "# HELP full_total Something.\n# TYPE full_total counter\nfull_total{outcome=\"copied\"} 3\nfull_total 4\n"
        );
    }
}
