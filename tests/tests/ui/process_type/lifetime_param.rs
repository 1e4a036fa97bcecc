use multiproc::Process;
use serde::Serialize;

#[derive(Process, Serialize)]
struct Worker<'a> {
    name: &'a str,
}

fn main() {}
