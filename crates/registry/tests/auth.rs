//! Authentication and TLS of the registry store, end to end: the Docker bearer-token flow
//! against a real docker-registry (distribution 2.8) and testkit's token server, token
//! renewal, secrets kept out of errors, TLS verification and redirected blob reads.

use std::error::Error as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use ocisync_oci::{BlobStream, Descriptor, Digest, Manifest, Reference, RepoName, Store, StoreError};
use ocisync_registry::{Credentials, RegistryOptions, RegistryStore, Secret};
use ocisync_testkit::proxy::{Fault, Faults, RequestKind, RequestMatch};
use ocisync_testkit::{
    canonical_scope, image, layer, CountingProxy, Format, Image, RedirectingRegistry, TestRegistry, TokenServer,
    TokenServerOptions, TokenUser,
};

const WRITER: (&str, &str) = ("writer", "writer-secret-4d2c");
/// The writer's identity token (an OAuth2 refresh token at the token server).
const WRITER_IDENTITY_TOKEN: &str = "writer-identity-token-71aa";
const READER: (&str, &str) = ("reader", "reader-secret-9b7e");

const CATALOG_SCOPE: &str = "registry:catalog:*";
const PULL_SCOPE: &str = "repository:team/app:pull";
const PUSH_SCOPE: &str = "repository:team/app:pull,push";

/// A token server whose tokens the registry accepts for `lifetime` seconds, telling
/// clients they last `advertised` seconds (`None`: the truth).
fn token_server(lifetime: u64, advertised: Option<u64>) -> TokenServer {
    TokenServer::start(TokenServerOptions {
        users: vec![
            TokenUser::reader(READER.0, READER.1),
            TokenUser::writer(WRITER.0, WRITER.1).with_identity_token(WRITER_IDENTITY_TOKEN),
        ],
        lifetime: Duration::from_secs(lifetime),
        advertised_lifetime: advertised.map(Duration::from_secs),
    })
}

fn options(url: &str, user: Option<(&str, &str)>) -> RegistryOptions {
    let mut options = RegistryOptions::new(url);
    options.credentials = user.map(|(username, password)| Credentials::password(username, Secret::new(password)));
    options
}

fn store(url: &str, user: Option<(&str, &str)>) -> RegistryStore {
    RegistryStore::new(options(url, user)).unwrap()
}

fn repo() -> RepoName {
    "team/app".parse().unwrap()
}

fn tag(name: &str) -> Reference {
    Reference::Tag(name.parse().unwrap())
}

fn test_image(seed: u64) -> Image {
    image(
        Format::Oci,
        ("linux", "amd64"),
        vec![layer(Format::Oci, seed, 256)],
        "auth",
    )
}

fn descriptor_of(blob: &ocisync_testkit::Blob) -> Descriptor {
    Descriptor::new(blob.media_type.clone(), blob.digest.parse().unwrap(), blob.size())
}

fn body(bytes: Bytes) -> BlobStream {
    Box::pin(stream::iter(vec![Ok(bytes)]))
}

/// Pushes an image's blobs (one streaming upload each) and its manifest under `tag_name`.
async fn push(store: &RegistryStore, image: &Image, tag_name: &str) -> Result<(), StoreError> {
    for blob in &image.blobs {
        store
            .put_blob(&repo(), &descriptor_of(blob), body(blob.bytes.clone()))
            .await?;
    }
    let manifest = Manifest::from_bytes(image.manifest.bytes.clone(), image.manifest.media_type.clone());
    store.put_manifest(&repo(), &tag(tag_name), &manifest).await
}

async fn read_all(mut stream: BlobStream) -> Vec<u8> {
    let mut read = Vec::new();
    while let Some(chunk) = stream.next().await {
        read.extend_from_slice(&chunk.unwrap());
    }
    read
}

/// `(scope, granted)` of every token request. Scopes are canonical: distribution's
/// challenges name actions in random order (`push,pull`), and the client asks for the
/// scope the challenge names.
fn token_log(server: &TokenServer) -> Vec<(String, Vec<String>)> {
    server
        .requests()
        .into_iter()
        .map(|request| {
            let scopes: Vec<String> = request.scopes.iter().map(|s| canonical_scope(s)).collect();
            (scopes.join(" "), request.granted)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_flow_asks_catalog_pull_and_push_scopes_once_each() {
    let server = token_server(300, None);
    let registry = TestRegistry::builder().token_auth(&server).start();
    let writer = store(&registry.url(), Some(WRITER));
    let pushed = test_image(1);

    push(&writer, &pushed, "1").await.unwrap();
    assert_eq!(
        token_log(&server),
        [(PUSH_SCOPE.to_owned(), vec![PUSH_SCOPE.to_owned()])],
        "one token for every write"
    );

    server.reset();
    let reader = store(&registry.url(), Some(READER));
    assert_eq!(reader.catalog().await.unwrap(), [repo()]);
    assert_eq!(
        reader.tags(&repo()).await.unwrap(),
        ["1".parse::<ocisync_oci::Tag>().unwrap()]
    );
    let head = reader.head_manifest(&repo(), &tag("1")).await.unwrap().unwrap();
    assert_eq!(head.digest.to_string(), pushed.digest());
    let manifest = reader.manifest(&repo(), &tag("1")).await.unwrap();
    assert_eq!(manifest.bytes, pushed.manifest.bytes);
    let layer_blob = &pushed.blobs[0];
    let digest: Digest = layer_blob.digest.parse().unwrap();
    assert!(reader.has_blob(&repo(), &digest).await.unwrap());
    let read = read_all(reader.blob(&repo(), &descriptor_of(layer_blob)).await.unwrap()).await;
    assert_eq!(read, layer_blob.bytes.as_ref());
    assert_eq!(
        token_log(&server),
        [
            (CATALOG_SCOPE.to_owned(), vec![CATALOG_SCOPE.to_owned()]),
            (PULL_SCOPE.to_owned(), vec![PULL_SCOPE.to_owned()]),
        ],
        "reads ask for pull only, and each scope's token is reused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reader_cannot_push_and_is_told_so_without_a_retry_loop() {
    let server = token_server(300, None);
    let registry = TestRegistry::builder().token_auth(&server).start();
    let reader = store(&registry.url(), Some(READER));
    let image = test_image(2);

    let error = push(&reader, &image, "1").await.unwrap_err();
    assert!(
        matches!(error, StoreError::Unauthorized { .. } | StoreError::Denied { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&registry.url()),
        "names the registry: {error}"
    );
    let manifest = Manifest::from_bytes(image.manifest.bytes.clone(), image.manifest.media_type.clone());
    let error = reader.put_manifest(&repo(), &tag("1"), &manifest).await.unwrap_err();
    assert!(
        matches!(error, StoreError::Unauthorized { .. } | StoreError::Denied { .. }),
        "{error:?}"
    );
    // One token request per refused request: the challenge is answered once, then the
    // refusal is the answer.
    assert_eq!(
        token_log(&server),
        vec![(PUSH_SCOPE.to_owned(), vec![PULL_SCOPE.to_owned()]); 2]
    );
    let writer = store(&registry.url(), Some(WRITER));
    let digest: Digest = image.blobs[0].digest.parse().unwrap();
    assert!(!writer.has_blob(&repo(), &digest).await.unwrap(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_rejected_mid_pass_is_renewed_once_and_the_request_retried() {
    // The registry stops accepting tokens after 2 s, but the client is told 300 s: only
    // the registry's 401 can reveal the expiry.
    let server = token_server(2, Some(300));
    let registry = TestRegistry::builder().token_auth(&server).start();
    let proxy = CountingProxy::start(&registry.url());
    let writer = store(&proxy.url(), Some(WRITER));
    let image = test_image(3);
    push(&writer, &image, "1").await.unwrap();
    assert_eq!(writer.tags(&repo()).await.unwrap().len(), 1);

    tokio::time::sleep(Duration::from_millis(3100)).await;
    server.reset();
    proxy.reset();
    assert_eq!(writer.tags(&repo()).await.unwrap().len(), 1);
    let statuses: Vec<u16> = proxy.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 200], "rejected once, then accepted");
    // Four writes at once, all rejected with the same expired token, share one renewal.
    let manifest = Manifest::from_bytes(image.manifest.bytes.clone(), image.manifest.media_type.clone());
    let writes = ["2", "3", "4", "5"].map(|name| {
        let (writer, manifest) = (&writer, &manifest);
        async move { writer.put_manifest(&repo(), &tag(name), manifest).await }
    });
    for result in futures_util::future::join_all(writes).await {
        result.unwrap();
    }
    assert_eq!(
        token_log(&server),
        [
            (PULL_SCOPE.to_owned(), vec![PULL_SCOPE.to_owned()]),
            (PUSH_SCOPE.to_owned(), vec![PUSH_SCOPE.to_owned()]),
        ],
        "exactly one new token per scope"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn streaming_upload_near_token_expiry_renews_the_token_first() {
    // Tokens last 3 s and the client is told so. The upload's PUT, which is sent once
    // and cannot answer a challenge, is held back 2 s by the proxy: with the token from
    // the first upload it would reach the registry after that token's end.
    let server = token_server(3, None);
    let registry = TestRegistry::builder().token_auth(&server).start();
    let proxy = CountingProxy::start(&registry.url());
    let writer = store(&proxy.url(), Some(WRITER));
    let first = Bytes::from_static(b"first blob");
    let first_descriptor = Descriptor::new("application/octet-stream", Digest::sha256_of(&first), 10);
    writer.put_blob(&repo(), &first_descriptor, body(first)).await.unwrap();
    let token_fetched_by = Instant::now();

    // Past the client's renewal point (3/4 of the lifetime), before the registry's end.
    tokio::time::sleep_until((token_fetched_by + Duration::from_millis(2500)).into()).await;
    proxy.set_faults(Faults::none().first(
        1,
        RequestMatch::kind(RequestKind::Upload).method("PUT"),
        Fault::Latency(Duration::from_secs(2)),
    ));
    proxy.reset();
    let second = Bytes::from_static(b"second blob");
    let second_descriptor = Descriptor::new("application/octet-stream", Digest::sha256_of(&second), 11);
    writer
        .put_blob(&repo(), &second_descriptor, body(second))
        .await
        .unwrap();

    let writes: Vec<(String, u16)> = proxy.writes().iter().map(|r| (r.method.clone(), r.status)).collect();
    assert_eq!(writes, [("POST".to_owned(), 202), ("PUT".to_owned(), 201)]);
    assert_eq!(proxy.injected(), 1, "the PUT was held back");
    assert_eq!(server.requests_for(PUSH_SCOPE), 2, "one renewal");
    assert!(writer.has_blob(&repo(), &second_descriptor.digest).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_token_is_sent_as_a_refresh_token_grant_never_as_basic() {
    let server = token_server(300, None);
    let registry = TestRegistry::builder().token_auth(&server).start();
    let mut identity = RegistryOptions::new(registry.url());
    identity.credentials = Some(Credentials::IdentityToken(Secret::new(WRITER_IDENTITY_TOKEN)));
    let writer = RegistryStore::new(identity).unwrap();
    push(&writer, &test_image(7), "1").await.unwrap();
    assert_eq!(writer.tags(&repo()).await.unwrap().len(), 1);
    let requests = server.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert!(request.refresh_grant, "a POST refresh-token grant: {request:?}");
        assert_eq!((request.status, request.user.as_deref()), (200, Some(WRITER.0)));
    }
    assert_eq!(
        token_log(&server)[0],
        (PUSH_SCOPE.to_owned(), vec![PUSH_SCOPE.to_owned()]),
        "the grant carries the challenge's scope"
    );

    // A token the service does not know: unauthorized, and the token is never printed.
    let mut unknown = RegistryOptions::new(registry.url());
    unknown.credentials = Some(Credentials::IdentityToken(Secret::new("unknown-identity-3c1f")));
    let error = RegistryStore::new(unknown).unwrap().catalog().await.unwrap_err();
    assert!(matches!(error, StoreError::Unauthorized { .. }), "{error:?}");
    assert!(!everything_printed(&error).contains("unknown-identity-3c1f"));
}

#[tokio::test(flavor = "multi_thread")]
async fn replaced_credentials_are_used_and_old_tokens_forgotten() {
    let server = token_server(300, None);
    let registry = TestRegistry::builder().token_auth(&server).start();
    let store = store(&registry.url(), Some(READER));
    store.catalog().await.unwrap();
    // Anonymous tokens grant nothing here: a catalog read now succeeds only if the
    // reader's cached token (valid for minutes) were still used.
    store.replace_credentials(None).await;
    let error = store.catalog().await.unwrap_err();
    assert!(matches!(error, StoreError::Unauthorized { .. }), "{error:?}");
    server.reset();
    store
        .replace_credentials(Some(Credentials::password(WRITER.0, Secret::new(WRITER.1))))
        .await;
    push(&store, &test_image(8), "1").await.unwrap();
    let users: Vec<Option<String>> = server.requests().into_iter().map(|request| request.user).collect();
    assert_eq!(users, [Some(WRITER.0.to_owned())], "one token, for the new user");
}

/// The error's text, its sources' and its `Debug` form.
fn everything_printed(error: &StoreError) -> String {
    let mut printed = format!("{error}\n{error:?}");
    let mut source = error.source();
    while let Some(inner) = source {
        printed.push_str(&format!("\n{inner}\n{inner:?}"));
        source = inner.source();
    }
    printed
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_is_unauthorized_naming_the_registry_not_the_secrets() {
    let server = token_server(300, None);
    let registry = TestRegistry::builder().token_auth(&server).start();
    let wrong_password = "wrong-secret-5e1a";
    let error = store(&registry.url(), Some((WRITER.0, wrong_password)))
        .catalog()
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unauthorized { .. }), "{error:?}");
    let printed = everything_printed(&error);
    assert!(printed.contains(&registry.url()), "names the registry: {printed}");
    assert!(!printed.contains(wrong_password), "{printed}");

    // An error after tokens were issued shows neither the password nor a token.
    let reader = store(&registry.url(), Some(READER));
    reader.catalog().await.unwrap();
    let error = push(&reader, &test_image(5), "1").await.unwrap_err();
    let printed = everything_printed(&error);
    assert!(!printed.contains(READER.1), "{printed}");
    let tokens: Vec<String> = server.requests().into_iter().filter_map(|r| r.token).collect();
    assert_eq!(tokens.len(), 2, "{:?}", server.requests());
    for token in tokens {
        assert!(!printed.contains(&token), "{printed}");
    }

    // The same holds for Basic auth, and for the options' Debug form.
    let basic = TestRegistry::builder().htpasswd(WRITER.0, WRITER.1).start();
    let options = options(&basic.url(), Some((WRITER.0, wrong_password)));
    assert!(!format!("{options:?}").contains(wrong_password));
    let error = RegistryStore::new(options).unwrap().catalog().await.unwrap_err();
    assert!(matches!(error, StoreError::Unauthorized { .. }), "{error:?}");
    assert!(!everything_printed(&error).contains(wrong_password));
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_is_verified_by_default_with_ca_file_and_tls_verify_per_registry() {
    let registry = TestRegistry::builder().tls().start();
    let url = registry.url();
    assert!(url.starts_with("https://"), "{url}");

    // Turned off for one store, which therefore works...
    let mut insecure = options(&url, None);
    insecure.tls_verify = false;
    let insecure = RegistryStore::new(insecure).unwrap();
    assert!(insecure.catalog().await.unwrap().is_empty());

    // ...while another store in the same process still verifies, and fails.
    let error = store(&url, None).catalog().await.unwrap_err();
    assert!(matches!(error, StoreError::Tls { .. }), "{error:?}");
    assert!(!error.is_transient(), "a certificate is a setting, not worth a retry");
    let printed = everything_printed(&error).to_ascii_lowercase();
    assert!(printed.contains("certificate"), "a certificate error: {printed}");

    let mut trusting = options(&url, None);
    trusting.ca_file = registry.ca_file().map(|path| path.to_path_buf());
    let trusting = RegistryStore::new(trusting).unwrap();
    let content = Bytes::from_static(b"over tls");
    let descriptor = Descriptor::new("application/octet-stream", Digest::sha256_of(&content), 8);
    trusting.put_blob(&repo(), &descriptor, body(content)).await.unwrap();
    assert_eq!(trusting.catalog().await.unwrap(), [repo()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn redirected_blob_read_does_not_carry_authorization_to_the_other_origin() {
    let content = Bytes::from_static(b"blob stored elsewhere");
    let registry = RedirectingRegistry::start(WRITER.0, WRITER.1, content.clone());
    let store = store(&registry.url(), Some(WRITER));
    let descriptor = Descriptor::new("application/octet-stream", Digest::sha256_of(&content), 21);

    let read = read_all(store.blob(&repo(), &descriptor).await.unwrap()).await;
    assert_eq!(read, content.as_ref());

    let front: Vec<bool> = registry
        .front_requests()
        .iter()
        .map(|r| r.authorization.is_some())
        .collect();
    assert_eq!(front, [false, true], "challenged, then sent with credentials");
    let storage = registry.storage_requests();
    assert_eq!(storage.len(), 1, "{storage:?}");
    assert_eq!(storage[0].authorization, None, "{storage:?}");
}
