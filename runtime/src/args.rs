//! What a task's arguments may be written as: a tuple, one bare value for
//! a one-parameter task, or the task's generated named-arguments struct.

/// Values that can stand for the arguments of a task whose parameters are
/// the tuple `Args`.
///
/// [`Builder::new`](crate::Builder::new), [`spawn`](crate::spawn) and
/// friends accept:
/// - a tuple with one value per parameter: `(2, 10)`, `()` for none;
/// - a bare value for a task with one parameter: `5` for `(5,)`;
/// - the named-arguments struct `#[process_task]` generates
///   (`PowerArgs { base: 2, exp: 10 }` for `fn power`), Python's `kwargs`.
///
/// A `&str` is accepted where a parameter is a `String`.
///
/// `Form` is [`Tuple`], [`Bare`] or [`Named`]; the compiler infers it.
///
/// ```
/// use multiproc::spawn;
///
/// #[multiproc::process_task]
/// fn greet(name: String, times: usize) -> String {
///     format!("hello {name}").repeat(times)
/// }
///
/// #[multiproc::process_task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// # fn main() -> Result<(), multiproc::Error> {
/// assert_eq!(spawn(greet, ("ann", 1))?.join()?, "hello ann");
/// assert_eq!(spawn(greet, GreetArgs { name: "bo".into(), times: 2 })?.join()?, "hello bohello bo");
/// assert_eq!(spawn(square, 7)?.join()?, 49);
/// assert_eq!(spawn(square, (7,))?.join()?, 49);
/// # Ok(())
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "these arguments do not fit a task whose parameters are `{Args}`",
    label = "expected `{Args}`",
    note = "pass a tuple with one value per parameter, a bare value for a task with one parameter, or the task's generated `…Args` struct",
    note = "a `String` parameter takes `\"text\"` or `text.to_string()`"
)]
pub trait IntoArgs<Args, Form> {
    /// The argument tuple.
    fn into_args(self) -> Args;
}

/// The [`IntoArgs`] form of a tuple of arguments.
#[derive(Debug)]
pub enum Tuple {}

/// The [`IntoArgs`] form of one bare argument.
#[derive(Debug)]
pub enum Bare {}

/// The [`IntoArgs`] form of a generated named-arguments struct.
#[derive(Debug)]
pub enum Named {}

/// One argument value for a parameter of type `T`: the value itself, or a
/// `&str` for a `String`.
///
/// ```
/// use multiproc::Arg;
///
/// let s: String = "text".into_arg();
/// assert_eq!(s, "text");
/// assert_eq!(5u8.into_arg(), 5u8);
/// ```
pub trait Arg<T> {
    /// The parameter's value.
    fn into_arg(self) -> T;
}

impl<T> Arg<T> for T {
    fn into_arg(self) -> T {
        self
    }
}

impl Arg<String> for &str {
    fn into_arg(self) -> String {
        self.to_owned()
    }
}

/// Implemented by the named-arguments struct of a task (`WorkArgs` for
/// `fn work`): its fields, in the parameters' order.
///
/// ```
/// use multiproc::Kwargs;
///
/// #[multiproc::process_task]
/// fn power(base: u64, exp: u32) -> u64 {
///     base.pow(exp)
/// }
///
/// assert_eq!(PowerArgs { base: 2, exp: 3 }.into_tuple(), (2, 3));
/// ```
pub trait Kwargs {
    /// The parameters' types, as a tuple.
    type Tuple;
    /// The fields as the argument tuple.
    fn into_tuple(self) -> Self::Tuple;
}

impl<K: Kwargs> IntoArgs<K::Tuple, Named> for K {
    fn into_args(self) -> K::Tuple {
        self.into_tuple()
    }
}

impl<A, T: Arg<A>> IntoArgs<(A,), Bare> for T {
    fn into_args(self) -> (A,) {
        (self.into_arg(),)
    }
}

/// `IntoArgs<(A1, ..), Tuple> for (T1, ..)` for every arity the tasks have.
macro_rules! tuple_args {
    ($($a:ident $t:ident $v:ident),*) => {
        impl<$($a, $t: Arg<$a>),*> IntoArgs<($($a,)*), Tuple> for ($($t,)*) {
            #[allow(clippy::unused_unit)]
            fn into_args(self) -> ($($a,)*) {
                let ($($v,)*) = self;
                ($($v.into_arg(),)*)
            }
        }
    };
}

crate::task::for_each_arity!(tuple_args);
