//! OS handles as task arguments: files, listeners, streams and raw
//! descriptors reach the child, and nothing else does.

#![cfg(target_os = "linux")]

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use multiproc::{Handle, process_task};
use multiproc_tests::open_fds;

/// Uses every handle it got, then reports its descriptor table.
#[process_task]
fn use_handles(
    file: Handle<File>,
    listener: Handle<TcpListener>,
    stream: Handle<UnixStream>,
    raw: Handle<OwnedFd>,
) -> Vec<i32> {
    let fds = open_fds();
    file.into_inner().write_all(b"written by the child").unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.write_all(b"accepted").unwrap();
    let mut stream = stream.into_inner();
    stream.write_all(b"stream").unwrap();
    drop(UnixStream::from(raw.into_inner()));
    fds
}

#[test]
fn handles_reach_the_child_and_nothing_else_does() {
    let dir = multiproc_tests::scratch_dir("handles");
    let mut file = File::options().read(true).write(true).create(true).truncate(true).open(dir.join("f")).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let (raw_ours, raw_theirs) = UnixStream::pair().unwrap();
    // An unrelated socket that must not reach the child.
    let _unrelated = TcpListener::bind("127.0.0.1:0").unwrap();

    let child = multiproc::spawn(
        use_handles,
        (
            Handle::new(file.try_clone().unwrap()),
            Handle::new(listener),
            Handle::new(theirs),
            Handle::new(OwnedFd::from(raw_theirs)),
        ),
    )
    .unwrap();
    let mut conn = TcpStream::connect(addr).unwrap();
    let mut buf = String::new();
    conn.read_to_string(&mut buf).unwrap();
    assert_eq!(buf, "accepted");
    let mut got = [0u8; 6];
    ours.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"stream");
    let fds = child.join().unwrap();
    // stdin, stdout, stderr, the channel, four handles, and the descriptor
    // the child used to list its table.
    assert_eq!(&fds[..8], &[0, 1, 2, 3, 4, 5, 6, 7], "{fds:?}");
    assert!(fds.len() <= 9, "the child got more than its handles: {fds:?}");
    // The child's copy of the raw descriptor is closed: EOF on ours.
    let mut rest = Vec::new();
    (&raw_ours).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    file.rewind().unwrap();
    let mut content = String::new();
    file.read_to_string(&mut content).unwrap();
    assert_eq!(content, "written by the child");
}

#[test]
fn a_handle_cannot_travel_through_a_pipe() {
    let (a, _b) = multiproc::pipe::<Handle<File>>().unwrap();
    let f = File::open("/dev/null").unwrap();
    let err = a.send(&Handle::new(f)).unwrap_err();
    assert!(err.to_string().contains("can only be shared with a child process"), "{err}");
}
