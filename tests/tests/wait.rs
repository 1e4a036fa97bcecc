//! `multiproc::wait` over connections and process sentinels at once
//! (Python's `multiprocessing.connection.wait`).

use std::time::{Duration, Instant};

use multiproc::{Connection, Waitable, process_task};

/// Replies on `out` when told to on `cmd`, then exits when told to.
#[process_task]
fn on_command(cmd: Connection<u32>, out: Connection<u32>) {
    while let Ok(n) = cmd.recv() {
        if n == 0 {
            return;
        }
        out.send(&(n * 10)).unwrap();
    }
}

#[test]
fn wait_reports_exactly_the_ready_objects() {
    let (cmd, cmd_child) = multiproc::pipe::<u32>().unwrap();
    let (out, out_child) = multiproc::pipe::<u32>().unwrap();
    let (quiet, _quiet_other) = multiproc::pipe::<u32>().unwrap();
    let child = multiproc::spawn(on_command, (cmd_child, out_child)).unwrap();

    // Nothing ready: the timeout passes, and about that long.
    let t = Instant::now();
    let objects: [&dyn Waitable; 3] = [&quiet, &out, &child];
    assert!(multiproc::wait(&objects, Some(Duration::from_millis(200))).unwrap().is_empty());
    assert!(t.elapsed() >= Duration::from_millis(100));

    // A message makes its connection ready, and only it.
    cmd.send(&4).unwrap();
    assert_eq!(multiproc::wait(&objects, Some(Duration::from_secs(20))).unwrap(), [1]);
    assert_eq!(out.recv().unwrap(), 40);

    // The child's end makes its sentinel ready; its closed pipe too.
    cmd.send(&0).unwrap();
    let ready = multiproc::wait(&[&child], Some(Duration::from_secs(20))).unwrap();
    assert_eq!(ready, [0]);
    assert!(!child.is_alive());
    let ready = multiproc::wait(&objects, Some(Duration::ZERO)).unwrap();
    assert_eq!(ready, [1, 2], "EOF on `out`, and the child's end");
    child.join().unwrap();
}

/// A message queued behind one just received makes the end ready: a
/// receive takes exactly one message, so the next is still on the socket.
#[test]
fn wait_sees_a_message_queued_behind_one_received() {
    let (a, b) = multiproc::pipe::<u32>().unwrap();
    a.send(&1).unwrap();
    a.send(&2).unwrap();
    assert_eq!(b.recv().unwrap(), 1);
    let objects: [&dyn Waitable; 1] = [&b];
    assert_eq!(multiproc::wait(&objects, Some(Duration::from_secs(5))).unwrap(), [0]);
    assert_eq!(b.recv().unwrap(), 2);
    assert!(multiproc::wait(&objects, Some(Duration::from_millis(50))).unwrap().is_empty());
}
