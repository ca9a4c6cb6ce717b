//! Worker-side watchdogs: harakiri (a request that runs too long kills its worker, which the
//! master replaces) and orphan detection (a worker exits when its master is gone).
//!
//! The watchdog is a plain thread that holds no Python state, so it fires even when the app
//! holds the GIL in a loop. A request costs two atomic stores.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, getpid, getppid};

/// How often the watchdog looks, at most.
const PERIOD: Duration = Duration::from_millis(250);

/// Per-slot request start times, shared with the watchdog thread.
#[derive(Debug)]
struct Shared {
    epoch: Instant,
    /// Milliseconds since `epoch` (+1, so 0 means idle) at which each slot's request began.
    started: Vec<AtomicU64>,
}

/// Handle to the harakiri watchdog of one worker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Harakiri {
    shared: Arc<Shared>,
}

/// Marks one request as running on a slot; the slot is idle again when the guard drops.
#[derive(Debug)]
pub struct RequestGuard<'a> {
    slot: &'a AtomicU64,
}

impl Drop for RequestGuard<'_> {
    fn drop(&mut self) {
        self.slot.store(0, Ordering::Relaxed);
    }
}

impl Harakiri {
    /// Starts the watchdog thread for `slots` concurrent requests (the worker's thread
    /// count; threads past it share slots). A request running longer than `limit` kills this process with SIGKILL after
    /// a log line naming the worker and the time; the master logs the death and respawns.
    ///
    /// # Errors
    ///
    /// The I/O error if the thread cannot be started.
    pub fn start(limit: Duration, slots: usize) -> std::io::Result<Harakiri> {
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            started: (0..slots.max(1)).map(|_| AtomicU64::new(0)).collect(),
        });
        let watched = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("ferrule-harakiri".into())
            .spawn(move || {
                let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
                loop {
                    std::thread::sleep(PERIOD.min(limit / 4).max(Duration::from_millis(10)));
                    let now = millis(watched.epoch);
                    for (slot, started) in watched.started.iter().enumerate() {
                        let began = started.load(Ordering::Relaxed);
                        if began != 0 && now.saturating_sub(began - 1) > limit_ms {
                            tracing::error!(
                                "HARAKIRI: worker pid {}: a request on thread slot {slot} ran for more than {}s; killing the worker",
                                std::process::id(),
                                limit.as_secs_f64()
                            );
                            let _ = kill(getpid(), Signal::SIGKILL);
                        }
                    }
                }
            })?;
        Ok(Harakiri { shared })
    }

    /// Marks the start of a request on `slot` (0-based, below the slot count).
    pub fn begin(&self, slot: usize) -> RequestGuard<'_> {
        let slot = &self.shared.started[slot % self.shared.started.len()];
        slot.store(millis(self.shared.epoch) + 1, Ordering::Relaxed);
        RequestGuard { slot }
    }

    /// Marks the start of a request on the calling thread's slot (each thread that runs
    /// requests gets its own slot the first time it calls this).
    pub fn begin_current(&self) -> RequestGuard<'_> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static SLOT: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
        }
        let slot = SLOT.with(|s| match s.get() {
            Some(slot) => slot,
            None => {
                let slot = NEXT.fetch_add(1, Ordering::Relaxed);
                s.set(Some(slot));
                slot
            }
        });
        self.begin(slot)
    }
}

fn millis(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
}

/// Makes this worker die with its master: asks the kernel for SIGKILL when the parent
/// exits (`PR_SET_PDEATHSIG`), then checks that the master is still the parent (it may
/// have died before the request).
///
/// # Errors
///
/// The system error from `prctl`.
pub fn die_with_master(master_pid: u32) -> nix::Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    if master_pid != 0 && getppid() != Pid::from_raw(master_pid as i32) {
        tracing::error!("master {master_pid} is gone; worker exiting");
        std::process::exit(1);
    }
    Ok(())
}
