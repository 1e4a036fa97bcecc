//! Progress reported by children, drawn by the parent: real processes
//! report through `multiproc::progress`, and the parent's `Bars` shows
//! (and lets the test read) where each child's bar ended.
//!
//! Nothing here depends on the machine's speed: every wait has a deadline
//! and waits for a condition.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use multiproc::progress::{self, Bars};
use multiproc::{Builder, Process, process_task};
use multiproc_tests::eventually;
use serde::{Deserialize, Serialize};

/// Generous: a condition that holds on any machine well before this.
const WITHIN: Duration = Duration::from_secs(60);

/// Counts to `n` in steps of one, with a message, and finishes.
#[process_task]
fn count_to(n: u64) -> bool {
    progress::set_length(n);
    for i in 0..n {
        progress::set_message(format!("item {i}"));
        progress::inc(1);
    }
    progress::finish();
    progress::is_reporting()
}

/// Reports without finishing: the exit flushes the last value.
#[process_task]
fn count_without_finishing(n: u64) {
    progress::set_length(n);
    for _ in 0..n {
        progress::inc(1);
    }
}

/// Reports, then leaves through `std::process::exit` before the next
/// update would be due.
#[process_task]
fn count_then_exit(n: u64) {
    progress::set_length(n);
    progress::inc(1);
    std::thread::sleep(Duration::from_millis(5));
    progress::inc(n - 1);
    std::process::exit(3);
}

/// Calls every progress function; says whether it was reporting.
#[process_task]
fn report_unasked() -> bool {
    progress::set_length(10);
    progress::inc(3);
    progress::set_position(5);
    progress::set_message("unasked");
    progress::finish();
    progress::is_reporting()
}

/// Makes progress slowly until it is killed.
#[process_task]
fn crawl() {
    progress::set_length(1_000_000);
    for _ in 0..6_000 {
        progress::inc(1);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A million single steps.
#[process_task]
fn million() {
    progress::set_length(1_000_000);
    for _ in 0..1_000_000 {
        progress::inc(1);
    }
    progress::finish();
}

/// A process type that reports from `run`.
#[derive(Process, Serialize, Deserialize)]
struct Steps {
    n: u64,
}

impl Process for Steps {
    fn run(&mut self) {
        progress::set_length(self.n);
        for _ in 0..self.n {
            progress::inc(1);
        }
        progress::finish();
    }
}

/// What the bars drew, shared with the test.
#[derive(Clone, Default)]
struct Drawn(Arc<Mutex<Vec<u8>>>);

impl Write for Drawn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drawn {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn the_parent_sees_each_childs_final_position() {
    let drawn = Drawn::default();
    let bars = Bars::new().draw_into(drawn.clone());
    let children: Vec<_> = (0..3)
        .map(|i| Builder::new(count_to, (100,)).name(format!("counter-{i}")).progress(&bars).start().unwrap())
        .collect();
    let steps = Steps { n: 100 }.builder().name("steps").progress(&bars).start().unwrap();
    for child in children {
        assert!(child.join().unwrap(), "a child asked to report knows it");
    }
    steps.join().unwrap();
    assert!(bars.wait_timeout(WITHIN), "every child's channel closes once it has ended");

    let all = bars.bars();
    let labels: Vec<String> = all.iter().map(|b| b.label()).collect();
    assert_eq!(labels, ["counter-0", "counter-1", "counter-2", "steps"], "one bar per child, in start order");
    for bar in &all {
        assert_eq!((bar.position(), bar.length()), (100, Some(100)), "{}", bar.label());
        assert!(bar.is_finished(), "{}", bar.label());
    }
    assert_eq!(all[0].message(), "item 99");
    drop(bars);
    let text = drawn.text();
    assert!(text.matches("100/100").count() >= 4, "each bar's final state is drawn:\n{text}");
    for label in labels {
        assert!(text.contains(&label), "{label} labels its bar:\n{text}");
    }
}

#[test]
fn the_exit_flushes_the_last_value() {
    let bars = Bars::hidden();
    let child = Builder::new(count_without_finishing, (250,)).progress(&bars).start().unwrap();
    let name = child.name().to_owned();
    child.join().unwrap();
    assert!(bars.wait_timeout(WITHIN));
    let bar = &bars.bars()[0];
    assert_eq!(bar.label(), name, "labelled by the child's name");
    assert_eq!((bar.position(), bar.length()), (250, Some(250)));
}

// Windows: `ExitProcess` runs no exit hook of the runtime's (see the
// guide's platform table), so a task that calls `exit` loses its last
// 50 ms of progress there.
#[cfg(unix)]
#[test]
fn an_exit_from_the_task_flushes_the_last_value_too() {
    let bars = Bars::hidden();
    let child = Builder::new(count_then_exit, (40,)).progress(&bars).start().unwrap();
    assert_eq!(child.wait().unwrap().exitcode(), 3);
    assert!(bars.wait_timeout(WITHIN));
    assert_eq!(bars.bars()[0].position(), 40);
}

#[test]
fn progress_calls_without_bars_do_nothing() {
    let drawn = Drawn::default();
    let bars = Bars::new().draw_into(drawn.clone());
    // The parent has bars, but does not ask this child to report into them.
    let child = Builder::new(report_unasked, ()).start().unwrap();
    assert_eq!(child.wait().unwrap().exitcode(), 0);
    assert!(!child.join().unwrap(), "the calls are no-ops");
    assert!(bars.wait_timeout(WITHIN));
    assert!(bars.bars().is_empty());
    drop(bars);
    assert_eq!(drawn.text(), "", "nothing is drawn for a child that was not asked");
    // In the parent itself, outside any child, the calls are no-ops too.
    assert!(!report_unasked());
}

#[test]
fn a_killed_child_does_not_hang_the_bars() {
    let bars = Bars::new().draw_into(Drawn::default());
    let child = Builder::new(crawl, ()).progress(&bars).start().unwrap();
    let bar = bars.bars().pop().expect("the child's bar");
    assert!(eventually(WITHIN, || bar.position() > 0), "the child reports as it goes");
    child.kill().unwrap();
    let _ = child.wait().unwrap();
    assert!(bars.wait_timeout(WITHIN), "a killed child's channel closes");
    assert!(!bar.is_finished());
    assert!(bar.position() < 1_000_000);
    drop(bars);
}

#[test]
fn dropping_the_bars_while_a_child_reports_returns() {
    let bars = Bars::hidden();
    let child = Builder::new(crawl, ()).progress(&bars).start().unwrap();
    let bar = bars.bars().pop().expect("the child's bar");
    assert!(eventually(WITHIN, || bar.position() > 0));
    // The child is still running: dropping the bars neither waits for it
    // nor fails it.
    drop(bars);
    assert!(child.is_alive());
    child.kill().unwrap();
    let _ = child.wait().unwrap();
}

#[test]
fn a_million_incs_are_coalesced() {
    let bars = Bars::hidden();
    let child = Builder::new(million, ()).progress(&bars).start().unwrap();
    child.join().unwrap();
    assert!(bars.wait_timeout(WITHIN));
    let bar = &bars.bars()[0];
    assert_eq!(bar.position(), 1_000_000);
    assert!(bar.is_finished());
    let updates = multiproc::__private::testing::progress_updates(bar);
    // At most one update per 50 ms: a loop would have to take minutes to
    // come near this bound, against a million messages uncoalesced.
    assert!((1..2_000).contains(&updates), "{updates} updates for a million increments");
}

#[test]
fn a_bar_made_by_the_parent() {
    let drawn = Drawn::default();
    let bars = Bars::new().draw_into(drawn.clone());
    let bar = bars.add(10, "map");
    for _ in 0..10 {
        bar.inc(1);
    }
    bar.set_message("done");
    assert_eq!((bar.position(), bar.length()), (10, Some(10)));
    bar.finish();
    assert!(bar.is_finished());
    assert!(bars.wait_timeout(WITHIN), "no child to wait for");
    drop(bars);
    let text = drawn.text();
    assert!(text.contains("10/10") && text.contains("map") && text.contains("done"), "{text}");
}

#[test]
fn hidden_bars_draw_nothing_and_still_count() {
    let bars = Bars::hidden();
    let child = Builder::new(count_to, (20,)).progress(&bars).start().unwrap();
    assert!(child.join().unwrap());
    assert!(bars.wait_timeout(WITHIN));
    assert_eq!(bars.bars()[0].position(), 20);
}
