//! The platform layer: the only place with platform `cfg`s.
//!
//! Each backend provides the same small surface, used by the rest of the
//! crate through `sys::imp`:
//!
//! - `Channel`: the parent's end of the bootstrap channel to one child
//!   (`pair()`, `write_all`, `try_read`, `wait_readable`,
//!   `watch_exit`), also the child's view of its parent (`inherited`,
//!   `peer_gone`);
//! - `ChildEnd`: the end handed to the child at spawn;
//! - `RawChild`: a started child (`pid`, `sentinel`, `try_reap`,
//!   `wait_event`, `terminate`, `kill`, `abandon`);
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
/// environment before any user code runs. Its name carries this version's
/// semver-compatible part (`MULTIPROC_BOOTSTRAP_0_1`), so another version
/// of the crate in the same program leaves this version's children alone.
pub(crate) const BOOTSTRAP_ENV: &str = concat!("MULTIPROC_BOOTSTRAP_", env!("MULTIPROC_COMPAT"));

/// One `u64` shared with a child (a pool worker's current task): on
/// Linux. Elsewhere none can be made, and a pool worker reports each
/// result as it has it instead.
#[cfg(target_os = "linux")]
pub(crate) use unix::SharedWord;

/// Where a shared word cannot be made: [`SharedWord::new`] fails.
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
pub(crate) enum SharedWord {}

#[cfg(not(target_os = "linux"))]
impl SharedWord {
    pub(crate) fn new() -> std::io::Result<SharedWord> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    pub(crate) fn adopt(_: std::fs::File) -> std::io::Result<SharedWord> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    pub(crate) fn file(&self) -> std::io::Result<std::fs::File> {
        match *self {}
    }

    pub(crate) fn store(&self, _: u64) {
        match *self {}
    }

    pub(crate) fn load(&self) -> u64 {
        match *self {}
    }
}

/// What a non-blocking look at a child found (`RawChild::try_reap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reaped {
    /// The child is still running.
    Running,
    /// The child ended like this; it is reaped now.
    Exited(crate::exit::ExitStatus),
    /// The child ended, but its status was collected by someone else: the
    /// kernel (SIGCHLD ignored) or a `waitpid(-1)` elsewhere in the process.
    /// Never on Windows, where the process handle keeps the status.
    #[cfg_attr(windows, allow(dead_code))]
    Lost,
}

/// A child's sentinel, borrowed from its handle: a pidfd on Linux, the
/// process handle on Windows.
#[cfg(unix)]
pub(crate) type BorrowedSentinel<'a> = std::os::fd::BorrowedFd<'a>;
/// A child's sentinel, borrowed from its handle: a pidfd on Linux, the
/// process handle on Windows.
#[cfg(windows)]
pub(crate) type BorrowedSentinel<'a> = std::os::windows::io::BorrowedHandle<'a>;

/// An OS handle passed to a child as a task argument (see
/// `crate::wire::handles`).
#[cfg(unix)]
pub(crate) type OsHandle = std::os::fd::OwnedFd;
#[cfg(windows)]
pub(crate) use windows::OsHandle;

/// Re-executes this binary as a child that receives `handles`, in order.
/// Returns it with what the child needs to take them over, one entry per
/// handle, for the bootstrap frame's `handle_info`: nothing on Unix (the
/// child finds them at fixed descriptors), the handle values or socket
/// protocol infos on Windows (they are put into the started child).
/// `stdio`, if given, becomes the child's stdout and stderr.
#[cfg(unix)]
pub(crate) fn spawn_child(
    end: &imp::ChildEnd,
    daemon: bool,
    handles: &[OsHandle],
    stdio: Option<&crate::output::ChildStdio>,
) -> std::io::Result<(imp::RawChild, Vec<Vec<u8>>)> {
    use std::os::fd::AsFd;
    let stdio = stdio.map(|s| [s.out.as_fd(), s.err.as_fd()]);
    imp::spawn_self(end, daemon, handles, stdio).map(|child| (child, Vec::new()))
}

/// Re-executes this binary as a child that receives `handles`, in order.
/// Returns it with what the child needs to take them over, one entry per
/// handle, for the bootstrap frame's `handle_info`: nothing on Unix (the
/// child finds them at fixed descriptors), the handle values or socket
/// protocol infos on Windows (they are put into the started child).
/// `stdio`, if given, becomes the child's stdout and stderr.
#[cfg(windows)]
pub(crate) fn spawn_child(
    end: &imp::ChildEnd,
    daemon: bool,
    handles: &[OsHandle],
    stdio: Option<&crate::output::ChildStdio>,
) -> std::io::Result<(imp::RawChild, Vec<Vec<u8>>)> {
    use std::os::windows::io::AsHandle;
    let stdio = stdio.map(|s| [s.out.as_handle(), s.err.as_handle()]);
    let child = imp::spawn_self(end, daemon, stdio)?;
    match windows::transfer(&child, handles) {
        Ok(info) => Ok((child, info)),
        Err(e) => {
            child.abandon();
            Err(e)
        }
    }
}

/// Takes ownership, in a child, of the `count` handles its parent passed,
/// described by the bootstrap frame's `handle_info`.
#[cfg(unix)]
pub(crate) fn adopt_handles(count: u32, _info: &[Vec<u8>]) -> std::io::Result<Vec<OsHandle>> {
    imp::adopt_handles(count)
}

/// Takes ownership, in a child, of the `count` handles its parent passed,
/// described by the bootstrap frame's `handle_info`.
#[cfg(windows)]
pub(crate) fn adopt_handles(count: u32, info: &[Vec<u8>]) -> std::io::Result<Vec<OsHandle>> {
    windows::adopt(count, info)
}

/// A type that owns one OS handle, so that a [`Handle`](crate::Handle) of
/// it can be passed to a child.
///
/// On Unix every type that owns a file descriptor (`File`, `TcpStream`,
/// `TcpListener`, `UnixStream`, `OwnedFd`, …). On Windows, where kernel
/// handles and sockets travel by different means: `File`, `OwnedHandle`,
/// `PipeReader`, `PipeWriter` (duplicated into the child) and `TcpStream`,
/// `TcpListener`, `UdpSocket`, `OwnedSocket` (`WSADuplicateSocketW`).
pub trait Shareable: Sized {
    /// A duplicate of the handle, for the child.
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn duplicate(&self) -> std::io::Result<OsHandle>;
    /// Takes ownership of a handle passed by the parent; an error if it is
    /// of another kind.
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn adopt(handle: OsHandle) -> std::io::Result<Self>;
}

#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
impl<T: std::os::fd::AsFd + From<std::os::fd::OwnedFd>> Shareable for T {
    fn duplicate(&self) -> std::io::Result<OsHandle> {
        self.as_fd().try_clone_to_owned()
    }

    fn adopt(handle: OsHandle) -> std::io::Result<Self> {
        Ok(T::from(handle))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_docs_name_this_versions_bootstrap_variable() {
        assert!(super::BOOTSTRAP_ENV.starts_with("MULTIPROC_BOOTSTRAP_"));
        assert!(include_str!("../../GUIDE.md").contains(super::BOOTSTRAP_ENV));
        assert!(include_str!("../lib.rs").contains(super::BOOTSTRAP_ENV));
    }
}
