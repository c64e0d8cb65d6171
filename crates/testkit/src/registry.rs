//! A real `docker-registry` (CNCF distribution 2.8) process on a free loopback port, stopped on drop.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use tempfile::TempDir;

use crate::tls::{probe_v2_tls, ClientCertificate, TestCa};
use crate::token::{TokenServer, TOKEN_ISSUER, TOKEN_SERVICE};

/// Environment variable naming the registry binary (default: `/usr/bin/docker-registry`,
/// falling back to `docker-registry` on `PATH`).
pub const REGISTRY_BIN_ENV: &str = "OCISYNC_TEST_REGISTRY_BIN";

/// Environment variable that, when set, raises the registry log level to `info` and turns
/// the access log on (the log goes to a file in the registry's temp dir; see
/// [`TestRegistry::log_tail`]).
pub const REGISTRY_LOG_ENV: &str = "OCISYNC_TEST_REGISTRY_LOG";

/// Response header the registry is configured to send, carrying a per-instance id, so the
/// readiness probe cannot mistake another process on a reused port for this registry.
const INSTANCE_HEADER: &str = "X-Ocisync-Testkit-Instance";

/// How long [`TestRegistry::start`] waits for `GET /v2/` to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The storage root, under the registry's temp dir.
const STORAGE_DIR: &str = "storage";

/// How many ports are tried when the registry exits early (e.g. the port was taken).
const START_ATTEMPTS: u32 = 5;

/// Options for [`TestRegistry::start_with`]. For token auth and TLS, use
/// [`TestRegistry::builder`].
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// `(user, password)`: protect the registry with htpasswd basic auth.
    pub htpasswd: Option<(String, String)>,
}

/// Builds a [`TestRegistry`] with any of: htpasswd basic auth, token auth against a
/// [`TokenServer`], HTTPS with a certificate from a fresh [`TestCa`].
#[derive(Debug, Clone, Default)]
pub struct TestRegistryBuilder {
    htpasswd: Option<(String, String)>,
    token: Option<TokenAuth>,
    tls: bool,
    client_certificates: bool,
    notifications: Vec<NotificationEndpoint>,
    ipv6: bool,
    /// `storage.delete.enabled: false`: every delete answers 405 `UNSUPPORTED`.
    without_deletes: bool,
}

/// One `notifications: endpoints:` entry: where the registry posts its events, with
/// which headers.
#[derive(Debug, Clone)]
struct NotificationEndpoint {
    url: String,
    headers: Vec<(String, String)>,
}

/// The `auth: token:` settings that point a registry at a token server.
#[derive(Debug, Clone)]
struct TokenAuth {
    realm: String,
    root_certificate_bundle: PathBuf,
}

impl From<RegistryOptions> for TestRegistryBuilder {
    fn from(options: RegistryOptions) -> Self {
        TestRegistryBuilder {
            htpasswd: options.htpasswd,
            ..TestRegistryBuilder::default()
        }
    }
}

impl TestRegistryBuilder {
    /// Protects the registry with htpasswd basic auth for one user.
    pub fn htpasswd(mut self, user: &str, password: &str) -> Self {
        self.htpasswd = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Protects the registry with token auth: it trusts tokens from `server` (which must
    /// outlive the registry's use) and sends clients there with a Bearer challenge.
    pub fn token_auth(mut self, server: &TokenServer) -> Self {
        self.token = Some(TokenAuth {
            realm: server.realm(),
            root_certificate_bundle: server.root_certificate_bundle().to_path_buf(),
        });
        self
    }

    /// Token auth as [`TestRegistryBuilder::token_auth`], but the challenge names `realm`
    /// instead of the token server's own URL (a hostile or misconfigured registry).
    pub fn token_auth_with_realm(mut self, server: &TokenServer, realm: &str) -> Self {
        self.token = Some(TokenAuth {
            realm: realm.to_owned(),
            root_certificate_bundle: server.root_certificate_bundle().to_path_buf(),
        });
        self
    }

    /// Serves HTTPS with a loopback certificate signed by a fresh private CA; see
    /// [`TestRegistry::ca_file`].
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// HTTPS that accepts only clients presenting a certificate from a CA of its own
    /// (`http.tls.clientcas`); see [`TestRegistry::client_certificate_files`].
    pub fn client_certificates(mut self) -> Self {
        self.tls = true;
        self.client_certificates = true;
        self
    }

    /// Listens on the IPv6 loopback, `[::1]`, instead of `127.0.0.1` (plain HTTP only).
    pub fn ipv6(mut self) -> Self {
        self.ipv6 = true;
        self
    }

    /// Refuses deletes (`storage.delete.enabled: false`, 405 `UNSUPPORTED`), as a
    /// registry does unless its operator enabled them. By default deletes are enabled:
    /// by digest only, as distribution 2.8 deletes (a tag delete is 400 `DIGEST_INVALID`).
    pub fn without_deletes(mut self) -> Self {
        self.without_deletes = true;
        self
    }

    /// Makes the registry post its events (distribution's notification envelopes) to
    /// `url` with these headers (`("Authorization", "Bearer …")`, say). Pull events are
    /// left out; a failed delivery is retried after 100 ms, so tests see it soon.
    pub fn notify(mut self, url: &str, headers: &[(&str, &str)]) -> Self {
        self.notifications.push(NotificationEndpoint {
            url: url.to_owned(),
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        });
        self
    }

    /// Starts the registry. Panics (with the log tail) if it does not come up within a
    /// bounded time, or if both htpasswd and token auth were asked for.
    pub fn start(self) -> TestRegistry {
        TestRegistry::start_built(self)
    }
}

/// A running `docker-registry serve` with filesystem storage in a temp dir.
///
/// Dropping it kills the process and waits for it (also while a test panics, in which
/// case the tail of the registry log is printed to stderr).
pub struct TestRegistry {
    child: Child,
    ip: IpAddr,
    port: u16,
    log_path: PathBuf,
    credentials: Option<(String, String)>,
    /// The CA that signed the HTTPS certificate: its PEM file and its DER.
    ca: Option<(PathBuf, CertificateDer<'static>)>,
    /// A client certificate the registry accepts (when it asks for one), and its files.
    client: Option<(ClientCertificate, (PathBuf, PathBuf))>,
    // Dropped last: removes storage, config and log.
    dir: TempDir,
}

impl std::fmt::Debug for TestRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRegistry")
            .field("url", &self.url())
            .field("pid", &self.child.id())
            .field("dir", &self.dir.path())
            .finish()
    }
}

enum Probe {
    Ready,
    Exited(ExitStatus),
    TimedOut,
}

impl TestRegistry {
    /// Starts an anonymous registry. Panics (with the log tail) if it does not come up.
    pub fn start() -> TestRegistry {
        TestRegistry::start_with(RegistryOptions::default())
    }

    /// Starts a registry with the given options. Panics (with the log tail) if it does not
    /// come up within a bounded time.
    pub fn start_with(options: RegistryOptions) -> TestRegistry {
        TestRegistryBuilder::from(options).start()
    }

    /// A builder for registries with token auth or TLS.
    pub fn builder() -> TestRegistryBuilder {
        TestRegistryBuilder::default()
    }

    fn start_built(options: TestRegistryBuilder) -> TestRegistry {
        assert!(
            options.htpasswd.is_none() || options.token.is_none(),
            "testkit: a registry has one auth method: htpasswd or token, not both"
        );
        assert!(
            !(options.ipv6 && options.tls),
            "testkit: an IPv6 registry serves plain HTTP (the TLS probe and certificate are IPv4)"
        );
        let ip = if options.ipv6 {
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        };
        let dir = tempfile::Builder::new()
            .prefix("ocisync-registry-")
            .tempdir()
            .expect("testkit: create registry temp dir");
        let storage = dir.path().join(STORAGE_DIR);
        fs::create_dir_all(&storage).expect("testkit: create registry storage dir");
        let auth = match (&options.htpasswd, &options.token) {
            (Some((user, password)), _) => {
                let path = dir.path().join("htpasswd");
                fs::write(&path, htpasswd_line(user, password)).expect("testkit: write htpasswd");
                Auth::Htpasswd(path)
            }
            (None, Some(token)) => Auth::Token(token.clone()),
            (None, None) => Auth::None,
        };
        let ca = options.tls.then(|| TestCa::new("ocisync testkit CA"));
        let tls_files = ca.as_ref().map(|ca| {
            let server = ca.loopback_server_certificate();
            let certificate = dir.path().join("tls.crt");
            let key = dir.path().join("tls.key");
            fs::write(&certificate, server.certificate_pem).expect("testkit: write TLS certificate");
            fs::write(&key, server.key_pem).expect("testkit: write TLS key");
            (certificate, key)
        });
        let ca = ca.map(|ca| (ca.write_pem(&dir.path().join("ca.pem")), ca.certificate_der()));
        // The clients' CA is another one than the server's: trusting one is not
        // trusting the other.
        let client_ca = options
            .client_certificates
            .then(|| TestCa::new("ocisync testkit client CA"));
        let client = client_ca.as_ref().map(|client_ca| {
            let certificate = client_ca.client_certificate("ocisync testkit client");
            let files = certificate.write_pem(dir.path());
            (certificate, files)
        });
        let client_ca_file = client_ca.map(|client_ca| client_ca.write_pem(&dir.path().join("client-ca.pem")));
        let log_path = dir.path().join("registry.log");
        let config_path = dir.path().join("config.yml");
        let binary = registry_binary();

        for attempt in 1..=START_ATTEMPTS {
            let port = free_port_on(ip);
            let instance = instance_id();
            let tls = tls_files.as_ref().map(|(certificate, key)| TlsFiles {
                certificate,
                key,
                client_ca: client_ca_file.as_deref(),
            });
            let mut config = render_config(SocketAddr::new(ip, port), &storage, &auth, tls.as_ref(), &instance);
            if options.without_deletes {
                config = config.replace("  delete:\n    enabled: true\n", "  delete:\n    enabled: false\n");
            }
            config.push_str(&render_notifications(&options.notifications));
            fs::write(&config_path, config).expect("testkit: write registry config");

            let mut log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .expect("testkit: open registry log");
            let _ = writeln!(log, "--- testkit: attempt {attempt}, port {port} ---");
            let mut command = Command::new(&binary);
            command
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("testkit: clone log handle"))
                .stderr(log);
            // REGISTRY_* variables override the config file; never inherit them.
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("REGISTRY_") {
                    command.env_remove(key);
                }
            }
            let mut child = command.spawn().unwrap_or_else(|e| {
                panic!(
                    "testkit: cannot run {binary:?} ({e}); install Debian's `docker-registry` \
                     package or set {REGISTRY_BIN_ENV}"
                )
            });

            let probe = |port| match &ca {
                Some((_, root)) => probe_v2_tls(port, root, client.as_ref().map(|(certificate, _)| certificate)),
                None => probe_v2_at(SocketAddr::new(ip, port)),
            };
            match wait_ready(&mut child, port, &instance, &probe) {
                Probe::Ready => {
                    return TestRegistry {
                        child,
                        ip,
                        port,
                        log_path,
                        credentials: options.htpasswd,
                        ca,
                        client,
                        dir,
                    }
                }
                Probe::Exited(_) if attempt < START_ATTEMPTS => continue,
                Probe::Exited(status) => panic!(
                    "testkit: docker-registry exited with {status} on each of {START_ATTEMPTS} \
                     attempts; log tail:\n{}",
                    tail(&log_path)
                ),
                Probe::TimedOut => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "testkit: docker-registry on port {port} did not answer GET /v2/ within \
                         {READY_TIMEOUT:?}; log tail:\n{}",
                        tail(&log_path)
                    )
                }
            }
        }
        unreachable!("loop returns or panics")
    }

    /// The registry process's id (the bench reads its CPU time from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Base URL, `http://127.0.0.1:PORT` (`http://[::1]:PORT` on IPv6), or `https://…`
    /// for a TLS registry.
    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// For a TLS registry, the PEM file of the CA that signed its certificate (what a
    /// client passes as `ca_file`).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_ref().map(|(path, _)| path.as_path())
    }

    /// For a registry behind mutual TLS, the PEM files of a client certificate it
    /// accepts: `(certificate, key)`.
    pub fn client_certificate_files(&self) -> Option<(&Path, &Path)> {
        self.client
            .as_ref()
            .map(|(_, (certificate, key))| (certificate.as_path(), key.as_path()))
    }

    /// Host and port, `127.0.0.1:PORT` (or `[::1]:PORT`).
    pub fn host(&self) -> String {
        SocketAddr::new(self.ip, self.port).to_string()
    }

    /// The TCP port the registry listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `(user, password)` if the registry was started with htpasswd auth.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// A [`RegistryClient`](crate::RegistryClient) for this registry, with its htpasswd
    /// credentials if it has any.
    pub fn client(&self) -> crate::RegistryClient {
        let client = crate::RegistryClient::new();
        match self.credentials() {
            Some((user, password)) => client.with_basic_auth(user, password),
            None => client,
        }
    }

    /// The temp dir holding `config.yml`, `registry.log` and `storage/`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The storage driver's root directory (`storage: filesystem: rootdirectory`).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join(STORAGE_DIR)
    }

    /// The last lines of the registry's log (stdout and stderr).
    pub fn log_tail(&self) -> String {
        tail(&self.log_path)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("testkit: registry {} log tail:\n{}", self.url(), self.log_tail());
        }
    }
}

fn registry_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os(REGISTRY_BIN_ENV) {
        return PathBuf::from(bin);
    }
    let debian = Path::new("/usr/bin/docker-registry");
    if debian.exists() {
        debian.to_path_buf()
    } else {
        PathBuf::from("docker-registry")
    }
}

/// Picks a currently free loopback port (bind port 0, read it, release it).
pub(crate) fn free_port() -> u16 {
    free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// [`free_port`] on the loopback address `ip`.
fn free_port_on(ip: IpAddr) -> u16 {
    TcpListener::bind(SocketAddr::new(ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("testkit: bind {ip} port 0: {e}"))
}

fn instance_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// One htpasswd line with a bcrypt (`$2y$`, as distribution expects) hash. Cost 4 keeps
/// the per-request password check cheap.
fn htpasswd_line(user: &str, password: &str) -> String {
    let hash = bcrypt::hash_with_result(password, 4)
        .expect("testkit: bcrypt hash")
        .format_for_version(bcrypt::Version::TwoY);
    format!("{user}:{hash}\n")
}

/// Quotes a string for YAML (a JSON string is a valid YAML scalar).
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("string serializes")
}

/// How clients authenticate to the registry.
enum Auth {
    None,
    Htpasswd(PathBuf),
    Token(TokenAuth),
}

/// The files of a registry's `http.tls` section.
struct TlsFiles<'a> {
    certificate: &'a Path,
    key: &'a Path,
    /// Clients must present a certificate this CA signed.
    client_ca: Option<&'a Path>,
}

fn render_config(addr: SocketAddr, storage: &Path, auth: &Auth, tls: Option<&TlsFiles<'_>>, instance: &str) -> String {
    let verbose = std::env::var_os(REGISTRY_LOG_ENV).is_some();
    let level = if verbose { "info" } else { "warn" };
    let mut config = format!(
        "version: 0.1
log:
  level: {level}
  formatter: text
  accesslog:
    disabled: {access_disabled}
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  secret: ocisync-testkit-not-a-secret
  headers:
    {INSTANCE_HEADER}: [{instance}]
",
        access_disabled = !verbose,
        // `[::1]:PORT` unquoted would be a YAML list.
        addr = yaml_str(&addr.to_string()),
        root = yaml_str(&storage.to_string_lossy()),
        instance = yaml_str(instance),
    );
    if let Some(tls) = tls {
        config.push_str(&format!(
            "  tls:
    certificate: {}
    key: {}
",
            yaml_str(&tls.certificate.to_string_lossy()),
            yaml_str(&tls.key.to_string_lossy())
        ));
        if let Some(client_ca) = tls.client_ca {
            config.push_str(&format!(
                "    clientcas:
      - {}
",
                yaml_str(&client_ca.to_string_lossy())
            ));
        }
    }
    match auth {
        Auth::None => {}
        Auth::Htpasswd(path) => config.push_str(&format!(
            "auth:
  htpasswd:
    realm: ocisync-testkit
    path: {}
",
            yaml_str(&path.to_string_lossy())
        )),
        Auth::Token(token) => config.push_str(&format!(
            "auth:
  token:
    realm: {}
    service: {}
    issuer: {}
    rootcertbundle: {}
",
            yaml_str(&token.realm),
            yaml_str(TOKEN_SERVICE),
            yaml_str(TOKEN_ISSUER),
            yaml_str(&token.root_certificate_bundle.to_string_lossy())
        )),
    }
    config
}

/// The `notifications:` section (empty without endpoints). Distribution posts each
/// endpoint's events one envelope at a time and retries a failed one after `backoff`.
fn render_notifications(endpoints: &[NotificationEndpoint]) -> String {
    if endpoints.is_empty() {
        return String::new();
    }
    let mut section = String::from("notifications:\n  endpoints:\n");
    for (index, endpoint) in endpoints.iter().enumerate() {
        section.push_str(&format!(
            "    - name: testkit-{index}\n      url: {}\n      timeout: 5s\n      threshold: 1\n      backoff: 100ms\n      ignore:\n        actions: [pull]\n",
            yaml_str(&endpoint.url)
        ));
        if !endpoint.headers.is_empty() {
            section.push_str("      headers:\n");
            for (name, value) in &endpoint.headers {
                section.push_str(&format!("        {}: [{}]\n", yaml_str(name), yaml_str(value)));
            }
        }
    }
    section
}

/// Polls `GET /v2/` until this instance answers 200 or 401, the child exits, or the
/// timeout passes.
fn wait_ready(child: &mut Child, port: u16, instance: &str, probe: &dyn Fn(u16) -> Option<(u16, String)>) -> Probe {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Probe::Exited(status);
        }
        if let Some((status, head)) = probe(port) {
            let ours = head.lines().any(|line| {
                line.split_once(':').is_some_and(|(name, value)| {
                    name.trim().eq_ignore_ascii_case(INSTANCE_HEADER) && value.trim() == instance
                })
            });
            if ours && (status == 200 || status == 401) {
                return Probe::Ready;
            }
        }
        if Instant::now() >= deadline {
            return Probe::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Plain-TCP `GET /v2/` on `127.0.0.1:PORT`: returns the status code and the response head.
#[cfg(test)]
pub(crate) fn probe_v2(port: u16) -> Option<(u16, String)> {
    probe_v2_at(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// [`probe_v2`] at any address.
fn probe_v2_at(addr: SocketAddr) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(250)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    parse_head(&buf)
}

/// The status code and head of a raw HTTP response.
pub(crate) fn parse_head(response: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(response);
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_string();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head))
}

fn tail(path: &Path) -> String {
    const LINES: usize = 60;
    let mut raw = Vec::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.read_to_end(&mut raw);
    }
    let text = String::from_utf8_lossy(&raw);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LINES)..].join("\n")
}
