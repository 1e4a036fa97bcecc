use multiproc::process_task;

/// A type of the user's with the name the attribute generates.
struct AddArgs;

#[process_task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn main() {
    let _ = AddArgs;
}
