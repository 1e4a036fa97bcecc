use multiproc::child_init;

#[child_init]
fn set_up(level: u32) {
    let _ = level;
}

fn main() {}
