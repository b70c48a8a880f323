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
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `sha256:<hex>` of the canonical `arguments` member of `params`, if it has one.
pub fn args_digest(params: &RawValue) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct P {
        arguments: Option<Value>,
    }
    let args = serde_json::from_str::<P>(params.get()).ok()?.arguments?;
    let mut text = String::new();
    canonical(&args, &mut text);
    let d = Sha256::digest(text.as_bytes());
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    // A table, not `format!` per byte: 32 formatted allocations were ~24k instructions per call.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in d {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    Some(s)
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
}
