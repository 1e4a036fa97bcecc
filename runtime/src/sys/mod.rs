//! The platform layer: the only place with platform `cfg`s.
//!
//! Each backend provides the same small surface, used by the rest of the
//! crate through `sys::imp`:
//!
//! - `Channel`: the parent's end of the bootstrap channel to one child
//!   (`pair()`, `write_all`, `read`, `wait_readable`), also the child's view
//!   of its parent (`inherited`, `peer_gone`);
//! - `ChildEnd`: the end handed to the child at spawn;
//! - `RawChild`: a started child (`pid`, `try_wait`, `wait`, `terminate`,
//!   `kill`);
//! - `spawn_self`: re-execute the current binary as a child that finds its
//!   channel through [`BOOTSTRAP_ENV`];
//! - process facts: `exe_identity`, `cpu_count`, `pid`, `is_main_thread`;
//! - child set-up: `ignore_sigpipe`, `tie_to_parent`, `on_exit`.

#[cfg(unix)]
pub(crate) mod unix;
#[cfg(unix)]
pub(crate) use unix as imp;

#[cfg(windows)]
pub(crate) mod windows;
#[cfg(windows)]
pub(crate) use windows as imp;

/// The environment variable that tells a re-executed binary it is a child,
/// and where to read its bootstrap frame from. It is removed from the
/// environment before any user code runs.
pub(crate) const BOOTSTRAP_ENV: &str = "MULTIPROC_BOOTSTRAP";
