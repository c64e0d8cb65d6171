//! [`TestPushgateway`]: Debian's `prometheus-pushgateway` on a free loopback port,
//! metrics in memory only, killed on drop.
//!
//! It serves under a route prefix unique to the instance, so the readiness probe
//! cannot mistake another test's gateway (or anything else that took the port
//! between choosing and binding it) for this one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::registry::{free_port, parse_head};

/// Overrides the gateway binary (default: `prometheus-pushgateway` on `PATH`, as
/// Debian installs it).
pub const PUSHGATEWAY_BIN_ENV: &str = "OCISYNC_TEST_PUSHGATEWAY_BIN";

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const START_ATTEMPTS: u32 = 3;

/// A running Pushgateway.
pub struct TestPushgateway {
    child: Child,
    port: u16,
    prefix: String,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestPushgateway {
    /// Starts a gateway; panics (with its log) if it does not come up.
    pub fn start() -> TestPushgateway {
        let dir = tempfile::Builder::new()
            .prefix("ocisync-pushgateway-")
            .tempdir()
            .expect("testkit: create pushgateway temp dir");
        let log_path = dir.path().join("pushgateway.log");
        let binary = std::env::var_os(PUSHGATEWAY_BIN_ENV).unwrap_or_else(|| "prometheus-pushgateway".into());
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let prefix = format!("gw-{}-{port}-{attempt}", std::process::id());
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .expect("testkit: open pushgateway log");
            let mut child = Command::new(&binary)
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!("--web.route-prefix=/{prefix}"))
                .arg("--persistence.file=")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("testkit: clone log handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|error| {
                    panic!(
                        "testkit: cannot run {binary:?} ({error}); install Debian's \
                         `prometheus-pushgateway` package or set {PUSHGATEWAY_BIN_ENV}"
                    )
                });
            let deadline = Instant::now() + READY_TIMEOUT;
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if get(port, &format!("/{prefix}/-/ready")).is_some_and(|(status, _)| status == 200) {
                    return TestPushgateway {
                        child,
                        port,
                        prefix,
                        log_path,
                        _dir: dir,
                    };
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        panic!(
            "testkit: prometheus-pushgateway did not come up in {START_ATTEMPTS} attempts; log:\n{}",
            read_log(&log_path)
        )
    }

    /// The base URL to push to: `http://127.0.0.1:PORT/PREFIX`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, self.prefix)
    }

    /// What the gateway serves to Prometheus: every pushed group, with its grouping
    /// labels on each sample, plus the gateway's own metrics.
    pub fn metrics(&self) -> String {
        let (status, body) =
            get(self.port, &format!("/{}/metrics", self.prefix)).expect("testkit: scrape the pushgateway");
        assert_eq!(status, 200, "testkit: pushgateway /metrics answered {status}:\n{body}");
        body
    }

    /// The gateway's log (stdout and stderr).
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }
}

impl Drop for TestPushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("testkit: pushgateway {} log:\n{}", self.url(), self.log());
        }
    }
}

/// A plain `GET` over HTTP/1.1: status and body.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(250)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let (status, head) = parse_head(&response)?;
    let text = String::from_utf8_lossy(&response);
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())?;
    let chunked = head
        .to_ascii_lowercase()
        .lines()
        .any(|line| line.starts_with("transfer-encoding:") && line.contains("chunked"));
    Some((status, if chunked { dechunk(&body) } else { body }))
}

/// Go's server sends a large body in chunks: `SIZE\r\nDATA\r\n`, ending with size 0.
fn dechunk(body: &str) -> String {
    let mut rest = body;
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].strip_prefix("\r\n").unwrap_or(&after[size..]);
    }
    out
}

fn read_log(path: &PathBuf) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    text
}
