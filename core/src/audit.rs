//! What the audit trail records of a request's arguments: a digest, never the values.
//!
//! `args_digest` is `sha256:<hex>` over the canonical JSON of `params.arguments`
//! (`tools/call`, `prompts/get`): object members sorted by key (UTF-8 byte order), no
//! whitespace, strings and numbers as serde_json writes them. Two requests with the same
//! arguments in any member order and spacing get the same digest, so an auditor holding the
//! arguments can prove which call a record is, while the log itself carries no argument
//! values. The canonical form is the one policy versions are hashed over
//! (`policy::version::canonical`).

use crate::policy::version::canonical;
use crate::strict_json::find_member;
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `sha256:<hex>` of the canonical `arguments` member of `params`, if it has one.
///
/// Arguments a client already sends in canonical form (the common case: compact JSON, keys in
/// order, plain strings, integers) are hashed as they are, with no tree built; anything else
/// goes through `serde_json` and [`canonical`]. Both give the same digest ([`digest_slow`] is
/// the reference the tests and the `request_body` fuzz target hold the fast path to).
pub fn args_digest(params: &RawValue) -> Option<String> {
    let args = find_member(params.get(), "arguments").ok()??;
    if args == "null" {
        return None;
    }
    if already_canonical(args.as_bytes()) {
        return Some(hex_digest(args.as_bytes()));
    }
    digest_of_value(serde_json::from_str::<Value>(args).ok()?)
}

/// [`args_digest`] without the fast path: always through `serde_json` and [`canonical`].
pub fn digest_slow(params: &RawValue) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct P {
        arguments: Option<Value>,
    }
    digest_of_value(serde_json::from_str::<P>(params.get()).ok()?.arguments?)
}

fn digest_of_value(args: Value) -> Option<String> {
    let mut text = String::new();
    canonical(&args, &mut text);
    Some(hex_digest(text.as_bytes()))
}

fn hex_digest(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    // A table, not `format!` per byte: 32 formatted allocations were ~24k instructions per call.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in d {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

/// Nesting the fast path follows; deeper text takes the reference path.
const FAST_DEPTH: usize = 32;

/// Whether `text` (one JSON value) is byte for byte what [`canonical`] would write for it: no
/// whitespace, object keys strictly ascending (so no duplicates), strings without escapes or
/// control bytes, integers of at most 18 digits (never `-0`), no fractions or exponents.
/// `false` on anything else, valid or not: the caller then takes the reference path.
fn already_canonical(text: &[u8]) -> bool {
    let mut pos = 0;
    value(text, &mut pos, 0) && pos == text.len()
}

fn value(t: &[u8], pos: &mut usize, depth: usize) -> bool {
    match t.get(*pos) {
        Some(b'{') => {
            if depth >= FAST_DEPTH {
                return false;
            }
            *pos += 1;
            if t.get(*pos) == Some(&b'}') {
                *pos += 1;
                return true;
            }
            let mut last: Option<&[u8]> = None;
            loop {
                let Some(key) = string(t, pos) else { return false };
                if last.is_some_and(|l| l >= key) || t.get(*pos) != Some(&b':') {
                    return false;
                }
                last = Some(key);
                *pos += 1;
                if !value(t, pos, depth + 1) {
                    return false;
                }
                match t.get(*pos) {
                    Some(b',') => *pos += 1,
                    Some(b'}') => {
                        *pos += 1;
                        return true;
                    }
                    _ => return false,
                }
            }
        }
        Some(b'[') => {
            if depth >= FAST_DEPTH {
                return false;
            }
            *pos += 1;
            if t.get(*pos) == Some(&b']') {
                *pos += 1;
                return true;
            }
            loop {
                if !value(t, pos, depth + 1) {
                    return false;
                }
                match t.get(*pos) {
                    Some(b',') => *pos += 1,
                    Some(b']') => {
                        *pos += 1;
                        return true;
                    }
                    _ => return false,
                }
            }
        }
        Some(b'"') => string(t, pos).is_some(),
        Some(b'-' | b'0'..=b'9') => integer(t, pos),
        Some(b't') => literal(t, pos, b"true"),
        Some(b'f') => literal(t, pos, b"false"),
        Some(b'n') => literal(t, pos, b"null"),
        _ => false,
    }
}

/// A string's content (cursor on its quote), if it has no escape and no control byte.
fn string<'t>(t: &'t [u8], pos: &mut usize) -> Option<&'t [u8]> {
    if t.get(*pos) != Some(&b'"') {
        return None;
    }
    let start = *pos + 1;
    let len = t
        .get(start..)?
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    if t[start + len] != b'"' {
        return None;
    }
    *pos = start + len + 1;
    Some(&t[start..start + len])
}

fn integer(t: &[u8], pos: &mut usize) -> bool {
    let neg = t.get(*pos) == Some(&b'-');
    let start = *pos + usize::from(neg);
    let digits = t
        .get(start..)
        .map_or(0, |r| r.iter().take_while(|b| b.is_ascii_digit()).count());
    let end = start + digits;
    let ok = match digits {
        0 => false,
        1 => !(neg && t[start] == b'0'),
        2..=18 => t[start] != b'0',
        _ => false,
    };
    if !ok || matches!(t.get(end), Some(b'.' | b'e' | b'E')) {
        return false;
    }
    *pos = end;
    true
}

fn literal(t: &[u8], pos: &mut usize, word: &[u8]) -> bool {
    if t.get(*pos..*pos + word.len()) == Some(word) {
        *pos += word.len();
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn order_and_spacing_do_not_matter_values_do() {
        let a = args_digest(&raw(r#"{"name":"t","arguments":{"b":[1,{"y":2,"x":"é"}],"a":true}}"#)).unwrap();
        let b = args_digest(&raw(
            r#"{ "arguments" : { "a":true , "b":[1,{"x":"é","y":2}] }, "name":"t"}"#,
        ))
        .unwrap();
        let c = args_digest(&raw(r#"{"name":"t","arguments":{"a":false,"b":[1,{"x":"é","y":2}]}}"#)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("sha256:") && a.len() == 71);
        // sha256 of `{}`
        assert_eq!(
            args_digest(&raw(r#"{"arguments":{}}"#)).unwrap(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(args_digest(&raw(r#"{"name":"t"}"#)), None);
    }

    #[test]
    fn the_fast_path_gives_the_reference_digest() {
        let samples = [
            r#"{"text":"hi"}"#,
            r#"{"a":1,"b":[true,false,null],"c":{"d":"é","e":-12}}"#,
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{ "a":1}"#,
            r#"{"a":"x\ny"}"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"a":1.50}"#,
            r#"{"a":1e3}"#,
            r#"{"a":-0}"#,
            r#"{"a":0}"#,
            r#"{"a":123456789012345678901234}"#,
            r#"{"a":-9223372036854775808}"#,
            r#"{"a":18446744073709551615}"#,
            r#"[1,2,3]"#,
            r#""just a string""#,
            r#"42"#,
            r#"null"#,
            r#"{}"#,
            r#"[]"#,
            r#"{"":1,"a":{"":[]}}"#,
            r#"{"B":1,"a":2}"#,
            r#"{"a":[{"z":1,"y":2}]}"#,
        ];
        for a in samples {
            for params in [
                format!(r#"{{"name":"t","arguments":{a}}}"#),
                format!(r#"{{"arguments" : {a} , "name":"t"}}"#),
            ] {
                let p = raw(&params);
                assert_eq!(args_digest(&p), digest_slow(&p), "{params}");
            }
        }
        let deep = format!(r#"{{"arguments":{}1{}}}"#, "[".repeat(60), "]".repeat(60));
        assert_eq!(
            args_digest(&raw(&deep)),
            digest_slow(&raw(&deep)),
            "deeper than the fast path follows"
        );
        assert!(already_canonical(br#"{"a":1,"b":[true,{"c":"d"}]}"#));
        assert!(!already_canonical(br#"{"b":1,"a":2}"#));
        assert!(!already_canonical(br#"{"a":1.5}"#));
    }
}
