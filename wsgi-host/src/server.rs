//! Serving several listeners from one worker: the entry point of a worker process.

use std::future::Future;
use std::sync::Arc;

use pyo3::prelude::*;

use crate::executor::Executor;
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
/// # Errors
///
/// [`ServeError::NotInitialized`] before [`crate::initialize`]; [`ServeError::Io`] if the
/// runtime or a listener cannot be set up; [`ServeError::Config`] for an HTTP listener, which
/// this build cannot serve yet.
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
    for listener in listeners {
        match listener.protocol {
            Protocol::Uwsgi => uwsgi.push(UwsgiListener::from_socket(listener.socket)?),
            Protocol::Http => {
                return Err(ServeError::Config(format!(
                    "{}: HTTP listeners are not served by this build yet",
                    listener.name
                )));
            }
        }
    }
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
