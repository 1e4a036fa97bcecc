use multiproc::process_task;

#[process_task(crate = multiproc, crate = multiproc)]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn main() {}
