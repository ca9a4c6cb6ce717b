//! The process runtime of the `ferrule` server: binding listeners, the master that
//! supervises worker processes, the master → worker handoff, and worker watchdogs.
//!
//! Nothing here touches Python: the master never loads the app, so reloads re-import the
//! code and a crash of the app can only take one worker down.

pub mod handoff;
pub mod listen;
pub mod master;
pub mod watchdog;
