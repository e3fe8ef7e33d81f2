//! A client following Togai's alerts API, for every built-in template: create the alert,
//! push data, see the incident open with the right report data, see auto-resolving ones
//! close with a closing snapshot and close the others by API. Every response body is
//! checked against Togai's schemas (read from the spec file) for Togai's fields.

use crate::support::{ADMIN_KEY, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

/// Togai's component schemas, ready to validate responses.
pub struct TogaiSpec {
    schemas: Map<String, Value>,
}

impl TogaiSpec {
    /// Reads `shared/contracts/togai-alerts-openapi.yaml`.
    pub fn load() -> Self {
        let path = tocsin_tests::workspace().join("../shared/contracts/togai-alerts-openapi.yaml");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: Value = serde_yaml::from_str(&text).expect("the spec is YAML");
        let mut schemas = doc["components"]["schemas"]
            .as_object()
            .expect("schemas")
            .clone();
        for schema in schemas.values_mut() {
            any_value_maps(schema);
        }
        Self { schemas }
    }

    /// Asserts `body` matches Togai's schema `name` in every field Togai defines. Extra
    /// fields of ours are set aside first: Togai's schemas forbid additional properties,
    /// and DESIGN.md allows responses to carry more.
    pub fn check(&self, name: &str, body: &Value) {
        let mut instance = body.clone();
        self.strip(
            &json!({"$ref": format!("#/components/schemas/{name}")}),
            &mut instance,
        );
        let schema = json!({
            "$ref": format!("#/components/schemas/{name}"),
            "components": {"schemas": self.schemas},
        });
        let validator = jsonschema::validator_for(&schema).expect("Togai's schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{name} does not match Togai's schema: {errors:?}\n{instance}"
        );
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => &self.schemas[r.trim_start_matches("#/components/schemas/")],
            None => schema,
        }
    }

    fn strip(&self, schema: &Value, instance: &mut Value) {
        let schema = self.resolve(schema);
        match instance {
            Value::Object(map) => {
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    map.retain(|k, _| props.contains_key(k));
                    for (k, v) in map.iter_mut() {
                        self.strip(&props[k], v);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for item in items {
                        self.strip(item_schema, item);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The spec is generated from Java, where a `Map<String, Object>` field comes out as
/// `additionalProperties: {type: object}`: in Togai's meaning, any JSON value (DESIGN.md's
/// `ownerDetails` is `{"id": "acc1"}`, parameters are numbers and strings). Read it so.
fn any_value_maps(schema: &mut Value) {
    if let Value::Object(map) = schema {
        if map.get("additionalProperties") == Some(&json!({"type": "object"})) {
            map.insert("additionalProperties".into(), json!({}));
        }
        for value in map.values_mut() {
            any_value_maps(value);
        }
    }
}

/// One template's whole path.
struct Case {
    template: &'static str,
    owner: &'static str,
    params: Value,
    /// Pushes data that breaches.
    breach: fn(&TestApp) -> futures_like::Boxed<'_>,
    /// The report data expected at opening.
    report: Value,
    /// Pushes data that clears, for auto-resolving templates.
    recover: Option<fn(&TestApp) -> futures_like::Boxed<'_>>,
}

mod futures_like {
    pub type Boxed<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;
}

fn balance_case(template: &'static str, entity_type: &'static str) -> Case {
    Case {
        template,
        owner: "acc1",
        params: json!({"threshold": 50}),
        breach: match entity_type {
            "CREDIT" => |app| {
                Box::pin(async move {
                    app.put_entity(
                        "CREDIT",
                        "e1",
                        Some(("ACCOUNT", "acc1")),
                        json!({"balance": "40.5", "granted": "100"}),
                    )
                    .await;
                })
            },
            "WALLET" => |app| {
                Box::pin(async move {
                    app.put_entity(
                        "WALLET",
                        "e1",
                        Some(("ACCOUNT", "acc1")),
                        json!({"balance": "40.5", "granted": "100"}),
                    )
                    .await;
                })
            },
            _ => |app| {
                Box::pin(async move {
                    app.put_entity(
                        "FEATURE",
                        "e1",
                        Some(("ACCOUNT", "acc1")),
                        json!({"balance": "40.5", "granted": "100"}),
                    )
                    .await;
                })
            },
        },
        report: json!({"remainingBalance": "40.5", "totalGranted": "100", "accountId": "acc1"}),
        recover: Some(match entity_type {
            "CREDIT" => |app| {
                Box::pin(async move {
                    app.put_entity(
                        "CREDIT",
                        "e1",
                        Some(("ACCOUNT", "acc1")),
                        json!({"balance": "75", "granted": "100"}),
                    )
                    .await;
                })
            },
            "WALLET" => |app| {
                Box::pin(async move {
                    app.put_entity(
                        "WALLET",
                        "e1",
                        Some(("ACCOUNT", "acc1")),
                        json!({"balance": "75", "granted": "100"}),
                    )
                    .await;
                })
            },
            _ => |app| {
                Box::pin(async move {
                    app.put_entity(
                        "FEATURE",
                        "e1",
                        Some(("ACCOUNT", "acc1")),
                        json!({"balance": "75", "granted": "100"}),
                    )
                    .await;
                })
            },
        }),
    }
}

fn cases() -> Vec<Case> {
    vec![
        balance_case("credit_low_balance", "CREDIT"),
        balance_case("wallet_low_balance", "WALLET"),
        balance_case("entitlement_low_balance", "FEATURE"),
        Case {
            template: "usage_breach",
            owner: "acc1",
            params: json!({"threshold": 100, "aggregationPeriod": "DAY"}),
            breach: |app| {
                Box::pin(async move {
                    app.post_events(json!([
                    {"id": "u1", "type": "usage", "ownerType": "ACCOUNT", "ownerId": "acc1", "entityType": "USAGE_METER", "entityId": "m1", "timestamp": "2026-03-04T08:00:00Z", "value": "60"},
                    {"id": "u2", "type": "usage", "ownerType": "ACCOUNT", "ownerId": "acc1", "entityType": "USAGE_METER", "entityId": "m1", "timestamp": "2026-03-04T09:00:00Z", "value": 50.5}
                ])).await;
                })
            },
            report: json!({"usageUnits": "110.5", "aggregationPeriod": "DAY", "periodStart": "2026-03-04T00:00:00+00:00", "periodEnd": "2026-03-05T00:00:00+00:00", "accountId": "acc1"}),
            recover: None,
        },
        Case {
            template: "unprocessed_events",
            owner: "",
            params: json!({"windowMinutes": 60, "threshold": 2, "schemaName": "orders"}),
            breach: |app| {
                Box::pin(async move {
                    let events: Vec<Value> = (0..3)
                    .map(|i| json!({"id": format!("o{i}"), "type": "ingest", "timestamp": format!("2026-03-04T09:{:02}:00Z", 10 + i), "attributes": {"status": "UNPROCESSED", "schemaName": "orders"}}))
                    .collect();
                    app.post_events(Value::Array(events)).await;
                })
            },
            report: json!({"count": 3}),
            recover: None,
        },
        Case {
            template: "invoice_due_breach",
            owner: "acc1",
            params: json!({"thresholdDays": 30, "thresholdAmount": "100"}),
            breach: |app| {
                Box::pin(async move {
                    app.put_entity("INVOICE", "i1", Some(("ACCOUNT", "acc1")), json!({"status": "DUE", "issueDate": "2026-01-10", "amount": "150.25", "currency": "USD"})).await;
                })
            },
            report: json!({"invoiceSum": "150.25", "invoiceCount": 1, "accountId": "acc1"}),
            recover: None,
        },
        Case {
            template: "invoice_overdue_breach",
            owner: "acc1",
            params: json!({"thresholdDays": 10, "thresholdAmount": "100"}),
            breach: |app| {
                Box::pin(async move {
                    app.put_entity("INVOICE", "i1", Some(("ACCOUNT", "acc1")), json!({"status": "OVERDUE", "dueDate": "2026-02-01", "amount": "500", "amountDue": "120"})).await;
                })
            },
            report: json!({"invoiceSum": "120", "invoiceCount": 1, "accountId": "acc1"}),
            recover: None,
        },
        Case {
            template: "unpaid_invoice_amount_breach",
            owner: "acc1",
            params: json!({"threshold": 100}),
            breach: |app| {
                Box::pin(async move {
                    app.put_entity(
                        "INVOICE",
                        "i1",
                        Some(("ACCOUNT", "acc1")),
                        json!({"status": "DUE", "amount": "150", "amountDue": "150"}),
                    )
                    .await;
                })
            },
            report: json!({"totalUnpaidAmount": "150", "accountId": "acc1", "dueInvoiceSum": "150", "draftInvoiceSum": "0", "dueInvoiceCount": 1, "draftInvoiceCount": 0, "partiallyPaidInvoiceSum": "0", "partiallyPaidInvoiceCount": 0}),
            recover: Some(|app| {
                Box::pin(async move {
                    app.put_entity(
                        "INVOICE",
                        "i1",
                        Some(("ACCOUNT", "acc1")),
                        json!({"status": "PAID", "amount": "150", "amountDue": "0"}),
                    )
                    .await;
                })
            }),
        },
        Case {
            template: "cloud_alarm",
            owner: "int1",
            params: json!({}),
            breach: |app| {
                Box::pin(async move {
                    app.put_entity("ALARM", "fp1", Some(("INTEGRATION", "int1")), json!({"source": "alertmanager", "name": "HighLatency", "resource": "api-1", "severity": "critical", "state": "FIRING", "summary": "p99 above 2s", "startedAt": "2026-03-04T09:58:00Z"})).await;
                })
            },
            report: json!({"source": "alertmanager", "name": "HighLatency", "resource": "api-1", "severity": "critical", "state": "FIRING", "summary": "p99 above 2s", "startedAt": "2026-03-04T09:58:00Z"}),
            recover: Some(|app| {
                Box::pin(async move {
                    app.put_entity("ALARM", "fp1", Some(("INTEGRATION", "int1")), json!({"source": "alertmanager", "name": "HighLatency", "resource": "api-1", "severity": "critical", "state": "RESOLVED", "summary": "p99 back under 2s", "startedAt": "2026-03-04T09:58:00Z"})).await;
                })
            }),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_togai_client_sees_every_builtin_open_and_close_incidents() {
    let spec = TogaiSpec::load();
    let app = spawn_app().await;

    let templates = app.get("/alert_templates").await;
    spec.check("AlertTemplatesPaginatedResponse", &templates);
    assert_eq!(templates["data"].as_array().unwrap().len(), 9);
    spec.check(
        "AlertTemplate",
        &app.get("/alert_templates/usage_breach").await,
    );

    for case in cases() {
        let owner = (!case.owner.is_empty()).then_some(case.owner);
        let alert = app
            .create_alert(case.template, owner, case.params.clone())
            .await;
        spec.check("Alert", &alert);
        let id = alert["id"].as_str().unwrap().to_owned();
        // Its first evaluation finds nothing to report.
        app.wait_for_evaluation(&id, None).await;
        assert!(
            app.incidents_of(&id).await.is_empty(),
            "{}: nothing breached yet",
            case.template
        );

        (case.breach)(&app).await;
        let incident = app.wait_for_incident(&id, |i| i["status"] == "OPEN").await;
        spec.check("Incident", &incident);
        assert_eq!(
            incident["reportData"], case.report,
            "{} report data",
            case.template
        );
        assert_eq!(incident["alertVersion"], 1);
        assert_eq!(incident["alertTemplateId"], case.template);
        let incident_id = incident["id"].as_str().unwrap().to_owned();

        match case.recover {
            Some(recover) => {
                recover(&app).await;
                let closed = app
                    .wait_for_incident(&id, |i| i["status"] == "CLOSED")
                    .await;
                spec.check("Incident", &closed);
                assert_eq!(closed["closedBy"], "auto-resolve", "{}", case.template);
                assert_eq!(
                    closed["reportData"], case.report,
                    "the opening snapshot stays"
                );
                assert!(
                    closed["closingReportData"].is_object(),
                    "{}: {closed}",
                    case.template
                );
                assert_ne!(
                    closed["closingReportData"], case.report,
                    "{}: the closing snapshot is taken at closing",
                    case.template
                );
            }
            None => {
                let closed = app
                    .send(
                        Method::PUT,
                        &format!("/incidents/{incident_id}/status"),
                        json!({"status": "CLOSED"}),
                        StatusCode::OK,
                    )
                    .await;
                spec.check("Incident", &closed);
                assert_eq!(closed["status"], "CLOSED");
                assert!(closed["closedBy"].as_str().unwrap().starts_with("key_"));
            }
        }
        let timeline = app.get(&format!("/incidents/{incident_id}/timeline")).await;
        let kinds: Vec<&str> = timeline["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds.first(),
            Some(&"opened"),
            "{}: {kinds:?}",
            case.template
        );
        assert!(
            matches!(kinds.last(), Some(&"resolved") | Some(&"closed")),
            "{}: {kinds:?}",
            case.template
        );
    }

    let incidents = app.get("/incidents").await;
    spec.check("IncidentsPaginatedResponse", &incidents);
    assert_eq!(incidents["data"].as_array().unwrap().len(), 9);
    let alerts = app.get("/alerts").await;
    spec.check("AlertsPaginatedResponse", &alerts);
    let (status, error) = app
        .call(Method::GET, "/incidents/inc_missing", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    spec.check("ErrorResponse", &error);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_bumps_the_version_and_revalidates_parameters() {
    let spec = TogaiSpec::load();
    let app = spawn_app().await;
    let alert = app
        .create_alert("credit_low_balance", Some("acc1"), json!({"threshold": 50}))
        .await;
    let id = alert["id"].as_str().unwrap();
    let updated = app
        .send(
            Method::PATCH,
            &format!("/alerts/{id}"),
            json!({"parameters": {"threshold": "70"}, "description": "tighter"}),
            StatusCode::OK,
        )
        .await;
    spec.check("Alert", &updated);
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["parameters"], json!({"threshold": "70"}));
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/alerts/{id}"),
            Some(ADMIN_KEY),
            Some(json!({"parameters": {"threshold": "lots"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("parameters at /threshold"),
        "{body}"
    );
    assert_eq!(
        app.get(&format!("/alerts/{id}")).await["version"],
        2,
        "a rejected update changes nothing"
    );

    // An incident records the alert version that opened it.
    app.put_entity(
        "CREDIT",
        "c1",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "60", "granted": "100"}),
    )
    .await;
    let incident = app.wait_for_incident(id, |i| i["status"] == "OPEN").await;
    assert_eq!(incident["alertVersion"], 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_alerts_are_not_evaluated_and_expired_ones_close_their_incidents() {
    let app = spawn_app().await;
    let inactive = app
        .send(Method::POST, "/alerts", json!({"alertTemplateId": "credit_low_balance", "interval": 5, "status": "INACTIVE", "ownerDetails": {"id": "acc1"}, "parameters": {"threshold": 50}}), StatusCode::OK)
        .await;
    let expiring = app
        .send(Method::POST, "/alerts", json!({"alertTemplateId": "invoice_due_breach", "interval": 5, "validity": 30, "status": "ACTIVE", "ownerDetails": {"id": "acc1"}, "parameters": {"thresholdDays": 1, "thresholdAmount": 0}}), StatusCode::OK)
        .await;
    app.put_entity(
        "CREDIT",
        "c1",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "1", "granted": "100"}),
    )
    .await;
    app.put_entity(
        "INVOICE",
        "i1",
        Some(("ACCOUNT", "acc1")),
        json!({"status": "DUE", "issueDate": "2026-01-01", "amount": "10"}),
    )
    .await;
    let expiring_id = expiring["id"].as_str().unwrap();
    let incident = app
        .wait_for_incident(expiring_id, |i| i["status"] == "OPEN")
        .await;
    assert!(
        incident["validUntil"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-04T10:30:00"),
        "{incident}"
    );

    // Validity ends: the scheduler closes the incident and stops evaluating the alert.
    app.advance(chrono::Duration::minutes(31));
    let closed = app
        .wait_for_incident(expiring_id, |i| i["status"] == "CLOSED")
        .await;
    assert_eq!(closed["closedBy"], "validity ended");
    let inactive_id = inactive["id"].as_str().unwrap();
    assert!(app.get(&format!("/alerts/{inactive_id}")).await["lastEvaluation"].is_null());
    assert!(app.incidents_of(inactive_id).await.is_empty());
    app.stop().await;
}
