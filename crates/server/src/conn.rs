//! Serving connections: HTTP/1.1 over TCP, or over TLS (rustls), with the limits that keep
//! slow or silent clients from holding connections (`docs/security.md`, "Resource limits
//! and slow clients"), and a graceful shutdown.
//!
//! Every connection is served by hyper's HTTP/1 connection with a timer, so that
//! `header_read_timeout` is in force: a request's headers must arrive within
//! [`Timeouts::header_read`] of hyper starting to wait for them, which is the connection's
//! start, or the end of the previous response on a keep-alive connection (hyper has no
//! separate idle timeout for HTTP/1; this one closes idle keep-alive connections too). Over
//! TLS the handshake has the same bound, and ALPN offers `http/1.1` only. HTTP/2 is not
//! served: hyper's HTTP/2 server has no header-read timeout, and the clients of this API
//! speak HTTP/1.1.
//!
//! Handlers see the peer address as `ConnectInfo<SocketAddr>`, as with
//! `into_make_service_with_connect_info`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use axum::routing::future::RouteFuture;
use axum::Router;
use axum_server::accept::{Accept, DefaultAcceptor};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::config::Timeouts;

/// How long in-flight requests may take to finish after SIGTERM; connections still open
/// then are closed.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Pause after a failed `accept` (e.g. out of file descriptors) before the next one.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown` completes; then stops
/// accepting, lets in-flight requests finish (at most [`SHUTDOWN_GRACE`]) and returns.
///
/// At most `connections_max` connections are open at once (as in tokio's mini-redis): the
/// next one is accepted only when one closes, and the kernel's listen backlog holds the
/// rest meanwhile. Idle connections are closed after the header-read timeout, so the
/// slots come back.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<RustlsConfig>,
    app: Router,
    timeouts: Timeouts,
    connections_max: usize,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(connections_max));
    let app = app.with_state(());
    let tls = tls.map(|c| RustlsAcceptor::new(c).handshake_timeout(timeouts.header_read));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .keep_alive(true);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let slot = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (tcp, peer) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        // Reap finished connections so the set holds only open ones.
        while conns.try_join_next().is_some() {}
        let _ = tcp.set_nodelay(true);
        let one = serve_one(
            tcp,
            peer,
            tls.clone(),
            http.clone(),
            app.clone(),
            stop_rx.clone(),
        );
        conns.spawn(async move {
            one.await;
            drop(slot);
        });
    }
    // New connections are refused from here on.
    drop(listener);
    let _ = stop_tx.send(true);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!(
            open = conns.len(),
            "connections still open {} s after the shutdown signal; closing them",
            SHUTDOWN_GRACE.as_secs()
        );
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

async fn serve_one(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<RustlsAcceptor<DefaultAcceptor>>,
    http: http1::Builder,
    app: Router,
    mut stop: watch::Receiver<bool>,
) {
    let service = PeerService { app, peer };
    match tls {
        None => serve_http(TokioIo::new(tcp), &http, service, stop).await,
        Some(acceptor) => {
            // The acceptor bounds the handshake by the header-read timeout.
            let accepted = tokio::select! {
                r = acceptor.accept(tcp, ()) => r,
                _ = stopped(&mut stop) => return,
            };
            match accepted {
                Ok((stream, ())) => serve_http(TokioIo::new(stream), &http, service, stop).await,
                Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            }
        }
    }
}

async fn serve_http<I>(
    io: I,
    http: &http1::Builder,
    service: PeerService,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let peer = service.peer;
    let mut conn = pin!(http.serve_connection(io, service));
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stopped(&mut stop) => {
            // Idle connections close now; a request in progress finishes first.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Header timeouts, resets, malformed requests: the client's problem, not ours.
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Completes once the shutdown signal was given (at once if it already was).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The borrow of the value ends here: it must not be held across an await.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// The router with the peer address put into each request, as `ConnectInfo<SocketAddr>`.
#[derive(Clone)]
struct PeerService {
    app: Router,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for PeerService {
    type Response = Response;
    type Error = Infallible;
    type Future = RouteFuture<Infallible>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.peer));
        tower_service::Service::call(&mut self.app.clone(), req)
    }
}
