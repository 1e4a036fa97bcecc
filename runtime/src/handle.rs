//! OS handles as task arguments: Python's `Process(target=talk,
//! args=(conn, addr))` with a socket.

use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::sys::Shareable;
use crate::wire::handles;

/// An OS handle — a socket, a listener, a file, a raw descriptor — that
/// can be an argument of a task or a field of a process type. The handle
/// itself travels out of band (it is duplicated into the child at spawn);
/// only its position in the child's handle table is encoded. Exactly the
/// handles among the arguments reach the child, nothing else. The types
/// that can be passed are listed under [`Shareable`]; on Windows they
/// include std's sockets.
///
/// As in Python, a handle can only be shared with a child this way:
/// serializing one anywhere else (into a pipe, say) is an error.
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::{TcpListener, TcpStream};
///
/// use multiproc::{Handle, process_task};
///
/// #[process_task]
/// fn shout(stream: Handle<TcpStream>) {
///     let mut stream = stream.into_inner();
///     let mut buf = [0u8; 5];
///     stream.read_exact(&mut buf).unwrap();
///     stream.write_all(&buf.to_ascii_uppercase()).unwrap();
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let mut mine = TcpStream::connect(listener.local_addr()?)?;
/// let (theirs, _) = listener.accept()?;
/// let child = multiproc::spawn(shout, (Handle::new(theirs),))?;
/// mine.write_all(b"hello")?;
/// let mut reply = [0u8; 5];
/// mine.read_exact(&mut reply)?;
/// assert_eq!(&reply, b"HELLO");
/// child.join()?;
/// # Ok(())
/// # }
/// ```
pub struct Handle<T>(T);

impl<T> Handle<T> {
    /// Wraps a handle to pass it to a child.
    ///
    /// ```
    /// use std::net::TcpListener;
    ///
    /// let handle = multiproc::Handle::new(TcpListener::bind("127.0.0.1:0")?);
    /// let _addr = handle.local_addr()?; // it derefs to what it wraps
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(inner: T) -> Self {
        Handle(inner)
    }

    /// The handle itself.
    ///
    /// ```
    /// use std::net::TcpListener;
    ///
    /// let handle = multiproc::Handle::new(TcpListener::bind("127.0.0.1:0")?);
    /// let listener: TcpListener = handle.into_inner();
    /// # drop(listener);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Handle<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Handle<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: fmt::Debug> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Handle").field(&self.0).finish()
    }
}

impl<T> From<T> for Handle<T> {
    fn from(inner: T) -> Self {
        Handle(inner)
    }
}

/// Duplicates the handle for the child being started and encodes its
/// index; an error anywhere but in a task's arguments.
impl<T: Shareable> Serialize for Handle<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let index = handles::share(|| self.0.duplicate()).map_err(serde::ser::Error::custom)?;
        serializer.serialize_u32(index)
    }
}

/// Takes the handle the parent passed at this index, in a child that is
/// decoding its arguments; an error anywhere else.
impl<'de, T: Shareable> Deserialize<'de> for Handle<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let index = u32::deserialize(deserializer)?;
        let handle = handles::claim(index).map_err(serde::de::Error::custom)?;
        T::adopt(handle).map(Handle).map_err(serde::de::Error::custom)
    }
}
