//! The web server's listener: at most [`MAX_CONNECTIONS`] at once, and a connection on which
//! nothing moved either way for [`IDLE`] is closed. Without them anyone who can reach the
//! port could hold connections open until the daemon runs out of file descriptors, and with
//! them out of what it needs to serve peers.

use axum::serve::Listener;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Browsers open about six connections to a host; a few players and phones fit many times.
pub(crate) const MAX_CONNECTIONS: usize = 128;
/// Longer than any pause between bytes of a request or an answer in use: a browser's audio
/// element stops reading once it has buffered enough, for as long as that lasts.
pub(crate) const IDLE: Duration = Duration::from_secs(300);

/// The client's address, as handlers see it (`ConnectInfo<ClientAddr>`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, CappedListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, CappedListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

pub(crate) struct CappedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    idle: Duration,
}

impl CappedListener {
    pub(crate) fn new(inner: TcpListener, max: usize, idle: Duration) -> Self {
        CappedListener {
            inner,
            slots: Arc::new(Semaphore::new(max)),
            idle,
        }
    }
}

impl Listener for CappedListener {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (CappedStream, SocketAddr) {
        loop {
            // Never closed: the semaphore lives as long as the listener.
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                std::future::pending::<()>().await;
                continue;
            };
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (CappedStream::new(stream, permit, self.idle), addr);
                }
                // Out of descriptors and the like: wait a little rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

pub(crate) struct CappedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl CappedStream {
    fn new(stream: TcpStream, permit: OwnedSemaphorePermit, idle: Duration) -> Self {
        CappedStream {
            stream,
            _permit: permit,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    /// Bytes moved: the idle clock starts again.
    fn moved(&mut self) {
        let at = Instant::now() + self.idle;
        self.deadline.as_mut().reset(at);
    }

    /// Nothing moved: an error once the idle time is up (and a wake-up for then).
    fn still<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "web connection idle",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                self.moved();
                Poll::Ready(r)
            }
            Poll::Pending => self.still(cx),
        }
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write(cx, data) {
            Poll::Ready(r) => {
                self.moved();
                Poll::Ready(r)
            }
            Poll::Pending => self.still(cx),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                self.moved();
                Poll::Ready(r)
            }
            Poll::Pending => self.still(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn listener(max: usize, idle: Duration) -> (CappedListener, SocketAddr) {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        (CappedListener::new(tcp, max, idle), addr)
    }

    #[tokio::test]
    async fn connections_past_the_cap_wait_for_one_to_close() {
        let (mut l, addr) = listener(2, Duration::from_secs(60)).await;
        let _c1 = TcpStream::connect(addr).await.unwrap();
        let _c2 = TcpStream::connect(addr).await.unwrap();
        let _c3 = TcpStream::connect(addr).await.unwrap();
        let (s1, _) = l.accept().await;
        let (_s2, _) = l.accept().await;
        let third = tokio::time::timeout(Duration::from_millis(200), l.accept()).await;
        assert!(third.is_err(), "a third connection was served");
        drop(s1);
        let third = tokio::time::timeout(Duration::from_secs(2), l.accept()).await;
        assert!(third.is_ok(), "the freed slot was not used");
    }

    #[tokio::test]
    async fn a_connection_where_nothing_moves_is_closed_and_one_that_talks_is_not() {
        let (mut l, addr) = listener(4, Duration::from_millis(300)).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (mut served, _) = l.accept().await;
        // Talking keeps it open past the idle time.
        for _ in 0..4 {
            client.write_all(b"x").await.unwrap();
            let mut b = [0u8; 1];
            served.read_exact(&mut b).await.unwrap();
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        // Silence closes it.
        let mut b = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_secs(2), served.read(&mut b)).await;
        match r {
            Ok(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::TimedOut),
            other => panic!("an idle connection stayed: {other:?}"),
        }
    }
}
