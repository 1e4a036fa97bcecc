//! Errors that are not serializable, crossing from a child to its parent:
//! a task returning `Result<T, io::Error>` (or `ParseIntError`,
//! `Box<dyn Error + Send + Sync>`, `anyhow::Error`, …) gives its parent a
//! value of that same type, rebuilt from the message, the kind and the
//! source chain.

use std::error::Error as StdError;
use std::fmt;
use std::num::{ParseFloatError, ParseIntError, TryFromIntError};
use std::str::ParseBoolError;

use serde::{Deserialize, Serialize};

/// How many causes of an error cross at most; deeper ones are cut.
const MAX_CHAIN: usize = 32;

/// An error that happened in another process: its message, the name of its
/// type there, and its source chain, each link a `RemoteError` too.
///
/// A task returning `Result<T, Box<dyn Error + Send + Sync>>` gives its
/// parent a `Box` holding one; an `io::Error` without an OS code, or an
/// `anyhow::Error`, wraps one.
///
/// ```
/// use std::error::Error as _;
///
/// use multiproc::RemoteError;
///
/// #[multiproc::process_task]
/// fn load(path: String) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
///     let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot load {path}: {e}"))?;
///     Ok(text)
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// let err = multiproc::spawn(load, "/nonexistent/file")?.join()?.unwrap_err();
/// let remote = err.downcast_ref::<RemoteError>().expect("a remote error");
/// assert!(remote.to_string().starts_with("cannot load /nonexistent/file"));
/// assert!(remote.type_name().contains("String"));
/// assert!(remote.source().is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteError {
    type_name: String,
    message: String,
    /// What the original type needs to be rebuilt: an `io::ErrorKind`'s or
    /// `IntErrorKind`'s name.
    kind: Option<String>,
    /// An `io::Error`'s OS error code.
    os_code: Option<i32>,
    source: Option<Box<RemoteError>>,
}

impl RemoteError {
    /// Describes `error` and its source chain.
    ///
    /// ```
    /// let parse = "x".parse::<u8>().unwrap_err();
    /// let remote = multiproc::RemoteError::new(&parse);
    /// assert_eq!(remote.to_string(), parse.to_string());
    /// ```
    pub fn new<E: StdError + 'static>(error: &E) -> Self {
        Self::describe(error, std::any::type_name::<E>(), None)
    }

    fn describe(error: &(dyn StdError + 'static), type_name: &str, kind: Option<String>) -> Self {
        let mut causes = Vec::new();
        let mut next = error.source();
        while let Some(cause) = next {
            if causes.len() == MAX_CHAIN {
                break;
            }
            causes.push(cause.to_string());
            next = cause.source();
        }
        let source = causes.into_iter().rev().fold(None, |inner, message| {
            Some(Box::new(RemoteError {
                type_name: "<cause>".into(),
                message,
                kind: None,
                os_code: None,
                source: inner,
            }))
        });
        RemoteError { type_name: type_name.to_owned(), message: error.to_string(), kind, os_code: None, source }
    }

    /// The name of the error's type in the process it came from
    /// (`"<cause>"` for a link of a source chain, whose types are not known).
    ///
    /// ```
    /// let remote = multiproc::RemoteError::new(&"x".parse::<u8>().unwrap_err());
    /// assert!(remote.type_name().ends_with("ParseIntError"));
    /// ```
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The error's message (its `Display`).
    ///
    /// ```
    /// let remote = multiproc::RemoteError::new(&"x".parse::<u8>().unwrap_err());
    /// assert_eq!(remote.message(), "invalid digit found in string");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message with every cause: `"outer: inner: innermost"`.
    pub(crate) fn chain_text(&self) -> String {
        let mut text = self.message.clone();
        let mut next = self.source.as_deref();
        while let Some(cause) = next {
            text.push_str(": ");
            text.push_str(&cause.message);
            next = cause.source.as_deref();
        }
        text
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for RemoteError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn StdError + 'static))
    }
}

/// An error type that is not serializable but can be rebuilt in the
/// parent from a [`RemoteError`]: what a task may return in `Result<T, E>`
/// besides serializable errors.
#[doc(hidden)]
pub trait CrossError: Sized + 'static {
    /// The error as it crosses.
    fn to_remote(&self) -> RemoteError;
    /// The error as the parent gets it.
    fn from_remote(remote: RemoteError) -> Self;
}

impl CrossError for Box<dyn StdError + Send + Sync> {
    fn to_remote(&self) -> RemoteError {
        let inner: &(dyn StdError + 'static) = &**self;
        RemoteError::describe(inner, &dyn_type_name(inner), None)
    }
    fn from_remote(remote: RemoteError) -> Self {
        Box::new(remote)
    }
}

impl CrossError for Box<dyn StdError> {
    fn to_remote(&self) -> RemoteError {
        RemoteError::describe(&**self, &dyn_type_name(&**self), None)
    }
    fn from_remote(remote: RemoteError) -> Self {
        Box::new(remote)
    }
}

/// The concrete type's name behind a boxed error, where it is one of the
/// common ones (`String` and `&str` errors from `?` and `.into()`).
fn dyn_type_name(e: &(dyn StdError + 'static)) -> String {
    // `Box<dyn Error>::from(String)` makes a private wrapper whose Debug
    // is the string's: recognise it by that.
    let debug = format!("{e:?}");
    if debug.starts_with('"') { "String".into() } else { "dyn std::error::Error".into() }
}

impl CrossError for std::io::Error {
    fn to_remote(&self) -> RemoteError {
        // An OS error is rebuilt from its code; a custom error keeps its
        // inner error's chain.
        let mut remote = match self.get_ref() {
            Some(inner) => {
                let mut r = RemoteError::describe(inner, "std::io::Error", None);
                r.message = self.to_string();
                r
            }
            None => RemoteError::describe(self, "std::io::Error", None),
        };
        remote.kind = Some(format!("{:?}", self.kind()));
        remote.os_code = self.raw_os_error();
        remote
    }
    fn from_remote(remote: RemoteError) -> Self {
        if let Some(code) = remote.os_code {
            return std::io::Error::from_raw_os_error(code);
        }
        let kind = remote.kind.as_deref().map_or(std::io::ErrorKind::Other, io_kind);
        if remote.source.is_none() && remote.message == std::io::Error::from(kind).to_string() {
            return std::io::Error::from(kind);
        }
        std::io::Error::new(kind, remote)
    }
}

/// The `io::ErrorKind` named `name`, `Other` for one this build does not
/// know.
fn io_kind(name: &str) -> std::io::ErrorKind {
    use std::io::ErrorKind as K;
    const KINDS: &[K] = &[
        K::NotFound,
        K::PermissionDenied,
        K::ConnectionRefused,
        K::ConnectionReset,
        K::HostUnreachable,
        K::NetworkUnreachable,
        K::ConnectionAborted,
        K::NotConnected,
        K::AddrInUse,
        K::AddrNotAvailable,
        K::NetworkDown,
        K::BrokenPipe,
        K::AlreadyExists,
        K::WouldBlock,
        K::NotADirectory,
        K::IsADirectory,
        K::DirectoryNotEmpty,
        K::ReadOnlyFilesystem,
        K::StaleNetworkFileHandle,
        K::InvalidInput,
        K::InvalidData,
        K::TimedOut,
        K::WriteZero,
        K::StorageFull,
        K::NotSeekable,
        K::QuotaExceeded,
        K::FileTooLarge,
        K::ResourceBusy,
        K::ExecutableFileBusy,
        K::Deadlock,
        K::CrossesDevices,
        K::TooManyLinks,
        K::InvalidFilename,
        K::ArgumentListTooLong,
        K::Interrupted,
        K::Unsupported,
        K::UnexpectedEof,
        K::OutOfMemory,
        K::Other,
    ];
    KINDS.iter().copied().find(|k| format!("{k:?}") == name).unwrap_or(K::Other)
}

impl CrossError for ParseIntError {
    fn to_remote(&self) -> RemoteError {
        RemoteError::describe(self, "core::num::ParseIntError", Some(format!("{:?}", self.kind())))
    }
    fn from_remote(remote: RemoteError) -> Self {
        // The type has no constructor: parse something that fails the same
        // way.
        match remote.kind.as_deref() {
            Some("Empty") => parse_error::<u8>(""),
            Some("PosOverflow") => parse_error::<u8>("256"),
            Some("NegOverflow") => parse_error::<i8>("-129"),
            Some("Zero") => parse_error::<std::num::NonZeroU8>("0"),
            _ => parse_error::<u8>("x"),
        }
    }
}

/// The error of parsing `text`, which does not parse as a `T`.
fn parse_error<T: std::str::FromStr<Err = ParseIntError>>(text: &str) -> ParseIntError {
    match text.parse::<T>() {
        Err(e) => e,
        Ok(_) => unreachable!("{text:?} was chosen not to parse"),
    }
}

impl CrossError for ParseFloatError {
    fn to_remote(&self) -> RemoteError {
        RemoteError::describe(self, "core::num::ParseFloatError", None)
    }
    fn from_remote(remote: RemoteError) -> Self {
        let empty = "".parse::<f64>().err();
        let invalid = "x".parse::<f64>().err();
        match (empty, invalid) {
            (Some(e), _) if e.to_string() == remote.message => e,
            (_, Some(e)) => e,
            (Some(e), None) => e,
            (None, None) => unreachable!("\"\" and \"x\" are not numbers"),
        }
    }
}

impl CrossError for ParseBoolError {
    fn to_remote(&self) -> RemoteError {
        RemoteError::describe(self, "core::str::ParseBoolError", None)
    }
    fn from_remote(_: RemoteError) -> Self {
        match "x".parse::<bool>() {
            Err(e) => e,
            Ok(_) => unreachable!("\"x\" is not a bool"),
        }
    }
}

impl CrossError for TryFromIntError {
    fn to_remote(&self) -> RemoteError {
        RemoteError::describe(self, "core::num::TryFromIntError", None)
    }
    fn from_remote(_: RemoteError) -> Self {
        match u8::try_from(256_u16) {
            Err(e) => e,
            Ok(_) => unreachable!("256 does not fit a u8"),
        }
    }
}

impl CrossError for fmt::Error {
    fn to_remote(&self) -> RemoteError {
        RemoteError::describe(self, "core::fmt::Error", None)
    }
    fn from_remote(_: RemoteError) -> Self {
        fmt::Error
    }
}

#[cfg(feature = "anyhow")]
impl CrossError for anyhow::Error {
    fn to_remote(&self) -> RemoteError {
        RemoteError::describe(self.as_ref(), "anyhow::Error", None)
    }
    fn from_remote(remote: RemoteError) -> Self {
        anyhow::Error::new(remote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<E: CrossError>(e: &E) -> E {
        E::from_remote(e.to_remote())
    }

    #[test]
    fn parse_int_errors_keep_their_kind() {
        let errors = [
            parse_error::<u8>(""),
            parse_error::<u8>("x"),
            parse_error::<u8>("300"),
            parse_error::<i8>("-300"),
            parse_error::<std::num::NonZeroU32>("0"),
        ];
        for e in errors {
            let back = round_trip(&e);
            assert_eq!(back.kind(), e.kind());
            assert_eq!(back.to_string(), e.to_string());
        }
    }

    #[test]
    fn io_errors_keep_code_kind_and_chain() {
        let os = std::io::Error::from_raw_os_error(2);
        let back = round_trip(&os);
        assert_eq!(back.raw_os_error(), Some(2));
        assert_eq!(back.kind(), std::io::ErrorKind::NotFound);

        let simple = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert_eq!(round_trip(&simple).to_string(), simple.to_string());

        let cause = std::io::Error::other("disk on fire");
        let custom = std::io::Error::new(std::io::ErrorKind::InvalidData, Wrapped(cause));
        let back = round_trip(&custom);
        assert_eq!(back.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(back.to_string(), "bad record");
        let source = back.get_ref().and_then(|e| e.source()).expect("the chain crossed");
        assert_eq!(source.to_string(), "disk on fire");
    }

    #[derive(Debug)]
    struct Wrapped(std::io::Error);
    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bad record")
        }
    }
    impl StdError for Wrapped {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn boxed_errors_become_remote_errors_with_their_chain() {
        let e: Box<dyn StdError + Send + Sync> = Box::new(Wrapped(std::io::Error::other("cause")));
        let back = round_trip(&e);
        let remote = back.downcast_ref::<RemoteError>().expect("a RemoteError");
        assert_eq!(remote.to_string(), "bad record");
        assert_eq!(remote.source().map(|s| s.to_string()).as_deref(), Some("cause"));
        assert_eq!(remote.chain_text(), "bad record: cause");

        let s: Box<dyn StdError + Send + Sync> = "plain".into();
        assert_eq!(round_trip(&s).downcast_ref::<RemoteError>().map(RemoteError::type_name), Some("String"));
    }

    #[test]
    fn chains_are_cut_at_their_limit() {
        #[derive(Debug)]
        struct Deep(usize);
        impl fmt::Display for Deep {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "level {}", self.0)
            }
        }
        impl StdError for Deep {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                // Leaked on purpose: a test-only chain of 'static links.
                (self.0 < 100).then(|| &*Box::leak(Box::new(Deep(self.0 + 1))) as &(dyn StdError + 'static))
            }
        }
        let remote = RemoteError::new(&Deep(0));
        let mut depth = 0;
        let mut next = remote.source();
        while let Some(cause) = next {
            depth += 1;
            next = cause.source();
        }
        assert_eq!(depth, MAX_CHAIN);
    }
}
