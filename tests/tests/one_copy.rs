//! A payload is copied once: a big task argument or result is encoded
//! straight into the channel and decoded straight out of it, so that
//! neither process holds it more than once (plus a bounded buffer), and a
//! value that does not encode the same way twice, or a child killed in the
//! middle of sending, gives an error and never a hang or a torn frame.
//!
//! The memory tests (Linux) run each in its own process, so that its peak resident set is its
//! own: `VmHWM` for the test's process, and `ru_maxrss` of its children for
//! the child (an upper bound: a spawned child's figure also counts what its
//! parent held when it was started).

use std::sync::atomic::{AtomicU32, Ordering};

use multiproc::{BootstrapFailure, Builder, Error, process_task};
#[cfg(unix)]
use multiproc::{Connection, ExitStatus};
use serde::{Deserialize, Serialize, Serializer};

#[cfg(unix)]
const MIB: u64 = 1 << 20;

#[cfg(target_os = "linux")]
/// What the copies may cost beyond the payload itself: 1.3x, as the
/// design promises, plus the process's own start-up.
fn allowed(payload: u64, base_kib: u64) -> u64 {
    payload * 13 / 10 / 1024 + base_kib + 16 * 1024
}

/// This process's and its children's peaks are within [`allowed`] for a
/// payload of `size` bytes above `base_kib`.
#[cfg(target_os = "linux")]
fn assert_peaks_within(what: &str, size: u64, base_kib: u64) {
    let (parent, child) = (vm_hwm_kib(), children_maxrss_kib());
    println!("{what}: parent peak {parent} KiB, child peak {child} KiB");
    assert!(parent <= allowed(size, base_kib), "the parent peaked at {parent} KiB");
    assert!(child <= allowed(size, base_kib), "the child peaked at {child} KiB");
}

#[cfg(target_os = "linux")]
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[cfg(target_os = "linux")]
fn children_maxrss_kib() -> u64 {
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) }, 0);
    usage.ru_maxrss as u64
}

#[cfg(unix)]
/// `size` bytes, every page of them resident.
fn resident(size: u64) -> Vec<u8> {
    let mut v = vec![0u8; size as usize];
    for (i, page) in v.chunks_mut(4096).enumerate() {
        page[0] = i as u8;
    }
    v
}

#[cfg(unix)]
#[process_task]
fn big_result(size: u64) -> Vec<u8> {
    resident(size)
}

#[process_task]
fn length_of(bytes: Vec<u8>) -> u64 {
    bytes.len() as u64
}

#[cfg(target_os = "linux")]
#[test]
fn a_big_result_is_held_once_in_each_process() {
    multiproc_tests::isolated("a_big_result_is_held_once_in_each_process", || {
        let size = 256 * MIB;
        let base = vm_hwm_kib();
        let got = multiproc::spawn(big_result, (size,)).unwrap().join().unwrap();
        assert_eq!(got.len() as u64, size);
        assert!(got.chunks(4096).enumerate().all(|(i, page)| page[0] == i as u8), "the bytes differ");
        assert_peaks_within("256 MiB result", size, base);
    });
}

#[cfg(target_os = "linux")]
#[test]
fn a_big_argument_is_held_once_in_each_process() {
    multiproc_tests::isolated("a_big_argument_is_held_once_in_each_process", || {
        let size = 200 * MIB;
        let base = vm_hwm_kib();
        let value = resident(size);
        let got = multiproc::spawn(length_of, (value,)).unwrap().join().unwrap();
        assert_eq!(got, size);
        assert_peaks_within("200 MiB argument", size, base);
    });
}

/// A byte buffer inside a structure still crosses (element by element,
/// without the attribute's fast path for a bare `Vec<u8>`).
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Wrapped {
    bytes: Vec<u8>,
    tag: String,
}

#[process_task]
fn echo_wrapped(w: Wrapped) -> Wrapped {
    w
}

#[test]
fn bytes_inside_a_structure_round_trip() {
    let w = Wrapped { bytes: (0..=255).cycle().take(100_000).collect(), tag: "t".into() };
    let expected = Wrapped { bytes: w.bytes.clone(), tag: w.tag.clone() };
    assert_eq!(multiproc::spawn(echo_wrapped, (w,)).unwrap().join().unwrap(), expected);
}

/// Serializes to one more byte each time it is asked: its measured length
/// is never the length it then writes.
#[derive(Deserialize, Debug)]
struct Growing(Vec<u8>);

static CALLS: AtomicU32 = AtomicU32::new(0);

impl Serialize for Growing {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = CALLS.fetch_add(1, Ordering::Relaxed) as usize;
        self.0[..self.0.len().min(1000 + n)].serialize(s)
    }
}

/// Serializes to one byte fewer each time.
#[derive(Deserialize, Debug)]
struct Shrinking(Vec<u8>);

impl Serialize for Shrinking {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = CALLS.fetch_add(1, Ordering::Relaxed) as usize;
        self.0[..self.0.len() - 1 - n % 100].serialize(s)
    }
}

#[process_task]
fn take_growing(g: Growing) -> usize {
    g.0.len()
}

#[process_task]
fn take_shrinking(s: Shrinking) -> usize {
    s.0.len()
}

#[process_task]
fn give_growing() -> Growing {
    Growing(vec![7; 5000])
}

#[process_task]
fn give_shrinking() -> Shrinking {
    Shrinking(vec![7; 5000])
}

#[test]
fn arguments_that_encode_differently_when_sent_are_refused_by_the_child() {
    for child in [
        Builder::new(take_growing, (Growing(vec![1; 5000]),)).start().unwrap(),
        Builder::new(take_shrinking, (Shrinking(vec![1; 5000]),)).start().unwrap(),
    ] {
        match child.join() {
            Err(Error::Bootstrap { kind: BootstrapFailure::BadArguments, .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn results_that_encode_differently_when_sent_are_a_decode_error() {
    match multiproc::spawn(give_growing, ()).unwrap().join() {
        Err(Error::BadResult { .. }) => {}
        other => panic!("{other:?}"),
    }
    match multiproc::spawn(give_shrinking, ()).unwrap().join() {
        Err(Error::BadResult { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[cfg(unix)]
/// Says it is about to return, then returns far more than a socket holds.
#[process_task]
fn announce_and_return(cmd: Connection<()>, size: u64) -> Vec<u8> {
    let value = resident(size);
    cmd.send_bytes(b"returning").unwrap();
    value
}

#[cfg(unix)]
#[test]
fn a_child_killed_while_sending_its_result_ends_without_one() {
    let (cmd, theirs) = multiproc::pipe::<()>().unwrap();
    let child = multiproc::spawn(announce_and_return, (theirs, 64 * MIB)).unwrap();
    assert_eq!(cmd.recv_bytes().unwrap(), b"returning");
    // Nothing reads the report yet, so the child is somewhere before or in
    // the middle of writing it: never past its end.
    child.kill().unwrap();
    match child.join() {
        Err(Error::NoResult { status: ExitStatus::Signal(9), .. }) => {}
        other => panic!("{other:?}"),
    }
}
