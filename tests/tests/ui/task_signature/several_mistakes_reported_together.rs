// Not one mistake but three: the attribute reports all of them at once,
// each at its own token, rather than stopping at the first.
use multiproc::process_task;

#[process_task]
async fn lookup(key: &str, fallback: impl Into<String>) -> String {
    fallback.into() + key
}

fn main() {}
