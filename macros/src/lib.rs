//! Procedural macros of [multiproc](https://docs.rs/multiproc): use them
//! through that crate, which re-exports them and documents them with
//! examples.

mod attr;
mod child_init;
mod diag;
mod process;
mod task;

use proc_macro::TokenStream;

/// Registers a free function as a task that can run in another process.
///
/// See `multiproc::process_task` for the full documentation.
#[proc_macro_attribute]
pub fn process_task(args: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(args.into(), item.into()).into()
}

/// Registers a type as a process type (Python's `Process` subclass).
///
/// See `multiproc::Process` for the full documentation.
#[proc_macro_derive(Process, attributes(multiproc))]
pub fn derive_process(item: TokenStream) -> TokenStream {
    process::expand(item.into()).into()
}

/// Registers a function that runs in every child process before its task.
///
/// See `multiproc::child_init` for the full documentation.
#[proc_macro_attribute]
pub fn child_init(args: TokenStream, item: TokenStream) -> TokenStream {
    child_init::expand(args.into(), item.into()).into()
}
