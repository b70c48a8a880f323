//! Content versions: FNV-1a 64 over a canonical JSON rendering of the spec.
//!
//! Canonical means: defaults filled in (the spec is hashed after deserializing, so an omitted
//! `"mode": "enforce"` and an explicit one hash alike), object keys sorted bytewise, no
//! whitespace, numbers as serde_json prints them. FNV-1a is written out here because std's
//! `DefaultHasher` may change between Rust releases, and a version must not change when only
//! the toolchain does. The same hash backs the compiled name maps: keys come from the
//! operator's config, so the flooding resistance of SipHash buys nothing there.

use serde::Serialize;
use serde_json::Value;
use std::hash::{BuildHasherDefault, Hasher};

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64-bit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(OFFSET)
    }
}

impl Hasher for Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FnvBuild = BuildHasherDefault<Fnv1a>;

pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a::default();
    h.write(bytes);
    h.finish()
}

/// The version string of a spec: 16 lower-case hex digits.
pub(crate) fn version_of<T: Serialize>(spec: &T) -> String {
    let mut out = String::new();
    match serde_json::to_value(spec) {
        Ok(v) => canonical(&v, &mut out),
        // Our spec types always serialize (string keys, finite numbers); hash the error text
        // rather than panic, so this stays total.
        Err(e) => out = e.to_string(),
    }
    format!("{:016x}", fnv1a64(out.as_bytes()))
}

pub(crate) fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_str(k, out);
                out.push(':');
                canonical(&m[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        Value::String(s) => push_str(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn push_str(s: &str, out: &mut String) {
    out.push_str(&Value::from(s).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        // From the FNV reference test suite (draft-eastlake-fnv).
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn canonical_form_sorts_keys_and_drops_whitespace() {
        let mut s = String::new();
        canonical(&json!({"b": [1, {"z": null, "a": "x"}], "a": true}), &mut s);
        assert_eq!(s, r#"{"a":true,"b":[1,{"a":"x","z":null}]}"#);
    }
}
