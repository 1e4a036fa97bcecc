//! The helper that removes the names of a creator that ended without
//! removing them (see `SharedMemory`'s docs): the parent's side, which
//! starts it and tells it each name, and the helper's, a registered entry
//! of this crate.
//!
//! The creator holds the only end of a socket whose other end only the
//! helper has (descriptors are close-on-exec, so no other child gets
//! either), so the helper sees end of file exactly when the creator has
//! ended, however it ended.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::pipe::{Connection, pipe};
use crate::process::{Builder, Child};
use crate::registry::{Incoming, Invoked, Payload, TASKS, TaskEntry};
use crate::sys::imp::named_shm;

/// The helper's id in the dispatch table.
pub(crate) const TRACKER_ID: &str = "multiproc::shared_memory::tracker#1";

/// The helper's entry in the dispatch table.
#[linkme::distributed_slice(TASKS)]
static TRACKER: TaskEntry = TaskEntry {
    id: TRACKER_ID,
    path: "multiproc::shared_memory::tracker",
    file: file!(),
    line: line!(),
    invoke: run_tracker,
    function: None,
};

/// What the creator tells the helper.
#[derive(Debug, Serialize, Deserialize)]
enum Note {
    /// This name was created; remove it if this process ends first, if it
    /// still names the object `identity` describes.
    Created { name: String, identity: Option<(u64, u64)> },
    /// This name was removed by its owner.
    Removed { name: String },
    /// From the helper: it runs, and signals meant for the creator's group
    /// no longer end it.
    Ready,
}

/// How long a helper may take to say it is ready.
const START_TIME: Duration = Duration::from_secs(30);

/// The names this process owns, and its link to the helper.
struct Tracker {
    link: Option<Link>,
    names: BTreeMap<String, Option<(u64, u64)>>,
}

struct Link {
    tx: Connection<Note>,
    /// The helper, not in the table of children: nothing waits for it or
    /// signals it at exit.
    helper: Child<()>,
}

static TRACKER_STATE: Mutex<Tracker> = Mutex::new(Tracker { link: None, names: BTreeMap::new() });

fn state() -> std::sync::MutexGuard<'static, Tracker> {
    TRACKER_STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Tracker {
    /// Starts a helper and tells it every name this process owns.
    fn start(&mut self) -> io::Result<()> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            io::Error::other(format!("{what} (it removes the names of a process that is killed): {e}"))
        };
        let (tx, theirs) = pipe::<Note>().map_err(|e| failed("could not link to the shared-memory helper", &e))?;
        let helper = Builder::helper(&TRACKER, (theirs,), "SharedMemoryTracker")
            .start()
            .map_err(|e| failed("could not start the shared-memory helper", &e))?;
        // A helper that fails to start closes its end: no wait is long.
        match tx.poll(Some(START_TIME)).and_then(|_| tx.recv()) {
            Ok(Note::Ready) => {}
            Ok(note) => return Err(failed("the shared-memory helper did not start", &format!("it said {note:?}"))),
            Err(e) => {
                let _ = helper.kill();
                return Err(failed("the shared-memory helper did not start", &e));
            }
        }
        if let Some(old) = self.link.take() {
            // Reaps a helper that was killed (is_alive looks at its status).
            let _ = old.helper.is_alive();
        }
        for (name, identity) in &self.names {
            let note = Note::Created { name: name.clone(), identity: *identity };
            tx.send(&note).map_err(|e| failed("could not reach the shared-memory helper", &e))?;
        }
        self.link = Some(Link { tx, helper });
        Ok(())
    }

    /// Sends `note`, starting a helper first if there is none, and again
    /// if the one there was has gone (killed by someone).
    fn tell(&mut self, note: &Note) -> io::Result<()> {
        if let Some(link) = &self.link
            && link.tx.send(note).is_ok()
        {
            return Ok(());
        }
        // The new helper learns every name from `names`, `note`'s included.
        self.start()
    }
}

/// Makes sure a helper runs, before a name is created.
pub(super) fn ready() -> io::Result<()> {
    let mut t = state();
    if t.link.is_none() { t.start() } else { Ok(()) }
}

/// Records a name this process created: the helper removes it if this
/// process ends before it does.
pub(super) fn created(name: &str, identity: Option<(u64, u64)>) -> io::Result<()> {
    let mut t = state();
    t.names.insert(name.to_owned(), identity);
    let note = Note::Created { name: name.to_owned(), identity };
    let told = t.tell(&note);
    if told.is_err() {
        t.names.remove(name);
    }
    told
}

/// Records that this process removed a name it created.
pub(super) fn removed(name: &str) {
    let mut t = state();
    if t.names.remove(name).is_some() {
        // A helper that cannot be told would at worst try to remove a name
        // that is gone, or that names another object now: it checks.
        let _ = t.tell(&Note::Removed { name: name.to_owned() });
    }
}

/// The helper: lists what it is told until the creator's end closes, then
/// removes what is still listed.
fn run_tracker(input: &Incoming<'_>) -> Invoked {
    let (rx,) = match input.decode::<(Connection<Note>,)>() {
        Ok(v) => v,
        Err(e) => return Invoked::BadArguments(e),
    };
    named_shm::ignore_interrupts();
    let _ = rx.send(&Note::Ready);
    let mut names = BTreeMap::new();
    // Any error is the end: the creator has gone (or sent what it cannot
    // have, and then it is no creator of ours).
    while let Ok(note) = rx.recv() {
        match note {
            Note::Created { name, identity } => {
                names.insert(name, identity);
            }
            Note::Removed { name } => {
                names.remove(&name);
            }
            Note::Ready => {}
        }
    }
    for (name, identity) in &names {
        named_shm::unlink_if_same(name, *identity);
    }
    Invoked::Returned { value: Payload::new(()).expect("() encodes"), failure: None }
}
