use multiproc::{Builder, Child, Error, process_task};

#[process_task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn main() {
    let _: Result<Child<String>, Error> = Builder::new(add, (2, 3)).start();
}
