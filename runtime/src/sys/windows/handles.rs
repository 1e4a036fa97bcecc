//! Handles as task arguments on Windows.
//!
//! Nothing is inherited: once the child exists (it blocks reading its
//! bootstrap frame), each collected handle is put into it from outside,
//! and the bootstrap frame tells the child what it got, one entry per
//! handle (`Bootstrap::handle_info`):
//!
//! - a kernel handle (file, pipe, …) is `DuplicateHandle`d into the child
//!   process; the entry is [`KERNEL`] and the handle value in the child;
//! - a socket is `WSADuplicateSocketW`ed for the child's pid; the entry is
//!   [`SOCKET`] and the `WSAPROTOCOL_INFOW` the child turns into its own
//!   socket with `WSASocketW(FROM_PROTOCOL_INFO, …)`.
//!
//! A child that dies before taking its handles takes them with it: they
//! live in its handle table (or, for sockets, are released with it).

use std::fs::File;
use std::io;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::windows::io::{AsHandle, AsRawHandle, AsSocket, FromRawHandle, FromRawSocket, OwnedHandle, OwnedSocket};
use std::ptr::null_mut;
use std::sync::Once;

use windows_sys::Win32::Foundation::{DUPLICATE_SAME_ACCESS, DuplicateHandle, GetHandleInformation, HANDLE};
use windows_sys::Win32::Networking::WinSock::{
    FROM_PROTOCOL_INFO, INVALID_SOCKET, WSA_FLAG_NO_HANDLE_INHERIT, WSA_FLAG_OVERLAPPED, WSADATA, WSADuplicateSocketW,
    WSAGetLastError, WSAPROTOCOL_INFOW, WSASocketW, WSAStartup,
};
use windows_sys::Win32::System::Threading::GetCurrentProcess;

use super::RawChild;
use crate::sys::Shareable;

/// An OS handle passed to a child as a task argument: a kernel handle or a
/// socket, which Windows passes to another process by different means.
#[derive(Debug)]
pub enum OsHandle {
    /// A kernel object: a file, a pipe, a process, …
    Handle(OwnedHandle),
    /// A Winsock socket.
    Socket(OwnedSocket),
}

/// The tag of a `handle_info` entry for a kernel handle.
const KERNEL: u8 = 0;
/// The tag of a `handle_info` entry for a socket.
const SOCKET: u8 = 1;

fn wsa_error() -> io::Error {
    // SAFETY: no preconditions.
    io::Error::from_raw_os_error(unsafe { WSAGetLastError() })
}

/// Puts `handles` into the started `child` and returns, for each, what the
/// child needs to take it over.
pub(crate) fn transfer(child: &RawChild, handles: &[OsHandle]) -> io::Result<Vec<Vec<u8>>> {
    handles
        .iter()
        .map(|h| match h {
            OsHandle::Handle(h) => {
                let mut theirs: HANDLE = null_mut();
                // SAFETY: `h` is a handle of this process and the process
                // handle has every access right (CreateProcessW gave it);
                // `theirs` is a valid out-pointer. The copy is not
                // inheritable, so it goes no further than the child.
                let ok = unsafe {
                    DuplicateHandle(
                        GetCurrentProcess(),
                        h.as_raw_handle(),
                        child.process.as_raw_handle(),
                        &mut theirs,
                        0,
                        0,
                        DUPLICATE_SAME_ACCESS,
                    )
                };
                if ok == 0 {
                    return Err(io::Error::last_os_error());
                }
                let mut entry = vec![KERNEL];
                entry.extend((theirs as usize as u64).to_le_bytes());
                Ok(entry)
            }
            OsHandle::Socket(s) => {
                use std::os::windows::io::AsRawSocket;
                // SAFETY: plain data, an out-parameter.
                let mut info: WSAPROTOCOL_INFOW = unsafe { std::mem::zeroed() };
                // SAFETY: a valid socket of this process and out-pointer.
                if unsafe { WSADuplicateSocketW(s.as_raw_socket() as usize, child.pid, &mut info) } != 0 {
                    return Err(wsa_error());
                }
                let mut entry = vec![SOCKET];
                // SAFETY: WSAPROTOCOL_INFOW is plain data without padding
                // holes the kernel relies on; its bytes are copied as is.
                entry.extend_from_slice(unsafe {
                    std::slice::from_raw_parts(
                        (&info as *const WSAPROTOCOL_INFOW).cast::<u8>(),
                        size_of::<WSAPROTOCOL_INFOW>(),
                    )
                });
                Ok(entry)
            }
        })
        .collect()
}

/// Takes ownership, in a child, of the `count` handles its parent put into
/// it, described by `info` (see [`transfer`]).
pub(crate) fn adopt(count: u32, info: &[Vec<u8>]) -> io::Result<Vec<OsHandle>> {
    (0..count as usize)
        .map(|i| {
            let entry = info.get(i).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("handle {i} was not passed (no entry for it)"))
            })?;
            let malformed = || io::Error::new(io::ErrorKind::InvalidInput, format!("handle {i}: malformed entry"));
            match entry.split_first() {
                Some((&KERNEL, value)) => {
                    let value = u64::from_le_bytes(value.try_into().map_err(|_| malformed())?);
                    let h = value as usize as HANDLE;
                    let mut flags = 0u32;
                    // SAFETY: only inspects the handle table; an invalid
                    // value makes it fail.
                    if unsafe { GetHandleInformation(h, &mut flags) } == 0 {
                        let e = io::Error::last_os_error();
                        return Err(io::Error::new(e.kind(), format!("handle {i} was not passed: {e}")));
                    }
                    // SAFETY: the parent put this handle into our table for
                    // us alone; nothing else in this process owns it.
                    Ok(OsHandle::Handle(unsafe { OwnedHandle::from_raw_handle(h) }))
                }
                Some((&SOCKET, bytes)) if bytes.len() == size_of::<WSAPROTOCOL_INFOW>() => {
                    winsock_init();
                    // SAFETY: plain data; every bit pattern is a value.
                    let mut info: WSAPROTOCOL_INFOW = unsafe { std::mem::zeroed() };
                    // SAFETY: `bytes` has exactly the size of `info`.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            bytes.as_ptr(),
                            (&mut info as *mut WSAPROTOCOL_INFOW).cast::<u8>(),
                            bytes.len(),
                        )
                    };
                    // SAFETY: a protocol info filled by WSADuplicateSocketW
                    // in the parent, for this process.
                    let s = unsafe {
                        WSASocketW(
                            FROM_PROTOCOL_INFO,
                            FROM_PROTOCOL_INFO,
                            FROM_PROTOCOL_INFO,
                            &info,
                            0,
                            WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT,
                        )
                    };
                    if s == INVALID_SOCKET {
                        let e = wsa_error();
                        return Err(io::Error::new(e.kind(), format!("socket {i} was not passed: {e}")));
                    }
                    // SAFETY: a socket just created for us alone.
                    Ok(OsHandle::Socket(unsafe { OwnedSocket::from_raw_socket(s as _) }))
                }
                _ => Err(malformed()),
            }
        })
        .collect()
}

/// Starts Winsock in this process (std does it only on its first network
/// call). The reference is never released.
fn winsock_init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // SAFETY: plain data, an out-parameter.
        let mut data: WSADATA = unsafe { std::mem::zeroed() };
        // SAFETY: a valid out-pointer; version 2.2.
        unsafe { WSAStartup(0x202, &mut data) };
    });
}

fn mismatch(expected: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("the handle passed is not {expected}"))
}

/// Kernel-handle types: `File`, `OwnedHandle`, and std's anonymous pipes.
macro_rules! kernel_handle {
    ($($t:ty),*) => {$(
        impl Shareable for $t {
            fn duplicate(&self) -> io::Result<OsHandle> {
                self.as_handle().try_clone_to_owned().map(OsHandle::Handle)
            }

            fn adopt(handle: OsHandle) -> io::Result<Self> {
                match handle {
                    OsHandle::Handle(h) => Ok(<$t>::from(h)),
                    OsHandle::Socket(_) => Err(mismatch("a kernel handle")),
                }
            }
        }
    )*};
}

/// Socket types: std's TCP and UDP sockets and `OwnedSocket`.
macro_rules! socket {
    ($($t:ty),*) => {$(
        impl Shareable for $t {
            fn duplicate(&self) -> io::Result<OsHandle> {
                self.as_socket().try_clone_to_owned().map(OsHandle::Socket)
            }

            fn adopt(handle: OsHandle) -> io::Result<Self> {
                match handle {
                    OsHandle::Socket(s) => Ok(<$t>::from(s)),
                    OsHandle::Handle(_) => Err(mismatch("a socket")),
                }
            }
        }
    )*};
}

kernel_handle!(File, OwnedHandle, std::io::PipeReader, std::io::PipeWriter);
socket!(TcpStream, TcpListener, UdpSocket, OwnedSocket);
