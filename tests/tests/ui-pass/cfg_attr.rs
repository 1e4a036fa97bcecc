//! `#[cfg]` and `#[cfg_attr]` with tasks: the attribute applied through
//! `cfg_attr`, alternative definitions under opposite `cfg`s (every
//! generated item must follow the function's `cfg`), and `cfg_attr`s on
//! the function itself.

use multiproc::{Error, process_task};

#[cfg_attr(all(), process_task)]
fn through_cfg_attr(x: u64) -> u64 {
    x + 1
}

#[cfg_attr(any(), process_task)]
fn not_a_task(x: u64) -> u64 {
    x + 2
}

#[process_task]
#[cfg(all())]
fn platform() -> String {
    "enabled".to_string()
}

#[process_task]
#[cfg(any())]
fn platform() -> String {
    compile_error!("this definition is configured out")
}

#[process_task]
#[cfg_attr(all(), allow(unused_mut))]
#[cfg_attr(any(), deprecated)]
fn tolerant(mut x: u64) -> u64 {
    x
}

fn main() -> Result<(), Error> {
    assert_eq!(through_cfg_attr(1), 2);
    let _ = ThroughCfgAttrArgs { x: 1 };
    assert_eq!(not_a_task(1), 3);
    assert_eq!(platform(), "enabled");
    assert_eq!(tolerant(4), 4);

    assert_eq!(multiproc::spawn(through_cfg_attr, (41,))?.join()?, 42);
    assert_eq!(multiproc::spawn(platform, ())?.join()?, "enabled");
    assert_eq!(
        multiproc::spawn(tolerant, TolerantArgs { x: 5 })?.join()?,
        5
    );
    Ok(())
}
