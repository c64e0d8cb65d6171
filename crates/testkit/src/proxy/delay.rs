//! [`delayed`]: a client connection whose bytes arrive a fixed time after they were sent,
//! in both directions, as over a path at internet distance.

use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The most bytes read from one side at a time.
const CHUNK: usize = 64 * 1024;

/// Chunks held in one direction of one connection at once (at most 16 MiB). Past it,
/// reading waits, as a sender does when its TCP window is full: at a 50 ms one-way
/// delay that caps a connection near 320 MiB/s, far above the links the bench models.
const CHUNKS_IN_FLIGHT: usize = 256;

/// Room in the in-memory pipe between the proxy and the delay lines.
const PIPE_BUFFER: usize = 64 * 1024;

/// Puts `socket` (an accepted client connection) behind two delay lines, one per
/// direction, each releasing every chunk `one_way` after it arrived, in order.
///
/// Returns the end the proxy serves instead of `socket`, and the relay that moves the
/// bytes: run it alongside the serving. It ends once the proxy has closed its end and
/// the last bytes it wrote are delivered (or the client is gone), then drops `socket`,
/// so a reset the proxy asked for still reaches the client, after the delay.
///
/// Each connection has its own lines, so connections never wait for one another.
pub(super) fn delayed<S>(socket: S, one_way: Duration) -> (DuplexStream, impl Future<Output = ()> + Send)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (served, relay_end) = tokio::io::duplex(PIPE_BUFFER);
    (served, relay(socket, relay_end, one_way))
}

async fn relay<S>(socket: S, relay_end: DuplexStream, one_way: Duration)
where
    S: AsyncRead + AsyncWrite + Send,
{
    let (mut from_client, mut to_client) = tokio::io::split(socket);
    let (mut from_proxy, mut to_proxy) = tokio::io::split(relay_end);
    let requests = async {
        delay_line(&mut from_client, &mut to_proxy, one_way).await;
        // The client sent its last byte: the proxy reads the end of its requests.
        let _ = to_proxy.shutdown().await;
        std::future::pending::<()>().await
    };
    // The responses decide when the connection is over; the socket is closed by drop.
    tokio::select! {
        () = delay_line(&mut from_proxy, &mut to_client, one_way) => {}
        () = requests => {}
    }
}

/// Copies `from` to `to`, each chunk written `delay` after it was read, until `from`
/// ends (everything read is still delivered) or either side fails.
async fn delay_line<R, W>(from: &mut R, to: &mut W, delay: Duration)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (sender, mut receiver) = mpsc::channel::<(Instant, Bytes)>(CHUNKS_IN_FLIGHT);
    let reading = async move {
        let mut buffer = BytesMut::new();
        loop {
            buffer.reserve(CHUNK);
            match from.read_buf(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    // Stamped on arrival: a chunk waiting for room is already late, as
                    // bytes behind a full window are.
                    let chunk = (Instant::now() + delay, buffer.split().freeze());
                    if sender.send(chunk).await.is_err() {
                        break;
                    }
                }
            }
        }
        // Dropping the sender lets the delivery drain what is left, then end.
        drop(sender);
        std::future::pending::<()>().await
    };
    let delivering = async move {
        // The delay is the same for every chunk, so arrival order is release order.
        while let Some((due, chunk)) = receiver.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.flush().await;
    };
    tokio::select! {
        () = reading => {}
        () = delivering => {}
    }
}
