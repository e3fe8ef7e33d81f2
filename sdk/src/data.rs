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

impl Entity {
    /// `TYPE id`, for messages.
    pub fn label(&self) -> String {
        format!("{} {}", self.entity_type, self.entity_id)
    }

    fn attribute(&self, name: &str) -> Result<&Value, DataError> {
        match self.attributes.get(name) {
            None | Some(Value::Null) => Err(DataError::new(format!(
                "{} has no `{name}` attribute",
                self.label()
            ))),
            Some(value) => Ok(value),
        }
    }

    fn malformed(&self, name: &str, value: &Value, expected: &str) -> DataError {
        DataError::new(format!(
            "{} attribute `{name}` is {value}, expected {expected}",
            self.label()
        ))
    }

    /// A decimal attribute, given as a JSON number or a string.
    ///
    /// ```
    /// # use tocsin_sdk::Entity;
    /// let e: Entity = serde_json::from_value(serde_json::json!({
    ///     "entityType": "CREDIT", "entityId": "c1", "attributes": {"balance": "12.5", "granted": "x"}
    /// })).unwrap();
    /// assert_eq!(e.decimal("balance").unwrap(), "12.5".parse().unwrap());
    /// assert!(e.decimal("granted").unwrap_err().to_string().contains("expected a decimal"));
    /// assert!(e.decimal("missing").unwrap_err().to_string().contains("no `missing`"));
    /// ```
    pub fn decimal(&self, name: &str) -> Result<Decimal, DataError> {
        let value = self.attribute(name)?;
        let parsed = match value {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.to_string().parse().ok(),
            _ => None,
        };
        parsed.ok_or_else(|| self.malformed(name, value, "a decimal"))
    }

    /// A string attribute.
    pub fn text(&self, name: &str) -> Result<&str, DataError> {
        let value = self.attribute(name)?;
        value
            .as_str()
            .ok_or_else(|| self.malformed(name, value, "a string"))
    }

    /// A string attribute, or `None` when it is absent. Present but not a string is an error.
    pub fn optional_text(&self, name: &str) -> Result<Option<&str>, DataError> {
        match self.attributes.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.text(name).map(Some),
        }
    }

    /// An instant attribute: an RFC 3339 timestamp, or a `YYYY-MM-DD` date meaning midnight
    /// UTC.
    pub fn instant(&self, name: &str) -> Result<Timestamp, DataError> {
        let value = self.attribute(name)?;
        value
            .as_str()
            .and_then(parse_instant)
            .ok_or_else(|| self.malformed(name, value, "an RFC 3339 timestamp or a date"))
    }
}
