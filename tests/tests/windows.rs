//! Windows-specific behaviour of the backend: daemonic children die with a
//! killed parent (Job Object), children inherit only the handles they need,
//! and terminate/kill report `-15` as CPython does on Windows.
#![cfg(windows)]

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use multiproc::{ExitStatus, process_task};
use multiproc_tests::{eventually, scratch_dir};
use windows_sys::Win32::Foundation::{ERROR_BROKEN_PIPE, GetLastError, HANDLE, WAIT_OBJECT_0};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::System::JobObjects::IsProcessInJob;
use windows_sys::Win32::System::Pipes::{CreatePipe, PeekNamedPipe};
use windows_sys::Win32::System::Threading::{
    OpenProcess, PROCESS_QUERY_INFORMATION, PROCESS_SYNCHRONIZE, WaitForSingleObject,
};

const PROBE: &str = env!("CARGO_BIN_EXE_probe");

/// The tests here create inheritable handles or count on nothing else
/// spawning meanwhile: they run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

#[process_task]
fn hang() {
    std::thread::sleep(Duration::from_secs(60));
}

/// A handle to process `pid`, if it still exists.
fn open_process(pid: u32) -> Option<OwnedHandle> {
    // SAFETY: no pointers; failure returns null.
    let h = unsafe { OpenProcess(PROCESS_SYNCHRONIZE | PROCESS_QUERY_INFORMATION, 0, pid) };
    // SAFETY: a fresh handle owned by nobody else.
    (!h.is_null()).then(|| unsafe { OwnedHandle::from_raw_handle(h) })
}

/// Whether the process behind `h` has ended, waiting up to `within`.
fn ends_within(h: &OwnedHandle, within: Duration) -> bool {
    // SAFETY: a valid process handle.
    unsafe { WaitForSingleObject(h.as_raw_handle(), within.as_millis() as u32) == WAIT_OBJECT_0 }
}

fn in_a_job(h: &OwnedHandle) -> bool {
    let mut result = 0;
    // SAFETY: a valid process handle; a null job asks about any job.
    let ok = unsafe { IsProcessInJob(h.as_raw_handle(), std::ptr::null_mut(), &mut result) };
    assert_ne!(ok, 0, "IsProcessInJob: {}", std::io::Error::last_os_error());
    result != 0
}

/// Kills the probe if a test fails while it runs.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path).unwrap().trim().parse().unwrap()
}

fn parent_killed(mode: &str) {
    let dir = scratch_dir(&format!("win-parent-killed-{mode}"));
    let mut probe = KillOnDrop(
        Command::new(PROBE)
            .args(["parent-killed", dir.to_str().unwrap(), mode])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ready = eventually(Duration::from_secs(60), || {
        dir.join("ready").exists() && dir.join("daemon.pid").exists() && dir.join("watcher.pid").exists()
    });
    assert!(ready, "the probe never got ready");
    // Opened before the kill, so a reused pid cannot fool the check.
    let daemon = open_process(read_pid(&dir.join("daemon.pid"))).expect("the daemon runs");
    let watcher = open_process(read_pid(&dir.join("watcher.pid"))).expect("the watcher runs");
    assert!(in_a_job(&daemon), "a daemonic child is in its parent's kill-on-close job");
    assert!(!in_a_job(&watcher), "a non-daemonic child is in no job");
    probe.0.kill().unwrap();
    probe.0.wait().unwrap();
    assert!(ends_within(&daemon, Duration::from_secs(30)), "the daemon outlived its killed parent");
    // The non-daemonic child survives, and sees its parent die.
    assert!(eventually(Duration::from_secs(60), || dir.join("parent.gone").exists()));
    assert!(ends_within(&watcher, Duration::from_secs(30)));
}

#[test]
fn daemon_dies_with_a_killed_parent() {
    let _g = serial();
    parent_killed("main");
}

#[test]
fn daemon_started_from_a_thread_dies_with_a_killed_parent() {
    let _g = serial();
    parent_killed("thread");
}

#[test]
fn normal_exit_terminates_daemons_and_waits_for_the_rest() {
    let _g = serial();
    let dir = scratch_dir("win-exit-cleanup");
    // The probe's worker waits for this file, which its daemon writes, but a
    // spawn under Wine takes long enough for main to return (and the daemon
    // to be terminated) first: provide it, and learn the pids from stdout.
    std::fs::write(dir.join("daemon.pid"), "0").unwrap();
    let out = Command::new(PROBE).arg("exit-cleanup").arg(&dir).stderr(Stdio::null()).output().unwrap();
    assert!(out.status.success());
    assert!(dir.join("worker.done").exists(), "main did not wait for its non-daemonic child");
    // "main returns; daemon N worker M"
    let stdout = String::from_utf8_lossy(&out.stdout);
    let daemon: u32 = stdout.split_whitespace().nth(3).and_then(|p| p.parse().ok()).expect("the daemon's pid");
    assert!(open_process(daemon).is_none_or(|h| ends_within(&h, Duration::from_secs(30))));
}

/// An inheritable anonymous pipe: (read end, write end).
fn inheritable_pipe() -> (OwnedHandle, OwnedHandle) {
    let sa = SECURITY_ATTRIBUTES {
        nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: std::ptr::null_mut(),
        bInheritHandle: 1,
    };
    let (mut r, mut w): (HANDLE, HANDLE) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: valid out-pointers and attributes.
    assert_ne!(unsafe { CreatePipe(&mut r, &mut w, &sa, 0) }, 0);
    // SAFETY: fresh handles owned by nobody else.
    unsafe { (OwnedHandle::from_raw_handle(r), OwnedHandle::from_raw_handle(w)) }
}

/// Whether every write end of the pipe is closed (no process holds one).
fn writers_gone(read: &OwnedHandle) -> bool {
    let mut avail = 0u32;
    // SAFETY: a valid pipe handle; only the count is asked for.
    let ok = unsafe {
        PeekNamedPipe(
            read.as_raw_handle(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            &mut avail,
            std::ptr::null_mut(),
        )
    };
    // SAFETY: no preconditions.
    ok == 0 && unsafe { GetLastError() } == ERROR_BROKEN_PIPE
}

/// Helper role for the control below: sleeps when asked to by the
/// environment, otherwise passes at once.
#[test]
fn role_sleep() {
    if std::env::var_os("MULTIPROC_WIN_TEST_ROLE").is_some() {
        std::thread::sleep(Duration::from_secs(30));
    }
}

#[test]
fn children_inherit_only_the_handles_they_need() {
    let _g = serial();
    // Control: std's Command inherits every inheritable handle, which is
    // what this check detects.
    let (read, write) = inheritable_pipe();
    let mut plain = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "role_sleep", "--test-threads=1", "-q"])
        .env("MULTIPROC_WIN_TEST_ROLE", "sleep")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(write);
    let leaked = !writers_gone(&read);
    plain.kill().unwrap();
    plain.wait().unwrap();
    assert!(leaked, "control: a std child should have inherited the pipe's write end");
    assert!(eventually(Duration::from_secs(30), || writers_gone(&read)));

    // A multiproc child does not.
    let (read, write) = inheritable_pipe();
    let c = multiproc::spawn(hang, ()).unwrap();
    drop(write);
    assert!(c.is_alive());
    assert!(writers_gone(&read), "the child inherited a handle it was not given");
    c.kill().unwrap();
    c.wait().unwrap();
}

#[test]
fn terminate_and_kill_give_minus_15() {
    let _g = serial();
    for kill in [false, true] {
        let c = multiproc::spawn(hang, ()).unwrap();
        assert_eq!(c.join_timeout(Duration::from_millis(50)).unwrap(), None);
        if kill {
            c.kill().unwrap()
        } else {
            c.terminate().unwrap()
        }
        assert_eq!(c.wait().unwrap(), ExitStatus::Signal(15));
        assert_eq!(c.exitcode(), Some(-15));
    }
}

#[process_task]
fn exit_with(code: i32) {
    std::process::exit(code);
}

#[test]
fn exit_codes_keep_32_bits() {
    let _g = serial();
    // 0x10000 is what terminate uses; chosen by the child, it stays a code.
    for code in [3, 300, 0x10000] {
        let c = multiproc::spawn(exit_with, (code,)).unwrap();
        assert_eq!(c.wait().unwrap(), ExitStatus::Code(code));
    }
}

/// Uses every handle it got: a file, a listener, a stream, a datagram
/// socket and the write end of a std pipe.
#[process_task]
fn use_handles(
    file: multiproc::Handle<std::fs::File>,
    listener: multiproc::Handle<std::net::TcpListener>,
    stream: multiproc::Handle<std::net::TcpStream>,
    udp: multiproc::Handle<std::net::UdpSocket>,
    pipe: multiproc::Handle<std::io::PipeWriter>,
) {
    use std::io::Write;
    file.into_inner().write_all(b"written by the child").unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.write_all(b"accepted").unwrap();
    drop(conn);
    stream.into_inner().write_all(b"stream").unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = udp.recv_from(&mut buf).unwrap();
    udp.send_to(&buf[..n].to_ascii_uppercase(), from).unwrap();
    pipe.into_inner().write_all(b"piped").unwrap();
}

#[test]
fn handles_and_sockets_reach_the_child() {
    use std::io::{Read, Seek};
    use std::net::{TcpListener, TcpStream, UdpSocket};
    let _g = serial();
    let dir = scratch_dir("win-handles");
    let mut file =
        std::fs::File::options().read(true).write(true).create(true).truncate(true).open(dir.join("f")).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let theirs = TcpStream::connect(peer.local_addr().unwrap()).unwrap();
    let (mut ours, _) = peer.accept().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (mut pipe_read, pipe_write) = std::io::pipe().unwrap();

    let child = multiproc::spawn(
        use_handles,
        (
            multiproc::Handle::new(file.try_clone().unwrap()),
            multiproc::Handle::new(listener),
            multiproc::Handle::new(theirs),
            multiproc::Handle::new(udp.try_clone().unwrap()),
            multiproc::Handle::new(pipe_write),
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
    me.send_to(b"dgram", udp.local_addr().unwrap()).unwrap();
    let mut dgram = [0u8; 16];
    let n = me.recv(&mut dgram).unwrap();
    assert_eq!(&dgram[..n], b"DGRAM");
    child.join().unwrap();
    // Every copy of the pipe's write end is closed now (ours went into the
    // argument, the child's with the child): EOF after the data.
    let mut piped = String::new();
    pipe_read.read_to_string(&mut piped).unwrap();
    assert_eq!(piped, "piped");
    file.rewind().unwrap();
    let mut content = String::new();
    file.read_to_string(&mut content).unwrap();
    assert_eq!(content, "written by the child");
}

#[process_task]
fn nothing() {}

/// Many spawns, half of them dropped unjoined, leave this process's handle
/// count where it was (the Windows side of the "no leaked fd" test).
#[test]
fn many_spawns_leak_no_handle() {
    use windows_sys::Win32::Foundation::GetHandleInformation;
    let _serial = serial();
    // Handle values are multiples of 4; count the valid ones by asking
    // about each (Wine does not implement GetProcessHandleCount).
    let count = || {
        (1..=16_384usize)
            .filter(|i| {
                let mut flags = 0u32;
                // SAFETY: only queries the handle table; `flags` is a valid out-pointer.
                unsafe { GetHandleInformation((i * 4) as HANDLE, &mut flags) != 0 }
            })
            .count()
    };
    // Warm up whatever is created once (per-thread events, the job object).
    for _ in 0..3 {
        multiproc::spawn(nothing, ()).unwrap().join().unwrap();
    }
    let before = count();
    // The count sees one more handle.
    let probe = std::fs::File::open(PROBE).unwrap();
    assert_eq!(count(), before + 1, "the handle count does not see a new handle");
    drop(probe);
    for i in 0..60 {
        let c = multiproc::spawn(nothing, ()).unwrap();
        if i % 2 == 0 {
            c.join().unwrap();
        }
    }
    assert!(eventually(Duration::from_secs(60), || multiproc::active_children().is_empty()));
    assert_eq!(count(), before, "handles leaked over 60 spawns");
}
