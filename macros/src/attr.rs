//! The `crate = path` option shared by both macros, and where the runtime
//! crate is when it is not given.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::Path;
use syn::meta::ParseNestedMeta;

/// Where the runtime crate is, as seen from the user's crate.
pub(crate) struct Krate(Option<Path>);

impl Krate {
    pub(crate) fn new() -> Self {
        Krate(None)
    }

    /// Accepts `crate = some::path`; any other key is an error.
    pub(crate) fn parse(&mut self, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        if meta.path.is_ident("crate") {
            if self.0.is_some() {
                return Err(meta.error("`crate` is given twice"));
            }
            if !meta.input.peek(syn::Token![=]) {
                return Err(meta.error("expected `crate = path::to::multiproc`"));
            }
            let value = meta.value()?;
            if value.peek(syn::LitStr) {
                let lit: syn::LitStr = value.parse()?;
                return Err(syn::Error::new(
                    lit.span(),
                    "`crate` takes a path, not a string: write `crate = multiproc`",
                ));
            }
            self.0 = Some(value.parse()?);
            Ok(())
        } else {
            Err(meta.error("unknown option; the only option is `crate = path::to::multiproc`"))
        }
    }

    /// The path to use in generated code: the one given, else the name
    /// under which the user's `Cargo.toml` depends on multiproc (renamed
    /// or not). An error when multiproc is not among its dependencies (it
    /// comes through a crate that re-exports it): the error names the
    /// option that fixes it (`option` shows it as the user writes it).
    pub(crate) fn path(&self, option: &str) -> syn::Result<TokenStream> {
        if let Some(p) = &self.0 {
            return Ok(quote!(#p));
        }
        match proc_macro_crate::crate_name("multiproc") {
            Ok(proc_macro_crate::FoundCrate::Name(name)) => {
                let name = format_ident!("{}", name);
                Ok(quote!(::#name))
            }
            Err(proc_macro_crate::Error::CrateNotFound { .. }) => Err(syn::Error::new(
                Span::call_site(),
                format!(
                    "`multiproc` is not a dependency of this crate: add it to `[dependencies]`, or, if it \
                     comes through a crate that re-exports it, say where: `{option}`"
                ),
            )),
            // This crate itself (its doc tests and integration tests name
            // it `multiproc`), or a build that cargo does not drive: the
            // usual name.
            Ok(proc_macro_crate::FoundCrate::Itself) | Err(_) => Ok(quote!(::multiproc)),
        }
    }
}
