//! Shared helpers for the identity tests: real keys from `tests/keys/` (see its README), a
//! token minter that can write any header and payload (including wrong ones), and a config
//! builder.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use mcp_policy_core::identity::{Identity, IdentitySpec};
use serde_json::{json, Value};

pub const NOW: u64 = 1_700_000_000;
pub const ISS: &str = "https://idp.example";
pub const AUD: &str = "https://gw.example/mcp";

pub const RSA_PEM: &str = include_str!("../keys/rsa.pem");
pub const RSA_PUB_PEM: &str = include_str!("../keys/rsa.pub.pem");
pub const RSA_OTHER_PEM: &str = include_str!("../keys/rsa-other.pem");
pub const EC_PEM: &str = include_str!("../keys/ec.pem");
pub const ED_PEM: &str = include_str!("../keys/ed25519.pem");
pub const JWKS: &str = include_str!("../keys/jwks.json");
pub const JWKS_OTHER: &str = include_str!("../keys/jwks-other.json");

pub fn jwks() -> Value {
    serde_json::from_str(JWKS).unwrap()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Sign `header.payload` as given (no normalization), so tests can mint any token.
pub fn sign_raw(header: &Value, payload: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let msg = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), key, alg).unwrap();
    format!("{msg}.{sig}")
}

pub fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap()
}
pub fn rsa_other_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_OTHER_PEM.as_bytes()).unwrap()
}
pub fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(EC_PEM.as_bytes()).unwrap()
}
pub fn ed_key() -> EncodingKey {
    EncodingKey::from_ed_pem(ED_PEM.as_bytes()).unwrap()
}

/// Claims a good token carries, valid at [`NOW`] for an hour.
pub fn claims() -> Value {
    json!({
        "iss": ISS, "aud": AUD, "sub": "alice", "exp": NOW + 3600, "iat": NOW - 10,
        "scope": "mcp tools:read", "groups": ["eng", "admins"], "roles": ["dev"], "jti": "t-1"
    })
}

/// Merge `patch` into [`claims`]; a `null` in the patch removes the claim.
pub fn claims_with(patch: Value) -> Value {
    let mut c = claims();
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

pub fn rs256(payload: &Value) -> String {
    sign_raw(
        &json!({"alg":"RS256","kid":"rsa-1","typ":"JWT"}),
        payload,
        &rsa_key(),
        Algorithm::RS256,
    )
}
pub fn es256(payload: &Value) -> String {
    sign_raw(
        &json!({"alg":"ES256","kid":"ec-1"}),
        payload,
        &ec_key(),
        Algorithm::ES256,
    )
}
pub fn eddsa(payload: &Value) -> String {
    sign_raw(
        &json!({"alg":"EdDSA","kid":"ed-1"}),
        payload,
        &ed_key(),
        Algorithm::EdDSA,
    )
}

/// The identity section most tests use; `patch` is merged at the top level.
pub fn spec_json(patch: Value) -> Value {
    let mut s = json!({
        "providers": [{
            "name": "corp", "issuer": ISS, "audiences": [AUD], "jwks": jwks(),
            "algorithms": ["RS256", "ES256", "EdDSA"], "leeway_seconds": 30,
            "claims": {"subject": "sub", "groups": "groups", "roles": "roles", "tenant": "tid", "scopes": "scope"}
        }],
        "required_scopes": [],
        "anonymous_methods": ["ping"],
        "resource": AUD,
    });
    for (k, v) in patch.as_object().unwrap() {
        s[k] = v.clone();
    }
    s
}

pub fn spec(v: Value) -> IdentitySpec {
    serde_json::from_value(v).unwrap()
}

pub fn identity(patch: Value) -> Identity {
    match Identity::compile(spec(spec_json(patch))) {
        Ok(i) => i,
        Err(e) => panic!("config refused: {e:?}"),
    }
}

/// Compile and return the error list (panics if the config is accepted).
pub fn config_errors(v: Value) -> Vec<(String, String)> {
    match Identity::compile(spec(v)) {
        Ok(_) => panic!("config unexpectedly accepted"),
        Err(e) => e,
    }
}

/// The provider object of [`spec_json`], patched.
pub fn provider(patch: Value) -> Value {
    let mut p = spec_json(json!({}))["providers"][0].clone();
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            p.as_object_mut().unwrap().remove(k);
        } else {
            p[k] = v.clone();
        }
    }
    p
}
