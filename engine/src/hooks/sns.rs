//! Amazon SNS deliveries: the message envelope, its signature (versions 1 and 2), the
//! signing certificate (pinned by the integration, or fetched from an SNS endpoint and
//! cached), and subscription confirmation.
//!
//! Nothing in a message is acted on before its signature verifies with a certificate that
//! is valid now (by the server's clock), and Tocsin only ever fetches URLs on an SNS endpoint
//! of AWS (`https://sns.<region>.amazonaws.com[.cn]/…`), so a forged message cannot make the
//! server fetch anything else.

use super::adapters::{self, Delivery};
use base64::Engine as _;
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use openssl::sign::Verifier;
use openssl::x509::X509;
use reqwest::Url;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tocsin_sdk::time::Timestamp;

/// Signing certificates kept, by URL (SNS uses a handful).
const CACHED_CERTIFICATES: usize = 64;
/// Largest certificate file fetched.
const CERTIFICATE_LIMIT: usize = 16 << 10;

/// An SNS message as posted to an HTTP(S) subscription.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Message {
    /// `Notification`, `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Unique per message; SNS reuses it when it retries.
    pub message_id: String,
    /// The topic.
    pub topic_arn: String,
    /// Notifications only, when the publisher set one.
    pub subject: Option<String>,
    /// The payload: for CloudWatch alarms, a JSON document.
    pub message: String,
    /// When SNS sent it.
    pub timestamp: String,
    /// `1` (SHA1withRSA) or `2` (SHA256withRSA).
    pub signature_version: String,
    /// Base64.
    pub signature: String,
    /// Where the signing certificate is.
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    /// Confirmations: the URL that confirms the subscription.
    #[serde(rename = "SubscribeURL")]
    pub subscribe_url: Option<String>,
    /// Confirmations: the subscription token.
    pub token: Option<String>,
}

impl Message {
    /// Reads a delivery's body.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(body).map_err(|e| format!("not an SNS message: {e}"))
    }

    /// What SNS signed: the message's fields, in byte order of their names, each as
    /// `Name\nvalue\n`; which fields depends on the type.
    pub fn string_to_sign(&self) -> Result<String, String> {
        let missing = |name: &str| format!("{name} is missing from a {}", self.kind);
        let fields = match self.kind.as_str() {
            "Notification" => vec![
                ("Message", Some(self.message.as_str())),
                ("MessageId", Some(self.message_id.as_str())),
                ("Subject", self.subject.as_deref()),
                ("Timestamp", Some(self.timestamp.as_str())),
                ("TopicArn", Some(self.topic_arn.as_str())),
                ("Type", Some(self.kind.as_str())),
            ],
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => vec![
                ("Message", Some(self.message.as_str())),
                ("MessageId", Some(self.message_id.as_str())),
                (
                    "SubscribeURL",
                    Some(
                        self.subscribe_url
                            .as_deref()
                            .ok_or_else(|| missing("SubscribeURL"))?,
                    ),
                ),
                ("Timestamp", Some(self.timestamp.as_str())),
                (
                    "Token",
                    Some(self.token.as_deref().ok_or_else(|| missing("Token"))?),
                ),
                ("TopicArn", Some(self.topic_arn.as_str())),
                ("Type", Some(self.kind.as_str())),
            ],
            other => return Err(format!("Type {other:?} is not an SNS message type")),
        };
        Ok(fields
            .into_iter()
            .filter_map(|(name, value)| Some(format!("{name}\n{}\n", value?)))
            .collect())
    }

    /// Whether the signature is the certificate holder's over this message.
    pub fn signed_by(&self, key: &PKey<Public>) -> Result<bool, String> {
        let digest = match self.signature_version.as_str() {
            "1" => MessageDigest::sha1(),
            "2" => MessageDigest::sha256(),
            other => return Err(format!("SignatureVersion {other:?} is not 1 or 2")),
        };
        let signature = base64::engine::general_purpose::STANDARD
            .decode(&self.signature)
            .map_err(|e| format!("Signature is not base64: {e}"))?;
        let signed = self.string_to_sign()?;
        let verified = Verifier::new(digest, key)
            .and_then(|mut v| v.verify_oneshot(&signature, signed.as_bytes()))
            .unwrap_or(false);
        Ok(verified)
    }
}

/// A signing certificate. It vouches for a signature only within its validity period: an
/// expired certificate, or one not valid yet, vouches for nothing.
#[derive(Clone)]
pub struct SigningCert {
    cert: X509,
    key: PKey<Public>,
}

impl std::fmt::Debug for SigningCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningCert")
            .field("not_before", &self.cert.not_before().to_string())
            .field("not_after", &self.cert.not_after().to_string())
            .finish_non_exhaustive()
    }
}

fn asn1(at: Timestamp) -> Result<Asn1Time, String> {
    Asn1Time::from_unix(at.timestamp()).map_err(|e| e.to_string())
}

impl SigningCert {
    /// Reads a PEM certificate.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        X509::from_pem(pem)
            .and_then(|cert| {
                Ok(Self {
                    key: cert.public_key()?,
                    cert,
                })
            })
            .map_err(|e| format!("not a PEM X.509 certificate: {e}"))
    }

    /// Whether it had expired by `at`: the date it did, if so.
    pub fn expired(&self, at: Timestamp) -> Option<String> {
        let at = asn1(at).ok()?;
        (self.cert.not_after() < at).then(|| self.cert.not_after().to_string())
    }

    /// Its key, if the certificate is valid at `at`; else why not.
    pub fn key_at(&self, at: Timestamp) -> Result<&PKey<Public>, String> {
        if let Some(date) = self.expired(at) {
            return Err(format!("expired on {date}"));
        }
        if self.cert.not_before() > asn1(at)? {
            return Err(format!("not valid before {}", self.cert.not_before()));
        }
        Ok(&self.key)
    }
}

/// Checks that `url` is on an SNS endpoint of AWS: https, host `sns.<region>.amazonaws.com`
/// (or `.amazonaws.com.cn`), default port.
pub fn sns_endpoint(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or_default();
    let region = host
        .strip_prefix("sns.")
        .and_then(|rest| {
            rest.strip_suffix(".amazonaws.com")
                .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))
        })
        .filter(|region| {
            !region.is_empty()
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if parsed.scheme() != "https" || parsed.port().is_some() || region.is_none() {
        return Err(format!(
            "{url:?} is not on an SNS endpoint of AWS (https://sns.<region>.amazonaws.com/…)"
        ));
    }
    Ok(parsed)
}

/// Why an SNS message was not taken.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The message is bad or forged: refuse it (400), and keep it for the admin.
    #[error("{0}")]
    Invalid(String),
    /// SNS could not be reached: the sender should retry (502).
    #[error("{0}")]
    Unreachable(String),
}

/// Fetches from SNS endpoints: signing certificates (cached) and subscription
/// confirmations.
#[derive(Debug)]
pub struct Sns {
    http: reqwest::Client,
    /// Where requests for SNS endpoints go instead (`TOCSIN_SNS_API_BASE`, for a local
    /// double); the URL is still checked to be an SNS endpoint first.
    redirect: Option<Url>,
    certificates: Mutex<HashMap<String, SigningCert>>,
}

impl Sns {
    /// A client; `redirect` sends SNS requests to another base URL.
    pub fn new(redirect: Option<&str>) -> Result<Self, String> {
        let redirect = redirect
            .map(|base| Url::parse(base).map_err(|e| format!("{base:?}: {e}")))
            .transpose()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            redirect,
            certificates: Mutex::new(HashMap::new()),
        })
    }

    fn target(&self, url: &Url) -> Url {
        match &self.redirect {
            None => url.clone(),
            Some(base) => {
                let mut target = base.clone();
                target.set_path(url.path());
                target.set_query(url.query());
                target
            }
        }
    }

    /// Verifies `message`: against the pinned certificates when the integration has any,
    /// else against the one at its SigningCertURL.
    pub async fn verify(
        &self,
        message: &Message,
        pinned: &[String],
        now: Timestamp,
    ) -> Result<(), Refusal> {
        if pinned.is_empty() {
            let cert = self.certificate(&message.signing_cert_url, now).await?;
            let key = cert.key_at(now).map_err(|why| {
                Refusal::Invalid(format!(
                    "the certificate at {} is {why}",
                    message.signing_cert_url
                ))
            })?;
            return match message.signed_by(key).map_err(Refusal::Invalid)? {
                true => Ok(()),
                false => Err(Refusal::Invalid(format!(
                    "the SNS signature does not verify with the certificate at {}",
                    message.signing_cert_url
                ))),
            };
        }
        let mut unusable = Vec::new();
        for (i, pem) in pinned.iter().enumerate() {
            let cert = SigningCert::from_pem(pem.as_bytes()).map_err(Refusal::Invalid)?;
            match cert.key_at(now) {
                Ok(key) => {
                    if message.signed_by(key).map_err(Refusal::Invalid)? {
                        return Ok(());
                    }
                }
                Err(why) => unusable.push(format!("pinned certificate {i} is {why}")),
            }
        }
        let mut refusal = format!(
            "the SNS signature does not verify with any of the integration's {} pinned certificates",
            pinned.len()
        );
        if !unusable.is_empty() {
            refusal.push_str(&format!(" ({})", unusable.join("; ")));
        }
        Err(Refusal::Invalid(refusal))
    }

    async fn certificate(&self, url: &str, now: Timestamp) -> Result<SigningCert, Refusal> {
        let parsed =
            sns_endpoint(url).map_err(|e| Refusal::Invalid(format!("SigningCertURL {e}")))?;
        if !parsed.path().ends_with(".pem") {
            return Err(Refusal::Invalid(format!(
                "SigningCertURL {url:?} is not a .pem file"
            )));
        }
        // A cached certificate that has expired since is fetched again: SNS may have
        // replaced the file at the same URL.
        if let Some(cert) = self.certificates.lock().expect("certificates").get(url)
            && cert.expired(now).is_none()
        {
            return Ok(cert.clone());
        }
        let unreachable =
            |e: String| Refusal::Unreachable(format!("could not fetch SigningCertURL {url}: {e}"));
        let response = self
            .http
            .get(self.target(&parsed))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| unreachable(e.to_string()))?;
        let pem = response
            .bytes()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if pem.len() > CERTIFICATE_LIMIT {
            return Err(unreachable(format!("{} bytes is too large", pem.len())));
        }
        let cert = SigningCert::from_pem(&pem)
            .map_err(|e| Refusal::Invalid(format!("SigningCertURL {url}: {e}")))?;
        tracing::info!(%url, "SNS signing certificate fetched");
        let mut cache = self.certificates.lock().expect("certificates");
        if cache.len() >= CACHED_CERTIFICATES {
            cache.clear();
        }
        cache.insert(url.to_owned(), cert.clone());
        Ok(cert)
    }

    /// Reads a delivery: verifies it, then returns its alarms (a notification) or what was
    /// done instead (a subscription confirmed, an unsubscription acknowledged), with the
    /// key that makes SNS's retries of the same message duplicates.
    pub async fn read(
        &self,
        body: &[u8],
        pinned: &[String],
        now: Timestamp,
    ) -> Result<(Delivery, String), Refusal> {
        let message = Message::parse(body).map_err(Refusal::Invalid)?;
        self.verify(&message, pinned, now).await?;
        let delivery = match message.kind.as_str() {
            "Notification" => {
                adapters::cloudwatch_alarm(&message.message).map_err(Refusal::Invalid)?
            }
            "SubscriptionConfirmation" => {
                self.confirm(message.subscribe_url.as_deref().unwrap_or_default())
                    .await?;
                tracing::info!(topic = %message.topic_arn, "SNS subscription confirmed");
                Delivery::Acknowledged(format!("subscription to {} confirmed", message.topic_arn))
            }
            // UnsubscribeConfirmation: verify() took no other type.
            _ => Delivery::Acknowledged(format!(
                "unsubscribed from {}; its SubscribeURL was not followed",
                message.topic_arn
            )),
        };
        Ok((delivery, format!("sns:{}", message.message_id)))
    }

    /// Confirms a subscription by fetching its SubscribeURL, which must be on an SNS
    /// endpoint.
    pub async fn confirm(&self, subscribe_url: &str) -> Result<(), Refusal> {
        let parsed = sns_endpoint(subscribe_url)
            .map_err(|e| Refusal::Invalid(format!("SubscribeURL {e}; not followed")))?;
        self.http
            .get(self.target(&parsed))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| {
                Refusal::Unreachable(format!("could not confirm the SNS subscription: {e}"))
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/webhooks"
    );

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
    }

    #[test]
    fn the_aws_vector_verifies_and_a_flipped_character_does_not() {
        let cert = SigningCert::from_pem(&fixture(
            "aws-sns_signing-cert-7ff5318490ec183fbaddaa2a969abfda.pem",
        ))
        .unwrap();
        // Valid when AWS signed the message; expired since August 2022.
        let signed_at = "2022-07-28T22:53:49Z".parse().unwrap();
        let key = cert.key_at(signed_at).unwrap();
        assert_eq!(
            cert.key_at("2022-08-18T00:00:00Z".parse().unwrap())
                .err()
                .as_deref(),
            Some("expired on Aug 17 23:59:59 2022 GMT")
        );
        assert_eq!(
            cert.key_at("2021-09-06T23:59:59Z".parse().unwrap())
                .err()
                .as_deref(),
            Some("not valid before Sep  7 00:00:00 2021 GMT")
        );
        let message = Message::parse(&fixture("aws-sns_notification-signed-v1.json")).unwrap();
        assert_eq!(message.signed_by(key), Ok(true));
        for tamper in [
            |m: &mut Message| m.message = "Hello world!".into(),
            |m: &mut Message| m.subject = Some("Hello World".into()),
            |m: &mut Message| m.subject = None,
            |m: &mut Message| m.signature_version = "2".into(),
        ] {
            let mut tampered = message.clone();
            tamper(&mut tampered);
            assert_eq!(tampered.signed_by(key), Ok(false), "{tampered:?}");
        }
    }

    #[test]
    fn only_sns_endpoints_of_aws_are_fetched() {
        for good in [
            "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-7ff5.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/x.pem",
            "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=1",
        ] {
            assert!(sns_endpoint(good).is_ok(), "{good}");
        }
        for bad in [
            "http://sns.us-east-2.amazonaws.com/x.pem",
            "https://sns.us-east-2.amazonaws.com.evil.example/x.pem",
            "https://evil.example/sns.us-east-2.amazonaws.com/x.pem",
            "https://sns.amazonaws.com/x.pem",
            "https://sqs.us-east-2.amazonaws.com/x.pem",
            "https://sns.us-east-2.amazonaws.com:8443/x.pem",
            "https://sns.us_east.amazonaws.com/x.pem",
            "https://sns.evil.example@sns.us-east-2.amazonaws.com.evil.example/x.pem",
            "https://127.0.0.1/x.pem",
            "not a url",
        ] {
            assert!(sns_endpoint(bad).is_err(), "{bad}");
        }
    }
}
