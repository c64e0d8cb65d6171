//! End-to-end tests of the toolkit against real `docker-registry` processes.

use reqwest::StatusCode;

use crate::client::RegistryClient;
use crate::corpus::{self, repos, standard_corpus, THING_ARTIFACT_TYPE};
use crate::image::{image, layer, sha256_digest, Format, DOCKER_LIST, OCI_INDEX};
use crate::inspect::{assert_closure, assert_mirror_complete, blob, catalog, manifest, tags};
use crate::proxy::CountingProxy;
use crate::registry::{probe_v2, RegistryOptions, TestRegistry};
use crate::seed::{push_blob, push_image};

#[test]
fn registry_starts_and_answers_v2() {
    let registry = TestRegistry::start();
    assert_eq!(registry.host(), format!("127.0.0.1:{}", registry.port()));
    assert_eq!(registry.url(), format!("http://{}", registry.host()));
    let (status, head) = probe_v2(registry.port()).expect("registry answers");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("docker-distribution-api-version: registry/2.0"),
        "{head}"
    );
}

#[test]
fn drop_stops_the_registry() {
    let registry = TestRegistry::start();
    let port = registry.port();
    let dir = registry.dir().to_path_buf();
    assert!(probe_v2(port).is_some());
    drop(registry);
    assert!(probe_v2(port).is_none(), "port {port} still answers after drop");
    assert!(!dir.exists(), "temp dir {dir:?} not removed");
}

#[tokio::test]
async fn standard_corpus_round_trips() {
    let registry = TestRegistry::start();
    let url = registry.url();
    let corpus = standard_corpus();
    corpus::seed(&url, &corpus).await;

    let expected_repos = repos(&corpus);
    assert_eq!(catalog(&url).await, expected_repos);
    // Small pages exercise Link-header pagination.
    assert_eq!(RegistryClient::new().catalog_paged(&url, 2).await, expected_repos);

    for s in &corpus {
        let (bytes, content_type, digest) = manifest(&url, &s.repo, &s.tag)
            .await
            .unwrap_or_else(|| panic!("{}:{} missing", s.repo, s.tag));
        assert_eq!(digest, s.image.manifest.digest, "{}:{}", s.repo, s.tag);
        assert_eq!(bytes, s.image.manifest.bytes);
        assert_eq!(content_type, s.image.manifest.media_type);
    }
    for repo in &expected_repos {
        let mut want: Vec<String> = corpus
            .iter()
            .filter(|s| &s.repo == repo)
            .map(|s| s.tag.clone())
            .collect();
        want.sort();
        assert_eq!(tags(&url, repo).await, want, "tags of {repo}");
        assert_closure(&url, repo).await;
    }
    assert!(tags(&url, "no/such/repo").await.is_empty());
    assert!(manifest(&url, "team/app", "no-such-tag").await.is_none());

    let pairs: Vec<(&str, &str)> = expected_repos.iter().map(|r| (r.as_str(), r.as_str())).collect();
    assert_mirror_complete(&url, &url, &pairs).await;

    // Spot checks of the corpus' media types as served.
    let media = |repo: &'static str, tag: &'static str| {
        let url = url.clone();
        async move { manifest(&url, repo, tag).await.unwrap().1 }
    };
    assert_eq!(media("library/alpine", "latest").await, OCI_INDEX);
    assert_eq!(media("library/busybox", "latest").await, DOCKER_LIST);
    let (art, _, _) = manifest(&url, "artifacts/thing", "v1").await.unwrap();
    let art: serde_json::Value = serde_json::from_slice(&art).unwrap();
    assert_eq!(art["artifactType"], THING_ARTIFACT_TYPE);
}

#[tokio::test]
async fn mirror_check_detects_missing_tag() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let img = image(Format::Oci, ("linux", "amd64"), vec![layer(Format::Oci, 1, 100)], "x");
    push_image(&src.url(), "a/b", "t1", &img).await;
    push_image(&src.url(), "a/b", "t2", &img).await;
    push_image(&dst.url(), "c", "t1", &img).await;
    let (s, d) = (src.url(), dst.url());
    let result = tokio::spawn(async move {
        assert_mirror_complete(&s, &d, &[("a/b", "c")]).await;
    })
    .await;
    let panic = result.expect_err("mirror check must fail").into_panic();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("c:t2 is missing"), "{message}");
}

#[tokio::test]
async fn proxy_forwards_and_records_writes() {
    let registry = TestRegistry::start();
    let proxy = CountingProxy::start(&registry.url());
    let img = image(
        Format::Docker,
        ("linux", "amd64"),
        vec![layer(Format::Docker, 42, 4096)],
        "via-proxy",
    );
    push_image(&proxy.url(), "proxied/repo", "v1", &img).await;

    let writes = proxy.writes();
    assert!(!writes.is_empty());
    // Upload PUTs follow the registry's Location, which must point back at the proxy.
    assert!(
        writes
            .iter()
            .any(|r| r.method == "PUT" && r.path.contains("/blobs/uploads/") && r.status == 201),
        "{writes:?}"
    );
    assert!(writes
        .iter()
        .any(|r| r.method == "PUT" && r.path == "/v2/proxied/repo/manifests/v1" && r.status == 201));
    assert!(proxy.requests().iter().any(|r| r.method == "HEAD"));

    // Visible directly in the upstream registry.
    assert_eq!(
        manifest(&registry.url(), "proxied/repo", "v1").await.unwrap().2,
        img.manifest.digest
    );

    proxy.reset();
    assert!(proxy.requests().is_empty());
    assert_eq!(tags(&proxy.url(), "proxied/repo").await, vec!["v1"]);
    assert!(manifest(&proxy.url(), "proxied/repo", "v1").await.is_some());
    assert_closure(&proxy.url(), "proxied/repo").await;
    // HEAD through the proxy keeps the upstream Content-Length.
    let layer_blob = &img.blobs[1];
    assert_eq!(
        RegistryClient::new()
            .blob_size(&proxy.url(), "proxied/repo", &layer_blob.digest)
            .await,
        Some(layer_blob.size())
    );
    assert!(proxy.writes().is_empty(), "{:?}", proxy.writes());
    let reads = proxy.requests();
    assert!(reads
        .iter()
        .any(|r| r.method == "GET" && r.path == "/v2/proxied/repo/tags/list" && r.status == 200));
    assert!(reads.iter().all(|r| !r.is_write()));
}

#[tokio::test]
async fn large_blob_streams_through_proxy() {
    let registry = TestRegistry::start();
    let proxy = CountingProxy::start(&registry.url());
    let big = layer(Format::Oci, 0xB16, 40 * 1024 * 1024);
    push_blob(&proxy.url(), "big/blob", &big).await;
    let back = blob(&proxy.url(), "big/blob", &big.digest)
        .await
        .expect("blob readable through proxy");
    assert_eq!(back.len(), big.bytes.len());
    assert_eq!(sha256_digest(&back), big.digest);
    assert!(proxy.writes().iter().any(|r| r.method == "PUT" && r.status == 201));
}

#[tokio::test]
async fn htpasswd_registry_requires_basic_auth() {
    let registry = TestRegistry::start_with(RegistryOptions {
        htpasswd: Some(("alice".into(), "s3cret".into())),
    });
    assert_eq!(registry.credentials(), Some(("alice", "s3cret")));
    let (status, _) = probe_v2(registry.port()).unwrap();
    assert_eq!(status, 401);

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let v2 = format!("{}/v2/", registry.url());
    let anonymous = http.get(&v2).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let challenge = anonymous
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(challenge.starts_with("Basic"), "{challenge}");
    let wrong = http.get(&v2).basic_auth("alice", Some("nope")).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let ok = http.get(&v2).basic_auth("alice", Some("s3cret")).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    // Seeding and reading work with an authenticated client.
    let client = registry.client();
    let img = image(
        Format::Oci,
        ("linux", "arm64"),
        vec![layer(Format::Oci, 9, 512)],
        "auth",
    );
    client.push_image(&registry.url(), "private/app", "1", &img).await;
    assert_eq!(client.tags(&registry.url(), "private/app").await, vec!["1"]);
    client.assert_closure(&registry.url(), "private/app").await;
}

#[tokio::test]
async fn a_registry_with_a_notification_endpoint_posts_push_events_with_its_headers() {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http_body_util::Full;

    use crate::serve::LocalServer;

    /// The `Authorization` header and the envelope of each request.
    type Received = Vec<(Option<String>, serde_json::Value)>;
    let received: Arc<Mutex<Received>> = Arc::default();
    let recorder = Arc::clone(&received);
    let listener = LocalServer::start(
        "events",
        Arc::new(move |parts, body| {
            let authorization = parts
                .headers
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let envelope = serde_json::from_slice(body).unwrap_or_default();
            recorder.lock().unwrap().push((authorization, envelope));
            hyper::Response::new(Full::new(Bytes::new()))
        }),
    );
    let registry = TestRegistry::builder()
        .notify(
            &format!("{}/events", listener.url()),
            &[("Authorization", "Bearer t0ken")],
        )
        .start();
    let pushed = image(
        Format::Oci,
        ("linux", "amd64"),
        vec![layer(Format::Oci, 7, 64)],
        "notify",
    );
    push_image(&registry.url(), "team/app", "v1", &pushed).await;

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let tag_event = loop {
        let found = received.lock().unwrap().iter().find_map(|(authorization, envelope)| {
            envelope["events"].as_array()?.iter().find_map(|event| {
                (event["action"] == "push" && event["target"]["tag"] == "v1")
                    .then(|| (authorization.clone(), event.clone()))
            })
        });
        if let Some(found) = found {
            break found;
        }
        assert!(std::time::Instant::now() < deadline, "no push event for team/app:v1");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(tag_event.0.as_deref(), Some("Bearer t0ken"));
    assert_eq!(tag_event.1["target"]["repository"], "team/app");
    assert_eq!(tag_event.1["target"]["digest"], pushed.manifest.digest.as_str());
}
