//! Makes every binary, test and bench linked from this package find the *build* interpreter's
//! `libpython` at run time, without `LD_LIBRARY_PATH`.
//!
//! Two CPython 3.11 builds live on the development machines: pyenv's (the `python3` on PATH,
//! which pyo3 links against) and a system `libpython3.11.so.1.0` in the loader's default path.
//! Without an rpath the loader silently picks the system one. So:
//!
//! - `cargo:rustc-link-arg=-Wl,-rpath,<LIBDIR>` for this package's own tests, benches and
//!   examples (`rustc-link-arg` applies to every linkable target of the package that emits it);
//! - `cargo:LIBDIR=<LIBDIR>` as `links` metadata, which Cargo hands to the build scripts of
//!   packages that depend on `wsgi-host` directly as `DEP_FERRULE_PYTHON_LIBDIR`; the `ferrule`
//!   binary crate's build script turns it into its own `rustc-link-arg-bins` rpath (a library's
//!   link arguments do not propagate to its dependents).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    println!("cargo:rerun-if-env-changed=PYO3_CONFIG_FILE");
    let config = pyo3_build_config::get();
    match config.lib_dir() {
        Some(lib_dir) => {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
            println!("cargo:LIBDIR={lib_dir}");
        }
        None => println!(
            "cargo:warning=pyo3 reported no LIBDIR for the build interpreter; binaries will \
             use the loader's default libpython"
        ),
    }
    let version = config.version();
    println!("cargo:PYTHON_VERSION={version}");
    // The embedded interpreter's X.Y (the libpython soname fixes it), for checking a venv's
    // lib/pythonX.Y before the interpreter starts.
    println!(
        "cargo:rustc-env=FERRULE_PYTHON_VERSION={}.{}",
        version.major, version.minor
    );
    if let Some(executable) = config.executable() {
        println!("cargo:PYTHON_EXECUTABLE={executable}");
        println!("cargo:rustc-env=FERRULE_BUILD_PYTHON={executable}");
    }
}
