//! What can be started: a marked function, by name or through a pointer;
//! not an unmarked function or a closure, which `start` refuses before
//! creating any process.

use multiproc::{Builder, Error, RegistryError, process_task};

#[process_task]
fn triple(x: u64) -> u64 {
    3 * x
}

#[process_task]
fn quadruple(x: u64) -> u64 {
    4 * x
}

fn unmarked(x: u64) -> u64 {
    x
}

/// The registry error `start` gives, or a panic naming what happened.
fn refusal<R: std::fmt::Debug + 'static>(builder: Builder<R>) -> RegistryError {
    match builder.start() {
        Err(Error::Registry(e)) => e,
        other => panic!("expected a registry error, got {other:?}"),
    }
}

#[test]
fn an_unmarked_function_is_refused_with_the_fix() {
    let e = refusal(Builder::new(unmarked, 1));
    assert!(matches!(&e, RegistryError::NotATask { name } if name.ends_with("unmarked")), "{e:?}");
    assert!(e.to_string().contains("mark the function `#[multiproc::process_task]`"), "{e}");
}

#[test]
fn a_closure_is_refused_with_the_fix() {
    let e = refusal(Builder::new(|x: u64| x + 1, (1,)));
    assert!(matches!(&e, RegistryError::NotATask { name } if name.contains("{{closure}}")), "{e:?}");
    assert!(e.to_string().contains("a closure has no name a child could find"), "{e}");
}

#[test]
fn a_pointer_to_an_unmarked_function_is_refused() {
    let pointer: fn(u64) -> u64 = unmarked;
    let e = refusal(Builder::new(pointer, 1));
    assert!(matches!(e, RegistryError::NotATask { .. }), "{e:?}");
}

#[test]
fn a_task_chosen_at_run_time_runs_as_itself() -> Result<(), Error> {
    let tasks: [fn(u64) -> u64; 2] = [triple, quadruple];
    let results: Vec<u64> = tasks.iter().map(|&task| multiproc::spawn(task, 5)?.join()).collect::<Result<_, _>>()?;
    assert_eq!(results, [15, 20]);
    Ok(())
}

#[test]
fn a_refused_builder_still_has_a_name_and_debug() {
    let builder = Builder::new(unmarked, 1).name("never");
    assert_eq!(builder.get_name(), "never");
    assert!(format!("{builder:?}").contains("not a process task"));
}
