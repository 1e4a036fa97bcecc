//! A lone task sent by the caller itself. `apply_async` on a pool with an
//! idle worker sends the task straight to that worker, and the `get` that
//! waits for it receives the result from the worker itself: a round trip
//! is the task's message and its result's, with no hand-off between
//! threads on the way (on one CPU each hand-off is a context switch, and
//! they cost more than the messages).
//!
//! A driver that waits for work leaves its worker in its [`Seat`], for a
//! caller to take. It takes the worker back when it has other work, when
//! the pool closes, or when the result is left to it (a callback, a result
//! dropped unread): then it receives the result as it would its own.

use std::time::Instant;

use super::driver::{Chunk, Phase, Shared, State};
use super::link::{Flight, Ran, Received, Worker};

/// Where a driver's worker is.
pub(super) enum Seat {
    /// With its driver, which runs chunks or is starting a worker.
    Driving,
    /// Its driver waits for work: a caller may send it a lone task.
    Idle(Worker),
    /// A caller sent it a lone task whose result is not received yet.
    Direct(Worker, Flight),
    /// A caller is sending to it or receiving from it; `awaited`: its
    /// driver waits to have it back.
    Borrowed { awaited: bool },
    /// A lone task whose result its caller left to the driver.
    Handed(Worker, Flight),
    /// It was lost while a caller had it: its driver starts another.
    Gone,
}

impl Shared {
    /// Sends a lone untimed task straight to an idle worker. `Ok(Some)`:
    /// the worker it went to; `Ok(None)`: the worker was lost as it was
    /// sent, and the task is charged or queued as a driver would; `Err`:
    /// no worker is idle (or work is queued), and the chunk is handed back.
    pub(super) fn send_direct(&self, chunk: Chunk) -> Result<Option<usize>, Chunk> {
        let (slot, mut worker) = {
            let mut s = self.lock();
            let idle = s.seats.iter().position(|seat| matches!(seat, Seat::Idle(_)));
            let Some(slot) = idle.filter(|_| s.phase == Phase::Running && s.queue.is_empty() && s.broken.is_none())
            else {
                return Err(chunk);
            };
            match std::mem::replace(&mut s.seats[slot], Seat::Borrowed { awaited: false }) {
                Seat::Idle(worker) => (slot, worker),
                other => {
                    s.seats[slot] = other;
                    return Err(chunk);
                }
            }
        };
        let mut flight = Flight::new();
        if !worker.send(vec![chunk], &mut flight) {
            worker.lost(self, flight, None);
            self.put_seat(slot, Seat::Gone);
            return Ok(None);
        }
        self.put_seat(slot, Seat::Direct(worker, flight));
        Ok(Some(slot))
    }

    /// Receives the result of the lone task of the job at `job`, sent to
    /// worker `slot`, until `deadline` (`None`: until it is in). Does
    /// nothing if the task is not there for the caller to receive: its
    /// result is in, or its driver has it.
    pub(super) fn receive_direct(&self, slot: usize, job: *const (), deadline: Option<Instant>) {
        let Some((mut worker, mut flight)) = self.borrow(slot, job) else { return };
        let seat = match worker.receive(self, &mut flight, deadline) {
            Received::Finished => Seat::Idle(worker),
            Received::Pending => Seat::Direct(worker, flight),
            Received::Lost => Seat::Gone,
        };
        self.put_seat(slot, seat);
    }

    /// Leaves the result of the lone task of the job at `job`, sent to
    /// worker `slot`, to its driver (a result dropped unread, or one a
    /// callback waits for).
    pub(super) fn hand_back(&self, slot: usize, job: *const ()) {
        let mut s = self.lock();
        if let Some((worker, flight)) = take_direct(&mut s, slot, job) {
            s.seats[slot] = Seat::Handed(worker, flight);
            drop(s);
            self.wake(true);
        }
    }

    /// Takes worker `slot` and its flight if they hold `job`'s lone task.
    fn borrow(&self, slot: usize, job: *const ()) -> Option<(Worker, Flight)> {
        let mut s = self.lock();
        let taken = take_direct(&mut s, slot, job)?;
        s.seats[slot] = Seat::Borrowed { awaited: false };
        Some(taken)
    }

    /// Puts a borrowed worker back in its seat, and wakes its driver if it
    /// waits for it.
    fn put_seat(&self, slot: usize, seat: Seat) {
        let mut s = self.lock();
        let awaited = matches!(s.seats[slot], Seat::Borrowed { awaited: true });
        s.seats[slot] = seat;
        drop(s);
        if awaited {
            self.wake(true);
        }
    }

    /// A driver's worker back from its seat, if the driver needs it: it
    /// has work (`wanted`) or was left a result. `false`: a caller has it
    /// for a moment; the driver waits and asks again. Called with the lock
    /// held (it is released while a flight is finished).
    pub(super) fn reclaim<'a>(
        &'a self,
        mut s: std::sync::MutexGuard<'a, State>,
        slot: usize,
        wanted: bool,
        worker: &mut Option<Worker>,
    ) -> (std::sync::MutexGuard<'a, State>, bool) {
        match std::mem::replace(&mut s.seats[slot], Seat::Driving) {
            Seat::Driving => {}
            Seat::Gone => *worker = None,
            Seat::Idle(w) if wanted => *worker = Some(w),
            Seat::Handed(w, flight) => {
                drop(s);
                *worker = finish(w, self, flight);
                s = self.lock();
            }
            Seat::Direct(w, flight) if wanted => {
                if !s.queue.is_empty() {
                    // This worker is busy: another driver may take the work.
                    self.wake(false);
                }
                drop(s);
                *worker = finish(w, self, flight);
                s = self.lock();
            }
            Seat::Borrowed { .. } if wanted => {
                if !s.queue.is_empty() {
                    self.wake(false);
                }
                s.seats[slot] = Seat::Borrowed { awaited: true };
                return (s, false);
            }
            other => s.seats[slot] = other,
        }
        (s, true)
    }
}

/// `job`'s lone task and its worker out of seat `slot`, if they are there.
fn take_direct(s: &mut State, slot: usize, job: *const ()) -> Option<(Worker, Flight)> {
    let ours = match &s.seats[slot] {
        Seat::Direct(_, flight) => flight.front().is_some_and(|f| f.is_for(job)),
        _ => false,
    };
    if !ours {
        return None;
    }
    match std::mem::replace(&mut s.seats[slot], Seat::Driving) {
        Seat::Direct(worker, flight) => Some((worker, flight)),
        other => {
            s.seats[slot] = other;
            None
        }
    }
}

/// Receives what a lone task's caller left; the worker, unless it is lost.
fn finish(mut worker: Worker, shared: &Shared, flight: Flight) -> Option<Worker> {
    match worker.finish(shared, flight) {
        Ran::Finished => Some(worker),
        Ran::Lost => None,
    }
}
