//! Who is calling: the principal every request gets once identity is established.
//!
//! Owns the shape policy rules match against. Does not own how it is established (that is
//! [`crate::identity`]): a principal from a verified bearer JWT, from Envoy's jwt_authn output
//! or from an mTLS SPIFFE id all look the same to policy.

use serde_json::{Map, Value};

/// Where the identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A bearer JWT the module verified itself.
    Jwt,
    /// Claims forwarded by Envoy's `jwt_authn` filter (trusted because Envoy verified them).
    JwtAuthn,
    /// The peer certificate's SPIFFE URI SAN on an mTLS connection.
    Mtls,
    /// No identity: only methods the config allows anonymously get through.
    Anonymous,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Jwt => "jwt",
            Source::JwtAuthn => "jwt_authn",
            Source::Mtls => "mtls",
            Source::Anonymous => "anonymous",
        }
    }
}

/// An established caller. Built once per request (or taken from the per-worker token cache)
/// and read by policy; nothing on the request path mutates it.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub source: Source,
    /// `sub` for tokens, the SPIFFE id for mTLS, `""` for anonymous.
    pub subject: String,
    /// The issuer (`iss`) or SPIFFE trust domain.
    pub issuer: String,
    pub tenant: Option<String>,
    /// Sorted and de-duplicated, so policy can binary-search.
    pub groups: Vec<String>,
    /// Sorted and de-duplicated.
    pub roles: Vec<String>,
    /// Sorted and de-duplicated (from `scope` / `scp`).
    pub scopes: Vec<String>,
    /// Token id (`jti`), when present: lets a revocation list cut off one token.
    pub token_id: Option<String>,
    /// Expiry (`exp`, seconds since the epoch), when known.
    pub expires_at: Option<u64>,
    /// Every claim as verified, for rules that match any claim.
    pub claims: Map<String, Value>,
}

impl Principal {
    pub fn anonymous() -> Principal {
        Principal {
            source: Source::Anonymous,
            subject: String::new(),
            issuer: String::new(),
            tenant: None,
            groups: Vec::new(),
            roles: Vec::new(),
            scopes: Vec::new(),
            token_id: None,
            expires_at: None,
            claims: Map::new(),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.source == Source::Anonymous
    }

    pub fn in_group(&self, g: &str) -> bool {
        self.groups.binary_search_by(|x| x.as_str().cmp(g)).is_ok()
    }

    pub fn has_role(&self, r: &str) -> bool {
        self.roles.binary_search_by(|x| x.as_str().cmp(r)).is_ok()
    }

    pub fn has_scope(&self, s: &str) -> bool {
        self.scopes.binary_search_by(|x| x.as_str().cmp(s)).is_ok()
    }

    /// Sort and de-duplicate the list fields; call once after building a principal.
    pub fn normalize(&mut self) {
        for v in [&mut self.groups, &mut self.roles, &mut self.scopes] {
            v.sort_unstable();
            v.dedup();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_checks_work_after_normalize() {
        let mut p = Principal::anonymous();
        p.groups = vec!["b".into(), "a".into(), "b".into()];
        p.scopes = vec!["mcp:write".into(), "mcp:read".into()];
        p.normalize();
        assert_eq!(p.groups, ["a", "b"]);
        assert!(p.in_group("a") && !p.in_group("c"));
        assert!(p.has_scope("mcp:read"));
    }
}
