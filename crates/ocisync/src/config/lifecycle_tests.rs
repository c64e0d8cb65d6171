//! `tags.min_age` and `backup`: read into the rule, or refused with file, line, column
//! and key path.

use std::time::Duration;

use super::test_config::load_with_rules;

#[test]
fn min_age_and_backup_are_read_into_the_rule() {
    let config = load_with_rules(
        "      - prefix: \"**\"\n        backup: \"{tag}-{date}\"\n        tags:\n          min_age: 72h\n      - images: [\"app:1\"]\n        tags:\n          min_age: 30m\n",
    )
    .unwrap();
    let rules = &config.syncs[0].content;
    assert_eq!(rules[0].tags().min_age(), Some(Duration::from_secs(72 * 3600)));
    assert_eq!(rules[0].backup().map(|b| b.as_str()), Some("{tag}-{date}"));
    assert_eq!(
        rules[1].tags().min_age(),
        Some(Duration::from_secs(1800)),
        "images rules take min_age too"
    );
    assert!(rules[1].backup().is_none());
    let shown = crate::show_config::render(&config).unwrap();
    assert!(
        shown.contains("min_age: 3days") && shown.contains("backup: '{tag}-{date}'"),
        "{shown}"
    );
}

#[test]
fn bad_min_ages_and_templates_name_their_key() {
    // (rule lines, expected "line:col: key: message" fragment)
    let cases = [
        (
            "      - prefix: \"**\"\n        tags:\n          min_age: soon\n",
            "ocisync.yaml:13:11: syncs[0].content[0].tags.min_age: invalid duration \"soon\"",
        ),
        (
            "      - prefix: \"**\"\n        tags:\n          min_age: 0s\n",
            "ocisync.yaml:13:11: syncs[0].content[0].tags.min_age: must be more than 0s",
        ),
        (
            "      - prefix: \"**\"\n        tags:\n          min_age: 2y\n",
            "syncs[0].content[0].tags.min_age: 2y is too long: at most 1year",
        ),
        (
            "      - prefix: \"**\"\n        backup: \"\"\n",
            "ocisync.yaml:12:9: syncs[0].content[0].backup: \"\" is empty",
        ),
        (
            "      - prefix: \"**\"\n        backup: \"{tag}-{time}\"\n",
            "ocisync.yaml:12:9: syncs[0].content[0].backup: \"{tag}-{time}\" has an unknown placeholder {time}: the placeholders are {tag}, {date} and {digest}",
        ),
        (
            "      - prefix: \"**\"\n        backup: \"{tag}/{date}\"\n",
            "syncs[0].content[0].backup: \"{tag}/{date}\" has '/', which a tag cannot hold",
        ),
        (
            "      - prefix: \"**\"\n      - repositories: [app]\n        backup: \"old-{date}\"\n",
            "ocisync.yaml:13:9: syncs[0].content[1].backup: \"old-{date}\" has no {tag}",
        ),
        (
            "      - prefix: \"**\"\n        backup: \"{tag}-previous\"\n",
            "syncs[0].content[0].backup: \"{tag}-previous\" has neither {date} nor {digest}",
        ),
        (
            "      - prefix: \"**\"\n        backup: \"-{tag}-{date}\"\n",
            "syncs[0].content[0].backup: \"-{tag}-{date}\" starts with '-'",
        ),
    ];
    for (rule, expected) in cases {
        let output = load_with_rules(rule)
            .expect_err("config should be rejected")
            .to_string();
        assert!(output.contains(expected), "expected {expected:?} in\n{output}");
    }
}

#[test]
fn a_bad_min_age_and_a_bad_backup_are_both_reported() {
    let output =
        load_with_rules("      - prefix: \"**\"\n        backup: \"{when}\"\n        tags:\n          min_age: x\n")
            .expect_err("config should be rejected")
            .to_string();
    assert!(output.contains("syncs[0].content[0].backup:"), "{output}");
    assert!(output.contains("syncs[0].content[0].tags.min_age:"), "{output}");
}
