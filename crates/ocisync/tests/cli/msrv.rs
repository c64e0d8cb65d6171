//! The declared MSRV (`rust-version` in the root `Cargo.toml`) holds for what building
//! ocisync needs: no normal or build dependency, on any platform, declares a newer
//! `rust-version`. Only one toolchain is installable here, so this, and clippy's
//! `incompatible_msrv` in `make lint` (standard library items newer than the MSRV),
//! are the checks; language features are not checked against the MSRV. Dev-dependencies
//! are left out: the tests may need a newer Rust (jsonschema pulls uuid, Rust 1.89).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// `1.88` or `1.88.0` as comparable numbers.
fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|part| part.parse::<u64>().unwrap());
    (
        parts.next().unwrap(),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[test]
fn no_dependency_of_the_build_needs_a_newer_rust_than_the_declared_msrv() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages: BTreeMap<&str, &Value> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| (package["id"].as_str().unwrap(), package))
        .collect();
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    let msrv = packages[members[0]]["rust_version"]
        .as_str()
        .expect("the workspace declares rust-version");
    // The dependencies a build needs: normal and build edges, from every member.
    let nodes: BTreeMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| (node["id"].as_str().unwrap(), node))
        .collect();
    let mut needed = BTreeSet::new();
    let mut queue: Vec<&str> = members.clone();
    while let Some(id) = queue.pop() {
        if !needed.insert(id) {
            continue;
        }
        for dependency in nodes[id]["deps"].as_array().unwrap() {
            let for_build = dependency["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|kind| kind["kind"].as_str() != Some("dev"));
            if for_build {
                queue.push(dependency["pkg"].as_str().unwrap());
            }
        }
    }
    assert!(needed.len() > 100, "{} packages", needed.len());
    let too_new: Vec<String> = needed
        .iter()
        .filter_map(|id| {
            let package = packages[id];
            let required = package["rust_version"].as_str()?;
            (version(required) > version(msrv))
                .then(|| format!("{} {} needs Rust {required}", package["name"], package["version"]))
        })
        .collect();
    assert!(
        too_new.is_empty(),
        "the declared rust-version {msrv} is too old: {too_new:?}"
    );
}
