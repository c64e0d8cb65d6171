//! Tests of [`HubLikeRegistry`] with plain reqwest (no redirects followed), against a real
//! `docker-registry` behind it.

use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};

use super::HubLikeRegistry;
use crate::auth_tests::http;
use crate::bearer::parse_bearer_challenge;
use crate::image::{image, layer, sha256_digest, Format, Image};
use crate::token::TOKEN_SERVICE;
use crate::RegistryClient;

fn alpine() -> Image {
    image(
        Format::Oci,
        ("linux", "amd64"),
        vec![layer(Format::Oci, 1, 4096)],
        "alpine",
    )
}

/// A token for `scope` from the hub's token service, anonymous or as `user`.
async fn token(hub: &HubLikeRegistry, user: Option<(&str, &str)>, scope: &str) -> String {
    let mut request = http()
        .get(hub.realm())
        .query(&[("service", TOKEN_SERVICE), ("scope", scope)]);
    if let Some((name, password)) = user {
        request = request.basic_auth(name, Some(password));
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    body["token"].as_str().unwrap().to_owned()
}

async fn anonymous_pull_token(hub: &HubLikeRegistry, repo: &str) -> String {
    token(hub, None, &format!("repository:{repo}:pull")).await
}

/// Sends `method url` with the token, if any; returns status, headers and body.
async fn call(method: Method, url: &str, token: Option<&str>) -> (StatusCode, HeaderMap, serde_json::Value) {
    // distribution 2.8 hides OCI manifests from clients that do not accept them.
    let accept = [Format::Oci.manifest_media_type(), Format::Docker.manifest_media_type()].join(", ");
    let mut request = http().request(method, url).header(ACCEPT, accept);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or_default();
    (status, headers, body)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

/// `(ratelimit-limit, ratelimit-remaining)`.
fn rate_limit(headers: &HeaderMap) -> (Option<&str>, Option<&str>) {
    (
        header(headers, "ratelimit-limit"),
        header(headers, "ratelimit-remaining"),
    )
}

fn origin(url: &str) -> String {
    Url::parse(url).unwrap().origin().ascii_serialization()
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_is_refused_even_with_a_valid_token() {
    let hub = HubLikeRegistry::start();
    hub.push_image("library/alpine", "3.20", &alpine()).await;
    let writer_token = token(&hub, Some(hub.writer()), "registry:catalog:*").await;
    assert_eq!(
        hub.token_server().requests().last().unwrap().granted,
        ["registry:catalog:*"]
    );
    // The token is valid: the backing registry lists its catalog with it.
    let backing_catalog = format!("{}/v2/_catalog", hub.backing().url());
    let (status, _, body) = call(Method::GET, &backing_catalog, Some(&writer_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["repositories"], serde_json::json!(["library/alpine"]));

    let catalog = format!("{}/v2/_catalog", hub.url());
    let (status, headers, body) = call(Method::GET, &catalog, Some(&writer_token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    assert_eq!(body["errors"][0]["message"], "authentication required");
    let challenge = parse_bearer_challenge(header(&headers, "www-authenticate").unwrap()).unwrap();
    assert_eq!(challenge.realm, hub.realm());
    assert_eq!(challenge.scope.as_deref(), Some("registry:catalog:*"));
    assert!(header(&headers, "www-authenticate")
        .unwrap()
        .contains("insufficient_scope"));

    let (status, headers, _) = call(Method::GET, &format!("{catalog}?n=10"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!headers[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
    assert_eq!(hub.catalog_requests(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_tokens_pull_only_the_repository_they_name() {
    let hub = HubLikeRegistry::start();
    hub.push_image("library/alpine", "3.20", &alpine()).await;
    hub.push_image("library/busybox", "1.36", &alpine()).await;
    let alpine_manifest = format!("{}/v2/library/alpine/manifests/3.20", hub.url());
    let busybox_manifest = format!("{}/v2/library/busybox/manifests/1.36", hub.url());

    // The challenge sends clients to the token service, on another origin.
    let (status, headers, _) = call(Method::GET, &alpine_manifest, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = parse_bearer_challenge(header(&headers, "www-authenticate").unwrap()).unwrap();
    assert_eq!(challenge.realm, hub.realm());
    assert_ne!(origin(&challenge.realm), origin(&hub.url()));
    assert_eq!(challenge.scope.as_deref(), Some("repository:library/alpine:pull"));

    let alpine_token = anonymous_pull_token(&hub, "library/alpine").await;
    let last = hub.token_server().requests().pop().unwrap();
    assert_eq!(
        (last.user, last.granted),
        (None, vec!["repository:library/alpine:pull".to_owned()])
    );
    assert_eq!(
        call(Method::GET, &alpine_manifest, Some(&alpine_token)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(Method::GET, &busybox_manifest, Some(&alpine_token)).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Anonymous: pull, never push.
    let push_token = token(&hub, None, "repository:library/alpine:pull,push").await;
    assert_eq!(
        hub.token_server().requests().pop().unwrap().granted,
        ["repository:library/alpine:pull"]
    );
    let upload = format!("{}/v2/library/alpine/blobs/uploads/", hub.url());
    assert_eq!(
        call(Method::POST, &upload, Some(&push_token)).await.0,
        StatusCode::UNAUTHORIZED
    );

    // testkit's own client follows the challenge anonymously.
    let found = RegistryClient::new()
        .manifest(&hub.url(), "library/busybox", "1.36")
        .await;
    assert_eq!(found.unwrap().2, alpine().manifest.digest);
}

#[tokio::test(flavor = "multi_thread")]
async fn blob_downloads_are_redirected_to_the_cdn_without_credentials() {
    let hub = HubLikeRegistry::start();
    let image = alpine();
    hub.push_image("library/alpine", "3.20", &image).await;
    let layer_digest = image
        .blobs
        .iter()
        .find(|b| b.bytes.len() == 4096)
        .unwrap()
        .digest
        .clone();
    let blob_url = format!("{}/v2/library/alpine/blobs/{layer_digest}", hub.url());

    // The backing registry checks the token before anything is redirected.
    assert_eq!(call(Method::GET, &blob_url, None).await.0, StatusCode::UNAUTHORIZED);
    let pull_token = anonymous_pull_token(&hub, "library/alpine").await;
    let (status, headers, _) = call(Method::GET, &blob_url, Some(&pull_token)).await;
    assert_eq!(status, StatusCode::TEMPORARY_REDIRECT);
    let location = header(&headers, "location").unwrap().to_owned();
    assert_eq!(origin(&location), origin(&hub.cdn_url()));
    assert_ne!(origin(&location), origin(&hub.url()));

    let downloaded = http().get(&location).send().await.unwrap();
    assert_eq!(downloaded.status(), StatusCode::OK);
    assert_eq!(sha256_digest(&downloaded.bytes().await.unwrap()), layer_digest);
    // A HEAD is answered by the registry itself.
    assert_eq!(call(Method::HEAD, &blob_url, Some(&pull_token)).await.0, StatusCode::OK);

    // The signature covers the path: another blob's path with this signature is refused.
    let config_digest = image
        .blobs
        .iter()
        .find(|b| b.digest != layer_digest)
        .unwrap()
        .digest
        .clone();
    let storage_dirs = |digest: &str| format!("/{}/{}/", &digest[7..9], &digest[7..]);
    let other = location.replace(&storage_dirs(&layer_digest), &storage_dirs(&config_digest));
    assert_ne!(other, location);
    assert_eq!(http().get(&other).send().await.unwrap().status(), StatusCode::FORBIDDEN);

    // testkit's own client follows the redirect; reqwest leaves the token behind.
    let followed = RegistryClient::new()
        .blob(&hub.url(), "library/alpine", &layer_digest)
        .await;
    assert_eq!(sha256_digest(&followed.unwrap()), layer_digest);
    assert_eq!(hub.cdn_requests().len(), 3);
    assert!(!hub.cdn_saw_authorization(), "{:?}", hub.cdn_requests());

    // The record does notice credentials.
    http()
        .get(&location)
        .header(AUTHORIZATION, format!("Bearer {pull_token}"))
        .send()
        .await
        .unwrap();
    assert!(hub.cdn_saw_authorization());
}

#[tokio::test(flavor = "multi_thread")]
async fn manifest_gets_spend_the_quota_and_nothing_else_does() {
    let hub = HubLikeRegistry::builder()
        .pull_quota(Some(3))
        .window_seconds(60)
        .start();
    let image = alpine();
    hub.push_image("library/alpine", "3.20", &image).await;
    let manifest_url = format!("{}/v2/library/alpine/manifests/3.20", hub.url());
    let pull_token = anonymous_pull_token(&hub, "library/alpine").await;

    // On every answer, the 401 of `/v2/` included.
    let (status, headers, _) = call(Method::GET, &format!("{}/v2/", hub.url()), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(rate_limit(&headers), (Some("3;w=60"), Some("3;w=60")));

    for _ in 0..2 {
        let (status, headers, _) = call(Method::HEAD, &manifest_url, Some(&pull_token)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(rate_limit(&headers), (Some("3;w=60"), Some("3;w=60")));
    }
    for remaining in ["2;w=60", "1;w=60"] {
        let (status, headers, _) = call(Method::GET, &manifest_url, Some(&pull_token)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(rate_limit(&headers), (Some("3;w=60"), Some(remaining)));
    }
    // A GET the registry refuses (no token) or cannot answer (no such tag) spends nothing.
    assert_eq!(call(Method::GET, &manifest_url, None).await.0, StatusCode::UNAUTHORIZED);
    let missing = format!("{}/v2/library/alpine/manifests/nope", hub.url());
    assert_eq!(
        call(Method::GET, &missing, Some(&pull_token)).await.0,
        StatusCode::NOT_FOUND
    );
    let blob_url = format!("{}/v2/library/alpine/blobs/{}", hub.url(), image.blobs[0].digest);
    let tags_url = format!("{}/v2/library/alpine/tags/list", hub.url());
    for url in [&blob_url, &tags_url] {
        let (status, headers, _) = call(Method::GET, url, Some(&pull_token)).await;
        assert!(status.is_success() || status.is_redirection(), "{url}: {status}");
        assert_eq!(rate_limit(&headers), (Some("3;w=60"), Some("1;w=60")), "{url}");
    }
    assert_eq!(hub.remaining(), Some(1));
    assert_eq!(hub.manifest_gets_served(), 2);
    assert_eq!(hub.tag_list_requests(), 1);
    assert_eq!(hub.too_many_requests_sent(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn spent_quota_answers_429_without_retry_after_until_refilled() {
    let hub = HubLikeRegistry::builder().pull_quota(Some(1)).start();
    hub.push_image("library/alpine", "3.20", &alpine()).await;
    let manifest_path = "/v2/library/alpine/manifests/3.20";
    let manifest_url = format!("{}{manifest_path}", hub.url());
    let pull_token = anonymous_pull_token(&hub, "library/alpine").await;

    let (status, headers, _) = call(Method::GET, &manifest_url, Some(&pull_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rate_limit(&headers), (Some("1;w=21600"), Some("0;w=21600")));

    let (status, headers, body) = call(Method::GET, &manifest_url, Some(&pull_token)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("You have reached your pull rate limit."));
    assert!(!headers.contains_key(RETRY_AFTER), "{headers:?}");
    assert_eq!(rate_limit(&headers), (Some("1;w=21600"), Some("0;w=21600")));
    // HEADs still answer.
    assert_eq!(
        call(Method::HEAD, &manifest_url, Some(&pull_token)).await.0,
        StatusCode::OK
    );
    assert_eq!(hub.too_many_requests_sent(), 1);

    hub.refill();
    assert_eq!(hub.remaining(), Some(1));
    let (status, headers, _) = call(Method::GET, &manifest_url, Some(&pull_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rate_limit(&headers), (Some("1;w=21600"), Some("0;w=21600")));
    assert_eq!(hub.manifest_gets_served(), 2);

    let log: Vec<(String, String, u16)> = hub
        .requests()
        .into_iter()
        .map(|request| (request.method, request.path, request.status))
        .collect();
    let get = |status| ("GET".to_owned(), manifest_path.to_owned(), status);
    let head = ("HEAD".to_owned(), manifest_path.to_owned(), 200);
    assert_eq!(log, [get(200), get(429), head, get(200)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn unlimited_quota_sends_no_rate_limit_headers() {
    let hub = HubLikeRegistry::builder().pull_quota(None).start();
    hub.push_image("library/alpine", "3.20", &alpine()).await;
    let manifest_url = format!("{}/v2/library/alpine/manifests/3.20", hub.url());
    let pull_token = anonymous_pull_token(&hub, "library/alpine").await;
    for _ in 0..3 {
        let (status, headers, _) = call(Method::GET, &manifest_url, Some(&pull_token)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(rate_limit(&headers), (None, None));
    }
    assert_eq!(hub.remaining(), None);
    assert_eq!(hub.manifest_gets_served(), 3);
}

#[test]
fn drop_stops_every_server() {
    let hub = HubLikeRegistry::start();
    let ports: Vec<u16> = [hub.url(), hub.realm(), hub.cdn_url(), hub.backing().url()]
        .iter()
        .map(|url| Url::parse(url).unwrap().port().unwrap())
        .collect();
    drop(hub);
    for port in ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still accepts connections"
        );
    }
}
