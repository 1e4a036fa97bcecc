use multiproc::{Builder, process_task};

#[process_task]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    // The arguments are a tuple: `(7,)`, not `7`.
    let _ = Builder::new(square, 7).start();
}
