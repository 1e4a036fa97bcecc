//! Pattern arguments: tuples, structs, `_` and `mut` bindings. Arguments
//! that are not plain names are `argN` in the named-arguments struct.

use multiproc::{Error, process_task};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Point {
    x: i64,
    y: i64,
}

#[process_task]
fn mix((a, b): (u32, u32), _: u8, Point { x, y }: Point, mut total: i64) -> i64 {
    total += i64::from(a) * i64::from(b);
    total + x + y
}

#[process_task]
fn ignore_all(_: String, _: Vec<u8>) {}

fn main() -> Result<(), Error> {
    assert_eq!(mix((2, 3), 0, Point { x: 1, y: 1 }, 10), 18);
    ignore_all(String::new(), Vec::new());

    let kwargs = MixArgs {
        arg0: (2, 3),
        arg1: 9,
        arg2: Point { x: 1, y: 1 },
        total: 10,
    };
    assert_eq!(multiproc::spawn(mix, kwargs)?.join()?, 18);
    multiproc::spawn(
        ignore_all,
        IgnoreAllArgs {
            arg0: "x".to_string(),
            arg1: vec![1],
        },
    )?
    .join()?;
    Ok(())
}
