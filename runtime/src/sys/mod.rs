//! The platform layer: the only place with platform `cfg`s.
//!
//! Each backend provides the same small surface, used by the rest of the
//! crate through `sys::imp`:
//!
//! - `Channel`: the parent's end of the bootstrap channel to one child
//!   (`pair()`, `write_all`, `read`, `try_read`, `wait_readable`,
//!   `watch_exit`), also the child's view of its parent (`inherited`,
//!   `peer_gone`);
//! - `ChildEnd`: the end handed to the child at spawn;
//! - `RawChild`: a started child (`pid`, `try_wait`, `wait`, `terminate`,
//!   `kill`);
//! - `spawn_self`: re-execute the current binary as a child that finds its
//!   channel through [`BOOTSTRAP_ENV`] (daemonic children are told apart:
//!   Windows ties them to the parent with a Job Object);
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

/// An OS handle passed to a child as a task argument (see
/// `crate::wire::handles`).
#[cfg(unix)]
pub(crate) type OsHandle = std::os::fd::OwnedFd;
/// An OS handle passed to a child as a task argument (see
/// `crate::wire::handles`).
#[cfg(windows)]
pub(crate) type OsHandle = std::os::windows::io::OwnedHandle;

/// Re-executes this binary as a child that finds `handles`, in order, in
/// its inherited handle table.
#[cfg(unix)]
pub(crate) fn spawn_child(end: &imp::ChildEnd, daemon: bool, handles: &[OsHandle]) -> std::io::Result<imp::RawChild> {
    imp::spawn_self(end, daemon, handles)
}

/// Re-executes this binary as a child. Passing handles is not supported on
/// Windows yet.
#[cfg(windows)]
pub(crate) fn spawn_child(end: &imp::ChildEnd, daemon: bool, handles: &[OsHandle]) -> std::io::Result<imp::RawChild> {
    if !handles.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "passing handles to a child is not supported on Windows yet",
        ));
    }
    imp::spawn_self(end, daemon)
}

/// Takes ownership, in a child, of the `count` handles its parent passed.
#[cfg(unix)]
pub(crate) fn adopt_handles(count: u32) -> std::io::Result<Vec<OsHandle>> {
    imp::adopt_handles(count)
}

/// Takes ownership, in a child, of the `count` handles its parent passed.
#[cfg(windows)]
pub(crate) fn adopt_handles(count: u32) -> std::io::Result<Vec<OsHandle>> {
    if count == 0 {
        Ok(Vec::new())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "passing handles to a child is not supported on Windows yet",
        ))
    }
}

/// A type that owns one OS handle, so that a [`Handle`](crate::Handle) of
/// it can be passed to a child: on Unix every type that owns a file
/// descriptor (`File`, `TcpStream`, `TcpListener`, `UnixStream`,
/// `OwnedFd`, …).
pub trait Shareable: Sized {
    /// A duplicate of the handle, for the child.
    #[doc(hidden)]
    fn duplicate(&self) -> std::io::Result<OsHandle>;
    /// Takes ownership of a handle passed by the parent.
    #[doc(hidden)]
    fn adopt(handle: OsHandle) -> Self;
}

#[cfg(unix)]
impl<T: std::os::fd::AsFd + From<std::os::fd::OwnedFd>> Shareable for T {
    fn duplicate(&self) -> std::io::Result<OsHandle> {
        self.as_fd().try_clone_to_owned()
    }

    fn adopt(handle: OsHandle) -> Self {
        T::from(handle)
    }
}

#[cfg(windows)]
impl<T: std::os::windows::io::AsHandle + From<std::os::windows::io::OwnedHandle>> Shareable for T {
    fn duplicate(&self) -> std::io::Result<OsHandle> {
        self.as_handle().try_clone_to_owned()
    }

    fn adopt(handle: OsHandle) -> Self {
        T::from(handle)
    }
}
