//! RFC 8785 JSON Canonicalization Scheme (JCS) and the SHA-256 pins built on it.
//!
//! JCS: no whitespace; object members sorted by their names' UTF-16 code units; strings with
//! the minimal escapes of ECMAScript's `JSON.stringify` (`\b \t \n \f \r \" \\`, other
//! controls as `\u00xx`, everything else literal); numbers as ECMAScript's `Number::toString`
//! of the IEEE-754 double. A pin is `sha256:` + the hex SHA-256 of that text, taken over an
//! item's *full* definition as served (name, description, schemas, annotations, `_meta`…).

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The canonical text of `v`.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// `sha256:<hex>` of the canonical text.
pub fn pin(v: &Value) -> String {
    let digest = Sha256::digest(canonical(v).as_bytes());
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in digest {
        s.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        s.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    s
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => number(n, out),
        Value::String(s) => string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(k, out);
                out.push(':');
                write(&m[k.as_str()], out);
            }
            out.push('}');
        }
    }
}

fn string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{0C}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// ECMAScript Number::toString (ECMA-262 §6.1.6.1.20) of the double nearest `n`.
fn number(n: &serde_json::Number, out: &mut String) {
    let f = match n.as_f64() {
        Some(f) if f.is_finite() => f,
        // serde_json never holds NaN/inf; a number beyond f64 is refused by I-JSON anyway.
        _ => {
            out.push_str("null");
            return;
        }
    };
    out.push_str(&es_number(f));
}

/// Shortest round-trip digits formatted the ECMAScript way.
pub fn es_number(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let neg = f < 0.0;
    // `{:e}` gives the shortest round-trip digits: d.ddddde±x.
    let e = format!("{:e}", f.abs());
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let n = exp.parse::<i32>().unwrap_or(0) + 1; // decimal point position
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if k <= n && n <= 21 {
        s.push_str(&digits);
        s.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        s.push_str(&digits[..n as usize]);
        s.push('.');
        s.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        s.push_str("0.");
        s.extend(std::iter::repeat_n('0', (-n) as usize));
        s.push_str(&digits);
    } else {
        s.push_str(&digits[..1]);
        if k > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push('e');
        s.push(if n >= 1 { '+' } else { '-' });
        s.push_str(&(n - 1).abs().to_string());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8785_examples() {
        // RFC 8785 §3.2.2 number samples (the IEEE-754 column of Appendix B).
        for (f, want) in [
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (333333333.3333333, "333333333.3333333"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (-0.0, "0"),
            (4.5, "4.5"),
            (2e-3, "0.002"),
            (0.000_000_1, "1e-7"),
            (9007199254740992.0, "9007199254740992"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (295147905179352830000.0, "295147905179352830000"),
        ] {
            assert_eq!(es_number(f), want, "{f}");
        }
        // Member order by UTF-16 code units (RFC 8785 §3.2.3 sorting example, abridged).
        let v: Value = serde_json::from_str(
            r#"{"\u20ac":"Euro","\r":"cr","1":"one","\u0080":"ctl","\ud83d\ude00":"smiley","\u00f6":"o"}"#,
        )
        .unwrap();
        assert_eq!(
            canonical(&v),
            "{\"\\r\":\"cr\",\"1\":\"one\",\"\u{80}\":\"ctl\",\"ö\":\"o\",\"€\":\"Euro\",\"😀\":\"smiley\"}"
        );
        let v: Value = serde_json::from_str(r#"{ "b" : [1, 2.50, {"z":null,"a":true}], "a": "\u000f\n" }"#).unwrap();
        assert_eq!(canonical(&v), r#"{"a":"\u000f\n","b":[1,2.5,{"a":true,"z":null}]}"#);
    }

    #[test]
    fn pins_see_every_field_and_ignore_formatting() {
        let a: Value = serde_json::from_str(r#"{"name":"t","inputSchema":{"type":"object"}}"#).unwrap();
        let b: Value = serde_json::from_str("{\n \"inputSchema\" : {\"type\":\"object\"},\n\"name\":\"t\"}").unwrap();
        assert_eq!(pin(&a), pin(&b));
        let c: Value = serde_json::from_str(r#"{"name":"t","inputSchema":{"type":"object","properties":{}}}"#).unwrap();
        assert_ne!(pin(&a), pin(&c));
        assert!(pin(&a).starts_with("sha256:") && pin(&a).len() == 71);
    }
}
