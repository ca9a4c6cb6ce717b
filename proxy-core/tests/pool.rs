//! Upstream pools: smooth weighted round-robin, least_conn, max_fails/fail_timeout,
//! backups, and the retry policy, against nginx's semantics.

use std::time::{Duration, Instant};

use proxy_core::pool::{
    Balance, Failure, Outcome, PeerConfig, PeerId, Pool, PoolError, RetryPolicy, is_idempotent,
};

fn peer(name: &'static str, weight: u32) -> PeerConfig<&'static str> {
    let mut p = PeerConfig::new(name);
    p.weight = weight;
    p
}

/// Picks `n` times, one request each, all successful and finished at once.
fn sequence(pool: &mut Pool<&'static str>, n: usize, now: Instant) -> String {
    (0..n)
        .map(|_| {
            let mut tried = pool.attempt();
            let id = pool.select(&mut tried, now).expect("a server");
            pool.finish(id, Outcome::Success, now);
            pool.addr(id).to_string()
        })
        .collect::<Vec<_>>()
        .join("")
}

#[test]
fn smooth_weighted_round_robin_matches_nginx() {
    let now = Instant::now();
    // nginx's own example (commit "Upstream: smooth weighted round-robin balancing"):
    // weights { 5, 1, 1 } give a a b a c a a.
    let mut pool = Pool::new(
        vec![peer("a", 5), peer("b", 1), peer("c", 1)],
        Balance::RoundRobin,
    )
    .unwrap();
    assert_eq!(sequence(&mut pool, 7, now), "aabacaa");
    assert_eq!(sequence(&mut pool, 7, now), "aabacaa");
    let mut even = Pool::new(
        vec![peer("a", 1), peer("b", 1), peer("c", 1)],
        Balance::RoundRobin,
    )
    .unwrap();
    assert_eq!(sequence(&mut even, 6, now), "abcabc");
    let mut two = Pool::new(vec![peer("a", 2), peer("b", 1)], Balance::RoundRobin).unwrap();
    assert_eq!(sequence(&mut two, 6, now), "abaaba");
}

#[test]
fn a_failed_server_is_skipped_for_fail_timeout() {
    let t0 = Instant::now();
    let mut pool = Pool::new(vec![peer("a", 1), peer("b", 1)], Balance::RoundRobin).unwrap();
    let mut tried = pool.attempt();
    let a = pool.select(&mut tried, t0).unwrap();
    assert_eq!(*pool.addr(a), "a");
    pool.finish(a, Outcome::Failure, t0);
    assert_eq!(pool.fails(a), 1);
    assert!(!pool.is_available(a, t0 + Duration::from_secs(10)));
    // The same request moves on to b.
    let b = pool.select(&mut tried, t0).unwrap();
    assert_eq!(*pool.addr(b), "b");
    pool.finish(b, Outcome::Success, t0);
    assert_eq!(pool.select(&mut tried, t0), None, "both tried");
    // Other requests only get b during the window.
    assert_eq!(sequence(&mut pool, 4, t0 + Duration::from_secs(5)), "bbbb");
    // After fail_timeout a is tried again, and a success then clears its count.
    let later = t0 + Duration::from_secs(11);
    assert!(pool.is_available(a, later));
    let s = sequence(&mut pool, 4, later);
    assert!(s.contains('a'), "{s}");
    assert_eq!(pool.fails(a), 0);
}

#[test]
fn max_fails_counts_within_the_window_and_successes_in_it_do_not_reset() {
    let t0 = Instant::now();
    let mut cfg = peer("a", 1);
    cfg.max_fails = 3;
    cfg.fail_timeout = Duration::from_secs(30);
    let mut pool = Pool::new(vec![cfg, peer("b", 1)], Balance::RoundRobin).unwrap();
    let fail_a = |pool: &mut Pool<&'static str>, at: Instant| {
        let mut tried = pool.attempt();
        loop {
            let id = pool.select(&mut tried, at).expect("a server");
            if *pool.addr(id) == "a" {
                pool.finish(id, Outcome::Failure, at);
                return id;
            }
            pool.finish(id, Outcome::Neutral, at);
        }
    };
    let a = fail_a(&mut pool, t0);
    let a2 = fail_a(&mut pool, t0 + Duration::from_secs(1));
    assert_eq!(a, a2);
    // A success inside the window does not clear the count (nginx: accessed >= checked).
    let mut tried = pool.attempt();
    let mut id = pool
        .select(&mut tried, t0 + Duration::from_secs(2))
        .unwrap();
    if *pool.addr(id) != "a" {
        pool.finish(id, Outcome::Success, t0 + Duration::from_secs(2));
        id = pool
            .select(&mut tried, t0 + Duration::from_secs(2))
            .unwrap();
    }
    assert_eq!(*pool.addr(id), "a");
    pool.finish(id, Outcome::Success, t0 + Duration::from_secs(2));
    assert_eq!(pool.fails(a), 2);
    assert!(pool.is_available(a, t0 + Duration::from_secs(3)));
    fail_a(&mut pool, t0 + Duration::from_secs(3));
    assert_eq!(pool.fails(a), 3);
    assert!(!pool.is_available(a, t0 + Duration::from_secs(33)));
    assert!(pool.is_available(a, t0 + Duration::from_secs(34)));
}

#[test]
fn the_only_server_is_never_disabled() {
    let t0 = Instant::now();
    let mut pool = Pool::new(vec![peer("only", 1)], Balance::RoundRobin).unwrap();
    for _ in 0..5 {
        let mut tried = pool.attempt();
        let id = pool.select(&mut tried, t0).unwrap();
        pool.finish(id, Outcome::Failure, t0);
        assert!(pool.is_available(id, t0));
    }
    let mut down = peer("only", 1);
    down.down = true;
    let mut pool = Pool::new(
        vec![down, {
            let mut b = peer("backup", 1);
            b.backup = true;
            b
        }],
        Balance::RoundRobin,
    )
    .unwrap();
    assert_eq!(sequence(&mut pool, 2, t0), "backupbackup");
}

#[test]
fn backups_only_when_primaries_are_out() {
    let t0 = Instant::now();
    let mut b = peer("z", 1);
    b.backup = true;
    let mut pool = Pool::new(vec![peer("a", 1), b, peer("c", 1)], Balance::RoundRobin).unwrap();
    assert_eq!(sequence(&mut pool, 6, t0), "acacac");
    // One request walks a, c (both fail), then the backup, then runs out.
    let mut tried = pool.attempt();
    let mut order = Vec::new();
    while let Some(id) = pool.select(&mut tried, t0) {
        order.push(*pool.addr(id));
        if order.len() == 2 {
            assert!(!tried.on_backup());
        }
        let outcome = if *pool.addr(id) == "z" {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        pool.finish(id, outcome, t0);
    }
    assert_eq!(order.len(), 3);
    assert_eq!(order[2], "z");
    assert!(tried.on_backup());
    assert_eq!(tried.count(), 3);
    // Both primaries are now disabled: new requests go to the backup.
    assert_eq!(sequence(&mut pool, 3, t0 + Duration::from_secs(1)), "zzz");
    // Primaries come back after fail_timeout, and the backup is idle again.
    // (The exact order depends on the weights the failures lowered.)
    let s = sequence(&mut pool, 4, t0 + Duration::from_secs(11));
    assert!(
        s.contains('a') && s.contains('c') && !s.contains('z'),
        "{s}"
    );
}

#[test]
fn no_live_upstreams_is_none() {
    let t0 = Instant::now();
    let mut pool = Pool::new(vec![peer("a", 1), peer("b", 1)], Balance::RoundRobin).unwrap();
    for _ in 0..2 {
        let mut tried = pool.attempt();
        let id = pool.select(&mut tried, t0).unwrap();
        pool.finish(id, Outcome::Failure, t0);
    }
    let mut tried = pool.attempt();
    assert_eq!(pool.select(&mut tried, t0 + Duration::from_secs(1)), None);
    // A Tried from a differently sized pool is refused, not a panic.
    let other = Pool::new(vec![peer("x", 1)], Balance::RoundRobin).unwrap();
    let mut foreign = other.attempt();
    assert_eq!(
        pool.select(&mut foreign, t0 + Duration::from_secs(20)),
        None
    );
}

/// One request retried across a pool larger than the 64 servers kept in a word: every
/// server is tried exactly once, then nothing is left.
#[test]
fn a_request_tries_each_of_many_servers_once() {
    const NAMES: [&str; 70] = {
        let mut names = [""; 70];
        let all = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&*+-.^_|~<>";
        let mut i = 0;
        while i < 70 {
            names[i] = all.split_at(i).1.split_at(1).0;
            i += 1;
        }
        names
    };
    let t0 = Instant::now();
    for balance in [Balance::RoundRobin, Balance::LeastConn] {
        let mut pool = Pool::new(NAMES.iter().map(|n| peer(n, 1)).collect(), balance).unwrap();
        let mut tried = pool.attempt();
        let mut seen = std::collections::HashSet::new();
        while let Some(id) = pool.select(&mut tried, t0) {
            assert!(
                seen.insert(*pool.addr(id)),
                "{} picked twice",
                pool.addr(id)
            );
            pool.finish(id, Outcome::Neutral, t0);
        }
        assert_eq!(seen.len(), 70);
        assert_eq!(tried.count(), 70);
    }
}

#[test]
fn least_conn_prefers_idle_servers_relative_to_weight() {
    let t0 = Instant::now();
    let mut pool = Pool::new(
        vec![peer("a", 1), peer("b", 1), peer("c", 2)],
        Balance::LeastConn,
    )
    .unwrap();
    // Hold connections open: each pick goes to the least loaded (per weight).
    let mut held = Vec::new();
    let mut picks = String::new();
    for _ in 0..8 {
        let mut tried = pool.attempt();
        let id = pool.select(&mut tried, t0).unwrap();
        picks.push_str(pool.addr(id));
        held.push(id);
    }
    let count = |s: &str, c: char| s.chars().filter(|&x| x == c).count();
    assert_eq!(
        (count(&picks, 'a'), count(&picks, 'b'), count(&picks, 'c')),
        (2, 2, 4),
        "{picks}"
    );
    // Release all of c's: the next picks go to c until it catches up.
    let cs: Vec<PeerId> = held
        .iter()
        .copied()
        .filter(|id| *pool.addr(*id) == "c")
        .collect();
    for id in cs {
        pool.finish(id, Outcome::Success, t0);
    }
    let c = held
        .iter()
        .copied()
        .find(|id| *pool.addr(*id) == "c")
        .unwrap();
    assert_eq!(pool.connections(c), 0);
    let mut tried = pool.attempt();
    let next = pool.select(&mut tried, t0).unwrap();
    assert_eq!(*pool.addr(next), "c");
    // Equal load: weighted round-robin breaks the tie.
    let mut even = Pool::new(vec![peer("a", 1), peer("b", 1)], Balance::LeastConn).unwrap();
    assert_eq!(sequence(&mut even, 4, t0), "abab");
}

#[test]
fn failures_lower_the_effective_weight_then_it_recovers() {
    let t0 = Instant::now();
    let mut heavy = peer("a", 4);
    heavy.max_fails = 4;
    let mut pool = Pool::new(vec![heavy, peer("b", 4)], Balance::RoundRobin).unwrap();
    // One failure on a: effective weight 4 - 4/4 = 3; it climbs back by one per pick.
    let mut tried = pool.attempt();
    let id = pool.select(&mut tried, t0).unwrap();
    assert_eq!(*pool.addr(id), "a");
    pool.finish(id, Outcome::Failure, t0);
    let s = sequence(&mut pool, 8, t0);
    assert!(s.matches('b').count() >= 4, "{s}");
    let s = sequence(&mut pool, 8, t0);
    assert_eq!(s.matches('a').count(), 4, "weights back to equal: {s}");
}

#[test]
fn pool_errors() {
    assert_eq!(
        Pool::<&str>::new(vec![], Balance::RoundRobin).unwrap_err(),
        PoolError::NoPrimary
    );
    let mut b = peer("b", 1);
    b.backup = true;
    assert_eq!(
        Pool::new(vec![b], Balance::RoundRobin).unwrap_err(),
        PoolError::NoPrimary
    );
    assert_eq!(
        Pool::new(vec![peer("a", 1), peer("z", 0)], Balance::LeastConn).unwrap_err(),
        PoolError::ZeroWeight { index: 1 }
    );
    let cfg = PeerConfig::new("x");
    assert_eq!(
        (cfg.weight, cfg.max_fails, cfg.fail_timeout),
        (1, 1, Duration::from_secs(10))
    );
}

#[test]
fn retry_policy() {
    let t0 = Instant::now();
    let p = RetryPolicy::default();
    // Nothing sent: any method may go to the next server.
    assert!(p.may_retry(b"POST", Failure::Connect, false, 1, t0, t0));
    // Sent: only idempotent methods.
    assert!(p.may_retry(b"GET", Failure::Io, true, 1, t0, t0));
    assert!(p.may_retry(b"PUT", Failure::Timeout, true, 1, t0, t0));
    assert!(!p.may_retry(b"POST", Failure::Timeout, true, 1, t0, t0));
    assert!(!p.may_retry(b"PATCH", Failure::Io, true, 1, t0, t0));
    // invalid_header is not in nginx's default next_upstream.
    assert!(!p.may_retry(b"GET", Failure::InvalidHead, true, 1, t0, t0));
    let mut q = RetryPolicy::new();
    q.invalid_head(true)
        .non_idempotent(true)
        .tries(2)
        .timeout(Some(Duration::from_secs(5)));
    assert!(q.may_retry(b"GET", Failure::InvalidHead, true, 1, t0, t0));
    assert!(q.may_retry(b"POST", Failure::Io, true, 1, t0, t0));
    assert!(
        !q.may_retry(b"GET", Failure::Io, false, 2, t0, t0),
        "tries exhausted"
    );
    assert!(!q.may_retry(
        b"GET",
        Failure::Io,
        false,
        1,
        t0,
        t0 + Duration::from_secs(5)
    ));
    assert!(is_idempotent(b"DELETE") && is_idempotent(b"OPTIONS") && is_idempotent(b"TRACE"));
    assert!(!is_idempotent(b"get") && !is_idempotent(b"LOCK"));
    assert_eq!(Failure::Timeout.status(), 504);
    assert_eq!(Failure::Connect.status(), 502);
}
