//! Principal matchers: a [`PrincipalSpec`] compiled so that matching is a few comparisons and
//! binary searches over the principal's sorted lists, with no allocation.

use super::args::Scalar;
use super::decimal::Decimal;
use super::glob::{self, any_matches, Glob};
use super::pointer::{self, Segment};
use super::spec::{IdentitySource, PrincipalSpec};
use crate::principal::{Principal, Source};
use serde_json::Value;

#[derive(Debug, Clone)]
pub(crate) struct PrincipalMatcher {
    anonymous: bool,
    sources: Option<Box<[Source]>>,
    subjects: Option<Box<[Glob]>>,
    issuers: Option<Box<[Glob]>>,
    tenants: Option<Box<[Glob]>>,
    groups: Option<SetMatcher>,
    roles: Option<SetMatcher>,
    scopes: Option<SetMatcher>,
    claims: Box<[ClaimMatcher]>,
}

/// Any-of over a sorted set: exact names by binary search, patterns by scan.
#[derive(Debug, Clone)]
struct SetMatcher {
    exact: Box<[Box<str>]>,
    globs: Box<[Glob]>,
}

impl SetMatcher {
    fn matches(&self, sorted: &[String]) -> bool {
        self.exact
            .iter()
            .any(|e| sorted.binary_search_by(|x| x.as_str().cmp(e)).is_ok())
            || self.globs.iter().any(|g| sorted.iter().any(|x| g.matches(x)))
    }
}

#[derive(Debug, Clone)]
struct ClaimMatcher {
    path: Box<[Segment]>,
    accepted: Box<[ClaimValue]>,
}

#[derive(Debug, Clone)]
enum ClaimValue {
    Pattern(Glob),
    Scalar(Scalar),
}

impl ClaimValue {
    fn matches(&self, v: &Value) -> bool {
        match (self, v) {
            (ClaimValue::Pattern(g), Value::String(s)) => g.matches(s),
            (ClaimValue::Scalar(Scalar::Num(x)), Value::Number(n)) => {
                // Exact: claims are compared by decimal value, like arguments.
                let text = n.to_string();
                match (Decimal::parse(&text), Decimal::parse(x)) {
                    (Some(a), Some(b)) => a.cmp(&b) == std::cmp::Ordering::Equal,
                    _ => false,
                }
            }
            (ClaimValue::Scalar(Scalar::Bool(x)), Value::Bool(b)) => x == b,
            (ClaimValue::Scalar(Scalar::Null), Value::Null) => true,
            _ => false,
        }
    }
}

impl ClaimMatcher {
    fn matches(&self, p: &Principal) -> bool {
        match pointer::value_at(&p.claims, &self.path) {
            None => false,
            Some(Value::Array(items)) => items.iter().any(|i| self.accepted.iter().any(|a| a.matches(i))),
            Some(v) => self.accepted.iter().any(|a| a.matches(v)),
        }
    }
}

impl PrincipalMatcher {
    /// Compile, pushing `(relative path, message)` for every problem.
    pub(crate) fn compile(spec: &PrincipalSpec, errs: &mut Vec<(String, String)>) -> Option<PrincipalMatcher> {
        let before = errs.len();
        let s = spec;
        let constrained = s.sources.is_some()
            || s.subjects.is_some()
            || s.issuers.is_some()
            || s.tenants.is_some()
            || s.groups.is_some()
            || s.roles.is_some()
            || s.scopes.is_some()
            || s.claims.is_some();
        if s.anonymous && constrained {
            errs.push((
                ".anonymous".into(),
                "matches only the caller without identity; it cannot be combined with other fields".into(),
            ));
        }
        let sources = s.sources.as_ref().map(|v| {
            if v.is_empty() {
                errs.push((".sources".into(), EMPTY_LIST.into()));
            }
            v.iter()
                .map(|s| match s {
                    IdentitySource::Jwt => Source::Jwt,
                    IdentitySource::JwtAuthn => Source::JwtAuthn,
                    IdentitySource::Mtls => Source::Mtls,
                })
                .collect::<Box<[_]>>()
        });
        let subjects = globs(".subjects", s.subjects.as_deref(), errs);
        let issuers = globs(".issuers", s.issuers.as_deref(), errs);
        let tenants = globs(".tenants", s.tenants.as_deref(), errs);
        let groups = set(".groups", s.groups.as_deref(), errs);
        let roles = set(".roles", s.roles.as_deref(), errs);
        let scopes = set(".scopes", s.scopes.as_deref(), errs);
        let mut claims = Vec::new();
        if let Some(map) = &s.claims {
            if map.is_empty() {
                errs.push((
                    ".claims".into(),
                    "empty map: omit `claims` to not constrain claims".into(),
                ));
            }
            for (key, values) in map {
                let at = format!(".claims.{key}");
                let path = match pointer::compile(key) {
                    Ok(p) => p,
                    Err(e) => {
                        errs.push((at, e));
                        continue;
                    }
                };
                if values.is_empty() {
                    errs.push((at.clone(), EMPTY_LIST.into()));
                }
                let mut accepted = Vec::with_capacity(values.len());
                for (i, v) in values.iter().enumerate() {
                    match v {
                        Value::String(p) if p.is_empty() => errs.push((format!("{at}[{i}]"), "empty pattern".into())),
                        Value::String(p) if glob::unsupported(p, glob::Text::Free).is_some() => errs.push((
                            format!("{at}[{i}]"),
                            format!("{p:?}: {}", glob::unsupported(p, glob::Text::Free).unwrap_or_default()),
                        )),
                        Value::String(p) => accepted.push(ClaimValue::Pattern(Glob::new(p))),
                        other => match Scalar::from_json(other) {
                            Some(x) => accepted.push(ClaimValue::Scalar(x)),
                            None => errs.push((
                                format!("{at}[{i}]"),
                                "must be a string pattern, number, boolean or null".into(),
                            )),
                        },
                    }
                }
                claims.push(ClaimMatcher {
                    path,
                    accepted: accepted.into(),
                });
            }
        }
        if errs.len() != before {
            return None;
        }
        Some(PrincipalMatcher {
            anonymous: s.anonymous,
            sources,
            subjects,
            issuers,
            tenants,
            groups,
            roles,
            scopes,
            claims: claims.into(),
        })
    }

    pub(crate) fn matches(&self, p: &Principal) -> bool {
        if p.is_anonymous() || self.anonymous {
            return p.is_anonymous() && self.anonymous;
        }
        self.sources.as_ref().is_none_or(|s| s.contains(&p.source))
            && self.subjects.as_ref().is_none_or(|g| any_matches(g, &p.subject))
            && self.issuers.as_ref().is_none_or(|g| any_matches(g, &p.issuer))
            && self
                .tenants
                .as_ref()
                .is_none_or(|g| p.tenant.as_deref().is_some_and(|t| any_matches(g, t)))
            && self.groups.as_ref().is_none_or(|m| m.matches(&p.groups))
            && self.roles.as_ref().is_none_or(|m| m.matches(&p.roles))
            && self.scopes.as_ref().is_none_or(|m| m.matches(&p.scopes))
            && self.claims.iter().all(|c| c.matches(p))
    }
}

const EMPTY_LIST: &str = "empty list matches nobody: omit the field to match anyone";

fn check_patterns(at: &str, v: &[String], errs: &mut Vec<(String, String)>) {
    if v.is_empty() {
        errs.push((at.into(), EMPTY_LIST.into()));
    }
    for (i, p) in v.iter().enumerate() {
        if p.is_empty() {
            errs.push((format!("{at}[{i}]"), "empty pattern".into()));
        } else if let Some(why) = glob::unsupported(p, glob::Text::Free) {
            errs.push((format!("{at}[{i}]"), format!("{p:?}: {why}")));
        }
    }
}

fn globs(at: &str, v: Option<&[String]>, errs: &mut Vec<(String, String)>) -> Option<Box<[Glob]>> {
    let v = v?;
    check_patterns(at, v, errs);
    Some(v.iter().map(|p| Glob::new(p)).collect())
}

fn set(at: &str, v: Option<&[String]>, errs: &mut Vec<(String, String)>) -> Option<SetMatcher> {
    let v = v?;
    check_patterns(at, v, errs);
    let mut exact = Vec::new();
    let mut globs = Vec::new();
    for p in v {
        match Glob::new(p) {
            Glob::Exact(e) => exact.push(e),
            g => globs.push(g),
        }
    }
    Some(SetMatcher {
        exact: exact.into(),
        globs: globs.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matcher(spec: Value) -> PrincipalMatcher {
        let spec: PrincipalSpec = serde_json::from_value(spec).unwrap();
        let mut errs = Vec::new();
        let m = PrincipalMatcher::compile(&spec, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        m.unwrap()
    }

    fn alice() -> Principal {
        let mut p = Principal::anonymous();
        p.source = Source::Jwt;
        p.subject = "alice@acme.com".into();
        p.issuer = "https://idp.acme.com".into();
        p.tenant = Some("acme".into());
        p.groups = vec!["devs".into(), "eng-platform".into()];
        p.roles = vec!["reader".into()];
        p.scopes = vec!["mcp:read".into(), "mcp:write".into()];
        p.claims = json!({"email_verified": true, "org": {"tier": "gold"}, "level": 3, "teams": ["a", "b"]})
            .as_object()
            .unwrap()
            .clone();
        p.normalize();
        p
    }

    #[test]
    fn an_empty_matcher_matches_every_authenticated_principal_but_not_the_anonymous_one() {
        let m = matcher(json!({}));
        assert!(m.matches(&alice()));
        assert!(!m.matches(&Principal::anonymous()));
    }

    #[test]
    fn the_anonymous_matcher_matches_only_the_anonymous_principal() {
        let m = matcher(json!({"anonymous": true}));
        assert!(m.matches(&Principal::anonymous()));
        assert!(!m.matches(&alice()));
    }

    #[test]
    fn subject_issuer_and_tenant_match_by_pattern() {
        assert!(matcher(json!({"subjects": ["*@acme.com"]})).matches(&alice()));
        assert!(!matcher(json!({"subjects": ["bob@acme.com"]})).matches(&alice()));
        assert!(matcher(json!({"issuers": ["https://idp.acme.com"]})).matches(&alice()));
        assert!(matcher(json!({"tenants": ["acme", "other"]})).matches(&alice()));
        assert!(!matcher(json!({"tenants": ["other"]})).matches(&alice()));
        let mut no_tenant = alice();
        no_tenant.tenant = None;
        assert!(!matcher(json!({"tenants": ["*"]})).matches(&no_tenant));
    }

    #[test]
    fn groups_roles_and_scopes_match_when_any_entry_is_held() {
        assert!(matcher(json!({"groups": ["admins", "devs"]})).matches(&alice()));
        assert!(!matcher(json!({"groups": ["admins"]})).matches(&alice()));
        assert!(matcher(json!({"groups": ["eng-*"]})).matches(&alice()));
        assert!(matcher(json!({"roles": ["reader"]})).matches(&alice()));
        assert!(!matcher(json!({"roles": ["writer"]})).matches(&alice()));
        assert!(matcher(json!({"scopes": ["mcp:write"]})).matches(&alice()));
        assert!(!matcher(json!({"scopes": ["mcp:admin"]})).matches(&alice()));
    }

    #[test]
    fn every_field_of_a_matcher_must_match() {
        assert!(matcher(json!({"groups": ["devs"], "tenants": ["acme"]})).matches(&alice()));
        assert!(!matcher(json!({"groups": ["devs"], "tenants": ["other"]})).matches(&alice()));
    }

    #[test]
    fn sources_restrict_where_the_identity_came_from() {
        assert!(matcher(json!({"sources": ["jwt", "jwt_authn"]})).matches(&alice()));
        assert!(!matcher(json!({"sources": ["mtls"]})).matches(&alice()));
    }

    #[test]
    fn claims_match_by_name_pointer_value_and_array_element() {
        assert!(matcher(json!({"claims": {"email_verified": [true]}})).matches(&alice()));
        assert!(!matcher(json!({"claims": {"email_verified": [false]}})).matches(&alice()));
        assert!(matcher(json!({"claims": {"/org/tier": ["gold", "platinum"]}})).matches(&alice()));
        assert!(matcher(json!({"claims": {"/org/tier": ["g*"]}})).matches(&alice()));
        assert!(matcher(json!({"claims": {"level": [3.0]}})).matches(&alice()));
        assert!(matcher(json!({"claims": {"teams": ["b"]}})).matches(&alice()));
        assert!(!matcher(json!({"claims": {"teams": ["c"]}})).matches(&alice()));
        assert!(!matcher(json!({"claims": {"missing": ["*"]}})).matches(&alice()));
        // A string pattern never matches a non-string claim.
        assert!(!matcher(json!({"claims": {"level": ["3"]}})).matches(&alice()));
        assert!(!matcher(json!({"claims": {"email_verified": [true], "level": [4]}})).matches(&alice()));
    }

    #[test]
    fn bad_matchers_report_every_problem_with_its_path() {
        let spec: PrincipalSpec = serde_json::from_value(json!({
            "anonymous": true,
            "groups": [],
            "roles": ["ok", ""],
            "claims": {"/a~x": [1], "b": [], "c": [[1]]}
        }))
        .unwrap();
        let mut errs = Vec::new();
        assert!(PrincipalMatcher::compile(&spec, &mut errs).is_none());
        let paths: Vec<_> = errs.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                ".anonymous",
                ".groups",
                ".roles[1]",
                ".claims./a~x",
                ".claims.b",
                ".claims.c[0]"
            ]
        );
    }
}
