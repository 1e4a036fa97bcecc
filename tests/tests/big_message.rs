//! A 3 GiB message crosses a pipe whole: lengths are 64-bit end to end.
//! Alone in its binary, since it holds a few GiB of memory while it runs.

#![cfg(target_os = "linux")]

use multiproc::{Connection, process_task};

const LEN: usize = 3 << 30;

/// Receives one message and returns its length and a checksum.
#[process_task]
fn measure(conn: Connection<()>) -> (u64, u64) {
    let msg = conn.recv_bytes().unwrap();
    (msg.len() as u64, checksum(&msg))
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.chunks(4096).fold(0u64, |h, c| h.rotate_left(5) ^ u64::from(c[0]) ^ (c.len() as u64))
}

#[test]
fn a_three_gib_message_round_trips() {
    let (here, there) = multiproc::pipe::<()>().unwrap();
    let child = multiproc::spawn(measure, (there,)).unwrap();
    let mut msg = vec![0u8; LEN];
    for (i, chunk) in msg.chunks_mut(4096).enumerate() {
        chunk[0] = i as u8;
    }
    let want = checksum(&msg);
    here.send_bytes(&msg).unwrap();
    drop(msg);
    assert_eq!(child.join().unwrap(), (LEN as u64, want));
}
