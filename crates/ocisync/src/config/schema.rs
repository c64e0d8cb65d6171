//! The JSON Schema of the config file, derived from the serde structs that read it
//! (`raw.rs`), for editors: `ocisync config --schema`, and `docs/config.schema.json`.
//!
//! It describes the shape (keys, types, lists); what only the checker can tell (a
//! registry a sync names exists, a regex compiles, a duration is in range) is left to
//! `ocisync config --config FILE`.

use super::raw::RawConfig;

/// The schema as pretty-printed JSON, ending with a newline.
pub fn json_schema() -> String {
    let mut schema = schemars::schema_for!(RawConfig);
    schema.insert("title".into(), "ocisync config".into());
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn workspace_file(path: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
    }

    fn validator() -> jsonschema::Validator {
        let schema: serde_json::Value = serde_json::from_str(&json_schema()).unwrap();
        jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
    }

    /// The YAML as the JSON value an editor's YAML language server checks.
    fn as_json(yaml: &str) -> serde_json::Value {
        let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        serde_json::to_value(value).unwrap()
    }

    #[test]
    fn the_committed_schema_is_the_one_the_binary_prints() {
        let committed = std::fs::read_to_string(workspace_file("docs/config.schema.json")).unwrap();
        assert!(
            committed == json_schema(),
            "docs/config.schema.json is out of date: run `cargo run -p ocisync -- config --schema > docs/config.schema.json`"
        );
    }

    #[test]
    fn every_example_validates_against_the_schema() {
        let validator = validator();
        let mut checked = 0;
        for entry in std::fs::read_dir(workspace_file("examples")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|extension| extension != "yaml") {
                continue;
            }
            let document = as_json(&std::fs::read_to_string(&path).unwrap());
            let problems: Vec<String> = validator
                .iter_errors(&document)
                .map(|error| format!("{}: {error}", error.instance_path))
                .collect();
            assert!(problems.is_empty(), "{}: {problems:?}", path.display());
            checked += 1;
        }
        assert!(checked >= 4, "the examples were found");
    }

    #[test]
    fn the_schema_catches_what_serde_rejects() {
        let validator = validator();
        let valid = "version: 1\nregistries:\n  a:\n    urls: [\"https://a\"]\n    client_cert: c.pem\n    client_key: k.pem\n  b:\n    layout: /srv\nsyncs:\n  - {from: a, to: b}\n";
        assert!(validator.is_valid(&as_json(valid)));
        for (invalid, why) in [
            (
                "version: 1\nregistries: {}\nsyncs: []\nextra: 1\n",
                "an unknown top-level key",
            ),
            (
                "version: 1\nregistries:\n  a:\n    url: [\"https://a\"]\n",
                "a misspelled registry key",
            ),
            ("version: 2\n", "another version"),
            ("version: 1\nsyncs:\n  - {from: a}\n", "a sync without to"),
            (
                "version: 1\ndefaults:\n  concurrency: {tags: many}\n",
                "a count that is not a number",
            ),
        ] {
            assert!(!validator.is_valid(&as_json(invalid)), "{why} passed:\n{invalid}");
        }
    }
}
