//! Where a field path (`backends[1].server`) sits in a source file, so a problem found after
//! parsing (an unknown server, a duplicate prefix) still names its line and column.
//!
//! JSON files use the module's own locator (`mcp_policy_core::locate`). YAML files are walked
//! with serde_yaml itself: a seed follows the path through mappings and sequences and stops with
//! an error at the value it is after (or at the deepest one on the way that exists); serde_yaml
//! stamps an error raised inside a value with that value's start position, which is the answer.
//! Runs only on files that already parsed, and only when there is a problem to place.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// 1-based line and column of `path` in `doc` (`.json` files as JSON, others as YAML), or of
/// the deepest member or element on the way to it. `None` for an empty path or one that is not
/// a field path. Meant for documents that parsed (on one that does not, the parse error's place).
pub fn locate(file: &str, doc: &[u8], path: &str) -> Option<(usize, usize)> {
    if path.is_empty() {
        return None;
    }
    if file.ends_with(".json") {
        return mcp_policy_core::locate::locate(doc, path);
    }
    let segments = segments(path)?;
    let de = serde_yaml::Deserializer::from_slice(doc);
    match (Find { rest: &segments }).deserialize(de) {
        Ok(()) => None,
        Err(e) => e.location().map(|l| (l.line(), l.column())),
    }
}

#[derive(Debug, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// `a.b[2].c` → [a, b, 2, c]. YAML keys of our formats never contain `.` or `[`.
fn segments(path: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key.to_owned()));
        }
        while let Some(after) = rest.strip_prefix('[') {
            let (n, tail) = after.split_once(']')?;
            out.push(Segment::Index(n.parse().ok()?));
            rest = tail;
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(out)
}

/// Follows `rest`; always ends in an error (the one that carries the position).
struct Find<'a> {
    rest: &'a [Segment],
}

const HERE: &str = "here";

impl<'de> DeserializeSeed<'de> for Find<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Find<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if let Some((Segment::Key(want), tail)) = self.rest.split_first() {
            while let Some(key) = map.next_key::<KeyText>()? {
                if key.0.as_deref() == Some(want.as_str()) {
                    return map.next_value_seed(Find { rest: tail });
                }
                map.next_value::<IgnoredAny>()?;
            }
        }
        // Raised inside the mapping: placed at its start (the deepest value that exists).
        Err(de::Error::custom(HERE))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some((Segment::Index(want), tail)) = self.rest.split_first() {
            let mut i = 0;
            while i < *want {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    return Err(de::Error::custom(HERE));
                }
                i += 1;
            }
            if let Some(()) = seq.next_element_seed(Find { rest: tail })? {
                return Ok(());
            }
        }
        Err(de::Error::custom(HERE))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(HERE))
    }
}

/// A mapping key as text when it is a scalar (`1` reads as "1"); `None` for other keys.
struct KeyText(Option<String>);

impl<'de> de::Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<KeyText, E> {
                Ok(KeyText(Some(s.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<KeyText, E> {
                Ok(KeyText(Some(b.to_string())))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<KeyText, E> {
                Ok(KeyText(Some(n.to_string())))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<KeyText, E> {
                Ok(KeyText(Some(n.to_string())))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<KeyText, E> {
                Ok(KeyText(Some(n.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<KeyText, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(KeyText(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<KeyText, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(KeyText(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
name: tools
routes:
  - path: /tools/mcp
backends:
  - server: demo
    prefix: d
  - { server: nope, prefix: n }
  - server: alpha
    tools:
      include: [echo, add]
";

    fn at(path: &str) -> Option<(usize, usize)> {
        locate("virtual_servers/tools.yaml", DOC.as_bytes(), path)
    }

    #[test]
    fn block_and_flow_values_are_found() {
        assert_eq!(at("name"), Some((1, 7)));
        assert_eq!(at("routes[0].path"), Some((3, 11)));
        assert_eq!(at("backends[0].prefix"), Some((6, 13)));
        assert_eq!(at("backends[1].server"), Some((7, 15)));
        assert_eq!(at("backends[2].tools.include[1]"), Some((10, 23)));
    }

    #[test]
    fn a_missing_member_is_placed_at_the_deepest_value_that_exists() {
        // backends[0] has no `timeout_ms`: its mapping starts at line 5.
        assert_eq!(at("backends[0].timeout_ms").map(|p| p.0), Some(5));
        // No backends[7]: the sequence.
        assert_eq!(at("backends[7].server").map(|p| p.0), Some(5));
        // A path through a scalar stops at the scalar.
        assert_eq!(at("name.x"), Some((1, 7)));
    }

    #[test]
    fn json_files_use_the_modules_locator_and_bad_input_gives_none() {
        assert_eq!(locate("a.json", b"{\n  \"a\": [1, 2]\n}", "a[1]"), Some((2, 12)));
        assert_eq!(at(""), None);
        assert_eq!(at("backends[x]"), None);
    }
}
