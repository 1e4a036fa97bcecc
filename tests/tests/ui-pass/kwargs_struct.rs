//! The generated named-arguments struct (Python's `kwargs`): named after
//! the function in CamelCase, with the function's visibility, usable
//! wherever the argument tuple goes.

use multiproc::{Builder, Child, Error, Kwargs, Task, process_task};

mod tasks {
    use multiproc::process_task;

    #[process_task]
    pub fn long_time_task(name: String, seconds: u64) -> String {
        format!("{name}:{seconds}")
    }

    #[process_task]
    pub(crate) fn r#move(from: u32, to: u32) -> u32 {
        to - from
    }
}

#[process_task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

/// No arguments: no struct, the tuple is `()`.
#[process_task]
fn ping() -> u8 {
    1
}

fn main() -> Result<(), Error> {
    // Every field is public, in declaration order or not.
    let kwargs = tasks::LongTimeTaskArgs {
        seconds: 3,
        name: "job".to_string(),
    };
    let _: &String = &kwargs.name;
    let builder: Builder<String> = Builder::new(tasks::long_time_task, kwargs);
    drop(builder);

    // Converts into the tuple, as `Task::call_here` takes it.
    let tuple: (u64, u64) = AddArgs { a: 1, b: 2 }.into_tuple();
    assert_eq!(add.call_here(tuple), 3);
    assert_eq!(add.call_here(AddArgs { a: 2, b: 2 }.into_tuple()), 4);

    // Raw identifiers lose their `r#`.
    let moved = tasks::MoveArgs { from: 1, to: 4 };
    assert_eq!(tasks::r#move(moved.from, moved.to), 3);

    // Really started, with kwargs and with a tuple.
    let child: Child<u64> = multiproc::spawn(add, AddArgs { a: 20, b: 22 })?;
    assert_eq!(child.join()?, 42);
    assert_eq!(
        multiproc::spawn(tasks::r#move, tasks::MoveArgs { from: 2, to: 9 })?.join()?,
        7
    );
    assert_eq!(Builder::new(ping, ()).start()?.join()?, 1);
    Ok(())
}
