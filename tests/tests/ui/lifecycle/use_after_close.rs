use multiproc::{Builder, process_task};

#[process_task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn main() {
    let child = Builder::new(add, (2, 3)).start().unwrap();
    child.wait().unwrap();
    child.close().unwrap();
    println!("{}", child.pid());
}
