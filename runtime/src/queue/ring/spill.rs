//! Spilled items: written to a memfd of their own, sent through the
//! queue's socket pair in sequence order under the lock, received by the
//! consumer that takes the spill record (see the module above).

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;

use super::{Guard, Ring, RingError, SPILL_RECORD};
use crate::sys::imp::shm;

impl Ring {
    /// Receives spilled item `seq`'s memfd (under the lock, for a spill
    /// record about to be removed); `None` if a consumer that died had
    /// claimed it (the item went with that consumer).
    pub(super) fn receive(&self, seq: u64) -> Result<Option<std::fs::File>, RingError> {
        let h = self.header();
        if seq < h.spill_claimed.load(Ordering::Relaxed) {
            return Ok(None);
        }
        // Claimed before it is received: if this process dies in between,
        // the next consumer skips the record, and drops the datagram as
        // stale when it receives past it.
        h.spill_claimed.store(seq.saturating_add(1), Ordering::Relaxed);
        loop {
            match shm::spill_recv(self.rx.as_fd())? {
                // Sent by a producer that died before committing, or
                // claimed by a consumer that died before receiving it.
                Some((n, _)) if n < seq => continue,
                Some((n, Some(file))) if n == seq => return Ok(Some(file)),
                Some((n, _)) => {
                    return Err(RingError::Corrupt(format!("spilled item {seq} is missing (found item {n})")));
                }
                None => return Err(RingError::Corrupt(format!("spilled item {seq} is missing"))),
            }
        }
    }

    /// Drops every datagram in the spill socket. Only under the lock, with
    /// no item in the queue: nothing in the socket is then referenced.
    fn drop_stale_spills(&self, _guard: &Guard<'_>) {
        while let Ok(Some(_)) = shm::spill_recv(self.rx.as_fd()) {}
    }
}

/// An item written to a memfd, not yet referenced by the ring.
pub(super) struct Spill {
    file: std::fs::File,
    seq: u64,
    /// The spill record's payload: the item's length, then `seq`.
    pub(super) record: Vec<u8>,
}

impl Spill {
    /// Writes `bytes` to a new memfd.
    pub(super) fn write(bytes: &[u8]) -> io::Result<Spill> {
        let file = shm::spill_memfd(bytes)?;
        let mut record = Vec::with_capacity(SPILL_RECORD);
        record.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        record.extend_from_slice(&0u64.to_le_bytes());
        Ok(Spill { file, seq: 0, record })
    }

    /// Gives the item the sequence number `seq` (taken under the lock).
    pub(super) fn number(&mut self, seq: u64) {
        self.seq = seq;
        self.record[8..].copy_from_slice(&seq.to_le_bytes());
    }

    /// Sends the memfd through the queue's spill socket, under the lock,
    /// just before the commit. False if there is no room for it now (the
    /// socket is full, or this user has too many descriptors in flight);
    /// with `count == 0` items queued, whatever is in the socket is stale
    /// and is dropped first.
    pub(super) fn send(&self, ring: &Ring, guard: &Guard<'_>, count: u64) -> io::Result<bool> {
        let no_room =
            |e: &io::Error| e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ETOOMANYREFS);
        match shm::spill_send(ring.tx.as_fd(), self.seq, &self.file) {
            Ok(()) => Ok(true),
            Err(e) if no_room(&e) && count == 0 => {
                ring.drop_stale_spills(guard);
                match shm::spill_send(ring.tx.as_fd(), self.seq, &self.file) {
                    Ok(()) => Ok(true),
                    Err(e) if no_room(&e) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Err(e) if no_room(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The item's length and sequence number, from a spill record.
    pub(super) fn parse(payload: &[u8]) -> Result<(usize, u64), RingError> {
        let corrupt = || RingError::Corrupt("a malformed spill record".into());
        let (len, seq) = payload.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let seq: [u8; 8] = seq.try_into().map_err(|_| corrupt())?;
        let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| corrupt())?;
        Ok((len, u64::from_le_bytes(seq)))
    }
}
