//! Reading entity attributes, with errors that say which entity and attribute were wrong.

use crate::Context;
use crate::time::{Timestamp, parse_instant};
use crate::{Decimal, Entity};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// Entities grouped by owner id, in owner order. When the alert names an owner, that owner
/// is present even with no entities, so a template can say something about it.
///
/// ```
/// # use tocsin_sdk::{group_by_owner, Context, Entity};
/// let e: Entity = serde_json::from_value(serde_json::json!({
///     "entityType": "INVOICE", "entityId": "i1", "ownerId": "acc2"})).unwrap();
/// let ctx = Context::at("2026-03-01T00:00:00Z".parse().unwrap()).owned_by("acc1");
/// let groups = group_by_owner(&ctx, std::slice::from_ref(&e));
/// assert_eq!(groups.keys().copied().collect::<Vec<_>>(), ["acc1", "acc2"]);
/// assert!(groups["acc1"].is_empty());
/// ```
pub fn group_by_owner<'a>(
    ctx: &'a Context,
    entities: &'a [Entity],
) -> BTreeMap<&'a str, Vec<&'a Entity>> {
    let mut groups: BTreeMap<&str, Vec<&Entity>> = BTreeMap::new();
    if let Some(owner) = &ctx.owner_id {
        groups.entry(owner.as_str()).or_default();
    }
    for entity in entities {
        groups
            .entry(entity.owner_id.as_deref().unwrap_or_default())
            .or_default()
            .push(entity);
    }
    groups
}

/// Why data could not be judged: missing or malformed. It becomes a "no data" finding, which
/// never opens or closes an incident.
///
/// ```
/// # use tocsin_sdk::DataError;
/// let e = DataError::new("account acc1 has no CREDIT entities");
/// assert_eq!(e.to_string(), "account acc1 has no CREDIT entities");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError(String);

impl DataError {
    /// A reason in plain words.
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }

    /// The reason.
    pub fn into_message(self) -> String {
        self.0
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DataError {}

/// The text of a JSON string without escapes, borrowed from its JSON text; `None` for
/// anything else.
fn unquoted(raw: &str) -> Option<&str> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then_some(inner)
}

impl Entity {
    /// `TYPE id`, for messages.
    pub fn label(&self) -> String {
        format!("{} {}", self.entity_type, self.entity_id)
    }

    /// The JSON text of attribute `name`; absent and `null` are both missing.
    fn attribute(&self, name: &str) -> Result<&str, DataError> {
        match self.attributes.raw(name) {
            None | Some("null") => Err(DataError::new(format!(
                "{} has no `{name}` attribute",
                self.label()
            ))),
            Some(raw) => Ok(raw),
        }
    }

    fn malformed(&self, name: &str, raw: &str, expected: &str) -> DataError {
        DataError::new(format!(
            "{} attribute `{name}` is {raw}, expected {expected}",
            self.label()
        ))
    }

    /// A decimal attribute, given as a JSON number or a string. A number is read from its
    /// text, so every digit counts, however many there are.
    ///
    /// ```
    /// # use tocsin_sdk::{Attributes, Entity};
    /// let mut e: Entity = serde_json::from_value(serde_json::json!({
    ///     "entityType": "CREDIT", "entityId": "c1", "attributes": {"balance": "12.5", "granted": "x"}
    /// })).unwrap();
    /// assert_eq!(e.decimal("balance").unwrap(), "12.5".parse().unwrap());
    /// assert!(e.decimal("granted").unwrap_err().to_string().contains("expected a decimal"));
    /// assert!(e.decimal("missing").unwrap_err().to_string().contains("no `missing`"));
    /// e.attributes = Attributes::from_json(r#"{"balance": 1234567890.123456789}"#.to_owned());
    /// assert_eq!(e.decimal("balance").unwrap().to_string(), "1234567890.123456789");
    /// ```
    pub fn decimal(&self, name: &str) -> Result<Decimal, DataError> {
        let raw = self.attribute(name)?;
        let parsed = if raw.starts_with('"') {
            self.string(name, raw).and_then(|s| s.parse().ok())
        } else if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            raw.parse().ok()
        } else {
            None
        };
        parsed.ok_or_else(|| self.malformed(name, raw, "a decimal"))
    }

    /// The string that attribute `name`, whose JSON text is `raw`, holds; `None` when it is
    /// not a string.
    fn string<'a>(&'a self, name: &str, raw: &'a str) -> Option<&'a str> {
        match unquoted(raw) {
            Some(text) => Some(text),
            // Escapes must be undone, which the parsed map has done.
            None if raw.starts_with('"') => self.attributes.get(name).and_then(Value::as_str),
            None => None,
        }
    }

    /// A string attribute.
    pub fn text(&self, name: &str) -> Result<&str, DataError> {
        let raw = self.attribute(name)?;
        self.string(name, raw)
            .ok_or_else(|| self.malformed(name, raw, "a string"))
    }

    /// A string attribute, or `None` when it is absent. Present but not a string is an error.
    pub fn optional_text(&self, name: &str) -> Result<Option<&str>, DataError> {
        match self.attributes.raw(name) {
            None | Some("null") => Ok(None),
            Some(raw) => self
                .string(name, raw)
                .map(Some)
                .ok_or_else(|| self.malformed(name, raw, "a string")),
        }
    }

    /// An instant attribute: an RFC 3339 timestamp, or a `YYYY-MM-DD` date meaning midnight
    /// UTC.
    pub fn instant(&self, name: &str) -> Result<Timestamp, DataError> {
        let raw = self.attribute(name)?;
        self.string(name, raw)
            .and_then(parse_instant)
            .ok_or_else(|| self.malformed(name, raw, "an RFC 3339 timestamp or a date"))
    }
}

#[cfg(test)]
mod tests {
    use crate::{Attributes, Entity};

    fn entity(attributes: &str) -> Entity {
        let mut e: Entity = serde_json::from_value(serde_json::json!({
            "entityType": "CREDIT", "entityId": "c1"
        }))
        .unwrap();
        e.attributes = Attributes::from_json(attributes.to_owned());
        e
    }

    #[test]
    fn attributes_read_from_their_text() {
        let e = entity(
            r#" { "a\u0062": "x\"y", "n": -0.30000000000000000001, "s": "1e2",
                  "d": null, "dup": "1", "dup": "2", "o": {"k": [1, 2]} } "#,
        );
        assert_eq!(e.text("ab").unwrap(), "x\"y", "escaped key and value");
        assert_eq!(
            e.decimal("n").unwrap().to_string(),
            "-0.30000000000000000001"
        );
        assert_eq!(e.decimal("s").unwrap().to_string(), "100");
        assert_eq!(
            e.decimal("dup").unwrap().to_string(),
            "2",
            "the last one counts"
        );
        assert!(e.decimal("d").unwrap_err().to_string().contains("no `d`"));
        assert_eq!(e.optional_text("d").unwrap(), None);
        assert_eq!(
            e.text("o").unwrap_err().to_string(),
            r#"CREDIT c1 attribute `o` is {"k": [1, 2]}, expected a string"#
        );
        assert!(e.decimal("o").is_err());
    }

    #[test]
    fn text_that_is_not_an_object_has_no_attributes() {
        for text in ["[1, 2]", "12", "{\"a\": 1", "{\"a\": 1} x", ""] {
            assert!(entity(text).decimal("a").is_err(), "{text}");
        }
    }
}
