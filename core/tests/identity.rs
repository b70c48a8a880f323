//! Bearer JWT verification: every refusal, every claim-type edge, real RSA/EC/Ed25519 keys.

mod identity_support;

use identity_support::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use mcp_policy_core::identity::{AuthError, ClaimProblem};
use mcp_policy_core::principal::Source;
use serde_json::json;

fn claim_err(claim: &str, problem: ClaimProblem) -> AuthError {
    AuthError::InvalidClaim {
        claim: claim.into(),
        problem,
    }
}

#[test]
fn rs256_token_with_known_kid_yields_a_normalized_principal_with_mapped_claims() {
    let id = identity(json!({}));
    let p = id
        .verify_bearer(&rs256(&claims_with(json!({"tid": "acme"}))), NOW)
        .unwrap();
    assert_eq!(p.source, Source::Jwt);
    assert_eq!(p.subject, "alice");
    assert_eq!(p.issuer, ISS);
    assert_eq!(p.tenant.as_deref(), Some("acme"));
    assert_eq!(p.groups, ["admins", "eng"]);
    assert_eq!(p.roles, ["dev"]);
    assert_eq!(p.scopes, ["mcp", "tools:read"]);
    assert_eq!(p.token_id.as_deref(), Some("t-1"));
    assert_eq!(p.expires_at, Some(NOW + 3600));
    assert_eq!(p.claims["sub"], "alice");
}

#[test]
fn es256_and_eddsa_tokens_verify_with_their_jwks_keys() {
    let id = identity(json!({}));
    assert_eq!(id.verify_bearer(&es256(&claims()), NOW).unwrap().subject, "alice");
    assert_eq!(id.verify_bearer(&eddsa(&claims()), NOW).unwrap().subject, "alice");
}

#[test]
fn token_without_kid_uses_the_only_key_that_fits_its_alg() {
    let id = identity(json!({}));
    let t = sign_raw(&json!({"alg":"ES256"}), &claims(), &ec_key(), Algorithm::ES256);
    assert!(id.verify_bearer(&t, NOW).is_ok());
}

#[test]
fn token_without_kid_is_refused_when_several_keys_fit_its_alg() {
    let mut keys = jwks();
    let mut other = serde_json::from_str::<serde_json::Value>(JWKS_OTHER).unwrap()["keys"][0].clone();
    other["kid"] = json!("rsa-2");
    keys["keys"].as_array_mut().unwrap().push(other);
    let id = identity(json!({"providers": [provider(json!({"jwks": keys}))]}));
    let t = sign_raw(&json!({"alg":"RS256"}), &claims(), &rsa_key(), Algorithm::RS256);
    assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::UnknownKid));
    // With a kid the second key is found.
    let t = sign_raw(
        &json!({"alg":"RS256","kid":"rsa-2"}),
        &claims(),
        &rsa_other_key(),
        Algorithm::RS256,
    );
    assert!(id.verify_bearer(&t, NOW).is_ok());
}

#[test]
fn unknown_kid_is_refused() {
    let id = identity(json!({}));
    let t = sign_raw(
        &json!({"alg":"RS256","kid":"nope"}),
        &claims(),
        &rsa_key(),
        Algorithm::RS256,
    );
    assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::UnknownKid));
}

#[test]
fn token_signed_by_another_key_under_a_known_kid_has_a_bad_signature() {
    let id = identity(json!({}));
    let t = sign_raw(
        &json!({"alg":"RS256","kid":"rsa-1"}),
        &claims(),
        &rsa_other_key(),
        Algorithm::RS256,
    );
    assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::BadSignature));
}

#[test]
fn tampered_payload_has_a_bad_signature() {
    let id = identity(json!({}));
    let t = rs256(&claims());
    let parts: Vec<&str> = t.split('.').collect();
    let forged = b64(claims_with(json!({"sub": "root"})).to_string().as_bytes());
    let t = format!("{}.{}.{}", parts[0], forged, parts[2]);
    assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::BadSignature));
}

#[test]
fn empty_or_garbage_signature_is_a_bad_signature() {
    let id = identity(json!({}));
    let t = rs256(&claims());
    let msg = &t[..t.rfind('.').unwrap()];
    assert_eq!(id.verify_bearer(&format!("{msg}."), NOW), Err(AuthError::BadSignature));
    assert_eq!(
        id.verify_bearer(&format!("{msg}.AAAA"), NOW),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        id.verify_bearer(&format!("{msg}.!!"), NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn alg_none_is_refused_even_without_a_signature() {
    let id = identity(json!({}));
    let t = format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(claims().to_string().as_bytes())
    );
    assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::AlgorithmNotAllowed));
}

#[test]
fn hs256_signed_with_the_rsa_public_key_as_hmac_secret_is_refused() {
    // The classic key-confusion attack: the public key is public, so an HMAC "signed" with it
    // would verify if the verifier let the token choose HS256 with the RSA key as secret.
    let id = identity(json!({}));
    for secret in [
        RSA_PUB_PEM.as_bytes().to_vec(),
        jwks()["keys"][0]["n"].as_str().unwrap().as_bytes().to_vec(),
    ] {
        let t = sign_raw(
            &json!({"alg":"HS256","kid":"rsa-1"}),
            &claims(),
            &EncodingKey::from_secret(&secret),
            Algorithm::HS256,
        );
        assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::AlgorithmNotAllowed));
    }
}

#[test]
fn alg_outside_the_providers_allow_list_is_refused() {
    // Keys no allowed algorithm fits are config errors, so this provider is EC-only.
    let mut keys = jwks();
    keys["keys"].as_array_mut().unwrap().retain(|k| k["kty"] == "EC");
    let id = identity(json!({"providers": [provider(json!({"algorithms": ["ES256"], "jwks": keys}))]}));
    let t = sign_raw(
        &json!({"alg":"RS256","kid":"ec-1"}),
        &claims(),
        &rsa_key(),
        Algorithm::RS256,
    );
    assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::AlgorithmNotAllowed));
    assert!(id.verify_bearer(&es256(&claims()), NOW).is_ok());
}

#[test]
fn alg_that_does_not_fit_the_selected_keys_type_is_refused() {
    let id = identity(json!({}));
    // ES256 claimed, RSA key selected by kid.
    let t = sign_raw(
        &json!({"alg":"ES256","kid":"rsa-1"}),
        &claims(),
        &ec_key(),
        Algorithm::ES256,
    );
    assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::AlgorithmNotAllowed));
    // EdDSA claimed, EC key selected.
    let t = sign_raw(
        &json!({"alg":"EdDSA","kid":"ec-1"}),
        &claims(),
        &ed_key(),
        Algorithm::EdDSA,
    );
    assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::AlgorithmNotAllowed));
}

#[test]
fn jwk_alg_pins_the_key_to_that_algorithm() {
    // rsa-1 carries "alg":"RS256": a PS256 token under it is refused even though PS256 is RSA.
    let id = identity(json!({"providers": [provider(json!({"algorithms": ["RS256", "PS256", "ES256", "EdDSA"]}))]}));
    let t = sign_raw(
        &json!({"alg":"PS256","kid":"rsa-1"}),
        &claims(),
        &rsa_key(),
        Algorithm::PS256,
    );
    assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::AlgorithmNotAllowed));
}

#[test]
fn wrong_issuer_is_refused() {
    let id = identity(json!({}));
    assert_eq!(
        id.verify_bearer(&rs256(&claims_with(json!({"iss": "https://evil"}))), NOW),
        Err(AuthError::WrongIssuer)
    );
    assert_eq!(
        id.verify_bearer(&rs256(&claims_with(json!({"iss": null}))), NOW),
        Err(AuthError::WrongIssuer)
    );
    assert_eq!(
        id.verify_bearer(&rs256(&claims_with(json!({"iss": 7}))), NOW),
        Err(claim_err("iss", ClaimProblem::WrongType))
    );
}

#[test]
fn issuer_must_match_exactly() {
    let id = identity(json!({}));
    let t = rs256(&claims_with(json!({"iss": format!("{ISS}/")})));
    assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::WrongIssuer));
}

#[test]
fn wrong_or_missing_audience_is_refused() {
    let id = identity(json!({}));
    assert_eq!(
        id.verify_bearer(&rs256(&claims_with(json!({"aud": "https://other"}))), NOW),
        Err(AuthError::WrongAudience)
    );
    assert_eq!(
        id.verify_bearer(&rs256(&claims_with(json!({"aud": null}))), NOW),
        Err(AuthError::WrongAudience)
    );
    assert_eq!(
        id.verify_bearer(&rs256(&claims_with(json!({"aud": []}))), NOW),
        Err(AuthError::WrongAudience)
    );
}

#[test]
fn audience_array_containing_ours_is_accepted() {
    let id = identity(json!({}));
    let t = rs256(&claims_with(json!({"aud": ["https://other", AUD]})));
    assert!(id.verify_bearer(&t, NOW).is_ok());
}

#[test]
fn audience_of_the_wrong_type_is_an_invalid_claim() {
    let id = identity(json!({}));
    for aud in [json!(["https://other", 3]), json!(42), json!({"a": AUD})] {
        let t = rs256(&claims_with(json!({ "aud": aud })));
        assert_eq!(
            id.verify_bearer(&t, NOW),
            Err(claim_err("aud", ClaimProblem::WrongType)),
            "{aud}"
        );
    }
}

#[test]
fn provider_without_audiences_defaults_to_the_resource() {
    let id = identity(json!({"providers": [provider(json!({"audiences": null}))]}));
    assert!(id.verify_bearer(&rs256(&claims()), NOW).is_ok());
    let t = rs256(&claims_with(json!({"aud": "https://gw.example"})));
    assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::WrongAudience));
}

#[test]
fn expired_token_is_refused() {
    let id = identity(json!({}));
    let t = rs256(&claims_with(json!({"exp": NOW - 3600})));
    assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::Expired));
}

#[test]
fn exp_is_honoured_up_to_but_not_including_exp_plus_leeway() {
    let id = identity(json!({})); // leeway 30
    let t = rs256(&claims_with(json!({"exp": NOW})));
    assert!(id.verify_bearer(&t, NOW + 29).is_ok());
    assert_eq!(id.verify_bearer(&t, NOW + 30), Err(AuthError::Expired));
}

#[test]
fn zero_leeway_makes_a_token_dead_at_exactly_exp() {
    let id = identity(json!({"providers": [provider(json!({"leeway_seconds": 0}))]}));
    let t = rs256(&claims_with(json!({"exp": NOW})));
    assert!(id.verify_bearer(&t, NOW - 1).is_ok());
    assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::Expired));
}

#[test]
fn nbf_in_the_future_beyond_leeway_is_not_yet_valid() {
    let id = identity(json!({}));
    let t = rs256(&claims_with(json!({"nbf": NOW + 31})));
    assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::NotYetValid));
    let t = rs256(&claims_with(json!({"nbf": NOW + 30})));
    assert!(id.verify_bearer(&t, NOW).is_ok(), "nbf exactly now + leeway is valid");
}

#[test]
fn fractional_exp_and_nbf_round_toward_refusal() {
    let id = identity(json!({"providers": [provider(json!({"leeway_seconds": 0}))]}));
    let t = rs256(&claims_with(json!({"exp": (NOW as f64) + 0.9})));
    assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::Expired));
    let t = rs256(&claims_with(json!({"nbf": (NOW as f64) + 0.1})));
    assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::NotYetValid));
}

#[test]
fn missing_exp_is_refused() {
    let id = identity(json!({}));
    let t = rs256(&claims_with(json!({"exp": null})));
    assert_eq!(id.verify_bearer(&t, NOW), Err(claim_err("exp", ClaimProblem::Missing)));
}

#[test]
fn string_exp_nbf_or_iat_is_an_invalid_claim_not_a_coercion() {
    let id = identity(json!({}));
    for name in ["exp", "nbf", "iat"] {
        let t = rs256(&claims_with(json!({ name: (NOW + 3600).to_string() })));
        assert_eq!(
            id.verify_bearer(&t, NOW),
            Err(claim_err(name, ClaimProblem::WrongType)),
            "{name}"
        );
    }
    let t = rs256(&claims_with(json!({"exp": true})));
    assert_eq!(
        id.verify_bearer(&t, NOW),
        Err(claim_err("exp", ClaimProblem::WrongType))
    );
    let t = rs256(&claims_with(json!({"exp": -5})));
    assert_eq!(id.verify_bearer(&t, NOW), Err(claim_err("exp", ClaimProblem::BadValue)));
}

#[test]
fn subject_must_be_a_non_empty_string() {
    let id = identity(json!({}));
    let cases = [
        (json!({"sub": 12}), ClaimProblem::WrongType),
        (json!({"sub": null}), ClaimProblem::Missing),
        (json!({"sub": ""}), ClaimProblem::BadValue),
        (json!({"sub": ["alice"]}), ClaimProblem::WrongType),
    ];
    for (patch, problem) in cases {
        let t = rs256(&claims_with(patch.clone()));
        assert_eq!(id.verify_bearer(&t, NOW), Err(claim_err("sub", problem)), "{patch}");
    }
}

#[test]
fn groups_and_roles_accept_a_single_string_or_an_array_of_strings_only() {
    let id = identity(json!({}));
    let p = id
        .verify_bearer(&rs256(&claims_with(json!({"groups": "eng", "roles": null}))), NOW)
        .unwrap();
    assert_eq!(p.groups, ["eng"]);
    assert!(p.roles.is_empty());
    for (patch, claim) in [
        (json!({"groups": ["eng", 1]}), "groups"),
        (json!({"groups": {"eng": true}}), "groups"),
        (json!({"roles": 5}), "roles"),
        (json!({"roles": [["nested"]]}), "roles"),
        (json!({"tid": 9}), "tid"),
        (json!({"jti": 9}), "jti"),
    ] {
        let t = rs256(&claims_with(patch.clone()));
        assert_eq!(
            id.verify_bearer(&t, NOW),
            Err(claim_err(claim, ClaimProblem::WrongType)),
            "{patch}"
        );
    }
}

#[test]
fn scopes_come_from_a_space_separated_scope_or_an_scp_array() {
    let id = identity(json!({}));
    let p = id
        .verify_bearer(&rs256(&claims_with(json!({"scope": "  b a  b "}))), NOW)
        .unwrap();
    assert_eq!(p.scopes, ["a", "b"]);
    let p = id
        .verify_bearer(&rs256(&claims_with(json!({"scope": null, "scp": ["x", "y"]}))), NOW)
        .unwrap();
    assert_eq!(p.scopes, ["x", "y"]);
    let p = id
        .verify_bearer(&rs256(&claims_with(json!({"scope": null, "scp": "x y"}))), NOW)
        .unwrap();
    assert_eq!(p.scopes, ["x", "y"]);
    let t = rs256(&claims_with(json!({"scope": 3})));
    assert_eq!(
        id.verify_bearer(&t, NOW),
        Err(claim_err("scope", ClaimProblem::WrongType))
    );
}

#[test]
fn json_pointer_claim_names_map_nested_claims() {
    let p = provider(json!({"claims": {"roles": "/realm_access/roles", "groups": "https://corp/groups"}}));
    let id = identity(json!({ "providers": [p] }));
    let c = claims_with(json!({"realm_access": {"roles": ["admin", "user"]}, "https://corp/groups": ["g"]}));
    let p = id.verify_bearer(&rs256(&c), NOW).unwrap();
    assert_eq!(p.roles, ["admin", "user"]);
    assert_eq!(p.groups, ["g"]);
}

#[test]
fn accepted_typ_values_are_jwt_and_at_jwt_only() {
    let id = identity(json!({}));
    for typ in ["JWT", "jwt", "at+jwt", "application/at+JWT"] {
        let t = sign_raw(
            &json!({"alg":"RS256","kid":"rsa-1","typ":typ}),
            &claims(),
            &rsa_key(),
            Algorithm::RS256,
        );
        assert!(id.verify_bearer(&t, NOW).is_ok(), "{typ}");
    }
    for typ in [json!("dpop+jwt"), json!("logout+jwt"), json!(1)] {
        let t = sign_raw(
            &json!({"alg":"RS256","kid":"rsa-1","typ":typ}),
            &claims(),
            &rsa_key(),
            Algorithm::RS256,
        );
        assert!(
            matches!(id.verify_bearer(&t, NOW), Err(AuthError::MalformedToken(_))),
            "{typ}"
        );
    }
}

#[test]
fn principal_keeps_the_issuer_and_all_claims_for_policy() {
    let id = identity(json!({}));
    let p = id
        .verify_bearer(&es256(&claims_with(json!({"custom": {"x": 1}}))), NOW)
        .unwrap();
    assert_eq!(p.claims["custom"]["x"], 1);
    assert_eq!(p.issuer, ISS);
}
