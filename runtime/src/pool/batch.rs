//! A batch of one function's tasks, as it crosses: the parent encodes the
//! arguments of a chunk in one call ([`Batch`]); the worker runs the tasks
//! of a `Run` message with the function's own (macro-generated) loop and
//! builds the `Done` message of their results; the parent decodes the
//! values of a `Done` in one call per run of them.
//!
//! ```text
//! Done    'D' record+
//! record  first:u64 count:u32 values_len:u64 failures_len:u64 values (offset:u32 status:u8 len:u64 bytes)*
//! ```
//!
//! A `Run` may carry several chunks (see [`super::message`]); their
//! results come back as one record each, in one message. The values of
//! the tasks that returned are encoded end to end, with no length of their
//! own (the function's codec knows where each ends); the tasks that failed
//! (rare) follow as failure records, by their offset in the record. An exit
//! hook's `Exit` message has the same layout.

use std::any::Any;
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};

use super::buffers;
use super::message::{self, Reader, Status, Writer};
use crate::__private::probe::{ArgsCodec, DecodeEach};
use crate::error::DecodeError;
use crate::sys::SharedWord;
use crate::wire::CodecError;

/// The encoded arguments of some tasks, end to end in one buffer.
#[doc(hidden)]
#[derive(Debug, Default, Clone)]
pub struct Batch {
    bytes: Vec<u8>,
    bounds: Bounds,
}

/// Where each task's bytes in a [`Batch`] end.
#[derive(Debug, Clone)]
enum Bounds {
    /// Each task's end, in order.
    Ends(Vec<usize>),
    /// So many tasks of one width (plain arguments): found by arithmetic.
    Width { width: usize, count: usize },
}

impl Default for Bounds {
    fn default() -> Bounds {
        Bounds::Ends(Vec::new())
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        buffers::give(std::mem::take(&mut self.bytes));
    }
}

impl Batch {
    /// An empty batch, in memory kept for reuse.
    pub(super) fn reusing() -> Batch {
        Batch { bytes: buffers::take(), bounds: Bounds::default() }
    }

    pub(super) fn len(&self) -> usize {
        match &self.bounds {
            Bounds::Ends(ends) => ends.len(),
            Bounds::Width { count, .. } => *count,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where task `i`'s bytes start (where the one before ends).
    fn offset(&self, i: usize) -> usize {
        match &self.bounds {
            Bounds::Ends(_) if i == 0 => 0,
            Bounds::Ends(ends) => ends[i - 1],
            Bounds::Width { width, .. } => width * i,
        }
    }

    /// Every task's bytes, end to end.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The tasks `range`, as a batch of their own.
    pub(super) fn part(&self, range: Range<usize>) -> Batch {
        let (start, end) = (self.offset(range.start), self.offset(range.end));
        let bounds = match &self.bounds {
            Bounds::Ends(ends) => Bounds::Ends(ends[range].iter().map(|e| e - start).collect()),
            &Bounds::Width { width, .. } => Bounds::Width { width, count: range.len() },
        };
        Batch { bytes: self.bytes[start..end].to_vec(), bounds }
    }

    /// Adds a task whose bytes `encode` appends, `width` of them if every
    /// task of the batch has that many; nothing if it fails.
    fn push<E>(&mut self, width: Option<usize>, encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<(), E> {
        let at = self.bytes.len();
        if let Err(e) = encode(&mut self.bytes) {
            self.bytes.truncate(at);
            return Err(e);
        }
        match (&mut self.bounds, width) {
            (Bounds::Width { width, count }, Some(w)) if *width == w => *count += 1,
            // The first task of a batch of plain arguments.
            (Bounds::Ends(ends), Some(width)) if ends.is_empty() => self.bounds = Bounds::Width { width, count: 1 },
            // Any other task's end is listed (and so are those of a batch of
            // one width that a task of another width joins: a function's
            // are all one, so none does).
            _ => {
                let mut ends = match std::mem::take(&mut self.bounds) {
                    Bounds::Ends(ends) => ends,
                    Bounds::Width { width, count } => (1..=count).map(|i| width * i).collect(),
                };
                ends.push(self.bytes.len());
                self.bounds = Bounds::Ends(ends);
            }
        }
        Ok(())
    }
}

/// A function's encoder of argument tuples onto a batch
/// ([`FunctionEntry::encode_args`](crate::registry::FunctionEntry)): the
/// tuples are a `Vec` of exactly the function's, which it empties; one
/// that cannot be encoded is handed to the callback with its position.
pub type EncodeArgs = fn(&mut dyn Any, &mut Batch, &mut dyn FnMut(usize, CodecError)) -> Result<(), CodecError>;

/// Encodes the argument tuples of `items` (a `Vec` of exactly `A`, which
/// it empties), in order, onto `into` with `codec` after `wrap`; one that
/// cannot be encoded is left out and handed to `failed` with its position
/// in `items`. What [`EncodeArgs`] runs, one call per chunk.
#[doc(hidden)]
pub fn encode_args<A: 'static, W>(
    items: &mut dyn Any,
    wrap: impl Fn(A) -> W,
    codec: ArgsCodec<W>,
    into: &mut Batch,
    failed: &mut dyn FnMut(usize, CodecError),
) -> Result<(), CodecError> {
    let items = items.downcast_mut::<Vec<A>>().ok_or_else(|| CodecError("the arguments are of another type".into()))?;
    let (encode, width) = (codec.encode_into, codec.width);
    match (&mut into.bounds, width) {
        (Bounds::Ends(ends), None) => ends.reserve(items.len()),
        (_, Some(width)) => into.bytes.reserve(width * items.len()),
        _ => {}
    }
    for (i, item) in items.drain(..).enumerate() {
        if let Err(e) = into.push(width, |out| encode(wrap(item), out)) {
            failed(i, e);
        }
    }
    Ok(())
}

/// How long a record's header is.
const RECORD_HEADER: usize = 8 + 4 + 8 + 8;

/// The tasks of a batch as a worker runs them, and the message of their
/// results it builds. What `FunctionEntry::run_batch` works on.
#[doc(hidden)]
#[derive(Debug)]
pub struct BatchRun<'a> {
    /// The arguments of the tasks not yet run, end to end.
    args: &'a [u8],
    /// How many tasks the next `run_batch` runs.
    todo: u32,
    /// The worker's number for the next task.
    next: u64,
    /// Where the worker says which task runs, for the parent to read if it
    /// dies.
    word: Option<&'a SharedWord>,
    /// The message: its kind, the records sealed so far, then the open
    /// record's header and values.
    msg: Vec<u8>,
    /// Where the open record starts in `msg`.
    record: usize,
    /// The open record's failures, appended to it when it is sealed.
    failures: Writer,
    /// How many tasks the open record holds.
    count: u32,
    /// Why the arguments stopped decoding: the tasks after that one cannot
    /// be told apart, so they fail the same way.
    broken: Option<String>,
}

impl<'a> BatchRun<'a> {
    /// The tasks whose arguments are `args`, the first numbered `first`;
    /// their messages are built in `buffer`'s memory.
    pub(super) fn new(args: &'a [u8], first: u64, word: Option<&'a SharedWord>, buffer: Vec<u8>) -> BatchRun<'a> {
        let mut run = BatchRun {
            args,
            todo: 0,
            next: first,
            word,
            msg: buffer,
            record: 0,
            failures: Writer::default(),
            count: 0,
            broken: None,
        };
        run.start_message();
        run
    }

    fn start_message(&mut self) {
        self.msg.clear();
        self.msg.push(0);
        self.open_record();
    }

    fn open_record(&mut self) {
        self.record = self.msg.len();
        self.msg.resize(self.record + RECORD_HEADER, 0);
        self.msg[self.record..self.record + 8].copy_from_slice(&self.next.to_le_bytes());
        self.count = 0;
    }

    /// Completes the open record's header and appends its failures.
    fn seal_record(&mut self) {
        let at = self.record;
        let values_len = (self.msg.len() - at - RECORD_HEADER) as u64;
        let failures_len = self.failures.0.len() as u64;
        self.msg[at + 8..at + 12].copy_from_slice(&self.count.to_le_bytes());
        self.msg[at + 12..at + 20].copy_from_slice(&values_len.to_le_bytes());
        self.msg[at + 20..at + 28].copy_from_slice(&failures_len.to_le_bytes());
        self.msg.append(&mut self.failures.0);
    }

    /// The tasks from here on are another chunk's, whose arguments are
    /// `args`: their results go in a record of their own.
    pub(super) fn next_chunk(&mut self, args: &'a [u8]) {
        if self.msg.len() > self.record + RECORD_HEADER || self.count > 0 {
            self.seal_record();
            self.open_record();
        }
        self.args = args;
        self.broken = None;
    }

    /// Sets how many tasks the next run runs.
    pub(super) fn set_todo(&mut self, n: u32) {
        self.todo = n;
    }

    /// Fails the next tasks without running them, and any after them:
    /// their function is not in the table, or their arguments cannot be
    /// told apart.
    pub(super) fn refuse(&mut self, why: String) {
        for _ in 0..std::mem::take(&mut self.todo) {
            self.starting();
            self.finished(Some((Status::BadArguments, why.clone().into_bytes())));
        }
        self.broken = Some(why);
    }

    #[inline]
    fn starting(&mut self) {
        if let Some(word) = self.word {
            // Task `next` runs: the parent reads this if the worker dies.
            word.store(self.next + 1);
        }
    }

    #[inline]
    fn finished(&mut self, failure: Option<(Status, Vec<u8>)>) {
        if let Some((status, bytes)) = failure {
            self.failures.u32(self.count).item(status, &bytes);
        }
        self.count += 1;
        self.next += 1;
    }

    /// How the one task run went: its status and its value's bytes (or
    /// why it failed), for an exit hook's message.
    pub(super) fn into_single(mut self) -> (Status, Vec<u8>) {
        let msg = self.take_message(message::EXIT);
        match Done::parse(&msg).map(|mut records| records.pop()) {
            Ok(Some(done)) => match done.failures.first() {
                Some((_, status, bytes)) => (*status, msg[bytes.clone()].to_vec()),
                None => (Status::Returned, msg[done.values].to_vec()),
            },
            // Neither happens: the message was built just now, by this very
            // code, with one record.
            Ok(None) => (Status::Nothing, Vec::new()),
            Err(e) => (Status::Unencodable, e.to_string().into_bytes()),
        }
    }

    /// The message of the tasks run since the last one, of kind `kind`;
    /// the next one starts empty (in new memory, until [`reuse`](Self::reuse)).
    pub(super) fn take_message(&mut self, kind: u8) -> Vec<u8> {
        self.seal_record();
        self.msg[0] = kind;
        let msg = std::mem::take(&mut self.msg);
        self.start_message();
        msg
    }

    /// Builds the next message in the memory of `msg`, one sent.
    pub(super) fn reuse(&mut self, msg: Vec<u8>) {
        if msg.capacity() > self.msg.capacity() {
            self.msg = msg;
            self.start_message();
        }
    }

    /// The memory messages are built in, for the next batch.
    pub(super) fn into_buffer(self) -> Vec<u8> {
        self.msg
    }
}

/// Runs the next `todo` tasks of `run`: decodes their arguments with
/// `decode`, calls `call` on each, encodes its value with `write`. A panic
/// or a value that cannot be encoded fails that task alone; arguments that
/// do not decode fail their task and the rest.
#[doc(hidden)]
pub fn run_batch<W, R>(
    run: &mut BatchRun<'_>,
    decode: DecodeEach<W>,
    call: impl Fn(W) -> R,
    write: fn(R, &mut Vec<u8>) -> Result<(), CodecError>,
) {
    let todo = std::mem::take(&mut run.todo);
    let start = run.count;
    if run.broken.is_none() {
        let mut args = run.args;
        let decoded = decode(&mut args, todo as usize, &mut |w| {
            run.starting();
            let at = run.msg.len();
            let msg = &mut run.msg;
            let ran = panic::catch_unwind(AssertUnwindSafe(|| write(call(w), msg)));
            let failure = match ran {
                Ok(Ok(())) => None,
                Ok(Err(e)) => {
                    Some((Status::Unencodable, format!("the return value could not be encoded: {e}").into_bytes()))
                }
                Err(payload) => Some((Status::Panicked, message::encode_panic(&crate::bootstrap::panic_info(payload)))),
            };
            if failure.is_some() {
                run.msg.truncate(at);
            }
            run.finished(failure);
        });
        run.args = args;
        if let Err(e) = decoded {
            run.broken = Some(format!("the arguments did not decode: {e}"));
        }
    }
    // The tasks whose arguments could not be told apart.
    let left = todo - (run.count - start);
    if left > 0 {
        let why = run.broken.clone().unwrap_or_default();
        run.todo = left;
        run.refuse(why);
    }
}

/// Decodes `count` values with `decode` from the front of `input` onto the
/// end of `out`, a `Vec<R>`.
#[doc(hidden)]
pub fn decode_values<R: 'static>(
    input: &mut &[u8],
    count: usize,
    out: &mut dyn Any,
    decode: DecodeEach<R>,
) -> Result<(), DecodeError> {
    let out = out
        .downcast_mut::<Vec<R>>()
        .ok_or_else(|| DecodeError::Invalid("the results were asked for as another type".into()))?;
    out.reserve(count);
    decode(input, count, &mut |v| out.push(v))
}

/// One record of a `Done` (or `Exit`) message, parsed: which tasks, where
/// their values are, and which failed.
#[derive(Debug)]
pub(super) struct Done {
    /// The worker's number for the first task.
    pub(super) first: u64,
    pub(super) count: usize,
    /// The values' bytes in the message.
    pub(super) values: Range<usize>,
    /// The tasks that failed: offset, status, bytes in the message.
    pub(super) failures: Vec<(usize, Status, Range<usize>)>,
}

impl Done {
    /// The records of a message, in order.
    pub(super) fn parse(msg: &[u8]) -> Result<Vec<Done>, DecodeError> {
        let mut r = Reader(msg.get(1..).ok_or_else(|| message::malformed("it ends early"))?);
        let mut records = Vec::new();
        while !r.0.is_empty() {
            let first = r.u64()?;
            let count = r.u32()? as usize;
            let (values_len, failures_len) = (r.length()?, r.length()?);
            let start = msg.len() - r.0.len();
            let values = start..start + r.take(values_len)?.len();
            let failures = r.take(failures_len)?;
            let mut f = Reader(failures);
            let mut parsed = Vec::new();
            while !f.0.is_empty() {
                let offset = f.u32()? as usize;
                let (status, bytes) = f.item()?;
                if offset >= count || parsed.last().is_some_and(|&(o, _, _)| o >= offset) {
                    return Err(message::malformed("a failure out of order"));
                }
                let at = bytes.as_ptr() as usize - msg.as_ptr() as usize;
                parsed.push((offset, status, at..at + bytes.len()));
            }
            records.push(Done { first, count, values, failures: parsed });
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_squares(run: &mut BatchRun<'_>, todo: u32) {
        run.set_todo(todo);
        run_batch(
            run,
            crate::wire::decode_each::<(u64,)>,
            |(x,)| {
                assert!(x != 3, "no threes");
                x * x
            },
            |v, out| crate::wire::encode_into(out, &v),
        );
    }

    fn square_batch(args: &[u8], first: u64, todo: u32) -> Vec<u8> {
        let mut run = BatchRun::new(args, first, None, Vec::new());
        run_squares(&mut run, todo);
        run.take_message(message::DONE)
    }

    fn encoded(xs: &[u64]) -> Vec<u8> {
        let mut args = Vec::new();
        for x in xs {
            crate::wire::encode_into(&mut args, &(x,)).unwrap();
        }
        args
    }

    fn quietly<R>(f: impl FnOnce() -> R) -> R {
        let prev = panic::take_hook();
        panic::set_hook(Box::new(|_| {}));
        let r = f();
        panic::set_hook(prev);
        r
    }

    fn values_of(msg: &[u8], done: &Done) -> Vec<u64> {
        let mut values = &msg[done.values.clone()];
        let mut out: Vec<u64> = Vec::new();
        decode_values(&mut values, done.count - done.failures.len(), &mut out, crate::wire::decode_each::<u64>)
            .unwrap();
        assert!(values.is_empty());
        out
    }

    #[test]
    fn values_end_to_end_and_failures_by_offset() {
        let args = encoded(&[1, 2, 3, 400]);
        let msg = quietly(|| square_batch(&args, 7, 4));
        let [done] = &Done::parse(&msg).unwrap()[..] else { panic!("one record") };
        assert_eq!((done.first, done.count), (7, 4));
        assert_eq!(done.failures.len(), 1);
        assert_eq!((done.failures[0].0, done.failures[0].1), (2, Status::Panicked));
        assert_eq!(values_of(&msg, done), [1, 4, 160_000]);
    }

    #[test]
    fn arguments_that_stop_decoding_fail_the_rest() {
        let msg = square_batch(&[0xff], 0, 2);
        let [done] = &Done::parse(&msg).unwrap()[..] else { panic!("one record") };
        assert_eq!(
            done.failures.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(),
            [(0, Status::BadArguments), (1, Status::BadArguments)]
        );
        assert!(done.values.is_empty());
    }

    #[test]
    fn each_chunk_of_a_run_has_its_record_and_its_own_arguments() {
        let (a, b, c) = (encoded(&[1, 2]), [0xffu8], encoded(&[3, 4, 5]));
        let mut run = BatchRun::new(&[], 10, None, Vec::new());
        let msg = quietly(|| {
            for (args, n) in [(&a[..], 2), (&b[..], 1), (&c[..], 3)] {
                run.next_chunk(args);
                run_squares(&mut run, n);
            }
            run.take_message(message::DONE)
        });
        let records = Done::parse(&msg).unwrap();
        let firsts: Vec<_> = records.iter().map(|d| (d.first, d.count)).collect();
        assert_eq!(firsts, [(10, 2), (12, 1), (13, 3)]);
        assert_eq!(values_of(&msg, &records[0]), [1, 4]);
        // Arguments that do not decode fail their chunk, not the next.
        assert_eq!(records[1].failures[0].1, Status::BadArguments);
        assert_eq!(records[2].failures.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(), [(0, Status::Panicked)]);
        assert_eq!(values_of(&msg, &records[2]), [16, 25]);
    }

    #[test]
    fn a_malformed_message_is_an_error() {
        let mut msg = square_batch(&[], 0, 0);
        assert!(Done::parse(&msg[..5]).is_err());
        msg[13] = 200; // values past the end
        assert!(Done::parse(&msg).is_err());
    }
}
