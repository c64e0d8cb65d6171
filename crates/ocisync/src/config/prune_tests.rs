//! Table tests of a rule's `prune`.

use super::test_config::load_with_rules;

#[test]
fn prune_loads_with_its_defaults_and_only_when_enabled() {
    let config =
        load_with_rules("      - repositories: [team/app]\n        prune: {enabled: true, keep: [\"v1\\\\..*\"]}\n")
            .unwrap();
    let policy = config.syncs[0].content[0].prune().unwrap();
    assert_eq!(policy.max_fraction(), 0.5);
    assert!(policy.protects(&"v1.2".parse().unwrap()));
    assert!(!policy.protects(&"xv1.2".parse().unwrap()), "keep matches whole tags");
    let shown = crate::show_config::render(&config).unwrap();
    assert!(
        shown.contains("prune:\n      enabled: true\n      max_fraction: 0.5\n      keep:\n      - v1\\..*\n"),
        "{shown}"
    );
    let config =
        load_with_rules("      - prefix: \"team/*\"\n        prune: {enabled: true, max_fraction: 1}\n").unwrap();
    assert_eq!(config.syncs[0].content[0].prune().unwrap().max_fraction(), 1.0);
    let off = load_with_rules("      - repositories: [team/app]\n        prune: {enabled: false, max_fraction: 0.2}\n")
        .unwrap();
    assert!(off.syncs[0].content[0].prune().is_none());
    assert!(
        load_with_rules("      - repositories: [team/app]\n").unwrap().syncs[0].content[0]
            .prune()
            .is_none()
    );
}

#[test]
fn bad_prune_settings_name_their_key_and_position() {
    // (rule lines, expected "line:col: key: message" fragment)
    let cases: &[(&str, &str)] = &[
        (
            "      - repositories: [team/app]\n        prune:\n          enabled: true\n          max_fraction: 0\n",
            "14:11: syncs[0].content[0].prune.max_fraction: 0 is not in (0, 1]",
        ),
        (
            "      - repositories: [team/app]\n        prune: {enabled: true, max_fraction: 1.5}\n",
            "syncs[0].content[0].prune.max_fraction: 1.5 is not in (0, 1]",
        ),
        (
            "      - repositories: [team/app]\n        prune:\n          enabled: true\n          keep: [ok, \"(bad\"]\n",
            "14:22: syncs[0].content[0].prune.keep[1]: invalid regex \"(bad\"",
        ),
        (
            "      - images: [team/app:1]\n        prune: {enabled: true}\n",
            "12:9: syncs[0].content[0].prune: does not apply to `images`",
        ),
        (
            "      - repositories: [team/app]\n        prune: {enabled: true, max_fration: 0.2}\n",
            "unknown field `max_fration`",
        ),
        (
            "      - repositories: [team/app]\n        prune: {max_fraction: 0.2}\n",
            "missing field `enabled`",
        ),
    ];
    for (rules, expected) in cases {
        let error = load_with_rules(rules).expect_err("rejected").to_string();
        assert!(
            error.contains(expected),
            "expected {expected:?} in:\n{error}\n--- rules\n{rules}"
        );
    }
}
