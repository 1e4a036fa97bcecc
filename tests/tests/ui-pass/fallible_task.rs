//! A task returning `Result`: the parent gets `Ok(Err(e))` from `join`,
//! and the child's exit code is 1.

use multiproc::{Builder, Child, Error, process_task};
use serde::{Deserialize, Serialize};

#[process_task]
fn parse(text: String) -> Result<u64, String> {
    text.trim().parse().map_err(|e| format!("{text:?}: {e}"))
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Failure {
    Empty,
    TooLong(usize),
}

#[process_task]
fn check(text: String) -> std::result::Result<(), Failure> {
    match text.len() {
        0 => Err(Failure::Empty),
        n if n > 8 => Err(Failure::TooLong(n)),
        _ => Ok(()),
    }
}

fn main() -> Result<(), Error> {
    assert_eq!(parse(" 7 ".to_string()), Ok(7));
    assert_eq!(check(String::new()), Err(Failure::Empty));

    let child: Child<Result<u64, String>> = Builder::new(parse, ("42".to_string(),)).start()?;
    assert_eq!(child.join()?, Ok(42));

    let child = multiproc::spawn(
        parse,
        ParseArgs {
            text: "forty-two".to_string(),
        },
    )?;
    let status = child.wait()?;
    assert_eq!(status.exitcode(), 1);
    assert!(child.join()?.is_err());

    let child = multiproc::spawn(check, ("much too long".to_string(),))?;
    assert_eq!(child.join()?, Err(Failure::TooLong(13)));
    Ok(())
}
