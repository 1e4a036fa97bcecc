//! Any identifier is a task name, including every name the generated code
//! binds for itself (the arguments, the payload, the result, the decoded
//! value, errors, the named-arguments value) and the generated items'
//! names. Each task is called in this process and run in a child.

#![allow(non_snake_case)]

use multiproc::{Task, process_task};

#[process_task]
fn a(n: u64) -> u64 {
    n + 1
}

#[process_task]
fn b(n: u64) -> u64 {
    n + 2
}

#[process_task]
fn e(n: u64) -> u64 {
    n + 3
}

#[process_task]
fn args(n: u64) -> u64 {
    n + 4
}

#[process_task]
fn payload(n: u64) -> u64 {
    n + 5
}

#[process_task]
fn out(bytes: Vec<u8>) -> Vec<u8> {
    bytes.into_iter().rev().collect()
}

#[process_task]
fn input() -> Vec<u8> {
    vec![1, 2, 3]
}

#[process_task]
fn failure(n: u32) -> Result<u32, String> {
    if n == 0 { Err("zero".into()) } else { Ok(n) }
}

#[process_task]
fn decoded(n: u64) -> u64 {
    n + 6
}

#[process_task]
fn error(n: u64) -> u64 {
    n + 7
}

#[process_task]
fn value(n: u64) -> u64 {
    n + 8
}

#[process_task]
fn kwargs(n: u64) -> u64 {
    n + 9
}

#[process_task]
fn invoke(n: u64) -> u64 {
    n + 10
}

#[process_task]
fn call(n: u64) -> u64 {
    n + 11
}

#[process_task]
fn deref(n: u64) -> u64 {
    n + 12
}

#[process_task]
fn F(n: u64) -> u64 {
    n + 13
}

#[process_task]
fn ENTRY(n: u64) -> u64 {
    n + 14
}

#[process_task]
fn x(n: u64, m: u64) -> u64 {
    n * m
}

/// Calls `task(1)` here and in a child; both give `expected`.
macro_rules! check {
    ($($task:ident => $expected:expr),* $(,)?) => {$(
        assert_eq!($task.call_here((1,)), $expected);
        assert_eq!(multiproc::spawn($task, (1,))?.join()?, $expected);
    )*};
}

fn main() -> Result<(), multiproc::Error> {
    check! {
        a => 2, b => 3, e => 4, args => 5, payload => 6, decoded => 7, error => 8, value => 9,
        kwargs => 10, invoke => 11, call => 12, deref => 13, F => 14, ENTRY => 15,
    }
    assert_eq!(multiproc::spawn(out, (vec![1, 2, 3],))?.join()?, [3, 2, 1]);
    assert_eq!(multiproc::spawn(input, ())?.join()?, [1, 2, 3]);
    assert_eq!(multiproc::spawn(failure, (4,))?.join()?, Ok(4));
    assert_eq!(multiproc::spawn(failure, (0,))?.join()?, Err("zero".to_string()));
    assert_eq!(multiproc::spawn(x, XArgs { n: 6, m: 7 })?.join()?, 42);
    assert_eq!(a(1) + F(1), 16);
    Ok(())
}
