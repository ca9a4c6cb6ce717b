//! Gives the binaries an rpath to the libpython that wsgi-host was built against, so
//! `ferrule` starts without `LD_LIBRARY_PATH` and embeds that interpreter (not another
//! libpython3.11 that happens to be in the loader's default path).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_FERRULE_PYTHON_LIBDIR");
    if let Ok(dir) = std::env::var("DEP_FERRULE_PYTHON_LIBDIR") {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
    }
}
