//! SPIFFE ids (SPIFFE-ID spec §2, X509-SVID §2): parse and check, nothing else. Which trust
//! domains are accepted is config's business ([`super::Identity`]).

/// A parsed workload SPIFFE id, borrowing the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpiffeId<'a> {
    pub trust_domain: &'a str,
    /// Starts with `/`; never empty (a bare trust-domain id names no workload).
    pub path: &'a str,
}

const MAX_LEN: usize = 2048;

/// Parse `spiffe://trust-domain/path`. Strict like go-spiffe: lowercase scheme and trust
/// domain, `[a-z0-9._-]` in the trust domain (so no port or userinfo), `[A-Za-z0-9._-]`
/// path segments that are neither empty, `.` nor `..`, no percent-encoding, query or fragment.
pub fn parse_spiffe_id(uri: &str) -> Result<SpiffeId<'_>, &'static str> {
    if uri.len() > MAX_LEN {
        return Err("longer than 2048 bytes");
    }
    let rest = uri.strip_prefix("spiffe://").ok_or("scheme must be spiffe://")?;
    let (td, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    check_trust_domain(td)?;
    if path.is_empty() {
        return Err("has no workload path");
    }
    for seg in path[1..].split('/') {
        match seg {
            "" => return Err("path has an empty segment"),
            "." | ".." => return Err("path has a dot segment"),
            s if !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) =>
            {
                return Err("path has a character outside [A-Za-z0-9._-]");
            }
            _ => {}
        }
    }
    Ok(SpiffeId { trust_domain: td, path })
}

/// Check a trust domain name: non-empty, at most 255 bytes, `[a-z0-9._-]`.
pub fn check_trust_domain(td: &str) -> Result<(), &'static str> {
    if td.is_empty() {
        return Err("trust domain is empty");
    }
    if td.len() > 255 {
        return Err("trust domain is longer than 255 bytes");
    }
    if !td
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err("trust domain has a character outside [a-z0-9._-]");
    }
    Ok(())
}
