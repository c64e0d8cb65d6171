//! [`HostileServer`]: a loopback HTTP/1.1 server that answers from a script, with
//! whatever a hostile upstream might send: huge bodies, bodies that drip a byte at a
//! time, challenges and redirects from unexpected places. Every request is recorded with
//! its `Authorization` header, so a test can prove that no credential arrived.
//!
//! One request per connection (`Connection: close`). Everything it sends is bounded
//! (sizes and drip counts are the script's numbers), and dropping the server stops it and
//! the connections still open.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::serve::{accept_until_shutdown, LocalServer};

/// Largest request head read; the clients under test send small ones.
const MAX_HEAD: usize = 64 * 1024;

/// One request as the hostile server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostileRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The `Authorization` header, if one arrived.
    pub authorization: Option<String>,
}

/// What the body of an answer is.
#[derive(Debug, Clone)]
pub enum HostileBody {
    Bytes(Vec<u8>),
    /// `chunk` sent again and again until `total` bytes went out.
    Repeat {
        chunk: Vec<u8>,
        total: u64,
    },
    /// `count` bytes of `byte`, one every `interval`.
    Drip {
        byte: u8,
        interval: Duration,
        count: u64,
    },
    /// `bytes`, `chunk` bytes at a time, one chunk every `interval`: a slow link that
    /// does deliver (or, with small chunks and long intervals, a drip of real content).
    Paced {
        bytes: Vec<u8>,
        chunk: usize,
        interval: Duration,
    },
}

impl HostileBody {
    fn length(&self) -> u64 {
        match self {
            HostileBody::Bytes(bytes) => bytes.len() as u64,
            HostileBody::Repeat { total, .. } => *total,
            HostileBody::Drip { count, .. } => *count,
            HostileBody::Paced { bytes, .. } => bytes.len() as u64,
        }
    }
}

/// A scripted answer: status, headers (a `Content-Length` matching the body is added
/// unless the script sets one) and body.
#[derive(Debug, Clone)]
pub struct HostileAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: HostileBody,
}

impl HostileAnswer {
    pub fn new(status: u16) -> HostileAnswer {
        HostileAnswer {
            status,
            headers: Vec::new(),
            body: HostileBody::Bytes(Vec::new()),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> HostileAnswer {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: HostileBody) -> HostileAnswer {
        self.body = body;
        self
    }

    pub fn text(self, text: &str) -> HostileAnswer {
        self.body(HostileBody::Bytes(text.as_bytes().to_vec()))
    }
}

type Script = Arc<dyn Fn(&HostileRequest) -> HostileAnswer + Send + Sync>;

/// A running scripted server on `127.0.0.1`.
pub struct HostileServer {
    server: LocalServer,
    log: Arc<Mutex<Vec<HostileRequest>>>,
}

impl HostileServer {
    /// Binds a free loopback port and answers every request with `script`.
    pub fn start(script: impl Fn(&HostileRequest) -> HostileAnswer + Send + Sync + 'static) -> HostileServer {
        let log: Arc<Mutex<Vec<HostileRequest>>> = Arc::default();
        let script: Script = Arc::new(script);
        let served_log = Arc::clone(&log);
        let server = LocalServer::serve("hostile", move |listener, shutdown| {
            serve(listener, script, served_log, shutdown)
        });
        HostileServer { server, log }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<HostileRequest> {
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Whether any request carried an `Authorization` header.
    pub fn saw_authorization(&self) -> bool {
        self.requests().iter().any(|request| request.authorization.is_some())
    }
}

async fn serve(
    listener: TcpListener,
    script: Script,
    log: Arc<Mutex<Vec<HostileRequest>>>,
    shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    accept_until_shutdown(listener, shutdown, |stream| {
        let script = Arc::clone(&script);
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            let _ = answer(stream, &script, &log).await;
        });
    })
    .await;
}

async fn answer(mut stream: TcpStream, script: &Script, log: &Mutex<Vec<HostileRequest>>) -> std::io::Result<()> {
    let Some(request) = read_head(&mut stream).await? else {
        return Ok(());
    };
    log.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(request.clone());
    let scripted = script(&request);
    let mut head = format!("HTTP/1.1 {} Scripted\r\nConnection: close\r\n", scripted.status);
    let sets_length = scripted
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-length"));
    if !sets_length {
        head.push_str(&format!("Content-Length: {}\r\n", scripted.body.length()));
    }
    for (name, value) in &scripted.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if request.method == "HEAD" {
        return stream.flush().await;
    }
    match &scripted.body {
        HostileBody::Bytes(bytes) => stream.write_all(bytes).await?,
        HostileBody::Repeat { chunk, total } => {
            let mut left = *total;
            while left > 0 {
                let take = left.min(chunk.len() as u64) as usize;
                stream.write_all(&chunk[..take]).await?;
                left -= take as u64;
            }
        }
        HostileBody::Drip { byte, interval, count } => {
            for _ in 0..*count {
                stream.write_all(&[*byte]).await?;
                stream.flush().await?;
                tokio::time::sleep(*interval).await;
            }
        }
        HostileBody::Paced { bytes, chunk, interval } => {
            for piece in bytes.chunks((*chunk).max(1)) {
                stream.write_all(piece).await?;
                stream.flush().await?;
                tokio::time::sleep(*interval).await;
            }
        }
    }
    stream.flush().await
}

/// Reads the request head (and discards a body of the length it declares, up to a cap).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<HostileRequest>> {
    let mut buffer = Vec::new();
    let mut byte = [0_u8; 1024];
    let end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > MAX_HEAD {
            return Ok(None);
        }
        let read = stream.read(&mut byte).await?;
        if read == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&byte[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let mut authorization = None;
    let mut content_length = 0_usize;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.to_owned());
            } else if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse().unwrap_or(0);
            }
        }
    }
    // The body is not looked at; read what is already here and a little more, so the
    // client is not reset while it sends.
    let mut left = content_length.min(MAX_HEAD).saturating_sub(buffer.len() - end - 4);
    while left > 0 {
        let read = stream.read(&mut byte).await?;
        if read == 0 {
            break;
        }
        left = left.saturating_sub(read);
    }
    Ok(Some(HostileRequest {
        method,
        path,
        authorization,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_from_the_script_and_records_authorization() {
        let server = HostileServer::start(|request| {
            if request.path == "/big" {
                HostileAnswer::new(400).body(HostileBody::Repeat {
                    chunk: b"word ".to_vec(),
                    total: 100_000,
                })
            } else {
                HostileAnswer::new(401)
                    .header("WWW-Authenticate", "Basic realm=\"x\"")
                    .text("no")
            }
        });
        let client = reqwest::Client::new();
        let big = client.get(format!("{}/big", server.url())).send().await.unwrap();
        assert_eq!(big.status(), 400);
        assert_eq!(big.bytes().await.unwrap().len(), 100_000);
        let denied = client
            .get(format!("{}/v2/", server.url()))
            .header("Authorization", "Basic abc")
            .send()
            .await
            .unwrap();
        assert_eq!(denied.status(), 401);
        assert_eq!(denied.text().await.unwrap(), "no");
        let seen = server.requests();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].authorization, None);
        assert_eq!(seen[1].authorization.as_deref(), Some("Basic abc"));
        assert!(server.saw_authorization());
    }
}
