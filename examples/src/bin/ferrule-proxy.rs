//! `ferrule-proxy`: the front proxy (static files, uwsgi and HTTP upstreams, TLS). See
//! `ferrule-proxy --help`.
fn main() -> std::process::ExitCode {
    ferrule::proxy_main::main()
}
