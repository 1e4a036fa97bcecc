//! `#[process_task]`: parse the function into a model, validate it (every
//! error at its own token), generate the registration.

mod generate;
mod model;
mod validate;

use proc_macro2::TokenStream;

use crate::attr::Krate;
use crate::diag;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut krate = Krate::new();
    let parser = syn::meta::parser(|meta| krate.parse(&meta));
    let args_result = syn::parse::Parser::parse2(parser, args);

    let func: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let e = syn::Error::new(
                proc_macro2::Span::call_site(),
                "#[process_task] applies to free functions only (not closures, methods or other items)",
            );
            return diag::with_item(item, e);
        }
    };
    let mut errors = diag::Errors::default();
    if let Err(e) = args_result {
        errors.push(e);
    }
    validate::check(&func, &mut errors);
    if let Err(e) = errors.finish() {
        return diag::with_item(item, e);
    }
    match krate.path("#[process_task(crate = that_crate::multiproc)]") {
        Ok(path) => generate::task(&model::Task::new(func), &path),
        Err(e) => diag::with_item(item, e),
    }
}
