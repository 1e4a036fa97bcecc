//! The connection as the platform's handle: `Debug`, the handle traits
//! (a descriptor on Unix, a pipe handle on Windows), and the handle's
//! passage to a child as an argument.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{AsFd, BorrowedFd, Connection, OwnedFd};
use crate::wire::handles;

impl<T, M> fmt::Debug for Connection<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.fd)
            .field("mode", &std::any::type_name::<M>().rsplit("::").next().unwrap_or(""))
            .field("broken", &self.broken.get())
            .finish()
    }
}

/// The end's socket, for use with other APIs (`poll`ing several at once,
/// say). Reading or writing it directly breaks the framing.
///
/// ```
/// use std::os::fd::AsFd;
///
/// let (a, _b) = multiproc::pipe::<()>()?;
/// let copy = a.as_fd().try_clone_to_owned()?;
/// # drop(copy);
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
impl<T, M> AsFd for Connection<T, M> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The end's pipe handle, for `multiproc::wait` (crate-internal on
/// Windows).
#[cfg(windows)]
#[cfg_attr(docsrs, doc(cfg(windows)))]
impl<T, M> AsFd for Connection<T, M> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Gives up the framing and returns the end's socket.
///
/// ```
/// use std::io::Write;
/// use std::os::fd::OwnedFd;
/// use std::os::unix::net::UnixStream;
///
/// let (a, b) = multiproc::pipe::<()>()?;
/// let mut raw = UnixStream::from(OwnedFd::from(a));
/// raw.write_all(b"not a frame, not a frame")?;
/// assert!(matches!(b.recv_bytes(), Err(multiproc::ConnectionError::Malformed(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
impl<T, M> From<Connection<T, M>> for OwnedFd {
    fn from(conn: Connection<T, M>) -> OwnedFd {
        conn.fd
    }
}

/// Wraps a connected stream socket (one end of a `socketpair`, a
/// `UnixStream`) whose peer speaks this framing.
///
/// ```
/// use std::os::fd::OwnedFd;
/// use std::os::unix::net::UnixStream;
///
/// use multiproc::Connection;
///
/// let (x, y) = UnixStream::pair()?;
/// let (a, b): (Connection<String>, Connection<String>) = (OwnedFd::from(x).into(), OwnedFd::from(y).into());
/// a.send(&"hi".to_string())?;
/// assert_eq!(b.recv()?, "hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
impl<T, M> From<OwnedFd> for Connection<T, M> {
    fn from(fd: OwnedFd) -> Self {
        Connection::new(fd)
    }
}

/// The end's pipe handle, for use with other APIs. Reading or writing it
/// directly breaks the framing; it is open for overlapped I/O.
///
/// ```
/// use std::os::windows::io::AsHandle;
///
/// let (a, _b) = multiproc::pipe::<()>()?;
/// let copy = a.as_handle().try_clone_to_owned()?;
/// # drop(copy);
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(windows)]
#[cfg_attr(docsrs, doc(cfg(windows)))]
impl<T, M> std::os::windows::io::AsHandle for Connection<T, M> {
    fn as_handle(&self) -> std::os::windows::io::BorrowedHandle<'_> {
        self.fd.as_fd()
    }
}

/// Gives up the framing and returns the end's pipe handle (open for
/// overlapped I/O).
#[cfg(windows)]
#[cfg_attr(docsrs, doc(cfg(windows)))]
impl<T, M> From<Connection<T, M>> for std::os::windows::io::OwnedHandle {
    fn from(conn: Connection<T, M>) -> Self {
        conn.fd
    }
}

/// Wraps a pipe handle whose peer speaks this framing (an end given up
/// with `OwnedHandle::from(connection)`, say).
///
/// ```
/// use std::os::windows::io::OwnedHandle;
///
/// use multiproc::Connection;
///
/// let (a, b) = multiproc::pipe::<String>()?;
/// let a: Connection<String> = OwnedHandle::from(a).into();
/// a.send(&"hi".to_string())?;
/// assert_eq!(b.recv()?, "hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(windows)]
#[cfg_attr(docsrs, doc(cfg(windows)))]
impl<T, M> From<std::os::windows::io::OwnedHandle> for Connection<T, M> {
    fn from(h: std::os::windows::io::OwnedHandle) -> Self {
        Connection::new(h)
    }
}

/// Encodes the end as an index into the handle table of a child being
/// started; only possible while a task's arguments are encoded (see
/// [`Connection`]). Anywhere else it is an error.
///
/// ```
/// let (a, _b) = multiproc::pipe::<()>()?;
/// let (c, _d) = multiproc::pipe::<multiproc::Connection<()>>()?;
/// assert!(matches!(c.send(&a), Err(multiproc::ConnectionError::Encode(_))));
/// # Ok::<(), std::io::Error>(())
/// ```
impl<T, M> Serialize for Connection<T, M> {
    #[cfg_attr(
        unix,
        allow(clippy::useless_conversion, reason = "a passed handle is an `OwnedFd` on Unix, not on Windows")
    )]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let index = handles::share(|| self.fd.try_clone().map(Into::into)).map_err(serde::ser::Error::custom)?;
        serializer.serialize_u32(index)
    }
}

/// Takes the end the parent passed at this index, in a child that is
/// decoding its arguments. Anywhere else it is an error.
///
/// ```
/// use multiproc::{Builder, Connection, process_task};
///
/// #[process_task]
/// fn hello(conn: Connection<String>) {
///     conn.send(&"hello from the child".to_string()).unwrap();
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (here, there) = multiproc::pipe()?;
/// Builder::new(hello, (there,)).start()?.join()?;
/// assert_eq!(here.recv()?, "hello from the child");
/// # Ok(())
/// # }
/// ```
impl<'de, T, M> Deserialize<'de> for Connection<T, M> {
    #[cfg_attr(
        unix,
        allow(clippy::useless_conversion, reason = "a passed handle is an `OwnedFd` on Unix, not on Windows")
    )]
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let index = u32::deserialize(deserializer)?;
        let fd = handles::claim(index).map_err(serde::de::Error::custom)?;
        let fd = OwnedFd::try_from(fd).map_err(serde::de::Error::custom)?;
        Ok(Connection::new(fd))
    }
}
