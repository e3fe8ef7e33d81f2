//! Low balance, written once for the credit, wallet and entitlement templates.
//!
//! Breached when the sum of `balance` over the account's entities of one type (or the one
//! entity the alert names) is strictly below the threshold.

use tocsin_sdk::prelude::*;

/// Parameters of every low-balance template.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Params {
    /// Breached when the remaining balance is strictly below this amount.
    pub threshold: Decimal,
}

/// Report data of every low-balance template.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Sum of `balance` over the entities considered.
    pub remaining_balance: Decimal,
    /// Sum of `granted` over the same entities.
    pub total_granted: Decimal,
    /// The account.
    pub account_id: String,
}

/// The owner type every low-balance template is scoped to.
pub const OWNER_TYPE: &str = "ACCOUNT";

/// What one low-balance template is about: its entity type, the word for it in summaries,
/// and what it says of itself.
pub trait Kind {
    /// The entities whose `balance` is summed.
    const ENTITY_TYPE: &'static str;
    /// The balance's name in summaries (`credit`, `wallet`, `entitlement`).
    const NOUN: &'static str;
    /// The template's description; its `entity_type` is [`Self::ENTITY_TYPE`].
    const INFO: Info;
}

/// The low-balance template over the entities `K` names.
#[derive(Debug)]
pub struct LowBalance<K>(std::marker::PhantomData<K>);

impl<K: Kind> Template for LowBalance<K> {
    type Params = Params;
    type Report = Report;

    const INFO: Info = K::INFO;

    fn plan(_params: &Params, ctx: &Context) -> Result<Vec<Query>, String> {
        Ok(plan(K::ENTITY_TYPE, ctx))
    }

    fn evaluate(params: &Params, ctx: &Context, answers: &Answers) -> Evaluation<Report> {
        evaluate(K::ENTITY_TYPE, K::NOUN, params, ctx, answers)
    }
}

/// The one query: the entities of `entity_type`, of the alert's account (every account
/// when the alert names none), narrowed to `entityDetails.id` when given.
pub fn plan(entity_type: &str, ctx: &Context) -> Vec<Query> {
    vec![Query::for_alert(entity_type, OWNER_TYPE, ctx)]
}

/// One finding per account: breached when its remaining balance is below the threshold.
pub fn evaluate(
    entity_type: &str,
    noun: &str,
    params: &Params,
    ctx: &Context,
    answers: &Answers,
) -> Evaluation<Report> {
    let owner_label = ctx
        .owner_id
        .clone()
        .unwrap_or_else(|| "every account".to_owned());
    let entities = match answers.entities(0) {
        Ok(entities) => entities,
        Err(reason) => return Evaluation::one(Finding::no_data(owner_label, reason)),
    };
    let by_account = group_by_owner(ctx, entities);
    if by_account.is_empty() {
        let reason = DataError::new(format!("{owner_label} has no {entity_type} entities"));
        return Evaluation::one(Finding::no_data(owner_label, reason));
    }
    Evaluation::Findings(
        by_account
            .into_iter()
            .map(|(account, entities)| judge(account, entity_type, &entities, noun, params, ctx))
            .collect(),
    )
}

fn judge(
    account: &str,
    entity_type: &str,
    entities: &[&Entity],
    noun: &str,
    params: &Params,
    ctx: &Context,
) -> Finding<Report> {
    if entities.is_empty() {
        let what = match &ctx.entity_id {
            Some(id) => format!("no {entity_type} entity {id}"),
            None => format!("no {entity_type} entities"),
        };
        return Finding::no_data(
            account,
            DataError::new(format!("account {account} has {what}")),
        );
    }
    let mut remaining = Decimal::ZERO;
    let mut granted = Decimal::ZERO;
    for entity in entities {
        let sums = entity
            .decimal("balance")
            .and_then(|b| Ok((b, entity.decimal("granted")?)));
        match sums {
            Ok((b, g)) => {
                remaining += b;
                granted += g;
            }
            Err(reason) => return Finding::no_data(account, reason),
        }
    }
    let breached = remaining < params.threshold;
    let summary = format!(
        "Account {account} has {remaining} {noun} remaining of {granted} granted, {} the threshold of {}.",
        if breached { "below" } else { "not below" },
        params.threshold
    );
    let report = Report {
        remaining_balance: remaining,
        total_granted: granted,
        account_id: account.to_owned(),
    };
    Finding::new(account, Verdict::breached_if(breached), report, summary)
}
