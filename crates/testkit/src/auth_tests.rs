//! Tests of the token server, TLS registries and the redirecting registry, with plain
//! reqwest against real `docker-registry` processes.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Client, StatusCode};

use crate::redirect::RedirectingRegistry;
use crate::registry::TestRegistry;
use crate::token::{TokenServer, TokenServerOptions, TokenUser, TOKEN_SERVICE};

/// A client that talks to loopback directly and shows redirects instead of following them.
pub(crate) fn http() -> Client {
    Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn token_server(lifetime: Duration) -> TokenServer {
    TokenServer::start(TokenServerOptions {
        users: vec![
            TokenUser::reader("reader", "r-pass"),
            TokenUser::writer("writer", "w-pass"),
        ],
        lifetime,
        advertised_lifetime: None,
    })
}

/// Fetches a token the way a Docker client does; returns the status and the token.
async fn fetch_token(server: &TokenServer, user: &str, password: &str, scope: &str) -> (StatusCode, String) {
    let response = http()
        .get(server.realm())
        .query(&[("service", TOKEN_SERVICE), ("scope", scope)])
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or_default();
    (status, body["token"].as_str().unwrap_or_default().to_owned())
}

async fn start_upload(registry: &TestRegistry, token: &str) -> StatusCode {
    http()
        .post(format!("{}/v2/team/app/blobs/uploads/", registry.url()))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header("content-length", "0")
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_accepts_tokens_for_what_they_grant() {
    let server = token_server(Duration::from_secs(300));
    let registry = TestRegistry::builder().token_auth(&server).start();

    let anonymous = http().get(format!("{}/v2/", registry.url())).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let challenge = anonymous.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(&format!("realm=\"{}\"", server.realm())),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!("service=\"{TOKEN_SERVICE}\"")),
        "{challenge}"
    );

    let scope = "repository:team/app:pull,push";
    let (status, writer_token) = fetch_token(&server, "writer", "w-pass", scope).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(start_upload(&registry, &writer_token).await, StatusCode::ACCEPTED);

    let (status, reader_token) = fetch_token(&server, "reader", "r-pass", scope).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(start_upload(&registry, &reader_token).await, StatusCode::UNAUTHORIZED);

    let (status, _) = fetch_token(&server, "reader", "wrong", scope).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let requests = server.requests();
    let summary: Vec<(Option<&str>, &[String], u16)> = requests
        .iter()
        .map(|r| (r.user.as_deref(), r.granted.as_slice(), r.status))
        .collect();
    assert_eq!(
        summary,
        [
            (Some("writer"), &["repository:team/app:pull,push".to_owned()][..], 200),
            (Some("reader"), &["repository:team/app:pull".to_owned()][..], 200),
            (None, &[][..], 401),
        ]
    );
    assert_eq!(server.requests_for(scope), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn short_lived_tokens_expire_at_the_registry() {
    let server = token_server(Duration::from_secs(1));
    let registry = TestRegistry::builder().token_auth(&server).start();
    let (_, token) = fetch_token(&server, "reader", "r-pass", "registry:catalog:*").await;
    let catalog = || async {
        http()
            .get(format!("{}/v2/_catalog", registry.url()))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(catalog().await, StatusCode::OK);
    // The registry rejects the token no later than one second (the JWT's resolution)
    // after its lifetime.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(catalog().await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_registry_is_trusted_only_with_its_ca() {
    let registry = TestRegistry::builder().tls().start();
    assert!(registry.url().starts_with("https://127.0.0.1:"), "{}", registry.url());
    let ca_pem = std::fs::read(registry.ca_file().unwrap()).unwrap();
    let trusting = Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap())
        .build()
        .unwrap();
    let v2 = format!("{}/v2/", registry.url());
    assert_eq!(trusting.get(&v2).send().await.unwrap().status(), StatusCode::OK);
    let error = http().get(&v2).send().await.unwrap_err();
    assert!(error.is_connect(), "{error:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn redirecting_registry_sends_authorized_blob_reads_elsewhere() {
    let registry = RedirectingRegistry::start("user", "pass", bytes::Bytes::from_static(b"blob"));
    let blob_url = format!("{}/v2/a/blobs/sha256:00", registry.url());
    let anonymous = http().get(&blob_url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let authorized = http()
        .get(&blob_url)
        .basic_auth("user", Some("pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(authorized.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = authorized.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with(&registry.storage_url()), "{location}");
    let stored = http().get(&location).send().await.unwrap();
    assert_eq!(stored.bytes().await.unwrap().as_ref(), b"blob");
    assert_eq!(registry.front_requests().len(), 2);
    assert_eq!(
        registry.storage_requests()[0].path,
        "/v2/a/blobs/sha256:00?signature=testkit"
    );
}

#[test]
fn scopes_compare_in_any_order_of_actions() {
    use crate::token::canonical_scope;
    assert_eq!(canonical_scope("repository:a/b:push,pull"), "repository:a/b:pull,push");
    assert_eq!(canonical_scope("registry:catalog:*"), "registry:catalog:*");
    assert_eq!(canonical_scope("nonsense"), "nonsense");
}
