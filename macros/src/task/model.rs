//! What the generator needs to know about a validated task function.

use proc_macro2::{Ident, Span};
use quote::{ToTokens, format_ident};
use syn::{Attribute, FnArg, ItemFn, Pat, ReturnType, Type};

pub(crate) struct Arg {
    /// A name for the argument: its own if it is a plain binding, else `argN`.
    pub(crate) name: Ident,
    pub(crate) ty: Type,
    /// Whether the type is spelled `Vec<u8>`: it crosses as one byte string.
    pub(crate) bytes: bool,
}

pub(crate) struct Task {
    /// The function itself, emitted as it was written.
    pub(crate) func: ItemFn,
    pub(crate) args: Vec<Arg>,
    /// The return type (`()` when none is written).
    pub(crate) output: Type,
    /// `#[cfg]`/`#[cfg_attr]` attributes, repeated on every generated item.
    pub(crate) cfgs: Vec<Attribute>,
    /// The named-arguments struct: `WorkArgs` for `fn work`.
    pub(crate) args_struct: Ident,
    /// A hash of the signature, part of the task's id.
    pub(crate) signature_hash: String,
}

impl Task {
    pub(crate) fn new(func: ItemFn) -> Self {
        let args: Vec<Arg> = func
            .sig
            .inputs
            .iter()
            .enumerate()
            .map(|(i, a)| match a {
                FnArg::Typed(pt) => Arg {
                    name: match &*pt.pat {
                        Pat::Ident(p) if p.subpat.is_none() && p.ident != "_" => {
                            Ident::new(&p.ident.to_string(), Span::call_site())
                        }
                        _ => format_ident!("arg{}", i),
                    },
                    ty: (*pt.ty).clone(),
                    bytes: is_bytes(&pt.ty),
                },
                FnArg::Receiver(_) => unreachable!("rejected by validation"),
            })
            .collect();
        let output: Type = match &func.sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => (**ty).clone(),
        };
        let cfgs =
            func.attrs.iter().filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr")).cloned().collect();

        let signature: String = args
            .iter()
            .map(|a| a.ty.to_token_stream().to_string())
            .chain([output.to_token_stream().to_string()])
            .collect::<Vec<_>>()
            .join(",");
        let hash =
            signature.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));

        Task {
            args_struct: format_ident!("{}Args", camel_case(&func.sig.ident.to_string())),
            func,
            args,
            output,
            cfgs,
            signature_hash: format!("{hash:016x}"),
        }
    }
}

/// Whether `ty` is spelled `Vec<u8>` (or `std::vec::Vec<u8>`,
/// `alloc::vec::Vec<u8>`): such an argument is encoded as one byte string
/// instead of serde's element-by-element sequence (the bytes on the wire
/// are the same, the speed is not). A result is told by its type, not its
/// spelling.
fn is_bytes(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    let segments: Vec<String> = p.path.segments.iter().map(|s| s.ident.to_string()).collect();
    let prefix_ok = match segments.as_slice() {
        [_] => p.path.leading_colon.is_none(),
        [a, b, _] => (a == "std" || a == "alloc") && b == "vec",
        _ => false,
    };
    let Some(last) = p.path.segments.last() else { return false };
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else { return false };
    p.qself.is_none()
        && prefix_ok
        && last.ident == "Vec"
        && args.args.len() == 1
        && matches!(args.args.first(), Some(syn::GenericArgument::Type(Type::Path(t))) if t.qself.is_none() && t.path.is_ident("u8"))
}

/// `long_time_task` → `LongTimeTask`.
fn camel_case(name: &str) -> String {
    name.trim_start_matches("r#")
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect()
}
