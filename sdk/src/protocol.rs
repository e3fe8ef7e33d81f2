//! The evaluation protocol, as the host and the SDK's native runner both drive it: plan,
//! answer every query, evaluate, and again while the template asks for more, at most
//! [`MAX_ROUNDS`] times. The sandbox implements [`Runner`] over a component; the SDK's
//! `testing::Native` over a template compiled natively; [`run`] is the one loop both use.

use crate::{Answer, Context, Query, RawFinding};
use serde::Serialize;

/// How many times one evaluation may ask for more data before the host gives up.
pub const MAX_ROUNDS: usize = 8;

/// The result of one `evaluate` round, in interface form.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Complete.
    Findings(Vec<RawFinding>),
    /// More data needed.
    More(Vec<Query>),
}

/// Something that can run a template: the native code, or a component in the sandbox.
pub trait Runner {
    /// Why a call failed.
    type Error: From<String> + std::fmt::Display;
    /// Calls `plan`.
    fn plan(&mut self, params: &str, ctx: &Context) -> Result<Vec<Query>, Self::Error>;
    /// Calls `evaluate`.
    fn evaluate(
        &mut self,
        params: &str,
        ctx: &Context,
        answers: &[Answer],
    ) -> Result<Outcome, Self::Error>;
}

/// A whole evaluation: every query asked, in order, and the findings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// Queries of every round, in order.
    pub queries: Vec<Query>,
    /// The findings.
    pub findings: Vec<RawFinding>,
}

/// Plans, answers and evaluates until the template has its findings.
pub fn run<R: Runner + ?Sized>(
    runner: &mut R,
    params: &str,
    ctx: &Context,
    answer: &mut impl FnMut(usize, &Query) -> Result<Answer, String>,
) -> Result<Run, R::Error> {
    let mut queries = runner.plan(params, ctx)?;
    let mut answers = Vec::with_capacity(queries.len());
    for _ in 0..MAX_ROUNDS {
        for (i, q) in queries.iter().enumerate().skip(answers.len()) {
            answers.push(answer(i, q)?);
        }
        match runner.evaluate(params, ctx, &answers)? {
            Outcome::Findings(findings) => return Ok(Run { queries, findings }),
            Outcome::More(more) => queries.extend(more),
        }
    }
    Err(format!(
        "the template asked for more data {MAX_ROUNDS} times; an evaluation may take at most {MAX_ROUNDS} rounds"
    )
    .into())
}
