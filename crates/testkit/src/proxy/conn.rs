//! [`AbortableStream`]: an accepted TCP connection that can be closed with a reset,
//! counts its bytes, and sends through the proxy's shared link when it has one.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::link::SharedLink;

/// Bytes through the proxy's client connections, headers included.
#[derive(Debug, Default)]
pub(super) struct Traffic {
    /// Read from clients (requests, upload bodies).
    pub from_clients: AtomicU64,
    /// Written to clients (responses, blob bodies).
    pub to_clients: AtomicU64,
}

impl Traffic {
    pub(super) fn reset(&self) {
        self.from_clients.store(0, Ordering::SeqCst);
        self.to_clients.store(0, Ordering::SeqCst);
    }
}

/// A TCP stream that, if `abort` is set by the time it is dropped, closes with a RST
/// instead of the usual FIN, so the peer sees "connection reset" (zero linger).
///
/// hyper owns the stream while serving it; the request handler sets `abort` and fails
/// the request, which ends the connection and drops the stream.
pub(super) struct AbortableStream {
    stream: TcpStream,
    abort: Arc<AtomicBool>,
    traffic: Arc<Traffic>,
    /// The link every connection's writes share, if the proxy has one.
    link: Option<Arc<SharedLink>>,
    /// Until when the link is busy with what this connection wrote last.
    link_busy: Option<Pin<Box<Sleep>>>,
}

impl AbortableStream {
    pub(super) fn new(
        stream: TcpStream,
        abort: Arc<AtomicBool>,
        traffic: Arc<Traffic>,
        link: Option<Arc<SharedLink>>,
    ) -> AbortableStream {
        AbortableStream {
            stream,
            abort,
            traffic,
            link,
            link_busy: None,
        }
    }
}

/// Closes `stream` with a RST right away.
pub(super) fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

impl Drop for AbortableStream {
    fn drop(&mut self) {
        if self.abort.load(Ordering::SeqCst) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

/// The most bytes one write hands the socket when a link is set, so that a write's slot
/// on the link stays short and connections interleave finely.
const LINK_WRITE: usize = 16 * 1024;

impl AbortableStream {
    /// Waits until the shared link is free for this connection's next write.
    fn poll_link(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(busy) = &mut self.link_busy {
            ready!(busy.as_mut().poll(cx));
            self.link_busy = None;
        }
        Poll::Ready(())
    }

    fn count_sent(&mut self, bytes: usize) {
        self.traffic.to_clients.fetch_add(bytes as u64, Ordering::Relaxed);
        if let Some(link) = &self.link {
            let next = link.sent(bytes);
            if next > tokio::time::Instant::now() {
                self.link_busy = Some(Box::pin(tokio::time::sleep_until(next)));
            }
        }
    }
}

impl AsyncRead for AbortableStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut this.stream).poll_read(cx, buf));
        let read = buf.filled().len() - before;
        this.traffic.from_clients.fetch_add(read as u64, Ordering::Relaxed);
        Poll::Ready(result)
    }
}

impl AsyncWrite for AbortableStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_link(cx));
        let buf = match this.link {
            Some(_) => &buf[..buf.len().min(LINK_WRITE)],
            None => buf,
        };
        let written = ready!(Pin::new(&mut this.stream).poll_write(cx, buf))?;
        this.count_sent(written);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.link.is_some() {
            // One buffer at a time, each through the link.
            let first = bufs.iter().find(|buf| !buf.is_empty()).map_or(&[][..], |buf| &**buf);
            return Pin::new(this).poll_write(cx, first);
        }
        let written = ready!(Pin::new(&mut this.stream).poll_write_vectored(cx, bufs))?;
        this.count_sent(written);
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.link.is_none() && self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
