//! SharedMemory with real processes: the bytes, names and sizes, the
//! errors, children writing through a passed view or opening a name,
//! views that never unlink, owners that do, and nothing left under
//! `/dev/shm` by a creator that is killed or never drops its owner.
//! Every wait is bounded.

use std::time::Duration;

use multiproc::{
    Builder, Child, Connection, ReadOnly, SharedMemory, SharedMemoryError, SharedMemoryView, WriteOnly, pipe_one_way,
    process_task,
};

const LONG: Duration = Duration::from_secs(30);

fn join_within<R: 'static>(child: Child<R>, what: &str) -> R {
    multiproc_tests::join_within(child, LONG, what)
}

/// A name no other test (or run) uses.
fn unique(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("mpt_{what}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Whether the name is there to open (a view opened and dropped at once).
fn exists(name: &str) -> bool {
    match SharedMemory::open(name) {
        Ok(_) => true,
        Err(SharedMemoryError::NotFound { .. }) => false,
        Err(e) => panic!("opening {name}: {e}"),
    }
}

fn read(memory: &SharedMemoryView, offset: usize, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    memory.read_at(offset, &mut buf);
    buf
}

// ---------------------------------------------------------------- basics

#[test]
fn unnamed_memory_is_zeroed_writable_and_has_no_name() {
    let memory = match SharedMemory::create(100) {
        Ok(m) => m,
        // Unnamed memory is Linux's and Windows'.
        Err(SharedMemoryError::Io(e)) if e.kind() == std::io::ErrorKind::Unsupported => return,
        Err(e) => panic!("{e}"),
    };
    assert!(memory.size() >= 100);
    assert_eq!(memory.name(), None);
    assert!(read(&memory.view(), 0, memory.size()).iter().all(|&b| b == 0));
    memory.write_at(98, b"ok");
    assert_eq!(read(&memory.view(), 98, 2), b"ok");
    assert!(format!("{memory:?}").contains("size"));
}

#[test]
fn a_random_name_is_short_prefixed_and_has_no_slash() {
    let a = SharedMemory::create_with_random_name(10).unwrap();
    let b = SharedMemory::create_with_random_name(10).unwrap();
    let name = a.name().unwrap();
    assert!(name.starts_with("psm_") && name.len() <= 14 && !name.contains('/'), "{name}");
    assert_ne!(a.name(), b.name());
    assert!(format!("{a:?}").contains(name), "the debug form shows the name: {a:?}");
}

#[test]
fn a_leading_slash_is_not_part_of_the_name() {
    let name = unique("slash");
    let memory = SharedMemory::create_named(&format!("/{name}"), 8).unwrap();
    assert_eq!(memory.name(), Some(name.as_str()));
    assert!(exists(&name) && exists(&format!("/{name}")));
}

#[test]
fn a_view_opened_by_name_sees_the_same_bytes_and_the_creators_size() {
    let owner = SharedMemory::create_named(&unique("same"), 100).unwrap();
    let view = SharedMemory::open(owner.name().unwrap()).unwrap();
    // The size is the creator's (there is none to give when opening).
    assert!(owner.size() >= 100);
    assert_eq!(view.size(), owner.size());
    assert_eq!(view.name(), owner.name());
    view.write_at(0, b"from the view");
    assert_eq!(read(&owner.view(), 0, 13), b"from the view");
    owner.write_at(50, b"from the owner");
    assert_eq!(read(&view, 50, 14), b"from the owner");
    // Dropping one handle leaves the others' memory alone.
    let second = SharedMemory::open(owner.name().unwrap()).unwrap();
    drop(view);
    assert_eq!(read(&second, 0, 4), b"from");
}

#[test]
fn bytes_out_of_range_panic() {
    let memory = SharedMemory::create_with_random_name(16).unwrap();
    let size = memory.size();
    let past = std::panic::catch_unwind(|| memory.write_at(size - 1, b"xy"));
    assert!(past.is_err());
    let overflow = std::panic::catch_unwind(|| memory.read_at(usize::MAX, &mut [0]));
    assert!(overflow.is_err());
    memory.write_at(size - 1, b"x");
}

// ---------------------------------------------------------------- errors

#[test]
fn creating_a_taken_name_is_already_exists() {
    let owner = SharedMemory::create_named(&unique("taken"), 8).unwrap();
    let again = SharedMemory::create_named(owner.name().unwrap(), 8);
    assert!(matches!(again, Err(SharedMemoryError::AlreadyExists { ref name }) if name == owner.name().unwrap()));
    // The failed attempt did not remove the owner's name.
    assert!(exists(owner.name().unwrap()));
}

#[test]
fn opening_a_missing_name_is_not_found() {
    let name = unique("missing");
    assert!(matches!(SharedMemory::open(&name), Err(SharedMemoryError::NotFound { name: n }) if n == name));
}

#[test]
fn bad_sizes_and_names_are_invalid_input() {
    let invalid = |r: Result<SharedMemory, SharedMemoryError>| matches!(r, Err(SharedMemoryError::InvalidInput(_)));
    assert!(invalid(SharedMemory::create(0)));
    assert!(invalid(SharedMemory::create_with_random_name(0)));
    assert!(invalid(SharedMemory::create_named(&unique("zero"), 0)));
    for name in ["", "/", "a\0b", "a/b", "a\\b", ".", "..", &"n".repeat(300)] {
        assert!(invalid(SharedMemory::create_named(name, 8)), "{name:?}");
        assert!(matches!(SharedMemory::open(name), Err(SharedMemoryError::InvalidInput(_))), "{name:?}");
    }
}

#[test]
fn a_second_unlink_is_not_found_and_unnamed_memory_has_none() {
    let owner = SharedMemory::create_named(&unique("twice"), 8).unwrap();
    owner.unlink().unwrap();
    assert!(!exists(owner.name().unwrap()) || cfg!(windows), "the name is gone on Unix");
    assert!(matches!(owner.unlink(), Err(SharedMemoryError::NotFound { .. })));
    if let Ok(unnamed) = SharedMemory::create(8) {
        assert!(matches!(unnamed.unlink(), Err(SharedMemoryError::InvalidInput(_))));
    }
}

// ---------------------------------------------------------------- who unlinks

#[test]
fn dropping_a_view_never_unlinks() {
    let owner = SharedMemory::create_named(&unique("view_drop"), 8).unwrap();
    let name = owner.name().unwrap().to_owned();
    drop(SharedMemory::open(&name).unwrap());
    drop(owner.view());
    assert!(exists(&name), "a dropped view removed the name");
}

#[test]
fn dropping_the_owner_unlinks() {
    let owner = SharedMemory::create_named(&unique("owner_drop"), 8).unwrap();
    let name = owner.name().unwrap().to_owned();
    let view = owner.view();
    drop(owner);
    // On Windows the view's handle keeps the section; the name goes with it.
    if cfg!(unix) {
        assert!(!exists(&name), "the owner left its name");
    }
    view.write_at(0, b"mapped"); // the memory outlives the name
    drop(view);
    assert!(!exists(&name));
}

#[test]
fn an_owner_that_unlinked_leaves_a_later_owner_of_the_name_alone() {
    let name = unique("reuse");
    let first = SharedMemory::create_named(&name, 8).unwrap();
    first.unlink().unwrap();
    let first_view = first.view();
    if cfg!(unix) {
        let second = SharedMemory::create_named(&name, 8).unwrap();
        drop(first);
        assert!(exists(&name), "the first owner removed the second's name");
        drop(second);
        assert!(!exists(&name));
    }
    first_view.write_at(0, b"mapped");
}

// ---------------------------------------------------------------- children

#[process_task]
fn write_through(memory: SharedMemoryView, offset: usize, text: String) -> usize {
    memory.write_at(offset, text.as_bytes());
    memory.size()
}

#[test]
fn a_child_writes_through_a_passed_view_and_the_parent_sees_it() {
    let mut owners = vec![SharedMemory::create_with_random_name(64).unwrap()];
    owners.extend(SharedMemory::create(64).ok()); // unnamed, where there is such memory
    for owner in owners {
        let child = Builder::new(write_through, (owner.view(), 3, "from the child".to_string())).start().unwrap();
        assert_eq!(join_within(child, "the writer"), owner.size(), "{owner:?}");
        assert_eq!(read(&owner.view(), 3, 14), b"from the child", "{owner:?}");
    }
}

#[derive(multiproc::Process, serde::Serialize, serde::Deserialize)]
struct Stamper {
    memory: SharedMemoryView,
    stamp: u8,
}

impl multiproc::Process for Stamper {
    fn run(&mut self) {
        self.memory.write_at(0, &[self.stamp]);
    }
}

#[test]
fn a_process_type_gets_a_view_in_a_field() {
    let owners: Vec<SharedMemory> =
        [SharedMemory::create(8).ok(), SharedMemory::create_with_random_name(8).ok()].into_iter().flatten().collect();
    for owner in owners {
        let child = Builder::process(Stamper { memory: owner.view(), stamp: 0x5a }).start().unwrap();
        join_within(child, "the stamper");
        assert_eq!(read(&owner.view(), 0, 1), [0x5a], "{owner:?}");
    }
}

#[test]
fn owners_and_views_can_be_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<SharedMemory>();
    send_sync::<SharedMemoryView>();
    let owner = SharedMemory::create_with_random_name(64).unwrap();
    std::thread::scope(|s| {
        for i in 0..4u8 {
            let owner = &owner;
            s.spawn(move || owner.write_at(usize::from(i) * 16, &[i + 1; 16]));
        }
    });
    let bytes = read(&owner.view(), 0, 64);
    assert!(bytes.chunks(16).enumerate().all(|(i, c)| c.iter().all(|&b| usize::from(b) == i + 1)));
}

#[process_task]
fn open_and_write(name: String, text: String) -> Result<(), String> {
    let memory = SharedMemory::open(&name).map_err(|e| e.to_string())?;
    memory.write_at(0, text.as_bytes());
    Ok(())
}

#[test]
fn a_child_opens_by_name_and_writes_and_leaves_the_name() {
    let owner = SharedMemory::create_named(&unique("child_open"), 32).unwrap();
    let name = owner.name().unwrap().to_owned();
    let child = Builder::new(open_and_write, (name.clone(), "hello".to_string())).start().unwrap();
    join_within(child, "the opener").unwrap();
    assert_eq!(read(&owner.view(), 0, 5), b"hello");
    assert!(exists(&name), "the child's view removed the name");
    let missing = Builder::new(open_and_write, (unique("none"), String::new())).start().unwrap();
    assert!(join_within(missing, "the opener").unwrap_err().contains("no shared memory"));
}

#[process_task]
fn take_and_drop(memory: SharedMemoryView) {
    drop(memory);
}

#[test]
fn a_child_given_an_owners_view_never_unlinks() {
    let owner = SharedMemory::create_named(&unique("child_drop"), 8).unwrap();
    join_within(Builder::new(take_and_drop, (owner.view(),)).start().unwrap(), "the child");
    assert!(exists(owner.name().unwrap()), "the child removed its parent's name");
}

#[test]
fn a_view_passed_as_a_handle_works_after_the_name_is_gone() {
    let owner = SharedMemory::create_named(&unique("gone"), 16).unwrap();
    owner.unlink().unwrap();
    let child = Builder::new(write_through, (owner.view(), 0, "by handle".to_string())).start().unwrap();
    join_within(child, "the writer");
    assert_eq!(read(&owner.view(), 0, 9), b"by handle");
}

#[test]
fn a_named_view_travels_by_name_outside_a_start_and_an_unnamed_one_does_not() {
    let (rx, tx): (Connection<SharedMemoryView, ReadOnly>, Connection<SharedMemoryView, WriteOnly>) =
        pipe_one_way().unwrap();
    let owner = SharedMemory::create_with_random_name(8).unwrap();
    tx.send(&owner.view()).unwrap();
    let view = rx.recv().unwrap();
    view.write_at(0, b"name");
    assert_eq!(read(&owner.view(), 0, 4), b"name");
    // A name that is gone by the time it is received: not found.
    let name = owner.name().unwrap().to_owned();
    tx.send(&owner.view()).unwrap();
    drop((owner, view));
    assert!(!exists(&name));
    assert!(rx.recv().is_err(), "opened a removed name");
    if let Ok(unnamed) = SharedMemory::create(8) {
        assert!(tx.send(&unnamed.view()).is_err());
    }
}

#[process_task]
fn sum_by_name(memory: SharedMemoryView) -> u64 {
    read(&memory, 0, memory.size()).iter().map(|&b| u64::from(b)).sum()
}

#[test]
fn a_pool_task_gets_a_named_view_by_name() {
    let owner = SharedMemory::create_with_random_name(10).unwrap();
    owner.write_at(0, &[1; 10]);
    let pool = multiproc::Pool::new(1).unwrap();
    let sum = pool.apply(sum_by_name, (owner.view(),)).unwrap();
    assert_eq!(sum, 10);
}

// ---------------------------------------------------------------- crash safety

#[cfg(target_os = "linux")]
mod crash {
    use multiproc_tests::eventually;

    use super::*;

    /// The entries of `/dev/shm` whose names start with `prefix`.
    fn entries(prefix: &str) -> Vec<String> {
        let dir = std::path::Path::new("/dev/shm");
        if !dir.exists() {
            return Vec::new();
        }
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort();
        names
    }

    /// The pids of the processes whose parent is `pid` (from `/proc`).
    fn children_of(pid: u32) -> Vec<u32> {
        let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
        dir.filter_map(|e| e.ok()?.file_name().into_string().ok()?.parse::<u32>().ok())
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/stat")).ok().is_some_and(|stat| {
                    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
                    rest.split_ascii_whitespace().nth(1) == Some(pid.to_string().as_str())
                })
            })
            .collect()
    }

    /// Creates `count` segments named `prefix0`, `prefix1`, … and one with
    /// a random name, says their names, then waits to be killed.
    #[process_task]
    fn create_and_hang(prefix: String, count: usize, tell: Connection<Vec<String>, WriteOnly>, hold: Connection<()>) {
        let mut owners: Vec<SharedMemory> =
            (0..count).map(|i| SharedMemory::create_named(&format!("{prefix}{i}"), 4096).unwrap()).collect();
        owners.push(SharedMemory::create_with_random_name(4096).unwrap());
        tell.send(&owners.iter().map(|o| o.name().unwrap().to_owned()).collect()).unwrap();
        let _ = hold.recv(); // the parent never sends; it kills
        drop(owners);
    }

    #[test]
    fn a_creator_killed_with_sigkill_leaves_nothing_in_dev_shm() {
        if !std::path::Path::new("/dev/shm").is_dir() {
            return; // no named shared memory as files here
        }
        let prefix = unique("killed");
        assert_eq!(entries(&prefix), Vec::<String>::new());
        let (names_rx, names_tx) = pipe_one_way::<Vec<String>>().unwrap();
        let (_hold, hold_there) = multiproc::pipe::<()>().unwrap();
        let child = Builder::new(create_and_hang, (prefix.clone(), 3, names_tx, hold_there)).start().unwrap();
        let names = names_rx.recv().unwrap();
        assert_eq!(entries(&prefix).len(), 3, "the segments exist while their creator runs");
        let random = names.last().unwrap().clone();
        assert_eq!(entries(&random), std::slice::from_ref(&random));
        let helpers = children_of(child.pid());
        assert_eq!(helpers.len(), 1, "one helper process: {helpers:?}");

        child.kill().unwrap();
        assert_eq!(child.wait().unwrap().exitcode(), -9);
        assert!(
            eventually(LONG, || entries(&prefix).is_empty() && entries(&random).is_empty()),
            "left behind: {:?} {:?}",
            entries(&prefix),
            entries(&random)
        );
        assert!(eventually(LONG, || !multiproc_tests::process_running(helpers[0])), "the helper outlived its work");
    }

    #[process_task]
    fn create_and_forget(name: String) {
        std::mem::forget(SharedMemory::create_named(&name, 64).unwrap());
    }

    #[test]
    fn a_daemonic_creator_that_never_drops_its_owner_leaves_nothing() {
        let name = unique("forgot");
        let child = Builder::new(create_and_forget, (name.clone(),)).daemon(true).start().unwrap();
        join_within(child, "the creator");
        assert!(eventually(LONG, || !exists(&name)), "{name} was left behind");
    }

    #[process_task]
    fn kill_my_helper_and_create(first: String, second: String, tell: Connection<(), WriteOnly>, hold: Connection<()>) {
        let a = SharedMemory::create_named(&first, 64).unwrap();
        let me = std::process::id();
        let helper = children_of(me)[0];
        // SAFETY: kill has no memory preconditions.
        assert_eq!(unsafe { libc::kill(helper as i32, libc::SIGKILL) }, 0);
        assert!(eventually(LONG, || !multiproc_tests::process_running(helper)));
        let b = SharedMemory::create_named(&second, 64).unwrap();
        tell.send(&()).unwrap();
        let _ = hold.recv();
        drop((a, b));
    }

    #[test]
    fn a_killed_helper_is_replaced_and_learns_every_live_name() {
        let (first, second) = (unique("before"), unique("after"));
        let (ready_rx, ready_tx) = pipe_one_way::<()>().unwrap();
        let (_hold, hold_there) = multiproc::pipe::<()>().unwrap();
        let child = Builder::new(kill_my_helper_and_create, (first.clone(), second.clone(), ready_tx, hold_there))
            .start()
            .unwrap();
        ready_rx.recv().unwrap();
        assert!(exists(&first) && exists(&second));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(eventually(LONG, || !exists(&first) && !exists(&second)), "left behind");
    }

    #[process_task]
    fn create_and_say(name: String, tell: Connection<u32, WriteOnly>, hold: Connection<()>) {
        let owner = SharedMemory::create_named(&name, 64).unwrap();
        tell.send(&children_of(std::process::id())[0]).unwrap();
        let _ = hold.recv();
        drop(owner);
    }

    #[test]
    fn the_helper_outlives_a_terminal_interrupt_of_the_group() {
        let name = unique("interrupted");
        let (rx, tx) = pipe_one_way::<u32>().unwrap();
        let (_hold, hold_there) = multiproc::pipe::<()>().unwrap();
        let child = Builder::new(create_and_say, (name.clone(), tx, hold_there)).start().unwrap();
        let helper = rx.recv().unwrap();
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: kill has no memory preconditions.
            assert_eq!(unsafe { libc::kill(helper as i32, sig) }, 0);
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // The helper was still there to remove the name.
        assert!(eventually(LONG, || !exists(&name)), "{name} was left behind");
    }
}
