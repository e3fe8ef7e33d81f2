//! The values that cross the plugin interface, as plain Rust types.
//!
//! They mirror `sdk/wit/v1/template.wit` one for one. The host uses the same types, and
//! their JSON form (camelCase, RFC 3339 instants, decimals as strings) is the format of
//! fixtures and of `tocsin template run` input.

use crate::Decimal;
use crate::time::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

/// Who is asking and when.
///
/// ```
/// # use tocsin_sdk::Context;
/// let ctx = Context::at("2026-03-01T00:00:00Z".parse().unwrap()).owned_by("acc1");
/// assert_eq!(ctx.require_owner(), Ok("acc1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    /// The alert being evaluated.
    #[serde(default)]
    pub alert_id: String,
    /// The evaluation instant.
    pub now: Timestamp,
    /// `ownerDetails.id` of the alert.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// `entityDetails.id` of the alert.
    #[serde(default)]
    pub entity_id: Option<String>,
}

impl Context {
    /// A context at `now` with no alert, owner or entity.
    pub fn at(now: Timestamp) -> Self {
        Self {
            alert_id: String::new(),
            now,
            owner_id: None,
            entity_id: None,
        }
    }

    /// The same context scoped to an owner.
    pub fn owned_by(mut self, owner_id: impl Into<String>) -> Self {
        self.owner_id = Some(owner_id.into());
        self
    }

    /// The same context narrowed to one entity.
    pub fn for_entity(mut self, entity_id: impl Into<String>) -> Self {
        self.entity_id = Some(entity_id.into());
        self
    }

    /// The owner id, or an error for templates that cannot work without one.
    pub fn require_owner(&self) -> Result<&str, String> {
        self.owner_id
            .as_deref()
            .ok_or_else(|| "this template needs ownerDetails.id".to_owned())
    }
}

/// Latest entity snapshots matching every field that is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityQuery {
    /// The entity type, such as `CREDIT`.
    pub entity_type: String,
    /// Owner type filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_type: Option<String>,
    /// Owner id filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// Entity id filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
}

/// A string attribute that must equal a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeMatch {
    /// Attribute name.
    pub name: String,
    /// Required value.
    pub value: String,
}

/// Count and sum of the `value` of events matching every field that is set, timestamped
/// in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventQuery {
    /// Event type filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Owner type filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_type: Option<String>,
    /// Owner id filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// Entity type filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    /// Entity id filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    /// Attribute equality filters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<AttributeMatch>,
    /// Window start, inclusive.
    pub start: Timestamp,
    /// Window end, exclusive.
    pub end: Timestamp,
}

/// A piece of data a template needs.
///
/// ```
/// # use tocsin_sdk::Query;
/// let q = Query::entities("INVOICE").owned_by("ACCOUNT", "acc1");
/// let json = serde_json::to_value(&q).unwrap();
/// assert_eq!(json["entities"]["ownerId"], "acc1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Query {
    /// Latest entity snapshots.
    Entities(EntityQuery),
    /// An aggregate over events.
    Events(EventQuery),
}

impl Query {
    /// All snapshots of one entity type; narrow it with the other methods.
    pub fn entities(entity_type: impl Into<String>) -> Self {
        Self::Entities(EntityQuery {
            entity_type: entity_type.into(),
            owner_type: None,
            owner_id: None,
            entity_id: None,
        })
    }

    /// Count and sum of events timestamped in `[start, end)`; narrow it with the other
    /// methods.
    pub fn events(start: Timestamp, end: Timestamp) -> Self {
        Self::Events(EventQuery {
            event_type: None,
            owner_type: None,
            owner_id: None,
            entity_type: None,
            entity_id: None,
            attributes: Vec::new(),
            start,
            end,
        })
    }

    /// The snapshots an alert watches: entities of `entity_type` owned by the alert's owner
    /// (by every owner of `owner_type` when the alert names none), narrowed to the entity
    /// the alert names, if any.
    ///
    /// ```
    /// # use tocsin_sdk::{Context, Query};
    /// let ctx = Context::at("2026-03-01T00:00:00Z".parse().unwrap()).owned_by("acc1");
    /// assert_eq!(
    ///     Query::for_alert("INVOICE", "ACCOUNT", &ctx),
    ///     Query::entities("INVOICE").owned_by("ACCOUNT", "acc1"),
    /// );
    /// ```
    pub fn for_alert(entity_type: impl Into<String>, owner_type: &str, ctx: &Context) -> Self {
        let query = match &ctx.owner_id {
            Some(owner) => Self::entities(entity_type).owned_by(owner_type, owner.as_str()),
            None => Self::entities(entity_type).owner_type(owner_type),
        };
        query.entity_id(ctx.entity_id.as_deref())
    }

    /// Only data owned by this owner.
    pub fn owned_by(mut self, owner_type: impl Into<String>, owner_id: impl Into<String>) -> Self {
        let (ty, id) = (Some(owner_type.into()), Some(owner_id.into()));
        match &mut self {
            Self::Entities(q) => (q.owner_type, q.owner_id) = (ty, id),
            Self::Events(q) => (q.owner_type, q.owner_id) = (ty, id),
        }
        self
    }

    /// Only data of owners of this type.
    pub fn owner_type(mut self, owner_type: impl Into<String>) -> Self {
        let ty = Some(owner_type.into());
        match &mut self {
            Self::Entities(q) => q.owner_type = ty,
            Self::Events(q) => q.owner_type = ty,
        }
        self
    }

    /// Only the entity with this id, when `Some`.
    pub fn entity_id(mut self, entity_id: Option<&str>) -> Self {
        let id = entity_id.map(str::to_owned);
        match &mut self {
            Self::Entities(q) => q.entity_id = id,
            Self::Events(q) => q.entity_id = id,
        }
        self
    }

    /// Only events about entities of this type.
    pub fn entity_type(mut self, entity_type: impl Into<String>) -> Self {
        if let Self::Events(q) = &mut self {
            q.entity_type = Some(entity_type.into());
        }
        self
    }

    /// Only events of this type.
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        if let Self::Events(q) = &mut self {
            q.event_type = Some(event_type.into());
        }
        self
    }

    /// Only events whose string attribute `name` equals `value`.
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let Self::Events(q) = &mut self {
            q.attributes.push(AttributeMatch {
                name: name.into(),
                value: value.into(),
            });
        }
        self
    }
}

/// The latest snapshot of one entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entity {
    /// Entity type.
    pub entity_type: String,
    /// Entity id.
    pub entity_id: String,
    /// Owner type.
    #[serde(default)]
    pub owner_type: Option<String>,
    /// Owner id.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Attributes, as pushed by the data source.
    #[serde(default)]
    pub attributes: Attributes,
    /// When the host last stored it.
    #[serde(default = "crate::time::epoch")]
    pub updated_at: Timestamp,
}

/// Count and sum of matching events.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventAggregate {
    /// Number of events.
    pub count: u64,
    /// Sum of their `value`.
    pub sum: Decimal,
}

/// The answer to one query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Answer {
    /// Answers [`Query::Entities`].
    Entities(Vec<Entity>),
    /// Answers [`Query::Events`].
    Events(EventAggregate),
}

/// What a finding concludes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// The condition holds.
    Breached,
    /// The condition does not hold.
    Clear,
    /// The data could not be judged; the text says why.
    NoData(String),
}

impl Verdict {
    /// `Breached` when `condition` holds, else `Clear`.
    pub fn breached_if(condition: bool) -> Self {
        if condition {
            Self::Breached
        } else {
            Self::Clear
        }
    }
}

/// A finding as it crosses the interface: report data as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawFinding {
    /// Deduplication key inside the alert.
    pub subject: String,
    /// The conclusion.
    pub verdict: Verdict,
    /// Report data, a JSON object (empty when there is no data).
    pub report: Value,
    /// One line for people and phone calls.
    pub summary: String,
}

/// What a template says about itself, as it crosses the interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateInfo {
    /// Template id.
    pub id: String,
    /// Template version.
    pub version: String,
    /// Human name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Entity type watched.
    pub entity_type: Option<String>,
    /// Owner type.
    pub owner_type: Option<String>,
    /// JSON Schema of the parameters.
    pub params_schema: Value,
    /// JSON Schema of the report data.
    pub report_schema: Value,
    /// Whether incidents close by themselves.
    pub auto_resolvable: bool,
    /// Default evaluation interval in minutes.
    pub default_interval_minutes: u32,
}

/// An entity's attributes: a JSON object, kept as the text the host stored and read on first
/// use. The host hands the text to the sandbox as it is. A template reads single attributes
/// through [`raw`](Self::raw), which indexes the text once and copies nothing, or the whole
/// object through [`map`](Self::map), parsed once into JSON values.
///
/// ```
/// # use tocsin_sdk::Attributes;
/// let attributes = Attributes::from_json(r#"{"balance": 12.50, "plan": "gold"}"#.to_owned());
/// assert_eq!(attributes.get("plan").and_then(|v| v.as_str()), Some("gold"));
/// assert_eq!(attributes.raw("balance"), Some("12.50"));
/// assert!(attributes.get("missing").is_none());
/// assert_eq!(attributes.as_json(), r#"{"balance": 12.50, "plan": "gold"}"#);
/// // Text that is not a JSON object reads as no attributes at all.
/// assert!(Attributes::from_json("[1]".to_owned()).map().is_empty());
/// assert_eq!(Attributes::from_json("[1]".to_owned()).raw("0"), None);
/// ```
pub struct Attributes {
    json: String,
    parsed: OnceLock<Map<String, Value>>,
    index: OnceLock<Vec<(Key, Range<usize>)>>,
}

/// An attribute's name in the index: where it stands in the text, or, when the text spells
/// it with escapes, the name itself.
enum Key {
    At(Range<usize>),
    Unescaped(Box<str>),
}

/// Where the keys and values of a JSON object stand in its text, in the text's order.
fn index_of(json: &str) -> Vec<(Key, Range<usize>)> {
    use serde::de::{MapAccess, Visitor};
    use serde_json::value::RawValue;

    /// A key, borrowed from the text when it has no escapes.
    struct Name<'de>(std::borrow::Cow<'de, str>);
    impl<'de> Deserialize<'de> for Name<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Name<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an attribute name")
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Name<'de>, E> {
                    Ok(Name(v.into()))
                }
                fn visit_str<E>(self, v: &str) -> Result<Name<'de>, E> {
                    Ok(Name(v.to_owned().into()))
                }
            }
            d.deserialize_str(V)
        }
    }

    struct Entries<'j>(&'j str);
    impl<'de> Visitor<'de> for Entries<'_> {
        type Value = Vec<(Key, Range<usize>)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            // Both borrow from `self.0`, so their offsets in it are where they stand.
            let at = |s: &str| {
                let start = s.as_ptr() as usize - self.0.as_ptr() as usize;
                start..start + s.len()
            };
            let mut entries = Vec::new();
            while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
                let value: &'de RawValue = map.next_value()?;
                let key = match name {
                    std::borrow::Cow::Borrowed(name) => Key::At(at(name)),
                    std::borrow::Cow::Owned(name) => Key::Unescaped(name.into()),
                };
                entries.push((key, at(value.get())));
            }
            Ok(entries)
        }
    }

    // Anything but one JSON object, as in `map`, reads as no attributes.
    let mut de = serde_json::Deserializer::from_str(json);
    serde::Deserializer::deserialize_map(&mut de, Entries(json))
        .and_then(|entries| de.end().map(|()| entries))
        .unwrap_or_default()
}

impl Attributes {
    /// Attributes from the text of a JSON object. Text that is not one reads as empty.
    pub fn from_json(json: String) -> Self {
        Self {
            json,
            parsed: OnceLock::new(),
            index: OnceLock::new(),
        }
    }

    /// The JSON text.
    pub fn as_json(&self) -> &str {
        &self.json
    }

    /// The JSON text, as the `String` the host's interface bindings borrow.
    pub fn json_string(&self) -> &String {
        &self.json
    }

    /// The JSON text of one attribute's value (`"12.5"` with its quotes, `12.5`, `null`), or
    /// `None` when the object has no such attribute. When a name appears twice, the last
    /// one counts, as in [`map`](Self::map).
    pub fn raw(&self, name: &str) -> Option<&str> {
        let index = self.index.get_or_init(|| index_of(&self.json));
        index
            .iter()
            .rev()
            .find(|(key, _)| match key {
                Key::At(at) => same_text(&self.json[at.clone()], name),
                Key::Unescaped(key) => same_text(key, name),
            })
            .map(|(_, value)| &self.json[value.clone()])
    }

    /// The attributes as a map, parsed on the first call.
    pub fn map(&self) -> &Map<String, Value> {
        self.parsed
            .get_or_init(|| serde_json::from_str(&self.json).unwrap_or_default())
    }

    /// One attribute.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map().get(name)
    }

    /// The attributes as a map.
    pub fn into_map(mut self) -> Map<String, Value> {
        self.map();
        self.parsed.take().unwrap_or_default()
    }
}

impl From<Map<String, Value>> for Attributes {
    fn from(map: Map<String, Value>) -> Self {
        let json = serde_json::to_string(&map).expect("a JSON map serializes");
        Self {
            json,
            parsed: OnceLock::from(map),
            index: OnceLock::new(),
        }
    }
}

impl Default for Attributes {
    fn default() -> Self {
        Self::from_json("{}".to_owned())
    }
}

/// A clone carries the text, not the parsed map: each holder parses its own, as a template
/// handed fresh data would.
impl Clone for Attributes {
    fn clone(&self) -> Self {
        Self::from_json(self.json.clone())
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json || self.map() == other.map()
    }
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.json)
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.map().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Self::from)
    }
}

/// `a == b`, eight bytes a step. In wasm, `==` on text calls the builtin `memcmp`, which
/// takes one byte a step; this is what a guest compares attribute names and an alert's
/// parameters with.
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return (0..n).all(|i| a[i] == b[i]);
    }
    let word = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    // Whole words, then the last eight bytes, which may overlap the last whole word.
    (0..n / 8).all(|i| word(a, i * 8) == word(b, i * 8)) && word(a, n - 8) == word(b, n - 8)
}

#[cfg(test)]
mod tests {
    use super::same_text;

    #[test]
    fn same_text_agrees_with_eq_at_every_length_and_position() {
        let base: String = ('a'..='z').chain('A'..='Z').collect();
        for n in 0..=base.len() {
            let a = &base[..n];
            let copy = String::from(a);
            assert!(same_text(a, &copy), "{n} equal bytes");
            if n > 0 {
                assert!(!same_text(a, &base[..n - 1]), "{n} bytes against one fewer");
            }
            // One byte changed anywhere: in a whole word, or in the overlapping last one.
            for at in 0..n {
                let mut b = a.as_bytes().to_vec();
                b[at] = b'#';
                let b = String::from_utf8(b).unwrap();
                assert!(!same_text(a, &b), "{n} bytes, changed at {at}");
            }
        }
    }
}
