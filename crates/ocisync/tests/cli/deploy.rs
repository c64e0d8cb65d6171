//! The deployment forms under `deploy/` and the `Dockerfile` say what the binary
//! understands: each kustomize overlay is rendered (`kubectl kustomize`; without
//! kubectl, which Debian does not package, the test assembles the files itself) and its
//! ocisync containers checked against the real command line, served paths, ports and
//! volumes; Prometheus' `promtool`
//! checks the alert rules (and their unit tests) and the dashboard's queries.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize as _;
use serde_yaml::Value;

use crate::support::{ocisync, promtool};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The kustomize overlays under `deploy/kubernetes/overlays/`, one per deployment form.
const OVERLAYS: [&str; 3] = ["cronjob", "indexed-job", "sidecar"];

fn kubernetes_dir() -> PathBuf {
    workspace_root().join("deploy/kubernetes")
}

fn yaml_documents(text: &str, at: &Path) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).unwrap_or_else(|e| panic!("{}: {e}", at.display())))
        .filter(|value| !value.is_null())
        .collect()
}

fn read_yaml(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    yaml_documents(&text, path)
}

/// Whether `kubectl` runs here. It is not a Debian package; without it, the overlays are
/// assembled by [`assemble`] instead (resources and ConfigMap generators only).
fn kubectl_available() -> bool {
    std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// `kubectl kustomize DIR`: what `kubectl apply -k DIR` would apply.
fn kustomize(dir: &Path) -> Vec<Value> {
    let output = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl");
    assert!(
        output.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    yaml_documents(&String::from_utf8(output.stdout).unwrap(), dir)
}

/// The fields of a kustomization these files use, all that [`assemble`] understands
/// (`labels` it leaves out: no check reads them).
const KUSTOMIZATION_FIELDS: [&str; 5] = ["apiVersion", "kind", "labels", "resources", "configMapGenerator"];

/// A kustomization's documents without kustomize: its resources (directories
/// recursively) and a ConfigMap per generator, named without the hash.
fn assemble(dir: &Path) -> Vec<Value> {
    let file = dir.join("kustomization.yaml");
    let kustomization = read_yaml(&file).remove(0);
    for field in kustomization.as_mapping().unwrap().keys() {
        let field = field.as_str().unwrap();
        assert!(
            KUSTOMIZATION_FIELDS.contains(&field),
            "{}: {field} is not understood by the test's assemble()",
            file.display()
        );
    }
    let mut documents = Vec::new();
    for resource in list(&kustomization, "resources") {
        let path = dir.join(resource.as_str().unwrap());
        if path.is_dir() {
            documents.extend(assemble(&path));
        } else {
            documents.extend(read_yaml(&path));
        }
    }
    for generator in list(&kustomization, "configMapGenerator") {
        let mut data = serde_yaml::Mapping::new();
        for name in list(generator, "files") {
            let name = name.as_str().unwrap();
            let text =
                std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{}: {name}: {e}", file.display()));
            data.insert(name.into(), text.into());
        }
        let mut metadata = serde_yaml::Mapping::new();
        metadata.insert("name".into(), generator["name"].clone());
        let mut config_map = serde_yaml::Mapping::new();
        config_map.insert("apiVersion".into(), "v1".into());
        config_map.insert("kind".into(), "ConfigMap".into());
        config_map.insert("metadata".into(), metadata.into());
        config_map.insert("data".into(), data.into());
        documents.push(config_map.into());
    }
    documents
}

/// Every document each overlay renders (by `kubectl kustomize`, else [`assemble`]),
/// with the overlay's directory.
fn documents() -> Vec<(PathBuf, Value)> {
    let kubectl = kubectl_available();
    if !kubectl {
        eprintln!("kubectl is not installed: the overlays are assembled by the test, not rendered by kustomize");
    }
    let mut documents = Vec::new();
    for overlay in OVERLAYS {
        let dir = kubernetes_dir().join("overlays").join(overlay);
        let rendered = if kubectl { kustomize(&dir) } else { assemble(&dir) };
        documents.extend(rendered.into_iter().map(|document| (dir.clone(), document)));
    }
    documents
}

fn str_of<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |value, key| value.get(key))?.as_str()
}

fn list<'a>(value: &'a Value, key: &str) -> Vec<&'a Value> {
    value
        .get(key)
        .and_then(Value::as_sequence)
        .map(|items| items.iter().collect())
        .unwrap_or_default()
}

/// The pod spec of a workload, wherever its kind keeps it.
fn pod_spec(document: &Value) -> Option<&Value> {
    let spec = document.get("spec")?;
    match document.get("kind")?.as_str()? {
        "Pod" => Some(spec),
        "CronJob" => spec.get("jobTemplate")?.get("spec")?.get("template")?.get("spec"),
        _ => spec.get("template")?.get("spec"),
    }
}

/// The config file text each ConfigMap holds, by (overlay, ConfigMap name, key).
fn config_maps(documents: &[(PathBuf, Value)]) -> BTreeMap<(PathBuf, String, String), String> {
    let mut found = BTreeMap::new();
    for (file, document) in documents {
        if str_of(document, &["kind"]) != Some("ConfigMap") {
            continue;
        }
        let name = str_of(document, &["metadata", "name"]).unwrap().to_owned();
        for (key, text) in document["data"].as_mapping().into_iter().flatten() {
            found.insert(
                (file.clone(), name.clone(), key.as_str().unwrap().to_owned()),
                text.as_str().unwrap().to_owned(),
            );
        }
    }
    found
}

/// The args with `$(VAR)` expanded from the container's env, as Kubernetes does; a
/// value from a field reference (the completion index) stands in as 0.
fn expanded_args(container: &Value) -> Vec<String> {
    let env: Vec<(String, String)> = list(container, "env")
        .into_iter()
        .map(|variable| {
            let value = str_of(variable, &["value"]).unwrap_or("0");
            (str_of(variable, &["name"]).unwrap().to_owned(), value.to_owned())
        })
        .collect();
    list(container, "args")
        .into_iter()
        .map(|arg| {
            let mut arg = arg.as_str().expect("args are strings").to_owned();
            for (name, value) in &env {
                arg = arg.replace(&format!("$({name})"), value);
            }
            assert!(!arg.contains("$("), "{arg}: a variable the container does not define");
            arg
        })
        .collect()
}

fn check_ocisync_container(
    file: &Path,
    pod: &Value,
    container: &Value,
    configs: &BTreeMap<(PathBuf, String, String), String>,
) -> String {
    let at = file.display();
    let args = expanded_args(container);
    let subcommand = args.first().map(String::as_str);
    assert!(
        matches!(subcommand, Some("once" | "run" | "check")),
        "{at}: args must start with once, run or check: {args:?}"
    );
    // The binary itself judges the args: an unknown flag or bad value exits 2.
    let mut with_help: Vec<&str> = args.iter().map(String::as_str).collect();
    with_help.push("--help");
    ocisync(&with_help).expect_code(0);

    let config = mounted_config(file, pod, container, configs);
    assert!(config.contains("version: 1"), "{at}: {config}");

    let non_root =
        |value: &Value| value.get("securityContext").and_then(|s| s.get("runAsNonRoot")) == Some(&Value::Bool(true));
    assert!(non_root(pod) || non_root(container), "{at}: runAsNonRoot is not set");
    let seccomp = |value: &Value| {
        value
            .get("securityContext")
            .and_then(|s| s.get("seccompProfile"))
            .and_then(|p| p.get("type"))
            == Some(&Value::from("RuntimeDefault"))
    };
    assert!(
        seccomp(pod) || seccomp(container),
        "{at}: no seccompProfile RuntimeDefault"
    );
    assert_eq!(
        pod.get("automountServiceAccountToken"),
        Some(&Value::Bool(false)),
        "{at}: ocisync needs no Kubernetes API token"
    );
    assert!(
        container
            .get("resources")
            .and_then(|r| r.get("limits"))
            .and_then(|l| l.get("memory"))
            .is_some(),
        "{at}: no memory limit"
    );
    if subcommand == Some("run") {
        check_probes(file, container, config);
    }
    subcommand.unwrap().to_owned()
}

/// The config file a container reads: a key of a ConfigMap mounted where --config points.
fn mounted_config<'a>(
    file: &Path,
    pod: &Value,
    container: &Value,
    configs: &'a BTreeMap<(PathBuf, String, String), String>,
) -> &'a str {
    let at = file.display();
    let args = expanded_args(container);
    let config_path = args
        .iter()
        .position(|arg| arg == "--config")
        .and_then(|index| args.get(index + 1))
        .unwrap_or_else(|| panic!("{at}: no --config"));
    let (mount_dir, file_name) = config_path.rsplit_once('/').unwrap();
    let mount = list(container, "volumeMounts")
        .into_iter()
        .find(|mount| str_of(mount, &["mountPath"]) == Some(mount_dir))
        .unwrap_or_else(|| panic!("{at}: nothing mounted at {mount_dir}"));
    let volume_name = str_of(mount, &["name"]).unwrap();
    let volume = list(pod, "volumes")
        .into_iter()
        .find(|volume| str_of(volume, &["name"]) == Some(volume_name))
        .unwrap();
    let config_map =
        str_of(volume, &["configMap", "name"]).unwrap_or_else(|| panic!("{at}: config not from a ConfigMap"));
    configs
        .get(&(file.to_owned(), config_map.to_owned(), file_name.to_owned()))
        .unwrap_or_else(|| panic!("{at}: ConfigMap {config_map} has no key {file_name}"))
}

/// A Job (or a CronJob's Jobs) running `once` has an `activeDeadlineSeconds` above what
/// its passes may take: every sync's `max_pass_duration` plus the grace period, so
/// ocisync ends a slow pass itself (and reports it) before Kubernetes kills the pod.
fn check_active_deadline(file: &Path, document: &Value, container: &Value, config: &str) {
    let at = file.display();
    let job_spec = match str_of(document, &["kind"]) {
        Some("CronJob") => &document["spec"]["jobTemplate"]["spec"],
        _ => &document["spec"],
    };
    let active_deadline = job_spec["activeDeadlineSeconds"]
        .as_u64()
        .unwrap_or_else(|| panic!("{at}: no activeDeadlineSeconds"));
    let args = expanded_args(container);
    let grace = args
        .iter()
        .position(|arg| arg == "--grace-period")
        .and_then(|index| args.get(index + 1))
        .map_or(Duration::from_secs(30), |text| humantime::parse_duration(text).unwrap());
    let config: Value = serde_yaml::from_str(config).unwrap();
    let default_limit = str_of(&config, &["defaults", "max_pass_duration"]);
    let budget: Duration = list(&config, "syncs")
        .into_iter()
        .map(|sync| {
            let limit = str_of(sync, &["max_pass_duration"])
                .or(default_limit)
                .unwrap_or_else(|| panic!("{at}: a sync without max_pass_duration: {sync:?}"));
            humantime::parse_duration(limit).unwrap() + grace
        })
        .sum();
    assert!(
        Duration::from_secs(active_deadline) > budget,
        "{at}: activeDeadlineSeconds {active_deadline} is not above the passes' budget {budget:?}"
    );
}

/// `run` must listen where its probes and metrics port point.
fn check_probes(file: &Path, container: &Value, config: &str) {
    let at = file.display();
    let config: Value = serde_yaml::from_str(config).unwrap();
    let listen =
        str_of(&config, &["defaults", "listen"]).unwrap_or_else(|| panic!("{at}: run without defaults.listen"));
    let listen_port: u64 = listen.rsplit_once(':').unwrap().1.parse().unwrap();
    let ports: BTreeMap<String, u64> = list(container, "ports")
        .into_iter()
        .map(|port| {
            let number = port["containerPort"].as_u64().unwrap();
            (str_of(port, &["name"]).unwrap_or_default().to_owned(), number)
        })
        .collect();
    assert!(
        ports.values().any(|port| *port == listen_port),
        "{at}: no containerPort {listen_port}"
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = container
            .get(probe)
            .and_then(|p| p.get("httpGet"))
            .unwrap_or_else(|| panic!("{at}: no {probe}"));
        assert_eq!(str_of(get, &["path"]), Some(path), "{at}: {probe}");
        let port = match &get["port"] {
            Value::Number(number) => number.as_u64().unwrap(),
            Value::String(name) => ports[name],
            other => panic!("{at}: {probe} port {other:?}"),
        };
        assert_eq!(port, listen_port, "{at}: {probe} port is not the listener's");
    }
}

#[test]
fn every_manifest_under_deploy_matches_what_the_binary_serves_and_accepts() {
    let documents = documents();
    let configs = config_maps(&documents);
    let mut forms = BTreeSet::new();
    for (file, document) in &documents {
        let at = file.display();
        assert!(str_of(document, &["apiVersion"]).is_some(), "{at}: no apiVersion");
        let kind = str_of(document, &["kind"]).unwrap_or_else(|| panic!("{at}: no kind"));
        let Some(pod) = pod_spec(document) else {
            continue;
        };
        let volumes: BTreeSet<&str> = list(pod, "volumes")
            .into_iter()
            .map(|volume| str_of(volume, &["name"]).unwrap())
            .collect();
        for container in list(pod, "containers") {
            let image = str_of(container, &["image"]).unwrap_or_else(|| panic!("{at}: container without image"));
            for mount in list(container, "volumeMounts") {
                let name = str_of(mount, &["name"]).unwrap();
                assert!(volumes.contains(name), "{at}: volumeMount {name} has no volume");
            }
            if image.starts_with("ocisync") {
                let subcommand = check_ocisync_container(file, pod, container, &configs);
                if subcommand == "once" {
                    let config = mounted_config(file, pod, container, &configs);
                    check_active_deadline(file, document, container, config);
                }
                forms.insert(format!("{kind} {subcommand}"));
                if kind == "Job" && str_of(&document["spec"], &["completionMode"]) == Some("Indexed") {
                    let completions = document["spec"]["completions"].as_u64().unwrap();
                    let args = expanded_args(container);
                    let shard = args
                        .iter()
                        .position(|arg| arg == "--shard")
                        .and_then(|index| args.get(index + 1))
                        .unwrap_or_else(|| panic!("{at}: an Indexed Job without --shard"));
                    assert_eq!(
                        shard.split_once('/').unwrap().1,
                        completions.to_string(),
                        "{at}: shard count"
                    );
                }
            }
        }
        if kind == "CronJob" {
            assert_eq!(
                str_of(&document["spec"], &["concurrencyPolicy"]),
                Some("Forbid"),
                "{at}"
            );
        }
    }
    let expected: BTreeSet<String> = ["CronJob once", "Deployment run", "Job once"].map(String::from).into();
    assert_eq!(forms, expected, "the three deployment forms");
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, found: &mut BTreeSet<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, found);
        } else {
            found.insert(path.canonicalize().unwrap());
        }
    }
}

/// The files a kustomization reads: itself, its resources (directories recursively) and
/// its generators' files.
fn files_used(dir: &Path, used: &mut BTreeSet<PathBuf>) {
    let file = dir.join("kustomization.yaml");
    let kustomization = read_yaml(&file).remove(0);
    let canonical = |path: PathBuf| {
        path.canonicalize()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    used.insert(canonical(file));
    for resource in list(&kustomization, "resources") {
        let path = dir.join(resource.as_str().unwrap());
        if path.is_dir() {
            files_used(&path, used);
        } else {
            used.insert(canonical(path));
        }
    }
    for generator in list(&kustomization, "configMapGenerator") {
        for name in list(generator, "files") {
            used.insert(canonical(dir.join(name.as_str().unwrap())));
        }
    }
}

/// `Kind/name`, a generated ConfigMap's name without the hash kustomize appends.
fn kinds_and_names(documents: &[Value], generated: &BTreeSet<String>) -> BTreeSet<String> {
    documents
        .iter()
        .map(|document| {
            let kind = str_of(document, &["kind"]).unwrap();
            let mut name = str_of(document, &["metadata", "name"]).unwrap();
            if kind == "ConfigMap" {
                if let Some((base, _hash)) = name.rsplit_once('-').filter(|(base, _)| generated.contains(*base)) {
                    name = base;
                }
            }
            format!("{kind}/{name}")
        })
        .collect()
}

#[test]
fn kubernetes_manifests_are_a_kustomize_base_with_an_overlay_per_form() {
    let overlays_dir = kubernetes_dir().join("overlays");
    let mut overlays: Vec<String> = std::fs::read_dir(&overlays_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    overlays.sort();
    assert_eq!(overlays, OVERLAYS, "one overlay per deployment form");
    let mut used = BTreeSet::new();
    let kubectl = kubectl_available();
    for overlay in OVERLAYS {
        let dir = overlays_dir.join(overlay);
        let kustomization = read_yaml(&dir.join("kustomization.yaml")).remove(0);
        assert!(
            list(&kustomization, "resources").contains(&&Value::from("../../base")),
            "{overlay}: the overlay builds on ../../base"
        );
        files_used(&dir, &mut used);
        let assembled = assemble(&dir);
        let kinds: BTreeSet<&str> = assembled.iter().filter_map(|d| str_of(d, &["kind"])).collect();
        for shared in ["ServiceAccount", "Secret", "ConfigMap"] {
            assert!(kinds.contains(shared), "{overlay}: no {shared} in {kinds:?}");
        }
        // The test's assembly of the files is what kustomize makes of them.
        if kubectl {
            let generated = list(&kustomization, "configMapGenerator")
                .into_iter()
                .map(|generator| str_of(generator, &["name"]).unwrap().to_owned())
                .collect();
            assert_eq!(
                kinds_and_names(&kustomize(&dir), &generated),
                kinds_and_names(&assembled, &generated),
                "{overlay}"
            );
        }
    }
    let mut present = BTreeSet::new();
    files_under(&kubernetes_dir(), &mut present);
    let unused: Vec<_> = present.difference(&used).collect();
    assert!(unused.is_empty(), "files no kustomization reads: {unused:?}");
}

#[test]
fn dockerfile_is_multi_stage_and_runs_ocisync_as_non_root() {
    let text = std::fs::read_to_string(workspace_root().join("Dockerfile")).unwrap();
    let instructions: Vec<(&str, &str)> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once(' '))
        .collect();
    let stages = instructions.iter().filter(|(keyword, _)| *keyword == "FROM").count();
    assert!(stages >= 2, "a build stage and a runtime stage");
    // Every base is pinned: a digest, or a tag naming an exact release (`12.11-slim`,
    // `1.95.0-bookworm`), never a floating one (`latest`, `bookworm-slim`, `1-bookworm`).
    for (_, from) in instructions.iter().filter(|(keyword, _)| *keyword == "FROM") {
        let image = from.split_whitespace().next().unwrap();
        let pinned = image.contains("@sha256:")
            || image.rsplit_once(':').is_some_and(|(_, tag)| {
                let release = tag.split('-').next().unwrap_or_default();
                release.contains('.') && release.split('.').all(|part| part.parse::<u32>().is_ok())
            });
        assert!(pinned, "FROM {image} is not pinned to a release or digest");
    }
    let last_from = instructions
        .iter()
        .rposition(|(keyword, _)| *keyword == "FROM")
        .unwrap();
    let user = instructions[last_from..]
        .iter()
        .rev()
        .find(|(keyword, _)| *keyword == "USER")
        .map(|(_, user)| user.trim())
        .expect("a USER in the runtime stage");
    let uid = user.split(':').next().unwrap();
    assert!(uid != "root" && uid != "0", "runs as {user}");
    let entrypoint = instructions
        .iter()
        .find(|(keyword, _)| *keyword == "ENTRYPOINT")
        .expect("an ENTRYPOINT");
    assert!(entrypoint.1.contains("ocisync"), "{}", entrypoint.1);
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    let dir = workspace_root().join("deploy/prometheus");
    let checked = promtool(&["check", "rules", "alerts.yaml"], &dir);
    assert!(checked.contains("SUCCESS: 4 rules found"), "{checked}");
    // Each alert fires when it should and stays quiet otherwise (series in the file).
    let tested = promtool(&["test", "rules", "alerts.test.yaml"], &dir);
    assert!(tested.contains("SUCCESS"), "{tested}");
    let rules: Value = serde_yaml::from_str(&std::fs::read_to_string(dir.join("alerts.yaml")).unwrap()).unwrap();
    let alerts: BTreeSet<&str> = list(&rules["groups"][0], "rules")
        .into_iter()
        .filter_map(|rule| str_of(rule, &["alert"]))
        .collect();
    let expected: BTreeSet<&str> = [
        "OcisyncSyncFailing",
        "OcisyncMirrorStale",
        "OcisyncPullQuotaLow",
        "OcisyncPassTooLong",
    ]
    .into();
    assert_eq!(alerts, expected);
}

/// Every `expr` of a Grafana dashboard, however deep its panels nest.
fn exprs(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(fields) => {
            for (key, field) in fields {
                match field {
                    serde_json::Value::String(expr) if key == "expr" => found.push(expr.clone()),
                    other => exprs(other, found),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| exprs(item, found)),
        _ => {}
    }
}

#[test]
fn the_dashboard_is_json_and_its_queries_are_promql() {
    let path = workspace_root().join("deploy/grafana/ocisync.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let mut found = Vec::new();
    exprs(&dashboard, &mut found);
    assert!(found.len() >= 10, "{found:?}");
    // promtool parses PromQL only inside rules: each query becomes a recording rule,
    // with Grafana's variables given values.
    let rules: Vec<serde_json::Value> = found
        .iter()
        .enumerate()
        .map(|(index, expr)| {
            let expr = expr.replace("$__rate_interval", "5m").replace("$sync", ".*");
            serde_json::json!({"record": format!("dashboard:query{index}"), "expr": expr})
        })
        .collect();
    let file = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    let dir = tempfile::tempdir().unwrap();
    // JSON is YAML.
    std::fs::write(dir.path().join("dashboard.rules.yaml"), file.to_string()).unwrap();
    let checked = promtool(&["check", "rules", "dashboard.rules.yaml"], dir.path());
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", found.len())),
        "{checked}"
    );
}
