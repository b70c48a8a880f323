//! Claims → principal, with strict types: a string `exp`, a numeric `sub` or an object where
//! groups belong is an error, never a coercion. Also the duplicate-key-rejecting JSON parse
//! every token part goes through (a payload with two `sub`s must not mean whichever one a
//! parser happens to keep).

use super::error::{AuthError, ClaimProblem};
use super::spec::ClaimMappingSpec;
use crate::principal::{Principal, Source};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// The compiled claim mapping (see [`ClaimMappingSpec`]).
#[derive(Debug, Clone)]
pub(crate) struct ClaimMapping {
    subject: String,
    groups: String,
    roles: String,
    tenant: Option<String>,
    scopes: String,
}

impl ClaimMapping {
    /// The mapping of a provider that sets no `claims`.
    pub(crate) fn default_mapping() -> ClaimMapping {
        ClaimMapping::compile(&ClaimMappingSpec::default(), "", &mut Vec::new())
    }

    /// Check a spec, pushing `(path, message)` for each bad name.
    pub(crate) fn compile(spec: &ClaimMappingSpec, path: &str, errors: &mut Vec<(String, String)>) -> ClaimMapping {
        let mut check = |field: &str, name: &str| {
            if let Some(msg) = claim_name_problem(name) {
                errors.push((format!("{path}.{field}"), msg));
            }
        };
        check("subject", &spec.subject);
        check("groups", &spec.groups);
        check("roles", &spec.roles);
        check("scopes", &spec.scopes);
        if let Some(t) = &spec.tenant {
            check("tenant", t);
        }
        ClaimMapping {
            subject: spec.subject.clone(),
            groups: spec.groups.clone(),
            roles: spec.roles.clone(),
            tenant: spec.tenant.clone(),
            scopes: spec.scopes.clone(),
        }
    }
}

fn claim_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name.chars().any(|c| c.is_control()) {
        return Some("must not contain control characters".into());
    }
    if name.starts_with('/') {
        // RFC 6901: `~` must be followed by 0 or 1.
        let b = name.as_bytes();
        for (i, &c) in b.iter().enumerate() {
            if c == b'~' && !matches!(b.get(i + 1), Some(b'0' | b'1')) {
                return Some(format!("is not a valid JSON Pointer (RFC 6901): {name:?}"));
            }
        }
    }
    None
}

/// Look a claim up by name, or by JSON Pointer when the name starts with `/`.
fn lookup<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let Some(pointer) = name.strip_prefix('/') else {
        return claims.get(name);
    };
    let (first, rest) = match pointer.find('/') {
        Some(i) => (&pointer[..i], &pointer[i..]),
        None => (pointer, ""),
    };
    let first = first.replace("~1", "/").replace("~0", "~");
    claims.get(&first)?.pointer(rest)
}

fn invalid(claim: &str, problem: ClaimProblem) -> AuthError {
    AuthError::InvalidClaim {
        claim: claim.to_owned(),
        problem,
    }
}

/// A NumericDate (RFC 7519 §2): a non-negative JSON number. Fractions round toward the
/// stricter side: `exp` down, `nbf` up.
pub(crate) fn numeric_date(claims: &Map<String, Value>, name: &str, round_up: bool) -> Result<Option<u64>, AuthError> {
    let Some(v) = claims.get(name) else { return Ok(None) };
    let Value::Number(n) = v else {
        return Err(invalid(name, ClaimProblem::WrongType));
    };
    if let Some(u) = n.as_u64() {
        return Ok(Some(u));
    }
    match n.as_f64() {
        Some(f) if f.is_finite() && f >= 0.0 => {
            let r = if round_up { f.ceil() } else { f.floor() };
            // `as` saturates for floats beyond u64::MAX: a far-future date stays far future.
            Ok(Some(r as u64))
        }
        _ => Err(invalid(name, ClaimProblem::BadValue)),
    }
}

/// An optional string claim.
pub(crate) fn opt_string(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, AuthError> {
    match lookup(claims, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(name, ClaimProblem::WrongType)),
    }
}

/// An array of strings, or one string (many IdPs emit a bare string for a single group).
fn string_list(claims: &Map<String, Value>, name: &str, split_spaces: bool) -> Result<Option<Vec<String>>, AuthError> {
    match lookup(claims, name) {
        None => Ok(None),
        Some(Value::String(s)) if split_spaces => Ok(Some(s.split_ascii_whitespace().map(str::to_owned).collect())),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(invalid(name, ClaimProblem::WrongType)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid(name, ClaimProblem::WrongType)),
    }
}

/// Type-check the registered time claims that are present (`exp`, `nbf`, `iat`).
pub(crate) fn check_time_claim_types(claims: &Map<String, Value>) -> Result<(), AuthError> {
    for name in ["exp", "nbf", "iat"] {
        numeric_date(claims, name, false)?;
    }
    Ok(())
}

/// Build a principal from claims already trusted (verified by us or by Envoy). The caller has
/// checked time and audience; this applies the mapping with strict types and normalizes.
pub(crate) fn principal_from_claims(
    claims: Map<String, Value>,
    mapping: &ClaimMapping,
    source: Source,
    issuer: String,
) -> Result<Principal, AuthError> {
    check_time_claim_types(&claims)?;
    let subject = match lookup(&claims, &mapping.subject) {
        None => return Err(invalid(&mapping.subject, ClaimProblem::Missing)),
        Some(Value::String(s)) if s.is_empty() => return Err(invalid(&mapping.subject, ClaimProblem::BadValue)),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(invalid(&mapping.subject, ClaimProblem::WrongType)),
    };
    let groups = string_list(&claims, &mapping.groups, false)?.unwrap_or_default();
    let roles = string_list(&claims, &mapping.roles, false)?.unwrap_or_default();
    let tenant = match &mapping.tenant {
        Some(t) => opt_string(&claims, t)?,
        None => None,
    };
    let mut scopes = string_list(&claims, &mapping.scopes, true)?;
    if scopes.is_none() && mapping.scopes == "scope" {
        scopes = string_list(&claims, "scp", true)?;
    }
    let token_id = opt_string(&claims, "jti")?;
    let expires_at = numeric_date(&claims, "exp", false)?;
    // Identity values travel on as header values and log fields: a control character (CR, LF,
    // NUL, …) in one is never a legitimate name, and would break both. Refuse the token.
    let bad = |s: &String| s.chars().any(char::is_control);
    if bad(&subject) {
        return Err(invalid(&mapping.subject, ClaimProblem::BadValue));
    }
    if groups.iter().any(bad) {
        return Err(invalid(&mapping.groups, ClaimProblem::BadValue));
    }
    if roles.iter().any(bad) {
        return Err(invalid(&mapping.roles, ClaimProblem::BadValue));
    }
    if let (Some(t), Some(name)) = (&tenant, &mapping.tenant) {
        if bad(t) {
            return Err(invalid(name, ClaimProblem::BadValue));
        }
    }
    if token_id.as_ref().is_some_and(bad) {
        return Err(invalid("jti", ClaimProblem::BadValue));
    }
    let mut p = Principal {
        source,
        subject,
        issuer,
        tenant,
        groups,
        roles,
        scopes: scopes.unwrap_or_default(),
        token_id,
        expires_at,
        claims,
    };
    p.normalize();
    Ok(p)
}

/// Parse a JSON object, refusing duplicate keys at any depth and trailing bytes.
pub(crate) fn parse_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = NoDuplicates.deserialize(&mut de).ok()?;
    de.end().ok()?;
    match v {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Builds a `serde_json::Value` like `Value::deserialize`, but a repeated object key is an error.
struct NoDuplicates;

impl<'de> DeserializeSeed<'de> for NoDuplicates {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::new();
        while let Some(item) = seq.next_element_seed(NoDuplicates)? {
            v.push(item);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if m.contains_key(&k) {
                return Err(de::Error::custom("duplicate key"));
            }
            let v = map.next_value_seed(NoDuplicates)?;
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn identity_claims_with_control_characters_are_refused() {
        let spec = ClaimMappingSpec {
            tenant: Some("tid".into()),
            ..Default::default()
        };
        let mapping = ClaimMapping::compile(&spec, "m", &mut Vec::new());
        let base = json!({"sub": "alice", "exp": 1, "groups": ["eng"], "tid": "t1", "jti": "j"});
        assert!(principal_from_claims(map(base.clone()), &mapping, Source::Jwt, String::new()).is_ok());
        for (claim, value) in [
            ("sub", json!("alice\r\nx-injected: 1")),
            ("sub", json!("a\u{0}b")),
            ("groups", json!(["eng\nadmins"])),
            ("tid", json!("t\n1")),
            ("jti", json!("j\r")),
        ] {
            let mut c = base.clone();
            c[claim] = value;
            let err = principal_from_claims(map(c), &mapping, Source::Jwt, String::new()).unwrap_err();
            assert!(
                matches!(
                    &err,
                    AuthError::InvalidClaim {
                        problem: ClaimProblem::BadValue,
                        ..
                    }
                ),
                "{claim}: {err:?}"
            );
        }
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert!(parse_object(br#"{"sub":"a","sub":"b"}"#).is_none());
        assert!(parse_object(br#"{"x":{"r":[1],"r":[2]}}"#).is_none());
        assert!(parse_object(br#"{"sub":"a"} x"#).is_none());
        assert!(parse_object(br#"["not","an","object"]"#).is_none());
        assert_eq!(
            parse_object(br#"{"a":[1,2.5,null,true,{"b":"c"}]}"#).map(|m| m.len()),
            Some(1)
        );
    }

    #[test]
    fn json_pointer_names_reach_nested_claims() {
        let c = map(json!({"realm_access":{"roles":["admin"]},"a/b":{"c":"x"}}));
        assert_eq!(lookup(&c, "/realm_access/roles"), Some(&json!(["admin"])));
        assert_eq!(lookup(&c, "/a~1b/c"), Some(&json!("x")));
        assert_eq!(lookup(&c, "/missing/x"), None);
    }

    #[test]
    fn fractional_dates_round_toward_the_stricter_side() {
        let c = map(json!({"exp": 10.9, "nbf": 10.1, "iat": -1}));
        assert_eq!(numeric_date(&c, "exp", false), Ok(Some(10)));
        assert_eq!(numeric_date(&c, "nbf", true), Ok(Some(11)));
        assert!(numeric_date(&c, "iat", false).is_err());
    }
}
