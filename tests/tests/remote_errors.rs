//! A task may return `Result<T, E>` for common error types that are not
//! serializable: the parent gets the same type back, with the child's
//! message, kind and source chain, and the child's exit code is 1.

use std::num::{IntErrorKind, ParseIntError};

use multiproc::{Error, RemoteError, process_task, spawn};

#[process_task]
fn parse(text: String) -> Result<i32, ParseIntError> {
    text.parse()
}

#[process_task]
fn read(path: String) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

#[process_task]
fn invalid_data() -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::InvalidData, Outer(std::io::Error::other("the root cause"))))
}

#[process_task]
fn boxed(fail: bool) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    if fail { Err(Box::new(Outer(std::io::Error::other("the root cause")))) } else { Ok(7) }
}

#[process_task]
fn with_anyhow(text: String) -> anyhow::Result<i32> {
    use anyhow::Context;
    let n: i32 = text.parse().with_context(|| format!("parsing {text:?}"))?;
    Ok(n)
}

/// An error with a source, and no serde.
#[derive(Debug)]
struct Outer(std::io::Error);

impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the outer failure")
    }
}

impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn a_parse_int_error_comes_back_with_its_kind() -> Result<(), Error> {
    assert_eq!(spawn(parse, "42")?.join()?, Ok(42));
    for (text, kind) in
        [("x", IntErrorKind::InvalidDigit), ("", IntErrorKind::Empty), ("9999999999", IntErrorKind::PosOverflow)]
    {
        let child = spawn(parse, text)?;
        assert_eq!(child.wait()?.exitcode(), 1, "an Err is a failure");
        let err = child.join()?.unwrap_err();
        assert_eq!(err.kind(), &kind, "{text:?}");
        assert_eq!(err, text.parse::<i32>().unwrap_err());
    }
    Ok(())
}

#[test]
fn an_os_error_comes_back_as_the_same_os_error() -> Result<(), Error> {
    let err = spawn(read, "/nonexistent/multiproc/file")?.join()?.unwrap_err();
    let here = std::fs::read_to_string("/nonexistent/multiproc/file").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(err.raw_os_error(), here.raw_os_error());
    assert_eq!(err.to_string(), here.to_string());
    Ok(())
}

#[test]
fn a_custom_io_error_keeps_its_kind_message_and_chain() -> Result<(), Error> {
    let err = spawn(invalid_data, ())?.join()?.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(err.to_string(), "the outer failure");
    let inner = err.get_ref().expect("a custom error");
    assert_eq!(inner.source().map(ToString::to_string).as_deref(), Some("the root cause"));
    Ok(())
}

#[test]
fn a_boxed_error_comes_back_as_a_remote_error_with_its_chain() -> Result<(), Error> {
    assert_eq!(spawn(boxed, false)?.join()?.ok(), Some(7));
    let err = spawn(boxed, true)?.join()?.unwrap_err();
    assert_eq!(err.to_string(), "the outer failure");
    let remote = err.downcast_ref::<RemoteError>().expect("a RemoteError");
    assert!(remote.type_name().contains("dyn"), "{}", remote.type_name());
    assert_eq!(err.source().map(ToString::to_string).as_deref(), Some("the root cause"));
    Ok(())
}

#[test]
fn an_anyhow_error_keeps_its_context_chain() -> Result<(), Error> {
    assert_eq!(spawn(with_anyhow, "5")?.join()?.ok(), Some(5));
    let err = spawn(with_anyhow, "five")?.join()?.unwrap_err();
    let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
    assert_eq!(chain, ["parsing \"five\"", "invalid digit found in string"]);
    Ok(())
}
