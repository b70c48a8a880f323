//! Why a caller was refused, and how the refusal is spelled on the wire (RFC 6750 §3, RFC 9728 §5.1).
//!
//! Owns the error → HTTP status mapping and the `WWW-Authenticate` challenge text. Every text
//! that can reach a response header is fixed by this module or by validated config: nothing a
//! client sent is ever echoed, so a token cannot inject header bytes.

use std::borrow::Cow;
use std::fmt::Write as _;

/// What was wrong with a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimProblem {
    Missing,
    /// Present but not of the JSON type the claim requires (e.g. a string `exp`).
    WrongType,
    /// Present, right type, but a value the gateway refuses (e.g. an empty `sub`).
    BadValue,
}

impl ClaimProblem {
    fn text(self) -> &'static str {
        match self {
            ClaimProblem::Missing => "is missing",
            ClaimProblem::WrongType => "has the wrong type",
            ClaimProblem::BadValue => "has an invalid value",
        }
    }
}

/// Why no principal could be established (or the one established may not proceed).
///
/// Variants carry no attacker-controlled bytes: claim names come from config or the JWT
/// registry, scopes from config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials at all. The only error that may fall back to an anonymous method.
    #[error("no credentials presented")]
    MissingToken,
    /// An Authorization header with a scheme other than Bearer (e.g. Basic).
    #[error("the Authorization scheme is not Bearer")]
    UnsupportedScheme,
    /// The request itself is malformed: two Authorization headers, two tokens, bad token
    /// characters. RFC 6750 §3.1 `invalid_request` → 400.
    #[error("malformed credentials: {0}")]
    MalformedRequest(&'static str),
    /// Not a parseable JWS, or a forwarded payload that is not base64url JSON.
    #[error("malformed token: {0}")]
    MalformedToken(&'static str),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not yet valid")]
    NotYetValid,
    /// `iss` missing or not one of the configured providers.
    #[error("the token issuer is not trusted")]
    WrongIssuer,
    /// `aud` does not name this resource (RFC 8707).
    #[error("the token audience does not include this resource")]
    WrongAudience,
    /// No key in the issuer's JWKS matches the token's `kid` (or, without `kid`, no single key
    /// fits the algorithm).
    #[error("no signing key matches the token")]
    UnknownKid,
    #[error("the token signature is invalid")]
    BadSignature,
    /// `alg` is `none`, HMAC, unknown, not in the provider's allow-list, or does not fit the key.
    #[error("the token signing algorithm is not allowed")]
    AlgorithmNotAllowed,
    #[error("claim {claim} {}", problem.text())]
    InvalidClaim { claim: String, problem: ClaimProblem },
    /// Valid token, but without every scope `needed` (RFC 6750 §3.1 → 403).
    #[error("insufficient scope; needed: {}", needed.join(" "))]
    InsufficientScope { needed: Vec<String> },
    /// The peer certificate's URI SAN is not a valid SPIFFE workload id.
    #[error("invalid SPIFFE id: {0}")]
    InvalidSpiffeId(&'static str),
    /// A valid SPIFFE id from a trust domain the config does not list.
    #[error("the SPIFFE trust domain is not allowed")]
    UntrustedTrustDomain,
    /// A valid credential whose subject or token id the config has revoked.
    #[error("access has been revoked")]
    Revoked,
}

impl AuthError {
    /// HTTP status: 400 for a malformed request, 403 for insufficient scope and refused mTLS
    /// peers (TLS already authenticated them; re-sending a token cannot help), 401 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::MalformedRequest(_) => 400,
            AuthError::InsufficientScope { .. } | AuthError::InvalidSpiffeId(_) | AuthError::UntrustedTrustDomain => {
                403
            }
            _ => 401,
        }
    }

    /// A bounded label for stats and response-code details (`[a-z_]`, no spaces).
    pub fn label(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::UnsupportedScheme => "unsupported_scheme",
            AuthError::MalformedRequest(_) => "malformed_request",
            AuthError::MalformedToken(_) => "malformed_token",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::UnknownKid => "unknown_kid",
            AuthError::BadSignature => "bad_signature",
            AuthError::AlgorithmNotAllowed => "alg_not_allowed",
            AuthError::InvalidClaim { .. } => "invalid_claim",
            AuthError::InsufficientScope { .. } => "insufficient_scope",
            AuthError::InvalidSpiffeId(_) => "invalid_spiffe_id",
            AuthError::UntrustedTrustDomain => "untrusted_trust_domain",
            AuthError::Revoked => "revoked",
        }
    }

    /// The RFC 6750 §3.1 error code, `None` when the challenge carries none (missing or
    /// unsupported credentials: the client simply has not authenticated yet).
    pub fn oauth_error(&self) -> Option<&'static str> {
        match self {
            AuthError::MissingToken | AuthError::UnsupportedScheme => None,
            AuthError::MalformedRequest(_) => Some("invalid_request"),
            AuthError::InsufficientScope { .. } => Some("insufficient_scope"),
            AuthError::InvalidSpiffeId(_) | AuthError::UntrustedTrustDomain => None,
            _ => Some("invalid_token"),
        }
    }

    /// Whether a Bearer challenge belongs on this refusal. mTLS refusals get none: the peer
    /// is not asked for a token it is not using.
    pub fn has_challenge(&self) -> bool {
        !matches!(self, AuthError::InvalidSpiffeId(_) | AuthError::UntrustedTrustDomain)
    }

    /// Only a request with no credentials at all may continue as anonymous; a bad token never
    /// downgrades to "no token".
    pub fn is_missing_credentials(&self) -> bool {
        matches!(self, AuthError::MissingToken)
    }

    /// Human-readable text that is safe in an `error_description` (RFC 6750 charset).
    pub fn description(&self) -> Cow<'static, str> {
        match self {
            AuthError::MissingToken => Cow::Borrowed("authentication required"),
            AuthError::UnsupportedScheme => Cow::Borrowed("use the Bearer authorization scheme"),
            AuthError::MalformedRequest(why) => Cow::Owned(format!("malformed credentials: {why}")),
            AuthError::MalformedToken(why) => Cow::Owned(format!("malformed token: {why}")),
            AuthError::InvalidClaim { claim, problem } => {
                Cow::Owned(format!("claim {} {}", sanitize(claim), problem.text()))
            }
            AuthError::InsufficientScope { .. } => Cow::Borrowed("the token lacks a required scope"),
            other => Cow::Owned(other.to_string()),
        }
    }
}

/// Build the `WWW-Authenticate` value for `err` (`None` when it takes no challenge).
///
/// `resource_metadata` is the RFC 9728 metadata URL; `scope` the space-separated scopes a
/// token needs (used on 401s too, per MCP 2025-11-25 "scope selection"). Parameter values are
/// validated at config time and re-sanitized here, so the output is always one safe header line.
pub fn www_authenticate(err: &AuthError, resource_metadata: Option<&str>, scope: Option<&str>) -> Option<String> {
    if !err.has_challenge() {
        return None;
    }
    let mut params: Vec<(&str, Cow<'_, str>)> = Vec::with_capacity(4);
    if let Some(url) = resource_metadata {
        params.push(("resource_metadata", Cow::Borrowed(url)));
    }
    if let Some(code) = err.oauth_error() {
        params.push(("error", Cow::Borrowed(code)));
        params.push(("error_description", err.description()));
    }
    let scope = match err {
        AuthError::InsufficientScope { needed } if !needed.is_empty() => Some(Cow::Owned(needed.join(" "))),
        _ => scope.filter(|s| !s.is_empty()).map(Cow::Borrowed),
    };
    if let Some(s) = scope {
        params.push(("scope", s));
    }
    let mut out = String::from("Bearer");
    for (i, (name, value)) in params.iter().enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        let _ = write!(out, "{sep}{name}=\"{}\"", sanitize(value));
    }
    Some(out)
}

/// Keep only the characters RFC 6750 §3 allows inside these quoted strings
/// (`%x20-21 / %x23-5B / %x5D-7E`): no quote, no backslash, no control bytes, no non-ASCII.
/// Anything else becomes `?`, so the value can neither end the quoted string nor the header.
pub(crate) fn sanitize(s: &str) -> Cow<'_, str> {
    let ok = |c: char| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e');
    if s.chars().all(ok) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().map(|c| if ok(c) { c } else { '?' }).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_token_challenge_has_no_error_code() {
        let h = www_authenticate(
            &AuthError::MissingToken,
            Some("https://h/.well-known/oauth-protected-resource/mcp"),
            None,
        );
        assert_eq!(
            h.as_deref(),
            Some(r#"Bearer resource_metadata="https://h/.well-known/oauth-protected-resource/mcp""#)
        );
    }

    #[test]
    fn sanitize_replaces_quotes_backslashes_and_controls() {
        assert_eq!(sanitize("a\"b\\c\r\nd\u{e9}"), "a?b?c??d?");
        assert!(matches!(sanitize("plain text"), Cow::Borrowed(_)));
    }
}
