//! `#[derive(Process)]`: registers a process type.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::DeriveInput;
use syn::spanned::Spanned;

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
    let krate = match krate.path("#[multiproc(crate = that_crate::multiproc)]") {
        Ok(path) => path,
        Err(e) => return e.to_compile_error(),
    };
    let name = &input.ident;
    let registration = registration(name, &krate);
    quote! { #registration #options_error }
}

fn registration(name: &syn::Ident, krate: &TokenStream) -> TokenStream {
    // Every use of the runtime goes through one alias: a path that does not
    // resolve is one error, at the path.
    let krate_use = quote_spanned! {krate.span()=>
        use #krate as __multiproc_crate;
    };
    quote! {
        const _: () = {
            #krate_use

            impl __multiproc_crate::__private::Registered for #name {
                fn __entry() -> &'static __multiproc_crate::__private::TaskEntry {
                    __multiproc_crate::__private::table_entry!(&__multiproc_crate::__private::TaskEntry {
                        id: concat!(module_path!(), "::", stringify!(#name), "#process"),
                        path: concat!(module_path!(), "::", stringify!(#name)),
                        file: file!(),
                        line: line!(),
                        invoke: __multiproc_crate::__private::invoke_process::<#name>,
                        function: ::core::option::Option::None,
                    })
                }
            }
        };
    }
}
