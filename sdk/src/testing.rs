//! Test a template natively with plain `cargo test`.
//!
//! A [`Fixture`] is a JSON file: parameters, the evaluation instant, the alert's owner and
//! entity, the input data, and what is expected. [`check_fixtures`] runs every fixture of a
//! folder against the template compiled natively; Tocsin's own test suite runs the same
//! files through the real WebAssembly sandbox, so both must agree.
//!
//! ```json
//! {
//!   "description": "balance below the threshold breaches",
//!   "params": {"threshold": "50"},
//!   "now": "2026-03-01T12:00:00Z",
//!   "ownerId": "acc1",
//!   "input": {
//!     "entities": [{"entityType": "CREDIT", "entityId": "c1", "ownerType": "ACCOUNT",
//!                   "ownerId": "acc1", "attributes": {"balance": "40", "granted": "100"}}]
//!   },
//!   "expect": {"findings": [{"subject": "acc1", "verdict": "breached",
//!                            "report": {"remainingBalance": "40", "totalGranted": "100", "accountId": "acc1"}}]}
//! }
//! ```
//!
//! The `input` is either a data set (`entities`, `events`), from which each query is
//! answered the way the host answers it, or the literal `answers`, in query order.

use crate::protocol::{Outcome, Run, Runner, run};
use crate::time::Timestamp;
use crate::{
    Answer, Answers, Context, Decimal, Entity, Evaluation, EventAggregate, Finding, Query,
    Template, Verdict,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// One raw event, as pushed to `POST /events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Idempotency key.
    #[serde(default)]
    pub id: String,
    /// Event type, such as `usage`.
    #[serde(rename = "type", default)]
    pub event_type: Option<String>,
    /// Owner type.
    #[serde(default)]
    pub owner_type: Option<String>,
    /// Owner id.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Entity type.
    #[serde(default)]
    pub entity_type: Option<String>,
    /// Entity id.
    #[serde(default)]
    pub entity_id: Option<String>,
    /// When it happened.
    pub timestamp: Timestamp,
    /// Quantity, summed by event queries.
    #[serde(default)]
    pub value: Option<Decimal>,
    /// Free attributes; string ones can be matched by queries.
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

/// Data a template's queries are answered from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    /// Entity snapshots.
    #[serde(default)]
    pub entities: Vec<Entity>,
    /// Events.
    #[serde(default)]
    pub events: Vec<Event>,
    /// Literal answers in query order; when present, `entities` and `events` are unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<Vec<Answer>>,
}

fn same(filter: &Option<String>, value: &Option<String>) -> bool {
    filter.is_none() || filter == value
}

impl Input {
    /// Answers query number `index` (counting from 0 across rounds).
    pub fn answer(&self, index: usize, query: &Query) -> Result<Answer, String> {
        if let Some(answers) = &self.answers {
            return answers.get(index).cloned().ok_or_else(|| {
                format!(
                    "the input has {} answers; query {index} has none",
                    answers.len()
                )
            });
        }
        Ok(match query {
            Query::Entities(q) => Answer::Entities(
                self.entities
                    .iter()
                    .filter(|e| {
                        e.entity_type == q.entity_type
                            && same(&q.owner_type, &e.owner_type)
                            && same(&q.owner_id, &e.owner_id)
                            && (q.entity_id.is_none() || q.entity_id.as_ref() == Some(&e.entity_id))
                    })
                    .cloned()
                    .collect(),
            ),
            Query::Events(q) => {
                let mut aggregate = EventAggregate::default();
                for e in self.events.iter().filter(|e| {
                    same(&q.event_type, &e.event_type)
                        && same(&q.owner_type, &e.owner_type)
                        && same(&q.owner_id, &e.owner_id)
                        && same(&q.entity_type, &e.entity_type)
                        && same(&q.entity_id, &e.entity_id)
                        && q.attributes.iter().all(|m| {
                            e.attributes.get(&m.name).and_then(Value::as_str) == Some(&m.value)
                        })
                        && q.start <= e.timestamp
                        && e.timestamp < q.end
                }) {
                    aggregate.count += 1;
                    aggregate.sum += e.value.unwrap_or_default();
                }
                Answer::Events(aggregate)
            }
        })
    }
}

/// Runs template `T` natively. Like a component built with the SDK, it keeps the last
/// parameters it parsed and parses again only when their text changes.
pub struct Native<T: Template> {
    last: Option<(String, T::Params)>,
}

impl<T: Template> Default for Native<T> {
    fn default() -> Self {
        Self { last: None }
    }
}

impl<T: Template> std::fmt::Debug for Native<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Native")
            .field("template", &T::INFO.id)
            .finish_non_exhaustive()
    }
}

impl<T: Template> Native<T> {
    fn params(&mut self, text: &str) -> Result<&T::Params, String> {
        crate::guest::reuse_params(&mut self.last, text, crate::guest::parse_params::<T>)
    }
}

impl<T: Template> Runner for Native<T> {
    type Error = String;

    fn plan(&mut self, params: &str, ctx: &Context) -> Result<Vec<Query>, String> {
        T::plan(self.params(params)?, ctx)
    }

    fn evaluate(
        &mut self,
        params: &str,
        ctx: &Context,
        answers: &[Answer],
    ) -> Result<Outcome, String> {
        let params = self.params(params)?;
        Ok(
            match T::evaluate(params, ctx, &Answers::new(answers.to_vec())) {
                Evaluation::Findings(f) => {
                    Outcome::Findings(f.into_iter().map(Finding::into_raw).collect())
                }
                Evaluation::More(q) => Outcome::More(q),
            },
        )
    }
}

/// One expected finding. `report` and `summary` are compared when given; a `noData`
/// verdict matches when the actual reason contains the expected text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedFinding {
    /// Subject.
    pub subject: String,
    /// Verdict.
    pub verdict: Verdict,
    /// Exact report data.
    #[serde(default)]
    pub report: Option<Value>,
    /// Exact summary.
    #[serde(default)]
    pub summary: Option<String>,
}

/// What a fixture expects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expect {
    /// Every query asked, in order.
    #[serde(default)]
    pub queries: Option<Vec<Query>>,
    /// The findings, in order.
    #[serde(default)]
    pub findings: Option<Vec<ExpectedFinding>>,
    /// The evaluation fails with a message containing this.
    #[serde(default)]
    pub error: Option<String>,
}

/// One test case for a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fixture {
    /// What the case shows.
    pub description: String,
    /// Alert parameters.
    pub params: Value,
    /// Evaluation instant.
    pub now: Timestamp,
    /// `ownerDetails.id`.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// `entityDetails.id`.
    #[serde(default)]
    pub entity_id: Option<String>,
    /// Input data.
    #[serde(default)]
    pub input: Input,
    /// The expectation.
    pub expect: Expect,
}

impl Fixture {
    /// Reads a fixture file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The evaluation context the fixture describes.
    pub fn context(&self) -> Context {
        Context {
            alert_id: "fixture".to_owned(),
            now: self.now,
            owner_id: self.owner_id.clone(),
            entity_id: self.entity_id.clone(),
        }
    }

    /// Runs the fixture on `runner` and compares with the expectation.
    pub fn check<R: Runner>(&self, runner: &mut R) -> Result<(), String> {
        let params = self.params.to_string();
        let result = run(runner, &params, &self.context(), &mut |i, q| {
            self.input.answer(i, q)
        });
        self.compare(result.map_err(|e| e.to_string()))
    }

    /// Compares a run's result with the expectation.
    pub fn compare(&self, result: Result<Run, String>) -> Result<(), String> {
        let run = match (result, &self.expect.error) {
            (Err(actual), Some(expected)) if actual.contains(expected.as_str()) => return Ok(()),
            (Err(actual), _) => return Err(format!("evaluation failed: {actual}")),
            (Ok(run), Some(expected)) => {
                return Err(format!(
                    "expected an error containing {expected:?}, got {run:?}"
                ));
            }
            (Ok(run), None) => run,
        };
        if let Some(queries) = &self.expect.queries
            && *queries != run.queries
        {
            return Err(format!(
                "queries differ:\n  expected {}\n  actual   {}",
                json(queries),
                json(&run.queries)
            ));
        }
        if let Some(expected) = &self.expect.findings {
            let matches = expected.len() == run.findings.len()
                && expected.iter().zip(&run.findings).all(|(e, a)| {
                    e.subject == a.subject
                        && match (&e.verdict, &a.verdict) {
                            (Verdict::NoData(want), Verdict::NoData(got)) => {
                                got.contains(want.as_str())
                            }
                            (want, got) => want == got,
                        }
                        && e.report.as_ref().is_none_or(|r| *r == a.report)
                        && e.summary.as_ref().is_none_or(|s| *s == a.summary)
                });
            if !matches {
                return Err(format!(
                    "findings differ:\n  expected {}\n  actual   {}",
                    json(expected),
                    json(&run.findings)
                ));
            }
        }
        Ok(())
    }
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Every `*.json` fixture in `dir`, sorted by file name.
pub fn fixtures_in(dir: impl AsRef<Path>) -> Vec<(PathBuf, Fixture)> {
    let dir = dir.as_ref();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read fixtures in {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let fixture = Fixture::load(&p).unwrap_or_else(|e| panic!("{e}"));
            (p, fixture)
        })
        .collect()
}

/// Runs every fixture in `dir` against template `T` compiled natively, and panics listing
/// each one that fails.
///
/// ```ignore
/// #[test]
/// fn fixtures_hold_natively() {
///     tocsin_sdk::testing::check_fixtures::<MyTemplate>(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"));
/// }
/// ```
pub fn check_fixtures<T: Template>(dir: impl AsRef<Path>) {
    let fixtures = fixtures_in(dir);
    assert!(!fixtures.is_empty(), "no fixtures found");
    let failures: Vec<String> = fixtures
        .iter()
        .filter_map(|(path, f)| {
            f.check(&mut Native::<T>::default())
                .err()
                .map(|e| format!("{} ({}): {e}", path.display(), f.description))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
