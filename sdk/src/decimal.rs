//! Exact decimal numbers for money and quantities.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub};
use std::str::FromStr;

/// An exact decimal number (up to 28 significant digits).
///
/// It reads a JSON string (`"10.5"`) or a JSON number (`10.5`) and writes a string.
/// Arithmetic is exact. A string is read from its text, whatever its length; through serde,
/// a JSON number with a fraction arrives as a binary float, which keeps every decimal of up
/// to 15 significant digits exactly. [`Entity::decimal`](crate::Entity::decimal) reads
/// attributes from their text, numbers included.
///
/// ```
/// # use tocsin_sdk::Decimal;
/// let a: Decimal = "0.1".parse().unwrap();
/// let b: Decimal = "0.2".parse().unwrap();
/// assert_eq!(a + b, "0.3".parse().unwrap());
/// let from_number: Decimal = serde_json::from_str("0.1").unwrap();
/// assert_eq!(from_number, a);
/// assert_eq!(serde_json::to_string(&(a + b)).unwrap(), "\"0.3\"");
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decimal(rust_decimal::Decimal);

impl Decimal {
    /// Zero.
    pub const ZERO: Self = Self(rust_decimal::Decimal::ZERO);

    /// The underlying `rust_decimal` value, for arithmetic this type does not offer.
    pub fn inner(self) -> rust_decimal::Decimal {
        self.0
    }
}

impl From<rust_decimal::Decimal> for Decimal {
    fn from(value: rust_decimal::Decimal) -> Self {
        Self(value)
    }
}

impl From<i64> for Decimal {
    fn from(value: i64) -> Self {
        Self(value.into())
    }
}

impl From<u64> for Decimal {
    fn from(value: u64) -> Self {
        Self(value.into())
    }
}

impl FromStr for Decimal {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        let parsed = if trimmed.contains(['e', 'E']) {
            rust_decimal::Decimal::from_scientific(trimmed)
        } else {
            rust_decimal::Decimal::from_str_exact(trimmed)
        };
        parsed
            .map(Self)
            .map_err(|_| format!("{s:?} is not a decimal number"))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Add for Decimal {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self(self.0 + rhs.0)
    }
}

impl AddAssign for Decimal {
    fn add_assign(&mut self, rhs: Self) {
        self.0 += rhs.0;
    }
}

impl Sub for Decimal {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        Self(self.0 - rhs.0)
    }
}

impl Sum for Decimal {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, Add::add)
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Decimal;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal number or a string holding one")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Decimal, E> {
                Ok(v.into())
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Decimal, E> {
                Ok(v.into())
            }

            // serde_json hands a non-integer number over as f64 unless it was built with
            // `arbitrary_precision`. The shortest text that reads back as the same f64 is
            // the text that was written for every decimal of up to 15 significant digits,
            // so `0.1` becomes exactly 0.1, not 0.1000000000000000055511151231257827.
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Decimal, E> {
                if !v.is_finite() {
                    return Err(E::custom("a decimal number must be finite"));
                }
                format!("{v}").parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for Decimal {
    fn schema_name() -> Cow<'static, str> {
        "Decimal".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A decimal number, as a JSON number or a string such as \"12.50\".",
            "type": ["string", "number"],
            "pattern": "^\\s*[-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?\\s*$"
        })
    }
}
