//! Starting processes: the [`Builder`], the [`Child`] handle, and what a
//! process knows about itself.

mod child;
mod current;
pub(crate) mod table;

use std::sync::Arc;

pub use child::{Child, CloseError};
pub use current::{
    ActiveChild, CurrentProcess, ParentProcess, active_children, cpu_count, current_process, parent_process,
    usable_cpu_count,
};
use table::ChildState;

use crate::args::IntoArgs;
use crate::authkey::AuthKey;
use crate::error::{Error, RegistryError};
use crate::registry::{DecodeOutput, Payload, TaskEntry};
use crate::sys::imp::{self as sys, Channel};
use crate::task::{Process, Task};
use crate::wire::{self, Bootstrap, FrameKind};

/// A process that has not started yet: Python's `Process(...)` before
/// `start()`.
///
/// Creating a builder assigns the default name (`Process-N`, numbered in
/// creation order as in Python). Settings can only be changed before
/// [`start`](Builder::start), which consumes the builder, so starting twice
/// or changing `daemon` afterwards does not compile.
///
/// The numbering is per process and counts the builders of every thread.
/// Tests that `cargo test` runs in parallel threads of one process share
/// it: a test cannot know which `N` it gets, so it should compare with its
/// own handle's [`name`](crate::Child::name), or set a name, rather than
/// expect `Process-1`.
///
/// ```
/// use multiproc::{Builder, process_task};
///
/// #[process_task]
/// fn add(a: u64, b: u64) -> u64 {
///     a + b
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// let child = Builder::new(add, (2, 3)).name("adder").start()?;
/// assert_eq!(child.name(), "adder");
/// assert_eq!(child.join()?, 5);
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until it is started"]
pub struct Builder<R> {
    /// The target's entry, or why the function given is not one.
    entry: Result<&'static TaskEntry, RegistryError>,
    /// The arguments or process value, measured (which collected their
    /// handles); encoded straight into the channel at `start`.
    payload: Result<Payload, Error>,
    /// The OS handles the arguments carry, in the order of their indices.
    handles: Vec<crate::sys::OsHandle>,
    name: String,
    identity: Vec<u32>,
    daemon: bool,
    authkey: Option<AuthKey>,
    /// The bars the child reports its progress into, if any.
    progress: Option<crate::progress::Attach>,
    /// How the result is decoded.
    decode: DecodeOutput<R>,
    /// One of this crate's helpers (see [`Builder::helper`]), not a child
    /// the user sees.
    helper: bool,
}

impl<R> std::fmt::Debug for Builder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match &self.entry {
            Ok(entry) => entry.path,
            Err(_) => "<not a process task>",
        };
        f.debug_struct("Builder")
            .field("target", &target)
            .field("name", &self.name)
            .field("daemon", &self.daemon)
            .finish_non_exhaustive()
    }
}

impl<R: 'static> Builder<R> {
    /// A process that will call `task` with `args`.
    ///
    /// `args` is the tuple of the function's arguments, a bare value for a
    /// function of one argument, or its generated named-arguments struct
    /// (`PowerArgs { base: 2, exp: 10 }` for `fn power`): the equivalent of
    /// Python's `kwargs`. See [`IntoArgs`].
    ///
    /// A function not marked [`#[process_task]`](crate::process_task), or
    /// a closure, makes [`start`](Builder::start) fail with
    /// [`RegistryError::NotATask`].
    ///
    /// ```
    /// use multiproc::{Builder, process_task};
    ///
    /// #[process_task]
    /// fn power(base: u64, exp: u32) -> u64 {
    ///     base.pow(exp)
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// // Positional arguments, as a tuple...
    /// assert_eq!(Builder::new(power, (2, 10)).start()?.join()?, 1024);
    /// // ...or named ones, in the struct the attribute generates.
    /// assert_eq!(Builder::new(power, PowerArgs { base: 3, exp: 4 }).start()?.join()?, 81);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new<F, A, M>(task: F, args: impl IntoArgs<A, M>) -> Self
    where
        F: Task<A, Output = R>,
        A: 'static,
    {
        let args = args.into_args();
        let entry = task.__entry();
        let (measure, decode) = match entry.as_ref().map(|e| e.function) {
            Ok(Some(f)) => (Some(f.measure), f.decode),
            // A process type's id cannot be an `Fn`'s; refused at start.
            Ok(None) | Err(_) => (None, refuse_decode as DecodeErased),
        };
        Self::encoding(
            entry,
            move || match measure {
                Some(measure) => measure(Box::new(args)),
                None => Err(crate::wire::CodecError("not a function".into())),
            },
            DecodeOutput::new(decode),
            "Process",
        )
    }

    /// A builder for `entry` whose payload `measure` measures now, with
    /// the OS handles it holds collected aside.
    fn encoding(
        entry: Result<&'static TaskEntry, RegistryError>,
        measure: impl FnOnce() -> Result<Payload, crate::wire::CodecError>,
        decode: DecodeOutput<R>,
        kind: &str,
    ) -> Self {
        let (payload, handles) = match entry {
            Ok(e) => {
                let (payload, handles) = wire::handles::collecting(measure);
                (payload.map_err(|err| Error::Encode { task: e.path, message: err.0 }), handles)
            }
            Err(ref e) => (Err(Error::Registry(e.clone())), Vec::new()),
        };
        let me = current_process();
        let identity = me.next_identity();
        let digits: Vec<String> = identity.iter().map(u32::to_string).collect();
        Builder {
            entry,
            payload,
            handles,
            name: format!("{kind}-{}", digits.join(":")),
            identity,
            daemon: me.daemon(),
            authkey: None,
            progress: None,
            decode,
            helper: false,
        }
    }

    /// The name the child will have: the default (`Process-N`, or
    /// `TypeName-N` for a process type, as CPython names a subclass's
    /// processes) or the one set with [`name`](Builder::name).
    ///
    /// ```
    /// use multiproc::{Builder, Process};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[multiproc::process_task]
    /// fn work() {}
    ///
    /// #[derive(Process, Serialize, Deserialize)]
    /// struct Worker;
    ///
    /// impl Process for Worker {
    ///     fn run(&mut self) {}
    /// }
    ///
    /// assert!(Builder::new(work, ()).get_name().starts_with("Process-"));
    /// assert!(Worker.builder().get_name().starts_with("Worker-"));
    /// assert_eq!(Builder::new(work, ()).name("w").get_name(), "w");
    /// ```
    pub fn get_name(&self) -> &str {
        &self.name
    }

    /// Sets the name (default `Process-N`). Names need not be unique.
    ///
    /// ```
    /// use multiproc::Builder;
    ///
    /// #[multiproc::process_task]
    /// fn my_name() -> String {
    ///     multiproc::current_process().name().to_string()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let child = Builder::new(my_name, ()).name("fetcher").start()?;
    /// assert_eq!(child.join()?, "fetcher");
    /// # Ok(())
    /// # }
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Makes the child daemonic (default: the creating process's flag). A
    /// daemonic child is terminated when its parent exits normally, dies
    /// with its parent if that is killed, and may not start children.
    ///
    /// ```
    /// use multiproc::{Builder, Error};
    ///
    /// #[multiproc::process_task]
    /// fn try_to_start_a_child() -> bool {
    ///     let refused = Builder::new(try_to_start_a_child, ()).start();
    ///     matches!(refused, Err(Error::DaemonCannotHaveChildren))
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let child = Builder::new(try_to_start_a_child, ()).daemon(true).start()?;
    /// assert!(child.daemon());
    /// assert!(child.join()?); // a daemon may not start children
    /// # Ok(())
    /// # }
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// Sets the child's authentication key (default: this process's).
    ///
    /// ```
    /// use multiproc::{AuthKey, Builder};
    ///
    /// #[multiproc::process_task]
    /// fn my_key() -> Vec<u8> {
    ///     multiproc::current_process().authkey().as_bytes().to_vec()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let child = Builder::new(my_key, ()).authkey(AuthKey::new(*b"shared secret")).start()?;
    /// assert_eq!(child.join()?, b"shared secret");
    /// # Ok(())
    /// # }
    /// ```
    pub fn authkey(mut self, key: AuthKey) -> Self {
        self.authkey = Some(key);
        self
    }

    /// Asks the child to report its progress into `bars`: it gets a bar
    /// there, labelled by its name, which the child moves with the
    /// functions of [`multiproc::progress`](crate::progress) (elsewhere
    /// they do nothing).
    ///
    /// ```
    /// use multiproc::progress::{self, Bars};
    /// use multiproc::{Builder, process_task};
    ///
    /// #[process_task]
    /// fn chunks(n: u64) {
    ///     progress::set_length(n);
    ///     for _ in 0..n {
    ///         progress::inc(1);
    ///     }
    ///     progress::finish();
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let bars = Bars::new();
    /// let child = Builder::new(chunks, (8,)).name("chunker").progress(&bars).start()?;
    /// child.join()?;
    /// bars.wait();
    /// let bar = &bars.bars()[0];
    /// assert_eq!((bar.label().as_str(), bar.position(), bar.length()), ("chunker", 8, Some(8)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn progress(self, bars: &crate::progress::Bars) -> Self {
        self.progress_into(Some(bars.attach()))
    }

    /// [`progress`](Builder::progress), from what a pool kept of its bars.
    pub(crate) fn progress_into(mut self, attach: Option<crate::progress::Attach>) -> Self {
        self.progress = attach;
        self
    }

    /// Starts the child: re-executes this binary, which runs the target
    /// before any of your code.
    ///
    /// A [`Child`] is the started process; the builder is gone, so it cannot be
    /// started twice.
    ///
    /// ```
    /// use multiproc::Builder;
    ///
    /// #[multiproc::process_task]
    /// fn hello() -> String {
    ///     "hello".into()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let child = Builder::new(hello, ()).start()?;
    /// assert_eq!(child.join()?, "hello");
    /// # Ok(())
    /// # }
    /// ```
    pub fn start(self) -> Result<Child<R>, Error> {
        if std::env::var_os(crate::sys::BOOTSTRAP_ENV).is_some() || crate::bootstrap::not_dispatched() {
            return Err(Error::NotBootstrapped);
        }
        let me = current_process();
        if me.daemon() && !self.helper {
            return Err(Error::DaemonCannotHaveChildren);
        }
        let entry = self.entry?;
        // Fails here, in the parent, for a task this binary cannot dispatch.
        crate::registry::lookup(entry.id).map_err(Error::Registry)?;
        let payload = self.payload?;
        table::reap();

        let authkey = self.authkey.unwrap_or_else(|| me.authkey().clone());
        let mut boot = Bootstrap {
            build_id: sys::exe_identity(),
            task_id: entry.id.to_owned(),
            name: self.name,
            identity: self.identity,
            authkey: authkey.as_bytes().to_vec(),
            parent_pid: sys::pid(),
            parent_name: me.name().to_owned(),
            daemon: self.daemon,
            from_main_thread: sys::is_main_thread(),
            handle_info: Vec::new(),
            reports: crate::report::child_reports(),
            handles: u32::try_from(self.handles.len())
                .map_err(|_| Error::Encode { task: entry.path, message: "too many handles".into() })?,
            progress: self.progress.is_some(),
        };
        let task = entry.path;
        let encode = |boot: &Bootstrap| wire::encode(boot).map_err(|e| Error::Encode { task, message: e.0 });
        // Encoded (and the payload measured) before the spawn, so that a
        // frame that cannot be sent starts nothing.
        let mut head = encode(&boot)?;

        let (chan, end) = Channel::pair().map_err(Error::io("creating the bootstrap channel"))?;
        // The progress channel's write end goes after the arguments' handles.
        let mut handles = self.handles;
        let progress = match &self.progress {
            Some(bars) => {
                let (theirs, ours) = bars.channel().map_err(Error::io("creating the progress channel"))?;
                handles.push(theirs);
                Some(ours)
            }
            None => None,
        };
        // Under a test harness that captures output, the child's output
        // goes through this process's `print!` (see `output`).
        let output = crate::output::pipes().map_err(Error::io("creating the child's output pipes"))?;
        let (raw, handle_info) =
            crate::sys::spawn_child(&end, boot.daemon, &handles, output.as_ref().map(|(stdio, _)| stdio))
                .map_err(Error::io("spawning a child"))?;
        drop(end);
        // The child has the write ends; copying starts on this thread.
        let output = output.map(|(_, readers)| readers.forward());
        if !handle_info.is_empty() {
            // Only known now that the child exists (Windows).
            boot.handle_info = handle_info;
            head = match encode(&boot) {
                Ok(head) => head,
                Err(e) => {
                    raw.abandon();
                    return Err(e);
                }
            };
        }
        // The child has its own copies now.
        drop(handles);
        if let Some(progress) = progress {
            progress.started(&boot.name);
        }
        let chan = Arc::new(chan);
        // A child that dies before reading makes this fail with EPIPE; its
        // exit status then tells the story through `join`. A payload that
        // encodes differently from its measurement is refused by the child.
        // The handles were duplicated when the payload was measured; this
        // pass only writes their indices again.
        let _ = wire::handles::replaying(|| {
            let mut w = wire::WriteAll(|b: &[u8]| chan.write_all(b));
            wire::write_frame(&mut w, FrameKind::Bootstrap, &head, Some(payload.part()))
        });

        let state = Arc::new(ChildState::new(raw, chan, boot.name, boot.daemon, authkey, output));
        if !self.helper {
            table::register(Arc::clone(&state));
        }
        Ok(Child::new(state, self.decode))
    }
}

impl Builder<()> {
    /// A process that runs one of this crate's own entries (a pool
    /// worker) with `args`, named `kind-N`.
    pub(crate) fn internal<A: serde::Serialize + Send + 'static>(
        entry: &'static TaskEntry,
        args: A,
        kind: &str,
    ) -> Self {
        Self::encoding(Ok(entry), || Payload::new(args), DecodeOutput::new(decode_unit), kind)
    }

    /// A helper process that runs one of this crate's own entries with
    /// `args`, named `name`: not daemonic, so it outlives this process
    /// however this one ends, and startable from a daemonic process; not a
    /// child the user sees (it takes no number from the `Process-N`
    /// count, `active_children` leaves it out, and the exit of this
    /// process does not wait for it).
    pub(crate) fn helper<A: serde::Serialize + Send + 'static>(entry: &'static TaskEntry, args: A, name: &str) -> Self {
        let (payload, handles) = wire::handles::collecting(|| Payload::new(args));
        let mut identity = current_process().identity().to_vec();
        // Children are numbered from 1: 0 is no user child's.
        identity.push(0);
        Builder {
            entry: Ok(entry),
            payload: payload.map_err(|err| Error::Encode { task: entry.path, message: err.0 }),
            handles,
            name: name.to_owned(),
            identity,
            daemon: false,
            authkey: None,
            progress: None,
            decode: DecodeOutput::new(decode_unit),
            helper: true,
        }
    }

    /// A process that will run `process`'s [`Process::run`].
    ///
    /// ```
    /// use multiproc::{Builder, Process};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Process, Serialize, Deserialize)]
    /// struct Exit {
    ///     code: i32,
    /// }
    ///
    /// impl Process for Exit {
    ///     fn run(&mut self) {
    ///         std::process::exit(self.code);
    ///     }
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let child = Builder::process(Exit { code: 4 }).name("exiter").start()?;
    /// assert_eq!(child.wait()?.exitcode(), 4);
    /// # Ok(())
    /// # }
    /// ```
    pub fn process<P: Process>(process: P) -> Self {
        let entry = <P as crate::__private::Registered>::__entry();
        // CPython names a subclass's processes after the class.
        let kind = entry.path.rsplit("::").next().unwrap_or("Process");
        Self::encoding(Ok(entry), || Payload::new(process), DecodeOutput::new(decode_unit), kind)
    }
}

/// Starts `task(args)` in a new process with default settings: the short
/// form of [`Builder::new`]`(task, args).start()`.
///
/// ```
/// #[multiproc::process_task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// assert_eq!(multiproc::spawn(square, (7,))?.join()?, 49);
/// # Ok(())
/// # }
/// ```
pub fn spawn<F, A, M>(task: F, args: impl IntoArgs<A, M>) -> Result<Child<F::Output>, Error>
where
    F: Task<A>,
    A: 'static,
{
    Builder::new(task, args).start()
}

/// An entry's erased result decoder.
type DecodeErased = fn(&crate::registry::Incoming<'_>) -> Result<Box<dyn std::any::Any>, crate::DecodeError>;

/// The result decoder of a builder that never starts (its target is not a
/// task: `start` returns the registry error first).
fn refuse_decode(_: &crate::registry::Incoming<'_>) -> Result<Box<dyn std::any::Any>, crate::DecodeError> {
    Err(crate::DecodeError::Invalid("not a process task".into()))
}

/// The result of a process type's `run`.
fn decode_unit(input: &crate::registry::Incoming<'_>) -> Result<Box<dyn std::any::Any>, crate::DecodeError> {
    input.decode::<()>().map(|()| Box::new(()) as Box<dyn std::any::Any>)
}
