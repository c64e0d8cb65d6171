//! What a hostile or broken upstream may send, against the registry store: credentials
//! stay where they belong, and nothing it sends is read without a bound.

use ocisync_oci::{RepoName, Store};
use ocisync_registry::{Credentials, RegistryOptions, RegistryStore, Secret};
use ocisync_testkit::{HostileAnswer, HostileServer, TestRegistry, TokenServer, TokenServerOptions, TokenUser};

const READER: (&str, &str) = ("reader", "reader-secret-5e1a");

fn repo() -> RepoName {
    "team/app".parse().unwrap()
}

fn token_server() -> TokenServer {
    TokenServer::start(TokenServerOptions {
        users: vec![TokenUser::reader(READER.0, READER.1)],
        lifetime: std::time::Duration::from_secs(300),
        advertised_lifetime: None,
    })
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
        let mut options = RegistryOptions::new(registry.url());
        options.ca_file = registry.ca_file().map(ToOwned::to_owned);
        options.credentials = Some(Credentials::password(READER.0, Secret::new(READER.1)));
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
