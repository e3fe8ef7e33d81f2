//! `invoice_overdue_breach`: Unpaid invoices (DUE, OVERDUE, PARTIALLY_PAID) more than thresholdDays past their due date sum (amountDue) to more than thresholdAmount.

use tocsin_plugin_invoices::{self as invoices, Params, Report, Rule};
use tocsin_sdk::prelude::*;

/// The template.
#[derive(Debug)]
pub struct InvoiceOverdueBreach;

const RULE: Rule = Rule {
    statuses: &["DUE", "OVERDUE", "PARTIALLY_PAID"],
    date_attribute: "dueDate",
    amount_attribute: "amountDue",
    adjective: "overdue",
};

impl Template for InvoiceOverdueBreach {
    type Params = Params;
    type Report = Report;

    const INFO: Info = Info {
        id: "invoice_overdue_breach",
        version: env!("CARGO_PKG_VERSION"),
        name: "Invoice overdue breach",
        description: "Unpaid invoices (DUE, OVERDUE, PARTIALLY_PAID) more than thresholdDays past their due date sum (amountDue) to more than thresholdAmount.",
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

tocsin_sdk::export_template!(InvoiceOverdueBreach);

#[cfg(test)]
mod tests {
    #[test]
    fn fixtures_hold_natively() {
        tocsin_sdk::testing::check_fixtures::<super::InvoiceOverdueBreach>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures"
        ));
    }
}
