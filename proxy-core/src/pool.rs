//! Upstream selection: weighted round-robin and least-connections over a pool of servers,
//! passive failure marking (`max_fails`/`fail_timeout`), backup servers, and the retry
//! policy, with nginx's semantics (`ngx_http_upstream_round_robin.c`,
//! `ngx_http_upstream_least_conn_module.c`).
//!
//! Pure data structures: time is a `now: Instant` parameter and nothing blocks. A server
//! wraps a [`Pool`] in a `Mutex` (one short critical section per pick and per report).
//!
//! How a request uses it:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use proxy_core::pool::{Balance, Failure, Outcome, PeerConfig, Pool, RetryPolicy};
//!
//! let mut pool = Pool::new(
//!     vec![PeerConfig::new("10.0.0.1:8000"), PeerConfig::new("10.0.0.2:8000")],
//!     Balance::RoundRobin,
//! )?;
//! let policy = RetryPolicy::default();
//! let started = Instant::now();
//! let mut tried = pool.attempt();
//! let first = pool.select(&mut tried, started).expect("a live server");
//! // ... connecting to pool.addr(first) fails:
//! pool.finish(first, Outcome::Failure, Instant::now());
//! let sent = false;
//! if policy.may_retry(b"POST", Failure::Connect, sent, tried.count(), started, Instant::now()) {
//!     let second = pool.select(&mut tried, Instant::now()).expect("the other server");
//!     assert_ne!(first, second);
//!     pool.finish(second, Outcome::Success, Instant::now());
//! }
//! # Ok::<(), proxy_core::pool::PoolError>(())
//! ```
//!
//! Not here: `max_conns`, `down` toggling at run time, active health checks, hashing
//! balancers, and sharing state between worker processes (each process keeps its own
//! counts, as nginx does without a `zone`).

use std::time::{Duration, Instant};

use thiserror::Error;

/// How a server is picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    /// Smooth weighted round-robin (nginx's default).
    #[default]
    RoundRobin,
    /// Fewest active connections relative to weight, ties broken by weighted round-robin
    /// (nginx's `least_conn`).
    LeastConn,
}

/// One server of a pool, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig<A> {
    /// The server's address (any type: a socket address, a unix path, a name).
    pub addr: A,
    /// Relative weight, at least 1. Default is 1.
    pub weight: u32,
    /// Failures within [`fail_timeout`](Self::fail_timeout) that make the server
    /// unavailable for `fail_timeout`; 0 turns the accounting off. Default is 1.
    pub max_fails: u32,
    /// The window for counting failures, and how long the server then stays unavailable.
    /// Default is 10 s.
    pub fail_timeout: Duration,
    /// Used only when every primary server is unavailable or was tried. Default is false.
    pub backup: bool,
    /// Permanently unavailable (nginx's `down`). Default is false.
    pub down: bool,
}

impl<A> PeerConfig<A> {
    /// A server with nginx's defaults: weight 1, `max_fails=1`, `fail_timeout=10s`.
    pub fn new(addr: A) -> PeerConfig<A> {
        PeerConfig {
            addr,
            weight: 1,
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
            backup: false,
            down: false,
        }
    }
}

/// An invalid pool.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The pool has no primary (non-backup) server.
    #[error("an upstream pool needs at least one server that is not a backup")]
    NoPrimary,
    /// A weight of 0.
    #[error("server {index} has weight 0; weights start at 1")]
    ZeroWeight {
        /// The server's position in the list given to [`Pool::new`].
        index: usize,
    },
}

/// A server picked by [`Pool::select`]; valid for the pool that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerId(usize);

impl PeerId {
    /// The server's position in the list given to [`Pool::new`].
    pub fn index(self) -> usize {
        self.0
    }
}

/// How a request to a server ended, for [`Pool::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered (whatever the status).
    Success,
    /// A failure that counts toward `max_fails`: every [`Failure`] does (nginx counts
    /// `error`, `timeout` and `invalid_header`), an HTTP error status does not.
    Failure,
    /// The attempt ended without a verdict on the server (the client went away, for
    /// instance): only the connection count changes.
    Neutral,
}

/// The servers one request has tried (nginx's `tried` bitmap); from [`Pool::attempt`].
/// Like nginx, the first 64 servers are bits in a word (no allocation per request); only
/// a larger pool puts the rest on the heap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// Servers 0..64.
    low: u64,
    /// Servers 64.. of a larger pool.
    high: Vec<bool>,
    /// The pool's size.
    len: usize,
    backup: bool,
    count: u32,
}

impl Tried {
    fn is_tried(&self, i: usize) -> bool {
        match i.checked_sub(64) {
            None => self.low >> i & 1 == 1,
            Some(j) => self.high.get(j).copied().unwrap_or(true),
        }
    }

    fn mark(&mut self, i: usize) {
        match i.checked_sub(64) {
            None => self.low |= 1 << i,
            Some(j) => {
                if let Some(t) = self.high.get_mut(j) {
                    *t = true;
                }
            }
        }
    }

    /// How many servers were picked for this request so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether the request has moved on to the backup servers.
    pub fn on_backup(&self) -> bool {
        self.backup
    }
}

#[derive(Debug, Clone)]
struct PeerState<A> {
    cfg: PeerConfig<A>,
    current_weight: i64,
    effective_weight: i64,
    fails: u32,
    /// Time of the last failure.
    accessed: Option<Instant>,
    /// Start of the current failure window / last check after a window.
    checked: Option<Instant>,
    conns: u32,
}

/// A pool of upstream servers with its selection state.
#[derive(Debug, Clone)]
pub struct Pool<A> {
    peers: Vec<PeerState<A>>,
    balance: Balance,
    single: bool,
    /// Reused by [`pick`](Self::pick) for its candidate list.
    scratch: Vec<usize>,
}

// ===== impl Pool =====

impl<A> Pool<A> {
    /// Builds a pool. Order matters only for ties.
    ///
    /// # Errors
    ///
    /// [`PoolError::NoPrimary`] when every server is a backup (or the list is empty),
    /// [`PoolError::ZeroWeight`] for a weight of 0.
    pub fn new(peers: Vec<PeerConfig<A>>, balance: Balance) -> Result<Pool<A>, PoolError> {
        if let Some(index) = peers.iter().position(|p| p.weight == 0) {
            return Err(PoolError::ZeroWeight { index });
        }
        let primaries = peers.iter().filter(|p| !p.backup).count();
        if primaries == 0 {
            return Err(PoolError::NoPrimary);
        }
        let single = peers.len() == 1;
        Ok(Pool {
            peers: peers
                .into_iter()
                .map(|cfg| PeerState {
                    effective_weight: i64::from(cfg.weight),
                    cfg,
                    current_weight: 0,
                    fails: 0,
                    accessed: None,
                    checked: None,
                    conns: 0,
                })
                .collect(),
            balance,
            single,
            scratch: Vec::new(),
        })
    }

    /// A fresh [`Tried`] set for one request.
    pub fn attempt(&self) -> Tried {
        let len = self.peers.len();
        Tried {
            low: 0,
            high: vec![false; len.saturating_sub(64)],
            len,
            backup: false,
            count: 0,
        }
    }

    /// Number of servers (primary and backup).
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether the pool is empty (never true for a pool built by [`new`](Self::new)).
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// The address of a picked server.
    ///
    /// # Panics
    ///
    /// If `id` comes from another pool with more servers.
    pub fn addr(&self, id: PeerId) -> &A {
        &self.peers[id.0].cfg.addr
    }

    /// The configuration of a server.
    ///
    /// # Panics
    ///
    /// If `id` comes from another pool with more servers.
    pub fn config(&self, id: PeerId) -> &PeerConfig<A> {
        &self.peers[id.0].cfg
    }

    /// Active connections (picked and not yet finished) of a server.
    pub fn connections(&self, id: PeerId) -> u32 {
        self.peers.get(id.0).map_or(0, |p| p.conns)
    }

    /// Whether a server can be picked at `now`: not `down`, and not disabled by
    /// `max_fails` failures within the last `fail_timeout`. The only server of a
    /// one-server pool is never disabled by failures (nginx's `single` rule).
    pub fn is_available(&self, id: PeerId, now: Instant) -> bool {
        self.peers.get(id.0).is_some_and(|p| self.usable(p, now))
    }

    fn usable(&self, p: &PeerState<A>, now: Instant) -> bool {
        if p.cfg.down {
            return false;
        }
        if self.single {
            return true;
        }
        !(p.cfg.max_fails > 0
            && p.fails >= p.cfg.max_fails
            && p.checked
                .is_some_and(|c| now.saturating_duration_since(c) <= p.cfg.fail_timeout))
    }

    /// Picks the next server for a request, skipping those in `tried` and unavailable
    /// ones; primaries first, then (once no primary is left for this request) backups.
    /// Marks the pick in `tried` and counts a connection until [`finish`](Self::finish).
    ///
    /// Returns `None` when nothing is left: answer 502 (nginx: `no live upstreams`); also
    /// for a `tried` set made by another pool of a different size.
    pub fn select(&mut self, tried: &mut Tried, now: Instant) -> Option<PeerId> {
        if tried.len != self.peers.len() {
            return None;
        }
        if !tried.backup {
            if let Some(i) = self.pick(tried, false, now) {
                return Some(self.take(i, tried, now));
            }
            tried.backup = true;
        }
        let i = self.pick(tried, true, now)?;
        Some(self.take(i, tried, now))
    }

    fn take(&mut self, i: usize, tried: &mut Tried, now: Instant) -> PeerId {
        tried.mark(i);
        tried.count += 1;
        let p = &mut self.peers[i];
        p.conns += 1;
        if p.checked
            .is_none_or(|c| now.saturating_duration_since(c) > p.cfg.fail_timeout)
        {
            p.checked = Some(now);
        }
        PeerId(i)
    }

    /// nginx's peer choice among the candidates (backup or not) that are untried and
    /// usable.
    fn pick(&mut self, tried: &Tried, backup: bool, now: Instant) -> Option<usize> {
        // The candidate list reuses the pool's buffer: no allocation per request.
        let mut candidates = std::mem::take(&mut self.scratch);
        candidates.clear();
        candidates.extend((0..self.peers.len()).filter(|&i| {
            let p = &self.peers[i];
            p.cfg.backup == backup && !tried.is_tried(i) && self.usable(p, now)
        }));
        let picked = self.pick_among(&mut candidates);
        self.scratch = candidates;
        picked
    }

    /// [`pick`](Self::pick) once the untried, usable `candidates` are known (in index
    /// order; least-connections narrows them in place).
    fn pick_among(&mut self, candidates: &mut Vec<usize>) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        match self.balance {
            Balance::RoundRobin => {}
            Balance::LeastConn => {
                // Least conns/weight, compared as conns_a * weight_b < conns_b * weight_a.
                let load = |i: usize| {
                    (
                        u64::from(self.peers[i].conns),
                        u64::from(self.peers[i].cfg.weight),
                    )
                };
                let best = candidates
                    .iter()
                    .copied()
                    .reduce(|b, i| {
                        let ((bc, bw), (ic, iw)) = (load(b), load(i));
                        if ic * bw < bc * iw { i } else { b }
                    })
                    .expect("invariant: candidates is not empty");
                let (bc, bw) = load(best);
                candidates.retain(|&i| {
                    let (ic, iw) = load(i);
                    ic * bw == bc * iw
                });
            }
        }
        if candidates.len() == 1 {
            // nginx skips the weight update when least_conn finds one clear winner.
            if self.balance == Balance::LeastConn {
                return Some(candidates[0]);
            }
        }
        // Smooth weighted round-robin.
        let mut total = 0i64;
        let mut best: Option<(usize, i64)> = None;
        for &i in candidates.iter() {
            let p = &mut self.peers[i];
            p.current_weight += p.effective_weight;
            total += p.effective_weight;
            if p.effective_weight < i64::from(p.cfg.weight) {
                p.effective_weight += 1;
            }
            if best.is_none_or(|(_, w)| p.current_weight > w) {
                best = Some((i, p.current_weight));
            }
        }
        let (best, _) = best?;
        self.peers[best].current_weight -= total;
        Some(best)
    }

    /// Reports how a request to `id` ended and releases its connection.
    ///
    /// A failure increments the server's failure count, restarts its window and lowers
    /// its effective weight by `weight / max_fails` (it climbs back by 1 per pick); after
    /// `max_fails` failures the server is skipped until `fail_timeout` has passed since
    /// the last failure. A success clears the count only once the server was picked again
    /// after a full `fail_timeout` without failures, exactly as nginx does (so successes
    /// in between do not hide a flapping server). Unknown ids are ignored.
    pub fn finish(&mut self, id: PeerId, outcome: Outcome, now: Instant) {
        let single = self.single;
        let Some(p) = self.peers.get_mut(id.0) else {
            return;
        };
        p.conns = p.conns.saturating_sub(1);
        if single {
            return;
        }
        match outcome {
            Outcome::Failure => {
                p.fails = p.fails.saturating_add(1);
                p.accessed = Some(now);
                p.checked = Some(now);
                if let Some(drop) = p.cfg.weight.checked_div(p.cfg.max_fails) {
                    p.effective_weight -= i64::from(drop);
                }
                if p.effective_weight < 0 {
                    p.effective_weight = 0;
                }
            }
            Outcome::Success => {
                if let (Some(a), Some(c)) = (p.accessed, p.checked) {
                    if a < c {
                        p.fails = 0;
                    }
                }
            }
            Outcome::Neutral => {}
        }
    }

    /// The current failure count of a server.
    pub fn fails(&self, id: PeerId) -> u32 {
        self.peers.get(id.0).map_or(0, |p| p.fails)
    }
}

/// Why an attempt at an upstream failed, for [`RetryPolicy::may_retry`] and failure
/// accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be established (refused, unreachable, no such socket).
    Connect,
    /// A connect, send or read timeout (answer 504 when no retry follows).
    Timeout,
    /// An I/O error while sending the request or reading the response head.
    Io,
    /// The response head was invalid ([`UpstreamHeadError`](crate::upstream_head::UpstreamHeadError)).
    InvalidHead,
}

impl Failure {
    /// The status for the client when no retry follows: 504 for a timeout, 502 otherwise.
    pub fn status(self) -> u16 {
        match self {
            Failure::Timeout => 504,
            _ => 502,
        }
    }
}

/// Whether a method is idempotent (RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT,
/// DELETE). Case-sensitive, as methods are.
pub fn is_idempotent(method: &[u8]) -> bool {
    matches!(
        method,
        b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE"
    )
}

/// When to retry a request on the next server (nginx's `*_next_upstream`,
/// `*_next_upstream_tries`, `*_next_upstream_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    tries: u32,
    timeout: Option<Duration>,
    non_idempotent: bool,
    invalid_head: bool,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy::new()
    }
}

impl RetryPolicy {
    /// nginx's defaults: `next_upstream error timeout`, unlimited tries (bounded by the
    /// pool size through [`Tried`]), no time limit, no retry of a non-idempotent request
    /// once sent.
    pub fn new() -> RetryPolicy {
        RetryPolicy {
            tries: 0,
            timeout: None,
            non_idempotent: false,
            invalid_head: false,
        }
    }

    /// The most attempts per request, the first included; 0 means no limit beyond the
    /// number of servers. Default is 0.
    pub fn tries(&mut self, tries: u32) -> &mut Self {
        self.tries = tries;
        self
    }

    /// No new attempt once this much time has passed since the first one; `None` means
    /// no limit. Default is `None`.
    pub fn timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.timeout = timeout;
        self
    }

    /// Retry non-idempotent requests (POST, PATCH, …) even after they were sent
    /// (`non_idempotent`). Default is false.
    pub fn non_idempotent(&mut self, retry: bool) -> &mut Self {
        self.non_idempotent = retry;
        self
    }

    /// Retry after an invalid response head (`invalid_header`). Default is false.
    pub fn invalid_head(&mut self, retry: bool) -> &mut Self {
        self.invalid_head = retry;
        self
    }

    /// Whether to try another server after `failure`.
    ///
    /// `request_sent` is whether any byte of the request reached the upstream's socket;
    /// `attempts` is how many servers were tried ([`Tried::count`]); `started` is when the
    /// first attempt began. Never call this once any part of the response went to the
    /// client: such a request cannot be retried.
    ///
    /// Retries when: the failure is a connect error, timeout or I/O error (or an invalid
    /// head when enabled); and nothing was sent, or the method is idempotent, or
    /// non-idempotent retries are enabled; and the try and time limits allow it.
    pub fn may_retry(
        &self,
        method: &[u8],
        failure: Failure,
        request_sent: bool,
        attempts: u32,
        started: Instant,
        now: Instant,
    ) -> bool {
        let kind_ok = match failure {
            Failure::Connect | Failure::Timeout | Failure::Io => true,
            Failure::InvalidHead => self.invalid_head,
        };
        let method_ok = !request_sent || is_idempotent(method) || self.non_idempotent;
        let tries_ok = self.tries == 0 || attempts < self.tries;
        let time_ok = self
            .timeout
            .is_none_or(|t| now.saturating_duration_since(started) < t);
        kind_ok && method_ok && tries_ok && time_ok
    }
}
