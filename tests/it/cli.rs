//! `tocsin template describe` and `tocsin template run`, through the real sandbox.

use clap::Parser;
use serde_json::{Value, json};
use tocsin::cli::Cli;

fn tocsin(args: &[&str]) -> anyhow::Result<Value> {
    let cache = tempfile::tempdir()?;
    let mut argv = vec!["tocsin", "--cache-dir", cache.path().to_str().unwrap()];
    argv.extend_from_slice(args);
    let mut out = Vec::new();
    Cli::try_parse_from(argv)?.run(&mut out)?;
    Ok(serde_json::from_slice(&out)?)
}

#[test]
fn describe_prints_a_builtin_templates_description() {
    let info = tocsin(&["template", "describe", "invoice_due_breach"]).unwrap();
    assert_eq!(info["id"], "invoice_due_breach");
    assert_eq!(info["entityType"], "INVOICE");
    assert_eq!(
        info["paramsSchema"]["required"],
        json!(["thresholdDays", "thresholdAmount"])
    );
}

#[test]
fn describe_reads_a_component_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.wasm");
    std::fs::write(&path, tocsin_tests::guest("hostile")).unwrap();
    let info = tocsin(&["template", "describe", path.to_str().unwrap()]).unwrap();
    assert_eq!(info["id"], "hostile");
}

#[test]
fn run_evaluates_a_fixture_input_and_prints_queries_and_findings() {
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        tocsin_tests::workspace().join("plugins/usage_breach/fixtures/week_new_york.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let params = dir.path().join("params.json");
    let input = dir.path().join("input.json");
    std::fs::write(&params, fixture["params"].to_string()).unwrap();
    std::fs::write(&input, fixture["input"].to_string()).unwrap();
    let out = tocsin(&[
        "template",
        "run",
        "usage_breach",
        "--params",
        params.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--now",
        "2026-03-04T10:00:00Z",
        "--owner",
        "acc1",
    ])
    .unwrap();
    assert_eq!(out["queries"], fixture["expect"]["queries"]);
    assert_eq!(out["findings"][0]["verdict"], "breached");
    assert_eq!(out["findings"][0]["report"]["usageUnits"], "110");
}

#[test]
fn run_rejects_parameters_that_break_the_schema_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let params = dir.path().join("params.json");
    let input = dir.path().join("input.json");
    std::fs::write(&params, r#"{"threshold": "lots"}"#).unwrap();
    std::fs::write(&input, "{}").unwrap();
    let error = tocsin(&[
        "template",
        "run",
        "credit_low_balance",
        "--params",
        params.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--now",
        "2026-03-04T10:00:00Z",
    ])
    .unwrap_err();
    assert!(
        error.to_string().starts_with("parameters at /threshold:"),
        "{error}"
    );
}

#[test]
fn an_unknown_plugin_is_named_with_the_builtins_listed() {
    let error = tocsin(&["template", "describe", "no_such_template"]).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("\"no_such_template\" is neither a file nor a built-in"),
        "{text}"
    );
    assert!(text.contains("cloud_alarm"), "{text}");
}

#[test]
fn test_runs_a_folder_of_fixtures_and_reports_each() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tocsin_tests::workspace().join("plugins/cloud_alarm/fixtures");
    let mut out = Vec::new();
    Cli::try_parse_from([
        "tocsin",
        "--cache-dir",
        cache.path().to_str().unwrap(),
        "template",
        "test",
        "cloud_alarm",
        dir.to_str().unwrap(),
    ])
    .unwrap()
    .run(&mut out)
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("ok    "), "{text}");
    assert!(text.trim_end().ends_with(" passed, 0 failed"), "{text}");
}

#[test]
fn test_fails_when_a_fixture_does_not_hold() {
    let dir = tempfile::tempdir().unwrap();
    let src = tocsin_tests::workspace().join("plugins/credit_low_balance/fixtures/breached.json");
    let wrong = std::fs::read_to_string(src)
        .unwrap()
        .replace("\"breached\"", "\"clear\"");
    let path = dir.path().join("wrong.json");
    std::fs::write(&path, wrong).unwrap();
    let mut out = Vec::new();
    let error = Cli::try_parse_from([
        "tocsin",
        "--cache-dir",
        dir.path().to_str().unwrap(),
        "template",
        "test",
        "credit_low_balance",
        path.to_str().unwrap(),
    ])
    .unwrap()
    .run(&mut out)
    .unwrap_err();
    assert_eq!(error.to_string(), "1 of 1 fixtures failed");
    assert!(String::from_utf8(out).unwrap().contains("FAIL  "));
}
