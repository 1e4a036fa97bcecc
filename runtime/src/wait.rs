//! Waiting on several connections and processes at once (Python's
//! `multiprocessing.connection.wait`).

use std::io;
#[cfg(unix)]
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use crate::pipe::{Connection, Readable};
use crate::process::Child;
#[cfg(windows)]
use crate::sys::imp::pipe::{AsFd, BorrowedFd};

/// Something [`wait`] can wait on: a [`Connection`] (ready when a receive
/// would not block: a message or EOF is there) or a [`Child`] (ready when
/// the process has ended).
pub trait Waitable {
    #[doc(hidden)]
    fn __sentinel(&self) -> Option<BorrowedFd<'_>>;
}

impl<T, M: Readable> Waitable for Connection<T, M> {
    fn __sentinel(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }
}

impl<R> Waitable for Child<R> {
    fn __sentinel(&self) -> Option<BorrowedFd<'_>> {
        self.sentinel()
    }
}

/// Waits until at least one of `objects` is ready, or `timeout` passes
/// (`None`: no limit), and returns the indices of the ready ones — empty
/// on timeout. Nothing is consumed: receive from a ready connection, join
/// a ready child.
///
/// ```
/// use std::time::Duration;
/// use multiproc::{Waitable, process_task};
///
/// #[process_task]
/// fn answer(conn: multiproc::Connection<u32>) {
///     conn.send(&42).unwrap();
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (idle, _keep) = multiproc::pipe::<u32>()?;
/// let (here, there) = multiproc::pipe::<u32>()?;
/// let child = multiproc::spawn(answer, (there,))?;
/// let objects: [&dyn Waitable; 2] = [&idle, &here];
/// assert_eq!(multiproc::wait(&objects, Some(Duration::from_secs(10)))?, [1]);
/// assert_eq!(here.recv()?, 42);
/// let ready = multiproc::wait(&[&child], None)?; // returns once it has ended
/// assert_eq!(ready, [0]);
/// child.join()?;
/// # Ok(())
/// # }
/// ```
pub fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>) -> io::Result<Vec<usize>> {
    let fds: Vec<BorrowedFd<'_>> = objects
        .iter()
        .map(|o| {
            o.__sentinel()
                .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "this object has no sentinel to wait on"))
        })
        .collect::<io::Result<_>>()?;
    // A receive leaves every unread byte on the OS object, so the OS knows
    // all there is to know.
    crate::sys::imp::wait_any(&fds, timeout)
}
