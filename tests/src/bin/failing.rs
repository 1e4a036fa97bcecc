//! Starts one child that panics and one whose task returns an `Err`, and
//! joins both; the first argument, if any, sets what children print
//! (`quiet`, `all`). For the tests of what a failing child prints.

use multiproc::{ChildReports, Error, process_task};

#[process_task]
fn panics() {
    deep_inside();
}

#[inline(never)]
fn deep_inside() {
    panic!("the task gave up");
}

#[process_task]
fn fails() -> Result<(), String> {
    Err("a handled failure".into())
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("quiet") => multiproc::set_child_reports(ChildReports::Quiet),
        Some("all") => multiproc::set_child_reports(ChildReports::All),
        _ => {}
    }
    let panicked = multiproc::spawn(panics, ()).unwrap().join();
    assert!(matches!(panicked, Err(Error::Panicked { .. })), "{panicked:?}");
    let failed = multiproc::spawn(fails, ()).unwrap().join().unwrap();
    assert_eq!(failed, Err("a handled failure".to_string()));
}
