//! Bearer JWT verification (RFC 7515 / 7519 / 8725 / 9068) against the compiled providers.
//!
//! Order matters and is fixed: shape → header → provider by unverified `iss` → alg allow-list
//! → key by `kid` → alg fits key → signature → claims. Nothing from the payload besides `iss`
//! (needed to pick the keys) is believed before the signature checks out.

use super::claims::{self, ClaimMapping};
use super::error::{AuthError, ClaimProblem};
use super::jwks::{parse_alg, Key};
use crate::principal::{Principal, Source};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

/// Larger tokens are refused before any decoding. Real access tokens are 1–4 KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// One compiled token issuer.
#[derive(Debug, Clone)]
pub(crate) struct Provider {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    pub leeway: u64,
    pub claims: ClaimMapping,
    pub keys: Vec<Key>,
}

fn malformed(why: &'static str) -> AuthError {
    AuthError::MalformedToken(why)
}

fn decode_part(part: &str, what: &'static str) -> Result<Map<String, Value>, AuthError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed(what))?;
    claims::parse_object(&bytes).ok_or(malformed(what))
}

/// `typ` values an access token may carry (RFC 7519 §5.1, RFC 9068 §2.1); compared
/// case-insensitively, with or without the `application/` prefix (RFC 7515 §4.1.9).
fn typ_ok(typ: &str) -> bool {
    let t = typ
        .get(..12)
        .filter(|p| p.eq_ignore_ascii_case("application/"))
        .map_or(typ, |_| &typ[12..]);
    t.eq_ignore_ascii_case("jwt") || t.eq_ignore_ascii_case("at+jwt")
}

/// Verify a compact JWS and build its principal. Returns the principal and the first second
/// at which it is dead (`exp + leeway`), for the cache.
pub(crate) fn verify(providers: &[Provider], token: &str, now: u64) -> Result<(Principal, u64), AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(malformed("the token is too large"));
    }
    let mut parts = token.split('.');
    let (h, p, sig) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() => (h, p, s),
        _ => return Err(malformed("not a compact JWS (header.payload.signature)")),
    };

    let header = decode_part(h, "the header is not base64url JSON")?;
    let alg = match header.get("alg") {
        Some(Value::String(a)) => parse_alg(a).map_err(|_| AuthError::AlgorithmNotAllowed)?,
        _ => return Err(malformed("the header has no alg")),
    };
    // RFC 7515 §4.1.11: extensions listed in `crit` must be understood; we understand none.
    if header.contains_key("crit") {
        return Err(malformed("the header lists critical extensions"));
    }
    match header.get("typ") {
        None => {}
        Some(Value::String(t)) if typ_ok(t) => {}
        Some(_) => return Err(malformed("the header typ is not a JWT access token type")),
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.as_str()),
        Some(_) => return Err(malformed("the header kid is not a string")),
    };

    let payload = decode_part(p, "the payload is not base64url JSON")?;
    let issuer = match payload.get("iss") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(AuthError::InvalidClaim {
                claim: "iss".into(),
                problem: ClaimProblem::WrongType,
            })
        }
        None => return Err(AuthError::WrongIssuer),
    };
    let provider = providers
        .iter()
        .find(|pr| pr.issuer == issuer)
        .ok_or(AuthError::WrongIssuer)?;
    if !provider.algorithms.contains(&alg) {
        return Err(AuthError::AlgorithmNotAllowed);
    }
    let key = select_key(&provider.keys, kid, alg)?;
    if !key.algs.contains(&alg) {
        return Err(AuthError::AlgorithmNotAllowed);
    }
    let signing_input = &token[..h.len() + 1 + p.len()];
    match jsonwebtoken::crypto::verify(sig, signing_input.as_bytes(), &key.key, alg) {
        Ok(true) => {}
        _ => return Err(AuthError::BadSignature),
    }

    // Signed by a key we trust: now the claims count.
    claims::check_time_claim_types(&payload)?;
    let exp = claims::numeric_date(&payload, "exp", false)?.ok_or(AuthError::InvalidClaim {
        claim: "exp".into(),
        problem: ClaimProblem::Missing,
    })?;
    // RFC 7519 §4.1.4: valid only *before* exp; leeway stretches that, nothing more.
    let dead_at = exp.saturating_add(provider.leeway);
    if now >= dead_at {
        return Err(AuthError::Expired);
    }
    // RFC 7519 §4.1.5: valid from nbf on (inclusive), minus leeway.
    if let Some(nbf) = claims::numeric_date(&payload, "nbf", true)? {
        if nbf > now.saturating_add(provider.leeway) {
            return Err(AuthError::NotYetValid);
        }
    }
    check_audience(&payload, &provider.audiences)?;
    let issuer = issuer.to_owned();
    let principal = claims::principal_from_claims(payload, &provider.claims, Source::Jwt, issuer)?;
    Ok((principal, dead_at))
}

/// With a `kid`: that key or nothing. Without: the one key that can verify `alg`, if exactly
/// one can (RFC 7517 §4.5 leaves selection to us; guessing among several would be a
/// verify-loop oracle).
fn select_key<'k>(keys: &'k [Key], kid: Option<&str>, alg: Algorithm) -> Result<&'k Key, AuthError> {
    match kid {
        Some(kid) => keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .ok_or(AuthError::UnknownKid),
        None => {
            let mut fitting = keys.iter().filter(|k| k.algs.contains(&alg));
            match (fitting.next(), fitting.next()) {
                (Some(k), None) => Ok(k),
                _ => Err(AuthError::UnknownKid),
            }
        }
    }
}

/// RFC 8707 / RFC 9068 §4: `aud` (a string or an array of strings) must name one of ours.
fn check_audience(payload: &Map<String, Value>, ours: &[String]) -> Result<(), AuthError> {
    let wrong_type = || AuthError::InvalidClaim {
        claim: "aud".into(),
        problem: ClaimProblem::WrongType,
    };
    let hit = match payload.get("aud") {
        None => false,
        Some(Value::String(a)) => ours.iter().any(|o| o == a),
        Some(Value::Array(items)) => {
            let mut hit = false;
            for it in items {
                let Value::String(a) = it else { return Err(wrong_type()) };
                hit |= ours.iter().any(|o| o == a);
            }
            hit
        }
        Some(_) => return Err(wrong_type()),
    };
    if hit {
        Ok(())
    } else {
        Err(AuthError::WrongAudience)
    }
}
