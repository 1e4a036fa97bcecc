use std::marker::PhantomData;

use multiproc::process_task;
use serde::{Deserialize, Serialize};

/// Serializable, but not `Send` (the raw pointer).
#[derive(Serialize, Deserialize)]
struct Local {
    value: u64,
    _not_send: PhantomData<*const ()>,
}

#[process_task]
fn read(local: Local) -> u64 {
    local.value
}

fn main() {}
