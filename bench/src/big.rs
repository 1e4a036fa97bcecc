//! The big-payload workloads: a 1 GiB task result and a 200 MiB task
//! argument, each beside a floor that moves the same bytes over a bare
//! socket into a freshly allocated buffer (what any receiver must at least
//! pay: the copy and the page faults), and each with the peak resident set
//! of the parent and the child, measured in a fresh process.
//!
//! The payload is a `Vec<u8>` (Python's `bytes`), filled so that its pages
//! are really resident.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Instant;

use multiproc::{Connection, Handle, process_task};

use crate::{FLOOR_ENV, emit, interleaved};

pub(crate) const RESULT_SIZE: usize = 1 << 30;
pub(crate) const ARGUMENT_SIZE: usize = 200 << 20;

/// A resident buffer of `size` zero bytes: every page written, so that
/// none is the shared zero page.
fn payload(size: usize) -> Vec<u8> {
    let mut v = vec![0u8; size];
    for page in v.chunks_mut(4096) {
        page[0] = std::hint::black_box(0);
    }
    v
}

/// Builds the result, says "ready", waits for "go", returns it.
#[process_task]
fn big_result_child(cmd: Connection<()>, size: u64) -> Vec<u8> {
    let value = payload(size as usize);
    cmd.send_bytes(b"ready").unwrap();
    assert_eq!(cmd.recv_bytes().unwrap(), b"go", "big_result: bad command");
    value
}

/// The floor's child: the same, written to a bare socket.
#[process_task]
fn raw_result_child(sock: Handle<UnixStream>, size: u64) {
    let mut sock = sock.into_inner();
    let value = payload(size as usize);
    sock.write_all(b"r").unwrap();
    let mut go = [0u8];
    sock.read_exact(&mut go).unwrap();
    sock.write_all(&value).unwrap();
}

#[process_task]
fn big_argument_child(value: Vec<u8>, size: u64) {
    if value.len() as u64 != size {
        std::process::exit(3);
    }
}

/// One `big_result` sample in GB/s.
fn one_result(size: usize) -> f64 {
    let (cmd, theirs) = multiproc::pipe::<()>().expect("pipe");
    let child = multiproc::spawn(big_result_child, (theirs, size as u64)).expect("start");
    assert_eq!(cmd.recv_bytes().expect("ready"), b"ready");
    let t = Instant::now();
    cmd.send_bytes(b"go").unwrap();
    let got = child.join().expect("big_result");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(got.len(), size, "big_result: wrong length");
    size as f64 / secs / 1e9
}

/// One floor sample: the child writes the bytes to a socket, the parent
/// reads them into a fresh buffer of the announced size.
fn one_raw_result(size: usize) -> f64 {
    let (mut sock, theirs) = UnixStream::pair().expect("socketpair");
    let child = multiproc::spawn(raw_result_child, (Handle::new(theirs), size as u64)).expect("start");
    let mut ready = [0u8];
    sock.read_exact(&mut ready).unwrap();
    let t = Instant::now();
    sock.write_all(b"g").unwrap();
    let mut got = Vec::with_capacity(size);
    sock.read_to_end(&mut got).unwrap();
    child.join().expect("raw result child");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(got.len(), size, "raw_big_result: wrong length");
    size as f64 / secs / 1e9
}

/// One `big_argument` sample in µs.
fn one_argument(value: Vec<u8>) -> f64 {
    let size = value.len() as u64;
    let t = Instant::now();
    let child = multiproc::spawn(big_argument_child, (value, size)).expect("start");
    let status = child.wait().expect("big_argument");
    let us = t.elapsed().as_secs_f64() * 1e6;
    assert!(status.success(), "big_argument: {status}");
    us
}

/// The floor: the same binary re-executed with `Command`, reading the
/// bytes from a socket on its stdin into a fresh buffer.
fn one_raw_argument(value: &[u8]) -> f64 {
    let exe = std::env::current_exe().expect("current exe");
    let t = Instant::now();
    let (mut sock, theirs) = UnixStream::pair().expect("socketpair");
    let mut child = Command::new(exe)
        .env(FLOOR_ENV, "raw_argument")
        .env("MULTIPROC_BENCH_SIZE", value.len().to_string())
        .stdin(std::os::fd::OwnedFd::from(theirs))
        .spawn()
        .expect("re-exec");
    sock.write_all(value).unwrap();
    let status = child.wait().expect("wait");
    let us = t.elapsed().as_secs_f64() * 1e6;
    assert!(status.success(), "raw_big_argument: {status}");
    us
}

/// The floor's child: reads the argument from stdin into a fresh buffer.
pub(crate) fn raw_argument_child() {
    let size: usize = std::env::var("MULTIPROC_BENCH_SIZE").unwrap().parse().unwrap();
    let mut got = Vec::with_capacity(size);
    std::io::stdin().lock().take(size as u64).read_to_end(&mut got).unwrap();
    if got.len() != size {
        std::process::exit(3);
    }
}

pub(crate) fn big_result(reps: usize, size: usize) {
    eprintln!("# big_result: a task returning Vec<u8>");
    interleaved(
        reps,
        "GB/s",
        ("big_result", &mut || one_result(size)),
        ("raw_big_result", &mut || one_raw_result(size)),
    );
    peak_rss("big_result");
}

pub(crate) fn big_argument(reps: usize) {
    let value = payload(ARGUMENT_SIZE);
    eprintln!("# big_argument: a task taking a Vec<u8> argument");
    interleaved(
        reps,
        "us",
        ("big_argument", &mut || one_argument(value.clone())),
        ("raw_big_argument", &mut || one_raw_argument(&value)),
    );
    peak_rss("big_argument");
}

/// Runs one sample of `workload` in a fresh process and emits its peak RSS
/// and its child's, in KiB, and as a multiple of the payload.
fn peak_rss(workload: &str) {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe).env(FLOOR_ENV, format!("rss_{workload}")).output().expect("rss meter");
    assert!(out.status.success(), "rss meter failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|n| n.parse::<f64>().expect("rss figure"));
    let (parent, child) = (it.next().expect("parent rss"), it.next().expect("child rss"));
    let size = if workload == "big_result" { RESULT_SIZE } else { ARGUMENT_SIZE } as f64 / 1024.0;
    emit(&format!("{workload}_parent_peak_rss"), "multiproc", "KiB", vec![parent]);
    emit(&format!("{workload}_child_peak_rss"), "multiproc", "KiB", vec![child]);
    eprintln!("# {workload} peak RSS / payload: parent {:.2}, child {:.2}", parent / size, child / size);
}

/// In the fresh process: one sample, then this process's peak RSS
/// (`VmHWM`, which starts afresh at exec) and its child's (`ru_maxrss`,
/// an upper bound: a spawned child's also counts the memory of the parent
/// it was started from, which for `big_argument` already holds the
/// argument).
pub(crate) fn measure_rss(workload: &str) {
    match workload {
        "big_result" => {
            one_result(RESULT_SIZE);
        }
        _ => {
            one_argument(payload(ARGUMENT_SIZE));
        }
    }
    println!("{} {}", vm_hwm_kib(), children_maxrss_kib());
}

/// This process's peak resident set in KiB.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmHWM figure")
}

fn children_maxrss_kib() -> i64 {
    // SAFETY: an all-zero rusage is valid to be overwritten.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    ru.ru_maxrss
}
