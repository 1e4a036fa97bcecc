//! `#[child_init]`: registers a function that runs in every child before
//! its target.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

use crate::attr::Krate;
use crate::diag::{self, Errors};

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut krate = Krate::new();
    let parser = syn::meta::parser(|meta| krate.parse(&meta));
    let args_result = syn::parse::Parser::parse2(parser, args);
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let e = syn::Error::new(
                proc_macro2::Span::call_site(),
                "#[child_init] applies to free functions only: `fn set_up() { .. }`",
            );
            return diag::with_item(item, e);
        }
    };
    let mut errors = Errors::default();
    if let Err(e) = args_result {
        errors.push(e);
    }
    check(&func, &mut errors);
    if let Err(e) = errors.finish() {
        return diag::with_item(item, e);
    }
    let krate_path = match krate.path("#[child_init(crate = that_crate::multiproc)]") {
        Ok(path) => path,
        Err(e) => return diag::with_item(item, e),
    };
    let name = &func.sig.ident;
    let cfgs: Vec<_> =
        func.attrs.iter().filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr")).collect();
    // One alias for the runtime: a path that does not resolve is one error.
    let alias = format_ident!("__multiproc_crate_{}", name, span = krate_path.span());
    let krate_use = quote_spanned! {krate_path.span()=>
        #[doc(hidden)]
        #[allow(unused_imports)]
        use #krate_path as #alias;
    };
    quote! {
        #func

        #(#cfgs)*
        #krate_use

        #(#cfgs)*
        #alias::__private::child_init_entry!(#name);
    }
}

/// A set-up function takes nothing and returns nothing: it runs before any
/// task, with nothing to give it and no one to return to.
fn check(func: &ItemFn, errors: &mut Errors) {
    let sig = &func.sig;
    if sig.ident.to_string().trim_start_matches("r#").starts_with("__multiproc") {
        errors.push_spanned(&sig.ident, "names starting with `__multiproc` are reserved; rename the function");
    }
    if let Some(t) = &sig.asyncness {
        errors.push_spanned(t, "a child set-up function cannot be `async`: it runs to completion before the task");
    }
    if let syn::Safety::Unsafe(t) = &sig.safety {
        errors.push_spanned(
            t,
            "a child set-up function cannot be `unsafe fn`: nothing calls it that could uphold a contract",
        );
    }
    if let Some(abi) = &sig.abi {
        errors.push_spanned(abi, "a child set-up function uses the Rust ABI; remove the `extern`");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push_spanned(&sig.generics, "a child set-up function cannot be generic");
    }
    if !sig.inputs.is_empty() {
        errors.push_spanned(
            &sig.inputs,
            "a child set-up function takes no arguments: it runs in every child, before any task has arguments",
        );
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        let unit = matches!(&**ty, syn::Type::Tuple(t) if t.elems.is_empty());
        if !unit {
            errors.push_spanned(
                ty,
                "a child set-up function returns nothing: to fail, panic (the child then reports the panic to its parent)",
            );
        }
    }
}
