//! A component built against `tocsin:plugin@2.0.0`, which the host does not serve: loading
//! it must fail with an error naming the version.

#[allow(unsafe_code, missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "plugin" });
}

use bindings::exports::tocsin::plugin::template::{
    Answer, Context, Guest, Outcome, Query, TemplateInfo,
};

#[allow(dead_code)]
struct Future;

impl Guest for Future {
    fn describe() -> TemplateInfo {
        TemplateInfo {
            id: "from_the_future".into(),
            version: "2.0.0".into(),
            name: "From the future".into(),
            description: String::new(),
            entity_type: None,
            owner_type: None,
            params_schema: "{}".into(),
            report_schema: "{}".into(),
            auto_resolvable: false,
            default_interval_minutes: 1,
        }
    }

    fn plan(_params: String, _context: Context) -> Result<Vec<Query>, String> {
        Ok(Vec::new())
    }

    fn evaluate(
        _params: String,
        _context: Context,
        _answers: Vec<Answer>,
    ) -> Result<Outcome, String> {
        Ok(Outcome::Findings(Vec::new()))
    }
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod export {
    use super::*;
    bindings::export!(Future with_types_in bindings);
}
