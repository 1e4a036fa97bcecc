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
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        sys::pid()
    }

    /// Whether this process is a daemonic child.
    pub fn daemon(&self) -> bool {
        self.daemon
    }

    /// The authentication key (32 random bytes in the main process,
    /// inherited in children).
    pub fn authkey(&self) -> &AuthKey {
        &self.authkey
    }

    /// The position in the process tree: empty in the main process, `[1, 2]`
    /// in `Process-1:2`.
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
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The parent's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// False once the parent has died.
    pub fn is_alive(&self) -> bool {
        !self.lifeline.peer_gone(Some(Duration::ZERO))
    }

    /// Waits up to `timeout` for the parent to die; true if it did.
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
/// ```
/// assert!(multiproc::active_children().is_empty());
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
pub fn usable_cpu_count() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}
