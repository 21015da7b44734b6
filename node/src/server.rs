//! The node's HTTP server loop: accepts connections, wraps them in TLS when the node has a
//! certificate, and serves each with hyper's HTTP/1 (with upgrades, for the console WebSocket).
//!
//! Own loop rather than `axum::serve`, for the limits that one does not set: a deadline for a
//! request's header block (slow-loris; `axum::serve` gives hyper no timer, so no header timeout
//! applies), a TLS handshake deadline, and a cap on open connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::{Extension, Router};
use config::limits::{HEADER_READ_TIMEOUT, SHUTDOWN_DRAIN_TIMEOUT, TLS_HANDSHAKE_TIMEOUT};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::Layer;

/// After a failed accept (out of file descriptors, say), wait this long before the next one
/// instead of spinning on the same error.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` fires, then gives open requests up to
/// `SHUTDOWN_DRAIN_TIMEOUT` to finish. At most `connections_max` connections are open at once
/// (`[limits] open_connections_max`, by default `OPEN_CONNECTIONS_MAX`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    connections_max: usize,
    shutdown: CancellationToken,
) {
    let open_connections = Arc::new(Semaphore::new(connections_max));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = open_connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = connections_max, "too many open connections; closing a new one");
            continue;
        };
        // Small request/response exchanges: disable Nagle so no reply waits for a delayed ACK.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        let (app, tls, shutdown) = (app.clone(), tls.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_connection(stream, peer, app, shutdown).await,
                Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => serve_connection(stream, peer, app, shutdown).await,
                    Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
    }
    // Every connection task holds a permit; all of them back means every connection closed.
    let drained = tokio::time::timeout(SHUTDOWN_DRAIN_TIMEOUT, open_connections.acquire_many(connections_max as u32));
    if drained.await.is_err() {
        tracing::warn!("connections still open after the shutdown drain time; leaving them");
    }
}

/// What a handler takes to learn the connection's peer: `serve_connection` records it on
/// every request (absent only for a router served some other way).
pub type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

/// The address of the connection's peer, when recorded.
pub fn peer_address(peer: Peer) -> Option<SocketAddr> {
    peer.map(|Extension(ConnectInfo(address))| address)
}

/// Serves one connection; its requests carry the peer's address (`ConnectInfo`) for the routes
/// that budget by client.
async fn serve_connection<IO>(io: IO, peer: SocketAddr, app: Router, shutdown: CancellationToken)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let service = Extension(ConnectInfo(peer)).layer(app);
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service)).with_upgrades();
    tokio::pin!(connection);
    let outcome = tokio::select! {
        outcome = connection.as_mut() => outcome,
        () = shutdown.cancelled() => {
            // Finish the request in progress, answer it with `Connection: close`, then stop.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = outcome {
        tracing::debug!(%error, "connection ended with an error");
    }
}
