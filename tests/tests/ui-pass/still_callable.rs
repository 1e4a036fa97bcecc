//! A task stays an ordinary function: callable directly, recursively,
//! through `Task::call_here`, as a `fn` pointer, and in const context when it
//! is a `const fn`.

use multiproc::{Error, Task, process_task};

/// Recursion calls the function itself.
#[process_task]
fn fib(n: u64) -> u64 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

#[process_task]
fn is_even(n: u64) -> bool {
    if n == 0 { true } else { is_odd(n - 1) }
}

#[process_task]
fn is_odd(n: u64) -> bool {
    if n == 0 { false } else { is_even(n - 1) }
}

#[process_task]
pub fn hello() {}

/// A `const fn` task stays usable in constants.
#[process_task]
const fn double(x: u64) -> u64 {
    x * 2
}

const EIGHT: u64 = double(4);

fn apply(f: fn(u64) -> u64, x: u64) -> u64 {
    f(x)
}

fn main() -> Result<(), Error> {
    assert_eq!(fib(10), 55);
    assert_eq!(EIGHT, 8);
    assert!(is_even(10) && is_odd(7));
    hello();

    assert_eq!(fib.call_here((12,)), 144);
    assert_eq!(apply(fib, 11), 89);
    let pointer: fn(u64) -> bool = is_even;
    assert!(pointer(4));
    let fibs: Vec<u64> = (0..5).map(|n| fib(n)).collect();
    assert_eq!(fibs, [0, 1, 1, 2, 3]);

    // The value is `Copy`: still usable after starting it.
    let child = multiproc::spawn(fib, (20,))?;
    assert_eq!(fib(20), 6765);
    assert_eq!(child.join()?, 6765);
    Ok(())
}
