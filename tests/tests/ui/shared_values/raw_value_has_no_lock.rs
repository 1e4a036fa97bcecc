// A raw value has no lock: asking for one does not compile (Python's
// `Value(..., lock=False)` raises AttributeError only when it runs).
fn main() {
    let v = multiproc::RawValue::new(0u64).unwrap();
    let _ = v.get_lock();
}
