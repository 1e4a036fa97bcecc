use multiproc::process_task;
use serde::{Deserialize, Serialize};

/// Serializable, but not `Debug`: the child cannot report it.
#[derive(Serialize, Deserialize)]
struct Failure {
    code: u8,
}

#[process_task]
fn check(x: u64) -> Result<u64, Failure> {
    if x == 0 {
        Err(Failure { code: 1 })
    } else {
        Ok(x)
    }
}

fn main() {}
