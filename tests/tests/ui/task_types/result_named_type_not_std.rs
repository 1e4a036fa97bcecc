// A return type spelled `Result<..>` is taken for `std`'s `Result`.
use multiproc::process_task;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Result<T> {
    value: T,
}

#[process_task]
fn wrap(x: u64) -> Result<u64> {
    Result { value: x }
}

fn main() {}
