//! Event-driven sync: `ocisync run` takes registries' push notifications on its
//! listener and mirrors the pushed tags between its (hourly) passes.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ocisync_testkit::{assert_mirror_complete, manifest, push_image, small_image, CountingProxy, TestRegistry};

use crate::support::{config_with_syncs, promtool_accepts_metrics, Daemon, Mirror};

const TOKEN: &str = "events-test-token-0123456789";
const TOKEN_ENV: &str = "OCISYNC_TEST_HOOK_TOKEN";

/// Generous: the lag is measured in `docs/benchmarks.md`, not asserted here.
const ARRIVAL_LIMIT: Duration = Duration::from_secs(10);

/// `ocisync run` (interval 1h, rule `prefix: team/*`) between an upstream and a
/// mirror, each behind a recording proxy, with notifications from the upstream
/// accepted on a listener whose address is fixed before the upstream starts.
struct World {
    // Dropped first: the daemon stops before the registries it talks to.
    daemon: Daemon,
    address: String,
    upstream_proxy: CountingProxy,
    mirror_proxy: CountingProxy,
    registries: Mirror,
}

impl World {
    /// `registry_notifies`: the upstream registry itself posts its events to ocisync
    /// (otherwise the test posts them).
    fn start(registry_notifies: bool) -> World {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let upstream = if registry_notifies {
            TestRegistry::builder()
                .notify(
                    &format!("http://{address}/notifications/upstream"),
                    &[("Authorization", &format!("Bearer {TOKEN}"))],
                )
                .start()
        } else {
            TestRegistry::start()
        };
        let registries = Mirror::between(upstream, TestRegistry::start());
        let upstream_proxy = CountingProxy::start(&registries.upstream.url());
        let mirror_proxy = CountingProxy::start(&registries.mirror.url());
        let config = config_with_syncs(
            "  - name: hub\n    from: upstream\n    to: mirror\n    interval: 1h\n    content:\n      - prefix: \"team/*\"\n",
        )
        .replace(
            "    urls: [\"{upstream}\"]\n",
            &format!("    urls: [\"{{upstream}}\"]\n    notifications: {{token_env: {TOKEN_ENV}}}\n"),
        ) + "defaults:\n  retry: {max_attempts: 3, initial_delay: 10ms, max_delay: 50ms}\n";
        registries.write_config_via(
            &config,
            &[("{upstream}", &upstream_proxy.url()), ("{mirror}", &mirror_proxy.url())],
        );
        let report = registries.report_path();
        let mut daemon = registries.daemon_with_env(
            &[
                "--report",
                report.to_str().unwrap(),
                "--listen",
                &address,
                "--log-format",
                "json",
            ],
            &[(TOKEN_ENV, TOKEN)],
        );
        daemon.wait_for_log("the first pass", Duration::from_secs(30), |log| {
            log.iter().any(|line| line.contains("\"pass finished\""))
        });
        World {
            daemon,
            address,
            upstream_proxy,
            mirror_proxy,
            registries,
        }
    }

    /// `POST /notifications/upstream` with the right token; the status and body.
    fn notify(&self, body: &str) -> (u16, String) {
        post(
            &self.address,
            "/notifications/upstream",
            Some(&format!("Bearer {TOKEN}")),
            body,
        )
    }

    /// Waits until `count` event-driven syncs have finished in all.
    fn wait_for_event_syncs(&mut self, count: usize) {
        self.daemon
            .wait_for_log("event-driven syncs", Duration::from_secs(60), |log| {
                log.iter()
                    .filter(|line| line.contains("\"event-driven sync finished\""))
                    .count()
                    >= count
            });
    }

    fn metrics(&self) -> String {
        get(&self.address, "/metrics")
    }
}

/// One plain HTTP/1.1 request; the server closes after answering.
fn request(address: &str, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect to the listener");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").expect("a complete response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

fn post(address: &str, path: &str, authorization: Option<&str>, body: &str) -> (u16, String) {
    let authorization = authorization
        .map(|value| format!("Authorization: {value}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/vnd.docker.distribution.events.v1+json\r\n{authorization}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    request(address, &head, body.as_bytes())
}

fn get(address: &str, path: &str) -> String {
    let head = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    request(address, &head, b"").1
}

fn metric_value(exposition: &str, sample: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// A distribution envelope with one push event, as distribution 2.8 sends it.
fn push_envelope(repository: &str, tag: &str, digest: &str) -> String {
    format!(
        r#"{{"events": [{{"id": "e1", "timestamp": "{}", "action": "push",
            "target": {{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "{digest}",
              "repository": "{repository}", "url": "http://127.0.0.1:1/v2/{repository}/manifests/{digest}", "tag": "{tag}"}},
            "request": {{"id": "r1", "host": "upstream", "method": "PUT"}}, "actor": {{}},
            "source": {{"addr": "upstream", "instanceID": "i"}}}}]}}"#,
        chrono::Utc::now().to_rfc3339()
    )
}

/// The digest of `repo:tag` at the registry, once it is there (within the limit).
async fn wait_for_digest(url: &str, repo: &str, tag: &str, digest: &str) {
    let deadline = Instant::now() + ARRIVAL_LIMIT;
    loop {
        let found = manifest(url, repo, tag).await.map(|(_, _, found)| found);
        if found.as_deref() == Some(digest) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{repo}:{tag} not at {digest} within {ARRIVAL_LIMIT:?} (found {found:?})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_after_the_first_pass_reaches_the_mirror_and_a_retag_moves_it() {
    let mut world = World::start(true);
    let first = small_image("first", 1);
    push_image(&world.registries.upstream.url(), "team/app", "v1", &first).await;
    wait_for_digest(&world.registries.mirror.url(), "team/app", "v1", &first.manifest.digest).await;
    assert_mirror_complete(
        &world.registries.upstream.url(),
        &world.registries.mirror.url(),
        &[("team/app", "team/app")],
    )
    .await;

    // The same tag to another image: the mirror follows.
    let second = small_image("second", 2);
    push_image(&world.registries.upstream.url(), "team/app", "v1", &second).await;
    wait_for_digest(
        &world.registries.mirror.url(),
        "team/app",
        "v1",
        &second.manifest.digest,
    )
    .await;

    world.wait_for_event_syncs(2);
    let metrics = world.metrics();
    assert!(
        metric_value(&metrics, "ocisync_mirror_lag_seconds_count{sync=\"hub\"}") >= 2.0,
        "two tags arrived by events:\n{metrics}"
    );
    assert!(
        metric_value(
            &metrics,
            "ocisync_notifications_total{registry=\"upstream\",code=\"202\"}"
        ) >= 2.0
    );
    assert!(
        metric_value(
            &metrics,
            "ocisync_events_total{registry=\"upstream\",kind=\"push\",outcome=\"ignored\"}"
        ) >= 1.0,
        "blob pushes are ignored:\n{metrics}"
    );
    // Prometheus' own linter accepts the event families (the histogram included).
    promtool_accepts_metrics(&metrics);
    // The last event-driven sync wrote the report, marked as such.
    let report = world.registries.report();
    assert_eq!(report["trigger"], "event", "{report}");
    assert_eq!(report["syncs"][0]["repositories"][0]["source"], "team/app");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_and_ignored_notifications_sync_nothing() {
    let mut world = World::start(false);
    let refused = small_image("refused", 10);
    let synced = small_image("synced", 11);
    push_image(&world.registries.upstream.url(), "team/app", "v1", &refused).await;
    push_image(&world.registries.upstream.url(), "team/app", "v2", &synced).await;
    push_image(&world.registries.upstream.url(), "other/app", "v1", &refused).await;
    let upstream_seen = world.upstream_proxy.requests().len();
    let mirror_seen = world.mirror_proxy.requests().len();

    let event = push_envelope("team/app", "v1", &refused.manifest.digest);
    let path = "/notifications/upstream";
    for authorization in [None, Some("Bearer wrong-token-0123456789"), Some(TOKEN)] {
        let (status, _) = post(&world.address, path, authorization, &event);
        assert_eq!(status, 401, "{authorization:?}");
    }
    let (status, body) = world.notify("{\"events\": \"not a list\"}");
    assert_eq!(status, 400);
    assert!(body.starts_with("distribution envelope: invalid type"), "{body}");
    assert_eq!(body.trim_end().lines().count(), 1, "one line: {body}");
    // Refused by its declared length, before any of it is read.
    let (status, _) = request(
        &world.address,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            2 * 1024 * 1024
        ),
        b"",
    );
    assert_eq!(status, 413);
    let (status, _) = post(
        &world.address,
        "/notifications/mirror",
        Some(&format!("Bearer {TOKEN}")),
        &event,
    );
    assert_eq!(status, 404, "the mirror takes no notifications");
    let (status, body) = world.notify(&push_envelope("other/app", "v1", &refused.manifest.digest));
    assert_eq!(
        (status, body.as_str()),
        (202, "accepted: 0 queued, 0 coalesced, 1 ignored\n")
    );
    let metrics = world.metrics();
    assert_eq!(
        metric_value(&metrics, "ocisync_event_queue_repositories"),
        0.0,
        "{metrics}"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "ocisync_notifications_total{registry=\"upstream\",code=\"401\"}"
        ),
        3.0
    );
    assert!(!metrics.contains(TOKEN), "the token is never shown");

    // A barrier: an accepted event for another tag, synced alone.
    let (status, _) = world.notify(&push_envelope("team/app", "v2", &synced.manifest.digest));
    assert_eq!(status, 202);
    world.wait_for_event_syncs(1);
    assert_eq!(
        manifest(&world.registries.mirror.url(), "team/app", "v2")
            .await
            .map(|(_, _, digest)| digest),
        Some(synced.manifest.digest.clone())
    );
    assert!(
        manifest(&world.registries.mirror.url(), "team/app", "v1")
            .await
            .is_none(),
        "the refused event synced nothing"
    );
    let touched: Vec<String> = (world.upstream_proxy.requests()[upstream_seen..].iter())
        .chain(&world.mirror_proxy.requests()[mirror_seen..])
        .map(|request| request.path.clone())
        .collect();
    assert!(!touched.is_empty(), "the barrier's sync went through the proxies");
    assert!(
        touched.iter().all(|path| path.contains("/team/app/")),
        "only the accepted event's repository was asked for: {touched:#?}"
    );
    assert!(
        !world.daemon.log.join("\n").contains(TOKEN),
        "the token is never logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_events_coalesces_into_few_syncs_per_repository() {
    let mut world = World::start(false);
    let mut pushed = Vec::new();
    for index in 0..10 {
        let repository = format!("team/r{index}");
        for tag in ["a", "b"] {
            let image = small_image(&format!("{repository}:{tag}"), 100 + index * 2 + u64::from(tag == "b"));
            push_image(&world.registries.upstream.url(), &repository, tag, &image).await;
            pushed.push((repository.clone(), tag, image.manifest.digest.clone()));
        }
    }
    // 1,000 events, 100 per repository, from 8 senders at once.
    let bodies: Vec<String> = (0..1000)
        .map(|index| {
            let (repository, tag, digest) = &pushed[index % pushed.len()];
            push_envelope(repository, tag, digest)
        })
        .collect();
    let address = world.address.clone();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let senders: Vec<_> = bodies
            .chunks(125)
            .map(|chunk| {
                let address = address.clone();
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|body| {
                            post(
                                &address,
                                "/notifications/upstream",
                                Some(&format!("Bearer {TOKEN}")),
                                body,
                            )
                            .0
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        senders.into_iter().flat_map(|sender| sender.join().unwrap()).collect()
    });
    assert_eq!(statuses.len(), 1000);
    assert!(
        statuses.iter().all(|status| *status == 202 || *status == 503),
        "accepted, or refused for a full queue: {statuses:?}"
    );
    let metrics = world.metrics();
    let outcome = |outcome: &str| {
        metric_value(
            &metrics,
            &format!("ocisync_events_total{{registry=\"upstream\",kind=\"push\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(
        outcome("queued") + outcome("coalesced") + outcome("rejected"),
        1000.0,
        "{metrics}"
    );
    assert!(
        outcome("coalesced") >= 800.0,
        "most events joined work already waiting:\n{metrics}"
    );

    // Every pushed tag arrives.
    for (repository, tag, digest) in &pushed {
        wait_for_digest(&world.registries.mirror.url(), repository, tag, digest).await;
    }
    // Few syncs per repository, not one per event. Each entry queued becomes one sync
    // (and no event came after the metrics were read), so all are counted once the log
    // shows as many.
    let queued = outcome("queued") as usize;
    world
        .daemon
        .wait_for_log("a sync per queued entry", Duration::from_secs(30), |log| {
            log.iter().filter(|line| line.contains("\"syncing on events\"")).count() >= queued
        });
    let mut syncs_per_repository: BTreeMap<String, usize> = BTreeMap::new();
    for line in &world.daemon.log {
        let event: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        if event["message"] == "syncing on events" {
            *syncs_per_repository
                .entry(event["repo"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
    }
    assert_eq!(syncs_per_repository.len(), 10, "{syncs_per_repository:?}");
    assert_eq!(syncs_per_repository.values().sum::<usize>(), queued);
    assert!(
        syncs_per_repository.values().all(|count| *count <= 20),
        "100 events per repository became at most 20 syncs each: {syncs_per_repository:?}"
    );
}

/// Harbor's `Default` payload for `event_type` (goharbor.io, "Configure Webhook
/// Notifications"): one resource per tag of the artifact `digest` of `repo`.
fn harbor_payload(event_type: &str, repo: &str, digest: &str, tags: &[&str]) -> String {
    let (namespace, name) = repo.split_once('/').unwrap();
    let resources: Vec<serde_json::Value> = tags
        .iter()
        .map(|tag| serde_json::json!({"digest": digest, "tag": tag, "resource_url": format!("harbor.example/{repo}:{tag}")}))
        .collect();
    let repository = serde_json::json!({
        "date_created": 1586922308, "name": name, "namespace": namespace, "repo_full_name": repo, "repo_type": "private"
    });
    let occur_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let event_data = serde_json::json!({"resources": resources, "repository": repository});
    serde_json::json!({"type": event_type, "occur_at": occur_at, "operator": "admin", "event_data": event_data})
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_harbor_push_webhook_syncs_its_tags() {
    let mut world = World::start(false);
    let pushed = small_image("harbor", 20);
    push_image(&world.registries.upstream.url(), "team/web", "1.27", &pushed).await;
    push_image(&world.registries.upstream.url(), "team/web", "latest", &pushed).await;
    let digest = &pushed.manifest.digest;
    let webhook = harbor_payload("PUSH_ARTIFACT", "team/web", digest, &["1.27", "latest"]);
    let (status, body) = world.notify(&webhook);
    assert_eq!(
        (status, body.as_str()),
        (202, "accepted: 1 queued, 1 coalesced, 0 ignored\n")
    );
    world.wait_for_event_syncs(1);
    assert_mirror_complete(
        &world.registries.upstream.url(),
        &world.registries.mirror.url(),
        &[("team/web", "team/web")],
    )
    .await;

    // A Harbor delete is acknowledged and ignored: pruning is not built.
    let delete = harbor_payload("DELETE_ARTIFACT", "team/web", digest, &["1.27", "latest"]);
    let (status, body) = world.notify(&delete);
    assert_eq!(
        (status, body.as_str()),
        (202, "accepted: 0 queued, 0 coalesced, 2 ignored\n")
    );
}
