//! Amazon SNS through the real server: signatures (versions 1 and 2) against pinned and
//! fetched certificates, CloudWatch alarms from ALARM to OK, MessageId dedup, tampering,
//! and subscription confirmation, with a loopback SNS double standing in for AWS.
//!
//! The captured fixtures carry AWS's signatures; where a test needs a message AWS never
//! signed (an ALARM for the captured OK, a confirmation with a reachable SubscribeURL), it
//! signs it with a key and certificate made here, pinned or served by the double.

use crate::hooks::{alarms_of, deliver, fixture, integration, open_incidents};
use crate::support::{TestApp, spawn_app_with};
use axum::extract::{OriginalUri, State};
use base64::Engine as _;
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use openssl::x509::{X509, X509NameBuilder};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tocsin::clock::Clock;

/// The test servers' clock.
const NOW: &str = "2026-03-04T10:00:00Z";

/// `days` after the test servers' clock, for a certificate's validity.
fn days_from_clock(days: i64) -> Asn1Time {
    let now: tocsin_sdk::time::Timestamp = NOW.parse().unwrap();
    Asn1Time::from_unix(now.timestamp() + days * 86_400).unwrap()
}

const CERT_URL: &str = "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-tocsin.pem";

/// A signing key and its self-signed certificate, like SNS's.
struct SigningKey {
    key: PKey<Private>,
    pem: String,
}

impl SigningKey {
    /// Valid from a day before the test server's clock to a day after.
    fn new() -> Self {
        Self::valid(days_from_clock(-1), days_from_clock(1))
    }

    /// Valid until a day before the test server's clock.
    fn expired() -> Self {
        Self::valid(days_from_clock(-10), days_from_clock(-1))
    }

    fn valid(not_before: Asn1Time, not_after: Asn1Time) -> Self {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "sns.amazonaws.com")
            .unwrap();
        let name = name.build();
        let mut cert = X509::builder().unwrap();
        cert.set_version(2).unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(&name).unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(&not_before).unwrap();
        cert.set_not_after(&not_after).unwrap();
        cert.sign(&key, MessageDigest::sha256()).unwrap();
        let pem = String::from_utf8(cert.build().to_pem().unwrap()).unwrap();
        Self { key, pem }
    }

    /// Signs `message` as SNS does: `Name\nvalue\n` for each signed field present, in
    /// byte order of the names; version 1 with SHA1, 2 with SHA256.
    fn sign(&self, mut message: Value, version: &str) -> Vec<u8> {
        let fields: &[&str] = if message["Type"] == "Notification" {
            &[
                "Message",
                "MessageId",
                "Subject",
                "Timestamp",
                "TopicArn",
                "Type",
            ]
        } else {
            &[
                "Message",
                "MessageId",
                "SubscribeURL",
                "Timestamp",
                "Token",
                "TopicArn",
                "Type",
            ]
        };
        let signed: String = fields
            .iter()
            .filter_map(|f| Some(format!("{f}\n{}\n", message.get(*f)?.as_str()?)))
            .collect();
        let digest = match version {
            "1" => MessageDigest::sha1(),
            _ => MessageDigest::sha256(),
        };
        let mut signer = Signer::new(digest, &self.key).unwrap();
        let signature = signer.sign_oneshot_to_vec(signed.as_bytes()).unwrap();
        message["SignatureVersion"] = json!(version);
        message["Signature"] = json!(base64::engine::general_purpose::STANDARD.encode(signature));
        message.to_string().into_bytes()
    }
}

/// A loopback stand-in for SNS endpoints: serves certificates by path and records every
/// request (path and query).
struct SnsDouble {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

type Certificates = Arc<HashMap<String, String>>;

impl SnsDouble {
    async fn start(certificates: HashMap<String, String>) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let app = axum::Router::new()
            .fallback(
                move |State(certificates): State<Certificates>, OriginalUri(uri): OriginalUri| {
                    let seen = seen.clone();
                    async move {
                        seen.lock().unwrap().push(uri.to_string());
                        match certificates.get(uri.path()) {
                            Some(pem) => (StatusCode::OK, pem.clone()),
                            None if uri.query().is_some() => {
                                (StatusCode::OK, "<ConfirmSubscriptionResponse/>".into())
                            }
                            None => (StatusCode::NOT_FOUND, String::new()),
                        }
                    }
                },
            )
            .with_state(Arc::new(certificates));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base,
            requests,
            task,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

async fn sns_app(double: &SnsDouble) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let base = double.base.clone();
    spawn_app_with(dir, Clock::manual(NOW.parse().unwrap()), move |config| {
        config.sns_api_base = Some(base)
    })
    .await
}

/// The captured CloudWatch OK notification, turned to `state` for `alarm`, with a new
/// MessageId and our certificate URL.
fn cloudwatch(state: &str, alarm: &str, message_id: &str) -> Value {
    let mut message: Value =
        serde_json::from_slice(&fixture("aws-sns_cloudwatch-alarm-OK.json")).unwrap();
    let mut inner: Value = serde_json::from_str(message["Message"].as_str().unwrap()).unwrap();
    inner["NewStateValue"] = json!(state);
    inner["AlarmName"] = json!(alarm);
    inner["AlarmArn"] = json!(format!(
        "arn:aws:cloudwatch:ap-northeast-1:257706363616:alarm:{alarm}"
    ));
    message["Message"] = json!(inner.to_string());
    message["Subject"] = json!(format!("{state}: \"{alarm}\" in Asia Pacific (Tokyo)"));
    message["MessageId"] = json!(message_id);
    message["SigningCertURL"] = json!(CERT_URL);
    message
}

fn message_of(response: &Value) -> &str {
    response["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_cloudwatch_alarms_open_and_close_incidents_and_forgeries_change_nothing() {
    let double = SnsDouble::start(HashMap::new()).await;
    let app = sns_app(&double).await;
    let signer = SigningKey::new();
    let (id, secret, alert) =
        integration(&app, "aws-sns", json!({"pinnedCertificates": [signer.pem]})).await;
    let arn = "arn:aws:cloudwatch:ap-northeast-1:257706363616:alarm:ec2CPUUtilization";

    // ALARM, signed with SHA256 (version 2): FIRING, an incident.
    let alarm = signer.sign(cloudwatch("ALARM", "ec2CPUUtilization", "m-1"), "2");
    let (status, response) = deliver(&app, &id, &secret, alarm.clone()).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["alarms"], 1);
    let opened = open_incidents(&app, &alert, 1).await;
    assert_eq!(opened[0]["subject"], format!("{id}:{arn}"));
    let stored = alarms_of(&app, &id).await;
    let attributes = &stored[0]["attributes"];
    assert_eq!(attributes["state"], "FIRING");
    assert_eq!(attributes["source"], "aws-sns");
    assert_eq!(
        attributes["resource"],
        "AWS/EC2 CPUUtilization AutoScalingGroupName=eks-6ebcce7e-400b-8a69-f0e9-d9e14bb635d2"
    );
    assert_eq!(attributes["startedAt"], "2021-06-18T07:28:21.921+00:00");

    // SNS retries with the same MessageId: a duplicate.
    let (status, response) = deliver(&app, &id, &secret, alarm.clone()).await;
    assert_eq!(
        (status, &response["duplicate"]),
        (StatusCode::OK, &json!(true))
    );

    // Tampered after signing (the state, the subject), or signed by someone else: 400,
    // kept for the admin, and nothing changes.
    let before = (alarms_of(&app, &id).await, app.incidents_of(&alert).await);
    let mut tampered: Value = serde_json::from_slice(&alarm).unwrap();
    tampered["Message"] = json!(
        tampered["Message"]
            .as_str()
            .unwrap()
            .replace("\"ALARM\"", "\"OK\"")
    );
    tampered["MessageId"] = json!("m-2");
    let mut resubjected: Value = serde_json::from_slice(&alarm).unwrap();
    resubjected["Subject"] = json!("OK: all is well");
    let stranger = SigningKey::new().sign(cloudwatch("OK", "ec2CPUUtilization", "m-3"), "1");
    for forged in [
        tampered.to_string().into_bytes(),
        resubjected.to_string().into_bytes(),
        stranger,
    ] {
        let (status, response) = deliver(&app, &id, &secret, forged).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{response}");
        assert!(
            message_of(&response).contains("signature does not verify"),
            "{response}"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        (alarms_of(&app, &id).await, app.incidents_of(&alert).await),
        before
    );
    let rejected = app.get(&format!("/integrations/{id}/rejected")).await;
    assert_eq!(rejected["data"].as_array().unwrap().len(), 3, "{rejected}");

    // INSUFFICIENT_DATA is recorded, never raised.
    let unsure = signer.sign(cloudwatch("INSUFFICIENT_DATA", "diskQueue", "m-4"), "1");
    let (status, _) = deliver(&app, &id, &secret, unsure).await;
    assert_eq!(status, StatusCode::OK);
    let diskqueue = alarms_of(&app, &id)
        .await
        .into_iter()
        .find(|a| {
            a["entityId"]
                .as_str()
                .unwrap()
                .ends_with(":alarm:diskQueue")
        })
        .unwrap();
    assert_eq!(diskqueue["attributes"]["state"], "INSUFFICIENT_DATA");

    // A signed message that is not a CloudWatch alarm: 400, naming why.
    let mut hello: Value =
        serde_json::from_slice(&fixture("aws-sns_notification-signed-v1.json")).unwrap();
    hello["MessageId"] = json!("m-5");
    let (status, response) = deliver(&app, &id, &secret, signer.sign(hello, "1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message_of(&response).contains("not a CloudWatch alarm"),
        "{response}"
    );

    // The captured OK, as AWS sent it but signed by our key (version 1): RESOLVED, the
    // incident closes, and the diskQueue alarm never opened one.
    let mut ok: Value =
        serde_json::from_slice(&fixture("aws-sns_cloudwatch-alarm-OK.json")).unwrap();
    ok["SigningCertURL"] = json!(CERT_URL);
    let (status, response) = deliver(&app, &id, &secret, signer.sign(ok, "1")).await;
    assert_eq!((status, &response["alarms"]), (StatusCode::OK, &json!(1)));
    open_incidents(&app, &alert, 0).await;
    let incidents = app.incidents_of(&alert).await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["status"], "CLOSED");
    assert!(double.requests().is_empty(), "pinned: nothing fetched");
    app.stop().await;
    double.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificates_vouch_for_nothing() {
    let expired = SigningKey::expired();
    let double = SnsDouble::start(HashMap::from([(
        "/SimpleNotificationService-tocsin.pem".to_owned(),
        expired.pem.clone(),
    )]))
    .await;
    let app = sns_app(&double).await;

    // Pinning an expired certificate: refused, naming it, and no integration is made.
    let fresh = SigningKey::new();
    let (status, body) = app
        .call(
            Method::POST,
            "/integrations",
            Some(crate::support::ADMIN_KEY),
            Some(json!({"name": "sns", "kind": "aws-sns", "pinnedCertificates": [fresh.pem, expired.pem]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        message_of(&body).contains("pinnedCertificates[1] expired on"),
        "{body}"
    );
    assert!(
        app.get("/integrations").await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Fetched from SigningCertURL and expired: the delivery is refused, though the
    // signature checks out with its key, and nothing is stored.
    let (id, secret, alert) = integration(&app, "aws-sns", json!({})).await;
    let alarm = expired.sign(cloudwatch("ALARM", "cpu", "e-1"), "2");
    let (status, response) = deliver(&app, &id, &secret, alarm).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{response}");
    assert!(
        message_of(&response).contains(&format!("the certificate at {CERT_URL} is expired on")),
        "{response}"
    );

    // Pinned ahead of a rotation, not valid yet: its signatures are refused until it is,
    // saying so; the other pinned certificate still verifies its own.
    let next = SigningKey::valid(days_from_clock(2), days_from_clock(30));
    let (pinned_id, pinned_secret, _) = integration(
        &app,
        "aws-sns",
        json!({"pinnedCertificates": [fresh.pem, next.pem]}),
    )
    .await;
    let alarm = next.sign(cloudwatch("ALARM", "cpu", "e-2"), "2");
    let (status, response) = deliver(&app, &pinned_id, &pinned_secret, alarm).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{response}");
    assert!(
        message_of(&response).contains("pinned certificate 1 is not valid before"),
        "{response}"
    );
    let alarm = fresh.sign(cloudwatch("ALARM", "cpu", "e-3"), "2");
    let (status, response) = deliver(&app, &pinned_id, &pinned_secret, alarm).await;
    assert_eq!(status, StatusCode::OK, "{response}");

    assert!(alarms_of(&app, &id).await.is_empty());
    open_incidents(&app, &alert, 0).await;
    app.stop().await;
    double.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_fetched_only_from_sns_endpoints_and_then_cached() {
    let signer = SigningKey::new();
    let double = SnsDouble::start(HashMap::from([(
        "/SimpleNotificationService-tocsin.pem".to_owned(),
        signer.pem.clone(),
    )]))
    .await;
    let app = sns_app(&double).await;
    let (id, secret, alert) = integration(&app, "aws-sns", json!({})).await;

    for (n, message_id) in ["c-1", "c-2"].into_iter().enumerate() {
        let alarm = signer.sign(cloudwatch("ALARM", &format!("a{n}"), message_id), "2");
        let (status, response) = deliver(&app, &id, &secret, alarm).await;
        assert_eq!(status, StatusCode::OK, "{response}");
    }
    open_incidents(&app, &alert, 2).await;
    assert_eq!(
        double.requests(),
        ["/SimpleNotificationService-tocsin.pem"],
        "fetched once, then cached"
    );

    // Certificate URLs off SNS endpoints are never fetched (the double would see them:
    // everything for SNS goes to it).
    for url in [
        "https://evil.example/SimpleNotificationService-tocsin.pem",
        "http://sns.us-east-2.amazonaws.com/SimpleNotificationService-tocsin.pem",
        "https://sns.us-east-2.amazonaws.com.evil.example/SimpleNotificationService-tocsin.pem",
        "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-tocsin.txt",
    ] {
        let mut message = cloudwatch("ALARM", "a9", "c-9");
        message["SigningCertURL"] = json!(url);
        let (status, response) = deliver(&app, &id, &secret, signer.sign(message, "2")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {response}");
        assert!(
            message_of(&response).contains("SigningCertURL"),
            "{response}"
        );
    }
    assert_eq!(double.requests().len(), 1);

    // SNS unreachable (the double has no such certificate): 502, so SNS retries; it is
    // not a bad delivery.
    let mut message = cloudwatch("ALARM", "a9", "c-10");
    message["SigningCertURL"] =
        json!("https://sns.us-east-2.amazonaws.com/SimpleNotificationService-gone.pem");
    let (status, response) = deliver(&app, &id, &secret, signer.sign(message, "2")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{response}");
    let rejected = app.get(&format!("/integrations/{id}/rejected")).await;
    assert_eq!(rejected["data"].as_array().unwrap().len(), 4, "{rejected}");
    assert_eq!(alarms_of(&app, &id).await.len(), 2);
    app.stop().await;
    double.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_confirmed_only_on_sns_endpoints_and_unsubscriptions_never_followed() {
    let double = SnsDouble::start(HashMap::new()).await;
    let app = sns_app(&double).await;
    let signer = SigningKey::new();
    let (id, secret, _) =
        integration(&app, "aws-sns", json!({"pinnedCertificates": [signer.pem]})).await;
    let captured: Value =
        serde_json::from_slice(&fixture("aws-sns_subscription-confirmation.json")).unwrap();

    // Signed by us: the SubscribeURL (on sns.us-west-2.amazonaws.com) is fetched.
    let (status, response) = deliver(&app, &id, &secret, signer.sign(captured.clone(), "1")).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(
        response["acknowledged"],
        "subscription to arn:aws:sns:us-west-2:123456789012:MyTopic confirmed"
    );
    let token = captured["Token"].as_str().unwrap();
    assert_eq!(
        double.requests(),
        [format!(
            "/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token={token}"
        )]
    );

    // A SubscribeURL off SNS endpoints is refused and not fetched.
    let mut elsewhere = captured.clone();
    elsewhere["MessageId"] = json!("s-2");
    elsewhere["SubscribeURL"] = json!(format!(
        "https://evil.example/?Action=ConfirmSubscription&Token={token}"
    ));
    let (status, response) = deliver(&app, &id, &secret, signer.sign(elsewhere, "1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message_of(&response).contains("not followed"), "{response}");

    // An unsubscription is acknowledged; its SubscribeURL is not followed.
    let mut unsubscribed = captured.clone();
    unsubscribed["Type"] = json!("UnsubscribeConfirmation");
    unsubscribed["MessageId"] = json!("s-3");
    let (status, response) = deliver(&app, &id, &secret, signer.sign(unsubscribed, "2")).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert!(
        response["acknowledged"]
            .as_str()
            .unwrap()
            .starts_with("unsubscribed from")
    );
    assert_eq!(double.requests().len(), 1, "{:?}", double.requests());

    // Bad pinned certificates and pins on other kinds are refused at creation.
    for (body, problem) in [
        (
            json!({"name": "x", "kind": "aws-sns", "pinnedCertificates": ["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"]}),
            "pinnedCertificates[0] is not a PEM X.509 certificate",
        ),
        (
            json!({"name": "x", "kind": "pingdom", "pinnedCertificates": [signer.pem]}),
            "pinnedCertificates is for aws-sns integrations only",
        ),
    ] {
        let response = app
            .send(
                Method::POST,
                "/integrations",
                body,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        assert!(message_of(&response).contains(problem), "{response}");
    }
    app.stop().await;
    double.task.abort();
}
