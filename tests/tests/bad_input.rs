//! A child fed a bad bootstrap exits with a distinct, documented code and a
//! one-line message; a parent sees a typed error. Nothing hangs.
//!
//! These tests play the parent by hand: they run the `probe` binary with
//! the bootstrap variable pointing at its stdin (on Windows, at an
//! inherited pipe), and write the frame there.

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

/// The read end of an anonymous pipe, inheritable (only it: a child
/// started meanwhile must not keep the write end open), and the write end.
#[cfg(windows)]
fn inheritable_read_end() -> (std::os::windows::io::OwnedHandle, std::os::windows::io::OwnedHandle) {
    use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
    use windows_sys::Win32::Foundation::{HANDLE, HANDLE_FLAG_INHERIT, SetHandleInformation};
    use windows_sys::Win32::System::Pipes::CreatePipe;
    let (mut r, mut w): (HANDLE, HANDLE) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: valid out-pointers; null attributes: neither end inheritable.
    assert_ne!(unsafe { CreatePipe(&mut r, &mut w, std::ptr::null(), 0) }, 0);
    // SAFETY: fresh handles owned by nobody else.
    let (r, w) = unsafe { (OwnedHandle::from_raw_handle(r), OwnedHandle::from_raw_handle(w)) };
    // SAFETY: a valid handle of this process.
    let ok = unsafe { SetHandleInformation(r.as_raw_handle(), HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT) };
    assert_ne!(ok, 0);
    (r, w)
}

/// Runs a child whose bootstrap channel is its stdin, fed `input`. On
/// Windows the channel is an inherited pipe instead, and `env_value` "0"
/// stands for its handle value.
fn feed(env_value: &str, input: &[u8]) -> (Option<i32>, String) {
    #[cfg(unix)]
    let env_value = env_value.to_owned();
    #[cfg(windows)]
    let (pipe, env_value) = {
        use std::os::windows::io::AsRawHandle;
        let pipe = inheritable_read_end();
        let value = match env_value {
            "0" => (pipe.0.as_raw_handle() as usize).to_string(),
            other => other.to_owned(),
        };
        (pipe, value)
    };
    let mut child = Command::new(PROBE)
        .env("MULTIPROC_BOOTSTRAP", env_value)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        #[cfg(unix)]
        let mut sink = child.stdin.take().unwrap();
        #[cfg(windows)]
        let mut sink = {
            drop(child.stdin.take());
            let (read, write) = pipe;
            drop(read);
            std::fs::File::from(write)
        };
        let _ = sink.write_all(input);
    }
    let mut status = None;
    let done = eventually(Duration::from_secs(20), || {
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

fn assert_refused(env_value: &str, input: &[u8], want: BootstrapFailure) {
    let (code, stderr) = feed(env_value, input);
    assert_eq!(code, Some(want.exit_code()), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line, got: {stderr}");
    assert!(lines[0].starts_with("multiproc: child process could not start: "), "{stderr}");
    assert!(lines[0].contains(&want.to_string()), "{stderr}");
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
    assert_refused("0", &header(b"MP", 1, 77, 0), BootstrapFailure::Malformed);
    let mut body_garbage = header(b"MP", 1, 1, 16);
    body_garbage.extend([0xff; 16]);
    assert_refused("0", &body_garbage, BootstrapFailure::Malformed);
}

#[test]
fn oversized_length_is_refused_before_reading() {
    assert_refused("0", &header(b"MP", 1, 1, 1 << 60), BootstrapFailure::TooLarge);
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
