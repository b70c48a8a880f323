//! The `Authorization: Bearer <token>` header (RFC 6750 §2.1), parsed strictly: one header,
//! one token, b64token characters only. Tokens in query strings or bodies are not looked for
//! (`bearer_methods_supported: ["header"]`).

use super::error::AuthError;

/// Extract the bearer token from every `Authorization` value the request carried.
///
/// - none, or one whose token is empty (`Bearer ` — what clients send before they have a
///   token) → `Ok(None)`, i.e. no credentials;
/// - more than one header → 400 `invalid_request` (which one would a proxy behind us read?);
/// - another scheme (`Basic …`) → [`AuthError::UnsupportedScheme`] (401, plain challenge);
/// - two tokens, or bytes outside b64token → 400 `invalid_request`.
pub fn bearer_token<'a>(values: &[&'a str]) -> Result<Option<&'a str>, AuthError> {
    match values {
        [] => Ok(None),
        [one] => parse_bearer(one),
        _ => Err(AuthError::MalformedRequest("more than one Authorization header")),
    }
}

/// Parse one `Authorization` value. The scheme is case-insensitive (RFC 9110 §11.1).
/// One pass over the token with a byte table: this runs on every request.
pub fn parse_bearer(value: &str) -> Result<Option<&str>, AuthError> {
    let b = value.as_bytes();
    let ows = |c: &u8| *c == b' ' || *c == b'\t';
    // Trim positions sit on ASCII bytes (or the ends), so slicing stays on char boundaries.
    let start = b.iter().position(|c| !ows(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ows(c)).map_or(start, |i| i + 1);
    let v = &value[start..end];
    if v.is_empty() {
        return Ok(None);
    }
    let scheme_end = v.bytes().position(|c| ows(&c)).unwrap_or(v.len());
    if !v[..scheme_end].eq_ignore_ascii_case("bearer") {
        return Err(AuthError::UnsupportedScheme);
    }
    let token_start = v
        .bytes()
        .skip(scheme_end)
        .position(|c| !ows(&c))
        .map_or(v.len(), |i| scheme_end + i);
    let token = &v[token_start..];
    if token.is_empty() {
        return Ok(None);
    }
    // b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    if !body.is_empty() && is_b64token_body(body.as_bytes()) {
        return Ok(Some(token));
    }
    // Slow path, refusals only: say why.
    if token.bytes().any(|c| c == b' ' || c == b'\t') {
        return Err(AuthError::MalformedRequest(
            "more than one token in the Authorization header",
        ));
    }
    Err(AuthError::MalformedRequest(
        "the bearer token has characters outside b64token",
    ))
}

/// Every byte a b64token body character. Branch-free per byte (no early exit), so the
/// compiler vectorizes it: this runs over every token on every request.
fn is_b64token_body(b: &[u8]) -> bool {
    b.iter().fold(true, |ok, &c| {
        let lower = c | 0x20; // folds only A-Z onto a-z; nothing else lands in a-z
        ok & ((lower.wrapping_sub(b'a') < 26)
            | (c.wrapping_sub(b'0') < 10)
            | (c == b'-')
            | (c == b'.')
            | (c == b'_')
            | (c == b'~')
            | (c == b'+')
            | (c == b'/'))
    })
}
