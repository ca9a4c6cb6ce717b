//! Serving several listeners from one worker: the entry point of a worker process.

use std::future::Future;
use std::sync::Arc;

use pyo3::prelude::*;

use crate::executor::Executor;
use crate::http::WsgiHandler;
use crate::runtime::listen::{BoundListener, Protocol};
use crate::uwsgi::{UwsgiListener, accept_loop};
use crate::{ServeError, Worker};

/// Serves every listener with `worker` on one current-thread tokio runtime (the worker
/// process's only I/O thread) until `shutdown` completes or the worker reaches
/// `max-requests`; then stops accepting at once and waits for the requests in flight.
///
/// uwsgi listeners speak the uwsgi protocol (one request per connection, as nginx's
/// `uwsgi_pass` expects). With `threads = 1` the app runs on this thread (attached once,
/// detached while the runtime waits); with `threads = N` on N Python threads.
///
/// HTTP listeners use http-front's driver (keep-alive, pipelining, strict parsing); see
/// [`crate::http`](self) for how requests reach the app.
///
/// # Errors
///
/// [`ServeError::NotInitialized`] before [`crate::initialize`]; [`ServeError::Io`] if the
/// runtime or a listener cannot be set up.
pub fn serve<F>(
    worker: Arc<Worker>,
    listeners: Vec<BoundListener>,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send,
{
    if !crate::is_initialized() {
        return Err(ServeError::NotInitialized);
    }
    let mut uwsgi = Vec::new();
    let mut http = Vec::new();
    for listener in listeners {
        match listener.protocol {
            Protocol::Uwsgi => uwsgi.push(UwsgiListener::from_socket(listener.socket)?),
            Protocol::Http => http.push(listener.socket),
        }
    }
    let http_builder = Arc::new(http_front::Builder::new(http_config(worker.config())));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let executor = Executor::start(&worker)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut recycle = worker.recycle_signal();
    let run = {
        let executor = executor.clone();
        let worker = Arc::clone(&worker);
        move || {
            runtime.block_on(async move {
                let mut loops = Vec::new();
                for listener in uwsgi {
                    let mut stopped = stopped.clone();
                    let until = async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    };
                    loops.push(tokio::spawn(accept_loop(
                        Arc::clone(&worker),
                        listener,
                        executor.clone(),
                        until,
                    )));
                }
                for socket in http {
                    let mut stopped = stopped.clone();
                    let until = async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    };
                    loops.push(tokio::spawn(http_accept_loop(
                        Arc::clone(&worker),
                        socket,
                        executor.clone(),
                        Arc::clone(&http_builder),
                        until,
                    )));
                }
                tokio::select! {
                    () = shutdown => {}
                    _ = recycle.wait_for(|r| *r) => {}
                }
                stop.send_replace(true);
                let mut result = Ok(());
                for handle in loops {
                    match handle.await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => result = Err(err),
                        Err(join) => result = Err(ServeError::Io(std::io::Error::other(join))),
                    }
                }
                result
            })
        }
    };
    let result = if executor.is_inline() {
        // Attach once for the life of the runtime thread; detach while the runtime waits.
        Python::attach(|py| py.detach(run))
    } else {
        run()
    };
    executor.stop();
    result
}

/// http-front's settings from the worker's (uWSGI option names): `buffer-size` bounds the
/// request head, `limit-post` the body (1 GiB when unset), `socket-timeout` the wait for a
/// request head and each body read.
fn http_config(config: &crate::ServerConfig) -> http_front::ServerConfig {
    let mut head = http_front::HeadConfig::default();
    head.max_head_bytes(usize::from(config.buffer_size));
    let mut body = http_front::BodyConfig::default();
    if config.limit_post > 0 {
        body.max_body_bytes(config.limit_post);
    }
    let mut http = http_front::ServerConfig::default();
    http.head(head)
        .body(body)
        .head_timeout(config.socket_timeout)
        .body_timeout(config.socket_timeout);
    http
}

enum HttpListener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

async fn http_accept_loop<F>(
    worker: Arc<Worker>,
    socket: socket2::Socket,
    executor: Executor,
    builder: Arc<http_front::Builder>,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()>,
{
    socket.set_nonblocking(true)?;
    let local = socket.local_addr()?;
    let listener = if local.is_unix() {
        HttpListener::Unix(tokio::net::UnixListener::from_std(socket.into())?)
    } else {
        HttpListener::Tcp(tokio::net::TcpListener::from_std(socket.into())?)
    };
    let local = local.as_socket();
    let connections = Arc::new(tokio::sync::Semaphore::new(worker.config().max_connections));
    // Graceful stop for the connections: finish the request in flight, close idle ones.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept_http(&listener) => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                tracing::error!("accept failed: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let handler = WsgiHandler::new(Arc::clone(&worker), executor.clone(), remote, local);
        let builder = Arc::clone(&builder);
        let mut stopping = stopping.clone();
        tasks.spawn(async move {
            let until = async move {
                let _ = stopping.wait_for(|s| *s).await;
            };
            let result = match stream {
                HttpStream::Tcp(s) => {
                    builder
                        .serve_connection_with_shutdown(s, &handler, until)
                        .await
                }
                HttpStream::Unix(s) => {
                    builder
                        .serve_connection_with_shutdown(s, &handler, until)
                        .await
                }
            };
            if let Err(err) = result {
                tracing::debug!(peer = ?handler.remote, "http connection ended: {err}");
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    stop.send_replace(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

enum HttpStream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept_http(
    listener: &HttpListener,
) -> std::io::Result<(HttpStream, Option<std::net::SocketAddr>)> {
    match listener {
        HttpListener::Tcp(l) => {
            let (s, peer) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((HttpStream::Tcp(s), Some(peer)))
        }
        HttpListener::Unix(l) => {
            let (s, _) = l.accept().await?;
            Ok((HttpStream::Unix(s), None))
        }
    }
}
