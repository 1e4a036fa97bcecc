use multiproc::{Builder, process_task};

#[process_task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[process_task]
fn halve(x: f64) -> f64 {
    x / 2.0
}

fn main() {
    let _ = Builder::new(add, HalveArgs { x: 3.0 }).start();
}
