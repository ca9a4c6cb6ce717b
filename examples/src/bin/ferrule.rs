//! `ferrule`: the WSGI application server. See `ferrule --help`.
fn main() -> std::process::ExitCode {
    ferrule::app_server::main()
}
