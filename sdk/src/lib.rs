//! Write Tocsin alert templates in Rust.
//!
//! A template is a pure function: given an alert's parameters, the data the host hands it
//! and the time the host hands it, it says which subjects breach. It runs in Tocsin's
//! WebAssembly sandbox, with no clock, network, files, environment or randomness.
//!
//! An evaluation has two phases, so the host can answer data questions in bulk:
//! [`Template::plan`] names the data needed ([`Query`]), the host answers, and
//! [`Template::evaluate`] turns the [`Answers`] into [`Finding`]s (or asks for more data
//! that depends on the first answers, through [`Evaluation::More`]).
//!
//! ```
//! use tocsin_sdk::prelude::*;
//!
//! /// Fires when an account's single CREDIT entity runs low.
//! struct LowCredit;
//!
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(rename_all = "camelCase", deny_unknown_fields)]
//! struct Params {
//!     /// Breached when the balance is strictly below this.
//!     threshold: Decimal,
//! }
//!
//! #[derive(Serialize, JsonSchema)]
//! #[serde(rename_all = "camelCase")]
//! struct Report {
//!     balance: Decimal,
//! }
//!
//! impl Template for LowCredit {
//!     type Params = Params;
//!     type Report = Report;
//!
//!     const INFO: Info = Info {
//!         id: "low_credit",
//!         version: "1.0.0",
//!         name: "Low credit",
//!         description: "An account's credit balance is below a threshold.",
//!         entity_type: Some("CREDIT"),
//!         owner_type: Some("ACCOUNT"),
//!         auto_resolvable: true,
//!         default_interval_minutes: 60,
//!     };
//!
//!     fn plan(_params: &Params, ctx: &Context) -> Result<Vec<Query>, String> {
//!         let owner = ctx.require_owner()?;
//!         Ok(vec![Query::entities("CREDIT").owned_by("ACCOUNT", owner)])
//!     }
//!
//!     fn evaluate(params: &Params, ctx: &Context, answers: &Answers) -> Evaluation<Report> {
//!         let owner = ctx.owner_id.clone().unwrap_or_default();
//!         let balance = match answers.entities(0).and_then(|credits| match credits {
//!             [credit] => credit.decimal("balance"),
//!             _ => Err(DataError::new(format!("{} CREDIT entities, expected one", credits.len()))),
//!         }) {
//!             Ok(balance) => balance,
//!             Err(reason) => return Evaluation::one(Finding::no_data(owner, reason)),
//!         };
//!         let summary = format!("Credit balance of {owner} is {balance}.");
//!         let verdict = Verdict::breached_if(balance < params.threshold);
//!         Evaluation::one(Finding::new(owner, verdict, Report { balance }, summary))
//!     }
//! }
//!
//! // In the plugin crate (a `cdylib` built for `wasm32-wasip2`):
//! // tocsin_sdk::export_template!(LowCredit);
//! ```

#![deny(missing_docs)]

// The allocator is compiled natively too, for its tests.
#[cfg(any(test, all(target_arch = "wasm32", not(target_feature = "atomics"))))]
mod allocator;
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator::new();

mod data;
mod decimal;
#[doc(hidden)]
pub mod guest;
pub mod protocol;
pub mod testing;
pub mod time;
mod types;

pub use data::{DataError, group_by_owner};
pub use decimal::Decimal;
pub use types::{
    Answer, AttributeMatch, Attributes, Context, Entity, EntityQuery, EventAggregate, EventQuery,
    Query, RawFinding, TemplateInfo, Verdict,
};

pub use chrono;
pub use chrono_tz;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The version of the plugin interface (`sdk/wit/v1`) this SDK builds against.
pub const INTERFACE_VERSION: &str = "1.0.0";

/// Everything a template author usually needs, in one import.
pub mod prelude {
    pub use crate::time::{Period, Timestamp};
    pub use crate::{
        Answers, Context, DataError, Decimal, Entity, Evaluation, EventAggregate, Finding, Info,
        Query, Template, Verdict, group_by_owner,
    };
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
}

/// An alert template.
///
/// Implement it on a unit struct and export it with [`export_template!`]. See the crate
/// documentation for a whole example.
pub trait Template {
    /// The alert parameters. Their JSON Schema, derived from this type, is what the host
    /// validates parameters against before any evaluation.
    type Params: DeserializeOwned + JsonSchema;
    /// The report data carried by each finding.
    type Report: Serialize + JsonSchema;

    /// What the template is.
    const INFO: Info;

    /// The data the template needs first. An `Err` says what is wrong with the parameters
    /// or the alert (for example a missing owner).
    fn plan(params: &Self::Params, ctx: &Context) -> Result<Vec<Query>, String>;

    /// Turns the answers to all queries asked so far (those of `plan`, then of every
    /// [`Evaluation::More`]) into findings.
    fn evaluate(
        params: &Self::Params,
        ctx: &Context,
        answers: &Answers,
    ) -> Evaluation<Self::Report>;
}

/// The static description of a template; [`Template::INFO`].
///
/// ```
/// # use tocsin_sdk::Info;
/// const INFO: Info = Info {
///     id: "my_template",
///     version: "0.1.0",
///     name: "My template",
///     description: "What breaches it.",
///     entity_type: None,
///     owner_type: Some("ACCOUNT"),
///     auto_resolvable: false,
///     default_interval_minutes: 15,
/// };
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Info {
    /// Stable identifier, lowercase with underscores.
    pub id: &'static str,
    /// Semantic version; the host keeps the newest it is given.
    pub version: &'static str,
    /// Human name.
    pub name: &'static str,
    /// One or two sentences on what breaches it.
    pub description: &'static str,
    /// The entity type watched, if any.
    pub entity_type: Option<&'static str>,
    /// The owner type alerts are scoped to, if any.
    pub owner_type: Option<&'static str>,
    /// Whether incidents close by themselves when the condition clears.
    pub auto_resolvable: bool,
    /// Evaluation interval when nothing changes, in minutes.
    pub default_interval_minutes: u32,
}

/// The answers to every query asked so far, in the order they were asked.
///
/// ```
/// # use tocsin_sdk::{Answer, Answers, EventAggregate, Decimal};
/// let answers = Answers::new(vec![Answer::Events(EventAggregate { count: 2, sum: Decimal::from(7i64) })]);
/// assert_eq!(answers.events(0).unwrap().count, 2);
/// assert!(answers.entities(0).is_err());
/// assert_eq!(answers.len(), 1);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Answers(Vec<Answer>);

impl Answers {
    /// Wraps answers in query order.
    pub fn new(answers: Vec<Answer>) -> Self {
        Self(answers)
    }

    /// How many queries have been answered.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing has been answered yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entities answering query `index`.
    pub fn entities(&self, index: usize) -> Result<&[Entity], DataError> {
        match self.0.get(index) {
            Some(Answer::Entities(entities)) => Ok(entities),
            Some(Answer::Events(_)) => Err(DataError::new(format!(
                "answer {index} is an event aggregate, expected entities"
            ))),
            None => Err(DataError::new(format!("query {index} was not answered"))),
        }
    }

    /// The event aggregate answering query `index`.
    pub fn events(&self, index: usize) -> Result<&EventAggregate, DataError> {
        match self.0.get(index) {
            Some(Answer::Events(aggregate)) => Ok(aggregate),
            Some(Answer::Entities(_)) => Err(DataError::new(format!(
                "answer {index} is a list of entities, expected an event aggregate"
            ))),
            None => Err(DataError::new(format!("query {index} was not answered"))),
        }
    }

    /// All answers.
    pub fn as_slice(&self) -> &[Answer] {
        &self.0
    }
}

/// The result of [`Template::evaluate`].
#[derive(Debug, Clone)]
pub enum Evaluation<R> {
    /// The evaluation is complete.
    Findings(Vec<Finding<R>>),
    /// More data is needed; the host answers and calls `evaluate` again.
    More(Vec<Query>),
}

impl<R> Evaluation<R> {
    /// A complete evaluation with a single finding.
    pub fn one(finding: Finding<R>) -> Self {
        Self::Findings(vec![finding])
    }
}

/// A conclusion about one subject, with typed report data.
///
/// ```
/// # use tocsin_sdk::{Finding, Verdict, DataError};
/// let breach = Finding::new("acc1", Verdict::Breached, 42, "Balance is 42.");
/// assert_eq!(breach.subject, "acc1");
/// let unknown: Finding<u32> = Finding::no_data("acc2", DataError::new("no CREDIT entities"));
/// assert_eq!(unknown.verdict, Verdict::NoData("no CREDIT entities".into()));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Finding<R> {
    /// Deduplication key inside the alert, usually the owner id.
    pub subject: String,
    /// Breached, clear, or no data.
    pub verdict: Verdict,
    /// Report data; absent when there is no data to report.
    pub report: Option<R>,
    /// One line for people and for the phone call.
    pub summary: String,
}

impl<R> Finding<R> {
    /// A finding with report data.
    pub fn new(
        subject: impl Into<String>,
        verdict: Verdict,
        report: R,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            subject: subject.into(),
            verdict,
            report: Some(report),
            summary: summary.into(),
        }
    }

    /// A finding that records why the data could not be judged. It neither opens nor closes
    /// an incident.
    pub fn no_data(subject: impl Into<String>, reason: DataError) -> Self {
        let subject = subject.into();
        let summary = format!("No data for {subject}: {reason}");
        Self {
            subject,
            verdict: Verdict::NoData(reason.into_message()),
            report: None,
            summary,
        }
    }
}

impl<R: Serialize> Finding<R> {
    /// The report data as JSON text, as it crosses the interface: `{}` when there is none.
    ///
    /// ```
    /// # use tocsin_sdk::{Finding, Verdict};
    /// let f = Finding::new("acc1", Verdict::Breached, [1, 2], "Two.");
    /// assert_eq!(f.report_json(), "[1,2]");
    /// ```
    pub fn report_json(&self) -> String {
        match &self.report {
            Some(report) => {
                serde_json::to_string(report).unwrap_or_else(|e| unserializable(&e).to_string())
            }
            None => "{}".to_owned(),
        }
    }

    /// The finding in interface form, report data as JSON.
    pub fn into_raw(self) -> RawFinding {
        let report = match self.report {
            Some(report) => serde_json::to_value(report).unwrap_or_else(|e| unserializable(&e)),
            None => serde_json::Value::Object(serde_json::Map::new()),
        };
        RawFinding {
            subject: self.subject,
            verdict: self.verdict,
            report,
            summary: self.summary,
        }
    }
}

/// What a finding reports when its report data cannot be serialized: the reason, as text.
fn unserializable(e: &serde_json::Error) -> serde_json::Value {
    serde_json::Value::String(format!("report data could not be serialized: {e}"))
}

/// Exports a [`Template`] implementation as the component's entry points.
///
/// Call it once, at the root of a `cdylib` crate built for `wasm32-wasip2`:
///
/// ```ignore
/// tocsin_sdk::export_template!(MyTemplate);
/// ```
#[macro_export]
macro_rules! export_template {
    ($template:ty) => {
        // Only the wasm build exports: component export names are not valid native symbols,
        // and native builds exist for `cargo test`.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(unsafe_code)]
        mod __tocsin_export {
            use super::*;
            struct Exported;
            impl $crate::guest::Guest for Exported {
                fn describe() -> $crate::guest::TemplateInfo {
                    $crate::guest::describe::<$template>()
                }
                fn plan(
                    params: String,
                    context: $crate::guest::Context,
                ) -> Result<Vec<$crate::guest::Query>, String> {
                    $crate::guest::plan::<$template>(params, context)
                }
                fn evaluate(
                    params: String,
                    context: $crate::guest::Context,
                    answers: Vec<$crate::guest::Answer>,
                ) -> Result<$crate::guest::Outcome, String> {
                    $crate::guest::evaluate::<$template>(params, context, answers)
                }
            }
            $crate::guest::export!(Exported with_types_in $crate::guest::bindings);
        }
    };
}
