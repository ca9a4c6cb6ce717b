//! `ferrule-proxy`: the front proxy (static files, uwsgi and HTTP upstreams, TLS). See
//! `ferrule-proxy --help`.

/// mimalloc instead of glibc's malloc: a proxy allocates and frees small buffers per
/// request, and glibc's free lists (with their consolidation passes on every larger
/// allocation) took about a quarter of the proxy's user time in profiles.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ferrule::proxy_main::main()
}
