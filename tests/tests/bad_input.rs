//! A child fed a bad bootstrap exits with a distinct, documented code and a
//! one-line message; a parent sees a typed error. Nothing hangs.
//!
//! These tests play the parent by hand: they run the `probe` binary with
//! the bootstrap variable pointing at its stdin, a Unix socket pair's end
//! as a parent makes it (on Windows, an inherited pipe), and write the
//! frame there.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use multiproc::{BootstrapFailure, Error, process_task};
use multiproc_tests::eventually;
use serde::{Deserialize, Deserializer, Serialize};

const PROBE: &str = env!("CARGO_BIN_EXE_probe");

fn frame(kind: &str) -> Vec<u8> {
    let out = Command::new(PROBE).args(["frame", kind]).output().unwrap();
    assert!(out.status.success());
    let hex = String::from_utf8(out.stdout).unwrap();
    let hex = hex.trim();
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

/// A bootstrap pipe as a parent makes one: a byte-mode named pipe whose
/// client end (overlapped, and the only inheritable handle) goes to the
/// child; the server end is for writing the frame.
#[cfg(windows)]
fn bootstrap_pipe() -> (std::os::windows::io::OwnedHandle, std::os::windows::io::OwnedHandle) {
    use std::os::windows::io::{FromRawHandle, OwnedHandle};
    use windows_sys::Win32::Foundation::{GENERIC_READ, GENERIC_WRITE, INVALID_HANDLE_VALUE, TRUE};
    use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
    use windows_sys::Win32::Storage::FileSystem::{
        CreateFileW, FILE_FLAG_OVERLAPPED, OPEN_EXISTING, PIPE_ACCESS_DUPLEX,
    };
    use windows_sys::Win32::System::Pipes::{CreateNamedPipeW, PIPE_READMODE_BYTE, PIPE_TYPE_BYTE, PIPE_WAIT};
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name: Vec<u16> = format!(r"\\.\pipe\bad-input-{}-{n}", std::process::id()).encode_utf16().chain([0]).collect();
    // SAFETY: a NUL-terminated name; null attributes: not inheritable.
    let server = unsafe {
        CreateNamedPipeW(
            name.as_ptr(),
            PIPE_ACCESS_DUPLEX,
            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT,
            1,
            65536,
            65536,
            0,
            std::ptr::null(),
        )
    };
    assert_ne!(server, INVALID_HANDLE_VALUE);
    let inherit = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: std::ptr::null_mut(),
        bInheritHandle: TRUE,
    };
    // SAFETY: as above; the attributes make this one handle inheritable.
    let client = unsafe {
        CreateFileW(
            name.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            0,
            &inherit,
            OPEN_EXISTING,
            FILE_FLAG_OVERLAPPED,
            std::ptr::null_mut(),
        )
    };
    assert_ne!(client, INVALID_HANDLE_VALUE);
    // SAFETY: both handles were just created and are owned by nobody else.
    unsafe { (OwnedHandle::from_raw_handle(server), OwnedHandle::from_raw_handle(client)) }
}

/// Runs a child whose bootstrap channel is its stdin, fed `input`. On
/// Windows the channel is an inherited pipe instead, and `env_value` "0"
/// stands for its handle value.
fn feed(env_value: &str, input: &[u8]) -> (Option<i32>, String) {
    feed_with(env_value, input, false)
}

/// As [`feed`]; with `keep_open`, the parent's end stays open after the
/// input (a parent that stalls) until the child has exited.
#[cfg(unix)]
fn feed_with(env_value: &str, input: &[u8], keep_open: bool) -> (Option<i32>, String) {
    let mut probe = Command::new(PROBE);
    probe.env(multiproc::__private::testing::BOOTSTRAP_ENV, env_value);
    feed_via(probe, input, keep_open)
}

/// Runs `cmd` with stdin one end of a new Unix socket pair, as a parent
/// makes it, and writes `input` into the other end.
#[cfg(unix)]
fn feed_via(mut cmd: Command, input: &[u8], keep_open: bool) -> (Option<i32>, String) {
    let (mut parent, child_end) = std::os::unix::net::UnixStream::pair().unwrap();
    let child = cmd
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(child_end)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = parent.write_all(input);
    let kept = keep_open.then_some(parent);
    let result = finish(child, input);
    drop(kept);
    result
}

#[cfg(windows)]
fn feed_with(env_value: &str, input: &[u8], keep_open: bool) -> (Option<i32>, String) {
    use std::os::windows::io::AsRawHandle;
    let (write, read) = bootstrap_pipe();
    let env_value = match env_value {
        "0" => (read.as_raw_handle() as usize).to_string(),
        other => other.to_owned(),
    };
    let child = Command::new(PROBE)
        .env(multiproc::__private::testing::BOOTSTRAP_ENV, env_value)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(read);
    let mut sink = std::fs::File::from(write);
    let _ = sink.write_all(input);
    let kept = keep_open.then_some(sink);
    let result = finish(child, input);
    drop(kept);
    result
}

/// Runs the probe with the bootstrap variable naming its stdin, which is
/// `stdin`: not what a parent creates.
#[cfg(unix)]
fn run_with_stdin(stdin: Stdio) -> (Option<i32>, String) {
    let child = Command::new(PROBE)
        .env(multiproc::__private::testing::BOOTSTRAP_ENV, "0")
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(child, b"")
}

/// Waits (with a bound that only tells a hang) for the child's exit code
/// and stderr.
fn finish(mut child: std::process::Child, input: &[u8]) -> (Option<i32>, String) {
    let mut status = None;
    let done = eventually(Duration::from_secs(60), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !done {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("the child hung on {input:?}");
    }
    let out = child.wait_with_output().unwrap();
    (status.unwrap().code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_one_line(code: Option<i32>, stderr: &str, want: BootstrapFailure) {
    assert_eq!(code, Some(want.exit_code()), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line, got: {stderr}");
    assert!(lines[0].starts_with("multiproc: child process could not start: "), "{stderr}");
    assert!(lines[0].contains(&want.to_string()), "{stderr}");
}

fn assert_refused(env_value: &str, input: &[u8], want: BootstrapFailure) {
    let (code, stderr) = feed(env_value, input);
    assert_one_line(code, &stderr, want);
}

fn header(magic: &[u8; 2], version: u8, kind: u8, len: u64) -> Vec<u8> {
    let mut h = magic.to_vec();
    h.extend([version, kind]);
    h.extend(len.to_le_bytes());
    h
}

#[test]
fn good_frame_runs() {
    let (code, stderr) = feed("0", &frame("square"));
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn empty_channel_is_truncated() {
    assert_refused("0", b"", BootstrapFailure::Truncated);
}

#[test]
fn truncated_body_is_truncated() {
    let f = frame("square");
    assert_refused("0", &f[..f.len() - 3], BootstrapFailure::Truncated);
    assert_refused("0", &f[..5], BootstrapFailure::Truncated);
}

#[test]
fn garbage_is_malformed() {
    assert_refused("0", b"GET / HTTP/1.1\r\nHost: example\r\n\r\n", BootstrapFailure::Malformed);
    assert_refused("0", &header(b"MP", 99, 1, 0), BootstrapFailure::Malformed);
    assert_refused(
        "0",
        &header(b"MP", multiproc::__private::testing::PROTOCOL_VERSION, 77, 0),
        BootstrapFailure::Malformed,
    );
    let mut body_garbage = header(b"MP", multiproc::__private::testing::PROTOCOL_VERSION, 1, 16);
    body_garbage.extend([0xff; 16]);
    assert_refused("0", &body_garbage, BootstrapFailure::Malformed);
}

#[test]
fn oversized_length_is_refused_before_reading() {
    assert_refused(
        "0",
        &header(b"MP", multiproc::__private::testing::PROTOCOL_VERSION, 1, 1 << 60),
        BootstrapFailure::TooLarge,
    );
}

#[test]
fn unknown_task() {
    assert_refused("0", &frame("unknown"), BootstrapFailure::UnknownTask);
}

#[test]
fn different_binary() {
    assert_refused("0", &frame("mismatch"), BootstrapFailure::BinaryMismatch);
}

#[test]
fn arguments_that_do_not_decode() {
    assert_refused("0", &frame("bad-args"), BootstrapFailure::BadArguments);
}

#[test]
fn bad_environment_value() {
    assert_refused("not-a-number", b"", BootstrapFailure::BadEnvironment);
    assert_refused("9999", b"", BootstrapFailure::BadEnvironment);
}

/// Serializes fine, refuses to deserialize: the child cannot decode its
/// arguments.
#[derive(Debug)]
struct Poison;

impl Serialize for Poison {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(0)
    }
}

impl<'de> Deserialize<'de> for Poison {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("poison refuses to be decoded"))
    }
}

#[process_task]
fn takes_poison(_p: Poison) {}

#[test]
fn parent_sees_a_typed_bootstrap_error() {
    let c = multiproc::spawn(takes_poison, (Poison,)).unwrap();
    assert_eq!(c.wait().unwrap().exitcode(), BootstrapFailure::BadArguments.exit_code());
    match c.join() {
        Err(Error::Bootstrap { kind: BootstrapFailure::BadArguments, message, .. }) => {
            assert!(message.contains("poison refuses"), "{message}")
        }
        other => panic!("expected a bootstrap error, got {other:?}"),
    }
}

#[test]
fn a_parent_that_stalls_does_not_hang_the_child() {
    // Nothing at all, and half a header (side by side: each waits out the
    // bound): each wait is bounded.
    let half = frame("square")[..5].to_vec();
    let half = std::thread::spawn(move || feed_with("0", &half, true));
    let (code, stderr) = feed_with("0", b"", true);
    assert_one_line(code, &stderr, BootstrapFailure::Stalled);
    let (code, stderr) = half.join().unwrap();
    assert_one_line(code, &stderr, BootstrapFailure::Stalled);
}

#[cfg(unix)]
#[test]
fn a_descriptor_a_parent_does_not_create_is_refused_at_once() {
    let dir = multiproc_tests::scratch_dir("bad-input-kinds");
    // A regular file holding a good frame: it must not run.
    let path = dir.join("frame");
    std::fs::write(&path, frame("square")).unwrap();
    let (code, stderr) = run_with_stdin(Stdio::from(std::fs::File::open(&path).unwrap()));
    assert_one_line(code, &stderr, BootstrapFailure::BadEnvironment);
    assert!(stderr.contains("a regular file"), "{stderr}");
    // A plain pipe, with a good frame in it.
    let (code, stderr) = {
        let mut child = Command::new(PROBE)
            .env(multiproc::__private::testing::BOOTSTRAP_ENV, "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(&frame("square"));
        finish(child, b"pipe")
    };
    assert_one_line(code, &stderr, BootstrapFailure::BadEnvironment);
    assert!(stderr.contains("a pipe"), "{stderr}");
    // A terminal, kept open and silent: refused, not read from.
    let (code, stderr) = run_with_stdin(Stdio::from(pty()));
    assert_one_line(code, &stderr, BootstrapFailure::BadEnvironment);
    assert!(stderr.contains("terminal"), "{stderr}");
    let (code, stderr) = run_with_stdin(Stdio::null());
    assert_one_line(code, &stderr, BootstrapFailure::BadEnvironment);
}

/// The terminal end of a new pseudo-terminal (its controlling end leaks on
/// purpose: it must stay open while the child looks at the terminal).
#[cfg(unix)]
fn pty() -> std::fs::File {
    // SAFETY: posix_openpt returns a new descriptor or -1.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
    assert!(master >= 0, "posix_openpt");
    // SAFETY: `master` is a pty master descriptor.
    assert_eq!(unsafe { libc::grantpt(master) }, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::unlockpt(master) }, 0);
    // SAFETY: as above; the returned string is copied before any other call.
    let name = unsafe { std::ffi::CStr::from_ptr(libc::ptsname(master)) }.to_str().unwrap().to_owned();
    std::fs::OpenOptions::new().read(true).write(true).open(name).unwrap()
}

/// A socket pair end that a grandparent made: not the parent's.
#[cfg(target_os = "linux")]
#[test]
fn a_socket_another_process_made_is_refused() {
    // `sh` forks the probe: its parent is the shell, not this process.
    let mut shell = Command::new("/bin/sh");
    shell.args(["-c", &format!("'{PROBE}'; exit $?")]).env(multiproc::__private::testing::BOOTSTRAP_ENV, "0");
    let (code, stderr) = feed_via(shell, &frame("square"), false);
    assert_one_line(code, &stderr, BootstrapFailure::BadEnvironment);
    assert!(stderr.contains("not by the parent"), "{stderr}");
}

/// A setgid copy of the probe runs in secure-execution mode (`AT_SECURE`):
/// fed a good frame, it refuses to act as a child. Needs root (to give the
/// copy another group); skipped otherwise.
#[cfg(target_os = "linux")]
#[test]
fn secure_execution_never_acts_as_a_child() {
    use std::os::unix::fs::PermissionsExt;
    let dir = multiproc_tests::scratch_dir("bad-input-setgid");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.join("probe-setgid");
    std::fs::copy(PROBE, &copy).unwrap();
    let path = std::ffi::CString::new(copy.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid path; chown changes only the file's owner.
    if unsafe { libc::chown(path.as_ptr(), 0, 65534) } != 0 {
        eprintln!("skipped: cannot give the copy another group (needs root)");
        return;
    }
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o2755)).unwrap();
    let mut setgid = Command::new(&copy);
    setgid.env(multiproc::__private::testing::BOOTSTRAP_ENV, "0");
    let (code, stderr) = feed_via(setgid, &frame("square"), false);
    assert_one_line(code, &stderr, BootstrapFailure::Insecure);
    // Without the variable the same binary is an ordinary program.
    let out = Command::new(&copy).arg("frame").arg("square").output().unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// An anonymous pipe is not what a parent makes: refused at once.
#[cfg(windows)]
#[test]
fn an_anonymous_pipe_is_refused_at_once() {
    use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
    use windows_sys::Win32::Foundation::{HANDLE, HANDLE_FLAG_INHERIT, SetHandleInformation};
    use windows_sys::Win32::System::Pipes::CreatePipe;
    let (mut r, mut w): (HANDLE, HANDLE) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: valid out-pointers; null attributes: neither end inheritable.
    assert_ne!(unsafe { CreatePipe(&mut r, &mut w, std::ptr::null(), 0) }, 0);
    // SAFETY: fresh handles owned by nobody else.
    let (r, w) = unsafe { (OwnedHandle::from_raw_handle(r), OwnedHandle::from_raw_handle(w)) };
    // SAFETY: a valid handle of this process.
    assert_ne!(unsafe { SetHandleInformation(r.as_raw_handle(), HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT) }, 0);
    let child = Command::new(PROBE)
        .env(multiproc::__private::testing::BOOTSTRAP_ENV, (r.as_raw_handle() as usize).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(r);
    let (code, stderr) = finish(child, b"anonymous pipe");
    drop(w);
    assert_one_line(code, &stderr, BootstrapFailure::BadEnvironment);
}
