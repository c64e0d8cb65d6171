//! Credentials, tokens and `tls_verify: false` belong to the registry's own origin (and
//! the token realm the registry itself names): not to a plain-HTTP realm of an HTTPS
//! registry, not to whoever a redirect leads to, not to a realm such a server names.

use bytes::Bytes;
use futures_util::StreamExt as _;
use ocisync_oci::{Descriptor, Digest, Store, StoreError};
use ocisync_registry::RegistryStore;
use ocisync_testkit::{
    HostileAnswer, HostileServer, TestRegistry, TlsFront, TokenServer, TokenServerOptions, TokenUser,
};

use crate::{printed, repo, with_password, READER};

fn token_server() -> TokenServer {
    TokenServer::start(TokenServerOptions {
        users: vec![TokenUser::reader(READER.0, READER.1)],
        lifetime: std::time::Duration::from_secs(300),
        advertised_lifetime: None,
    })
}

fn blob_descriptor(content: &[u8]) -> Descriptor {
    Descriptor::new(
        "application/octet-stream",
        Digest::sha256_of(content),
        content.len() as u64,
    )
}

/// A registry whose blob reads answer `307` to `target` (another origin).
fn redirecting_registry(target: String) -> HostileServer {
    HostileServer::start(move |request| {
        if request.path.contains("/blobs/") {
            HostileAnswer::new(307).header("Location", &format!("{target}/storage/blob?signature=x"))
        } else {
            HostileAnswer::new(404)
        }
    })
}

async fn read_all(store: &RegistryStore, descriptor: &Descriptor) -> Result<Vec<u8>, StoreError> {
    let mut stream = store.blob(&repo(), descriptor).await?;
    let mut read = Vec::new();
    while let Some(chunk) = stream.next().await {
        read.extend_from_slice(&chunk?);
    }
    Ok(read)
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_never_go_to_a_plain_http_realm_of_an_https_registry() {
    // The realm's token service records what reaches it; it answers nothing useful.
    let realm_server = HostileServer::start(|_| HostileAnswer::new(200).text(r#"{"token":"stolen"}"#));
    let tokens = token_server();
    let port = realm_server.url().rsplit(':').next().unwrap().to_owned();
    for realm in [
        format!("HTTP://127.0.0.1:{port}/token"),
        format!("http:127.0.0.1:{port}/token"),
        format!("http://127.0.0.1:{port}/token"),
    ] {
        let registry = TestRegistry::builder()
            .tls()
            .token_auth_with_realm(&tokens, &realm)
            .start();
        let mut options = with_password(&registry.url());
        options.ca_file = registry.ca_file().map(ToOwned::to_owned);
        let store = RegistryStore::new(options).unwrap();
        let error = store.tags(&repo()).await.unwrap_err().to_string();
        assert!(error.contains("plain HTTP"), "{realm}: {error}");
        assert!(!error.contains(READER.1), "{error}");
    }
    assert!(
        realm_server.requests().is_empty(),
        "the plain-HTTP realm was contacted: {:?}",
        realm_server.requests()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_challenge_from_a_redirect_target_is_refused_and_no_credential_leaves() {
    // A third host, named as token realm by the redirect target, not by the registry.
    let realm = HostileServer::start(|_| HostileAnswer::new(200).text(r#"{"token":"stolen"}"#));
    let bearer = format!("Bearer realm=\"{}/token\",service=\"cdn\"", realm.url());
    for challenge in [bearer.as_str(), "Basic realm=\"cdn\""] {
        let challenge = challenge.to_owned();
        let cdn = HostileServer::start(move |_| HostileAnswer::new(401).header("WWW-Authenticate", &challenge));
        let registry = redirecting_registry(cdn.url());
        let store = RegistryStore::new(with_password(&registry.url())).unwrap();

        let error = read_all(&store, &blob_descriptor(b"x")).await.unwrap_err();
        assert!(
            realm.requests().is_empty(),
            "a realm the registry never named was contacted: {:?}",
            realm.requests()
        );
        let text = printed(&error);
        assert!(matches!(error, StoreError::Invalid { .. }), "{text}");
        assert!(
            text.contains(&cdn.url()) && text.contains("login"),
            "the error names the origin that asked for a login: {text}"
        );
        assert!(!text.contains(READER.1), "{text}");
        assert!(!cdn.saw_authorization(), "{:?}", cdn.requests());
        assert!(
            !registry.saw_authorization(),
            "nothing asked the registry for credentials"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_verify_false_does_not_extend_to_a_token_realm_on_another_origin() {
    let tokens = token_server();
    // The token service over HTTPS with a certificate from a CA the client is not given.
    let token_front = TlsFront::start(&format!("http://{}", tokens.addr()));
    let registry = TestRegistry::builder()
        .tls()
        .token_auth_with_realm(&tokens, &format!("{}/token", token_front.url()))
        .start();
    let mut options = with_password(&registry.url());
    options.tls_verify = false;

    let error = RegistryStore::new(options.clone())
        .unwrap()
        .catalog()
        .await
        .unwrap_err();
    let text = printed(&error);
    // The registry (unverified, as configured) answered its challenge; the token
    // service's certificate was checked and refused.
    assert!(matches!(error, StoreError::Tls { .. }), "{text}");
    assert!(text.contains("token from"), "{text}");
    assert!(!text.contains(READER.1), "{text}");
    assert!(tokens.requests().is_empty(), "{:?}", tokens.requests());

    // `ca_file` is trusted on every origin: given the token service's CA, it works.
    options.ca_file = Some(token_front.ca_file().to_owned());
    let store = RegistryStore::new(options).unwrap();
    assert!(store.catalog().await.unwrap().is_empty());
    assert_eq!(tokens.requests().len(), 1, "{:?}", tokens.requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_verify_false_does_not_extend_to_a_redirect_target() {
    let content = Bytes::from_static(b"blob on a CDN");
    let served = content.clone();
    let cdn_backend =
        HostileServer::start(move |_| HostileAnswer::new(200).text(std::str::from_utf8(&served).unwrap()));
    let cdn = TlsFront::start(&cdn_backend.url());
    let registry_backend = redirecting_registry(cdn.url());
    let registry = TlsFront::start(&registry_backend.url());
    let mut options = with_password(&registry.url());
    options.tls_verify = false;

    let error = read_all(
        &RegistryStore::new(options.clone()).unwrap(),
        &blob_descriptor(&content),
    )
    .await
    .unwrap_err();
    let text = printed(&error);
    assert!(matches!(error, StoreError::Tls { .. }), "{text}");
    assert_eq!(registry_backend.requests().len(), 1, "the registry itself was reached");
    assert!(cdn_backend.requests().is_empty(), "{:?}", cdn_backend.requests());

    // Trusted through `ca_file`, the redirect is followed, without `Authorization`.
    options.ca_file = Some(cdn.ca_file().to_owned());
    let store = RegistryStore::new(options).unwrap();
    assert_eq!(read_all(&store, &blob_descriptor(&content)).await.unwrap(), content);
    assert_eq!(cdn_backend.requests().len(), 1);
    assert!(!cdn_backend.saw_authorization(), "{:?}", cdn_backend.requests());
}
