//! Pipes and connections, with real processes: a connection passed as a
//! task argument, message boundaries, EOF only when every copy of the
//! other end is closed, dead peers, bad frames, polling, and the child's
//! descriptor table. Tests of Unix specifics (raw sockets, SIGPIPE,
//! descriptors, hand-fed bootstrap frames) are Unix-only; the rest also
//! runs on Windows.

#[cfg(unix)]
use std::io::{Read, Write};
#[cfg(unix)]
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use multiproc::{Builder, Connection, ConnectionError, Process, ReadOnly, WriteOnly, pipe, pipe_one_way, process_task};
use serde::{Deserialize, Serialize};

#[process_task]
fn shout(conn: Connection<String>) -> String {
    let heard = conn.recv().expect("a message from the parent");
    conn.send(&heard.to_uppercase()).expect("reply");
    heard
}

#[test]
fn child_replies_through_a_pipe_argument() {
    let (here, there) = pipe::<String>().unwrap();
    let child = Builder::new(shout, (there,)).start().unwrap();
    here.send(&"hello".to_string()).unwrap();
    assert_eq!(here.recv().unwrap(), "HELLO");
    assert_eq!(child.join().unwrap(), "hello");
}

#[derive(Process, Serialize, Deserialize)]
struct Summer {
    input: Connection<u64, ReadOnly>,
    output: Connection<u64, WriteOnly>,
}

impl multiproc::Process for Summer {
    fn run(&mut self) {
        let mut total = 0;
        while let Ok(n) = self.input.recv() {
            total += n;
        }
        self.output.send(&total).unwrap();
    }
}

#[test]
fn connections_can_be_fields_of_a_process_type() {
    let (input, feed) = pipe_one_way::<u64>().unwrap();
    let (results, output) = pipe_one_way::<u64>().unwrap();
    let child = Builder::process(Summer { input, output }).start().unwrap();
    for n in 1..=10 {
        feed.send(&n).unwrap();
    }
    drop(feed);
    assert_eq!(results.recv().unwrap(), 55);
    child.join().unwrap();
}

#[process_task]
fn send_parts(conn: Connection<(), WriteOnly>) {
    for part in [&b"a"[..], b"b", b"", b"cd"] {
        conn.send_bytes(part).unwrap();
    }
}

#[test]
fn message_boundaries_are_kept_and_an_empty_message_is_a_message() {
    let (reader, writer) = pipe_one_way::<()>().unwrap();
    Builder::new(send_parts, (writer,)).start().unwrap().join().unwrap();
    // Everything is queued by now: still four messages, never "abcd".
    assert_eq!(reader.recv_bytes().unwrap(), b"a");
    assert_eq!(reader.recv_bytes().unwrap(), b"b");
    assert!(reader.poll(Some(Duration::ZERO)).unwrap(), "an empty message is data");
    assert_eq!(reader.recv_bytes().unwrap(), b"");
    assert_eq!(reader.recv_bytes().unwrap(), b"cd");
    assert!(matches!(reader.recv_bytes(), Err(ConnectionError::Eof)));
}

#[process_task]
fn send_one_and_exit(conn: Connection<u32, WriteOnly>) {
    conn.send(&7).unwrap();
}

#[test]
fn eof_only_after_every_copy_of_the_other_end_is_closed() {
    let (reader, writer) = pipe_one_way::<u32>().unwrap();
    let child = Builder::new(send_one_and_exit, (writer.try_clone().unwrap(),)).start().unwrap();
    child.join().unwrap();
    assert_eq!(reader.recv().unwrap(), 7);
    // The child's copy is gone but ours is open: no EOF, just nothing yet.
    assert!(!reader.poll(Some(Duration::from_millis(100))).unwrap());
    drop(writer);
    assert!(reader.poll(Some(Duration::from_secs(10))).unwrap(), "EOF makes poll ready");
    assert!(matches!(reader.recv(), Err(ConnectionError::Eof)));
    assert!(matches!(reader.recv(), Err(ConnectionError::Eof)), "EOF stays EOF");
}

#[process_task]
fn drop_at_once(_conn: Connection<String, ReadOnly>) {}

#[test]
fn writing_to_a_dead_peer_is_an_error() {
    let (reader, writer) = pipe_one_way::<String>().unwrap();
    Builder::new(drop_at_once, (reader,)).start().unwrap().join().unwrap();
    match writer.send(&"anyone there?".to_string()) {
        Err(ConnectionError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe),
        other => panic!("{other:?}"),
    }
}

#[cfg(unix)]
/// With SIGPIPE at its default action (which kills), a write to a closed
/// pipe must still come back as an error.
#[process_task]
fn write_to_a_dead_peer_with_default_sigpipe() -> String {
    // SAFETY: restoring the default disposition of a signal.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let (a, b) = pipe::<u8>().unwrap();
    drop(b);
    match a.send(&1) {
        Err(e) => e.to_string(),
        Ok(()) => "no error".into(),
    }
}

#[cfg(unix)]
#[test]
fn a_dead_peer_never_raises_sigpipe() {
    let child = multiproc::spawn(write_to_a_dead_peer_with_default_sigpipe, ()).unwrap();
    let message = child.join().expect("the child survived its write");
    assert!(message.to_lowercase().contains("broken pipe"), "{message}");
}

/// A real frame header (for an empty message), taken off the wire.
#[cfg(unix)]
fn header() -> Vec<u8> {
    let (a, b) = pipe::<()>().unwrap();
    a.send_bytes(b"").unwrap();
    drop(a);
    let mut raw = UnixStream::from(OwnedFd::from(b));
    let mut h = Vec::new();
    raw.read_to_end(&mut h).unwrap();
    h
}

#[cfg(unix)]
fn header_claiming(len: u64) -> Vec<u8> {
    let mut h = header();
    let n = h.len();
    h[n - 8..].copy_from_slice(&len.to_le_bytes());
    h
}

/// A connection whose peer is a raw socket.
#[cfg(unix)]
fn raw_pair<T>() -> (Connection<T>, UnixStream) {
    let (raw, conn) = UnixStream::pair().unwrap();
    (OwnedFd::from(conn).into(), raw)
}

#[cfg(unix)]
#[test]
fn a_huge_length_prefix_is_a_typed_error_not_an_allocation() {
    let (conn, mut raw) = raw_pair::<()>();
    raw.write_all(&header_claiming(1 << 60)).unwrap();
    match conn.recv_bytes() {
        Err(ConnectionError::TooLarge { len, .. }) => assert_eq!(len, 1 << 60),
        other => panic!("{other:?}"),
    }
    raw.write_all(&header_claiming(0)).unwrap();
    assert!(matches!(conn.recv_bytes(), Err(ConnectionError::Broken)), "boundaries are lost for good");
}

#[cfg(unix)]
#[test]
fn garbage_is_a_typed_error() {
    let (conn, mut raw) = raw_pair::<String>();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(matches!(conn.recv(), Err(ConnectionError::Malformed(_))));
    assert!(matches!(conn.recv(), Err(ConnectionError::Broken)));
}

#[cfg(unix)]
#[test]
fn truncated_frames_are_typed_errors() {
    let (conn, mut raw) = raw_pair::<()>();
    let mut frame = header_claiming(10);
    frame.extend_from_slice(b"abc");
    raw.write_all(&frame).unwrap();
    drop(raw);
    match conn.recv_bytes() {
        Err(ConnectionError::Truncated { got, want }) => assert_eq!((got, want), (3, 10)),
        other => panic!("{other:?}"),
    }

    let (conn, mut raw) = raw_pair::<()>();
    raw.write_all(&header()[..5]).unwrap();
    drop(raw);
    match conn.recv_bytes_into(&mut [0; 16]) {
        Err(ConnectionError::Truncated { got, want }) => {
            assert_eq!((got, want), (5, header().len() as u64))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_body_of_the_wrong_type_is_a_typed_error_and_the_connection_goes_on() {
    let (a, b) = pipe::<String>().unwrap();
    a.send_bytes(&[3, 0xff, 0xfe, 0xfd]).unwrap(); // three bytes, not UTF-8
    a.send_bytes(&[200]).unwrap(); // a length with its bytes missing
    a.send(&"fine".to_string()).unwrap();
    assert!(matches!(b.recv(), Err(ConnectionError::Decode(_))));
    assert!(matches!(b.recv(), Err(ConnectionError::Decode(_))));
    assert_eq!(b.recv().unwrap(), "fine");
}

#[test]
fn recv_bytes_into_a_short_buffer_returns_the_whole_message() {
    let (a, b) = pipe::<()>().unwrap();
    let message: Vec<u8> = (0..100).collect();
    a.send_bytes(&message).unwrap();
    a.send_bytes(b"next").unwrap();
    let mut buf = [0u8; 10];
    match b.recv_bytes_into(&mut buf) {
        Err(ConnectionError::BufferTooShort { message: got, capacity }) => {
            assert_eq!((got, capacity), (message, 10));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(buf, [0; 10], "the buffer is untouched");
    assert_eq!(b.recv_bytes_into(&mut buf[3..]).unwrap(), 4);
    assert_eq!(&buf[3..7], b"next");
}

#[process_task]
fn send_after(delay_ms: u64, conn: Connection<u8, WriteOnly>) {
    std::thread::sleep(Duration::from_millis(delay_ms));
    conn.send(&1).unwrap();
}

#[test]
fn poll_waits_at_most_its_timeout() {
    let (reader, writer) = pipe_one_way::<u8>().unwrap();
    let keep = writer.try_clone().unwrap();
    let start = Instant::now();
    assert!(!reader.poll(Some(Duration::from_millis(150))).unwrap());
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert!(!reader.poll(Some(Duration::ZERO)).unwrap());

    let child = Builder::new(send_after, (100, writer)).start().unwrap();
    assert!(reader.poll(Some(Duration::from_secs(30))).unwrap());
    assert!(reader.poll(None).unwrap(), "polling consumes nothing");
    assert_eq!(reader.recv().unwrap(), 1);
    child.join().unwrap();
    drop(keep);
}

#[cfg(unix)]
#[derive(Debug, Serialize, Deserialize)]
struct FdFacts {
    fds: Vec<i32>,
    cloexec: Vec<bool>,
}

/// The child's descriptors (without the one listing them) and whether
/// each is close-on-exec.
#[cfg(unix)]
#[process_task]
fn fd_facts(a: Connection<String>, b: Connection<u8, WriteOnly>) -> FdFacts {
    let me = Some(std::path::PathBuf::from(format!("/proc/{}/fd", std::process::id())));
    let mut fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).ok() != me)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    // SAFETY: F_GETFD only reads the descriptor table.
    let cloexec = fds.iter().map(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC != 0).collect();
    a.send(&format!("a is {}", a.as_fd().as_raw_fd())).unwrap();
    b.send(&u8::try_from(b.as_fd().as_raw_fd()).unwrap()).unwrap();
    FdFacts { fds, cloexec }
}

#[cfg(target_os = "linux")]
#[test]
fn the_child_gets_descriptors_0_to_3_and_the_passed_handles_only() {
    // Some clutter that must not leak: plain descriptors, inheritable ones.
    let (_x, _y) = pipe::<()>().unwrap();
    let stray = std::fs::File::open("/dev/null").unwrap();
    // SAFETY: clearing FD_CLOEXEC on a descriptor we own.
    unsafe { libc::fcntl(stray.as_raw_fd(), libc::F_SETFD, 0) };

    let (a_here, a_there) = pipe::<String>().unwrap();
    let (b_here, b_there) = pipe_one_way::<u8>().unwrap();
    let facts = Builder::new(fd_facts, (a_there, b_there)).start().unwrap().join().unwrap();
    assert_eq!(facts.fds, [0, 1, 2, 3, 4, 5], "{facts:?}");
    assert_eq!(&facts.cloexec[3..], [true, true, true], "{facts:?}");
    // Each handle went to the argument it was passed as.
    assert_eq!(a_here.recv().unwrap(), "a is 4");
    assert_eq!(b_here.recv().unwrap(), 5);
    drop(stray);
}

#[test]
fn a_connection_can_only_be_shared_as_an_argument() {
    let (a, _b) = pipe::<()>().unwrap();
    let (c, _d) = pipe::<Connection<()>>().unwrap();
    match c.send(&a) {
        Err(ConnectionError::Encode(message)) => {
            assert!(message.contains("only be shared"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

/// The builder's copy of a passed end is closed with the builder: the
/// other end then sees EOF.
#[test]
fn a_builder_that_never_starts_leaks_nothing() {
    let (here, there) = pipe::<String>().unwrap();
    let builder = Builder::new(shout, (there,));
    assert!(!here.poll(Some(Duration::ZERO)).unwrap(), "the builder holds a copy");
    drop(builder);
    assert!(here.poll(Some(Duration::from_secs(10))).unwrap());
    assert!(matches!(here.recv(), Err(ConnectionError::Eof)));
}

#[process_task]
fn echo_bytes(conn: Connection<()>) {
    let message = conn.recv_bytes().unwrap();
    conn.send_bytes(&message).unwrap();
}

#[test]
fn a_16_mib_message_round_trips() {
    let (here, there) = pipe::<()>().unwrap();
    let child = Builder::new(echo_bytes, (there,)).start().unwrap();
    let message: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    // Send from another thread: the child echoes while we are still sending.
    let sender = here.try_clone().unwrap();
    let copy = message.clone();
    let t = std::thread::spawn(move || sender.send_bytes(&copy).unwrap());
    assert!(here.recv_bytes().unwrap() == message);
    t.join().unwrap();
    child.join().unwrap();
}

#[process_task]
fn relay(conn: Connection<String>, depth: u32) -> u32 {
    if depth == 0 {
        let heard = conn.recv().unwrap();
        conn.send(&format!("{heard} from pid {}", std::process::id())).unwrap();
        std::process::id()
    } else {
        multiproc::spawn(relay, (conn, depth - 1)).unwrap().join().unwrap()
    }
}

#[test]
fn a_connection_passes_on_to_grandchildren() {
    let (here, there) = pipe::<String>().unwrap();
    let child = multiproc::spawn(relay, (there, 2)).unwrap();
    here.send(&"hello".to_string()).unwrap();
    let reply = here.recv().unwrap();
    let pid = child.join().unwrap();
    assert_eq!(reply, format!("hello from pid {pid}"));
    assert!(matches!(here.recv(), Err(ConnectionError::Eof)), "every copy of the other end is gone");
}

/// Runs this test binary as a child fed `frame` on its stdin (playing the
/// parent by hand) and returns its exit code and stderr.
#[cfg(unix)]
fn feed_frame(frame: &[u8]) -> (Option<i32>, String) {
    use std::process::{Command, Stdio};
    // The channel a parent makes: one end of a Unix socket pair.
    let (mut parent, child_end) = std::os::unix::net::UnixStream::pair().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .env(multiproc::__private::testing::BOOTSTRAP_ENV, "0")
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(child_end)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = parent.write_all(frame);
    drop(parent);
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[cfg(unix)]
#[test]
fn a_bootstrap_frame_claiming_handles_that_were_not_passed_is_refused() {
    use multiproc::__private::testing;
    let payload = testing::encode(&(0u32,));
    let mut frame = testing::bootstrap_frame(testing::task_id(shout), payload.clone(), None);
    // The handle count is the head's last field, just before the payload;
    // 0 and 200 are one byte each (and 200 stray inheritable descriptors
    // cannot all be open).
    let count = frame.len() - payload.len() - 1;
    assert_eq!(frame[count], 0);
    frame[count] = 200;
    let (code, stderr) = feed_frame(&frame);
    assert_eq!(code, Some(multiproc::BootstrapFailure::Malformed.exit_code()), "{stderr}");
    assert!(stderr.contains("was not passed"), "{stderr}");

    // A frame with no handles whose arguments name one.
    let frame = testing::bootstrap_frame(testing::task_id(shout), payload, None);
    let (code, stderr) = feed_frame(&frame);
    assert_eq!(code, Some(multiproc::BootstrapFailure::BadArguments.exit_code()), "{stderr}");
    assert!(stderr.contains("handle 0 was not passed"), "{stderr}");
    assert!(!stderr.contains("OtherString"), "the codec's internals leak: {stderr}");
}

/// A body that does not decode says why in plain words, never in the
/// codec's own terms (`OtherString(..)`, `InvalidBooleanValue(..)`).
#[test]
fn decode_errors_speak_plainly() {
    use multiproc::DecodeError;
    let (a, b) = multiproc::pipe::<bool>().unwrap();
    a.send_bytes(&[5]).unwrap();
    match b.recv() {
        Err(ConnectionError::Decode(DecodeError::Invalid(m))) => assert_eq!(m, "5 is not a bool"),
        other => panic!("{other:?}"),
    }
    let (a, b) = multiproc::pipe::<String>().unwrap();
    a.send_bytes(&[2, 0xC3, 0x28]).unwrap();
    match b.recv() {
        Err(ConnectionError::Decode(DecodeError::Invalid(m))) => assert!(m.starts_with("a string is not UTF-8"), "{m}"),
        other => panic!("{other:?}"),
    }
    let (a, b) = multiproc::pipe::<Option<u8>>().unwrap();
    a.send_bytes(&[7]).unwrap();
    match b.recv() {
        Err(ConnectionError::Decode(e)) => {
            let m = e.to_string();
            assert!(!m.contains("Unexpected") && !m.contains("OtherString") && !m.contains('{'), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

/// A connection moves between threads but is used by one at a time.
const _: () = {
    const fn send<T: Send>() {}
    send::<Connection<std::rc::Rc<u8>>>();
    send::<Connection<String, ReadOnly>>();
};

/// Receives up to `n` messages, waiting at most 10 s for each: a message
/// that never comes ends the list short instead of hanging the test.
#[process_task]
fn take_some(end: Connection<String>, n: u32) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..n {
        if !end.poll(Some(Duration::from_secs(10))).unwrap() {
            break;
        }
        got.push(end.recv().unwrap());
    }
    got
}

/// What a receive on `end` gets within 10 s, if anything.
fn recv_within(end: &Connection<String>) -> Option<String> {
    end.poll(Some(Duration::from_secs(10))).unwrap().then(|| end.recv().unwrap())
}

/// A receive takes exactly one message: a child that receives one and
/// exits leaves the next for another child with a copy of the end, and the
/// one after for this process.
#[test]
fn a_child_that_receives_one_message_leaves_the_rest_on_the_end() {
    let (a, b) = pipe::<String>().unwrap();
    for m in ["first", "second", "third"] {
        a.send(&m.to_string()).unwrap();
    }
    let first = multiproc::spawn(take_some, (b.try_clone().unwrap(), 1)).unwrap().join().unwrap();
    assert_eq!(first, ["first"]);
    let second = multiproc::spawn(take_some, (b.try_clone().unwrap(), 1)).unwrap().join().unwrap();
    assert_eq!(second, ["second"]);
    assert_eq!(recv_within(&b).as_deref(), Some("third"));
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
}

/// Children reading one end in turn: every message reaches exactly one of
/// them, in order, and none is left over.
#[test]
fn children_reading_one_end_in_turn_get_every_message_once() {
    let (a, b) = pipe::<String>().unwrap();
    let sent: Vec<String> = (0..12).map(|i| format!("message {i}")).collect();
    for m in &sent {
        a.send(m).unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..4 {
        let child = multiproc::spawn(take_some, (b.try_clone().unwrap(), 3)).unwrap();
        let taken = child.join().unwrap();
        assert_eq!(taken.len(), 3, "a child got {taken:?}");
        got.extend(taken);
    }
    assert_eq!(got, sent);
    drop(a);
    assert!(matches!(b.recv(), Err(ConnectionError::Eof)));
}

/// An end whose first message was received here can go to a child at
/// once, whenever the second arrived: the child gets the second.
#[test]
fn an_end_passes_to_a_child_right_after_a_receive() {
    let (a, b) = pipe::<String>().unwrap();
    for i in 0..50 {
        a.send(&format!("first {i}")).unwrap();
        // Half the time the second message is already queued behind the
        // first when it is received; half the time it comes later.
        let early = i % 2 == 0;
        if early {
            a.send(&format!("second {i}")).unwrap();
        }
        assert_eq!(b.recv().unwrap(), format!("first {i}"));
        let child = multiproc::spawn(take_some, (b.try_clone().unwrap(), 1)).unwrap();
        if !early {
            a.send(&format!("second {i}")).unwrap();
        }
        assert_eq!(child.join().unwrap(), [format!("second {i}")], "round {i}");
    }
}

/// Nothing of a later message stays in a buffer of one copy of an end:
/// clones here take turns, a clone can go to a child at any time, and
/// whatever is left is on the socket for every copy to see.
#[test]
fn clones_take_turns_and_an_end_passes_to_a_child_at_any_time() {
    let (a, b) = multiproc::pipe::<u32>().unwrap();
    for i in 0..4 {
        a.send(&i).unwrap();
    }
    let b2 = b.try_clone().unwrap();
    assert_eq!(b.recv().unwrap(), 0);
    assert_eq!(b2.recv().unwrap(), 1);
    assert!(b2.poll(Some(Duration::ZERO)).unwrap());
    assert_eq!(multiproc::spawn(takes_one, (b2.try_clone().unwrap(),)).unwrap().join().unwrap(), 2);
    assert!(b.poll(Some(Duration::ZERO)).unwrap());
    assert_eq!(b.recv().unwrap(), 3);
    assert!(!b2.poll(Some(Duration::ZERO)).unwrap());
    drop(a);
    assert!(matches!(b2.recv(), Err(multiproc::ConnectionError::Eof)));
    multiproc::spawn(takes_end, (b2,)).unwrap().join().unwrap();
}

#[process_task]
fn takes_one(end: Connection<u32>) -> u32 {
    end.recv().unwrap()
}

#[process_task]
fn takes_end(_end: Connection<u32>) {}
