//! `unpaid_invoice_amount_breach`: an account's outstanding amount (DUE `amountDue` + DRAFT
//! `amount` + PARTIALLY_PAID `amountDue`) is above a threshold. Auto-resolves.

use tocsin_sdk::prelude::*;

/// The template.
#[derive(Debug)]
pub struct UnpaidInvoiceAmountBreach;

/// Parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Params {
    /// Breached when the outstanding amount is strictly above this.
    pub threshold: Decimal,
}

/// Report data.
#[derive(Debug, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// DUE + DRAFT + PARTIALLY_PAID outstanding amounts.
    pub total_unpaid_amount: Decimal,
    /// The account.
    pub account_id: String,
    /// Sum of `amountDue` of DUE invoices.
    pub due_invoice_sum: Decimal,
    /// Sum of `amount` of DRAFT invoices.
    pub draft_invoice_sum: Decimal,
    /// Number of DUE invoices.
    pub due_invoice_count: u64,
    /// Number of DRAFT invoices.
    pub draft_invoice_count: u64,
    /// Sum of `amountDue` of PARTIALLY_PAID invoices.
    pub partially_paid_invoice_sum: Decimal,
    /// Number of PARTIALLY_PAID invoices.
    pub partially_paid_invoice_count: u64,
}

fn outstanding(account: &str, invoices: &[&Entity]) -> Result<Report, DataError> {
    let mut report = Report {
        account_id: account.to_owned(),
        ..Report::default()
    };
    for invoice in invoices {
        match invoice.text("status")? {
            "DUE" => {
                report.due_invoice_sum += invoice.decimal("amountDue")?;
                report.due_invoice_count += 1;
            }
            "DRAFT" => {
                report.draft_invoice_sum += invoice.decimal("amount")?;
                report.draft_invoice_count += 1;
            }
            "PARTIALLY_PAID" => {
                report.partially_paid_invoice_sum += invoice.decimal("amountDue")?;
                report.partially_paid_invoice_count += 1;
            }
            _ => {}
        }
    }
    report.total_unpaid_amount =
        report.due_invoice_sum + report.draft_invoice_sum + report.partially_paid_invoice_sum;
    Ok(report)
}

impl Template for UnpaidInvoiceAmountBreach {
    type Params = Params;
    type Report = Report;

    const INFO: Info = Info {
        id: "unpaid_invoice_amount_breach",
        version: env!("CARGO_PKG_VERSION"),
        name: "Unpaid invoice amount breach",
        description: "The outstanding amount of an account (DUE amountDue + DRAFT amount + PARTIALLY_PAID amountDue) is above a threshold.",
        entity_type: None,
        owner_type: Some("ACCOUNT"),
        auto_resolvable: true,
        default_interval_minutes: 60,
    };

    fn plan(_params: &Params, ctx: &Context) -> Result<Vec<Query>, String> {
        Ok(vec![Query::for_alert("INVOICE", "ACCOUNT", ctx)])
    }

    fn evaluate(params: &Params, ctx: &Context, answers: &Answers) -> Evaluation<Report> {
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
                .map(
                    |(account, invoices)| match outstanding(account, &invoices) {
                        Ok(report) => {
                            let breached = report.total_unpaid_amount > params.threshold;
                            let summary = format!(
                                "Account {account} has {} unpaid, {} the threshold of {}.",
                                report.total_unpaid_amount,
                                if breached { "above" } else { "not above" },
                                params.threshold
                            );
                            Finding::new(account, Verdict::breached_if(breached), report, summary)
                        }
                        Err(reason) => Finding::no_data(account, reason),
                    },
                )
                .collect(),
        )
    }
}

tocsin_sdk::export_template!(UnpaidInvoiceAmountBreach);

#[cfg(test)]
mod tests {
    #[test]
    fn fixtures_hold_natively() {
        tocsin_sdk::testing::check_fixtures::<super::UnpaidInvoiceAmountBreach>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures"
        ));
    }
}
