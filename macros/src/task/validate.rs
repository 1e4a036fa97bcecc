//! The forms a task cannot take, each rejected at its own token.

use syn::visit::Visit;
use syn::{FnArg, ItemFn, ReturnType, Type};

use crate::diag::Errors;

pub(crate) fn check(func: &ItemFn, errors: &mut Errors) {
    let sig = &func.sig;
    if sig.ident.to_string().trim_start_matches("r#").starts_with("__multiproc") {
        errors.push_spanned(
            &sig.ident,
            "names starting with `__multiproc` are reserved for the code `#[process_task]` generates; rename the function",
        );
    }
    if let Some(t) = &sig.asyncness {
        errors.push_spanned(t, "a process task cannot be `async`: it runs to completion in its own process");
    }
    if let syn::Safety::Unsafe(t) = &sig.safety {
        errors.push_spanned(
            t,
            "a process task cannot be `unsafe fn`: nothing could uphold its contract across a process boundary",
        );
    }
    if let Some(abi) = &sig.abi {
        errors.push_spanned(abi, "a process task uses the Rust ABI; remove the `extern`");
    }
    if let Some(v) = &sig.variadic {
        errors.push_spanned(v, "a process task cannot be variadic");
    }
    if !sig.generics.params.is_empty() {
        errors.push_spanned(
            &sig.generics,
            "a process task cannot be generic: the dispatch table needs one concrete entry point per task",
        );
    } else if let Some(w) = &sig.generics.where_clause {
        errors.push_spanned(w, "a process task cannot have a `where` clause");
    }
    if sig.inputs.len() > MAX_ARITY {
        errors.push_spanned(
            &sig.inputs,
            format!("a process task takes at most {MAX_ARITY} arguments: group some of them in a struct"),
        );
    }
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(r) => errors.push_spanned(
                r,
                "a process task must be a free function: methods (`self`) cannot be dispatched by name",
            ),
            FnArg::Typed(pt) => check_type(&pt.ty, "argument", errors),
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        check_type(ty, "return type", errors);
    }
}

/// The most arguments the runtime's `Task` impls cover.
const MAX_ARITY: usize = 12;

/// Borrowed and `impl Trait` types cannot cross a process boundary.
fn check_type(ty: &Type, what: &'static str, errors: &mut Errors) {
    struct Finder<'a> {
        what: &'static str,
        errors: &'a mut Errors,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
            self.errors.push_spanned(
                r,
                format!("a process task's {} cannot be borrowed: it crosses a process boundary, so take an owned value (`String` for `&str`, `Vec<T>` for `&[T]`)", self.what),
            );
        }
        fn visit_type_impl_trait(&mut self, t: &'ast syn::TypeImplTrait) {
            self.errors.push_spanned(
                t,
                format!("a process task's {} cannot be `impl Trait`: name a concrete, serializable type", self.what),
            );
        }
        fn visit_lifetime(&mut self, l: &'ast syn::Lifetime) {
            if l.ident != "static" {
                self.errors.push_spanned(
                    l,
                    format!("a process task's {} cannot hold a borrow: use an owned, `'static` type", self.what),
                );
            }
        }
        fn visit_type_fn_ptr(&mut self, f: &'ast syn::TypeFnPtr) {
            self.errors.push_spanned(
                f,
                format!(
                    "a process task's {} cannot be a function pointer: pass a `#[process_task]` value or data instead",
                    self.what
                ),
            );
        }
        fn visit_type_trait_object(&mut self, t: &'ast syn::TypeTraitObject) {
            // A result's error may be `Box<dyn Error + Send + Sync>`: the
            // result's own check says whether it can cross.
            if self.what == "return type" {
                return syn::visit::visit_type_trait_object(self, t);
            }
            self.errors.push_spanned(
                t,
                format!("a process task's {} cannot be a trait object: name a concrete, serializable type", self.what),
            );
        }
    }
    Finder { what, errors }.visit_type(ty);
}
