//! `X-Twilio-Signature`: HMAC-SHA1, keyed with the auth token, over the full URL followed by
//! each POST parameter's name and value, names sorted. Base64.
//!
//! A JSON body is not appended; its SHA-256 travels in the URL as `bodySHA256` instead.
//! Twilio may sign with or without the default port in the URL, so a validator accepts both.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

type HmacSha1 = Hmac<Sha1>;

/// The signature Twilio computes for a request to `url` with these form parameters.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key");
    mac.update(url.as_bytes());
    // Names sorted; a name's values sorted and de-duplicated, as Twilio's own validators do.
    let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, value) in params {
        by_name.entry(name).or_default().push(value);
    }
    for (name, mut values) in by_name {
        values.sort_unstable();
        values.dedup();
        for value in values {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
    }
    mac
}

/// Whether `signature` is Twilio's for a request to `url` carrying `params` (a form body) or
/// `body` (a JSON body, whose hash the URL's `bodySHA256` names).
pub fn is_valid(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    body: Option<&[u8]>,
    signature: &str,
) -> bool {
    let Ok(signature) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let mut params = params;
    if let Some(expected) = query_value(url, "bodySHA256") {
        let actual = hex::encode(Sha256::digest(body.unwrap_or_default()));
        if !actual.eq_ignore_ascii_case(&expected) {
            return false;
        }
        params = &[];
    }
    [without_port(url), with_port(url)]
        .into_iter()
        .flatten()
        .chain(std::iter::once(url.to_owned()))
        .any(|candidate| {
            mac(auth_token, &candidate, params)
                .verify_slice(&signature)
                .is_ok()
        })
}

fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// `url` split around its authority's host and port: (before the port, port, after).
fn split_port(url: &str) -> Option<(&str, Option<&str>, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host_and_port = &authority[host_start..];
    // A colon after any IPv6 literal's closing bracket starts the port.
    let bracket = host_and_port.rfind(']').map_or(0, |b| b + 1);
    let port = host_and_port[bracket..]
        .rfind(':')
        .map(|colon| host_start + bracket + colon);
    let head_len = scheme.len() + 3;
    match port {
        Some(colon) => Some((
            &url[..head_len + colon],
            Some(&authority[colon + 1..]),
            tail,
            scheme,
        )),
        None => Some((&url[..head_len + authority.len()], None, tail, scheme)),
    }
}

/// `url` without its port, when it has one.
fn without_port(url: &str) -> Option<String> {
    let (head, port, tail, _) = split_port(url)?;
    port.map(|_| format!("{head}{tail}"))
}

/// `url` with its scheme's default port, when it has no port.
fn with_port(url: &str) -> Option<String> {
    let (head, port, tail, scheme) = split_port(url)?;
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    port.is_none().then(|| format!("{head}:{default}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_added_and_removed_around_the_host() {
        assert_eq!(
            with_port("https://a.example/x?y=1").as_deref(),
            Some("https://a.example:443/x?y=1")
        );
        assert_eq!(
            without_port("https://u:p@a.example:443/x").as_deref(),
            Some("https://u:p@a.example/x")
        );
        assert_eq!(
            without_port("http://[::1]:8080").as_deref(),
            Some("http://[::1]")
        );
        assert_eq!(without_port("http://[::1]/x"), None);
    }
}
