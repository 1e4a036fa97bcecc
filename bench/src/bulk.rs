//! `pipe_bulk_N`, N = 64, 4096, 65536, 1048576, 16777216 bytes: the
//! parent sends T bytes as messages of N bytes (`send_bytes`) over the
//! default duplex `pipe()` to a running child, which receives each with
//! `recv_bytes` (a fresh buffer each, as a user would) and checks its
//! length and its sequence number in its first and last 8 bytes; timed
//! until the child acknowledges the last. T is 8 MiB for 64 B, 128 MiB for
//! 4 KiB, 512 MiB above. Floor `raw_bulk_N`: the same messages over a bare
//! Unix socket pair between the same two processes, each behind an 8-byte
//! length written with it in one call; the child reads the length, then
//! exactly the body into one reused buffer, and checks it the same way.
//! Samples interleaved. (Two reads a message is what any receiver pays
//! that takes nothing of the next message off the socket, as a pipe's end
//! shared with other readers must not: reading ahead would take less.)

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use multiproc::{Connection, Handle, process_task};
use serde::{Deserialize, Serialize};

use crate::{interleaved, micros};

/// The message sizes of the curve.
pub(crate) const SIZES: [usize; 5] = [64, 4096, 65536, 1 << 20, 16 << 20];

const MIB: usize = 1 << 20;

/// Bytes per sample for messages of `size` bytes.
fn total(size: usize, quick: bool) -> usize {
    let t = match size {
        s if s <= 64 => 8 * MIB,
        s if s <= 4096 => 128 * MIB,
        _ => 512 * MIB,
    };
    if quick { t / 8 } else { t }
}

/// What the sink is told to receive next.
#[derive(Serialize, Deserialize)]
enum Round {
    /// `count` messages of `size` bytes over the bare socket.
    Raw { count: u64, size: u64 },
    /// The same over the connection.
    Pipe { count: u64, size: u64 },
}

fn check(workload: &str, msg: &[u8], size: usize, i: u64) {
    assert_eq!(msg.len(), size, "{workload}: message {i} has the wrong length");
    let seq = i.to_le_bytes();
    assert!(msg[..8] == seq && msg[size - 8..] == seq, "{workload}: message {i} out of order or torn");
}

/// Receives rounds until the command connection closes, acknowledging each
/// on the channel it came over.
#[process_task]
fn bulk_sink(cmd: Connection<Round>, conn: Connection<()>, raw: Handle<UnixStream>) {
    let mut raw = raw.into_inner();
    let mut buf = Vec::new();
    while let Ok(round) = cmd.recv() {
        match round {
            Round::Raw { count, size } => {
                let (size, name) = (size as usize, format!("raw_bulk_{size}"));
                for i in 0..count {
                    let mut len = [0u8; 8];
                    raw.read_exact(&mut len).unwrap();
                    buf.resize(u64::from_le_bytes(len) as usize, 0);
                    raw.read_exact(&mut buf).unwrap();
                    check(&name, &buf, size, i);
                }
                raw.write_all(&[1]).unwrap();
            }
            Round::Pipe { count, size } => {
                let (size, name) = (size as usize, format!("pipe_bulk_{size}"));
                for i in 0..count {
                    check(&name, &conn.recv_bytes().unwrap(), size, i);
                }
                conn.send_bytes(&[1]).unwrap();
            }
        }
    }
}

/// The parent's end: one message buffer (behind its length, for the bare
/// socket), the command connection, the connection and the bare socket.
struct Source {
    framed: Vec<u8>,
    cmd: Connection<Round>,
    conn: Connection<()>,
    raw: UnixStream,
}

impl Source {
    fn msg(&self) -> &[u8] {
        &self.framed[8..]
    }

    fn tag(&mut self, i: u64) {
        let (end, seq) = (self.framed.len(), i.to_le_bytes());
        self.framed[8..16].copy_from_slice(&seq);
        self.framed[end - 8..].copy_from_slice(&seq);
    }

    /// One round over the connection: µs.
    fn pipe(&mut self, count: u64) -> f64 {
        let size = self.msg().len() as u64;
        self.cmd.send(&Round::Pipe { count, size }).unwrap();
        micros(|| {
            for i in 0..count {
                self.tag(i);
                self.conn.send_bytes(self.msg()).unwrap();
            }
            assert_eq!(self.conn.recv_bytes().unwrap(), [1], "pipe_bulk_{size}: no acknowledgement");
        })
    }

    /// One round over the bare socket: µs.
    fn raw(&mut self, count: u64) -> f64 {
        let size = self.msg().len() as u64;
        self.cmd.send(&Round::Raw { count, size }).unwrap();
        micros(|| {
            for i in 0..count {
                self.tag(i);
                self.raw.write_all(&self.framed).unwrap();
            }
            let mut ack = [0u8];
            self.raw.read_exact(&mut ack).unwrap();
            assert_eq!(ack, [1], "raw_bulk_{size}: no acknowledgement");
        })
    }
}

/// The curve's point `size`, beside its floor.
pub(crate) fn point(size: usize, quick: bool) {
    let (cmd, cmd_theirs) = multiproc::pipe::<Round>().expect("pipe");
    let (conn, theirs) = multiproc::pipe::<()>().expect("pipe");
    let (raw, raw_theirs) = UnixStream::pair().expect("socketpair");
    let child = multiproc::spawn(bulk_sink, (cmd_theirs, theirs, Handle::new(raw_theirs))).expect("start sink");
    let mut framed = (size as u64).to_le_bytes().to_vec();
    framed.extend((0..size).map(|i| (i % 251) as u8));
    let src = std::cell::RefCell::new(Source { framed, cmd, conn, raw });
    let t = total(size, quick);
    let count = (t / size) as u64;
    let gb = t as f64 / 1e9;
    // Warm-up: an eighth of a sample each.
    src.borrow_mut().raw((count / 8).max(1));
    src.borrow_mut().pipe((count / 8).max(1));
    interleaved(
        if quick { 2 } else { 5 },
        "GB/s",
        (&format!("pipe_bulk_{size}"), &mut || gb / (src.borrow_mut().pipe(count) / 1e6)),
        (&format!("raw_bulk_{size}"), &mut || gb / (src.borrow_mut().raw(count) / 1e6)),
    );
    drop(src);
    child.join().expect("sink child");
}
