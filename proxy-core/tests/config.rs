//! The TOML configuration: a full example, every validation error with its line, and
//! longest-prefix location matching.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proxy_core::config::{
    Action, ConfigError, ProxyConfig, UpstreamAddr, expand_redirect, parse_duration, parse_size,
};
use proxy_core::pool::Balance;
use proxy_core::upstream_head::UpstreamProtocol;

const FULL: &str = r#"
[[server]]
listen = ["0.0.0.0:443", "[::]:443"]
server_name = ["Example.com", "*.example.com"]
tls = { cert = "/etc/ferrule/cert.pem", key = "/etc/ferrule/key.pem" }
trusted_proxies = ["10.0.0.0/8", "unix:"]
client_max_body_size = "10m"

[[server.location]]
prefix = "/static/"
alias = "/srv/app/static/"
index = ["index.html", "index.htm"]
fallback = "app"
expires = "7d"
cache_control = "public"
precompressed = ["br", "gzip"]

[[server.location]]
prefix = "/"
uwsgi_pass = "app"
script_name = "/"

[[server.location]]
prefix = "/api/"
proxy_pass = "http://unix:/run/api.sock:"

[[server.location]]
prefix = "/legacy/"
uwsgi_pass = "unix:/run/legacy.sock"

[[server.location]]
prefix = "/static/big/"
root = "/srv/big"

[[server]]
listen = ["80"]
[[server.location]]
prefix = "/"
redirect = "https://$host$request_uri"

[upstream.app]
protocol = "uwsgi"
balance = "least-conn"
servers = [
  { address = "unix:/run/app1.sock", weight = 2 },
  { address = "127.0.0.1:3031", max_fails = 3, fail_timeout = "30s" },
  { address = "app-host.internal:3031", backup = true },
]
"#;

fn parse(src: &str) -> Result<ProxyConfig, ConfigError> {
    ProxyConfig::parse(src, Path::new("proxy.toml"))
}

#[test]
fn full_example_is_understood() {
    let cfg = parse(FULL).unwrap();
    assert_eq!(cfg.servers.len(), 2);
    let s = &cfg.servers[0];
    assert_eq!(
        s.listen,
        vec![
            "0.0.0.0:443".parse::<SocketAddr>().unwrap(),
            "[::]:443".parse().unwrap()
        ]
    );
    assert_eq!(s.server_names, vec!["example.com", "*.example.com"]);
    assert_eq!(s.primary_name(), "example.com");
    let tls = s.tls.as_ref().unwrap();
    assert_eq!(tls.cert, PathBuf::from("/etc/ferrule/cert.pem"));
    assert!(s.trusted_proxies.contains("10.2.3.4".parse().unwrap()));
    assert!(s.trusted_proxies.trusts(None));
    assert_eq!(s.client_max_body_size, 10 * 1024 * 1024);
    let prefixes: Vec<&str> = s.locations.iter().map(|l| l.prefix.as_str()).collect();
    // Longest first; equal lengths keep file order (it cannot matter: equal-length
    // prefixes never both match).
    assert_eq!(
        prefixes,
        vec!["/static/big/", "/static/", "/legacy/", "/api/", "/"]
    );

    let app = &cfg.upstreams["app"];
    assert_eq!(app.protocol, UpstreamProtocol::Uwsgi);
    assert_eq!(app.balance, Balance::LeastConn);
    assert_eq!(app.servers.len(), 3);
    assert_eq!(
        app.servers[0].addr,
        UpstreamAddr::Unix("/run/app1.sock".into())
    );
    assert_eq!(app.servers[0].weight, 2);
    assert_eq!(
        app.servers[1].addr,
        UpstreamAddr::Tcp("127.0.0.1:3031".parse().unwrap())
    );
    assert_eq!(
        (app.servers[1].max_fails, app.servers[1].fail_timeout),
        (3, Duration::from_secs(30))
    );
    assert_eq!(
        app.servers[2].addr,
        UpstreamAddr::Host("app-host.internal".into(), 3031)
    );
    assert!(app.servers[2].backup);
    assert_eq!(app.pool().unwrap().len(), 3);

    // Inline addresses became implicit pools.
    let api = &cfg.upstreams["http://unix:/run/api.sock:"];
    assert_eq!(api.protocol, UpstreamProtocol::Http);
    assert_eq!(
        api.servers[0].addr,
        UpstreamAddr::Unix("/run/api.sock".into())
    );
    let legacy = &cfg.upstreams["unix:/run/legacy.sock"];
    assert_eq!(legacy.protocol, UpstreamProtocol::Uwsgi);

    match &s.location_for(b"/static/css/a.css").unwrap().action {
        Action::Static { files, fallback } => {
            assert_eq!(fallback.as_deref(), Some("app"));
            assert_eq!(files.dir(), Path::new("/srv/app/static/"));
            assert_eq!(
                files.map_path(b"/static/css/a.css"),
                Some(PathBuf::from("/srv/app/static/css/a.css"))
            );
        }
        other => panic!("{other:?}"),
    }
    match &s.location_for(b"/").unwrap().action {
        Action::Uwsgi {
            upstream,
            script_name,
        } => {
            assert_eq!(upstream, "app");
            assert_eq!(script_name.as_deref(), Some("/"));
        }
        other => panic!("{other:?}"),
    }
    match &cfg.servers[1].locations[0].action {
        Action::Redirect { to, status } => {
            assert_eq!((to.as_str(), *status), ("https://$host$request_uri", 301));
            assert_eq!(
                expand_redirect(to, "example.com", "/a?b=$1", "http"),
                "https://example.com/a?b=$1"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        cfg.servers[1].listen,
        vec!["0.0.0.0:80".parse::<SocketAddr>().unwrap()]
    );
}

#[test]
fn longest_prefix_wins() {
    let cfg = parse(FULL).unwrap();
    let s = &cfg.servers[0];
    let prefix = |path: &str| s.location_for(path.as_bytes()).map(|l| l.prefix.as_str());
    assert_eq!(prefix("/static/big/x.iso"), Some("/static/big/"));
    assert_eq!(
        prefix("/static/big"),
        Some("/static/"),
        "no trailing slash: the shorter one"
    );
    assert_eq!(prefix("/static/x"), Some("/static/"));
    assert_eq!(prefix("/api/v1"), Some("/api/"));
    assert_eq!(prefix("/apix"), Some("/"));
    assert_eq!(prefix("/"), Some("/"));
    let only_api = parse("[[server]]\nlisten = [\"80\"]\n[[server.location]]\nprefix = \"/api\"\nproxy_pass = \"http://127.0.0.1:8000\"\n").unwrap();
    let s = &only_api.servers[0];
    assert!(s.location_for(b"/other").is_none());
    assert_eq!(
        s.location_for(b"/apiary").map(|l| l.prefix.as_str()),
        Some("/api"),
        "nginx prefix semantics"
    );
}

#[test]
fn server_selection_by_listen_and_name() {
    let src = r#"
[[server]]
listen = ["127.0.0.1:8080"]
server_name = ["a.test"]
[[server.location]]
prefix = "/"
redirect = "https://a.test$request_uri"

[[server]]
listen = ["8080"]
server_name = ["b.test", "*.wild.test"]
[[server.location]]
prefix = "/"
redirect = "https://b.test$request_uri"
"#;
    let cfg = parse(src).unwrap();
    let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let name = |host: &str| {
        cfg.server_for(local, host)
            .map(|s| s.primary_name().to_owned())
    };
    assert_eq!(name("a.test").as_deref(), Some("a.test"));
    assert_eq!(name("B.TEST").as_deref(), Some("b.test"));
    assert_eq!(name("x.wild.test").as_deref(), Some("b.test"));
    assert_eq!(
        name("wild.test").as_deref(),
        Some("a.test"),
        "*.x does not match x itself"
    );
    assert_eq!(
        name("unknown").as_deref(),
        Some("a.test"),
        "the first server is the default"
    );
    assert!(
        cfg.server_for("127.0.0.1:9999".parse().unwrap(), "a.test")
            .is_none()
    );
}

/// Asserts the error's line and that its message contains `needle`.
fn expect_err(src: &str, line: usize, needle: &str) {
    let err = parse(src).expect_err("the config must be refused");
    assert_eq!(err.file, PathBuf::from("proxy.toml"));
    assert_eq!(err.line, Some(line), "{err}");
    assert!(
        err.message.contains(needle),
        "message {:?} lacks {needle:?}",
        err.message
    );
    let shown = err.to_string();
    assert!(shown.starts_with(&format!("proxy.toml:{line}:")), "{shown}");
}

const HEAD: &str = "[[server]]\nlisten = [\"80\"]\n[[server.location]]\n"; // location keys start on line 4

#[test]
fn syntax_and_type_errors_have_positions() {
    expect_err("[[server]]\nlisten = [\"80\"\n", 2, "");
    expect_err("[[server]]\nlisten = 80\n", 2, "");
    expect_err(
        &format!("{HEAD}prefix = \"/\"\nuwsgi_pas = \"x:1\"\n"),
        5,
        "uwsgi_pas",
    );
    expect_err("[[server]]\nlisten = [\"80\"]\nlisen = 1\n", 3, "lisen");
    expect_err(
        &format!("{HEAD}prefix = \"/\"\nredirect = \"https://x\"\nredirect_status = -1\n"),
        6,
        "",
    );
    let err = parse("").unwrap_err();
    assert!(err.message.contains("no [[server]]"));
}

#[test]
fn validation_errors_have_positions() {
    let cases: Vec<(String, usize, &str)> = vec![
        (
            format!("{HEAD}prefix = \"static\"\nroot = \"/srv\"\n"),
            4,
            "must start with '/'",
        ),
        (format!("{HEAD}prefix = \"/\"\n"), 3, "found: none"),
        (
            format!("{HEAD}prefix = \"/\"\nroot = \"/srv\"\nuwsgi_pass = \"a:1\"\n"),
            3,
            "found: root, uwsgi_pass",
        ),
        (
            format!("{HEAD}prefix = \"/\"\nuwsgi_pass = \"nope\"\n"),
            5,
            "unknown upstream \"nope\"",
        ),
        (
            format!("{HEAD}prefix = \"/\"\nuwsgi_pass = \"unix:relative\"\n"),
            5,
            "absolute path",
        ),
        (
            format!("{HEAD}prefix = \"/\"\nproxy_pass = \"http://bad host:80\"\n"),
            5,
            "invalid upstream address",
        ),
        (
            format!("{HEAD}prefix = \"/\"\nroot = \"relative\"\n"),
            5,
            "absolute path",
        ),
        (
            format!("{HEAD}prefix = \"/\"\nroot = \"/srv\"\nexpires = \"soon\"\n"),
            6,
            "invalid expires",
        ),
        (
            format!("{HEAD}prefix = \"/\"\nroot = \"/srv\"\nprecompressed = [\"zstd\"]\n"),
            6,
            "zstd",
        ),
        (
            format!("{HEAD}prefix = \"/\"\nroot = \"/srv\"\nindex = [\"a/b\"]\n"),
            6,
            "index file",
        ),
        (
            format!("{HEAD}prefix = \"/\"\nroot = \"/srv\"\nfallback = \"ghost\"\n"),
            6,
            "unknown upstream",
        ),
        (
            format!("{HEAD}prefix = \"/\"\nroot = \"/srv\"\ncache_control = \"a\\nb\"\n"),
            6,
            "control characters",
        ),
        (
            format!("{HEAD}prefix = \"/\"\nuwsgi_pass = \"a:1\"\nexpires = \"1h\"\n"),
            6,
            "only applies to a static",
        ),
        (
            format!("{HEAD}prefix = \"/\"\nproxy_pass = \"http://a:1\"\nscript_name = \"/x\"\n"),
            6,
            "script_name only",
        ),
        (
            format!("{HEAD}prefix = \"/\"\nuwsgi_pass = \"a:1\"\nscript_name = \"x\"\n"),
            6,
            "start with '/'",
        ),
        (
            format!("{HEAD}prefix = \"/\"\nroot = \"/srv\"\nredirect_status = 301\n"),
            6,
            "redirect_status only",
        ),
        (
            format!("{HEAD}prefix = \"/\"\nredirect = \"https://x\"\nredirect_status = 200\n"),
            6,
            "not a redirect",
        ),
        (
            format!("{HEAD}prefix = \"/\"\nredirect = \"https://$hots/\"\n"),
            5,
            "unknown variable",
        ),
        (
            format!("{HEAD}prefix = \"/\"\nredirect = \"https://a b\"\n"),
            5,
            "without spaces",
        ),
        (
            "[[server]]\nlisten = []\n[[server.location]]\nprefix = \"/\"\nredirect = \"/x\"\n"
                .into(),
            2,
            "listen is empty",
        ),
        (
            "[[server]]\nlisten = [\"80\", \"nope:80\"]\n".into(),
            2,
            "invalid listen address",
        ),
        (
            "[[server]]\nlisten = [\"80\"]\nserver_name = [\"bad name\"]\n".into(),
            3,
            "invalid server_name",
        ),
        (
            "[[server]]\nlisten = [\"80\"]\ntrusted_proxies = [\"10.0.0.0/99\"]\n".into(),
            3,
            "invalid trusted proxy",
        ),
        (
            "[[server]]\nlisten = [\"80\"]\nclient_max_body_size = \"1x\"\n".into(),
            3,
            "invalid size",
        ),
        (
            "[[server]]\nlisten = [\"80\"]\n".into(),
            1,
            "no [[server.location]]",
        ),
        (
            format!(
                "{HEAD}prefix = \"/\"\nredirect = \"/x\"\n[[server.location]]\nprefix = \"/\"\nredirect = \"/y\"\n"
            ),
            6,
            "duplicate location prefix",
        ),
    ];
    for (src, line, needle) in &cases {
        expect_err(src, *line, needle);
    }
}

#[test]
fn upstream_errors_have_positions() {
    let loc = format!("{HEAD}prefix = \"/\"\nredirect = \"/x\"\n"); // 5 lines
    let cases: Vec<(String, usize, &str)> = vec![
        (
            format!(
                "{loc}[upstream.a]\nprotocol = \"fastcgi\"\nservers = [{{ address = \"a:1\" }}]\n"
            ),
            7,
            "unknown protocol",
        ),
        (
            format!(
                "{loc}[upstream.a]\nprotocol = \"http\"\nbalance = \"random\"\nservers = [{{ address = \"a:1\" }}]\n"
            ),
            8,
            "unknown balance",
        ),
        (
            format!("{loc}[upstream.a]\nprotocol = \"http\"\nservers = [{{ address = \"a\" }}]\n"),
            8,
            "invalid upstream address",
        ),
        (
            format!(
                "{loc}[upstream.a]\nprotocol = \"http\"\nservers = [{{ address = \"a:1\", weight = 0 }}]\n"
            ),
            8,
            "weight",
        ),
        (
            format!(
                "{loc}[upstream.a]\nprotocol = \"http\"\nservers = [{{ address = \"a:1\", fail_timeout = \"x\" }}]\n"
            ),
            8,
            "fail_timeout",
        ),
        (
            format!(
                "{loc}[upstream.a]\nprotocol = \"http\"\nservers = [{{ address = \"a:1\", backup = true }}]\n"
            ),
            8,
            "not a backup",
        ),
        (
            format!("{loc}[upstream.a]\nprotocol = \"http\"\nservers = []\n"),
            8,
            "not a backup",
        ),
        (
            format!(
                "{loc}[upstream.a]\nprotocol = \"http\"\nservers = [{{ address = \"a:1\", wieght = 2 }}]\n"
            ),
            8,
            "wieght",
        ),
    ];
    for (src, line, needle) in &cases {
        expect_err(src, *line, needle);
    }
    // Keep-alive settings: only for HTTP upstreams, with a valid time.
    let http =
        format!("{loc}[upstream.a]\nprotocol = \"http\"\nservers = [{{ address = \"a:1\" }}]\n");
    let uwsgi =
        format!("{loc}[upstream.a]\nprotocol = \"uwsgi\"\nservers = [{{ address = \"a:1\" }}]\n");
    expect_err(&format!("{uwsgi}keepalive = 8\n"), 9, "http upstreams only");
    expect_err(
        &format!("{uwsgi}keepalive_timeout = \"5s\"\n"),
        9,
        "http upstreams only",
    );
    expect_err(
        &format!("{http}keepalive_timeout = \"soon\"\n"),
        9,
        "invalid keepalive_timeout",
    );
    expect_err(&format!("{http}keepalive = -1\n"), 9, "expected usize");
    let cfg = parse(&format!(
        "{http}keepalive = 64\nkeepalive_timeout = \"30s\"\n"
    ))
    .unwrap();
    let a = &cfg.upstreams["a"];
    assert_eq!(a.keepalive, Some(64));
    assert_eq!(
        a.keepalive_timeout,
        Some(std::time::Duration::from_secs(30))
    );
    let cfg = parse(&http).unwrap();
    assert_eq!(
        cfg.upstreams["a"].keepalive, None,
        "the server's default applies"
    );
    // Protocol mismatch between a location and a named upstream.
    let src = format!(
        "{HEAD}prefix = \"/\"\nproxy_pass = \"app\"\n[upstream.app]\nprotocol = \"uwsgi\"\nservers = [{{ address = \"a:1\" }}]\n"
    );
    expect_err(&src, 5, "speaks uwsgi, but this location needs http");
}

#[test]
fn load_reports_unreadable_files() {
    let err = ProxyConfig::load(Path::new("/nonexistent/ferrule/proxy.toml")).unwrap_err();
    assert_eq!(err.line, None);
    assert!(
        err.to_string()
            .starts_with("/nonexistent/ferrule/proxy.toml: cannot read")
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, FULL).unwrap();
    assert_eq!(ProxyConfig::load(&path).unwrap().servers.len(), 2);
    std::fs::write(&path, "[[server]]\nlisten = [\"x\"]\n").unwrap();
    let err = ProxyConfig::load(&path).unwrap_err();
    assert_eq!((err.file, err.line, err.column), (path, Some(2), Some(11)));
}

#[test]
fn sizes_and_durations() {
    assert_eq!(parse_size("0"), Some(0));
    assert_eq!(parse_size("1024"), Some(1024));
    assert_eq!(parse_size("10k"), Some(10 * 1024));
    assert_eq!(parse_size("1M"), Some(1 << 20));
    assert_eq!(parse_size("2g"), Some(2 << 30));
    for bad in ["", "k", "-1", "1.5m", "1 m", "99999999999999999999g"] {
        assert_eq!(parse_size(bad), None, "{bad}");
    }
    assert_eq!(parse_duration("10"), Some(Duration::from_secs(10)));
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
    assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86400)));
    assert_eq!(parse_duration("1M"), Some(Duration::from_secs(30 * 86400)));
    assert_eq!(
        parse_duration("2y"),
        Some(Duration::from_secs(2 * 365 * 86400))
    );
    for bad in ["", "s", "1x", "1.5s", "-1s", "1 s"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn upstream_addresses() {
    assert_eq!(
        UpstreamAddr::parse("unix:/a.sock"),
        Ok(UpstreamAddr::Unix("/a.sock".into()))
    );
    assert_eq!(
        UpstreamAddr::parse("[::1]:80"),
        Ok(UpstreamAddr::Tcp("[::1]:80".parse().unwrap()))
    );
    assert_eq!(
        UpstreamAddr::parse("Host.Example:80"),
        Ok(UpstreamAddr::Host("host.example".into(), 80))
    );
    for bad in [
        "unix:",
        "unix:rel",
        "host",
        "host:0",
        "host:99999",
        ":80",
        "a b:80",
    ] {
        assert!(UpstreamAddr::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(UpstreamAddr::Unix("/a".into()).to_string(), "unix:/a");
    assert_eq!(UpstreamAddr::Host("h".into(), 1).to_string(), "h:1");
}

mod quick_flags {
    use super::*;
    use proxy_core::config::QuickFlags;

    fn flags(listen: &[&str], uwsgi: &[&str], proxy: Option<&str>, statics: &[&str]) -> QuickFlags {
        QuickFlags {
            listen: listen.iter().map(|s| s.to_string()).collect(),
            uwsgi_pass: uwsgi.iter().map(|s| s.to_string()).collect(),
            proxy_pass: proxy.map(str::to_string),
            statics: statics.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn uwsgi_pool_and_statics() {
        let cfg = ProxyConfig::from_flags(&flags(
            &["127.0.0.1:8080", "9090"],
            &["unix:/run/a.sock", "127.0.0.1:3031"],
            None,
            &["/static=/srv/static", "/media/=relative/media"],
        ))
        .unwrap();
        let s = &cfg.servers[0];
        assert_eq!(s.listen.len(), 2);
        assert_eq!(s.listen[1], "0.0.0.0:9090".parse::<SocketAddr>().unwrap());
        let app = &cfg.upstreams["app"];
        assert_eq!(app.protocol, UpstreamProtocol::Uwsgi);
        assert_eq!(app.balance, Balance::RoundRobin);
        assert_eq!(app.servers.len(), 2);
        let prefix = |p: &str| s.location_for(p.as_bytes()).map(|l| l.prefix.clone());
        assert_eq!(prefix("/static/a.css").as_deref(), Some("/static/"));
        assert_eq!(prefix("/staticx").as_deref(), Some("/"));
        assert_eq!(prefix("/media/x").as_deref(), Some("/media/"));
        match &s.location_for(b"/media/x").unwrap().action {
            Action::Static { files, fallback } => {
                assert!(files.dir().is_absolute());
                assert!(files.dir().ends_with("relative/media"));
                assert!(fallback.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.location_for(b"/x").unwrap().action,
            Action::Uwsgi { .. }
        ));
    }

    #[test]
    fn proxy_pass_forms() {
        for (arg, addr) in [
            (
                "http://127.0.0.1:8000",
                UpstreamAddr::Tcp("127.0.0.1:8000".parse().unwrap()),
            ),
            (
                "http://unix:/run/g.sock",
                UpstreamAddr::Unix("/run/g.sock".into()),
            ),
            (
                "http://unix:/run/g.sock:",
                UpstreamAddr::Unix("/run/g.sock".into()),
            ),
        ] {
            let cfg = ProxyConfig::from_flags(&flags(&["80"], &[], Some(arg), &[])).unwrap();
            assert_eq!(cfg.upstreams["app"].protocol, UpstreamProtocol::Http);
            assert_eq!(cfg.upstreams["app"].servers[0].addr, addr, "{arg}");
        }
        let only_static = ProxyConfig::from_flags(&flags(&["80"], &[], None, &["/=/srv"])).unwrap();
        assert!(only_static.upstreams.is_empty());
    }

    #[test]
    fn errors_name_the_flag() {
        let cases = [
            (flags(&[], &["a:1"], None, &[]), "--listen"),
            (flags(&["nope"], &["a:1"], None, &[]), "--listen \"nope\""),
            (
                flags(&["80"], &["a:1"], Some("http://b:2"), &[]),
                "not both",
            ),
            (flags(&["80"], &["bad"], None, &[]), "--uwsgi-pass"),
            (
                flags(&["80"], &[], Some("127.0.0.1:8000"), &[]),
                "--proxy-pass",
            ),
            (flags(&["80"], &[], None, &["static"]), "PREFIX=DIR"),
            (
                flags(&["80"], &[], None, &["/s=/a", "/s/=/b"]),
                "given twice",
            ),
            (flags(&["80"], &[], None, &[]), "nothing to serve"),
        ];
        for (f, needle) in cases {
            let err = ProxyConfig::from_flags(&f).unwrap_err();
            assert!(err.message.contains(needle), "{err} lacks {needle:?}");
            assert!(err.to_string().starts_with("command line: "), "{err}");
        }
    }
}
