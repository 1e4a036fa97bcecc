//! Receiving through an [`Inbox`]: what is queued on the socket is read in
//! one call, as much as there is, and the messages are taken from it. A
//! message then costs one read, not the look and the read a receive
//! without one takes (which must leave the next message on the socket for
//! whoever reads it next). For a channel one owner reads alone, such as a
//! pool's link to its worker, where a round trip's system calls are most
//! of its time.

use std::time::Duration;

use super::receive::parse_header;
use super::{AsFd, Connection, ConnectionError, HEADER_LEN, Readable, sys};

/// How much one read of the socket takes at most.
const READ: usize = 64 * 1024;

/// Bytes read from a connection ahead of the messages they belong to.
/// Every receive on the connection must go through the same inbox.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    buf: Vec<u8>,
    /// Where the bytes not yet taken start.
    at: usize,
}

impl Inbox {
    fn queued(&self) -> &[u8] {
        &self.buf[self.at..]
    }

    fn take(&mut self, n: usize) {
        self.at += n;
        if self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        }
    }
}

impl<T, M: Readable> Connection<T, M> {
    /// Receives one raw message through `inbox` into the buffer `buffer`
    /// gives for its length (emptied first; it grows as the body comes if
    /// it is too small): a loop that receives messages of similar sizes
    /// into buffers it reuses allocates (and faults in) their memory once.
    pub(crate) fn recv_bytes_through(
        &self,
        inbox: &mut Inbox,
        buffer: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<Vec<u8>, ConnectionError> {
        if self.broken.get() {
            return Err(ConnectionError::Broken);
        }
        self.guard(|| {
            while inbox.queued().len() < HEADER_LEN {
                if self.fill(inbox)? == 0 {
                    return Err(match inbox.queued().len() {
                        0 => ConnectionError::Eof,
                        n => ConnectionError::Truncated { got: n as u64, want: HEADER_LEN as u64 },
                    });
                }
            }
            let header = inbox.queued()[..HEADER_LEN].try_into().expect("a header's bytes");
            let len = parse_header(header)?;
            inbox.take(HEADER_LEN);
            let mut body = buffer(len);
            body.clear();
            let here = inbox.queued().len().min(usize::try_from(len).unwrap_or(usize::MAX));
            body.extend_from_slice(&inbox.queued()[..here]);
            inbox.take(here);
            // The rest goes straight into the body.
            self.read_body(len - here as u64, &mut body)?;
            Ok(body)
        })
    }

    /// [`poll`](Connection::poll) for a connection read through `inbox`:
    /// what it holds is ready at once.
    pub(crate) fn poll_through(&self, inbox: &Inbox, timeout: Option<Duration>) -> Result<bool, ConnectionError> {
        if !inbox.queued().is_empty() {
            return Ok(true);
        }
        self.poll(timeout)
    }

    /// Reads what is queued on the socket onto the end of `inbox`, waiting
    /// (busy at first, if this end spins) until something is; 0 at EOF.
    fn fill(&self, inbox: &mut Inbox) -> std::io::Result<usize> {
        if self.spin.get() && super::spinning_pays() {
            self.spin_ready();
        }
        if inbox.at > 0 {
            inbox.buf.drain(..inbox.at);
            inbox.at = 0;
        }
        inbox.buf.reserve(READ);
        sys::recv_into_spare(self.fd.as_fd(), &mut inbox.buf, READ)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_queued_together_come_out_one_by_one_and_a_long_one_whole() {
        let (a, b) = crate::pipe::<()>().unwrap();
        let long = vec![7u8; 3 * READ + 5];
        let sent = long.clone();
        // Sent from another thread: a pipe may hold less than the long one.
        let writer = std::thread::spawn(move || {
            for m in [&b"one"[..], b"", b"three", &sent] {
                a.send_bytes(m).unwrap();
            }
        });
        let mut inbox = Inbox::default();
        assert!(b.poll_through(&inbox, Some(Duration::from_secs(60))).unwrap());
        let mut got = Vec::new();
        loop {
            match b.recv_bytes_through(&mut inbox, |_| Vec::new()) {
                Ok(m) => got.push(m),
                Err(ConnectionError::Eof) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, [b"one".to_vec(), Vec::new(), b"three".to_vec(), long]);
        writer.join().unwrap();
    }

    #[test]
    fn a_message_cut_short_is_truncated() {
        let (a, b) = crate::pipe::<()>().unwrap();
        let header = crate::wire::header(crate::wire::FrameKind::Message, 10);
        crate::sys::imp::send_vectored(a.fd.as_fd(), &[&header, b"four"]).unwrap();
        drop(a);
        let mut inbox = Inbox::default();
        let e = b.recv_bytes_through(&mut inbox, |_| Vec::new()).unwrap_err();
        assert!(matches!(e, ConnectionError::Truncated { .. }), "{e:?}");
        assert!(matches!(b.recv_bytes_through(&mut inbox, |_| Vec::new()), Err(ConnectionError::Broken)));
    }

    #[test]
    fn an_os_pipe_carries_messages_of_every_size_and_ends_in_eof() {
        let (rx, tx) = crate::pipe::fast_one_way::<()>().unwrap();
        #[cfg(unix)]
        assert!(rx.os_pipe && tx.os_pipe, "a test binary ignores SIGPIPE: the link is an OS pipe");
        let big = vec![3u8; 1 << 20];
        let writer = std::thread::spawn(move || {
            for m in [&b"a"[..], &[9u8; 600], &big] {
                tx.send_bytes(m).unwrap();
            }
        });
        let mut inbox = Inbox::default();
        let sizes: Vec<usize> =
            (0..3).map(|_| rx.recv_bytes_through(&mut inbox, |_| Vec::new()).unwrap().len()).collect();
        assert_eq!(sizes, [1, 600, 1 << 20]);
        writer.join().unwrap();
        assert!(matches!(rx.recv_bytes(), Err(ConnectionError::Eof)));
        // Plain receives work on a pipe too.
        let (rx, tx) = crate::pipe::fast_one_way::<u32>().unwrap();
        tx.send(&7).unwrap();
        assert_eq!(rx.recv().unwrap(), 7);
        drop(rx);
        assert!(tx.send(&8).is_err(), "a write to a pipe no one reads is an error");
    }
}
