// Only plain-old-data lives in shared memory: a `String` points into one
// process's heap (Python's "bad typecode", at compile time).
fn main() {
    let _ = multiproc::Value::new(String::new());
}
