use std::marker::PhantomData;

use multiproc::Process;
use serde::{Deserialize, Serialize};

#[derive(Process, Serialize, Deserialize)]
struct Worker {
    jobs: u32,
    _not_send: PhantomData<*const ()>,
}

impl Process for Worker {
    fn run(&mut self) {
        self.jobs += 1;
    }
}

fn main() {}
