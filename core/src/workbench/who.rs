//! Who is asking, as the workbench is told: a principal written out (test files, `explain`
//! flags), the claims of a token (mapped by the config's own claim mapping), or a token
//! (verified by the config's own identity code).

use crate::config::FilterConfig;
use crate::identity::Identity;
use crate::principal::{Principal, Source};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A principal written out. Every field is optional; `anonymous: true` stands alone.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhoSpec {
    #[serde(default)]
    pub anonymous: bool,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
    /// `jwt` (default), `jwt_authn` or `mtls`.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Any other claims, for rules that match claims.
    #[serde(default)]
    pub claims: Map<String, Value>,
}

impl WhoSpec {
    /// The principal, or why it cannot be one.
    pub fn principal(&self) -> Result<Principal, String> {
        if self.anonymous {
            if *self
                != (WhoSpec {
                    anonymous: true,
                    ..WhoSpec::default()
                })
            {
                return Err("`anonymous: true` is the caller without identity: it takes no other field".into());
            }
            return Ok(Principal::anonymous());
        }
        let Some(subject) = self.subject.clone().filter(|s| !s.is_empty()) else {
            return Err("a principal needs a `subject` (or `anonymous: true`)".into());
        };
        let source = match self.source.as_deref() {
            None | Some("jwt") => Source::Jwt,
            Some("jwt_authn") => Source::JwtAuthn,
            Some("mtls") => Source::Mtls,
            Some(other) => return Err(format!("source {other:?}: expected jwt, jwt_authn or mtls")),
        };
        let mut p = Principal::anonymous();
        p.source = source;
        p.subject = subject;
        p.issuer = self.issuer.clone().unwrap_or_default();
        p.tenant = self.tenant.clone();
        p.groups = self.groups.clone();
        p.roles = self.roles.clone();
        p.scopes = self.scopes.clone();
        p.claims = self.claims.clone();
        p.normalize();
        Ok(p)
    }
}

/// The principal a token's claims (a JSON object) would get under `config`'s identity section.
/// No signature, time or audience check: this is "what if".
pub fn from_claims(config: Option<&FilterConfig>, claims: &[u8]) -> Result<Principal, String> {
    let map: Map<String, Value> =
        serde_json::from_slice(claims).map_err(|e| format!("the claims are not a JSON object: {e}"))?;
    let fallback;
    let identity: &Identity = match config.and_then(|c| c.identity.as_ref()) {
        Some(i) => i,
        None => {
            fallback = Identity::compile(Default::default()).map_err(|e| format!("{e:?}"))?;
            &fallback
        }
    };
    identity
        .principal_from_claims(map)
        .map_err(|e| format!("these claims give no principal: {}", e.description()))
}

/// The principal of a bearer token, verified exactly as the module verifies it at `now`
/// (seconds since the epoch).
pub fn from_token(config: &FilterConfig, token: &str, now: u64) -> Result<Principal, String> {
    let Some(identity) = config.identity.as_ref().filter(|i| i.bearer_enabled()) else {
        return Err(
            "the config verifies no bearer tokens (no identity.providers): pass --claims or principal flags".into(),
        );
    };
    let p = identity
        .verify_bearer(token.trim(), now)
        .map_err(|e| format!("the module would refuse this token: {}", e.description()))?;
    identity
        .check_required_scopes(&p)
        .map_err(|e| format!("the module would refuse this token: {}", e.description()))?;
    Ok(p)
}

/// One line about a principal, for reports.
pub fn describe(p: &Principal) -> String {
    if p.is_anonymous() {
        return "anonymous (no identity)".into();
    }
    let mut s = format!("{} ({}", p.subject, p.source.label());
    if !p.issuer.is_empty() {
        s.push_str(&format!(", issuer {}", p.issuer));
    }
    s.push(')');
    for (name, v) in [("groups", &p.groups), ("roles", &p.roles), ("scopes", &p.scopes)] {
        if !v.is_empty() {
            s.push_str(&format!(" {name} [{}]", v.join(", ")));
        }
    }
    if let Some(t) = &p.tenant {
        s.push_str(&format!(" tenant {t}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_principal_is_normalized_and_anonymous_stands_alone() {
        let w: WhoSpec = serde_json::from_str(r#"{"subject": "bob", "groups": ["b", "a", "a"]}"#).expect("spec");
        let p = w.principal().expect("principal");
        assert_eq!(p.groups, ["a", "b"]);
        assert_eq!(p.source, Source::Jwt);
        let w: WhoSpec = serde_json::from_str(r#"{"anonymous": true, "subject": "x"}"#).expect("spec");
        assert!(w.principal().unwrap_err().contains("takes no other field"));
        assert!(WhoSpec::default()
            .principal()
            .unwrap_err()
            .contains("needs a `subject`"));
    }

    #[test]
    fn claims_are_mapped_by_the_configs_provider() {
        let cfg = FilterConfig::from_json(
            br#"{"identity": {"providers": [{"name": "d", "issuer": "https://idp", "audiences": ["a"], "jwks": {"keys": [{"kty": "EC", "kid": "k", "crv": "P-256", "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4", "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}, "claims": {"groups": "teams", "tenant": "org"}}]}}"#,
        )
        .expect("config");
        let p = from_claims(
            Some(&cfg),
            br#"{"iss": "https://idp", "sub": "ann", "teams": ["dev"], "org": "acme"}"#,
        )
        .expect("principal");
        assert_eq!(
            (p.groups.as_slice(), p.tenant.as_deref()),
            (&["dev".to_string()][..], Some("acme"))
        );
        assert!(from_claims(None, br#"{"iss": "x"}"#)
            .unwrap_err()
            .contains("no principal"));
    }
}
