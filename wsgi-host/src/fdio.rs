//! Registering sockets we own with the tokio reactor.
//!
//! `AsyncFd::register` is `unsafe`: the descriptor must stay open and be the same one for as
//! long as the `AsyncFd` holds the value. That holds for types that own their descriptor
//! (closing it means dropping the value, which the `AsyncFd` prevents), which is what the
//! sealed [`OwnsFd`] trait admits. This module is the only place that calls it.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

use tokio::io::unix::AsyncFd;

/// A value that owns its descriptor: `as_raw_fd` always returns the same open descriptor,
/// which is closed only when the value is dropped.
pub(crate) trait OwnsFd: AsRawFd + sealed::Sealed {}

mod sealed {
    pub(crate) trait Sealed {}
}

impl sealed::Sealed for socket2::Socket {}
impl OwnsFd for socket2::Socket {}
impl sealed::Sealed for crate::uwsgi::StdStream {}
impl OwnsFd for crate::uwsgi::StdStream {}

/// Registers `inner` with the current runtime's reactor for readiness events.
///
/// # Errors
///
/// The reactor's error (for example, too many registrations); `inner` is dropped.
pub(crate) fn register<T: OwnsFd>(inner: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: `T: OwnsFd` owns its descriptor, so it stays open and unchanged while the
    // `AsyncFd` holds `inner`, until `into_inner` or drop deregisters it.
    unsafe { AsyncFd::register(inner) }.map_err(|e| e.into_parts().1)
}
