//! Paths into JSON: claim keys and argument keys, compiled once, walked without allocating.
//!
//! A key starting with `/` is a JSON pointer (RFC 6901: `~1` is `/`, `~0` is `~`); any other
//! key names one top-level member literally, so namespaced claims such as
//! `https://acme.com/org` need no escaping.
//!
//! Arguments are walked straight over the raw request text (`&RawValue`): each level is
//! scanned with serde's `IgnoredAny` for the members it skips, so checking `/repo` on a
//! 10 kB argument object builds no `Value`. A member that appears twice on the path is
//! reported as [`Found::Malformed`]: the gateway and the upstream could read different values.

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer as _;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::fmt;

/// One step of a path: an object member name and, when it reads as an array index, that index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    key: Box<str>,
    index: Option<usize>,
}

/// Compile a key (pointer or literal name) into segments.
pub(crate) fn compile(key: &str) -> Result<Box<[Segment]>, String> {
    if key.is_empty() {
        return Err("empty key".into());
    }
    let Some(pointer) = key.strip_prefix('/') else {
        return Ok(vec![Segment {
            key: key.into(),
            index: None,
        }]
        .into());
    };
    let mut out = Vec::new();
    for raw in pointer.split('/') {
        let mut seg = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '~' {
                match chars.next() {
                    Some('0') => seg.push('~'),
                    Some('1') => seg.push('/'),
                    _ => return Err(format!("invalid JSON pointer {key:?}: `~` must be followed by 0 or 1")),
                }
            } else {
                seg.push(c);
            }
        }
        let index = array_index(&seg);
        out.push(Segment { key: seg.into(), index });
    }
    Ok(out.into())
}

/// RFC 6901 array index: `0` or a digit string without a leading zero.
fn array_index(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// Walk a parsed claims object.
pub(crate) fn value_at<'v>(root: &'v Map<String, Value>, path: &[Segment]) -> Option<&'v Value> {
    let (first, rest) = path.split_first()?;
    let mut cur = root.get(&*first.key)?;
    for seg in rest {
        cur = match cur {
            Value::Object(m) => m.get(&*seg.key)?,
            Value::Array(a) => a.get(seg.index?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// What a walk over raw arguments found.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Found<'a> {
    Value(&'a RawValue),
    Missing,
    /// Unparseable text, or a duplicated member on the path.
    Malformed,
}

/// Walk raw JSON text.
pub(crate) fn raw_at<'a>(root: &'a RawValue, path: &[Segment]) -> Found<'a> {
    let mut cur = root;
    for seg in path {
        let text = cur.get().trim_start();
        let mut de = serde_json::Deserializer::from_str(text);
        let step = match text.as_bytes().first() {
            Some(b'{') => de.deserialize_map(FindMember(&seg.key)),
            Some(b'[') => match seg.index {
                Some(i) => de.deserialize_seq(FindElement(i)),
                None => return Found::Missing,
            },
            Some(_) => return Found::Missing,
            None => return Found::Malformed,
        };
        match step {
            Ok(Some(v)) => cur = v,
            Ok(None) => return Found::Missing,
            Err(_) => return Found::Malformed,
        }
    }
    Found::Value(cur)
}

/// Compares an object key with the wanted name without allocating (escaped keys arrive as
/// a transient `&str`).
struct KeyIs<'s>(&'s str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

struct FindMember<'s>(&'s str);

impl<'de> Visitor<'de> for FindMember<'_> {
    type Value = Option<&'de RawValue>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(self.0))? {
            if hit {
                let v: &'de RawValue = map.next_value()?;
                if found.replace(v).is_some() {
                    return Err(de::Error::custom("duplicate member"));
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

struct FindElement(usize);

impl<'de> Visitor<'de> for FindElement {
    type Value = Option<&'de RawValue>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut i = 0;
        let mut found = None;
        loop {
            if i == self.0 {
                match seq.next_element::<&'de RawValue>()? {
                    Some(v) => found = Some(v),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    fn get(text: &str, key: &str) -> Option<String> {
        let r = raw(text);
        match raw_at(&r, &compile(key).unwrap()) {
            Found::Value(v) => Some(v.get().to_owned()),
            Found::Missing => None,
            Found::Malformed => Some("MALFORMED".into()),
        }
    }

    #[test]
    fn a_key_without_a_leading_slash_is_one_literal_member() {
        assert_eq!(get(r#"{"a/b":1,"a":{"b":2}}"#, "a/b").as_deref(), Some("1"));
        assert_eq!(get(r#"{"a/b":1,"a":{"b":2}}"#, "/a/b").as_deref(), Some("2"));
    }

    #[test]
    fn pointer_escapes_are_decoded() {
        assert_eq!(get(r#"{"a/b":{"~x":3}}"#, "/a~1b/~0x").as_deref(), Some("3"));
        assert!(compile("/a~2").is_err());
        assert!(compile("").is_err());
    }

    #[test]
    fn array_elements_are_reached_by_index() {
        assert_eq!(get(r#"{"xs":[10,{"y":[1,2]},30]}"#, "/xs/1/y/1").as_deref(), Some("2"));
        assert_eq!(get(r#"{"xs":[10]}"#, "/xs/1"), None);
        assert_eq!(get(r#"{"xs":[10]}"#, "/xs/01"), None);
        assert_eq!(get(r#"{"xs":[10]}"#, "/xs/-"), None);
    }

    #[test]
    fn escaped_keys_in_the_document_still_match() {
        assert_eq!(get(r#"{"re\u0070o":"x"}"#, "repo").as_deref(), Some(r#""x""#));
    }

    #[test]
    fn a_duplicated_member_on_the_path_is_malformed() {
        assert_eq!(get(r#"{"repo":"a","repo":"b"}"#, "repo").as_deref(), Some("MALFORMED"));
        // Duplicates off the path do not matter to this lookup.
        assert_eq!(get(r#"{"x":1,"x":2,"repo":"a"}"#, "repo").as_deref(), Some(r#""a""#));
    }

    #[test]
    fn walking_into_a_scalar_finds_nothing() {
        assert_eq!(get(r#"{"a":5}"#, "/a/b"), None);
        assert_eq!(get("5", "a"), None);
    }

    #[test]
    fn claims_are_walked_by_the_same_paths() {
        let claims = json!({"org": {"tier": "gold", "ids": [7, 8]}, "https://x/y": true});
        let m = claims.as_object().unwrap();
        assert_eq!(value_at(m, &compile("/org/tier").unwrap()), Some(&json!("gold")));
        assert_eq!(value_at(m, &compile("/org/ids/1").unwrap()), Some(&json!(8)));
        assert_eq!(value_at(m, &compile("https://x/y").unwrap()), Some(&json!(true)));
        assert_eq!(value_at(m, &compile("/nope").unwrap()), None);
    }
}
