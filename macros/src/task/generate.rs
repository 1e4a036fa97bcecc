//! The code `#[process_task]` emits.
//!
//! For `fn work(name: String, n: u64) -> u64` it emits:
//! - the function itself, as written but for a first statement that names
//!   its table entry (so a linker keeps the entry of every task the program
//!   reaches): it stays a plain function, so its name is shadowed, passed
//!   and called like any other;
//! - `WorkArgs { name, n }`, the named-arguments form (Python's `kwargs`);
//! - a hidden static `__multiproc_task_work`, the dispatch-table entry: the task's
//!   id, the child's trampoline (decode, call, encode), and the parent's
//!   side (the function's type id and address, by which the runtime
//!   recognises it, and the codecs of its arguments and result);
//! - one compile-time check per argument type and one for the result,
//!   spanned on the type, each one error naming the type that cannot cross.

use proc_macro2::{Ident, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::model::Task;

/// The probe traits the generated code calls methods of.
const PROBES: &[&str] = &[
    "ArgumentCrosses",
    "ArgumentRejected",
    "ArgsPlain",
    "ArgsCross",
    "ArgsRefused",
    "OutputPlain",
    "OutputBytes",
    "OutputResultDebug",
    "OutputResult",
    "OutputValue",
    "OutputRemote",
    "OutputRejected",
];

pub(crate) fn task(t: &Task, krate_path: &TokenStream) -> TokenStream {
    let func = &t.func;
    let name = &func.sig.ident;
    // Every use of the runtime goes through one alias: a path that does not
    // resolve is one error, at the path.
    let krate_alias = format_ident!("__multiproc_crate_{}", name, span = krate_path.span());
    let krate = &quote!(#krate_alias);
    let vis = &func.vis;
    let cfgs = &t.cfgs;
    let output = &t.output;
    let hash = &t.signature_hash;
    let private = quote!(#krate::__private);
    let probe = quote!(#private::probe);
    let tys: Vec<_> = t.args.iter().map(|a| &a.ty).collect();
    // The generated code's own bindings all carry a reserved prefix, so no
    // task name can collide with them.
    let binds: Vec<Ident> = (0..t.args.len()).map(|i| format_ident!("__multiproc_arg{}", i)).collect();

    let bytes_buf = quote!(#private::BytesBuf);
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

    let argument_checks = tys.iter().map(|ty| {
        quote_spanned! {ty.span()=>
            #probe::argument::<#ty, _>((&&#probe::Probe::<#ty>::NEW).verdict());
        }
    });
    let output_codec = quote_spanned! {output.span()=>
        #probe::output::<#output, _>((&&&&&&&#probe::Probe::<#output>::NEW).output_codec())
    };
    let probes = PROBES.iter().map(|p| {
        let p = Ident::new(p, proc_macro2::Span::call_site());
        quote!(#probe::#p as _)
    });

    let kwargs = (!t.args.is_empty()).then(|| {
        let args_struct = &t.args_struct;
        let names: Vec<_> = t.args.iter().map(|a| &a.name).collect();
        quote! {
            #(#cfgs)*
            #[doc = concat!("Named arguments of [`", stringify!(#name), "`], the equivalent of Python's `kwargs`: pass it wherever the argument tuple goes.")]
            #[allow(missing_docs)]
            #vis struct #args_struct {
                #( pub #names: #tys, )*
            }

            #(#cfgs)*
            impl #krate::Kwargs for #args_struct {
                type Tuple = ( #(#tys,)* );

                fn into_tuple(self) -> Self::Tuple {
                    ( #(self.#names,)* )
                }
            }
        }
    });

    // The entry is a static the function's body names: a linker that drops
    // table sections nothing refers to (GNU ld for Windows) keeps the entry
    // of every task the program reaches.
    let entry = format_ident!("__multiproc_task_{}", name);
    let mut func = func.clone();
    func.block.stmts.insert(0, syn::parse_quote!(#private::retain_entry!(#entry);));

    let krate_use = quote_spanned! {krate_path.span()=>
        #[doc(hidden)]
        #[allow(unused_imports)]
        use #krate_path as #krate_alias;
    };
    quote! {
        #(#cfgs)*
        #krate_use

        #func

        #kwargs

        #private::table_entry! {
        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        static #entry: #private::TaskEntry = {
            use { #(#probes),* };

            fn __multiproc_args() -> #probe::ArgsCodec<( #(#wire_tys,)* )> {
                (&&&#probe::Probe::<( #(#wire_tys,)* )>::NEW).args_codec()
            }

            fn __multiproc_output() -> #probe::OutputCodec<#output> {
                #output_codec
            }

            fn __multiproc_invoke(__multiproc_payload: &#private::Incoming<'_>) -> #private::Invoked {
                let ( #(#binds,)* ) = match (__multiproc_args().decode)(__multiproc_payload) {
                    ::core::result::Result::Ok(__multiproc_decoded) => __multiproc_decoded,
                    ::core::result::Result::Err(__multiproc_error) => {
                        return #private::Invoked::BadArguments(__multiproc_error);
                    }
                };
                (__multiproc_output().finish)(#name( #(#unwrapped),* ))
            }

            fn __multiproc_measure(
                __multiproc_boxed: ::std::boxed::Box<dyn #private::Any>,
            ) -> ::core::result::Result<#private::Payload, #private::CodecError> {
                #(#argument_checks)*
                let ( #(#binds,)* ) = #private::unbox_args::<( #(#tys,)* )>(__multiproc_boxed)?;
                (__multiproc_args().measure)(( #(#wrapped,)* ))
            }

            fn __multiproc_encode_args(
                __multiproc_items: &mut dyn #private::Any,
                __multiproc_into: &mut #private::Batch,
                __multiproc_failed: &mut dyn ::core::ops::FnMut(usize, #private::CodecError),
            ) -> ::core::result::Result<(), #private::CodecError> {
                #private::encode_args(
                    __multiproc_items,
                    |( #(#binds,)* ): ( #(#tys,)* )| ( #(#wrapped,)* ),
                    __multiproc_args(),
                    __multiproc_into,
                    __multiproc_failed,
                )
            }

            fn __multiproc_run_batch(__multiproc_run: &mut #private::BatchRun<'_>) {
                #private::run_batch(
                    __multiproc_run,
                    __multiproc_args().decode_each,
                    |( #(#binds,)* )| #name( #(#unwrapped),* ),
                    __multiproc_output().write,
                )
            }

            fn __multiproc_decode_values(
                __multiproc_input: &mut &[u8],
                __multiproc_count: usize,
                __multiproc_out: &mut dyn #private::Any,
            ) -> ::core::result::Result<(), #krate::DecodeError> {
                #private::decode_values(
                    __multiproc_input,
                    __multiproc_count,
                    __multiproc_out,
                    __multiproc_output().decode_each,
                )
            }

            fn __multiproc_decode(
                __multiproc_input: &#private::Incoming<'_>,
            ) -> ::core::result::Result<::std::boxed::Box<dyn #private::Any>, #krate::DecodeError> {
                (__multiproc_output().decode)(__multiproc_input).map(#private::box_output)
            }

            #private::TaskEntry {
                id: concat!(module_path!(), "::", stringify!(#name), "#", #hash),
                path: concat!(module_path!(), "::", stringify!(#name)),
                file: file!(),
                line: line!(),
                invoke: __multiproc_invoke,
                function: ::core::option::Option::Some(&#private::FunctionEntry {
                    type_id: || #private::type_id_of(&#name),
                    address: || #name as fn( #(#tys),* ) -> #output as usize,
                    measure: __multiproc_measure,
                    decode: __multiproc_decode,
                    encode_args: __multiproc_encode_args,
                    run_batch: __multiproc_run_batch,
                    decode_values: __multiproc_decode_values,
                }),
            }
        };
        }
    }
}
