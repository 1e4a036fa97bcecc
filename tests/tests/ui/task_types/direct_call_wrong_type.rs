use multiproc::process_task;

#[process_task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn main() {
    let _ = add("two", 3);
}
