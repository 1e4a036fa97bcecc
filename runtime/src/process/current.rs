//! This process, its parent and its children.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::table;
use crate::authkey::AuthKey;
use crate::bootstrap;
use crate::sys::imp::{self as sys, Channel};

/// The process this code runs in (Python's `current_process()`).
///
/// ```
/// let me = multiproc::current_process();
/// assert_eq!(me.name(), "MainProcess");
/// assert_eq!(me.pid(), std::process::id());
/// assert!(!me.daemon());
/// ```
#[derive(Debug)]
pub struct CurrentProcess {
    name: String,
    daemon: bool,
    authkey: AuthKey,
    identity: Vec<u32>,
    next_child: AtomicU32,
}

static CURRENT: OnceLock<CurrentProcess> = OnceLock::new();
static PARENT: OnceLock<ParentProcess> = OnceLock::new();

/// The process this code runs in.
///
/// In a spawned child this is the identity its parent gave it, even when
/// asked before `main` (from a constructor of your own), before the task
/// is dispatched.
///
/// ```
/// use multiproc::Builder;
///
/// #[multiproc::process_task]
/// fn who_am_i() -> (String, u32, Vec<u32>) {
///     let me = multiproc::current_process();
///     (me.name().to_string(), me.pid(), me.identity().to_vec())
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// assert_eq!(multiproc::current_process().name(), "MainProcess");
///
/// let child = Builder::new(who_am_i, ()).name("inner").start()?;
/// let pid = child.pid();
/// let (name, its_pid, identity) = child.join()?;
/// assert_eq!((name.as_str(), its_pid), ("inner", pid));
/// assert_eq!(identity.len(), 1); // a child of the main process
/// # Ok(())
/// # }
/// ```
pub fn current_process() -> &'static CurrentProcess {
    CURRENT.get_or_init(|| match bootstrap::prepared() {
        Some(child) => {
            let boot = &child.boot;
            let _ = PARENT.set(ParentProcess::new(boot.parent_pid, boot.parent_name.clone(), Arc::clone(&child.chan)));
            CurrentProcess {
                name: boot.name.clone(),
                daemon: boot.daemon,
                authkey: AuthKey::new(boot.authkey.clone()),
                identity: boot.identity.clone(),
                next_child: AtomicU32::new(1),
            }
        }
        None => CurrentProcess {
            name: "MainProcess".into(),
            daemon: false,
            authkey: AuthKey::random(),
            identity: Vec::new(),
            next_child: AtomicU32::new(1),
        },
    })
}

impl CurrentProcess {
    /// `MainProcess` in the main process, the name the parent gave
    /// otherwise.
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
    /// assert_eq!(multiproc::current_process().name(), "MainProcess");
    /// assert_eq!(Builder::new(my_name, ()).name("child").start()?.join()?, "child");
    /// # Ok(())
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The OS process id.
    ///
    /// ```
    /// #[multiproc::process_task]
    /// fn my_pid() -> u32 {
    ///     multiproc::current_process().pid()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// assert_eq!(multiproc::current_process().pid(), std::process::id());
    /// let child = multiproc::spawn(my_pid, ())?;
    /// let pid = child.pid();
    /// assert_eq!(child.join()?, pid);
    /// # Ok(())
    /// # }
    /// ```
    pub fn pid(&self) -> u32 {
        sys::pid()
    }

    /// Whether this process is a daemonic child.
    ///
    /// ```
    /// use multiproc::Builder;
    ///
    /// #[multiproc::process_task]
    /// fn am_i_a_daemon() -> bool {
    ///     multiproc::current_process().daemon()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// assert!(!multiproc::current_process().daemon());
    /// assert!(Builder::new(am_i_a_daemon, ()).daemon(true).start()?.join()?);
    /// assert!(!Builder::new(am_i_a_daemon, ()).start()?.join()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn daemon(&self) -> bool {
        self.daemon
    }

    /// The authentication key (32 random bytes in the main process,
    /// inherited in children).
    ///
    /// ```
    /// #[multiproc::process_task]
    /// fn my_key() -> Vec<u8> {
    ///     multiproc::current_process().authkey().as_bytes().to_vec()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let key = multiproc::current_process().authkey();
    /// assert_eq!(key.as_bytes().len(), 32);
    /// assert_eq!(multiproc::spawn(my_key, ())?.join()?, key.as_bytes()); // inherited
    /// # Ok(())
    /// # }
    /// ```
    pub fn authkey(&self) -> &AuthKey {
        &self.authkey
    }

    /// The position in the process tree: empty in the main process, `[1, 2]`
    /// in `Process-1:2`.
    ///
    /// ```
    /// #[multiproc::process_task]
    /// fn my_identity() -> Vec<u32> {
    ///     multiproc::current_process().identity().to_vec()
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// assert!(multiproc::current_process().identity().is_empty());
    /// let child = multiproc::spawn(my_identity, ())?;
    /// let n: u32 = child.name().trim_start_matches("Process-").parse().unwrap();
    /// assert_eq!(child.join()?, [n]); // `Process-N` is `[N]`
    /// # Ok(())
    /// # }
    /// ```
    pub fn identity(&self) -> &[u32] {
        &self.identity
    }

    /// The next child's identity. Advances when a child is *created*, as in
    /// Python.
    pub(crate) fn next_identity(&self) -> Vec<u32> {
        let n = self.next_child.fetch_add(1, Ordering::Relaxed);
        let mut id = self.identity.clone();
        id.push(n);
        id
    }
}

/// The parent of this process, as seen from a child (Python's
/// `parent_process()`).
#[derive(Debug)]
pub struct ParentProcess {
    pid: u32,
    name: String,
    lifeline: Arc<Channel>,
}

impl ParentProcess {
    pub(crate) fn new(pid: u32, name: String, lifeline: Arc<Channel>) -> Self {
        ParentProcess { pid, name, lifeline }
    }

    /// The parent's pid.
    ///
    /// ```
    /// #[multiproc::process_task]
    /// fn parent_seen() -> (u32, String, bool, bool) {
    ///     let parent = multiproc::parent_process().expect("a child has a parent");
    ///     // The parent is blocked in `join`, so it is alive throughout.
    ///     let died = parent.join_timeout(std::time::Duration::from_millis(10));
    ///     (parent.pid(), parent.name().to_string(), parent.is_alive(), died)
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let (pid, name, alive, died) = multiproc::spawn(parent_seen, ())?.join()?;
    /// assert_eq!(pid, std::process::id());
    /// # let _ = (name, alive, died);
    /// # Ok(())
    /// # }
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The parent's name.
    ///
    /// ```
    /// #[multiproc::process_task]
    /// fn parent_seen() -> (u32, String, bool, bool) {
    ///     let parent = multiproc::parent_process().expect("a child has a parent");
    ///     // The parent is blocked in `join`, so it is alive throughout.
    ///     let died = parent.join_timeout(std::time::Duration::from_millis(10));
    ///     (parent.pid(), parent.name().to_string(), parent.is_alive(), died)
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let (pid, name, alive, died) = multiproc::spawn(parent_seen, ())?.join()?;
    /// assert_eq!(name, "MainProcess");
    /// # let _ = (pid, alive, died);
    /// # Ok(())
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// False once the parent has died.
    ///
    /// ```
    /// #[multiproc::process_task]
    /// fn parent_seen() -> (u32, String, bool, bool) {
    ///     let parent = multiproc::parent_process().expect("a child has a parent");
    ///     // The parent is blocked in `join`, so it is alive throughout.
    ///     let died = parent.join_timeout(std::time::Duration::from_millis(10));
    ///     (parent.pid(), parent.name().to_string(), parent.is_alive(), died)
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let (pid, name, alive, died) = multiproc::spawn(parent_seen, ())?.join()?;
    /// assert!(alive);
    /// # let _ = (pid, name, died);
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_alive(&self) -> bool {
        !self.lifeline.peer_gone(Some(Duration::ZERO))
    }

    /// Waits up to `timeout` for the parent to die; true if it did.
    ///
    /// ```
    /// #[multiproc::process_task]
    /// fn parent_seen() -> (u32, String, bool, bool) {
    ///     let parent = multiproc::parent_process().expect("a child has a parent");
    ///     // The parent is blocked in `join`, so it is alive throughout.
    ///     let died = parent.join_timeout(std::time::Duration::from_millis(10));
    ///     (parent.pid(), parent.name().to_string(), parent.is_alive(), died)
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let (pid, name, alive, died) = multiproc::spawn(parent_seen, ())?.join()?;
    /// assert!(!died); // timed out: the parent was still there
    /// # let _ = (pid, name, alive);
    /// # Ok(())
    /// # }
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.lifeline.peer_gone(Some(timeout))
    }
}

/// The parent of this process: `None` in the main process.
///
/// ```
/// assert!(multiproc::parent_process().is_none());
/// ```
pub fn parent_process() -> Option<&'static ParentProcess> {
    current_process();
    PARENT.get()
}

/// A running child, as listed by [`active_children`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveChild {
    /// Its pid.
    pub pid: u32,
    /// Its name.
    pub name: String,
    /// Whether it is daemonic.
    pub daemon: bool,
}

/// The children of this process that are still running. Finished ones are
/// reaped on the way, so they never linger as zombies.
///
/// The list is process-wide: it holds the children every thread started.
/// Tests that `cargo test` runs in parallel threads of one process see each
/// other's children here, so a test should look for its own by pid, as
/// below, and never expect the list to be empty or to have a given length
/// (or run such a test in a process of its own).
///
/// ```
/// use multiproc::Connection;
///
/// // Runs until the parent sends something or closes its end.
/// #[multiproc::process_task]
/// fn hold(conn: Connection<()>) {
///     let _ = conn.recv();
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (here, there) = multiproc::pipe::<()>()?;
/// let child = multiproc::spawn(hold, (there,))?;
/// let listed = multiproc::active_children();
/// assert!(listed.iter().any(|c| c.pid == child.pid() && c.name == child.name()));
///
/// drop(here); // let it end
/// child.wait()?;
/// assert!(multiproc::active_children().iter().all(|c| c.pid != child.pid()));
/// # Ok(())
/// # }
/// ```
pub fn active_children() -> Vec<ActiveChild> {
    table::reap().iter().map(|c| ActiveChild { pid: c.pid, name: c.name.clone(), daemon: c.daemon }).collect()
}

/// The number of CPUs in the system (Python's `cpu_count()`), not only
/// the ones this process may use: see [`usable_cpu_count`] for that.
///
/// ```
/// assert!(multiproc::cpu_count().get() >= multiproc::usable_cpu_count().get());
/// ```
pub fn cpu_count() -> NonZeroUsize {
    sys::cpu_count().and_then(NonZeroUsize::new).unwrap_or_else(usable_cpu_count)
}

/// The number of CPUs this process may run on (its affinity mask or
/// quota), at least 1.
///
/// ```
/// let workers = multiproc::usable_cpu_count().get();
/// assert!(workers >= 1);
/// ```
pub fn usable_cpu_count() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}
