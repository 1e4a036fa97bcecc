use multiproc::process_task;

// serde spells it `crate = "..."`; here it is a path.
#[process_task(crate = "multiproc")]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn main() {}
