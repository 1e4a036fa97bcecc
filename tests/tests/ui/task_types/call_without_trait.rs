use multiproc::process_task;

#[process_task]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    assert_eq!(square.call_here((3,)), 9);
}
