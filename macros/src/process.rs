//! `#[derive(Process)]`: registers a process type.

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

use crate::attr::Krate;
use crate::diag::Errors;

pub(crate) fn expand(item: TokenStream) -> TokenStream {
    let input: DeriveInput = match syn::parse2(item) {
        Ok(i) => i,
        Err(e) => return e.to_compile_error(),
    };
    let mut errors = Errors::default();
    let mut krate = Krate::new();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("multiproc")) {
        if let Err(e) = attr.parse_nested_meta(|meta| krate.parse(&meta)) {
            errors.push(e);
        }
    }
    if !input.generics.params.is_empty() {
        errors.push_spanned(
            &input.generics,
            "a process type cannot be generic: the dispatch table needs one concrete entry point per type",
        );
        // No registration can be generated for a generic type.
        return errors.finish().err().map(|e| e.to_compile_error()).unwrap_or_default();
    }
    // A bad option still registers the type (with the default path), so the
    // option's error is not followed by "not a registered process type".
    let options_error = errors.finish().err().map(|e| e.to_compile_error());
    let krate = krate.path();
    let name = &input.ident;
    let registration = registration(name, &krate);
    quote! { #registration #options_error }
}

fn registration(name: &syn::Ident, krate: &TokenStream) -> TokenStream {
    quote! {
        const _: () = {
            impl #krate::__private::Registered for #name {
                fn __entry() -> &'static #krate::__private::TaskEntry {
                    #[#krate::__private::linkme::distributed_slice(#krate::__private::TASKS)]
                    #[linkme(crate = #krate::__private::linkme)]
                    static ENTRY: #krate::__private::TaskEntry = #krate::__private::TaskEntry {
                        id: concat!(module_path!(), "::", stringify!(#name), "#process"),
                        path: concat!(module_path!(), "::", stringify!(#name)),
                        file: file!(),
                        line: line!(),
                        invoke: #krate::__private::invoke_process::<#name>,
                        function: ::core::option::Option::None,
                    };
                    &ENTRY
                }
            }
        };
    }
}
