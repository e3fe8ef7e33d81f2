//! `ownerDetails` and `entityDetails`: the owner or entity an alert is narrowed to, named
//! with Togai's key for its type (`{"accountId": "acc1"}`, `{"usageMeterId": "um1"}`) or
//! with `id`. Anything else is refused: an alert whose owner was silently dropped would
//! cover every account and phone for accounts it was never meant for.

use super::ApiError;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Longest owner or entity id, in bytes.
pub const ID_MAX_BYTES: usize = 256;

/// A request field that may be left out, and whose `null` means something other than its
/// absence (here: a mistake to report, not "every owner").
#[derive(Debug, Default, Clone, PartialEq)]
pub enum Given<T> {
    /// Not in the request.
    #[default]
    Absent,
    /// `null`.
    Null,
    /// A value.
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Given<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            None => Self::Null,
            Some(value) => Self::Value(value),
        })
    }
}

/// For `#[serde(default, deserialize_with = "present")]`: a field that may be left out but is
/// never `null` (Togai's schemas make none of their fields nullable, and a `null` that
/// silently meant "unchanged" would hide a client's bug).
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// Togai's key for an id of `type_name`: `ACCOUNT` → `accountId`, `USAGE_METER` →
/// `usageMeterId`, `UsageMeter` → `usageMeterId`.
pub fn togai_key(type_name: &str) -> String {
    let mut key = String::with_capacity(type_name.len() + 2);
    if type_name.contains(|c: char| c.is_ascii_lowercase()) {
        let mut chars = type_name.chars();
        if let Some(first) = chars.next() {
            key.extend(first.to_lowercase());
        }
        key.extend(chars.filter(|c| c.is_alphanumeric()));
    } else {
        for (i, word) in type_name.split('_').filter(|w| !w.is_empty()).enumerate() {
            let lower = word.to_ascii_lowercase();
            if i == 0 {
                key.push_str(&lower);
            } else {
                let mut chars = lower.chars();
                key.extend(chars.next().map(|c| c.to_ascii_uppercase()));
                key.push_str(chars.as_str());
            }
        }
    }
    key.push_str("Id");
    key
}

/// Which kind of thing a details field names.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// `ownerDetails`.
    Owner,
    /// `entityDetails`.
    Entity,
}

impl Kind {
    fn field(self) -> &'static str {
        match self {
            Self::Owner => "ownerDetails",
            Self::Entity => "entityDetails",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Entity => "entity",
        }
    }
}

/// Checks a details field against the template's owner or entity type (`None`: the
/// template has none). `Ok(None)` is "not narrowed".
pub fn parse(
    kind: Kind,
    given: Given<Map<String, Value>>,
    template_id: &str,
    type_name: Option<&str>,
) -> Result<Option<Map<String, Value>>, ApiError> {
    let (field, noun) = (kind.field(), kind.noun());
    let map = match given {
        Given::Absent => return Ok(None),
        Given::Null => {
            return Err(ApiError::Unprocessable(format!(
                "{field} is null: name the {noun} in an object, or leave {field} out"
            )));
        }
        Given::Value(map) => map,
    };
    // A template without an owner (or entity) type may still be handed one by `id`, for
    // its own use.
    let (key, type_name) = match type_name {
        Some(type_name) => (togai_key(type_name), type_name),
        None => ("id".to_owned(), "untyped"),
    };
    let unknown: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| *k != key && *k != "id")
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::Unprocessable(format!(
            "{field} has unknown keys {}: template {template_id}'s {noun} ({type_name}) is named with {key:?} (or \"id\")",
            unknown
                .iter()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let value = match map.len() {
        0 => {
            return Err(ApiError::Unprocessable(format!(
                "{field} is empty: name the {noun} with {key:?} (or \"id\"), or leave {field} out"
            )));
        }
        1 => map.values().next().expect("one value"),
        _ => {
            return Err(ApiError::Unprocessable(format!(
                "{field} gives both {key:?} and \"id\": give one"
            )));
        }
    };
    match value {
        Value::String(id) if !id.is_empty() && id.len() <= ID_MAX_BYTES => {}
        Value::Number(n) if n.is_u64() || n.is_i64() => {}
        other => {
            return Err(ApiError::Unprocessable(format!(
                "{field}: the {noun} id must be a string of 1 to {ID_MAX_BYTES} bytes, not {}",
                match other {
                    Value::String(_) => "that string",
                    other => super::json_kind(other),
                }
            )));
        }
    }
    Ok(Some(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn togai_keys_are_camel_case_ids() {
        assert_eq!(togai_key("ACCOUNT"), "accountId");
        assert_eq!(togai_key("USAGE_METER"), "usageMeterId");
        assert_eq!(togai_key("UsageMeter"), "usageMeterId");
        assert_eq!(togai_key("INTEGRATION"), "integrationId");
    }
}
