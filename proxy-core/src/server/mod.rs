//! The async server that wires the sans-IO pieces to sockets: listeners, the request
//! [`Handler`](http_front::Handler) (static files, uwsgi and HTTP upstreams, redirects),
//! upstream connections with a keep-alive pool, TLS through rustls, the access log,
//! graceful shutdown and configuration reload.
//!
//! This is the only module of the crate that does I/O on sockets; it runs on tokio.
//!
//! ```
//! use proxy_core::config::{ProxyConfig, QuickFlags};
//! use proxy_core::server::{Options, Server};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let flags = QuickFlags {
//!     listen: vec!["127.0.0.1:0".into()],
//!     uwsgi_pass: vec!["unix:/nonexistent/app.sock".into()],
//!     ..QuickFlags::default()
//! };
//! let config = ProxyConfig::from_flags(&flags)?;
//! let runtime = proxy_core::server::runtime(1)?;
//! runtime.block_on(async {
//!     let server = Server::bind(config, Options::default())?;
//!     let addr = server.local_addrs()[0];
//!     let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//!     let serving = tokio::spawn(server.run(async {
//!         let _ = stopped.await;
//!     }));
//!
//!     // No app server listens on the upstream socket: the proxy answers 502.
//!     let mut client = tokio::net::TcpStream::connect(addr).await?;
//!     client.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await?;
//!     let mut response = String::new();
//!     client.read_to_string(&mut response).await?;
//!     assert!(response.starts_with("HTTP/1.1 502 "), "{response}");
//!
//!     let _ = stop.send(()); // graceful shutdown
//!     serving.await??;
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Defaults
//!
//! Upstream connect, send and read timeouts are 60 s each (nginx's `*_connect_timeout`,
//! `*_send_timeout`, `*_read_timeout`); request bodies are kept in memory up to 64 KiB and
//! spill to an anonymous temporary file beyond; 32 idle keep-alive connections per HTTP
//! upstream server, closed after 60 s idle. See [`Options`]. A streamed upstream response
//! is read up to 32 reads (at most 2 MiB) ahead of the client, 1 with
//! `X-Accel-Buffering: no`; a response that is complete in the first read is answered from
//! one buffer, with a `Content-Length`.
//!
//! # Behaviour
//!
//! - Routing: the server block by listening address and `Host` (`server_for`), the
//!   location by longest prefix of the normalised path (`location_for`).
//! - Static files: [`StaticLocation::resolve`](crate::static_files::StaticLocation::resolve)
//!   and `plan` on the blocking pool (or inline, [`Options::static_inline`]); bodies up to
//!   64 KiB are read in one go, larger ones streamed in 64 KiB reads. A missing file goes
//!   to the location's `fallback` upstream when it has one (`try_files $uri @app`).
//! - Upstreams: the request body is buffered first (uwsgi always gets `CONTENT_LENGTH`; a
//!   chunked body is sent de-chunked, without `Transfer-Encoding`); the server is picked
//!   by the pool, failures are reported with `Pool::finish`, and the request moves to the
//!   next server per [`RetryPolicy`](crate::pool::RetryPolicy) (connect errors always,
//!   later failures only for idempotent methods). 502 for a broken or missing upstream,
//!   504 for a timeout. uwsgi connections are used once (as nginx does); HTTP upstream
//!   connections go back to a per-server idle pool when the response head allows it, and
//!   a reused connection that turns out closed is replaced once by a fresh one. An
//!   upstream that answers before reading the whole body (and closes) still has its
//!   answer passed on.
//! - HTTP upstreams get `Host` as nginx's `$host` (the client's host without the port),
//!   `X-Forwarded-For`/`X-Real-IP`/`X-Forwarded-Proto` (incoming ones believed only from
//!   `trusted_proxies`), no hop-by-hop fields.
//! - Responses: hop-by-hop fields removed, `Date`, `Server`, `X-Pad` and `X-Accel-*`
//!   hidden (nginx's `proxy_hide_header` defaults), re-framed by http-front.
//! - TLS: rustls with the ring provider; the certificate is chosen by SNI among the server
//!   blocks of the listening address.
//! - Access log: one `combined` line per request, tracing target `access` (level INFO).
//!
//! Not done: unix-socket listeners for clients, WebSocket/Upgrade tunnelling, response
//! spill to temporary files, multipart ranges, timeouts and buffer sizes in the TOML file
//! (they are [`Options`]), and new listening addresses on reload (they need a restart).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::config::{ProxyConfig, UpstreamAddr};
use crate::upstream_head::UpstreamProtocol;

mod access_log;
mod handler;
mod listen;
mod spool;
mod static_serve;
mod tls;
mod upstream;

pub use handler::{ProxyBody, ProxyHandler};
pub use listen::bind_tcp;
pub use tls::{load_tls_config, tls_config_for};

/// Upstream timeouts (nginx's defaults: 60 s each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a connection. Default 60 s.
    pub connect: Duration,
    /// Between two successful writes of the request. Default 60 s.
    pub send: Duration,
    /// Between two successful reads of the response. Default 60 s.
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        let minute = Duration::from_secs(60);
        Timeouts {
            connect: minute,
            send: minute,
            read: minute,
        }
    }
}

/// Server settings that the configuration file does not carry.
#[derive(Debug, Clone)]
pub struct Options {
    /// Upstream timeouts.
    pub timeouts: Timeouts,
    /// The client-side HTTP settings (limits and timeouts); the body limit is replaced by
    /// the servers' `client_max_body_size`.
    pub http: http_front::ServerConfig,
    /// Request bodies up to this size stay in memory; larger ones go to a temporary file.
    /// Default 64 KiB.
    pub body_buffer: usize,
    /// Idle keep-alive connections kept per HTTP upstream server, unless the upstream
    /// sets its own `keepalive`. Default 32 (nginx's default for explicit upstreams since
    /// 1.29.7); 0 disables reuse.
    pub keepalive: usize,
    /// How long an idle upstream connection is kept, unless the upstream sets its own
    /// `keepalive_timeout`. Default 60 s (nginx's).
    pub keepalive_timeout: Duration,
    /// How long a graceful shutdown waits for requests in flight. Default 60 s.
    pub shutdown_timeout: Duration,
    /// Most concurrent client connections per listener. Default 10000.
    pub max_connections: usize,
    /// Run the static-file system calls (opening the file beneath the root, `fstat`,
    /// reading a body of up to 64 KiB) on the runtime thread, as nginx does in its event loop, instead of on
    /// tokio's blocking pool. Faster for files on local disks (no thread hop per
    /// request); a slow filesystem (NFS) would then stall the other connections of that
    /// thread. Larger bodies are always read by a separate task. Default false.
    pub static_inline: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            timeouts: Timeouts::default(),
            http: http_front::ServerConfig::default(),
            body_buffer: 64 * 1024,
            keepalive: 32,
            keepalive_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            static_inline: false,
        }
    }
}

/// A failure to start or reload the server.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// A TLS certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// An upstream pool is invalid.
    #[error("upstream {name:?}: {message}")]
    Upstream {
        /// The upstream's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// Another I/O failure.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<ServerError> for io::Error {
    fn from(e: ServerError) -> io::Error {
        match e {
            ServerError::Io(e) => e,
            other => io::Error::other(other),
        }
    }
}

/// The proxy's tokio runtime, all drivers on: a current-thread runtime for one worker (no
/// cross-thread wake-ups), else a multi-thread runtime with `workers` threads.
///
/// # Errors
///
/// When the runtime cannot be built (thread creation failed).
pub fn runtime(workers: usize) -> io::Result<tokio::runtime::Runtime> {
    if workers <= 1 {
        // One worker: everything on the calling thread, with no cross-thread wake-ups
        // (nginx's one-worker model).
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("ferrule-proxy")
        .enable_all()
        .build()
}

/// One upstream pool at run time.
pub(crate) struct UpstreamRt {
    pub(crate) name: String,
    pub(crate) protocol: UpstreamProtocol,
    pub(crate) pool: std::sync::Mutex<crate::pool::Pool<UpstreamAddr>>,
    /// Idle keep-alive connections, by server index (HTTP upstreams only).
    pub(crate) idle: std::sync::Mutex<Vec<Vec<upstream::Idle>>>,
    /// Idle connections kept per server (0: no reuse).
    pub(crate) keepalive: usize,
    /// How long an idle connection is kept.
    pub(crate) keepalive_timeout: Duration,
}

/// What a listening address needs per connection.
pub(crate) struct ListenerRt {
    pub(crate) builder: Arc<http_front::Builder>,
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
}

/// A compiled configuration: what requests are served with. Replaced as a whole on reload;
/// a connection keeps the one it was accepted with.
pub(crate) struct Site {
    pub(crate) config: ProxyConfig,
    pub(crate) upstreams: HashMap<String, UpstreamRt>,
    pub(crate) listeners: HashMap<SocketAddr, ListenerRt>,
    pub(crate) options: Options,
}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Site")
            .field("servers", &self.config.servers.len())
            .field("upstreams", &self.upstreams.len())
            .finish()
    }
}

impl Site {
    fn build(config: ProxyConfig, options: Options) -> Result<Site, ServerError> {
        let mut upstreams = HashMap::new();
        for (name, up) in &config.upstreams {
            let pool = up.pool().map_err(|e| ServerError::Upstream {
                name: name.clone(),
                message: e.to_string(),
            })?;
            let idle = (0..up.servers.len()).map(|_| Vec::new()).collect();
            upstreams.insert(
                name.clone(),
                UpstreamRt {
                    name: name.clone(),
                    protocol: up.protocol,
                    pool: std::sync::Mutex::new(pool),
                    idle: std::sync::Mutex::new(idle),
                    keepalive: up.keepalive.unwrap_or(options.keepalive),
                    keepalive_timeout: up.keepalive_timeout.unwrap_or(options.keepalive_timeout),
                },
            );
        }
        let mut listeners = HashMap::new();
        for addr in listen_addrs(&config) {
            let on_addr = config.servers.iter().filter(|s| s.listen.contains(&addr));
            let mut max_body = 0u64;
            let mut certs: Vec<(&[String], &crate::config::TlsFiles)> = Vec::new();
            for s in on_addr {
                let limit = if s.client_max_body_size == 0 {
                    u64::MAX
                } else {
                    s.client_max_body_size
                };
                max_body = max_body.max(limit);
                if let Some(files) = &s.tls {
                    certs.push((&s.server_names, files));
                }
            }
            let tls = if certs.is_empty() {
                None
            } else {
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls_config_for(
                    &certs,
                )?)))
            };
            let mut http = options.http.clone();
            let mut body = http_front::BodyConfig::new();
            body.max_body_bytes(max_body);
            http.body(body);
            listeners.insert(
                addr,
                ListenerRt {
                    builder: Arc::new(http_front::Builder::new(http)),
                    tls,
                },
            );
        }
        Ok(Site {
            config,
            upstreams,
            listeners,
            options,
        })
    }
}

/// A body that ends at once without claiming a length, for responses that send none but
/// advertise the length a GET would have (HEAD, 304): http-front then keeps the
/// `Content-Length` field as it is.
pub(crate) fn no_body() -> http_front::Either<http_front::Full, http_front::ChannelBody> {
    let (_, body) = http_front::ChannelBody::channel(1);
    http_front::Either::Right(body)
}

/// Every configured listening address, once each, in file order.
fn listen_addrs(config: &ProxyConfig) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for s in &config.servers {
        for a in &s.listen {
            if !out.contains(a) {
                out.push(*a);
            }
        }
    }
    out
}

/// Replaces the configuration of a running [`Server`]: new connections use the new one,
/// established connections keep theirs. Cheap to clone.
#[derive(Clone)]
pub struct ReloadHandle {
    site: Arc<RwLock<Arc<Site>>>,
    options: Options,
    bound: Arc<Vec<SocketAddr>>,
}

impl fmt::Debug for ReloadHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadHandle")
            .field("listeners", &self.bound)
            .finish()
    }
}

impl ReloadHandle {
    /// Switches to `config`. Listening addresses are fixed at [`Server::bind`]: addresses
    /// that the new configuration adds are not opened (a warning is logged), and a removed
    /// address keeps accepting with the new configuration's default server.
    ///
    /// # Errors
    ///
    /// A TLS file that cannot be loaded or an invalid upstream; the old configuration
    /// stays in force.
    pub fn reload(&self, config: ProxyConfig) -> Result<(), ServerError> {
        for addr in listen_addrs(&config) {
            if !self.bound.contains(&addr) {
                tracing::warn!(%addr, "reload: new listening address ignored until restart");
            }
        }
        let site = Arc::new(Site::build(config, self.options.clone())?);
        *self.site.write().unwrap_or_else(|e| e.into_inner()) = site;
        tracing::info!("configuration reloaded");
        Ok(())
    }
}

/// The proxy server: bound listeners and the configuration they serve.
pub struct Server {
    listeners: Vec<(SocketAddr, std::net::TcpListener)>,
    handle: ReloadHandle,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("listeners", &self.local_addrs())
            .finish()
    }
}

impl Server {
    /// Binds every listening address of `config` (SO_REUSEADDR, backlog 1024) and loads
    /// the TLS files. Must run inside a tokio runtime only for [`run`](Self::run).
    ///
    /// # Errors
    ///
    /// [`ServerError::Bind`] for an address that cannot be bound, [`ServerError::Tls`] for
    /// unreadable or invalid PEM files.
    pub fn bind(config: ProxyConfig, options: Options) -> Result<Server, ServerError> {
        let addrs = listen_addrs(&config);
        let site = Site::build(config, options.clone())?;
        let mut listeners = Vec::new();
        for addr in &addrs {
            let l = bind_tcp(*addr, 1024).map_err(|source| ServerError::Bind {
                addr: *addr,
                source,
            })?;
            listeners.push((*addr, l));
        }
        Ok(Server {
            listeners,
            handle: ReloadHandle {
                site: Arc::new(RwLock::new(Arc::new(site))),
                options,
                bound: Arc::new(addrs),
            },
        })
    }

    /// The addresses actually bound (with the real port when the configuration said 0),
    /// in configuration order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .map(|(configured, l)| l.local_addr().unwrap_or(*configured))
            .collect()
    }

    /// A handle to reload the configuration while [`run`](Self::run) runs.
    pub fn reload_handle(&self) -> ReloadHandle {
        self.handle.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets requests in flight
    /// finish (up to [`Options::shutdown_timeout`]) and closes idle connections.
    ///
    /// # Errors
    ///
    /// When a listener cannot be registered with the runtime.
    pub async fn run<F>(self, shutdown: F) -> io::Result<()>
    where
        F: Future<Output = ()>,
    {
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let mut loops = tokio::task::JoinSet::new();
        for (configured, l) in self.listeners {
            l.set_nonblocking(true)?;
            let listener = TcpListener::from_std(l)?;
            let handle = self.handle.clone();
            let stopping = stopping.clone();
            loops.spawn(accept_loop(listener, configured, handle, stopping));
        }
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
        stop.send_replace(true);
        let timeout = self.handle.options.shutdown_timeout;
        let drained = tokio::time::timeout(timeout, async {
            while loops.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("shutdown timeout: closing the remaining connections");
            loops.abort_all();
        }
        Ok(())
    }
}

async fn accept_loop(
    listener: TcpListener,
    configured: SocketAddr,
    handle: ReloadHandle,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let local = listener.local_addr().unwrap_or(configured);
    let permits = Arc::new(tokio::sync::Semaphore::new(
        handle.options.max_connections.max(1),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = stopping.wait_for(|s| *s) => break,
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = stopping.wait_for(|s| *s) => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::error!(%local, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let site = Arc::clone(&handle.site.read().unwrap_or_else(|e| e.into_inner()));
        let stopping = stopping.clone();
        tasks.spawn(async move {
            serve_tcp(stream, site, configured, local, peer, stopping).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

async fn serve_tcp(
    stream: tokio::net::TcpStream,
    site: Arc<Site>,
    configured: SocketAddr,
    local: SocketAddr,
    peer: SocketAddr,
    stopping: tokio::sync::watch::Receiver<bool>,
) {
    let Some(rt) = site.listeners.get(&configured) else {
        // Reloaded to a configuration without this address: serve with the default
        // server of the new configuration.
        let builder = Arc::new(http_front::Builder::new(site.options.http.clone()));
        let handler = ProxyHandler::new(Arc::clone(&site), configured, local, Some(peer), false);
        serve_io(stream, &builder, &handler, stopping).await;
        return;
    };
    let builder = Arc::clone(&rt.builder);
    match &rt.tls {
        None => {
            let handler =
                ProxyHandler::new(Arc::clone(&site), configured, local, Some(peer), false);
            serve_io(stream, &builder, &handler, stopping).await;
        }
        Some(acceptor) => {
            let timeout = Duration::from_secs(60);
            let tls = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let handler = ProxyHandler::new(Arc::clone(&site), configured, local, Some(peer), true);
            serve_io(tls, &builder, &handler, stopping).await;
        }
    }
}

async fn serve_io<IO>(
    io: IO,
    builder: &http_front::Builder,
    handler: &ProxyHandler,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
{
    let until = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    if let Err(e) = builder
        .serve_connection_with_shutdown(io, handler, until)
        .await
    {
        tracing::debug!("client connection ended: {e}");
    }
}

/// Runs `server` until a stop signal, with the process-manager conventions of `ferrule`:
/// SIGTERM stops gracefully (stop accepting, finish requests in flight, close idle
/// connections); SIGINT and SIGQUIT stop at once (connections are dropped). On SIGHUP it
/// calls `reload` and switches to the configuration it returns (`None`: keep the current
/// one; `reload` logs why).
///
/// # Errors
///
/// When the signal handlers cannot be installed, or as [`Server::run`].
pub async fn run_with_signals<R>(server: Server, reload: R) -> io::Result<()>
where
    R: Fn() -> Option<ProxyConfig> + Send + 'static,
{
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut hup = signal(SignalKind::hangup())?;
    let handle = server.reload_handle();
    let reloader = tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the configuration");
            if let Some(config) = reload() {
                if let Err(e) = handle.reload(config) {
                    tracing::error!("reload failed, keeping the old configuration: {e}");
                }
            }
        }
    });
    let graceful = async move {
        term.recv().await;
        tracing::info!("SIGTERM received: graceful shutdown");
    };
    let result = tokio::select! {
        r = server.run(graceful) => r,
        _ = int.recv() => {
            tracing::info!("SIGINT received: stopping now");
            Ok(())
        }
        _ = quit.recv() => {
            tracing::info!("SIGQUIT received: stopping now");
            Ok(())
        }
    };
    reloader.abort();
    result
}
