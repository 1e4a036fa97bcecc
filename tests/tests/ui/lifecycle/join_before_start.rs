use multiproc::{Builder, Error, process_task};

#[process_task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn main() -> Result<(), Error> {
    let sum = Builder::new(add, (2, 3)).join()?;
    assert_eq!(sum, 5);
    Ok(())
}
