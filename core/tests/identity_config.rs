//! The `identity` config section: every problem reported at once with its path; no HMAC, no
//! `none`, no private or symmetric keys; defaults; JSON Schema.

mod identity_support;

use identity_support::*;
use mcp_policy_core::identity::{Identity, IdentitySpec};
use serde_json::{json, Value};

fn has(errors: &[(String, String)], path: &str, needle: &str) -> bool {
    errors.iter().any(|(p, m)| p == path && m.contains(needle))
}

fn oct_key() -> Value {
    json!({"kty": "oct", "kid": "s", "k": "c2VjcmV0"})
}

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let mut keys = jwks();
    keys["keys"].as_array_mut().unwrap().insert(0, oct_key());
    let errors = config_errors(json!({
        "providers": [
            provider(json!({})),
            provider(json!({"name": "bad name", "issuer": ISS, "jwks": keys,
                            "algorithms": ["RS256", "HS256", "none", "XX1"], "leeway_seconds": 301})),
            provider(json!({"name": "nokeys", "issuer": "https://other", "jwks": null})),
        ],
        "mtls": {"trust_domains": ["Example.org", ""]},
        "required_scopes": ["ok", "two words", "q\"uote"],
        "resource": "http://gw.example/mcp",
        "jwt_authn": {"payload_header": "bad header"},
        "token_cache_size": 99999999,
    }));
    let e = &errors;
    assert!(has(e, "identity.providers[1].name", "[A-Za-z0-9_-]"), "{e:#?}");
    assert!(has(e, "identity.providers[1].issuer", "duplicate issuer"), "{e:#?}");
    assert!(has(e, "identity.providers[1].algorithms[1]", "HMAC"), "{e:#?}");
    assert!(
        has(e, "identity.providers[1].algorithms[2]", "\"none\" is never accepted"),
        "{e:#?}"
    );
    assert!(
        has(e, "identity.providers[1].algorithms[3]", "unknown algorithm \"XX1\""),
        "{e:#?}"
    );
    assert!(has(e, "identity.providers[1].leeway_seconds", "at most 300"), "{e:#?}");
    assert!(
        has(e, "identity.providers[1].jwks.keys[0]", "unsupported kty \"oct\""),
        "{e:#?}"
    );
    assert!(has(e, "identity.providers[2]", "needs keys"), "{e:#?}");
    assert!(has(e, "identity.mtls.trust_domains[0]", "[a-z0-9._-]"), "{e:#?}");
    assert!(has(e, "identity.mtls.trust_domains[1]", "empty"), "{e:#?}");
    assert!(has(e, "identity.required_scopes[1]", "scope token"), "{e:#?}");
    assert!(has(e, "identity.required_scopes[2]", "scope token"), "{e:#?}");
    assert!(has(e, "identity.resource", "https"), "{e:#?}");
    assert!(has(e, "identity.jwt_authn.payload_header", "header name"), "{e:#?}");
    assert!(has(e, "identity.token_cache_size", "at most"), "{e:#?}");
}

#[test]
fn unknown_fields_are_refused_by_the_spec() {
    let v = json!({"providers": [], "required_scope": ["x"]});
    let e = serde_path_to_error::deserialize::<_, IdentitySpec>(v).unwrap_err();
    assert!(e.to_string().contains("unknown field `required_scope`"), "{e}");
    let v = json!({"providers": [provider(json!({"audience": "x"}))]});
    let e = serde_path_to_error::deserialize::<_, IdentitySpec>(v).unwrap_err();
    assert_eq!(e.path().to_string(), "providers[0].audience");
}

#[test]
fn private_key_material_in_a_jwks_is_refused() {
    let mut keys = jwks();
    keys["keys"][1]["d"] = json!("AAAA");
    let e = config_errors(spec_json(json!({"providers": [provider(json!({"jwks": keys}))]})));
    assert!(
        has(&e, "identity.providers[0].jwks.keys[1]", "private key material"),
        "{e:#?}"
    );
}

#[test]
fn duplicate_kids_are_refused() {
    let mut keys = jwks();
    keys["keys"][2]["kid"] = json!("rsa-1");
    let e = config_errors(spec_json(json!({"providers": [provider(json!({"jwks": keys}))]})));
    assert!(
        has(&e, "identity.providers[0].jwks.keys[2].kid", "duplicate kid"),
        "{e:#?}"
    );
}

#[test]
fn rsa_keys_under_2048_bits_are_refused() {
    let mut keys = jwks();
    let n = keys["keys"][0]["n"].as_str().unwrap();
    keys["keys"][0]["n"] = json!(&n[..171]); // 128 bytes → 1024 bits
    let e = config_errors(spec_json(json!({"providers": [provider(json!({"jwks": keys}))]})));
    assert!(
        has(&e, "identity.providers[0].jwks.keys[0].n", "at least 2048"),
        "{e:#?}"
    );
}

#[test]
fn ec_points_off_the_curve_and_bad_ed25519_keys_are_refused() {
    let mut keys = jwks();
    keys["keys"][1]["y"] = keys["keys"][1]["x"].clone();
    keys["keys"][2]["x"] = json!(b64(&[1u8; 31]));
    let e = config_errors(spec_json(json!({"providers": [provider(json!({"jwks": keys}))]})));
    assert!(
        has(&e, "identity.providers[0].jwks.keys[1]", "not a point on P-256"),
        "{e:#?}"
    );
    assert!(has(&e, "identity.providers[0].jwks.keys[2].x", "32 bytes"), "{e:#?}");
}

#[test]
fn jwk_alg_must_fit_the_key_type_and_never_be_hmac() {
    let mut keys = jwks();
    keys["keys"][1]["alg"] = json!("RS256");
    keys["keys"][2]["alg"] = json!("HS256");
    let e = config_errors(spec_json(json!({"providers": [provider(json!({"jwks": keys}))]})));
    assert!(
        has(&e, "identity.providers[0].jwks.keys[1].alg", "does not fit this EC key"),
        "{e:#?}"
    );
    assert!(has(&e, "identity.providers[0].jwks.keys[2].alg", "HMAC"), "{e:#?}");
}

#[test]
fn a_key_no_allowed_algorithm_fits_is_refused() {
    let e = config_errors(spec_json(
        json!({"providers": [provider(json!({"algorithms": ["ES256"]}))]}),
    ));
    assert!(
        has(&e, "identity.providers[0].jwks.keys[0]", "no allowed algorithm fits"),
        "{e:#?}"
    );
    assert!(
        has(&e, "identity.providers[0].jwks.keys[2]", "no allowed algorithm fits"),
        "{e:#?}"
    );
}

#[test]
fn encryption_keys_in_a_jwks_are_skipped_not_used() {
    let mut keys = jwks();
    let mut enc = keys["keys"][0].clone();
    enc["use"] = json!("enc");
    enc["kid"] = json!("enc-1");
    enc["alg"] = json!("RSA-OAEP");
    keys["keys"].as_array_mut().unwrap().push(enc);
    let id = identity(json!({"providers": [provider(json!({"jwks": keys}))]}));
    let t = identity_support::sign_raw(
        &json!({"alg":"RS256","kid":"enc-1"}),
        &claims(),
        &rsa_key(),
        jsonwebtoken::Algorithm::RS256,
    );
    assert_eq!(
        id.verify_bearer(&t, NOW),
        Err(mcp_policy_core::identity::AuthError::UnknownKid)
    );
}

#[test]
fn a_jwks_with_no_usable_key_is_refused() {
    let e = config_errors(spec_json(
        json!({"providers": [provider(json!({"jwks": {"keys": []}}))]}),
    ));
    assert!(
        has(&e, "identity.providers[0].jwks.keys", "no usable signing key"),
        "{e:#?}"
    );
    let e = config_errors(spec_json(json!({"providers": [provider(json!({"jwks": [1]}))]})));
    assert!(has(&e, "identity.providers[0].jwks", "JWKS object"), "{e:#?}");
}

#[test]
fn audiences_are_required_when_there_is_no_resource() {
    let e = config_errors(json!({"providers": [provider(json!({"audiences": null}))]}));
    assert!(
        has(&e, "identity.providers[0].audiences", "at least one audience"),
        "{e:#?}"
    );
}

#[test]
fn jwks_file_is_read_through_the_callers_loader_only() {
    let s = spec_json(json!({"providers": [provider(json!({"jwks": null, "jwks_file": "/etc/jwks.json"}))]}));
    let e = Identity::compile(spec(s.clone())).unwrap_err();
    assert!(has(&e, "identity.providers[0].jwks_file", "loader"), "{e:#?}");

    let mut asked = Vec::new();
    let id = Identity::compile_with_loader(spec(s.clone()), &mut |p| {
        asked.push(p.to_owned());
        Ok(JWKS.as_bytes().to_vec())
    })
    .unwrap();
    assert_eq!(asked, ["/etc/jwks.json"]);
    assert!(id.verify_bearer(&rs256(&claims()), NOW).is_ok());

    let e = Identity::compile_with_loader(spec(s), &mut |_| Ok(b"not json".to_vec())).unwrap_err();
    assert!(has(&e, "identity.providers[0].jwks_file", "is not JSON"), "{e:#?}");
}

#[test]
fn setting_both_jwks_and_jwks_file_is_refused() {
    let e = config_errors(spec_json(json!({"providers": [provider(json!({"jwks_file": "/x"}))]})));
    assert!(
        has(&e, "identity.providers[0]", "exactly one of jwks and jwks_file"),
        "{e:#?}"
    );
}

#[test]
fn omitted_algorithms_default_to_every_asymmetric_algorithm() {
    let id = identity(json!({"providers": [provider(json!({"algorithms": null}))]}));
    assert!(id.verify_bearer(&rs256(&claims()), NOW).is_ok());
    assert!(id.verify_bearer(&eddsa(&claims()), NOW).is_ok());
}

#[test]
fn metadata_fields_without_a_resource_are_refused() {
    let mut s = spec_json(json!({"authorization_servers": ["https://idp"], "resource_name": "x"}));
    s.as_object_mut().unwrap().remove("resource");
    s["providers"][0]["audiences"] = json!([AUD]);
    let e = config_errors(s);
    assert!(
        has(&e, "identity.authorization_servers", "needs identity.resource"),
        "{e:#?}"
    );
    assert!(has(&e, "identity.resource_name", "needs identity.resource"), "{e:#?}");
}

#[test]
fn an_empty_section_compiles_to_an_identity_with_no_sources() {
    let id = Identity::compile(IdentitySpec::default()).unwrap();
    assert!(!id.bearer_enabled() && !id.mtls_enabled() && id.jwt_authn_header().is_none());
    assert!(id.metadata_json().is_none());
}

#[test]
fn json_schema_is_generated_from_the_same_types() {
    let schema = serde_json::to_value(schemars::schema_for!(IdentitySpec)).unwrap();
    let text = schema.to_string();
    for field in [
        "providers",
        "jwt_authn",
        "mtls",
        "required_scopes",
        "token_cache_size",
        "leeway_seconds",
        "trust_domains",
    ] {
        assert!(text.contains(field), "schema lacks {field}");
    }
    assert_eq!(schema["additionalProperties"], false);
}
