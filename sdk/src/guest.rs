//! Glue between the generated component bindings and [`Template`](crate::Template).
//!
//! Used by [`export_template!`](crate::export_template); not part of the public API.

#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit/v1",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "tocsin_sdk::guest::bindings",
    });
}

pub use bindings::export;
pub use bindings::exports::tocsin::plugin::template::Guest;
pub use bindings::tocsin::plugin::types::{Answer, Context, Outcome, Query, TemplateInfo};

use crate::time::{from_micros, to_micros};
use crate::types::same_text;
use crate::{Answers, Evaluation, Template, types};
use bindings::tocsin::plugin::types as wit;
use schemars::generate::SchemaSettings;
use std::any::Any;
use std::cell::RefCell;
use std::sync::Once;

/// Routes a guest panic's message to the host before the abort, which otherwise would
/// reach the host as an anonymous `unreachable` trap.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = match info.payload().downcast_ref::<&str>() {
                Some(s) => (*s).to_owned(),
                None => match info.payload().downcast_ref::<String>() {
                    Some(s) => s.clone(),
                    None => "panic with a non-string payload".to_owned(),
                },
            };
            let location = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            bindings::tocsin::plugin::host::panicked(&format!("{message}{location}"));
        }));
    });
}

fn schema_of<T: schemars::JsonSchema>() -> serde_json::Value {
    SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

/// The template's description as the interface carries it.
pub fn info_of<T: Template>() -> types::TemplateInfo {
    let info = T::INFO;
    types::TemplateInfo {
        id: info.id.to_owned(),
        version: info.version.to_owned(),
        name: info.name.to_owned(),
        description: info.description.to_owned(),
        entity_type: info.entity_type.map(str::to_owned),
        owner_type: info.owner_type.map(str::to_owned),
        params_schema: schema_of::<T::Params>(),
        report_schema: schema_of::<T::Report>(),
        auto_resolvable: info.auto_resolvable,
        default_interval_minutes: info.default_interval_minutes,
    }
}

/// `describe` for template `T`.
pub fn describe<T: Template>() -> TemplateInfo {
    install_panic_hook();
    let info = info_of::<T>();
    TemplateInfo {
        id: info.id,
        version: info.version,
        name: info.name,
        description: info.description,
        entity_type: info.entity_type,
        owner_type: info.owner_type,
        params_schema: info.params_schema.to_string(),
        report_schema: info.report_schema.to_string(),
        auto_resolvable: info.auto_resolvable,
        default_interval_minutes: info.default_interval_minutes,
    }
}

/// Reads parameters, with a message that says what is wrong.
pub fn parse_params<T: Template>(params: &str) -> Result<T::Params, String> {
    serde_json::from_str(params).map_err(|e| format!("invalid parameters: {e}"))
}

/// The parameters parsed from `text`, reusing the last ones parsed into `last` while the text
/// is the same. `plan` and each round of `evaluate` for one alert carry the same text, so an
/// alert's parameters are parsed once, not once per call. An owned `text` is kept as it is;
/// a borrowed one is copied only when it is new.
pub(crate) fn reuse_params<P>(
    last: &mut Option<(String, P)>,
    text: impl AsRef<str> + Into<String>,
    parse: impl FnOnce(&str) -> Result<P, String>,
) -> Result<&P, String> {
    if !matches!(last, Some((last_text, _)) if same_text(last_text, text.as_ref())) {
        let params = parse(text.as_ref())?;
        *last = Some((text.into(), params));
    }
    Ok(&last.as_ref().expect("set above").1)
}

/// Runs `f` on the parameters parsed from `text`, kept for the next call (see
/// [`reuse_params`]).
fn with_params<T: Template, R>(text: String, f: impl FnOnce(&T::Params) -> R) -> Result<R, String>
where
    T::Params: 'static,
{
    thread_local! {
        static LAST: RefCell<Option<(String, Box<dyn Any>)>> = const { RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| {
        let params = reuse_params(last, text, |text| {
            Ok(Box::new(parse_params::<T>(text)?) as Box<dyn Any>)
        })?;
        let params = params
            .downcast_ref::<T::Params>()
            .expect("a component exports one template, so one parameter type");
        Ok(f(params))
    })
}

/// `plan` for template `T`.
pub fn plan<T: Template>(params: String, context: Context) -> Result<Vec<Query>, String>
where
    T::Params: 'static,
{
    install_panic_hook();
    let queries =
        with_params::<T, _>(params, |params| T::plan(params, &context_from_wit(context)))??;
    Ok(queries.into_iter().map(query_to_wit).collect())
}

/// `evaluate` for template `T`.
pub fn evaluate<T: Template>(
    params: String,
    context: Context,
    answers: Vec<Answer>,
) -> Result<Outcome, String>
where
    T::Params: 'static,
{
    install_panic_hook();
    let answers = Answers::new(answers.into_iter().map(answer_from_wit).collect());
    let evaluation = with_params::<T, _>(params, |params| {
        T::evaluate(params, &context_from_wit(context), &answers)
    })?;
    Ok(match evaluation {
        Evaluation::More(queries) => Outcome::More(queries.into_iter().map(query_to_wit).collect()),
        Evaluation::Findings(findings) => Outcome::Findings(
            findings
                .into_iter()
                .map(|f| wit::Finding {
                    report: f.report_json(),
                    subject: f.subject,
                    verdict: match f.verdict {
                        types::Verdict::Breached => wit::Verdict::Breached,
                        types::Verdict::Clear => wit::Verdict::Clear,
                        types::Verdict::NoData(why) => wit::Verdict::NoData(why),
                    },
                    summary: f.summary,
                })
                .collect(),
        ),
    })
}

fn context_from_wit(c: Context) -> types::Context {
    types::Context {
        alert_id: c.alert_id,
        now: from_micros(c.now),
        owner_id: c.owner_id,
        entity_id: c.entity_id,
    }
}

fn query_to_wit(q: types::Query) -> Query {
    match q {
        types::Query::Entities(q) => Query::Entities(wit::EntityQuery {
            entity_type: q.entity_type,
            owner_type: q.owner_type,
            owner_id: q.owner_id,
            entity_id: q.entity_id,
        }),
        types::Query::Events(q) => Query::Events(wit::EventQuery {
            event_type: q.event_type,
            owner_type: q.owner_type,
            owner_id: q.owner_id,
            entity_type: q.entity_type,
            entity_id: q.entity_id,
            attributes: q
                .attributes
                .into_iter()
                .map(|a| wit::AttributeMatch {
                    name: a.name,
                    value: a.value,
                })
                .collect(),
            start: to_micros(q.start),
            end: to_micros(q.end),
        }),
    }
}

fn answer_from_wit(a: Answer) -> types::Answer {
    match a {
        Answer::Entities(entities) => types::Answer::Entities(
            entities
                .into_iter()
                .map(|e| types::Entity {
                    entity_type: e.entity_type,
                    entity_id: e.entity_id,
                    owner_type: e.owner_type,
                    owner_id: e.owner_id,
                    // The host hands over the object it stored; anything else is no data.
                    attributes: types::Attributes::from_json(e.attributes),
                    updated_at: from_micros(e.updated_at),
                })
                .collect(),
        ),
        Answer::Events(agg) => types::Answer::Events(types::EventAggregate {
            count: agg.count,
            // The host sums exact decimals: an unreadable sum is a host bug, and the panic
            // reaches the host's log with this message.
            sum: agg
                .sum
                .parse()
                .unwrap_or_else(|e: String| panic!("host sent a bad sum: {e}")),
        }),
    }
}
