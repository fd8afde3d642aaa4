//! A JSON document as the event parser reads it.
//!
//! `serde_json::Value` keeps the last of two equal keys and says nothing, so
//! `{"level": 3, "level": 11}` would pass as level 11; this tree keeps every key of an object,
//! in order, so a repeated field is refused like any other mistake. Nesting is bounded by
//! serde_json's recursion limit (128), so a hostile body cannot overflow the stack, and
//! building the tree is linear in the body's size.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// One JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Json {
    Null,
    Bool(bool),
    /// Any integer serde_json reads as one (it reads larger ones as floats).
    Int(i128),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    /// Every key, in the order given, repeated ones included.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// What this value is, for "must be a string, not …" messages.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Int(_) | Json::Float(_) => "a number",
            Json::Str(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Int(i128::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Int(i128::from(v)))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Json, E> {
        Ok(Json::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Json, E> {
        i128::try_from(v)
            .map(Json::Int)
            .map_err(|_| E::custom("number out of range"))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::Str(v))
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            fields.push((key, value));
        }
        Ok(Json::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Json, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn repeated_keys_are_all_kept_in_order() {
        let json = read(r#"{"level": 3, "b": [true, null, "x", 1.5], "level": 11}"#).unwrap();
        let Json::Object(fields) = json else {
            panic!("{json:?}")
        };
        let keys: Vec<_> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["level", "b", "level"]);
        assert_eq!(fields[2].1, Json::Int(11));
        assert_eq!(
            fields[1].1,
            Json::Array(vec![
                Json::Bool(true),
                Json::Null,
                Json::Str("x".into()),
                Json::Float(1.5)
            ])
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = read(&deep).unwrap_err();
        assert!(e.to_string().contains("recursion limit"), "{e}");
    }

    #[test]
    fn numbers_keep_their_kind() {
        assert_eq!(
            read("18446744073709551615").unwrap(),
            Json::Int(u64::MAX.into())
        );
        assert_eq!(read("-5").unwrap(), Json::Int(-5));
        assert_eq!(read("5.0").unwrap(), Json::Float(5.0));
        assert!(read("1e400").is_err());
    }
}
