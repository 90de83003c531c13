//! The accept loop: plain HTTP or TLS per connection (whatever the web config in force says
//! when the connection arrives, so a reload never drops the listener), HTTP/1.1 via hyper,
//! graceful drain on shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

use crate::auth::{Peer, WebHandle};
use crate::http::AgentState;

/// Time a client gets to finish the TLS handshake (or send its first byte).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client gets to send request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest drain on shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Answer to a plain-HTTP request on a TLS port (what Go's servers answer too).
const PLAIN_ON_TLS: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// Serves `state` on `listeners` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listeners: Vec<TcpListener>,
    state: Arc<AgentState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = Arc::new(GracefulShutdown::new());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let app = crate::http::router(Arc::clone(&state));
    let mut loops = tokio::task::JoinSet::new();
    for l in listeners {
        let mut rx = rx.clone();
        let app = app.clone();
        let web = Arc::clone(state.web());
        let graceful = Arc::clone(&graceful);
        loops.spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    r = l.accept() => match r {
                        Ok(s) => s,
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                    _ = rx.changed() => break,
                };
                tokio::spawn(connection(stream, peer, app.clone(), Arc::clone(&web), graceful.watcher()));
            }
        });
    }
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    while let Some(r) = loops.join_next().await {
        r.map_err(std::io::Error::other)?;
    }
    // Every accept loop has ended and dropped its reference.
    let Ok(graceful) = Arc::try_unwrap(graceful) else { return Ok(()) };
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
    Ok(())
}

async fn connection(stream: TcpStream, peer: SocketAddr, app: Router, web: Arc<WebHandle>, watcher: Watcher) {
    let _ = stream.set_nodelay(true);
    let tls = web.current().tls.clone();
    let Some(tls) = tls else {
        serve_http(TokioIo::new(stream), peer, app, watcher).await;
        return;
    };
    let mut first = [0u8; 1];
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return,
    }
    // A TLS connection starts with a handshake record (type 22); anything else is most likely
    // plain HTTP sent to the TLS port.
    if first[0] != 0x16 {
        if let Some(held) = web.tls_log.allow(Instant::now()) {
            tracing::warn!(peer = %peer, held_back = held, "plain HTTP request on the TLS port; answered 400");
        }
        let mut s = stream;
        let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, s.write_all(PLAIN_ON_TLS)).await;
        let _ = s.shutdown().await;
        return;
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => serve_http(TokioIo::new(s), peer, app, watcher).await,
        Ok(Err(e)) => {
            if let Some(held) = web.tls_log.allow(Instant::now()) {
                tracing::warn!(peer = %peer, error = %e, held_back = held, "TLS handshake failed");
            }
        }
        Err(_) => {
            if let Some(held) = web.tls_log.allow(Instant::now()) {
                tracing::warn!(peer = %peer, held_back = held, "TLS handshake timed out");
            }
        }
    }
}

async fn serve_http<I>(io: TokioIo<I>, peer: SocketAddr, app: Router, watcher: Watcher)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(Peer(peer));
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.oneshot(req).await.unwrap_or_else(|e| match e {})) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(io, svc);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
    }
}
