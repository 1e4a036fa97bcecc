//! The handle to a started child.

use crate::registry::DecodeOutput;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::table::{self, ChildState, Ended, Wait};
use crate::authkey::AuthKey;
use crate::error::Error;
use crate::exit::ExitStatus;

/// A started child process whose target returns `R`.
///
/// Returned by [`Builder::start`](crate::Builder::start). Python's
/// `Process` methods map as follows: `join()` is [`wait`](Child::wait)
/// (any number of times) or [`join`](Child::join) (once, returning the
/// target's value), `join(timeout)` is [`join_timeout`](Child::join_timeout).
///
/// Dropping a handle does not stop the child. A finished child is reaped
/// the next time any handle is asked about it, when another child starts,
/// or by [`active_children`](crate::active_children); at normal exit the
/// process waits for its non-daemonic children, as Python does.
pub struct Child<R> {
    state: Arc<ChildState>,
    decode: DecodeOutput<R>,
}

impl<R> fmt::Debug for Child<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state.ended() {
            None => "started".to_string(),
            Some(Ended::Exited(ExitStatus::Signal(s))) => format!("stopped[signal {s}]"),
            Some(Ended::Exited(ExitStatus::Code(c))) => format!("stopped[{c}]"),
            Some(Ended::Lost) => "stopped[status unavailable]".to_string(),
        };
        f.debug_struct("Child")
            .field("name", &self.state.name)
            .field("pid", &self.state.pid)
            .field("state", &state)
            .field("daemon", &self.state.daemon)
            .finish()
    }
}

impl<R> Child<R> {
    pub(crate) fn new(state: Arc<ChildState>, decode: DecodeOutput<R>) -> Self {
        Child { state, decode }
    }

    /// The child's process id.
    ///
    /// ```
    /// #[multiproc::process_task]
    /// fn my_pid() -> u32 {
    ///     std::process::id()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let child = multiproc::spawn(my_pid, ())?;
    /// let pid = child.pid();
    /// assert_eq!(child.join()?, pid);
    /// # Ok(())
    /// # }
    /// ```
    pub fn pid(&self) -> u32 {
        self.state.pid
    }

    /// The child's name (`Process-1`, `Process-1:2`, or the one you chose).
    ///
    /// ```
    /// use multiproc::Builder;
    ///
    /// #[multiproc::process_task]
    /// fn my_name() -> String {
    ///     multiproc::current_process().name().to_string()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let child = Builder::new(my_name, ()).name("worker").start()?;
    /// assert_eq!(child.name(), "worker");
    /// assert_eq!(child.join()?, "worker"); // the child knows it too
    ///
    /// let child = Builder::new(my_name, ()).start()?;
    /// assert!(child.name().starts_with("Process-"));
    /// child.join()?;
    /// # Ok(())
    /// # }
    /// ```
    // The comment in the signature is what the compiler shows to whoever
    // calls `name("..")` on a started child, under "method defined here".
    pub fn name(&self /* the process has already started: name it on its Builder, before `start` */) -> &str {
        &self.state.name
    }

    /// Whether the child is daemonic.
    ///
    /// ```
    /// use multiproc::Builder;
    ///
    /// #[multiproc::process_task]
    /// fn am_i_a_daemon() -> bool {
    ///     multiproc::current_process().daemon()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let child = Builder::new(am_i_a_daemon, ()).daemon(true).start()?;
    /// assert!(child.daemon());
    /// assert!(child.join()?);
    /// # Ok(())
    /// # }
    /// ```
    // The comment in the signature is what the compiler shows to whoever
    // calls `daemon(true)` on a started child, under "method defined here".
    pub fn daemon(&self, /* the process has already started: set `daemon` on its Builder, before `start` */) -> bool {
        self.state.daemon
    }

    /// The child's authentication key.
    ///
    /// ```
    /// use multiproc::{AuthKey, Builder};
    ///
    /// #[multiproc::process_task]
    /// fn my_key() -> Vec<u8> {
    ///     multiproc::current_process().authkey().as_bytes().to_vec()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// // By default a child has its parent's key.
    /// let child = multiproc::spawn(my_key, ())?;
    /// assert_eq!(child.authkey(), multiproc::current_process().authkey());
    /// child.join()?;
    ///
    /// let child = Builder::new(my_key, ()).authkey(AuthKey::new(*b"secret")).start()?;
    /// assert_eq!(child.authkey().as_bytes(), b"secret");
    /// assert_eq!(child.join()?, b"secret");
    /// # Ok(())
    /// # }
    /// ```
    pub fn authkey(&self) -> &AuthKey {
        &self.state.authkey
    }

    /// A descriptor that becomes readable once the child has ended
    /// (Python's `sentinel`): a pidfd on Linux, for use with
    /// [`wait`](crate::wait) or your own event loop.
    ///
    /// On other Unix systems it is `None`. On Linux:
    ///
    /// ```
    /// #[multiproc::process_task]
    /// fn quick() {}
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let child = multiproc::spawn(quick, ())?;
    /// #[cfg(target_os = "linux")]
    /// {
    ///     use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    ///
    ///     let sentinel = child.sentinel().expect("a child on Linux has a pidfd");
    ///     // Readable once the child has ended, as for any event loop.
    ///     poll(&mut [PollFd::new(sentinel, PollFlags::POLLIN)], PollTimeout::NONE)?;
    ///     assert!(!child.is_alive());
    /// }
    /// child.join()?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(unix)]
    #[cfg_attr(docsrs, doc(cfg(unix)))]
    pub fn sentinel(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.state.sentinel()
    }

    /// A handle that is signalled once the child has ended (Python's
    /// `sentinel`): the process handle, for use with [`wait`](crate::wait)
    /// or `WaitForMultipleObjects`.
    ///
    /// ```
    /// #[multiproc::process_task]
    /// fn quick() {}
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let child = multiproc::spawn(quick, ())?;
    /// let sentinel = child.sentinel().expect("a running child has a process handle");
    /// let _for_an_event_loop = sentinel.try_clone_to_owned()?;
    /// child.join()?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(windows)]
    #[cfg_attr(docsrs, doc(cfg(windows)))]
    pub fn sentinel(&self) -> Option<std::os::windows::io::BorrowedHandle<'_>> {
        self.state.sentinel()
    }

    /// True until the child ends. A finished child is reaped here.
    ///
    /// The answer comes from the process itself (its pidfd, or its process
    /// handle on Windows), so a child that closed its descriptors, replaced
    /// itself with another program (`exec`) or left a helper behind is alive
    /// exactly as long as it runs.
    ///
    /// ```
    /// use multiproc::Connection;
    ///
    /// // Runs until the parent sends something or closes its end.
    /// #[multiproc::process_task]
    /// fn hold(conn: Connection<()>) {
    ///     let _ = conn.recv();
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (here, there) = multiproc::pipe::<()>()?;
    /// let child = multiproc::spawn(hold, (there,))?;
    /// assert!(child.is_alive()); // it is waiting for us
    /// here.send(&())?;
    /// child.wait()?;
    /// assert!(!child.is_alive());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_alive(&self) -> bool {
        self.state.ended().is_none()
    }

    /// How the child ended, or `None` while it runs (and also if it ended
    /// but its status was collected elsewhere: see
    /// [`Error::StatusUnavailable`]).
    ///
    /// ```
    /// use multiproc::ExitStatus;
    ///
    /// #[multiproc::process_task]
    /// fn fail() -> Result<(), String> {
    ///     Err("no".into())
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let child = multiproc::spawn(fail, ())?;
    /// child.wait()?;
    /// assert_eq!(child.status(), Some(ExitStatus::Code(1))); // a returned `Err`
    /// # Ok(())
    /// # }
    /// ```
    pub fn status(&self) -> Option<ExitStatus> {
        match self.state.ended()? {
            Ended::Exited(status) => Some(status),
            Ended::Lost => None,
        }
    }

    /// Python's `exitcode`: `None` while running, the exit code, or `-N`
    /// if signal `N` killed it.
    ///
    /// ```
    /// #[multiproc::process_task]
    /// fn exit_three() {
    ///     std::process::exit(3);
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let child = multiproc::spawn(exit_three, ())?;
    /// child.wait()?;
    /// assert_eq!(child.exitcode(), Some(3));
    /// # Ok(())
    /// # }
    /// ```
    pub fn exitcode(&self) -> Option<i32> {
        self.status().map(ExitStatus::exitcode)
    }

    /// Waits for the child to end (Python's `join()`); may be called any
    /// number of times.
    ///
    /// No lock is held while it blocks: other threads may `terminate`,
    /// `kill` or ask [`is_alive`](Child::is_alive) meanwhile. If the status
    /// was collected elsewhere (SIGCHLD set to `SIG_IGN`, or a
    /// `waitpid(-1)` in other code) the error is
    /// [`Error::StatusUnavailable`].
    ///
    /// ```
    /// #[multiproc::process_task]
    /// fn answer() -> u32 {
    ///     42
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let child = multiproc::spawn(answer, ())?;
    /// assert!(child.wait()?.success());
    /// assert!(child.wait()?.success()); // again: the same status
    /// assert_eq!(child.join()?, 42); // the result is still there
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait(&self) -> Result<ExitStatus, Error> {
        let end = self.state.wait(Wait::Forever)?.expect("an unbounded wait ends with a status");
        self.state.finish_output();
        end.status(&self.state.name)
    }

    /// Waits at most `timeout` (Python's `join(timeout)`): `Ok(None)` if the
    /// child is still running then.
    ///
    /// ```
    /// use multiproc::Connection;
    ///
    /// // Runs until the parent sends something or closes its end.
    /// #[multiproc::process_task]
    /// fn hold(conn: Connection<()>) {
    ///     let _ = conn.recv();
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    ///
    /// let (here, there) = multiproc::pipe::<()>()?;
    /// let child = multiproc::spawn(hold, (there,))?;
    /// // It cannot end before we let it.
    /// assert_eq!(child.join_timeout(Duration::from_millis(10))?, None);
    /// drop(here);
    /// let status = child.join_timeout(Duration::from_secs(60))?.expect("it ends once released");
    /// assert!(status.success());
    /// # Ok(())
    /// # }
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        let end = self.state.wait(Wait::timeout(timeout))?;
        if end.is_some() {
            self.state.finish_output();
        }
        end.map(|end| end.status(&self.state.name)).transpose()
    }

    /// Asks the child to stop: SIGTERM on Unix. Its exit code becomes
    /// `-15`. Signalling a child that already ended does nothing.
    ///
    /// ```
    /// use multiproc::Connection;
    ///
    /// // Runs until the parent sends something or closes its end.
    /// #[multiproc::process_task]
    /// fn hold(conn: Connection<()>) {
    ///     let _ = conn.recv();
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (_here, there) = multiproc::pipe::<()>()?;
    /// let child = multiproc::spawn(hold, (there,))?;
    /// child.terminate()?;
    /// assert_eq!(child.wait()?.exitcode(), -15);
    /// child.terminate()?; // already over: nothing happens
    /// # Ok(())
    /// # }
    /// ```
    pub fn terminate(&self) -> Result<(), Error> {
        self.state.terminate(false)
    }

    /// Kills the child: SIGKILL on Unix, exit code `-9`.
    ///
    /// ```
    /// use multiproc::Connection;
    ///
    /// // Runs until the parent sends something or closes its end.
    /// #[multiproc::process_task]
    /// fn hold(conn: Connection<()>) {
    ///     let _ = conn.recv();
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (_here, there) = multiproc::pipe::<()>()?;
    /// let child = multiproc::spawn(hold, (there,))?;
    /// child.kill()?;
    /// let code = child.wait()?.exitcode();
    /// # #[cfg(unix)]
    /// assert_eq!(code, -9);
    /// # #[cfg(windows)]
    /// # assert_eq!(code, -15);
    /// # Ok(())
    /// # }
    /// ```
    pub fn kill(&self) -> Result<(), Error> {
        self.state.terminate(true)
    }

    /// Releases the handle of a finished child. A running child is handed
    /// back in the error (Python: "Cannot close a process while it is
    /// still running").
    ///
    /// ```
    /// use multiproc::Connection;
    ///
    /// // Runs until the parent sends something or closes its end.
    /// #[multiproc::process_task]
    /// fn hold(conn: Connection<()>) {
    ///     let _ = conn.recv();
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (here, there) = multiproc::pipe::<()>()?;
    /// let child = multiproc::spawn(hold, (there,))?;
    /// let child = child.close().expect_err("it is still running").into_child();
    /// drop(here); // let it end
    /// child.wait()?;
    /// child.close()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn close(self) -> Result<(), CloseError<R>> {
        if self.is_alive() {
            return Err(CloseError { child: self });
        }
        Ok(())
    }
}

impl<R: 'static> Child<R> {
    /// Waits for the child and returns what its target returned.
    ///
    /// A panic in the child is [`Error::Panicked`]; ending without a
    /// result (`exit(n)`, a signal) is [`Error::NoResult`]. A target that
    /// returns `Result<T, E>` gives `Ok(Err(e))` here for its `Err`, and its
    /// exit code is 1.
    ///
    /// If the exit status was collected elsewhere (see
    /// [`Error::StatusUnavailable`]) but the result had arrived, the result
    /// is returned all the same.
    ///
    /// ```
    /// #[multiproc::process_task]
    /// fn halve(n: u32) -> u32 {
    ///     assert!(n % 2 == 0, "{n} is odd");
    ///     n / 2
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// assert_eq!(multiproc::spawn(halve, (10,))?.join()?, 5);
    ///
    /// match multiproc::spawn(halve, (3,))?.join() {
    ///     Err(multiproc::Error::Panicked { panic, .. }) => assert_eq!(panic.message, "3 is odd"),
    ///     other => panic!("expected a panic, got {other:?}"),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn join(self) -> Result<R, Error> {
        let result = self.state.join(self.decode);
        self.state.finish_output();
        result
    }
}

impl<R> Drop for Child<R> {
    fn drop(&mut self) {
        // Reap now if it is over; otherwise the table keeps it.
        if self.state.ended().is_some() {
            table::reap();
        }
    }
}

/// The error of [`Child::close`] on a running child, which it gives back.
pub struct CloseError<R> {
    child: Child<R>,
}

impl<R> CloseError<R> {
    /// The child, still running.
    ///
    /// See [`Child::close`] for an example.
    ///
    /// ```
    /// use multiproc::Connection;
    ///
    /// // Runs until the parent sends something or closes its end.
    /// #[multiproc::process_task]
    /// fn hold(conn: Connection<()>) {
    ///     let _ = conn.recv();
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (here, there) = multiproc::pipe::<()>()?;
    /// let child = multiproc::spawn(hold, (there,))?;
    /// let child = match child.close() {
    ///     Ok(()) => unreachable!("it waits for us"),
    ///     Err(e) => e.into_child(),
    /// };
    /// drop(here);
    /// child.wait()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_child(self) -> Child<R> {
        self.child
    }
}

impl<R> fmt::Debug for CloseError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloseError").field("child", &self.child).finish()
    }
}

impl<R> fmt::Display for CloseError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Error::StillRunning, f)
    }
}

impl<R> std::error::Error for CloseError<R> {}
