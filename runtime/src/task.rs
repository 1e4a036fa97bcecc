//! The two kinds of target: registered functions ([`Task`]) and process
//! types ([`Process`]).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::DecodeError;
use crate::error::Error;
use crate::process::{Builder, Child};
use crate::registry::{Incoming, TaskEntry};

/// A function registered with [`#[process_task]`](crate::process_task).
///
/// The attribute implements this trait for the type of a constant with the function's
/// name, which also derefs to the function, so it stays callable as before.
/// Start it in a child with [`Builder::new`] or [`spawn`](crate::spawn).
///
/// ```
/// use multiproc::Task;
///
/// #[multiproc::process_task]
/// fn double(x: i64) -> i64 {
///     2 * x
/// }
///
/// assert_eq!(double.call((21,)), 42); // in this process
/// ```
///
/// Each task's constant has a type of its own, so `if c { alpha } else {
/// beta }` does not compile. Choose at run time by building the child in
/// each branch: the two handles have the same type when the tasks return
/// the same type.
///
/// ```
/// #[multiproc::process_task]
/// fn alpha(x: u64) -> u64 {
///     x + 1
/// }
///
/// #[multiproc::process_task]
/// fn beta(x: u64) -> u64 {
///     x * 10
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// for use_alpha in [true, false] {
///     let child = if use_alpha { multiproc::spawn(alpha, (4,))? } else { multiproc::spawn(beta, (4,))? };
///     assert_eq!(child.join()?, if use_alpha { 5 } else { 40 });
/// }
/// # Ok(())
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a process task",
    label = "not a `#[process_task]` function",
    note = "only free functions marked `#[multiproc::process_task]` can run in another process; closures and unmarked functions cannot",
    note = "a `#[derive(Process)]` type is started with `value.start()` or `Builder::process(value)`"
)]
pub trait Task: Copy + Send + Sync + 'static {
    /// The arguments, as a tuple (`(String, u64)` for `fn f(a: String, b: u64)`).
    type Args: Serialize + DeserializeOwned + Send + 'static;
    /// The return type.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// Calls the function in this process.
    ///
    /// ```
    /// use multiproc::Task;
    ///
    /// #[multiproc::process_task]
    /// fn join_words(words: Vec<String>, sep: String) -> String {
    ///     words.join(&sep)
    /// }
    ///
    /// let args = (vec!["a".to_string(), "b".to_string()], "-".to_string());
    /// assert_eq!(join_words.call(args), "a-b"); // no child: a plain call
    /// ```
    fn call(self, args: Self::Args) -> Self::Output;

    #[doc(hidden)]
    fn __entry(self) -> &'static TaskEntry;

    /// The arguments as they are encoded. The attribute overrides this for
    /// a task with `Vec<u8>` arguments, which cross as byte strings.
    #[doc(hidden)]
    fn __wire_args(args: Self::Args) -> impl Serialize + Send + 'static {
        args
    }

    /// Decodes the result as the child encoded it (overridden for a
    /// `Vec<u8>` result).
    #[doc(hidden)]
    fn __decode_output(input: &Incoming<'_>) -> Result<Self::Output, DecodeError> {
        crate::__private::decode_output(input)
    }
}

/// A process type: Python's subclass of `multiprocessing.Process` with an
/// overridden `run`.
///
/// Derive [`Process`](macro@crate::Process) (which registers the type) and
/// serde's traits, then implement `run`. The value is serialized at
/// [`start`](Process::start) and `run` is called on the copy in the child.
///
/// ```
/// use multiproc::Process;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Process, Serialize, Deserialize)]
/// struct Greeter {
///     who: String,
/// }
///
/// impl Process for Greeter {
///     fn run(&mut self) {
///         println!("hello from {}", self.who);
///     }
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// let child = Greeter { who: "the child".into() }.start()?;
/// child.join()?;
/// # Ok(())
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a process type",
    label = "missing `impl multiproc::Process for {Self}`",
    note = "implement it: `impl multiproc::Process for {Self} {{ fn run(&mut self) {{ .. }} }}`"
)]
pub trait Process: Serialize + DeserializeOwned + Send + 'static + crate::__private::Registered {
    /// The body of the process, run in the child.
    ///
    /// ```
    /// use multiproc::Process;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Process, Serialize, Deserialize)]
    /// struct Counter {
    ///     count: u32,
    /// }
    ///
    /// impl Process for Counter {
    ///     fn run(&mut self) {
    ///         self.count += 1;
    ///     }
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let mut here = Counter { count: 0 };
    /// here.run(); // an ordinary method, called in this process
    /// assert_eq!(here.count, 1);
    /// // Started, it runs on a copy of the value, in a child.
    /// here.builder().start()?.join()?;
    /// # Ok(())
    /// # }
    /// ```
    fn run(&mut self);

    /// A [`Builder`] for this value, to set a name, daemon flag or authkey.
    ///
    /// ```
    /// use multiproc::Process;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Process, Serialize, Deserialize)]
    /// struct Quiet;
    ///
    /// impl Process for Quiet {
    ///     fn run(&mut self) {}
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let child = Quiet.builder().name("quiet").daemon(true).start()?;
    /// assert_eq!(child.name(), "quiet");
    /// child.join()?;
    /// # Ok(())
    /// # }
    /// ```
    fn builder(self) -> Builder<()>
    where
        Self: Sized,
    {
        Builder::process(self)
    }

    /// Starts this value in a new process with default settings.
    ///
    /// ```
    /// use multiproc::Process;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Process, Serialize, Deserialize)]
    /// struct Fail;
    ///
    /// impl Process for Fail {
    ///     fn run(&mut self) {
    ///         std::process::exit(2);
    ///     }
    /// }
    ///
    /// # fn main() -> Result<(), multiproc::Error> {
    /// let child = Fail.start()?;
    /// assert_eq!(child.wait()?.exitcode(), 2);
    /// # Ok(())
    /// # }
    /// ```
    fn start(self) -> Result<Child<()>, Error>
    where
        Self: Sized,
    {
        Builder::process(self).start()
    }
}
