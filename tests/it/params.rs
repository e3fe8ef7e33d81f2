//! Parameters that break a template's schema are rejected with the JSON path of the
//! problem, before any evaluation.

use crate::builtin;
use serde_json::json;
use tocsin::sandbox::Error;

fn rejection(id: &str, params: serde_json::Value) -> (String, String) {
    match builtin(id).validate_params(&params) {
        Err(Error::InvalidParams { path, message }) => (path, message),
        other => panic!("{id} {params}: expected a schema rejection, got {other:?}"),
    }
}

#[test]
fn a_threshold_that_is_not_a_number_is_rejected_at_its_path() {
    let (path, message) = rejection("credit_low_balance", json!({"threshold": "fifty"}));
    assert_eq!(path, "/threshold");
    assert!(message.contains("fifty"), "{message}");
    let (path, _) = rejection("wallet_low_balance", json!({"threshold": true}));
    assert_eq!(path, "/threshold");
}

#[test]
fn a_missing_parameter_is_rejected_naming_it() {
    let (path, message) = rejection("invoice_due_breach", json!({"thresholdDays": 3}));
    assert_eq!(path, "/");
    assert!(message.contains("thresholdAmount"), "{message}");
}

#[test]
fn an_unknown_parameter_is_rejected_naming_it() {
    let (path, message) = rejection("credit_low_balance", json!({"threshold": 5, "treshold": 5}));
    assert_eq!(path, "/");
    assert!(message.contains("treshold"), "{message}");
}

#[test]
fn an_unknown_aggregation_period_is_rejected_at_its_path() {
    let (path, message) = rejection(
        "usage_breach",
        json!({"threshold": 1, "aggregationPeriod": "YEAR"}),
    );
    assert_eq!(path, "/aggregationPeriod");
    assert!(message.contains("YEAR"), "{message}");
}

#[test]
fn a_zero_window_and_a_negative_count_are_rejected_at_their_paths() {
    let (path, _) = rejection(
        "unprocessed_events",
        json!({"windowMinutes": 0, "threshold": 1, "schemaName": "orders"}),
    );
    assert_eq!(path, "/windowMinutes");
    let (path, _) = rejection(
        "unprocessed_events",
        json!({"windowMinutes": 5, "threshold": -1, "schemaName": "orders"}),
    );
    assert_eq!(path, "/threshold");
}

#[test]
fn an_unknown_severity_is_rejected_at_its_path() {
    let (path, _) = rejection("cloud_alarm", json!({"minimumSeverity": "SEV1"}));
    assert_eq!(path, "/minimumSeverity");
}

#[test]
fn valid_parameters_pass() {
    for (id, params) in [
        ("credit_low_balance", json!({"threshold": "12.50"})),
        ("credit_low_balance", json!({"threshold": 12.5})),
        ("usage_breach", json!({"threshold": 10})),
        ("cloud_alarm", json!({})),
    ] {
        builtin(id)
            .validate_params(&params)
            .unwrap_or_else(|e| panic!("{id} {params}: {e}"));
    }
}
