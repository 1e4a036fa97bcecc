use multiproc::{Builder, process_task};

#[process_task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[process_task]
fn boom(msg: String) {
    panic!("{msg}");
}

#[test]
fn smoke() {
    assert_eq!(add(1, 2), 3);
    let c = Builder::new(add, (2, 3)).start().unwrap();
    assert_eq!(c.join().unwrap(), 5);
    let c = Builder::new(add, AddArgs { a: 4, b: 5 }).start().unwrap();
    assert_eq!(c.join().unwrap(), 9);
    let c = multiproc::spawn(boom, ("kaboom".to_string(),)).unwrap();
    let e = c.join().unwrap_err();
    eprintln!("{e}");
}
