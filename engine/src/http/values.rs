//! What a template can read: request bodies are refused at the edge when they hold a value
//! no template could ever use, instead of being stored and turned into "no data" at every
//! evaluation after.
//!
//! One pass over the (already well-formed) JSON text checks that nesting stays within
//! [`DEPTH_LIMIT`], that every number is one a decimal holds exactly as written (templates
//! read numbers from their text, as [`tocsin_sdk::Decimal`]), and that no string carries
//! an unpaired UTF-16 surrogate escape (`"\ud800"`), which no Rust string can hold.

use super::ApiError;
use std::str::FromStr;

/// Deepest nesting of objects and arrays in a body. Entity attributes are flat records in
/// practice; serde_json's own limit is 128.
pub const DEPTH_LIMIT: usize = 32;

/// Checks `text`, a JSON document, as above; the error names the key the value was under.
pub fn check(text: &[u8]) -> Result<(), ApiError> {
    let mut depth = 0usize;
    let mut last_key: Option<(usize, usize)> = None;
    let mut i = 0;
    let at = |key: Option<(usize, usize)>| match key {
        Some((start, end)) => format!(" (at {:?})", String::from_utf8_lossy(&text[start..end])),
        None => String::new(),
    };
    while i < text.len() {
        match text[i] {
            b'{' | b'[' => {
                depth += 1;
                if depth > DEPTH_LIMIT {
                    return Err(ApiError::Unprocessable(format!(
                        "the body nests deeper than {DEPTH_LIMIT} levels{}",
                        at(last_key)
                    )));
                }
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'"' => {
                let start = i + 1;
                i = start;
                while i < text.len() && text[i] != b'"' {
                    if text[i] == b'\\' {
                        if text.get(i + 1) == Some(&b'u') {
                            let unit = hex4(text, i + 2);
                            match unit {
                                Some(0xD800..=0xDBFF) => {
                                    let low = (text.get(i + 6) == Some(&b'\\')
                                        && text.get(i + 7) == Some(&b'u'))
                                    .then(|| hex4(text, i + 8))
                                    .flatten();
                                    if !matches!(low, Some(0xDC00..=0xDFFF)) {
                                        return Err(lone_surrogate(at(last_key)));
                                    }
                                    i += 12;
                                    continue;
                                }
                                Some(0xDC00..=0xDFFF) => return Err(lone_surrogate(at(last_key))),
                                _ => {}
                            }
                        }
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
                let end = i.min(text.len());
                i += 1;
                // A string followed by a colon is a key.
                let mut j = i;
                while j < text.len() && text[j].is_ascii_whitespace() {
                    j += 1;
                }
                if text.get(j) == Some(&b':') {
                    last_key = Some((start, end));
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < text.len()
                    && matches!(text[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let number = std::str::from_utf8(&text[start..i]).unwrap_or_default();
                if tocsin_sdk::Decimal::from_str(number).is_err() {
                    return Err(ApiError::Unprocessable(format!(
                        "the number {number}{} is beyond what a decimal holds: at most 28 significant digits and 28 decimal places, below 7.9e28; send it as a string if it is not a quantity",
                        at(last_key)
                    )));
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// The OpenAPI schema of a decimal: a string of digits (as the SDK writes it) or a JSON
/// number; absent or null for none.
pub fn decimal_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some(
            r"^\s*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$",
        )))
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "A decimal number, as a string such as \"12.50\" or a JSON number",
        ))
        .build()
        .into()
}

fn hex4(text: &[u8], at: usize) -> Option<u32> {
    let digits = std::str::from_utf8(text.get(at..at + 4)?).ok()?;
    u32::from_str_radix(digits, 16).ok()
}

fn lone_surrogate(at: String) -> ApiError {
    ApiError::Unprocessable(format!(
        "a string{at} holds an unpaired UTF-16 surrogate escape, which is not text"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        match check(text.as_bytes()) {
            Err(e) => e.to_string(),
            Ok(()) => panic!("{text} was accepted"),
        }
    }

    #[test]
    fn readable_values_pass() {
        for ok in [
            r#"{"a": 1, "b": -2.5e3, "c": "1e999", "d": [1, {"e": null}], "f": "\ud83d\ude00 \u00e9 \\u"}"#,
            r#"{"n": 79228162514264337593543950335, "s": 0.0000000000000000000000000001}"#,
        ] {
            check(ok.as_bytes()).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn what_no_template_can_read_is_refused_naming_its_key() {
        assert!(refused(r#"{"balance": 1e30}"#).contains(r#"1e30 (at "balance")"#));
        assert!(refused(r#"{"x": 99999999999999999999999999999999}"#).contains("beyond"));
        assert!(refused(r#"{"name": "a\ud800b"}"#).contains(r#"(at "name") holds an unpaired"#));
        assert!(refused(r#"{"name": "\udc00"}"#).contains("unpaired"));
        let deep = format!("{{\"a\": {}{}}}", "[".repeat(40), "]".repeat(40));
        assert!(refused(&deep).contains("deeper than 32"));
    }
}
