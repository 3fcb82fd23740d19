//! Deserializers that never fail on a wrong type: they degrade to "absent" instead.
//!
//! SentinelOne's schema drifts (SENTINELONE.md §6.13): keys appear and vanish, nulls replace
//! objects, numbers arrive as strings and doc examples carry type names as values. One odd
//! field must not cost us the whole threat, so every field of the private threat model is one of
//! these wrappers. Each wrapper consumes whatever value it is given (draining arrays and objects
//! with [`IgnoredAny`]) and keeps it only when it has the expected shape.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Any scalar as text: strings as they are, numbers and booleans formatted. Empty (or
/// whitespace-only) strings, null, arrays and objects become `None`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Str(pub Option<String>);

impl Str {
    pub(crate) fn into_inner(self) -> Option<String> {
        self.0
    }

    pub(crate) fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }

    fn text(s: &str) -> Self {
        if s.trim().is_empty() {
            Str(None)
        } else {
            Str(Some(s.to_owned()))
        }
    }
}

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str, E> {
                Ok(Str::text(v))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Str, E> {
                if v.trim().is_empty() {
                    Ok(Str(None))
                } else {
                    Ok(Str(Some(v)))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Str, E> {
                Ok(Str(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Str, E> {
                Ok(Str(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Str, E> {
                Ok(Str(Some(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Str, E> {
                Ok(Str(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Str, E> {
                Ok(Str(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Str, E> {
                Ok(Str(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Str, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| Str(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Str, A::Error> {
                IgnoredAny.visit_map(map).map(|_| Str(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A non-negative integer: JSON numbers (integral, non-negative) or decimal strings.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct U64(pub Option<u64>);

impl<'de> Deserialize<'de> for U64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = U64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<U64, E> {
                Ok(U64(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<U64, E> {
                Ok(U64(u64::try_from(v).ok()))
            }
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "the cast is made only for finite, non-negative whole numbers below 2^64"
            )]
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<U64, E> {
                // Only exact, in-range integers; `as` on anything else would invent a value.
                // `u64::MAX as f64` rounds up to 2^64, so `<` keeps the cast in range.
                let ok = v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64;
                Ok(U64(ok.then_some(v as u64)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<U64, E> {
                Ok(U64(v.trim().parse().ok()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<U64, E> {
                Ok(U64(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<U64, E> {
                Ok(U64(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<U64, E> {
                Ok(U64(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<U64, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| U64(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<U64, A::Error> {
                IgnoredAny.visit_map(map).map(|_| U64(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A boolean: JSON booleans or the strings `"true"`/`"false"`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bool(pub Option<bool>);

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Str::deserialize(d)?;
        Ok(Bool(match s.as_deref().map(str::trim) {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        }))
    }
}

/// A JSON object deserialized into `T`; any other value becomes `None`. `T` should itself be
/// built from lenient fields so that a map of the wrong shape still succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Obj<T>(pub Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(|t| Obj(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Obj<T>, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| Obj(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A JSON array of `T`; any other value becomes empty. `T` should be lenient itself (for
/// example [`Str`] or [`Obj`]) so that one odd element does not fail the array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seq<T>(pub Vec<T>);

impl<T> Default for Seq<T> {
    fn default() -> Self {
        Seq(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Seq<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Seq<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Seq<T>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element::<T>()? {
                    out.push(item);
                }
                Ok(Seq(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Seq<T>, A::Error> {
                IgnoredAny.visit_map(map).map(|_| Seq::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Seq<T>, E> {
                Ok(Seq::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Seq<T>, E> {
                Ok(Seq::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Seq<T>, E> {
                Ok(Seq::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Seq<T>, E> {
                Ok(Seq::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Seq<T>, E> {
                Ok(Seq::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Seq<T>, E> {
                Ok(Seq::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Seq<T>, E> {
                Ok(Seq::default())
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    struct Probe {
        name: Str,
        size: U64,
        flag: Bool,
        inner: Obj<Inner>,
        list: Seq<Str>,
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(default)]
    struct Inner {
        x: Str,
    }

    fn probe(json: &str) -> Probe {
        serde_json::from_str::<Probe>(json).unwrap()
    }

    #[test]
    fn scalars_become_text_and_junk_becomes_none() {
        assert_eq!(probe(r#"{"name":"a"}"#).name.0.as_deref(), Some("a"));
        assert_eq!(probe(r#"{"name":12}"#).name.0.as_deref(), Some("12"));
        assert_eq!(probe(r#"{"name":true}"#).name.0.as_deref(), Some("true"));
        for junk in [r#""""#, r#""  ""#, "null", "[1,[2]]", r#"{"a":{"b":1}}"#] {
            assert_eq!(
                probe(&format!(r#"{{"name":{junk}}}"#)).name.0,
                None,
                "{junk}"
            );
        }
    }

    #[test]
    fn numbers_accept_strings_and_reject_negatives_and_fractions() {
        assert_eq!(probe(r#"{"size":78}"#).size.0, Some(78));
        assert_eq!(probe(r#"{"size":"78"}"#).size.0, Some(78));
        assert_eq!(probe(r#"{"size":78.0}"#).size.0, Some(78));
        for junk in ["-1", "1.5", r#""integer""#, "true", "[]", "1e300"] {
            assert_eq!(
                probe(&format!(r#"{{"size":{junk}}}"#)).size.0,
                None,
                "{junk}"
            );
        }
    }

    #[test]
    fn booleans_accept_strings() {
        assert_eq!(probe(r#"{"flag":true}"#).flag.0, Some(true));
        assert_eq!(probe(r#"{"flag":"false"}"#).flag.0, Some(false));
        assert_eq!(probe(r#"{"flag":"boolean"}"#).flag.0, None);
        assert_eq!(probe(r#"{"flag":{"readOnly":true}}"#).flag.0, None);
    }

    #[test]
    fn wrong_shaped_containers_are_ignored() {
        assert!(probe(r#"{"inner":"string"}"#).inner.0.is_none());
        assert!(probe(r#"{"inner":[{"x":1}]}"#).inner.0.is_none());
        assert_eq!(
            probe(r#"{"inner":{"x":1,"y":[]}}"#)
                .inner
                .0
                .unwrap()
                .x
                .0
                .as_deref(),
            Some("1")
        );
        assert!(probe(r#"{"list":{"a":1}}"#).list.0.is_empty());
        let list = probe(r#"{"list":["a",null,{"t":1},2]}"#).list.0;
        let texts: Vec<_> = list.into_iter().filter_map(|s| s.0).collect();
        assert_eq!(texts, ["a", "2"]);
    }
}
