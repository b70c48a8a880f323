//! Identity sources besides our own JWT check (jwt_authn payload, SPIFFE), how `establish`
//! chooses among them, and how refusals are spelled (status, WWW-Authenticate, RFC 9728).

mod identity_support;

use identity_support::*;
use mcp_policy_core::identity::{
    metadata_url_for, parse_spiffe_id, AuthError, ClaimProblem, Credentials, Identity, IdentitySpec, SpiffeId,
};
use mcp_policy_core::principal::Source;
use serde_json::{json, Value};

fn payload(v: &Value) -> String {
    b64(v.to_string().as_bytes())
}

fn full() -> Identity {
    identity(json!({
        "jwt_authn": {"payload_header": "X-JWT-Payload"},
        "mtls": {"trust_domains": ["example.org"]},
        "required_scopes": ["mcp"],
        "resource_name": "Example MCP",
    }))
}

// --- jwt_authn -------------------------------------------------------------------------

#[test]
fn jwt_authn_payload_becomes_a_jwt_authn_principal_with_the_same_mapping() {
    let id = full();
    assert_eq!(id.jwt_authn_header(), Some("x-jwt-payload"));
    let p = id.principal_from_jwt_authn(&payload(&claims())).unwrap();
    assert_eq!(p.source, Source::JwtAuthn);
    assert_eq!(p.subject, "alice");
    assert_eq!(p.issuer, ISS);
    assert_eq!(p.groups, ["admins", "eng"]);
    assert_eq!(p.scopes, ["mcp", "tools:read"]);
}

#[test]
fn jwt_authn_payload_claims_are_type_checked_strictly() {
    let id = full();
    for (patch, claim, problem) in [
        (json!({"exp": "1700000000"}), "exp", ClaimProblem::WrongType),
        (json!({"sub": 5}), "sub", ClaimProblem::WrongType),
        (json!({"sub": null}), "sub", ClaimProblem::Missing),
        (json!({"groups": [1]}), "groups", ClaimProblem::WrongType),
        (json!({"iss": ["x"]}), "iss", ClaimProblem::WrongType),
    ] {
        let r = id.principal_from_jwt_authn(&payload(&claims_with(patch.clone())));
        assert_eq!(
            r,
            Err(AuthError::InvalidClaim {
                claim: claim.into(),
                problem
            }),
            "{patch}"
        );
    }
}

#[test]
fn jwt_authn_payload_is_ignored_when_not_configured() {
    let id = identity(json!({}));
    assert_eq!(
        id.principal_from_jwt_authn(&payload(&claims())),
        Err(AuthError::MissingToken)
    );
    let p = [payload(&claims())];
    let jp: Vec<&str> = p.iter().map(String::as_str).collect();
    let creds = Credentials {
        jwt_payload: &jp,
        ..Default::default()
    };
    assert_eq!(
        id.establish(&creds, &mut id.new_token_cache(), NOW),
        Err(AuthError::MissingToken)
    );
}

// --- SPIFFE ---------------------------------------------------------------------------------

#[test]
fn valid_spiffe_ids_parse_into_trust_domain_and_path() {
    assert_eq!(
        parse_spiffe_id("spiffe://example.org/ns/prod/sa/agent"),
        Ok(SpiffeId {
            trust_domain: "example.org",
            path: "/ns/prod/sa/agent"
        })
    );
    assert!(parse_spiffe_id("spiffe://a-b_c.d/W.x-y_Z9").is_ok());
}

#[test]
fn malformed_spiffe_ids_are_refused() {
    let long = format!("spiffe://example.org/{}", "a".repeat(2048));
    for bad in [
        "https://example.org/ns/x",
        "SPIFFE://example.org/ns/x",
        "spiffe://Example.org/ns/x",
        "spiffe://example.org:443/ns/x",
        "spiffe://user@example.org/ns/x",
        "spiffe:///ns/x",
        "spiffe://example.org",
        "spiffe://example.org/",
        "spiffe://example.org/ns//x",
        "spiffe://example.org/ns/x/",
        "spiffe://example.org/ns/../x",
        "spiffe://example.org/./x",
        "spiffe://example.org/ns/%41",
        "spiffe://example.org/ns/x?q=1",
        "spiffe://example.org/ns/x#f",
        "spiffe://example.org/ns/caf\u{e9}",
        long.as_str(),
    ] {
        assert!(parse_spiffe_id(bad).is_err(), "{bad}");
    }
}

#[test]
fn spiffe_principal_uses_the_full_id_as_subject_and_the_trust_domain_as_issuer() {
    let p = full()
        .principal_from_spiffe_id("spiffe://example.org/ns/prod/sa/agent")
        .unwrap();
    assert_eq!(p.source, Source::Mtls);
    assert_eq!(p.subject, "spiffe://example.org/ns/prod/sa/agent");
    assert_eq!(p.issuer, "example.org");
}

#[test]
fn spiffe_ids_from_other_trust_domains_are_refused_with_403_and_no_challenge() {
    let id = full();
    for other in [
        "spiffe://evil.org/ns/x",
        "spiffe://sub.example.org/ns/x",
        "spiffe://example.org.evil/x",
    ] {
        let e = id.principal_from_spiffe_id(other).unwrap_err();
        assert_eq!(e, AuthError::UntrustedTrustDomain, "{other}");
        assert_eq!(e.status(), 403);
        assert_eq!(id.www_authenticate(&e), None);
    }
}

#[test]
fn uri_sans_without_spiffe_ids_yield_nothing_and_two_spiffe_ids_are_refused() {
    let id = full();
    assert_eq!(
        id.principal_from_uri_sans(&["https://example.org/x", "urn:x"]),
        Ok(None)
    );
    let one = id
        .principal_from_uri_sans(&["urn:x", "spiffe://example.org/a"])
        .unwrap()
        .unwrap();
    assert_eq!(one.subject, "spiffe://example.org/a");
    assert!(matches!(
        id.principal_from_uri_sans(&["spiffe://example.org/a", "spiffe://example.org/b"]),
        Err(AuthError::InvalidSpiffeId(_))
    ));
    // An upper-case scheme is still recognised as an attempt, and refused rather than ignored.
    assert!(matches!(
        id.principal_from_uri_sans(&["SPIFFE://example.org/a"]),
        Err(AuthError::InvalidSpiffeId(_))
    ));
}

// --- establish: source precedence ------------------------------------------------------

fn establish(id: &Identity, auth: &[&str], jwt: &[&str], sans: &[&str]) -> Result<Source, AuthError> {
    let creds = Credentials {
        authorization: auth,
        jwt_payload: jwt,
        peer_uri_sans: sans,
    };
    id.establish(&creds, &mut id.new_token_cache(), NOW).map(|p| p.source)
}

#[test]
fn bearer_wins_over_jwt_authn_which_wins_over_mtls() {
    let id = full();
    let bearer = format!("Bearer {}", rs256(&claims()));
    let jp = payload(&claims());
    let san = "spiffe://example.org/ns/a";
    assert_eq!(establish(&id, &[&bearer], &[&jp], &[san]), Ok(Source::Jwt));
    assert_eq!(establish(&id, &[], &[&jp], &[san]), Ok(Source::JwtAuthn));
    assert_eq!(establish(&id, &[], &[], &[san]), Ok(Source::Mtls));
    assert_eq!(establish(&id, &[], &[], &[]), Err(AuthError::MissingToken));
}

#[test]
fn a_bad_bearer_token_never_falls_through_to_another_source() {
    let id = full();
    let bad = format!("Bearer {}", rs256(&claims_with(json!({"exp": NOW - 999}))));
    assert_eq!(
        establish(&id, &[&bad], &[], &["spiffe://example.org/ns/a"]),
        Err(AuthError::Expired)
    );
}

#[test]
fn a_non_bearer_scheme_lets_other_sources_identify_the_caller() {
    let id = full();
    assert_eq!(
        establish(&id, &["Basic dTpw"], &[], &["spiffe://example.org/ns/a"]),
        Ok(Source::Mtls)
    );
    assert_eq!(
        establish(&id, &["Basic dTpw"], &[], &[]),
        Err(AuthError::UnsupportedScheme)
    );
}

#[test]
fn duplicated_credential_headers_are_refused() {
    let id = full();
    let jp = payload(&claims());
    assert!(matches!(
        establish(&id, &[], &[&jp, &jp], &[]),
        Err(AuthError::MalformedRequest(_))
    ));
    assert!(matches!(
        establish(&id, &["Bearer a", "Bearer b"], &[], &[]),
        Err(AuthError::MalformedRequest(_))
    ));
}

#[test]
fn required_scopes_bind_token_callers_but_not_mtls_peers() {
    let id = full(); // requires "mcp"
    let no_scope = format!("Bearer {}", rs256(&claims_with(json!({"scope": "other"}))));
    assert_eq!(
        establish(&id, &[&no_scope], &[], &[]),
        Err(AuthError::InsufficientScope {
            needed: vec!["mcp".into()]
        })
    );
    let jp = payload(&claims_with(json!({"scope": null})));
    assert!(matches!(
        establish(&id, &[], &[&jp], &[]),
        Err(AuthError::InsufficientScope { .. })
    ));
    assert_eq!(
        establish(&id, &[], &[], &["spiffe://example.org/ns/a"]),
        Ok(Source::Mtls)
    );
}

#[test]
fn only_listed_methods_are_allowed_anonymously_and_only_without_credentials() {
    let id = full();
    assert!(id.allows_anonymous("ping"));
    assert!(!id.allows_anonymous("tools/call"));
    assert!(AuthError::MissingToken.is_missing_credentials());
    assert!(!AuthError::Expired.is_missing_credentials());
    assert!(!AuthError::UnsupportedScheme.is_missing_credentials());
}

// --- status and WWW-Authenticate -------------------------------------------------------

#[test]
fn each_refusal_maps_to_its_documented_status() {
    let cases = [
        (AuthError::MissingToken, 401),
        (AuthError::UnsupportedScheme, 401),
        (AuthError::MalformedRequest("x"), 400),
        (AuthError::MalformedToken("x"), 401),
        (AuthError::Expired, 401),
        (AuthError::NotYetValid, 401),
        (AuthError::WrongIssuer, 401),
        (AuthError::WrongAudience, 401),
        (AuthError::UnknownKid, 401),
        (AuthError::BadSignature, 401),
        (AuthError::AlgorithmNotAllowed, 401),
        (
            AuthError::InvalidClaim {
                claim: "exp".into(),
                problem: ClaimProblem::WrongType,
            },
            401,
        ),
        (
            AuthError::InsufficientScope {
                needed: vec!["a".into()],
            },
            403,
        ),
        (AuthError::InvalidSpiffeId("x"), 403),
        (AuthError::UntrustedTrustDomain, 403),
    ];
    for (e, status) in cases {
        assert_eq!(e.status(), status, "{e:?}");
        assert!(e.label().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{e:?}");
    }
}

#[test]
fn missing_token_challenge_names_the_metadata_and_scope_but_no_error_code() {
    let id = full();
    assert_eq!(
        id.www_authenticate(&AuthError::MissingToken).unwrap(),
        r#"Bearer resource_metadata="https://gw.example/.well-known/oauth-protected-resource/mcp", scope="mcp""#
    );
}

#[test]
fn invalid_token_challenge_carries_error_and_a_fixed_description() {
    let id = full();
    assert_eq!(
        id.www_authenticate(&AuthError::Expired).unwrap(),
        r#"Bearer resource_metadata="https://gw.example/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description="the token has expired", scope="mcp""#
    );
}

#[test]
fn insufficient_scope_challenge_lists_the_needed_scopes() {
    let id = full();
    let e = AuthError::InsufficientScope {
        needed: vec!["mcp".into(), "tools:write".into()],
    };
    let h = id.www_authenticate(&e).unwrap();
    assert!(h.contains(r#"error="insufficient_scope""#), "{h}");
    assert!(h.ends_with(r#"scope="mcp tools:write""#), "{h}");
}

#[test]
fn malformed_request_challenge_is_invalid_request() {
    let h = full()
        .www_authenticate(&AuthError::MalformedRequest("more than one Authorization header"))
        .unwrap();
    assert!(
        h.contains(
            r#"error="invalid_request", error_description="malformed credentials: more than one Authorization header""#
        ),
        "{h}"
    );
}

#[test]
fn challenge_without_metadata_or_scopes_is_the_bare_scheme() {
    let mut s = spec_json(json!({}));
    s.as_object_mut().unwrap().remove("resource");
    let id = Identity::compile(spec(s)).unwrap();
    assert_eq!(id.www_authenticate(&AuthError::MissingToken).as_deref(), Some("Bearer"));
    assert_eq!(
        id.www_authenticate(&AuthError::BadSignature).as_deref(),
        Some(r#"Bearer error="invalid_token", error_description="the token signature is invalid""#)
    );
}

#[test]
fn challenge_text_cannot_be_broken_out_of_by_hostile_bytes() {
    let id = full();
    let e = AuthError::InvalidClaim {
        claim: "x\"\r\nSet-Cookie: a=b\\".into(),
        problem: ClaimProblem::WrongType,
    };
    let h = id.www_authenticate(&e).unwrap();
    assert!(!h.contains('\r') && !h.contains('\n') && !h.contains('\\'), "{h}");
    assert_eq!(h.matches('"').count() % 2, 0, "{h}");
    assert!(
        h.contains(r#"error_description="claim x???Set-Cookie: a=b? has the wrong type""#),
        "{h}"
    );
}

#[test]
fn descriptions_never_echo_token_bytes() {
    let id = full();
    let evil = format!("Bearer {}", rs256(&claims_with(json!({"iss": "\"\r\nX-Evil: 1"}))));
    let e = id
        .establish(
            &Credentials {
                authorization: &[&evil],
                ..Default::default()
            },
            &mut id.new_token_cache(),
            NOW,
        )
        .unwrap_err();
    let h = id.www_authenticate(&e).unwrap();
    assert!(!h.contains("Evil"), "{h}");
}

#[test]
fn reply_carries_status_details_and_challenge() {
    let id = full();
    let r = id.reply(&AuthError::WrongAudience);
    assert_eq!(r.status, 401);
    assert_eq!(r.details, "mcp_policy_auth_wrong_audience");
    assert!(r
        .headers
        .iter()
        .any(|(k, v)| *k == "www-authenticate" && v.contains("invalid_token")));
    let r = id.reply(&AuthError::UntrustedTrustDomain);
    assert_eq!(r.status, 403);
    assert!(!r.headers.iter().any(|(k, _)| *k == "www-authenticate"));
}

// --- RFC 9728 -------------------------------------------------------------------------

#[test]
fn metadata_url_inserts_the_well_known_path_between_host_and_path() {
    let cases = [
        ("https://h/mcp", "https://h/.well-known/oauth-protected-resource/mcp"),
        ("https://h", "https://h/.well-known/oauth-protected-resource"),
        ("https://h/", "https://h/.well-known/oauth-protected-resource"),
        (
            "https://h:8443/a/b",
            "https://h:8443/.well-known/oauth-protected-resource/a/b",
        ),
        ("https://h/mcp/", "https://h/.well-known/oauth-protected-resource/mcp/"),
        (
            "http://localhost:8080/mcp",
            "http://localhost:8080/.well-known/oauth-protected-resource/mcp",
        ),
        (
            "http://127.0.0.1:9/mcp",
            "http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp",
        ),
        (
            "http://[::1]:9/mcp",
            "http://[::1]:9/.well-known/oauth-protected-resource/mcp",
        ),
    ];
    for (resource, url) in cases {
        assert_eq!(metadata_url_for(resource).as_deref(), Ok(url), "{resource}");
    }
}

#[test]
fn resource_identifiers_that_are_not_plain_https_urls_are_refused() {
    for bad in [
        "gw.example/mcp",
        "http://gw.example/mcp",
        "ftp://h/x",
        "https:///x",
        "https://u@h/x",
        "https://h/x?q=1",
        "https://h/x#f",
        "https://h/x\"y",
        "https://h/ x",
        "http://localhost.evil.com/x",
    ] {
        assert!(metadata_url_for(bad).is_err(), "{bad}");
    }
}

#[test]
fn protected_resource_metadata_document_describes_the_resource() {
    let id = full();
    assert_eq!(id.metadata_path(), Some("/.well-known/oauth-protected-resource/mcp"));
    let doc: Value = serde_json::from_str(id.metadata_json().unwrap()).unwrap();
    assert_eq!(
        doc,
        json!({
            "resource": AUD,
            "authorization_servers": [ISS],
            "scopes_supported": ["mcp"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Example MCP",
        })
    );
}

#[test]
fn metadata_path_can_be_overridden_and_the_url_follows() {
    let id = identity(
        json!({"resource_metadata_path": "/mcp/.well-known/oauth-protected-resource",
                             "authorization_servers": ["https://login.example"], "scopes_supported": ["a", "b"]}),
    );
    assert_eq!(
        id.metadata_url(),
        Some("https://gw.example/mcp/.well-known/oauth-protected-resource")
    );
    let doc: Value = serde_json::from_str(id.metadata_json().unwrap()).unwrap();
    assert_eq!(doc["authorization_servers"], json!(["https://login.example"]));
    assert_eq!(doc["scopes_supported"], json!(["a", "b"]));
    assert!(doc.get("resource_name").is_none());
}

#[test]
fn identity_is_compiled_from_the_documented_example() {
    let mut doc: Value = serde_json::from_str(
        r#"{ "providers": [{ "name": "corp", "issuer": "https://idp", "audiences": ["https://gw.example/mcp"],
              "jwks": null, "algorithms": ["RS256","ES256","EdDSA"], "leeway_seconds": 30,
              "claims": {"subject":"sub","groups":"groups","roles":"roles","tenant":"tid","scopes":"scope"} }],
            "jwt_authn": {"payload_header": "x-jwt-payload"},
            "mtls": {"trust_domains": ["example.org"]},
            "required_scopes": ["mcp"], "anonymous_methods": ["ping"],
            "resource": "https://gw.example/mcp", "authorization_servers": ["https://idp"],
            "resource_metadata_path": "/.well-known/oauth-protected-resource/mcp",
            "token_cache_size": 1024 }"#,
    )
    .unwrap();
    doc["providers"][0]["jwks"] = jwks();
    let spec: IdentitySpec = serde_json::from_value(doc).unwrap();
    let id = Identity::compile(spec).unwrap();
    assert!(id.bearer_enabled() && id.mtls_enabled());
    assert_eq!(id.provider_names().collect::<Vec<_>>(), ["corp"]);
}
