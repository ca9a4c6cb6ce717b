//! Forwarded fields: appended X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, trusted proxies.

use std::net::IpAddr;

use proxy_core::forwarded::{Forwarded, TrustedProxies, forwarded, is_forwarding_field};
use proxy_core::uwsgi_params::Scheme;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn trusted() -> TrustedProxies {
    TrustedProxies::parse(["10.0.0.0/8", "192.168.1.7", "fd00::/8", "unix:"]).unwrap()
}

fn run(peer: Option<&str>, scheme: Scheme, fields: &[(&str, &str)]) -> Forwarded {
    let fields: Vec<(&[u8], &[u8])> = fields
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    forwarded(peer.map(ip), scheme, &fields, &trusted())
}

fn text(v: &[u8]) -> &str {
    std::str::from_utf8(v).unwrap()
}

#[test]
fn untrusted_peer_gets_its_own_address_only() {
    let f = run(
        Some("203.0.113.9"),
        Scheme::Http,
        &[
            ("X-Forwarded-For", "1.2.3.4"),
            ("X-Real-IP", "1.2.3.4"),
            ("X-Forwarded-Proto", "https"),
        ],
    );
    assert_eq!(f.client, Some(ip("203.0.113.9")));
    assert_eq!(text(&f.x_forwarded_for), "203.0.113.9");
    assert_eq!(text(&f.x_real_ip), "203.0.113.9");
    assert_eq!(f.x_forwarded_proto, "http");
}

#[test]
fn trusted_peer_appends_and_finds_the_client() {
    let f = run(
        Some("10.1.2.3"),
        Scheme::Http,
        &[
            ("X-Forwarded-For", "198.51.100.1, 10.9.9.9"),
            ("X-Forwarded-Proto", "https"),
        ],
    );
    assert_eq!(f.client, Some(ip("198.51.100.1")));
    assert_eq!(text(&f.x_forwarded_for), "198.51.100.1, 10.9.9.9, 10.1.2.3");
    assert_eq!(text(&f.x_real_ip), "198.51.100.1");
    assert_eq!(f.x_forwarded_proto, "https");
    assert_eq!(
        f.fields().map(|(n, _)| n),
        ["X-Forwarded-For", "X-Real-IP", "X-Forwarded-Proto"]
    );
}

#[test]
fn spoofed_left_entries_do_not_win() {
    // The client sent "X-Forwarded-For: 6.6.6.6" to our trusted front proxy, which appended
    // the client's real address: the right-most untrusted one is the client.
    let f = run(
        Some("10.0.0.1"),
        Scheme::Https,
        &[("X-Forwarded-For", "6.6.6.6, 198.51.100.7")],
    );
    assert_eq!(f.client, Some(ip("198.51.100.7")));
    assert_eq!(f.x_forwarded_proto, "https");
}

#[test]
fn multiple_lines_ports_brackets_and_bad_elements() {
    let f = run(
        Some("192.168.1.7"),
        Scheme::Http,
        &[
            ("X-Forwarded-For", "198.51.100.1:4444"),
            ("x-forwarded-for", "[fd00::5]:80"),
        ],
    );
    assert_eq!(f.client, Some(ip("198.51.100.1")));
    assert_eq!(
        text(&f.x_forwarded_for),
        "198.51.100.1:4444, [fd00::5]:80, 192.168.1.7"
    );

    let f = run(
        Some("10.0.0.1"),
        Scheme::Http,
        &[("X-Forwarded-For", "unknown, 10.0.0.2")],
    );
    assert_eq!(
        f.client,
        Some(ip("10.0.0.2")),
        "walk stops at the malformed element"
    );
    let f = run(
        Some("10.0.0.1"),
        Scheme::Http,
        &[("X-Forwarded-For", "garbage")],
    );
    assert_eq!(f.client, Some(ip("10.0.0.1")));
    assert_eq!(text(&f.x_forwarded_for), "garbage, 10.0.0.1");
    let f = run(
        Some("10.0.0.1"),
        Scheme::Http,
        &[("X-Forwarded-For", "10.0.0.3, 10.0.0.2")],
    );
    assert_eq!(f.client, Some(ip("10.0.0.3")), "all trusted: the left-most");
    let f = run(Some("10.0.0.1"), Scheme::Http, &[("X-Forwarded-For", "  ")]);
    assert_eq!(text(&f.x_forwarded_for), "10.0.0.1");
    let f = run(
        Some("10.0.0.1"),
        Scheme::Http,
        &[("X-Forwarded-For", "::1, 1.2.3.4:99999")],
    );
    assert_eq!(
        f.client,
        Some(ip("10.0.0.1")),
        "port out of syntax is malformed"
    );
}

#[test]
fn forwarded_proto_values() {
    let proto = |v: &str| {
        run(Some("10.0.0.1"), Scheme::Http, &[("X-Forwarded-Proto", v)]).x_forwarded_proto
    };
    assert_eq!(proto("HTTPS"), "https");
    assert_eq!(proto("https, http"), "https");
    assert_eq!(proto("http"), "http");
    assert_eq!(proto("ftp"), "http");
    assert_eq!(proto(""), "http");
    let f = run(
        Some("10.0.0.1"),
        Scheme::Https,
        &[("X-Forwarded-Proto", "gopher")],
    );
    assert_eq!(f.x_forwarded_proto, "https");
}

#[test]
fn unix_peers() {
    let f = forwarded(
        None,
        Scheme::Http,
        &[(b"X-Forwarded-For", b"198.51.100.1")],
        &trusted(),
    );
    assert_eq!(f.client, Some(ip("198.51.100.1")));
    assert_eq!(text(&f.x_forwarded_for), "198.51.100.1, unix:");
    let f = forwarded(
        None,
        Scheme::Http,
        &[(b"X-Forwarded-For", b"198.51.100.1")],
        &TrustedProxies::new(),
    );
    assert_eq!(f.client, None);
    assert_eq!(text(&f.x_forwarded_for), "unix:");
    assert_eq!(text(&f.x_real_ip), "unix:");
}

#[test]
fn trusted_list_parsing_and_matching() {
    let t = trusted();
    assert!(t.contains(ip("10.255.0.1")));
    assert!(!t.contains(ip("11.0.0.1")));
    assert!(t.contains(ip("192.168.1.7")));
    assert!(!t.contains(ip("192.168.1.8")));
    assert!(t.contains(ip("fd12::1")));
    assert!(t.contains(ip("::ffff:10.0.0.1")), "IPv4-mapped IPv6");
    assert!(t.trusts(None));
    assert!(!TrustedProxies::new().trusts(None));
    assert!(TrustedProxies::new().is_empty());
    // Host bits are ignored, as nginx does.
    let t = TrustedProxies::parse(["10.1.2.3/8"]).unwrap();
    assert!(t.contains(ip("10.200.0.1")));
    for bad in ["10.0.0.0/33", "nope", "10.0.0", "", "unix", "::1/129"] {
        let err = TrustedProxies::parse([bad]).unwrap_err();
        assert_eq!(err.entry, bad);
        assert!(err.to_string().contains("CIDR"));
    }
}

#[test]
fn forwarding_field_names() {
    assert!(is_forwarding_field(b"X-Forwarded-For"));
    assert!(is_forwarding_field(b"x-real-ip"));
    assert!(is_forwarding_field(b"X-FORWARDED-PROTO"));
    assert!(!is_forwarding_field(b"X-Forwarded-Host"));
}
