use multiproc::child_init;

#[child_init]
async fn set_up() {}

fn main() {}
