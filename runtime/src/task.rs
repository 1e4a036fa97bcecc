//! The two kinds of target: functions ([`Task`]) and process types
//! ([`Process`]).

use std::any::Any;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, RegistryError};
use crate::process::{Builder, Child};
use crate::registry::{self, TaskEntry};

/// A function that can run in another process: implemented by every
/// function whose parameters are the tuple `Args`, and dispatchable when
/// the function is marked [`#[process_task]`](crate::process_task).
///
/// The attribute leaves the function a plain function: it is called,
/// passed and shadowed like any other. Starting an unmarked function (or a
/// closure) compiles, and [`start`](crate::Builder::start) refuses it
/// with [`RegistryError::NotATask`], before any process is created.
///
/// ```
/// use multiproc::Task;
///
/// #[multiproc::process_task]
/// fn double(x: i64) -> i64 {
///     2 * x
/// }
///
/// assert_eq!(double(21), 42); // a plain call
/// assert_eq!(double.call_here((21,)), 42); // the same, through the trait
/// ```
///
/// A task chosen at run time is a function pointer, and starts like the
/// function itself:
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
///     let task = if use_alpha { alpha } else { beta };
///     assert_eq!(multiproc::spawn(task, 4)?.join()?, if use_alpha { 5 } else { 40 });
/// }
/// # Ok(())
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot run in another process",
    label = "not a function whose arguments are owned values",
    note = "a process task is a free function marked `#[multiproc::process_task]`",
    note = "a `#[derive(Process)]` type is started with `value.start()` or `Builder::process(value)`"
)]
pub trait Task<Args>: Copy + Send + Sync + 'static {
    /// The return type.
    type Output: 'static;

    /// Calls the function in this process, with its arguments as one
    /// tuple. (Not `call`, which is the unstable `Fn::call`: without this
    /// trait in scope the compiler would point there.)
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
    /// assert_eq!(join_words.call_here(args), "a-b"); // no child: a plain call
    /// ```
    fn call_here(self, args: Args) -> Self::Output;

    /// The function's entry in the dispatch table.
    #[doc(hidden)]
    fn __entry(&self) -> Result<&'static TaskEntry, RegistryError>;
}

/// Calls `$m!` once per supported arity with `(Ai Ti vi)` triples.
macro_rules! for_each_arity {
    ($m:ident) => {
        $m!();
        $m!(A1 T1 v1);
        $m!(A1 T1 v1, A2 T2 v2);
        $m!(A1 T1 v1, A2 T2 v2, A3 T3 v3);
        $m!(A1 T1 v1, A2 T2 v2, A3 T3 v3, A4 T4 v4);
        $m!(A1 T1 v1, A2 T2 v2, A3 T3 v3, A4 T4 v4, A5 T5 v5);
        $m!(A1 T1 v1, A2 T2 v2, A3 T3 v3, A4 T4 v4, A5 T5 v5, A6 T6 v6);
        $m!(A1 T1 v1, A2 T2 v2, A3 T3 v3, A4 T4 v4, A5 T5 v5, A6 T6 v6, A7 T7 v7);
        $m!(A1 T1 v1, A2 T2 v2, A3 T3 v3, A4 T4 v4, A5 T5 v5, A6 T6 v6, A7 T7 v7, A8 T8 v8);
        $m!(A1 T1 v1, A2 T2 v2, A3 T3 v3, A4 T4 v4, A5 T5 v5, A6 T6 v6, A7 T7 v7, A8 T8 v8, A9 T9 v9);
        $m!(A1 T1 v1, A2 T2 v2, A3 T3 v3, A4 T4 v4, A5 T5 v5, A6 T6 v6, A7 T7 v7, A8 T8 v8, A9 T9 v9, A10 T10 v10);
        $m!(A1 T1 v1, A2 T2 v2, A3 T3 v3, A4 T4 v4, A5 T5 v5, A6 T6 v6, A7 T7 v7, A8 T8 v8, A9 T9 v9, A10 T10 v10,
            A11 T11 v11);
        $m!(A1 T1 v1, A2 T2 v2, A3 T3 v3, A4 T4 v4, A5 T5 v5, A6 T6 v6, A7 T7 v7, A8 T8 v8, A9 T9 v9, A10 T10 v10,
            A11 T11 v11, A12 T12 v12);
    };
}

pub(crate) use for_each_arity;

/// `Task<(A1, ..)>` for every `Fn(A1, ..) -> R` of owned values.
macro_rules! task_for_fn {
    ($($a:ident $t:ident $v:ident),*) => {
        impl<F, R, $($a),*> Task<($($a,)*)> for F
        where
            F: Fn($($a),*) -> R + Copy + Send + Sync + 'static,
            R: 'static,
            $($a: 'static,)*
        {
            type Output = R;

            fn call_here(self, ($($v,)*): ($($a,)*)) -> R {
                self($($v),*)
            }

            fn __entry(&self) -> Result<&'static TaskEntry, RegistryError> {
                // Reach the function from here (`call_here`'s address is taken,
                // never called): its body names its table entry, which a
                // linker then keeps (see `__private::retain`).
                std::hint::black_box(<Self as Task<($($a,)*)>>::call_here as fn(Self, ($($a,)*)) -> R);
                // A function pointer (a task chosen at run time) is found by
                // its address, a function by its type.
                let address = (self as &dyn Any).downcast_ref::<fn($($a),*) -> R>().map(|f| *f as usize);
                registry::function::<F>(address)
            }
        }
    };
}

for_each_arity!(task_for_fn);

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
