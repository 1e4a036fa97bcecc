//! A child's stdout and stderr under a test harness that captures output.
//!
//! `cargo test` captures what a test prints through `print!` and shows it
//! only when the test fails (or with `--nocapture`), but a child process
//! writes straight to the inherited descriptors, past the capture. So when
//! this process looks like a libtest harness that captures, each child gets
//! pipes for stdout and stderr instead, and a thread started from the
//! thread that starts the child (so that it inherits the test's capture)
//! copies what arrives through `print!` and `eprint!`. Anywhere else a
//! child inherits this process's stdout and stderr, as in Python.
//!
//! The harness is recognised by what cargo and libtest make of it: the
//! executable is `deps/<crate>-<16 hex digits>` and neither `--nocapture`
//! (or `--no-capture`) nor `RUST_TEST_NOCAPTURE` asks for output to go
//! straight through. nextest passes `--nocapture` and captures the whole
//! process itself, children included.

use std::io::{self, PipeReader, PipeWriter, Read};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

/// The longest `wait` or `join` waits, after the child ended, for its
/// output to be copied: longer only when a process the child started still
/// holds its stdout or stderr open (the copy then goes on by itself).
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Whether children's output goes through this process's `print!`.
pub(crate) fn forwarding() -> bool {
    static FORWARD: OnceLock<bool> = OnceLock::new();
    *FORWARD.get_or_init(|| {
        // A child's own stdout and stderr are what its parent gave it.
        crate::bootstrap::prepared().is_none()
            && std::env::current_exe().is_ok_and(|exe| is_test_harness(&exe))
            && captures(std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()), nocapture_env())
    })
}

/// `RUST_TEST_NOCAPTURE` as libtest reads it: set to anything but `0`.
fn nocapture_env() -> bool {
    std::env::var_os("RUST_TEST_NOCAPTURE").is_some_and(|v| v != "0")
}

/// Whether `exe` is where cargo puts a test harness: `deps/<name>-<hash>`.
fn is_test_harness(exe: &Path) -> bool {
    let in_deps = exe.parent().and_then(Path::file_name).is_some_and(|d| d == "deps");
    let stem = exe.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let hashed = stem.rsplit_once('-').is_some_and(|(name, hash)| {
        !name.is_empty() && hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())
    });
    in_deps && hashed
}

/// Whether libtest captures, given its arguments and environment.
fn captures(args: impl IntoIterator<Item = String>, nocapture_env: bool) -> bool {
    !nocapture_env && !args.into_iter().any(|a| a == "--nocapture" || a == "--no-capture")
}

/// The write ends of a child's stdout and stderr, for the spawn.
pub(crate) struct ChildStdio {
    pub(crate) out: PipeWriter,
    pub(crate) err: PipeWriter,
}

/// The read ends, until the child is started.
pub(crate) struct Readers {
    out: PipeReader,
    err: PipeReader,
}

/// Pipes for a child's stdout and stderr, when this process forwards them.
pub(crate) fn pipes() -> io::Result<Option<(ChildStdio, Readers)>> {
    if !forwarding() {
        return Ok(None);
    }
    let (out_r, out_w) = io::pipe()?;
    let (err_r, err_w) = io::pipe()?;
    Ok(Some((ChildStdio { out: out_w, err: err_w }, Readers { out: out_r, err: err_r })))
}

/// The threads copying a started child's output; see [`Forwarders::drain`].
#[derive(Debug)]
pub(crate) struct Forwarders {
    done: Vec<Receiver<()>>,
}

impl Readers {
    /// Starts the copying threads. Call it from the thread that started the
    /// child: the threads inherit its output capture.
    pub(crate) fn forward(self) -> Forwarders {
        let done = [(self.out, Stream::Stdout), (self.err, Stream::Stderr)]
            .into_iter()
            .filter_map(|(reader, stream)| {
                let (tx, rx) = mpsc::channel();
                let spawned = thread::Builder::new().name("multiproc-output".into()).spawn(move || {
                    copy(reader, stream);
                    let _ = tx.send(());
                });
                // Without a thread the pipe's reader is gone: the child's
                // writes fail (EPIPE) rather than block.
                spawned.ok().map(|_| rx)
            })
            .collect();
        Forwarders { done }
    }
}

impl Forwarders {
    /// Waits until the output the child wrote has been copied: until both
    /// pipes close, or [`DRAIN_LIMIT`] passes.
    pub(crate) fn drain(self) {
        let deadline = std::time::Instant::now() + DRAIN_LIMIT;
        for rx in self.done {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(left) {
                return;
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Copies what arrives on `reader` to `print!` or `eprint!` until the pipe
/// closes, a whole UTF-8 sequence at a time (invalid bytes become U+FFFD).
fn copy(mut reader: PipeReader, stream: Stream) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        pending.extend_from_slice(&buf[..n]);
        let whole = pending.len() - incomplete_tail(&pending);
        emit(stream, &String::from_utf8_lossy(&pending[..whole]));
        pending.drain(..whole);
    }
    if !pending.is_empty() {
        emit(stream, &String::from_utf8_lossy(&pending));
    }
}

fn emit(stream: Stream, text: &str) {
    if text.is_empty() {
        return;
    }
    match stream {
        Stream::Stdout => print!("{text}"),
        Stream::Stderr => eprint!("{text}"),
    }
}

/// How many bytes at the end of `bytes` begin a UTF-8 sequence that is not
/// complete yet (0 to 3).
fn incomplete_tail(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(4) {
        let b = bytes[bytes.len() - back];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        let needed = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if needed > back { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cargo_test_harness_is_recognised_by_its_path() {
        assert!(is_test_harness(Path::new("/w/target/debug/deps/queue-0123456789abcdef")));
        assert!(is_test_harness(Path::new(r"target/debug/deps/my_crate-00112233aabbccdd.exe")));
        assert!(!is_test_harness(Path::new("/w/target/debug/queue")));
        assert!(!is_test_harness(Path::new("/w/target/debug/deps/queue-0123")));
        assert!(!is_test_harness(Path::new("/usr/bin/app-0123456789abcdef")));
    }

    #[test]
    fn nocapture_in_either_spelling_or_the_environment_lets_output_through() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(captures(args(&["some_test", "--test-threads=2"]), false));
        assert!(!captures(args(&["--nocapture"]), false));
        assert!(!captures(args(&["--exact", "t", "--no-capture"]), false));
        assert!(!captures(args(&[]), true));
    }

    #[test]
    fn a_split_utf8_sequence_waits_for_its_end() {
        let euro = "€".as_bytes(); // three bytes
        assert_eq!(incomplete_tail(b"abc"), 0);
        assert_eq!(incomplete_tail(&euro[..1]), 1);
        assert_eq!(incomplete_tail(&euro[..2]), 2);
        assert_eq!(incomplete_tail(euro), 0);
        assert_eq!(incomplete_tail(&[b'a', 0xFF]), 0);
    }
}
