//! Executors: where the app runs (`threads = 1`: inline on the runtime thread;
//! `threads = N`: N long-lived Python threads).

use std::fmt;
use std::io;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::BytesMut;
use pyo3::prelude::*;
use uwsgi_proto::{RequestDecoder, RequestHead};

use crate::input::BodySource;
use crate::uwsgi::{Conn, handle_request};
use crate::worker::Worker;

/// One decoded request head plus its connection, ready for the app.
pub(crate) struct Job {
    /// The connection (non-blocking; waits with the socket timeout).
    pub(crate) conn: Conn,
    /// Bytes read past the head (the start of the body).
    pub(crate) buf: BytesMut,
    /// The decoder, positioned at the start of the body.
    pub(crate) decoder: RequestDecoder,
    pub(crate) head: RequestHead,
    /// The whole body, already read (`post-buffering`); `None` to stream it from `stream`.
    pub(crate) body: Option<Box<dyn BodySource>>,
    pub(crate) peer: String,
}

/// Work for a Python thread: runs attached, returns when the response is done.
pub(crate) type Task = Box<dyn FnOnce(Python<'_>) + Send>;

struct PoolJob {
    task: Task,
    done: tokio::sync::oneshot::Sender<()>,
}

pub(crate) struct Pool {
    sender: Mutex<Option<mpsc::Sender<PoolJob>>>,
    /// One permit per thread: the async side waits here, never on the channel.
    permits: Arc<tokio::sync::Semaphore>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Where requests run. Cheap to clone.
#[derive(Clone)]
pub(crate) enum Executor {
    /// On the runtime's own thread, inside the connection's task.
    Inline,
    /// On a fixed pool of Python threads.
    Pool(Arc<Pool>),
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Executor::Inline => f.write_str("Executor::Inline"),
            Executor::Pool(pool) => f
                .debug_struct("Executor::Pool")
                .field("free", &pool.permits.available_permits())
                .finish(),
        }
    }
}

impl Executor {
    /// Starts the executor `worker`'s config asks for.
    pub(crate) fn start(worker: &Worker) -> io::Result<Executor> {
        let threads = worker.config().threads;
        if threads <= 1 {
            return Ok(Executor::Inline);
        }
        let (sender, receiver) = mpsc::channel::<PoolJob>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut handles = Vec::with_capacity(threads);
        for index in 0..threads {
            let receiver = Arc::clone(&receiver);
            let handle = std::thread::Builder::new()
                .name(format!("ferrule-py-{index}"))
                .spawn(move || python_thread(&receiver))?;
            handles.push(handle);
        }
        Ok(Executor::Pool(Arc::new(Pool {
            sender: Mutex::new(Some(sender)),
            permits: Arc::new(tokio::sync::Semaphore::new(threads)),
            threads: Mutex::new(handles),
        })))
    }

    pub(crate) fn is_inline(&self) -> bool {
        matches!(self, Executor::Inline)
    }

    /// Runs one uwsgi request to completion (response sent, connection closed).
    pub(crate) async fn run(&self, worker: Arc<Worker>, job: Job) {
        self.run_task(Box::new(move |py| handle_request(py, &worker, job)))
            .await;
    }

    /// Runs `task` attached to the interpreter: inline on this thread (`threads = 1`) or on
    /// a pool thread, waiting without blocking the runtime. Protocol-neutral, so the HTTP
    /// front can hand it its own request tasks.
    pub(crate) async fn run_task(&self, task: Task) {
        match self {
            Executor::Inline => Python::attach(task),
            Executor::Pool(pool) => {
                let Ok(permit) = Arc::clone(&pool.permits).acquire_owned().await else {
                    return;
                };
                let (done, finished) = tokio::sync::oneshot::channel();
                let sent = {
                    let sender = pool.sender.lock().unwrap_or_else(|p| p.into_inner());
                    match sender.as_ref() {
                        Some(sender) => sender.send(PoolJob { task, done }).is_ok(),
                        None => false,
                    }
                };
                if sent {
                    let _ = finished.await;
                } else {
                    tracing::warn!("request dropped: the Python thread pool is stopping");
                }
                drop(permit);
            }
        }
    }

    /// Stops the pool's threads after the queued jobs and joins them.
    pub(crate) fn stop(&self) {
        if let Executor::Pool(pool) = self {
            pool.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
            let handles =
                std::mem::take(&mut *pool.threads.lock().unwrap_or_else(|p| p.into_inner()));
            for handle in handles {
                let _ = handle.join();
            }
        }
    }
}

/// A Python thread: attached once for its whole life, detached while it waits for work.
fn python_thread(receiver: &Mutex<mpsc::Receiver<PoolJob>>) {
    Python::attach(|py| {
        loop {
            let next = py.detach(|| receiver.lock().unwrap_or_else(|p| p.into_inner()).recv());
            let Ok(PoolJob { task, done }) = next else {
                break;
            };
            // A bug that panics must not shrink the pool: log it and keep serving.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task(py)));
            if ran.is_err() {
                tracing::error!("a request task panicked on a Python thread; the thread goes on");
            }
            let _ = done.send(());
        }
    });
}
