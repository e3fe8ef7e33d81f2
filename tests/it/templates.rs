//! Every built-in template's fixtures, run through the real sandbox: the same files the
//! plugin crates check natively.

use crate::builtin;
use tocsin::builtins::BUILTINS;
use tocsin_sdk::testing::fixtures_in;

#[test]
fn every_builtin_fixture_holds_in_the_sandbox() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (id, _) in BUILTINS {
        let plugin = builtin(id);
        assert_eq!(
            plugin.info().id,
            *id,
            "the component describes itself by its id"
        );
        let dir = tocsin_tests::workspace()
            .join("plugins")
            .join(id)
            .join("fixtures");
        for (path, fixture) in fixtures_in(&dir) {
            count += 1;
            if let Err(e) = plugin.validate_params(&fixture.params) {
                failures.push(format!("{}: params rejected: {e}", path.display()));
                continue;
            }
            // A fresh, isolated instance per evaluation, as for tenants' alerts.
            let mut instance = plugin.instance().expect("instance");
            if let Err(e) = fixture.check(&mut instance) {
                failures.push(format!("{} ({}): {e}", path.display(), fixture.description));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(count >= 90, "only {count} fixtures found");
}

#[test]
fn one_instance_serves_a_batch_of_alerts_without_mixing_them() {
    let plugin = builtin("credit_low_balance");
    let dir = tocsin_tests::workspace().join("plugins/credit_low_balance/fixtures");
    let fixtures = fixtures_in(&dir);
    let mut instance = plugin.instance().expect("instance");
    // Run the whole folder twice on one instance: every result must match its own
    // fixture, whatever ran before it.
    for (path, fixture) in fixtures.iter().chain(fixtures.iter()) {
        fixture
            .check(&mut instance)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn every_builtin_describes_what_the_design_table_says() {
    let expect = [
        ("credit_low_balance", Some("CREDIT"), Some("ACCOUNT"), true),
        ("wallet_low_balance", Some("WALLET"), Some("ACCOUNT"), true),
        (
            "entitlement_low_balance",
            Some("FEATURE"),
            Some("ACCOUNT"),
            true,
        ),
        ("usage_breach", Some("USAGE_METER"), Some("ACCOUNT"), false),
        ("unprocessed_events", None, None, false),
        (
            "invoice_due_breach",
            Some("INVOICE"),
            Some("ACCOUNT"),
            false,
        ),
        (
            "invoice_overdue_breach",
            Some("INVOICE"),
            Some("ACCOUNT"),
            false,
        ),
        ("unpaid_invoice_amount_breach", None, Some("ACCOUNT"), true),
        ("cloud_alarm", Some("ALARM"), Some("INTEGRATION"), true),
    ];
    assert_eq!(BUILTINS.len(), expect.len());
    for (id, entity, owner, auto) in expect {
        let info = builtin(id).info().clone();
        assert_eq!(info.entity_type.as_deref(), entity, "{id} entity type");
        assert_eq!(info.owner_type.as_deref(), owner, "{id} owner type");
        assert_eq!(info.auto_resolvable, auto, "{id} auto-resolvable");
        assert!(info.params_schema.is_object() && info.report_schema.is_object());
    }
}

#[test]
fn report_schemas_name_the_design_tables_fields() {
    let fields = |id: &str| -> Vec<String> {
        let info = builtin(id).info().clone();
        let mut names: Vec<String> = info.report_schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    };
    let sorted = |names: &[&str]| {
        let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    let balance = sorted(&["remainingBalance", "totalGranted", "accountId"]);
    assert_eq!(fields("credit_low_balance"), balance);
    assert_eq!(fields("wallet_low_balance"), balance);
    assert_eq!(fields("entitlement_low_balance"), balance);
    assert_eq!(
        fields("usage_breach"),
        sorted(&[
            "usageUnits",
            "aggregationPeriod",
            "periodStart",
            "periodEnd",
            "accountId"
        ])
    );
    assert_eq!(fields("unprocessed_events"), sorted(&["count"]));
    let aged = sorted(&["invoiceSum", "invoiceCount", "accountId"]);
    assert_eq!(fields("invoice_due_breach"), aged);
    assert_eq!(fields("invoice_overdue_breach"), aged);
    assert_eq!(
        fields("unpaid_invoice_amount_breach"),
        sorted(&[
            "totalUnpaidAmount",
            "accountId",
            "dueInvoiceSum",
            "draftInvoiceSum",
            "dueInvoiceCount",
            "draftInvoiceCount",
            "partiallyPaidInvoiceSum",
            "partiallyPaidInvoiceCount"
        ])
    );
    assert_eq!(
        fields("cloud_alarm"),
        sorted(&[
            "source",
            "name",
            "resource",
            "severity",
            "state",
            "summary",
            "startedAt"
        ])
    );
}
