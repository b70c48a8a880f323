//! RFC 9728 protected-resource metadata: where it lives and what it says.
//!
//! Owns the well-known URL computation (§3.1) and the metadata document (§2). Serving it is
//! the filter's job; the document is built once at config load.

use serde_json::{json, Map, Value};

/// The well-known suffix RFC 9728 registers.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// A checked absolute URL split at the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceUrl<'a> {
    /// `scheme://authority`
    pub origin: &'a str,
    /// The path, `""` when there is none.
    pub path: &'a str,
}

/// Check a resource identifier (RFC 8707 §2, RFC 9728 §1.2): an absolute `https` URL (plain
/// `http` only for loopback hosts, for local testing), no userinfo, query or fragment, and
/// only characters that are safe inside a quoted header parameter.
pub fn parse_resource_url(url: &str) -> Result<ResourceUrl<'_>, String> {
    if let Some(c) = url.chars().find(|c| !is_url_char(*c)) {
        return Err(format!("contains a character not allowed here: {c:?}"));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "must be an absolute URL (https://host/path)".to_owned())?;
    let auth_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(auth_end);
    if authority.is_empty() {
        return Err("has no host".into());
    }
    if authority.contains('@') {
        return Err("must not contain userinfo".into());
    }
    if url.contains('?') {
        return Err("must not contain a query".into());
    }
    if url.contains('#') {
        return Err("must not contain a fragment (RFC 8707 §2)".into());
    }
    match scheme {
        "https" => {}
        "http" if is_loopback(authority) => {}
        "http" => return Err("must use https (plain http is allowed only for localhost)".into()),
        _ => return Err(format!("must use https, got scheme {scheme:?}")),
    }
    let origin = &url[..scheme.len() + 3 + authority.len()];
    Ok(ResourceUrl { origin, path })
}

fn is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// RFC 3986 characters minus the ones that could break a quoted header value.
fn is_url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

/// The metadata path for a resource: the well-known suffix inserted between host and path
/// (RFC 9728 §3.1), e.g. `https://h/mcp` → `/.well-known/oauth-protected-resource/mcp`.
/// A bare `/` path counts as none ("any terminating slash following the host is removed").
pub fn metadata_path_for(resource: &ResourceUrl<'_>) -> String {
    let path = if resource.path == "/" { "" } else { resource.path };
    format!("{WELL_KNOWN}{path}")
}

/// The full metadata URL for a resource identifier, e.g. `https://h/mcp` →
/// `https://h/.well-known/oauth-protected-resource/mcp`.
pub fn metadata_url_for(resource: &str) -> Result<String, String> {
    let r = parse_resource_url(resource)?;
    Ok(format!("{}{}", r.origin, metadata_path_for(&r)))
}

/// Check a configured metadata path: absolute, no query or fragment, safe characters.
pub(crate) fn check_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err("must start with \"/\"".into());
    }
    if p.contains(['?', '#']) || p.chars().any(|c| !is_url_char(c)) {
        return Err("must be a plain path (no query, fragment or unsafe characters)".into());
    }
    Ok(())
}

/// The metadata document (RFC 9728 §2). Empty lists are left out, as the RFC's optional
/// members are.
pub fn protected_resource_metadata(
    resource: &str,
    authorization_servers: &[String],
    scopes_supported: &[String],
    resource_name: Option<&str>,
) -> Value {
    let mut m = Map::new();
    m.insert("resource".into(), json!(resource));
    if !authorization_servers.is_empty() {
        m.insert("authorization_servers".into(), json!(authorization_servers));
    }
    if !scopes_supported.is_empty() {
        m.insert("scopes_supported".into(), json!(scopes_supported));
    }
    m.insert("bearer_methods_supported".into(), json!(["header"]));
    if let Some(n) = resource_name {
        m.insert("resource_name".into(), json!(n));
    }
    Value::Object(m)
}
