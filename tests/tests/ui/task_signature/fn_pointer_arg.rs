use multiproc::process_task;

#[process_task]
fn apply(f: fn(u64) -> u64, x: u64) -> u64 {
    f(x)
}

fn main() {}
