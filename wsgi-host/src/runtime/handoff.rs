//! Passing listening sockets to processes we start: systemd's `LISTEN_FDS` protocol on the
//! way in, and the master → worker handoff on the way out.
//!
//! The master never forks: it starts each worker by executing the same program again with
//! the listeners left open across `exec` and their numbers in [`ENV_FDS`]. A worker is a
//! fresh process with no inherited threads, runtime or interpreter state.
//!
//! This module holds the crate's only `unsafe` code: taking ownership of a descriptor number
//! handed to us by the parent (systemd or our master), which the standard library can only
//! express as `OwnedFd::from_raw_fd`.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{F_GETFD, F_SETFD, FdFlag, fcntl};
use socket2::Socket;

use super::listen::{BoundListener, Protocol, adopt};

/// Environment variable that marks a worker: its index, from 1.
pub const ENV_WORKER: &str = "FERRULE_WORKER";
/// Environment variable with the listeners handed to a worker: `uwsgi:3,http:4`.
pub const ENV_FDS: &str = "FERRULE_FDS";
/// Environment variable with the descriptor a worker writes `"<index> <pid>\n"` to once its
/// app is loaded and it accepts connections.
pub const ENV_READY_FD: &str = "FERRULE_READY_FD";
/// Environment variable with the master's pid, so a worker can tell when it is orphaned.
pub const ENV_MASTER_PID: &str = "FERRULE_MASTER_PID";

/// Why inherited descriptors could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandoffError {
    /// An environment variable of the protocol is malformed.
    #[error("malformed {var}={value:?}")]
    Malformed {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// A descriptor named by the parent is not open.
    #[error("descriptor {fd} named by {var} is not open: {source}")]
    NotOpen {
        /// The descriptor.
        fd: RawFd,
        /// The variable that named it.
        var: &'static str,
        /// The system error.
        source: io::Error,
    },
}

/// What a worker process received from its master.
#[derive(Debug)]
pub struct WorkerHandoff {
    /// The worker's index, from 1.
    pub index: usize,
    /// The master's pid.
    pub master_pid: u32,
    /// The listeners, in configuration order.
    pub listeners: Vec<BoundListener>,
    ready: Option<File>,
}

impl WorkerHandoff {
    /// Reads the handoff from the environment, if this process is a worker, and removes
    /// the variables so that subprocesses of the app do not see them.
    ///
    /// Call once, early, before any other code could open descriptors.
    ///
    /// # Errors
    ///
    /// [`HandoffError`] when the variables are malformed or name closed descriptors.
    pub fn from_env() -> Result<Option<WorkerHandoff>, HandoffError> {
        let Some(index) = std::env::var_os(ENV_WORKER) else {
            return Ok(None);
        };
        let index = index.to_string_lossy().into_owned();
        let index: usize = index.parse().map_err(|_| HandoffError::Malformed {
            var: ENV_WORKER,
            value: index.clone(),
        })?;
        let fds = std::env::var(ENV_FDS).unwrap_or_default();
        let mut listeners = Vec::new();
        for item in fds.split(',').filter(|s| !s.is_empty()) {
            let malformed = || HandoffError::Malformed {
                var: ENV_FDS,
                value: fds.clone(),
            };
            let (protocol, fd) = item.split_once(':').ok_or_else(malformed)?;
            let protocol = Protocol::parse(protocol).ok_or_else(malformed)?;
            let fd: RawFd = fd.parse().map_err(|_| malformed())?;
            let socket = Socket::from(take_fd(fd, ENV_FDS)?);
            listeners.push(adopt(socket, protocol));
        }
        let ready = match std::env::var(ENV_READY_FD) {
            Ok(fd) => {
                let raw: RawFd = fd.parse().map_err(|_| HandoffError::Malformed {
                    var: ENV_READY_FD,
                    value: fd.clone(),
                })?;
                let owned = take_fd(raw, ENV_READY_FD)?;
                set_cloexec(&owned, true).map_err(|source| HandoffError::NotOpen {
                    fd: raw,
                    var: ENV_READY_FD,
                    source,
                })?;
                Some(File::from(owned))
            }
            Err(_) => None,
        };
        let master_pid = std::env::var(ENV_MASTER_PID)
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        for var in [ENV_WORKER, ENV_FDS, ENV_READY_FD, ENV_MASTER_PID] {
            // SAFETY: called at start-up while the process is single-threaded, so no other
            // thread can be reading the environment concurrently.
            unsafe { std::env::remove_var(var) };
        }
        Ok(Some(WorkerHandoff {
            index,
            master_pid,
            listeners,
            ready,
        }))
    }

    /// Tells the master that this worker has loaded its app and accepts connections.
    /// Later calls do nothing.
    pub fn notify_ready(&mut self) {
        if let Some(mut pipe) = self.ready.take() {
            let line = format!("{} {}\n", self.index, std::process::id());
            if let Err(e) = pipe.write_all(line.as_bytes()) {
                tracing::warn!(
                    "worker {}: cannot tell the master it is ready: {e}",
                    self.index
                );
            }
        }
    }
}

/// Takes the listeners that systemd passed (`LISTEN_PID`, `LISTEN_FDS`: descriptors 3, 4, …),
/// and removes the variables. Returns an empty list when there are none or they are meant
/// for another process.
///
/// # Errors
///
/// [`HandoffError`] when `LISTEN_FDS` is malformed or names closed descriptors.
pub fn systemd_listeners() -> Result<Vec<Socket>, HandoffError> {
    let Ok(count) = std::env::var("LISTEN_FDS") else {
        return Ok(Vec::new());
    };
    if let Ok(pid) = std::env::var("LISTEN_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return Ok(Vec::new());
    }
    let n: RawFd = count.parse().map_err(|_| HandoffError::Malformed {
        var: "LISTEN_FDS",
        value: count.clone(),
    })?;
    let mut sockets = Vec::new();
    for fd in 3..3 + n {
        sockets.push(Socket::from(take_fd(fd, "LISTEN_FDS")?));
    }
    for var in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] {
        // SAFETY: called at start-up while the process is single-threaded.
        unsafe { std::env::remove_var(var) };
    }
    Ok(sockets)
}

/// The value of [`ENV_FDS`] for `listeners`, after making each of them survive `exec`.
///
/// # Errors
///
/// The `fcntl` error if a descriptor's flags cannot be changed.
pub(crate) fn export_listeners(listeners: &[BoundListener]) -> io::Result<String> {
    let mut out = String::new();
    for l in listeners {
        set_cloexec(&l.socket, false)?;
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&format!("{}:{}", l.protocol.as_str(), l.socket.as_raw_fd()));
    }
    Ok(out)
}

/// Sets or clears `FD_CLOEXEC`.
pub(crate) fn set_cloexec(fd: &impl AsFd, on: bool) -> io::Result<()> {
    let flags = FdFlag::from_bits_truncate(fcntl(fd, F_GETFD)?);
    let flags = if on {
        flags | FdFlag::FD_CLOEXEC
    } else {
        flags - FdFlag::FD_CLOEXEC
    };
    fcntl(fd, F_SETFD(flags))?;
    Ok(())
}

/// Takes ownership of an inherited descriptor after checking that it is open.
fn take_fd(fd: RawFd, var: &'static str) -> Result<OwnedFd, HandoffError> {
    if fd < 3 {
        return Err(HandoffError::Malformed {
            var,
            value: fd.to_string(),
        });
    }
    // SAFETY: F_GETFD only reads the descriptor's flags; on a number that is not open it
    // fails with EBADF and touches nothing.
    let probe = unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) };
    if probe < 0 {
        return Err(HandoffError::NotOpen {
            fd,
            var,
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: the descriptor is open (checked above), it was handed to this process by its
    // parent through `var` for exactly this use, and nothing else in the process owns it:
    // the variable is read once at start-up and removed afterwards.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
