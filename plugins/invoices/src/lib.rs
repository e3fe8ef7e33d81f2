//! Aged invoices, written once for `invoice_due_breach` and `invoice_overdue_breach`.
//!
//! An invoice counts when its status is one of the rule's statuses and its reference date
//! (issue date or due date) lies more than `thresholdDays` whole days before now. The alert
//! breaches when at least one invoice counts and their amounts sum to more than
//! `thresholdAmount`.

use tocsin_sdk::prelude::*;

/// The entity type of invoices.
pub const INVOICE: &str = "INVOICE";
/// The owner type of invoices.
pub const ACCOUNT: &str = "ACCOUNT";

/// Parameters of the aged-invoice templates.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Params {
    /// An invoice counts once its reference date is more than this many days in the past.
    pub threshold_days: u32,
    /// Breached when the counted amounts sum to more than this.
    pub threshold_amount: Decimal,
}

/// Report data of the aged-invoice templates.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Sum of the counted invoices' amounts.
    pub invoice_sum: Decimal,
    /// Number of counted invoices.
    pub invoice_count: u64,
    /// The account.
    pub account_id: String,
}

/// Which invoices count and which of their fields are read.
#[derive(Debug)]
pub struct Rule {
    /// Statuses that count.
    pub statuses: &'static [&'static str],
    /// The date the age is measured from.
    pub date_attribute: &'static str,
    /// The amount that is summed.
    pub amount_attribute: &'static str,
    /// How the summary names the counted invoices ("due", "overdue").
    pub adjective: &'static str,
}

/// The one query: the alert account's invoices (every account's, when it names none).
pub fn plan(ctx: &Context) -> Vec<Query> {
    vec![Query::for_alert(INVOICE, ACCOUNT, ctx)]
}

/// One finding per account.
pub fn evaluate(
    rule: &Rule,
    params: &Params,
    ctx: &Context,
    answers: &Answers,
) -> Evaluation<Report> {
    let invoices = match answers.entities(0) {
        Ok(invoices) => invoices,
        Err(reason) => {
            let subject = ctx.owner_id.clone().unwrap_or_default();
            return Evaluation::one(Finding::no_data(subject, reason));
        }
    };
    Evaluation::Findings(
        group_by_owner(ctx, invoices)
            .into_iter()
            .map(|(account, invoices)| match aged(rule, params, ctx, &invoices) {
                Ok((count, sum)) => {
                    let breached = count >= 1 && sum > params.threshold_amount;
                    let summary = format!(
                        "Account {account} has {count} invoices {} more than {} days totalling {sum}, {} the threshold of {}.",
                        rule.adjective,
                        params.threshold_days,
                        if breached { "above" } else { "not above" },
                        params.threshold_amount,
                    );
                    let report = Report {
                        invoice_sum: sum,
                        invoice_count: count,
                        account_id: account.to_owned(),
                    };
                    Finding::new(account, Verdict::breached_if(breached), report, summary)
                }
                Err(reason) => Finding::no_data(account, reason),
            })
            .collect(),
    )
}

fn aged(
    rule: &Rule,
    params: &Params,
    ctx: &Context,
    invoices: &[&Entity],
) -> Result<(u64, Decimal), DataError> {
    let cutoff = ctx.now - tocsin_sdk::chrono::Duration::days(i64::from(params.threshold_days));
    let mut count = 0;
    let mut sum = Decimal::ZERO;
    for invoice in invoices {
        if !rule.statuses.contains(&invoice.text("status")?) {
            continue;
        }
        // "More than N days ago": strictly before now minus N days.
        if invoice.instant(rule.date_attribute)? < cutoff {
            count += 1;
            sum += invoice.decimal(rule.amount_attribute)?;
        }
    }
    Ok((count, sum))
}
