//! How ocisync reaches registries: through the proxy `HTTP_PROXY` / `HTTPS_PROXY` name
//! unless `NO_PROXY` lists the host (reqwest reads them when a client is built), and at
//! IPv6 addresses.

use std::sync::{Arc, Mutex};

use ocisync_testkit::{assert_mirror_complete, corpus, push_image, small_corpus, CountingProxy, TestRegistry};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{ocisync_command, one_sync_config, Mirror, Report, Run};

/// `ocisync once --config CONFIG --report REPORT` in `world` with exactly the proxy
/// variables given (the launcher clears the machine's), off the async runtime (a proxy
/// of the test runs on it).
async fn once_with_proxy_env(world: &Mirror, env: &[(&str, &str)]) -> Run {
    let (config, report) = (world.config_path(), world.report_path());
    let mut command = ocisync_command(&[
        "once",
        "--config",
        config.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    command.envs(env.iter().copied());
    let output = tokio::task::spawn_blocking(move || command.output().expect("run ocisync"))
        .await
        .unwrap();
    Run::of(output)
}

fn tags_copied(report: &Report) -> u64 {
    report["totals"]["tags_copied"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn http_proxy_carries_requests_unless_no_proxy_names_the_host() {
    let world = Mirror::start();
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    // The testkit proxy forwards a proxy request (`GET http://host/path`) to the upstream.
    let proxy = CountingProxy::start(&upstream.url());
    // The upstream by name, the mirror by address: NO_PROXY can tell them apart.
    let upstream_by_name = format!("http://localhost:{}", upstream.port());
    world.write_config_via(&one_sync_config(), &[("{upstream}", &upstream_by_name)]);

    let through_proxy = [("HTTP_PROXY", proxy.url()), ("NO_PROXY", "127.0.0.1".to_owned())];
    let env: Vec<(&str, &str)> = through_proxy.iter().map(|(k, v)| (*k, v.as_str())).collect();
    once_with_proxy_env(&world, &env).await.expect_code(0);
    assert_eq!(tags_copied(&world.report()) as usize, images.len());
    let proxied = proxy.requests();
    assert!(
        proxied.iter().any(|request| request.path.contains("/manifests/")),
        "the upstream's reads go through the proxy: {proxied:?}"
    );
    // The mirror, on 127.0.0.1 (in NO_PROXY), was written directly: had its writes gone
    // to the proxy, they would have landed upstream and the mirror would be empty.
    assert!(proxied.iter().all(|request| !request.is_write()), "{proxied:?}");
    let repos = corpus::repos(&images);
    let pairs: Vec<(&str, &str)> = repos.iter().map(|r| (r.as_str(), r.as_str())).collect();
    assert_mirror_complete(&upstream.url(), &mirror.url(), &pairs).await;

    // Both hosts in NO_PROXY: the proxy sees nothing, and the new tag still arrives.
    proxy.reset();
    push_image(&upstream.url(), &images[0].repo, "after-no-proxy", &images[0].image).await;
    let env = [
        ("HTTP_PROXY", proxy.url()),
        ("NO_PROXY", "localhost, 127.0.0.1".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    once_with_proxy_env(&world, &env).await.expect_code(0);
    assert_eq!(tags_copied(&world.report()), 1);
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
}

/// A forward proxy for TLS: answers `CONNECT host:port` by opening a tunnel to a loopback
/// target, and records each target.
struct ConnectProxy {
    port: u16,
    targets: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    async fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&targets);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(tunnel(client, Arc::clone(&recorded)));
            }
        });
        ConnectProxy { port, targets }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

async fn tunnel(mut client: TcpStream, targets: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        if head.len() > 8192 || client.read_exact(&mut byte).await.is_err() {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut request_line = head.lines().next().unwrap_or_default().split_whitespace();
    let (Some("CONNECT"), Some(target)) = (request_line.next(), request_line.next()) else {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n").await;
        return;
    };
    targets.lock().unwrap().push(target.to_owned());
    // Loopback targets only: the test's network is 127.0.0.1.
    let port = target
        .strip_prefix("127.0.0.1:")
        .and_then(|port| port.parse::<u16>().ok());
    let Some(mut upstream) = (match port {
        Some(port) => TcpStream::connect(("127.0.0.1", port)).await.ok(),
        None => None,
    }) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_ok()
    {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn https_proxy_tunnels_tls_unless_no_proxy_names_the_host() {
    let world = Mirror::between(TestRegistry::start(), TestRegistry::builder().tls().start());
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;
    let proxy = ConnectProxy::start().await;
    world.write_config(&one_sync_config().replace(
        "    urls: [\"{mirror}\"]\n",
        &format!(
            "    urls: [\"{{mirror}}\"]\n    ca_file: {}\n",
            mirror.ca_file().unwrap().display()
        ),
    ));

    // HTTPS_PROXY is for https:// only: the plain-HTTP upstream is reached directly.
    once_with_proxy_env(&world, &[("HTTPS_PROXY", &proxy.url())])
        .await
        .expect_code(0);
    assert_eq!(tags_copied(&world.report()) as usize, images.len());
    let targets = proxy.targets();
    assert!(!targets.is_empty(), "the mirror is reached through the proxy");
    assert!(targets.iter().all(|target| *target == mirror.host()), "{targets:?}");

    proxy.targets.lock().unwrap().clear();
    push_image(&upstream.url(), &images[0].repo, "after-no-proxy", &images[0].image).await;
    once_with_proxy_env(&world, &[("HTTPS_PROXY", &proxy.url()), ("NO_PROXY", "127.0.0.1")])
        .await
        .expect_code(0);
    assert_eq!(tags_copied(&world.report()), 1);
    assert!(proxy.targets().is_empty(), "{:?}", proxy.targets());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_at_an_ipv6_address_is_mirrored() {
    let world = Mirror::between(
        TestRegistry::builder().ipv6().start(),
        TestRegistry::builder().ipv6().start(),
    );
    let (upstream, mirror) = (&world.upstream, &world.mirror);
    assert!(upstream.url().starts_with("http://[::1]:"), "{}", upstream.url());
    let images = small_corpus();
    corpus::seed(&upstream.url(), &images).await;

    world.once().expect_code(0);
    assert_eq!(tags_copied(&world.report()) as usize, images.len());
    let repos = corpus::repos(&images);
    let pairs: Vec<(&str, &str)> = repos.iter().map(|r| (r.as_str(), r.as_str())).collect();
    assert_mirror_complete(&upstream.url(), &mirror.url(), &pairs).await;
    // The report names the URL as it was configured, brackets included.
    let report_text = std::fs::read_to_string(world.report_path()).unwrap();
    assert!(
        report_text.contains(&format!("\"{}\"", upstream.url())),
        "{report_text}"
    );

    // `copy` takes a bracketed IPv6 host in a reference, as docker does.
    let image = &images[0];
    let source = format!("{}/{}:{}", upstream.host(), image.repo, image.tag);
    let destination = format!("{}/copied/{}:{}", mirror.host(), image.repo, image.tag);
    let copy_report = world.dir().join("copy.json");
    crate::support::ocisync(&[
        "copy",
        &source,
        &destination,
        "--src-plain-http",
        "--dest-plain-http",
        "--report",
        copy_report.to_str().unwrap(),
    ])
    .expect_code(0);
    assert_eq!(tags_copied(&Report::read(&copy_report)), 1);
}
