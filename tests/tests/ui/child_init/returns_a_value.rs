use multiproc::child_init;

#[child_init]
fn set_up() -> Result<(), String> {
    Ok(())
}

fn main() {}
