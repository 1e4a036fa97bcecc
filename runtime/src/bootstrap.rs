//! The child side: recognise a re-executed child before `main`, read its
//! bootstrap frame, dispatch to the registered target, report, exit.
//!
//! This runs from a constructor (an `.init_array` entry on ELF, a CRT
//! initialiser on Windows), so a child never reaches the user's `main`, in
//! any kind of binary: programs, `cargo test` harnesses, doc tests.
//! Code here therefore cannot rely on what Rust's start-up normally does:
//! it ignores SIGPIPE itself, and flushes stdout before exiting.

use std::io::{self, Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::{self, ThreadId};
use std::time::Duration;

use crate::error::{BootstrapFailure, DecodeError, PanicInfo};
use crate::process::{self, table};
use crate::registry::{self, Incoming, Invoked};
use crate::report;
use crate::sys::{self, imp::Channel};
use crate::wire::{self, Bootstrap, FrameError, FrameKind, Outcome, Part, Source, Stream};

/// The longest a child waits for the next bytes of its bootstrap frame
/// before it gives up with [`BootstrapFailure::Stalled`] (exit code 119):
/// a stalled parent or a descriptor nobody writes to never hangs a child.
/// The parent writes the frame right after starting the child, so only a
/// parent that is stopped (`SIGSTOP`, a debugger) or gone comes near it.
pub const BOOTSTRAP_SILENCE: Duration = Duration::from_secs(10);

#[ctor::ctor(unsafe)]
fn multiproc_dispatch() {
    if let Some(child) = prepared() {
        run_child(child)
    }
}

/// A child's bootstrap, read and checked, waiting to be dispatched.
pub(crate) struct Prepared {
    /// The channel to the parent.
    pub(crate) chan: Arc<Channel>,
    /// The frame's head.
    pub(crate) boot: Bootstrap,
    /// The rest of the frame, the arguments, still on the channel until
    /// dispatch decodes them.
    payload: Mutex<Option<Incoming<'static>>>,
}

/// Set once the task is about to run: from then on this child may start
/// children of its own.
static DISPATCHED: AtomicBool = AtomicBool::new(false);

/// This process's bootstrap if it is a spawned child, read on first use:
/// by the dispatcher, or earlier by code that runs before it (a user's
/// constructor asking for `current_process()`), so that both see the same
/// identity. A child whose bootstrap cannot be trusted or read exits here
/// with its failure's code.
pub(crate) fn prepared() -> Option<&'static Prepared> {
    static PREPARED: OnceLock<Option<Prepared>> = OnceLock::new();
    PREPARED.get_or_init(prepare).as_ref()
}

/// True in a spawned child until its task starts: it may not start
/// children yet (that would be a fork bomb in the making).
pub(crate) fn not_dispatched() -> bool {
    prepared().is_some() && !DISPATCHED.load(Ordering::Acquire)
}

fn prepare() -> Option<Prepared> {
    let spec = std::env::var_os(sys::BOOTSTRAP_ENV)?;
    // SAFETY: this runs before `main` (from the dispatcher, or from another
    // constructor's first call into the runtime), while the process has a
    // single thread, so nothing reads the environment concurrently.
    unsafe { std::env::remove_var(sys::BOOTSTRAP_ENV) };
    if sys::imp::is_secure_execution() {
        refuse(
            None,
            BootstrapFailure::Insecure,
            format!("{} is ignored: this process runs setuid, setgid or with capabilities", sys::BOOTSTRAP_ENV),
        );
    }
    let chan = Channel::inherited(&spec).unwrap_or_else(|e| {
        refuse(None, BootstrapFailure::BadEnvironment, format!("{}={spec:?}: {e}", sys::BOOTSTRAP_ENV))
    });
    let chan = Arc::new(chan);
    let (boot, payload) = read_bootstrap(&chan);
    if boot.build_id != sys::imp::exe_identity() {
        refuse(
            Some(&chan),
            BootstrapFailure::BinaryMismatch,
            "the parent runs a different executable than this one (was it rebuilt?)".into(),
        );
    }
    Some(Prepared { chan, boot, payload: Mutex::new(Some(payload)) })
}

/// Reads the bootstrap frame, waiting at most [`BOOTSTRAP_SILENCE`] for
/// each part of it.
struct ChannelReader(Arc<Channel>);

impl ChannelReader {
    fn read_with(&mut self, mut try_read: impl FnMut(&Channel) -> io::Result<Option<usize>>) -> io::Result<usize> {
        loop {
            // What has arrived costs one call; only an empty channel waits.
            if let Some(n) = try_read(&self.0)? {
                return Ok(n);
            }
            if !self.0.wait_readable(Some(BOOTSTRAP_SILENCE))? {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nothing arrived for {} s", BOOTSTRAP_SILENCE.as_secs()),
                ));
            }
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(|chan| chan.try_read(buf))
    }
}

impl Source for ChannelReader {
    fn read_spare(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        self.read_with(|chan| chan.try_read_spare(out, max))
    }
}

/// Prints the one-line reason, reports it to the parent if possible, and
/// exits with the failure's code.
fn refuse(chan: Option<&Channel>, kind: BootstrapFailure, message: String) -> ! {
    let _ = writeln!(io::stderr(), "multiproc: child process could not start: {kind}: {message}");
    if let Some(chan) = chan {
        let _ = send_report(chan, &Outcome::Refused { code: kind.exit_code(), message }, None);
    }
    sys::imp::exit_now(kind.exit_code())
}

/// Reads the bootstrap frame's header and head; the arguments stay on the
/// channel, to be decoded straight into the task's argument values.
fn read_bootstrap(chan: &Arc<Channel>) -> (Bootstrap, Incoming<'static>) {
    let mut reader = ChannelReader(Arc::clone(chan));
    let len = match wire::read_header(&mut reader) {
        Ok(Some((FrameKind::Bootstrap, len))) => len,
        Ok(Some((kind, _))) => {
            refuse(Some(chan), BootstrapFailure::Malformed, format!("expected a bootstrap frame, got {kind:?}"))
        }
        Ok(None) => refuse(Some(chan), BootstrapFailure::Truncated, "the channel closed before a frame arrived".into()),
        Err(e) => {
            let kind = match &e {
                FrameError::Io(io) if io.kind() == io::ErrorKind::TimedOut => BootstrapFailure::Stalled,
                FrameError::Truncated { .. } | FrameError::Io(_) => BootstrapFailure::Truncated,
                FrameError::TooLarge(_) => BootstrapFailure::TooLarge,
                FrameError::BadMagic(_) | FrameError::BadVersion(_) | FrameError::BadKind(_) => {
                    BootstrapFailure::Malformed
                }
            };
            refuse(Some(chan), kind, e.to_string())
        }
    };
    let stream: Stream<Box<dyn Source + Send>> = Stream::new(Box::new(reader), len);
    match wire::decode_next::<Bootstrap, _>(&stream) {
        Ok(boot) => (boot, Incoming::new(stream)),
        Err(e) => refuse(Some(chan), failure_of(&e, BootstrapFailure::Malformed), e.to_string()),
    }
}

/// The bootstrap failure a decode error of the frame stands for.
fn failure_of(e: &DecodeError, otherwise: BootstrapFailure) -> BootstrapFailure {
    match e {
        DecodeError::Truncated(_) => BootstrapFailure::Truncated,
        DecodeError::Stalled(_) => BootstrapFailure::Stalled,
        _ => otherwise,
    }
}

fn run_child(child: &'static Prepared) -> ! {
    let (chan, boot) = (&child.chan, &child.boot);
    let entry = registry::lookup(&boot.task_id)
        .unwrap_or_else(|e| refuse(Some(chan), BootstrapFailure::UnknownTask, e.to_string()));
    // The handles passed as arguments, for the payload's decode to claim.
    // The progress channel, if asked for, follows them.
    match sys::adopt_handles(boot.handles.saturating_add(u32::from(boot.progress)), &boot.handle_info) {
        Ok(mut handles) => {
            if let Some(channel) = handles.pop_if(|_| boot.progress) {
                crate::progress::adopt(channel);
            }
            wire::handles::install(handles)
        }
        Err(e) => refuse(Some(chan), BootstrapFailure::Malformed, e.to_string()),
    }
    // The identity, if code before us has not asked for it already.
    let _ = process::current_process();
    if boot.daemon {
        watch_parent(chan, boot.parent_pid, boot.from_main_thread);
    }
    sys::imp::ignore_sigpipe();
    // The parent's setting holds here and for this child's own children.
    report::set_child_reports(boot.reports);
    install_panic_hook(boot.name.clone(), Arc::clone(chan));

    let Some(payload) = child.payload.lock().unwrap_or_else(PoisonError::into_inner).take() else {
        refuse(Some(chan), BootstrapFailure::Malformed, "the arguments were taken twice".into())
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        // Set-up first, while the child may not start children yet (as in
        // Python, where the main module's top level runs in the child).
        // The crate's shared-memory helper runs none of the program's code.
        if entry.id != crate::shared_memory::TRACKER_ID {
            for init in registry::CHILD_INITS.iter() {
                (init.run)();
            }
        }
        DISPATCHED.store(true, Ordering::Release);
        (entry.invoke)(&payload)
    }));
    drop(payload);
    match result {
        Ok(Invoked::Returned { value, failure }) => {
            if let Some(err) = &failure {
                report::print_error(&boot.name, err);
            }
            let code = if failure.is_some() { 1 } else { 0 };
            finish(chan, &Outcome::Returned, Some(value.part()), code)
        }
        Ok(Invoked::BadArguments(e)) => {
            refuse(Some(chan), failure_of(&e, BootstrapFailure::BadArguments), e.to_string())
        }
        Ok(Invoked::BadResult(message)) => {
            let _ = writeln!(io::stderr(), "Process {}:\nthe return value could not be encoded: {message}", boot.name);
            let report =
                Outcome::Refused { code: 1, message: format!("the return value could not be encoded: {message}") };
            finish(chan, &report, None, 1)
        }
        Err(payload) => finish(chan, &panic_report(payload), None, 1),
    }
}

/// Writes the report, its head and the value's encoding straight into the
/// channel; false if the value did not encode as its dry run said (the
/// parent then refuses it).
fn send_report(chan: &Channel, head: &Outcome, value: Option<(&dyn Part, u64)>) -> bool {
    let Ok(head) = wire::encode(head) else { return false };
    let mut w = wire::WriteAll(|b: &[u8]| chan.write_all(b));
    match wire::write_frame(&mut w, FrameKind::Outcome, &head, value) {
        Ok(Err(e)) => {
            let _ = writeln!(io::stderr(), "multiproc: the return value was not sent whole: {e}");
            false
        }
        // A parent that is gone cannot be told.
        Ok(Ok(())) | Err(_) => true,
    }
}

/// Sends the report, does what a normal exit does (terminate daemonic
/// children, join the others, flush), and exits.
fn finish(chan: &Channel, head: &Outcome, value: Option<(&dyn Part, u64)>, code: i32) -> ! {
    // The bar's last state, before the parent learns the child is done.
    crate::progress::flush_at_exit();
    let code = if send_report(chan, head, value) { code } else { 1 };
    table::cleanup();
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    std::process::exit(code)
}

/// A daemonic child dies with its parent: by a parent-death signal where
/// the platform has one, and by a thread that watches the channel for the
/// parent's end to close (covering every other case).
fn watch_parent(chan: &Arc<Channel>, parent: u32, from_main_thread: bool) {
    if !sys::imp::tie_to_parent(parent, from_main_thread) {
        sys::imp::exit_now(1);
    }
    let chan = Arc::clone(chan);
    let spawned = thread::Builder::new().name("multiproc-lifeline".into()).stack_size(64 * 1024).spawn(move || {
        loop {
            if chan.peer_gone(None) {
                sys::imp::exit_now(1);
            }
        }
    });
    if spawned.is_err() {
        let _ = writeln!(io::stderr(), "multiproc: could not start the parent watcher of a daemonic process");
    }
}

/// What the panic hook learned about the last panic on the task's thread.
static LAST_PANIC: Mutex<Option<PanicInfo>> = Mutex::new(None);

fn install_panic_hook(name: String, chan: Arc<Channel>) {
    let task_thread: ThreadId = thread::current().id();
    panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or("<non-string panic payload>").to_owned();
        let location = info.location().map(|l| l.to_string());
        // Captured as std's own report would be: when RUST_BACKTRACE asks.
        let style = report::BacktraceStyle::from_env();
        let bt = match style {
            report::BacktraceStyle::Off => std::backtrace::Backtrace::capture(),
            _ => std::backtrace::Backtrace::force_capture(),
        };
        let backtrace = (bt.status() == std::backtrace::BacktraceStatus::Captured).then(|| bt.to_string());
        let thread = thread::current();
        let thread_name = thread.name().unwrap_or(if thread.id() == task_thread { "main" } else { "<unnamed>" });
        if report::panics_printed() {
            report::print_panic(&name, thread_name, location.as_deref(), &message, style, backtrace.as_deref());
        }
        if thread.id() != task_thread {
            return;
        }
        let panic = PanicInfo { message, location, backtrace };
        if cfg!(panic = "abort") {
            // No unwinding will bring us back to `run_child`: report now.
            let PanicInfo { message, location, backtrace } = panic;
            finish(&chan, &Outcome::Panicked { message, location, backtrace }, None, 1);
        }
        *LAST_PANIC.lock().unwrap_or_else(PoisonError::into_inner) = Some(panic);
    }));
}

fn panic_report(payload: Box<dyn std::any::Any + Send>) -> Outcome {
    let PanicInfo { message, location, backtrace } = panic_info(payload);
    Outcome::Panicked { message, location, backtrace }
}

/// What the panic hook recorded of the panic that unwound with `payload`
/// on the task's thread (or, had it recorded nothing, the payload's text).
pub(crate) fn panic_info(payload: Box<dyn std::any::Any + Send>) -> PanicInfo {
    let recorded = LAST_PANIC.lock().unwrap_or_else(PoisonError::into_inner).take();
    recorded.unwrap_or_else(|| PanicInfo {
        message: payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "<non-string panic payload>".into()),
        location: None,
        backtrace: None,
    })
}
