//! JWKS → verification keys, checked once at config load. Only public asymmetric signing keys
//! are accepted: `oct` (HMAC) keys and private key material are config errors, so no token can
//! ever be checked against a shared secret (the RS256/HS256 confusion attack has nothing to use).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

/// Every algorithm the module can verify. HMAC and `none` are deliberately absent.
pub(crate) const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

const RSA_ALGS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Parse an `alg` name into an algorithm the module accepts; `Err` explains a refusal.
pub(crate) fn parse_alg(name: &str) -> Result<Algorithm, String> {
    match name {
        "RS256" => Ok(Algorithm::RS256),
        "RS384" => Ok(Algorithm::RS384),
        "RS512" => Ok(Algorithm::RS512),
        "PS256" => Ok(Algorithm::PS256),
        "PS384" => Ok(Algorithm::PS384),
        "PS512" => Ok(Algorithm::PS512),
        "ES256" => Ok(Algorithm::ES256),
        "ES384" => Ok(Algorithm::ES384),
        "EdDSA" => Ok(Algorithm::EdDSA),
        "none" => Err("\"none\" is never accepted: tokens must be signed".into()),
        "HS256" | "HS384" | "HS512" => Err(format!(
            "{name:?} is never accepted: HMAC needs a shared secret, and keys here are public"
        )),
        other => Err(format!(
            "unknown algorithm {other:?}; supported: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
        )),
    }
}

/// The algorithm's JWS name (for messages).
pub(crate) fn alg_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        _ => "HMAC",
    }
}

/// One verification key.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub kid: Option<String>,
    /// Algorithms this key may verify: fits its type, its JWK `alg` (if any) and the
    /// provider's allow-list. Never empty.
    pub algs: Vec<Algorithm>,
    pub key: DecodingKey,
}

/// Members that only a private (or symmetric) JWK has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Compile a JWKS document. `path` names it (e.g. `identity.providers[0].jwks`).
pub(crate) fn compile(doc: &Value, allowed: &[Algorithm], path: &str, errors: &mut Vec<(String, String)>) -> Vec<Key> {
    let mut out = Vec::new();
    let Some(keys) = doc.as_object().and_then(|o| o.get("keys")) else {
        errors.push((path.into(), "must be a JWKS object with a \"keys\" array".into()));
        return out;
    };
    let Some(keys) = keys.as_array() else {
        errors.push((format!("{path}.keys"), "must be an array".into()));
        return out;
    };
    let before = errors.len();
    for (i, jwk) in keys.iter().enumerate() {
        let kpath = format!("{path}.keys[{i}]");
        let Some(jwk) = jwk.as_object() else {
            errors.push((kpath, "must be a JWK object".into()));
            continue;
        };
        match compile_key(jwk, allowed) {
            Ok(Some(k)) => {
                if let Some(kid) = &k.kid {
                    if out.iter().any(|o: &Key| o.kid.as_deref() == Some(kid)) {
                        errors.push((format!("{kpath}.kid"), format!("duplicate kid {kid:?}")));
                        continue;
                    }
                }
                out.push(k)
            }
            Ok(None) => {} // an encryption key: legitimately published, not ours to use.
            Err((field, msg)) => {
                let p = if field.is_empty() {
                    kpath
                } else {
                    format!("{kpath}.{field}")
                };
                errors.push((p, msg));
            }
        }
    }
    if out.is_empty() && errors.len() == before {
        errors.push((format!("{path}.keys"), "contains no usable signing key".into()));
    }
    out
}

type KeyErr = (&'static str, String);

fn str_member<'a>(jwk: &'a Map<String, Value>, name: &'static str) -> Result<Option<&'a str>, KeyErr> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err((name, "must be a string".into())),
    }
}

fn b64_member(jwk: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, KeyErr> {
    let s = str_member(jwk, name)?.ok_or((name, "is required".to_owned()))?;
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| (name, "must be base64url without padding".to_owned()))
}

/// `Ok(None)` for keys that are not for signatures (`use: "enc"`, `key_ops` without `verify`).
fn compile_key(jwk: &Map<String, Value>, allowed: &[Algorithm]) -> Result<Option<Key>, KeyErr> {
    let kty = str_member(jwk, "kty")?.ok_or(("kty", "is required".to_owned()))?;
    if kty == "oct" {
        return Err(("", "unsupported kty \"oct\": symmetric keys are never accepted".into()));
    }
    if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err((
            "",
            format!("contains private key material ({m:?}); a JWKS must hold public keys only"),
        ));
    }
    match str_member(jwk, "use")? {
        None | Some("sig") => {}
        Some("enc") => return Ok(None),
        Some(other) => return Err(("use", format!("must be \"sig\" or \"enc\", got {other:?}"))),
    }
    if let Some(ops) = jwk.get("key_ops") {
        let ops = ops
            .as_array()
            .ok_or(("key_ops", "must be an array of strings".to_owned()))?;
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return Ok(None);
        }
    }
    let kid = str_member(jwk, "kid")?.map(str::to_owned);
    let (fits, key): (Vec<Algorithm>, DecodingKey) = match kty {
        "RSA" => {
            let n = b64_member(jwk, "n")?;
            let e = b64_member(jwk, "e")?;
            let n = strip_zeros(&n);
            let e = strip_zeros(&e);
            let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
            if bits < 2048 {
                return Err(("n", format!("RSA modulus is {bits} bits; at least 2048 are required")));
            }
            if bits > 4096 {
                return Err(("n", format!("RSA modulus is {bits} bits; at most 4096 are supported")));
            }
            if e.is_empty() || e.len() > 4 || e[e.len() - 1] & 1 == 0 || e == [1] {
                return Err(("e", "is not a valid RSA public exponent".into()));
            }
            (RSA_ALGS.to_vec(), DecodingKey::from_rsa_raw_components(n, e))
        }
        "EC" => {
            let crv = str_member(jwk, "crv")?.ok_or(("crv", "is required".to_owned()))?;
            let (alg, len) = match crv {
                "P-256" => (Algorithm::ES256, 32),
                "P-384" => (Algorithm::ES384, 48),
                other => {
                    return Err((
                        "crv",
                        format!("unsupported EC curve {other:?}; supported: P-256, P-384"),
                    ))
                }
            };
            let x = b64_member(jwk, "x")?;
            let y = b64_member(jwk, "y")?;
            if x.len() != len || y.len() != len {
                return Err(("", format!("{crv} coordinates must be {len} bytes each")));
            }
            let mut sec1 = Vec::with_capacity(1 + 2 * len);
            sec1.push(0x04);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            let key = DecodingKey::from_ec_der(&sec1);
            // The verifier parses the point when built: an off-curve point fails here, once,
            // instead of on every request.
            if jsonwebtoken::crypto::verify("AA", b"", &key, alg).is_err() {
                return Err(("", format!("x/y is not a point on {crv}")));
            }
            (vec![alg], key)
        }
        "OKP" => {
            let crv = str_member(jwk, "crv")?.ok_or(("crv", "is required".to_owned()))?;
            if crv != "Ed25519" {
                return Err(("crv", format!("unsupported OKP curve {crv:?}; supported: Ed25519")));
            }
            let x = b64_member(jwk, "x")?;
            if x.len() != 32 {
                return Err(("x", "an Ed25519 public key is 32 bytes".into()));
            }
            let key = DecodingKey::from_ed_der(&x);
            if jsonwebtoken::crypto::verify("AA", b"", &key, Algorithm::EdDSA).is_err() {
                return Err(("x", "is not a valid Ed25519 public key".into()));
            }
            (vec![Algorithm::EdDSA], key)
        }
        other => return Err(("kty", format!("unsupported kty {other:?}; supported: RSA, EC, OKP"))),
    };
    let mut algs = fits;
    if let Some(a) = str_member(jwk, "alg")? {
        let a = parse_alg(a).map_err(|m| ("alg", m))?;
        if !algs.contains(&a) {
            return Err(("alg", format!("{} does not fit this {kty} key", alg_name(a))));
        }
        algs = vec![a];
    }
    algs.retain(|a| allowed.contains(a));
    if algs.is_empty() {
        let allowed: Vec<_> = allowed.iter().map(|a| alg_name(*a)).collect();
        return Err((
            "",
            format!(
                "no allowed algorithm fits this {kty} key (allowed: {})",
                allowed.join(", ")
            ),
        ));
    }
    Ok(Some(Key { kid, algs, key }))
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[i..]
}
