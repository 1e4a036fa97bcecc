//! The code `#[process_task]` emits.
//!
//! For `fn work(name: String, n: u64) -> u64` it emits:
//! - a constant `work` (with the function's docs) of a hidden unit type
//!   that derefs to the function, so `work(a, b)` still calls it (a constant
//!   rather than a unit struct, so that lints do not mistake the call for a
//!   side-effect-free struct constructor);
//! - the function itself, unchanged but for its name, as an associated
//!   function `__call` of that type;
//! - `WorkArgs { name, n }`, the named-arguments form (Python's `kwargs`);
//! - `impl Task for work`, whose hidden `__entry` holds the dispatch-table
//!   entry: the task's id and a trampoline (decode, call, encode);
//! - compile-time checks, each spanned on the type it checks.

use proc_macro2::{Ident, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::model::Task;

pub(crate) fn task(t: &Task, krate: &TokenStream) -> TokenStream {
    let name = &t.func.sig.ident;
    let ty = format_ident!("__task_{}", name, span = name.span());
    let vis = &t.func.vis;
    let cfgs = &t.cfgs;
    let docs = &t.docs;
    let output = &t.output;
    let hash = &t.signature_hash;
    let tys: Vec<_> = t.args.iter().map(|a| &a.ty).collect();
    let names: Vec<_> = t.args.iter().map(|a| &a.name).collect();
    // The generated code's own bindings all carry a reserved prefix: a
    // task's name is a constant in the module, and a binding spelled like a
    // constant would be taken for it (so would a parameter or a pattern).
    let binds: Vec<Ident> = (0..t.args.len()).map(|i| format_ident!("__multiproc_arg{}", i)).collect();

    let mut inner = t.func.clone();
    inner.sig.ident = format_ident!("__call");
    inner.vis = syn::parse_quote!(pub(crate));

    let checks = tys
        .iter()
        .map(|ty| quote_spanned! {ty.span()=> #krate::__private::assert_argument::<#ty>(); })
        .chain(std::iter::once(quote_spanned! {output.span()=> #krate::__private::assert_output::<#output>(); }));
    // Trait-bound errors about the arguments or the result point at the
    // signature, not at the attribute.
    let args_span = t.func.sig.paren_token.span.join();
    let output_span = output.span();
    let args_type = quote_spanned! {args_span=> ( #(#tys,)* ) };
    let output_type = quote_spanned! {output_span=> #output };
    let bytes_buf = quote!(#krate::__private::BytesBuf);
    let wire_tys: Vec<TokenStream> =
        t.args.iter().map(|a| if a.bytes { bytes_buf.clone() } else { a.ty.to_token_stream() }).collect();
    let wrapped: Vec<TokenStream> = t
        .args
        .iter()
        .zip(&binds)
        .map(|(a, bind)| if a.bytes { quote!(#bytes_buf(#bind)) } else { quote!(#bind) })
        .collect();
    let unwrapped: Vec<TokenStream> =
        t.args.iter().zip(&binds).map(|(a, bind)| if a.bytes { quote!(#bind.0) } else { quote!(#bind) }).collect();
    // Only a task with `Vec<u8>` in its signature overrides the trait's
    // defaults, so that no other task gets a second error for an argument
    // or result type that is not serializable.
    let wire_args = t.args.iter().any(|a| a.bytes).then(|| {
        quote! {
            fn __wire_args(__multiproc_args: Self::Args) -> impl #krate::__private::serde::Serialize + ::core::marker::Send + 'static {
                let ( #(#binds,)* ) = __multiproc_args;
                ( #(#wrapped,)* )
            }
        }
    });
    let decode_output = t.output_bytes.then(|| {
        quote! {
            fn __decode_output(
                __multiproc_input: &#krate::__private::Incoming<'_>,
            ) -> ::core::result::Result<#output, #krate::DecodeError> {
                #krate::__private::decode_output::<#bytes_buf>(__multiproc_input).map(#bytes_buf::into_inner)
            }
        }
    });
    let finish = if t.output_bytes {
        quote_spanned!(output_span=> #krate::__private::finish(#bytes_buf(__multiproc_out)))
    } else if t.fallible {
        quote_spanned!(output_span=> {
            let __multiproc_failure = #krate::__private::failure_of(&__multiproc_out);
            #krate::__private::finish_fallible(__multiproc_out, __multiproc_failure)
        })
    } else {
        quote_spanned!(output_span=> #krate::__private::finish(__multiproc_out))
    };
    let decode = quote_spanned!(args_span=> #krate::__private::decode_args::<( #(#wire_tys,)* )>(__multiproc_payload));

    let kwargs = (!t.args.is_empty()).then(|| {
        let args_struct = &t.args_struct;
        quote! {
            #(#cfgs)*
            #[doc = concat!("Named arguments of [`", stringify!(#name), "`], the equivalent of Python's `kwargs`: pass it wherever the argument tuple goes.")]
            #[allow(missing_docs)]
            #vis struct #args_struct {
                #( pub #names: #tys, )*
            }

            #(#cfgs)*
            impl ::core::convert::From<#args_struct> for ( #(#tys,)* ) {
                fn from(__multiproc_kwargs: #args_struct) -> Self {
                    ( #(__multiproc_kwargs.#names,)* )
                }
            }
        }
    });

    quote! {
        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug)]
        #vis struct #ty;

        #(#cfgs)*
        #(#docs)*
        #[allow(non_upper_case_globals)]
        #vis const #name: #ty = #ty;

        #(#cfgs)*
        impl #ty {
            #[doc(hidden)]
            #inner
        }

        #(#cfgs)*
        impl ::core::ops::Deref for #ty {
            type Target = fn( #(#tys),* ) -> #output;
            fn deref(&self) -> &Self::Target {
                const F: fn( #(#tys),* ) -> #output = #ty::__call;
                &F
            }
        }

        #kwargs

        #(#cfgs)*
        const _: () = { #(#checks)* };

        #(#cfgs)*
        impl #krate::Task for #ty {
            type Args = #args_type;
            type Output = #output_type;

            fn call(self, __multiproc_args: Self::Args) -> #output {
                let ( #(#binds,)* ) = __multiproc_args;
                #ty::__call( #(#binds),* )
            }

            #wire_args

            #decode_output

            fn __entry(self) -> &'static #krate::__private::TaskEntry {
                fn invoke(__multiproc_payload: &#krate::__private::Incoming<'_>) -> #krate::__private::Invoked {
                    let ( #(#binds,)* ) = match #decode {
                        ::core::result::Result::Ok(__multiproc_decoded) => __multiproc_decoded,
                        ::core::result::Result::Err(__multiproc_error) => {
                            return #krate::__private::Invoked::BadArguments(__multiproc_error);
                        }
                    };
                    let __multiproc_out = <#ty as #krate::Task>::call(#ty, ( #(#unwrapped,)* ));
                    #finish
                }

                #[#krate::__private::linkme::distributed_slice(#krate::__private::TASKS)]
                #[linkme(crate = #krate::__private::linkme)]
                static ENTRY: #krate::__private::TaskEntry = #krate::__private::TaskEntry {
                    id: concat!(module_path!(), "::", stringify!(#name), "#", #hash),
                    path: concat!(module_path!(), "::", stringify!(#name)),
                    file: file!(),
                    line: line!(),
                    invoke,
                };
                &ENTRY
            }
        }
    }
}
