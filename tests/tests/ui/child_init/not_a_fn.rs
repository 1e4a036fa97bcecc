use multiproc::child_init;

#[child_init]
static LEVEL: u32 = 3;

fn main() {}
