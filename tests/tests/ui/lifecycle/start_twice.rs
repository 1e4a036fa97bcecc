use multiproc::{Builder, Error, process_task};

#[process_task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn main() -> Result<(), Error> {
    let builder = Builder::new(add, (2, 3));
    let first = builder.start()?;
    let second = builder.start()?;
    first.join()?;
    second.join()?;
    Ok(())
}
