//! `invoice_due_breach`: Invoices still DUE more than thresholdDays after their issue date sum to more than thresholdAmount.

use tocsin_plugin_invoices::{self as invoices, Params, Report, Rule};
use tocsin_sdk::prelude::*;

/// The template.
#[derive(Debug)]
pub struct InvoiceDueBreach;

const RULE: Rule = Rule {
    statuses: &["DUE"],
    date_attribute: "issueDate",
    amount_attribute: "amount",
    adjective: "due",
};

impl Template for InvoiceDueBreach {
    type Params = Params;
    type Report = Report;

    const INFO: Info = Info {
        id: "invoice_due_breach",
        version: env!("CARGO_PKG_VERSION"),
        name: "Invoice due breach",
        description: "Invoices still DUE more than thresholdDays after their issue date sum to more than thresholdAmount.",
        entity_type: Some(invoices::INVOICE),
        owner_type: Some(invoices::ACCOUNT),
        auto_resolvable: false,
        default_interval_minutes: 60,
    };

    fn plan(_params: &Params, ctx: &Context) -> Result<Vec<Query>, String> {
        Ok(invoices::plan(ctx))
    }

    fn evaluate(params: &Params, ctx: &Context, answers: &Answers) -> Evaluation<Report> {
        invoices::evaluate(&RULE, params, ctx, answers)
    }
}

tocsin_sdk::export_template!(InvoiceDueBreach);

#[cfg(test)]
mod tests {
    #[test]
    fn fixtures_hold_natively() {
        tocsin_sdk::testing::check_fixtures::<super::InvoiceDueBreach>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures"
        ));
    }
}
