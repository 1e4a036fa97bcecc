//! A task's name is a function's name: it may be shadowed by a binding,
//! a pattern or a parameter, and passed around as a function pointer;
//! one argument may be given bare, and a `&str` for a `String`.

use multiproc::{Builder, Error, process_task, spawn};

#[process_task]
fn square(x: u64) -> u64 {
    x * x
}

#[process_task]
fn value(x: u64) -> u64 {
    x + 1
}

#[process_task]
fn alpha(x: u64) -> u64 {
    x + 1
}

#[process_task]
fn beta(x: u64) -> u64 {
    x * 10
}

#[process_task]
fn greet(name: String) -> String {
    format!("hello {name}")
}

#[process_task]
fn greet_twice(name: String, other: String) -> String {
    format!("{name} and {other}")
}

/// A parameter named like a task.
fn twice(square: u64) -> u64 {
    square * 2
}

fn main() -> Result<(), Error> {
    // A binding named like the task it starts.
    let square = spawn(square, (7,))?.join()?;
    assert_eq!(square, 49);

    // A pattern binding named like a task.
    match spawn(value, 1)?.join() {
        Ok(value) => assert_eq!(value, 2),
        Err(e) => return Err(e),
    }

    // A closure parameter named like a task.
    let add_one = |value: u64| value + 1;
    assert_eq!(add_one(1), 2);
    assert_eq!(twice(3), 6);

    // Chosen at run time: a function pointer.
    for use_alpha in [true, false] {
        let task = if use_alpha { alpha } else { beta };
        assert_eq!(spawn(task, 4)?.join()?, if use_alpha { 5 } else { 40 });
    }

    // Bare single arguments, and `&str` for `String`.
    assert_eq!(spawn(crate::square, 5)?.join()?, 25);
    assert_eq!(Builder::new(greet, ("aaron",)).start()?.join()?, "hello aaron");
    assert_eq!(spawn(greet, "bob")?.join()?, "hello bob");
    assert_eq!(spawn(greet_twice, ("ann", String::from("bo")))?.join()?, "ann and bo");
    Ok(())
}
