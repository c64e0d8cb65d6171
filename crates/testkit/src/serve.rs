//! [`LocalServer`]: a tiny HTTP/1.1 server on a free loopback port, answering each request
//! from its head (method, URI, headers) and its body, read whole, on its own thread and
//! tokio runtime.
//!
//! The token server (whose OAuth2 grants are form bodies) and the redirecting blob
//! server are built on it; the scripted hostile server and the TLS front bring their
//! own accept loops to [`LocalServer::serve`].

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// Answers one request from its head and body.
pub(crate) type Handler = Arc<dyn Fn(&Parts, &Bytes) -> Response<Full<Bytes>> + Send + Sync>;

/// A running server; dropping it stops the accept loop and joins its thread.
pub(crate) struct LocalServer {
    addr: SocketAddr,
    _thread: ServerThread,
}

/// A server's accept loop on its own thread and tokio runtime. Dropping it stops the
/// loop, drops the connections still open without waiting for them, and joins the thread.
pub(crate) struct ServerThread {
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Runs `serve` (given the shutdown signal) on a new thread named `name`, in the
    /// runtime `runtime` builds.
    pub(crate) fn spawn<F, Fut>(name: String, runtime: fn() -> tokio::runtime::Runtime, serve: F) -> ServerThread
    where
        F: FnOnce(oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let runtime = runtime();
                runtime.block_on(serve(shutdown_rx));
                runtime.shutdown_background();
            })
            .expect("testkit: spawn server thread");
        ServerThread {
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }
}

/// A listener on a free `127.0.0.1` port, bound before its server's thread starts so
/// connections queue in the backlog right away, and the address it got.
pub(crate) fn bind_loopback(what: &str) -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|error| panic!("testkit: {what} bind: {error}"));
    listener
        .set_nonblocking(true)
        .unwrap_or_else(|error| panic!("testkit: {what} set_nonblocking: {error}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|error| panic!("testkit: {what} local_addr: {error}"));
    (listener, addr)
}

/// The runtime of a server that needs one thread (every server but the proxy).
pub(crate) fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("testkit: server runtime")
}

/// Accepts connections on `listener` until `shutdown` fires, handing each to `on_accept`
/// (which spawns its task); a failed accept is skipped.
pub(crate) async fn accept_until_shutdown(
    listener: TcpListener,
    mut shutdown: oneshot::Receiver<()>,
    mut on_accept: impl FnMut(tokio::net::TcpStream),
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("testkit: tokio listener");
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    on_accept(stream);
                }
            }
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl LocalServer {
    /// Binds `127.0.0.1:0` and serves `handler` on a thread named `testkit-{name}-PORT`.
    pub(crate) fn start(name: &str, handler: Handler) -> LocalServer {
        LocalServer::serve(name, move |listener, shutdown| serve(listener, handler, shutdown))
    }

    /// Binds `127.0.0.1:0` and runs `serve_loop` on it (given the listener and the
    /// shutdown signal) on a thread named `testkit-{name}-PORT`, on a one-thread runtime:
    /// for servers that speak more than [`Handler`] answers (scripted faults, TLS).
    pub(crate) fn serve<F, Fut>(name: &str, serve_loop: F) -> LocalServer
    where
        F: FnOnce(TcpListener, oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let (listener, addr) = bind_loopback(name);
        let thread = ServerThread::spawn(
            format!("testkit-{name}-{}", addr.port()),
            current_thread_runtime,
            move |shutdown| serve_loop(listener, shutdown),
        );
        LocalServer { addr, _thread: thread }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn serve(listener: TcpListener, handler: Handler, shutdown: oneshot::Receiver<()>) {
    accept_until_shutdown(listener, shutdown, |stream| {
        let handler = Arc::clone(&handler);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let handler = Arc::clone(&handler);
                async move {
                    let (parts, body) = request.into_parts();
                    // A body cut short is answered as an empty one: the handler decides.
                    let body = body.collect().await.map(|whole| whole.to_bytes()).unwrap_or_default();
                    Ok::<_, std::convert::Infallible>(handler(&parts, &body))
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    })
    .await;
}
