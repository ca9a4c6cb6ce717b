//! uWSGI option compatibility: the seeds' ini files, the command line forms, placeholders.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrule::options::{Address, Listener, Mount, Options, OptionsError, Protocol};

fn no_env(_: &str) -> Option<String> {
    None
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrule-options-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn args(list: &[&str]) -> Vec<String> {
    std::iter::once("ferrule")
        .chain(list.iter().copied())
        .map(String::from)
        .collect()
}

fn tcp(host: &str, port: u16) -> Address {
    Address::Tcp {
        host: host.into(),
        port,
    }
}

#[test]
fn seed_dashapp_ini_runs_as_is() {
    // shared/seeds/000: protocol = http turns the socket into an HTTP listener.
    let dir = temp_dir("dash");
    let ini = write(
        &dir,
        "dashapp.ini",
        "[uwsgi]\nsocket = 0.0.0.0:8050\nchdir = /home/gmontano/pyDash/\nwsgi-file = wsgi.py\n\
         module = wsgi:app\nmaster = true\nvirtualenv =/home/gmontano/env/pyDash/\n\
         processes = 5\nthreads = 4\nprotocol = http\n",
    );
    let (o, warnings) = Options::from_args(args(&[ini.to_str().unwrap()]), &no_env).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        o.listeners,
        [Listener {
            protocol: Protocol::Http,
            address: tcp("0.0.0.0", 8050)
        }]
    );
    assert_eq!(
        o.app.chdir.as_deref(),
        Some(Path::new("/home/gmontano/pyDash/"))
    );
    assert_eq!(o.app.module.as_deref(), Some("wsgi:app"));
    assert_eq!(o.app.wsgi_file.as_deref(), Some(Path::new("wsgi.py")));
    assert_eq!(
        o.app.virtualenv.as_deref(),
        Some(Path::new("/home/gmontano/env/pyDash/"))
    );
    assert!(o.master);
    assert_eq!((o.processes, o.threads), (5, 4));
}

#[test]
fn seed_unix_socket_ini_with_chmod_vacuum_die_on_term() {
    // shared/seeds/000 (second form) and 002 (mysimplewsgi.ini).
    let dir = temp_dir("simple");
    let ini = write(
        &dir,
        "mysimplewsgi.ini",
        "[uwsgi]\nmodule = wsgi:application\n\nmaster = true\nprocesses = 5\n\n\
         socket = myapp.sock\nchmod-socket = 664\nvacuum = true\n\ndie-on-term = true\n",
    );
    let (o, _) = Options::from_args(args(&["--ini", ini.to_str().unwrap()]), &no_env).unwrap();
    assert_eq!(
        o.listeners,
        [Listener {
            protocol: Protocol::Uwsgi,
            address: Address::Unix("myapp.sock".into())
        }]
    );
    assert_eq!(o.chmod_socket, Some(0o664));
    assert!(o.vacuum);
    assert_eq!(o.processes, 5);
}

#[test]
fn seed_command_line_with_short_flags_and_plugin() {
    // shared/seeds/001: uwsgi --http-socket :5000 --plugin python3 -w wsgi --callable app
    let (o, warnings) = Options::from_args(
        args(&[
            "--http-socket",
            ":5000",
            "--plugin",
            "python3",
            "-w",
            "wsgi",
            "--callable",
            "app",
        ]),
        &no_env,
    )
    .unwrap();
    assert_eq!(
        o.listeners,
        [Listener {
            protocol: Protocol::Http,
            address: tcp("0.0.0.0", 5000)
        }]
    );
    assert_eq!(o.app.module.as_deref(), Some("wsgi"));
    assert_eq!(o.app.callable.as_deref(), Some("app"));
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("`plugin` is ignored"), "{warnings:?}");
}

#[test]
fn key_value_forms_flags_and_order() {
    let (o, _) = Options::from_args(
        args(&[
            "--socket=127.0.0.1:3031",
            "--http",
            "[::1]:8000",
            "--workers=3",
            "-p",
            "2",
            "--master",
            "--vacuum",
            "--wsgi-file",
            "app.py",
            "--pythonpath",
            "/a",
            "--pp",
            "/b",
            "--chmod-socket",
            "--harakiri",
            "30",
            "--socket-timeout=10",
            "--buffer-size",
            "100000",
            "--max-requests",
            "1000",
            "--limit-post=1048576",
            "--post-buffering",
            "8192",
            "--disable-logging",
            "--env",
            "DJANGO_SETTINGS_MODULE=site.settings",
            "--env=EMPTY=",
            "--chown-socket",
            "www-data:www-data",
            "--logto2",
            "/var/log/app.log",
        ]),
        &no_env,
    )
    .unwrap();
    assert_eq!(
        o.listeners,
        [
            Listener {
                protocol: Protocol::Uwsgi,
                address: tcp("127.0.0.1", 3031)
            },
            Listener {
                protocol: Protocol::Http,
                address: tcp("::1", 8000)
            },
        ]
    );
    // A scalar given twice keeps the last value.
    assert_eq!(o.processes, 2);
    assert!(o.master && o.vacuum && o.disable_logging);
    assert_eq!(o.app.pythonpath, [PathBuf::from("/a"), PathBuf::from("/b")]);
    assert_eq!(o.chmod_socket, Some(0o666));
    assert_eq!(o.harakiri, Some(Duration::from_secs(30)));
    assert_eq!(o.socket_timeout, Duration::from_secs(10));
    assert_eq!(o.buffer_size, 65535);
    assert_eq!(o.max_requests, Some(1000));
    assert_eq!(o.limit_post, Some(1 << 20));
    assert_eq!(o.post_buffering, 8192);
    assert_eq!(
        o.app.env,
        [
            (
                "DJANGO_SETTINGS_MODULE".to_string(),
                "site.settings".to_string()
            ),
            ("EMPTY".to_string(), String::new())
        ]
    );
    assert_eq!(o.chown_socket.as_deref(), Some("www-data:www-data"));
    assert_eq!(o.logto, Some(PathBuf::from("/var/log/app.log")));
}

#[test]
fn ini_magic_env_and_placeholders() {
    let dir = temp_dir("magic");
    let ini = write(
        &dir,
        "hello.ini",
        "[uwsgi]\nbase = %dapps\nchdir = %(base)\nwsgi-file = %(base)/hello.py\n\
         socket = %d%n.sock\nlogto = $(FERRULE_TEST_LOGDIR)/%n.log\nmount = /admin=admin:app\n\
         mount = /=%(base)/hello.py\nmanage-script-name = true\nprocesses = 2\n",
    );
    let env = |name: &str| (name == "FERRULE_TEST_LOGDIR").then(|| "/var/log/ferrule".to_string());
    let (o, warnings) = Options::from_args(args(&[ini.to_str().unwrap()]), &env).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let d = format!("{}/", std::path::absolute(&dir).unwrap().display());
    assert_eq!(o.app.chdir, Some(PathBuf::from(format!("{d}apps"))));
    assert_eq!(
        o.app.wsgi_file,
        Some(PathBuf::from(format!("{d}apps/hello.py")))
    );
    assert_eq!(
        o.listeners[0].address,
        Address::Unix(format!("{d}hello.sock").into())
    );
    assert_eq!(o.logto, Some(PathBuf::from("/var/log/ferrule/hello.log")));
    assert_eq!(
        o.app.mounts,
        [
            Mount {
                prefix: "/admin".into(),
                app: "admin:app".into()
            },
            Mount {
                prefix: "".into(),
                app: format!("{d}apps/hello.py")
            }
        ]
    );
    assert!(o.app.manage_script_name);
}

#[test]
fn ini_section_order_and_command_line_override() {
    let dir = temp_dir("order");
    let ini = write(
        &dir,
        "app.ini",
        "[uwsgi]\nmodule = a:app\nsocket = :1\nprocesses = 4\n[other]\nmodule = b:app\nsocket = :2\n",
    );
    let path = ini.to_str().unwrap();
    // Options after --ini override it; before it, the file wins.
    let (o, _) = Options::from_args(args(&["--ini", path, "--processes", "8"]), &no_env).unwrap();
    assert_eq!(o.processes, 8);
    let (o, _) = Options::from_args(args(&["--processes", "8", "--ini", path]), &no_env).unwrap();
    assert_eq!(o.processes, 4);
    // Repeated keys apart from each other keep file order (last scalar wins, lists add up).
    let rep = write(
        &dir,
        "rep.ini",
        "[uwsgi]\nprocesses = 1\nsocket = :7\nmodule = a\nprocesses = 3\nsocket = :8\nmodule = b\n",
    );
    let (o, _) = Options::from_args(args(&[rep.to_str().unwrap()]), &no_env).unwrap();
    assert_eq!((o.processes, o.app.module.as_deref()), (3, Some("b")));
    let ports: Vec<_> = o.listeners.iter().map(|l| l.address.clone()).collect();
    assert_eq!(ports, [tcp("0.0.0.0", 7), tcp("0.0.0.0", 8)]);
    // FILE:SECTION picks another section.
    let (o, _) = Options::from_args(args(&["--ini", &format!("{path}:other")]), &no_env).unwrap();
    assert_eq!(o.app.module.as_deref(), Some("b:app"));
    assert_eq!(o.listeners[0].address, tcp("0.0.0.0", 2));
}

#[test]
fn unknown_ignored_and_unsupported_options() {
    let dir = temp_dir("unknown");
    let ini = write(
        &dir,
        "x.ini",
        "[uwsgi]\nmodule = a\nsocket = :1\nmy-custom = 1\nthunder-lock = true\n",
    );
    let (_, warnings) = Options::from_args(args(&[ini.to_str().unwrap()]), &no_env).unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("`thunder-lock` is ignored"))
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("unknown option `my-custom`"))
    );

    // strict turns unknown keys into errors.
    let strict = write(
        &dir,
        "s.ini",
        "[uwsgi]\nstrict = true\nmodule = a\nsocket = :1\nmy-custom = 1\n",
    );
    let err = Options::from_args(args(&[strict.to_str().unwrap()]), &no_env).unwrap_err();
    assert!(
        matches!(err, OptionsError::UnknownStrict { ref name, .. } if name == "my-custom"),
        "{err}"
    );

    // Semantics ferrule does not have are errors, with what to do instead.
    let err = Options::from_args(
        args(&["--module", "a", "--socket", ":1", "--static-map", "/s=/d"]),
        &no_env,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("static-map") && text.contains("ferrule-proxy"),
        "{text}"
    );
    let bad = write(
        &dir,
        "b.ini",
        "[uwsgi]\nmodule = a\nsocket = :1\nemperor = /etc/vassals\n",
    );
    let err = Options::from_args(args(&[bad.to_str().unwrap()]), &no_env).unwrap_err();
    assert!(
        err.to_string()
            .contains("b.ini [uwsgi]: option `emperor` is not supported"),
        "{err}"
    );

    // Unknown on the command line is refused by clap, like uWSGI.
    let err = Options::from_args(
        args(&["--module", "a", "--socket", ":1", "--no-such"]),
        &no_env,
    )
    .unwrap_err();
    assert!(matches!(err, OptionsError::Cli(_)));
}

#[test]
fn bad_values_name_the_option_and_origin() {
    let cases: &[(&[&str], &str)] = &[
        (&["--socket", "host:99999"], "not a TCP port"),
        (&["--processes", "0"], "1 to 1024"),
        (&["--processes", "many"], "whole number"),
        (&["--chmod-socket", "999"], "octal"),
        (&["--master", "--protocol", "fastcgi"], "unknown protocol"),
        (&["--buffer-size", "100"], "512"),
        (&["--mount", "admin=x:app"], "must start with /"),
    ];
    for (extra, needle) in cases {
        let mut list = vec!["--module", "a", "--socket", ":1"];
        list.extend_from_slice(extra);
        let err = Options::from_args(args(&list), &no_env).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(needle) && text.contains("command line"),
            "{extra:?}: {text}"
        );
    }
    let err = Options::from_args(args(&["--socket", ":1"]), &no_env).unwrap_err();
    assert!(err.to_string().contains("no app"), "{err}");
    let err = Options::from_args(args(&["--module", "a"]), &no_env).unwrap_err();
    assert!(err.to_string().contains("no listener"), "{err}");
    // systemd socket activation provides the listener.
    let env = |n: &str| (n == "LISTEN_FDS").then(|| "1".to_string());
    assert!(Options::from_args(args(&["--module", "a"]), &env).is_ok());
    let err = Options::from_args(args(&["--ini", "/nonexistent/x.ini"]), &no_env).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot read ini file /nonexistent/x.ini"),
        "{err}"
    );
}

#[test]
fn help_lists_the_options_and_says_http_has_no_router() {
    let help = ferrule::options::command().render_long_help().to_string();
    for name in [
        "--socket",
        "--http-socket",
        "--wsgi-file",
        "--processes",
        "--chmod-socket",
        "--ini",
    ] {
        assert!(help.contains(name), "{name} missing from --help");
    }
    assert!(help.contains("no separate HTTP router process"));
}

#[test]
fn bundled_ini_files_parse_and_name_existing_apps() {
    let apps = Path::new(env!("CARGO_MANIFEST_DIR")).join("apps");
    for name in ["hello.ini", "dashapp.ini", "mysimplewsgi.ini"] {
        let ini = apps.join(name);
        let (o, warnings) = Options::from_args(args(&[ini.to_str().unwrap()]), &no_env)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(warnings.is_empty(), "{name}: {warnings:?}");
        assert!(o.master, "{name}");
        if let Some(file) = &o.app.wsgi_file {
            assert!(file.is_file(), "{name}: {} missing", file.display());
        }
        if let Some(module) = &o.app.module {
            let module = module.split(':').next().unwrap();
            let dir = o.app.chdir.as_ref().expect("module apps chdir to %d");
            assert!(
                dir.join(format!("{module}.py")).is_file(),
                "{name}: {module}.py missing"
            );
        }
    }
}
