//! The `crate = path` option shared by both macros.

use proc_macro2::TokenStream;
use quote::quote;
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

    /// The absolute path to use in generated code.
    pub(crate) fn path(&self) -> TokenStream {
        match &self.0 {
            Some(p) => quote!(#p),
            None => quote!(::multiproc),
        }
    }
}
