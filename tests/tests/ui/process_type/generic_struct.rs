use multiproc::Process;
use serde::{Deserialize, Serialize};

#[derive(Process, Serialize, Deserialize)]
struct Worker<T> {
    job: T,
}

fn main() {}
