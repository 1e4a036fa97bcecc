//! The runtime reached through paths other than `::multiproc`, with the
//! macros told where it is by `crate = path`.

// At the crate root, `extern crate .. as` also adds `mp` to the extern
// prelude, so `mp` (and `::mp`) resolves in every module.
extern crate multiproc as mp;

use serde::{Deserialize, Serialize};

#[mp::process_task(crate = mp)]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[mp::process_task(crate = ::mp)]
fn sub(a: u64, b: u64) -> u64 {
    a - b
}

#[derive(mp::Process, Serialize, Deserialize)]
#[multiproc(crate = mp)]
struct Worker {
    jobs: u32,
}

impl mp::Process for Worker {
    fn run(&mut self) {
        self.jobs += 1;
    }
}

/// A re-export inside this crate, named with `crate::`.
pub mod reexport {
    pub use ::multiproc as runtime;
}

mod nested {
    // A `use` alias is visible in the module that declares it, which is
    // where the generated code lives.
    use ::multiproc as rt;
    use serde::{Deserialize, Serialize};

    #[rt::process_task(crate = rt)]
    pub fn mul(a: u64, b: u64) -> u64 {
        a * b
    }

    #[rt::process_task(crate = crate::reexport::runtime)]
    pub fn div(a: u64, b: u64) -> u64 {
        a / b
    }

    // The extern-prelude name from the crate root works here too.
    #[mp::process_task(crate = mp)]
    pub fn neg(a: i64) -> i64 {
        -a
    }

    #[derive(rt::Process, Serialize, Deserialize)]
    #[multiproc(crate = crate::reexport::runtime)]
    pub struct Idle;

    impl rt::Process for Idle {
        fn run(&mut self) {}
    }
}

fn main() -> Result<(), mp::Error> {
    assert_eq!(add(2, 3), 5);
    assert_eq!(sub(3, 2), 1);
    assert_eq!(nested::mul(2, 3), 6);
    assert_eq!(nested::div(6, 3), 2);
    assert_eq!(nested::neg(4), -4);

    // Registered through the renamed paths: these really run in children.
    assert_eq!(
        mp::Builder::new(add, AddArgs { a: 2, b: 3 })
            .start()?
            .join()?,
        5
    );
    assert_eq!(
        mp::spawn(nested::mul, nested::MulArgs { a: 4, b: 5 })?.join()?,
        20
    );
    assert_eq!(mp::spawn(nested::div, (8, 2))?.join()?, 4);
    assert_eq!(mp::spawn(nested::neg, (7,))?.join()?, -7);
    assert!(mp::spawn(sub, (1, 1))?.wait()?.success());
    assert!(mp::Process::start(Worker { jobs: 0 })?.wait()?.success());
    assert!(
        mp::Process::builder(nested::Idle)
            .name("idle")
            .start()?
            .wait()?
            .success()
    );
    Ok(())
}
