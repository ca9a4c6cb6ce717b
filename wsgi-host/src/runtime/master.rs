//! The master process: starts `processes` workers, respawns the ones that die, reloads them
//! gracefully on SIGHUP, stops them gracefully on SIGTERM and at once on SIGINT/SIGQUIT.
//!
//! The master never forks. It starts each worker by executing the program again
//! ([`std::process::Command`]) with the listening sockets left open across `exec` (see
//! [`handoff`](super::handoff)), so a worker never inherits threads, a tokio runtime or an
//! interpreter. The master itself stays single-threaded, loads no Python and binds the
//! sockets once, so they survive reloads and no connection is refused while workers change.
//!
//! Signals (uWSGI's meanings where they are sane; uWSGI reloads on SIGTERM unless
//! `die-on-term`, ferrule always stops):
//!
//! | signal | master | worker |
//! |---|---|---|
//! | SIGHUP | graceful reload: new workers first, then old ones retire | — |
//! | SIGTERM | graceful stop: in-flight requests finish (bounded by `graceful_timeout`) | same |
//! | SIGINT, SIGQUIT | immediate stop | exit at once |
//! | SIGCHLD | reap; respawn a worker that died (within a second) | — |

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::fcntl::{OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;

use super::handoff::{
    ENV_FDS, ENV_MASTER_PID, ENV_READY_FD, ENV_WORKER, export_listeners, set_cloexec,
};
use super::listen::BoundListener;

/// Exit status a worker uses when its app cannot be loaded. The master then gives up (at
/// start-up) or cancels the reload, instead of respawning a worker that can only fail again.
pub const EXIT_LOAD_FAILED: i32 = 22;

/// How long workers get to exit after SIGINT before they are killed.
const IMMEDIATE_TIMEOUT: Duration = Duration::from_secs(3);
/// Master loop tick: the longest a signal or a ready worker waits to be seen.
const TICK: Duration = Duration::from_millis(50);
/// A worker that dies sooner than this after it was spawned counts towards a crash loop.
const QUICK_DEATH: Duration = Duration::from_secs(1);

/// Settings of the master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterConfig {
    /// Number of workers (`processes`). Default 1.
    pub processes: usize,
    /// How long SIGTERM (stop) and SIGHUP (retiring old workers) wait for in-flight
    /// requests before workers are killed. Default 30 s.
    pub graceful_timeout: Duration,
    /// Write the master's pid here (`pidfile`).
    pub pidfile: Option<PathBuf>,
    /// Remove created unix sockets and the pidfile on exit (`vacuum`).
    pub vacuum: bool,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            processes: 1,
            graceful_timeout: Duration::from_secs(30),
            pidfile: None,
            vacuum: false,
        }
    }
}

/// Why the master stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MasterError {
    /// Setting up signals, the pipe, the pidfile or the listeners failed.
    #[error("master set-up failed: {0}")]
    Setup(#[source] io::Error),
    /// A worker could not be started at all (`exec` failed).
    #[error("cannot start worker {index}: {source}")]
    Spawn {
        /// The worker's index.
        index: usize,
        /// The error from `exec`.
        source: io::Error,
    },
    /// The first workers could not load the app; nothing would ever serve.
    #[error(
        "the app could not be loaded (worker {index} exited with status {EXIT_LOAD_FAILED}); see its error above"
    )]
    AppLoadFailed {
        /// The worker that reported it.
        index: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Running,
    /// Sent SIGTERM (reload or stop); killed at the deadline.
    Leaving {
        deadline: Instant,
    },
}

#[derive(Debug)]
struct Slot {
    index: usize,
    generation: u64,
    child: Child,
    spawned: Instant,
    ready: bool,
    state: SlotState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Graceful,
    Immediate,
}

/// Runs the master until it is told to stop. `command` builds the command line of a worker
/// (normally the program's own path and arguments); the master adds the handoff variables.
///
/// Returns when every worker has exited, after removing the pidfile and created sockets
/// when `vacuum` is on.
///
/// # Errors
///
/// [`MasterError`]: set-up failures, a worker that cannot be executed, or an app that
/// cannot be loaded by the first workers.
pub fn run_master(
    config: &MasterConfig,
    listeners: &[BoundListener],
    command: impl FnMut() -> Command,
) -> Result<(), MasterError> {
    let mut master = Master::new(config, listeners, command)?;
    let result = master.run();
    master.cleanup(listeners);
    result
}

struct Master<'c, F> {
    config: &'c MasterConfig,
    command: F,
    fds: String,
    ready_read: File,
    ready_write: OwnedFd,
    signals: Signals,
    slots: Vec<Slot>,
    generation: u64,
    /// The generation of the last worker that became ready: proof that the app loads.
    served_generation: Option<u64>,
    stopping: Option<(Stop, Instant)>,
    /// Quick deaths in a row, per worker index, for crash-loop backoff.
    quick_deaths: HashMap<usize, u32>,
    /// Workers waiting to be respawned, with the earliest time.
    respawn_at: Vec<(usize, Instant)>,
    partial_line: Vec<u8>,
    /// Set when the master must stop with an error once the workers are gone.
    fatal: Option<MasterError>,
}

impl<'c, F: FnMut() -> Command> Master<'c, F> {
    fn new(
        config: &'c MasterConfig,
        listeners: &[BoundListener],
        command: F,
    ) -> Result<Master<'c, F>, MasterError> {
        let fds = export_listeners(listeners).map_err(MasterError::Setup)?;
        let (read, write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| MasterError::Setup(e.into()))?;
        set_cloexec(&write, false).map_err(MasterError::Setup)?;
        let flags = OFlag::from_bits_truncate(
            fcntl(&read, nix::fcntl::F_GETFL).map_err(|e| MasterError::Setup(e.into()))?,
        );
        fcntl(&read, nix::fcntl::F_SETFL(flags | OFlag::O_NONBLOCK))
            .map_err(|e| MasterError::Setup(e.into()))?;
        let signals = Signals::new([SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP])
            .map_err(MasterError::Setup)?;
        if let Some(pidfile) = &config.pidfile {
            std::fs::write(pidfile, format!("{}\n", std::process::id())).map_err(|e| {
                MasterError::Setup(io::Error::new(
                    e.kind(),
                    format!("cannot write pidfile {}: {e}", pidfile.display()),
                ))
            })?;
        }
        Ok(Master {
            config,
            command,
            fds,
            ready_read: File::from(read),
            ready_write: write,
            signals,
            slots: Vec::new(),
            generation: 0,
            served_generation: None,
            stopping: None,
            quick_deaths: HashMap::new(),
            respawn_at: Vec::new(),
            partial_line: Vec::new(),
            fatal: None,
        })
    }

    fn run(&mut self) -> Result<(), MasterError> {
        tracing::info!(
            "master {} starting {} worker(s)",
            std::process::id(),
            self.config.processes
        );
        for index in 1..=self.config.processes {
            self.spawn(index)?;
        }
        loop {
            self.wait_tick();
            let pending: Vec<i32> = self.signals.pending().collect();
            for signal in pending {
                self.on_signal(signal);
            }
            self.read_ready();
            self.reap()?;
            self.respawn_due()?;
            self.enforce_deadlines();
            if self.stopping.is_some() && self.slots.is_empty() {
                tracing::info!("master {}: all workers stopped", std::process::id());
                return self.fatal.take().map_or(Ok(()), Err);
            }
        }
    }

    fn wait_tick(&self) {
        let mut fds = [PollFd::new(self.ready_read.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(TICK).unwrap_or(PollTimeout::NONE);
        let _ = poll(&mut fds, timeout);
    }

    fn spawn(&mut self, index: usize) -> Result<(), MasterError> {
        let mut cmd = (self.command)();
        cmd.env(ENV_WORKER, index.to_string())
            .env(ENV_FDS, &self.fds)
            .env(ENV_READY_FD, self.ready_write.as_raw_fd().to_string())
            .env(ENV_MASTER_PID, std::process::id().to_string());
        let child = cmd
            .spawn()
            .map_err(|source| MasterError::Spawn { index, source })?;
        tracing::info!(
            "spawned worker {index} (pid {}, generation {})",
            child.id(),
            self.generation
        );
        self.slots.push(Slot {
            index,
            generation: self.generation,
            child,
            spawned: Instant::now(),
            ready: false,
            state: SlotState::Running,
        });
        Ok(())
    }

    fn on_signal(&mut self, signal: i32) {
        match signal {
            SIGHUP if self.stopping.is_none() => self.reload(),
            SIGTERM if self.stopping.is_none() => {
                tracing::info!("SIGTERM: stopping gracefully (in-flight requests finish)");
                self.stop(Stop::Graceful);
            }
            SIGINT | SIGQUIT => {
                if matches!(self.stopping, Some((Stop::Immediate, _))) {
                    tracing::warn!("second stop signal: killing workers");
                    for slot in &mut self.slots {
                        let _ = slot.child.kill();
                    }
                } else {
                    tracing::info!("stop signal {signal}: stopping now");
                    self.stop(Stop::Immediate);
                }
            }
            _ => {}
        }
    }

    fn reload(&mut self) {
        if self
            .slots
            .iter()
            .any(|s| s.generation == self.generation && !s.ready)
        {
            tracing::warn!("SIGHUP: a reload is already in progress; ignored");
            return;
        }
        self.generation += 1;
        tracing::info!(
            "SIGHUP: graceful reload (generation {}): new workers start, old ones retire when they are ready",
            self.generation
        );
        self.respawn_at.clear();
        for index in 1..=self.config.processes {
            if let Err(e) = self.spawn(index) {
                tracing::error!("reload: {e}; keeping the running workers");
                self.cancel_reload();
                return;
            }
        }
    }

    /// Kills the workers of a reload that failed and goes back to the previous generation.
    fn cancel_reload(&mut self) {
        let failed = self.generation;
        for slot in self.slots.iter_mut().filter(|s| s.generation == failed) {
            let _ = slot.child.kill();
            slot.state = SlotState::Leaving {
                deadline: Instant::now(),
            };
        }
        self.generation = self
            .slots
            .iter()
            .filter(|s| s.generation != failed)
            .map(|s| s.generation)
            .max()
            .unwrap_or(failed);
    }

    fn stop(&mut self, how: Stop) {
        let (signal, timeout) = match how {
            Stop::Graceful => (Signal::SIGTERM, self.config.graceful_timeout),
            Stop::Immediate => (Signal::SIGINT, IMMEDIATE_TIMEOUT),
        };
        let deadline = Instant::now() + timeout;
        self.stopping = Some((how, deadline));
        self.respawn_at.clear();
        for slot in &mut self.slots {
            signal_child(&slot.child, signal);
            slot.state = SlotState::Leaving { deadline };
        }
    }

    fn read_ready(&mut self) {
        let mut buf = [0u8; 512];
        loop {
            match self.ready_read.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.partial_line.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("reading worker readiness: {e}");
                    break;
                }
            }
        }
        while let Some(end) = self.partial_line.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial_line.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            let pid = text
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid {
                self.on_ready(pid);
            }
        }
    }

    fn on_ready(&mut self, pid: u32) {
        let Some(slot) = self.slots.iter_mut().find(|s| s.child.id() == pid) else {
            return;
        };
        slot.ready = true;
        let (index, generation) = (slot.index, slot.generation);
        self.quick_deaths.remove(&index);
        self.served_generation = Some(generation);
        tracing::info!("worker {index} (pid {pid}) is ready");
        if self.stopping.is_some() {
            return;
        }
        // A new worker is serving: retire the older worker with the same index.
        let deadline = Instant::now() + self.config.graceful_timeout;
        for old in self.slots.iter_mut().filter(|s| {
            s.index == index && s.generation < generation && s.state == SlotState::Running
        }) {
            tracing::info!("retiring worker {} (pid {})", old.index, old.child.id());
            signal_child(&old.child, Signal::SIGTERM);
            old.state = SlotState::Leaving { deadline };
        }
    }

    fn reap(&mut self) -> Result<(), MasterError> {
        let mut i = 0;
        while i < self.slots.len() {
            let status = match self.slots[i].child.try_wait() {
                Ok(Some(status)) => status,
                Ok(None) => {
                    i += 1;
                    continue;
                }
                Err(e) => {
                    tracing::warn!("waiting for worker {}: {e}", self.slots[i].index);
                    i += 1;
                    continue;
                }
            };
            let slot = self.slots.swap_remove(i);
            self.on_exit(slot, status)?;
        }
        Ok(())
    }

    fn on_exit(&mut self, slot: Slot, status: ExitStatus) -> Result<(), MasterError> {
        let pid = slot.child.id();
        let leaving = matches!(slot.state, SlotState::Leaving { .. });
        if leaving {
            tracing::info!(
                "worker {} (pid {pid}) exited: {}",
                slot.index,
                describe(status)
            );
            return Ok(());
        }
        tracing::warn!(
            "worker {} (pid {pid}) died: {}",
            slot.index,
            describe(status)
        );
        let load_failed = !slot.ready && status.code() == Some(EXIT_LOAD_FAILED);
        if load_failed {
            if self.served_generation.is_none() {
                if self.fatal.is_none() {
                    self.fatal = Some(MasterError::AppLoadFailed { index: slot.index });
                    self.stop(Stop::Immediate);
                }
                return Ok(());
            }
            if slot.generation == self.generation {
                tracing::error!(
                    "reload failed: the new app does not load; keeping the running workers"
                );
                self.cancel_reload();
                return Ok(());
            }
        }
        if slot.generation != self.generation || self.stopping.is_some() {
            return Ok(());
        }
        // Respawn, backing off when the worker keeps dying right after start.
        let quick = slot.spawned.elapsed() < QUICK_DEATH;
        let deaths = self.quick_deaths.entry(slot.index).or_default();
        *deaths = if quick { *deaths + 1 } else { 0 };
        let delay = if *deaths >= 3 {
            Duration::from_secs(1)
        } else {
            Duration::ZERO
        };
        self.respawn_at.push((slot.index, Instant::now() + delay));
        Ok(())
    }

    fn respawn_due(&mut self) -> Result<(), MasterError> {
        let now = Instant::now();
        let due: Vec<usize> = self
            .respawn_at
            .iter()
            .filter(|(_, at)| *at <= now)
            .map(|(i, _)| *i)
            .collect();
        self.respawn_at.retain(|(_, at)| *at > now);
        for index in due {
            self.spawn(index)?;
        }
        Ok(())
    }

    fn enforce_deadlines(&mut self) {
        let now = Instant::now();
        for slot in &mut self.slots {
            if let SlotState::Leaving { deadline } = slot.state
                && now >= deadline
            {
                tracing::warn!(
                    "worker {} (pid {}) did not exit in time: killing it",
                    slot.index,
                    slot.child.id()
                );
                let _ = slot.child.kill();
                // Do not kill again on the next tick.
                slot.state = SlotState::Leaving {
                    deadline: now + Duration::from_secs(3600),
                };
            }
        }
    }

    fn cleanup(&mut self, listeners: &[BoundListener]) {
        if !self.config.vacuum {
            return;
        }
        for path in listeners.iter().filter_map(|l| l.created_path.as_ref()) {
            match std::fs::remove_file(path) {
                Ok(()) => tracing::info!("vacuum: removed {}", path.display()),
                Err(e) => tracing::warn!("vacuum: cannot remove {}: {e}", path.display()),
            }
        }
        if let Some(pidfile) = &self.config.pidfile {
            let _ = std::fs::remove_file(pidfile);
        }
    }
}

fn signal_child(child: &Child, signal: Signal) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(s) => format!("killed by {s}"),
            Err(_) => format!("killed by signal {sig}"),
        },
        _ => status.to_string(),
    }
}
