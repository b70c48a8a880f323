//! Malformed-input regressions for identity: broken tokens, broken Authorization headers,
//! broken forwarded payloads. Each must be refused with the right error, never panic.

mod identity_support;

use base64::Engine as _;
use identity_support::*;
use jsonwebtoken::Algorithm;
use mcp_policy_core::identity::{bearer_token, parse_bearer, AuthError, MAX_TOKEN_BYTES};
use serde_json::json;

fn is_malformed(r: Result<mcp_policy_core::principal::Principal, AuthError>) -> bool {
    matches!(r, Err(AuthError::MalformedToken(_)))
}

#[test]
fn tokens_without_exactly_three_parts_are_malformed() {
    let id = identity(json!({}));
    let good = rs256(&claims());
    for t in ["", "abc", "a.b", "a.b.c.d", ".b.c", "a..c", &format!("{good}.x")] {
        assert!(is_malformed(id.verify_bearer(t, NOW)), "{t:?}");
    }
}

#[test]
fn parts_that_are_not_base64url_json_objects_are_malformed() {
    let id = identity(json!({}));
    let p = b64(claims().to_string().as_bytes());
    let h = b64(br#"{"alg":"RS256","kid":"rsa-1"}"#);
    for t in [
        format!("!!!.{p}.AAAA"),                           // header not base64url
        format!("{}.{p}.AAAA", b64(b"[1,2]")),             // header not an object
        format!("{}.{p}.AAAA", b64(b"{\"alg\":")),         // header truncated JSON
        format!("{h}.{}.AAAA", b64(b"\"just a string\"")), // payload not an object
        format!("{h}.{}=.AAAA", p),                        // padding is not base64url-nopad
        format!("{h}.{p}+/8.AAAA"),                        // standard-alphabet characters
    ] {
        // Payload-level problems surface before the signature is checked (the iss is needed
        // first); either way they are malformed, never a crash.
        let r = id.verify_bearer(&t, NOW);
        assert!(
            is_malformed(r.clone()) || r == Err(AuthError::WrongIssuer),
            "{t}: {r:?}"
        );
    }
}

#[test]
fn duplicate_keys_in_header_or_payload_are_malformed() {
    let id = identity(json!({}));
    let p = b64(claims().to_string().as_bytes());
    let t = format!("{}.{p}.AAAA", b64(br#"{"alg":"RS256","alg":"none","kid":"rsa-1"}"#));
    assert!(is_malformed(id.verify_bearer(&t, NOW)));
    // A payload naming two subjects: whichever a parser keeps, the token is refused.
    let dup = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{},"sub":"alice","sub":"root"}}"#,
        NOW + 60
    );
    let h = b64(br#"{"alg":"RS256","kid":"rsa-1"}"#);
    let msg = format!("{h}.{}", b64(dup.as_bytes()));
    let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), &rsa_key(), Algorithm::RS256).unwrap();
    assert!(is_malformed(id.verify_bearer(&format!("{msg}.{sig}"), NOW)));
}

#[test]
fn header_without_alg_or_with_odd_members_is_malformed() {
    let id = identity(json!({}));
    for header in [
        json!({"kid":"rsa-1"}),
        json!({"alg": 256}),
        json!({"alg":"RS256","kid": 1}),
        json!({"alg":"RS256","kid":"rsa-1","crit":["b64"],"b64":false}),
    ] {
        let t = sign_raw(&header, &claims(), &rsa_key(), Algorithm::RS256);
        assert!(is_malformed(id.verify_bearer(&t, NOW)), "{header}");
    }
}

#[test]
fn unknown_or_hmac_algorithms_in_the_header_are_not_allowed() {
    let id = identity(json!({}));
    let p = b64(claims().to_string().as_bytes());
    for alg in ["HS256", "HS384", "HS512", "none", "None", "RS1", "ES512", ""] {
        let t = format!(
            "{}.{p}.AAAA",
            b64(json!({"alg": alg, "kid": "rsa-1"}).to_string().as_bytes())
        );
        assert_eq!(id.verify_bearer(&t, NOW), Err(AuthError::AlgorithmNotAllowed), "{alg}");
    }
}

#[test]
fn oversized_tokens_are_refused_before_decoding() {
    let id = identity(json!({}));
    let t = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(
        id.verify_bearer(&t, NOW),
        Err(AuthError::MalformedToken("the token is too large"))
    );
}

#[test]
fn non_ascii_and_control_bytes_in_a_token_do_not_panic() {
    let id = identity(json!({}));
    for t in ["é.é.é", "\u{0}.\u{0}.\u{0}", "a.\u{202e}.c"] {
        assert!(id.verify_bearer(t, NOW).is_err());
    }
}

#[test]
fn bearer_scheme_is_case_insensitive_and_tolerates_extra_spaces() {
    for v in [
        "Bearer abc.def.ghi",
        "bearer abc.def.ghi",
        "BEARER   abc.def.ghi",
        "  Bearer abc.def.ghi \t",
    ] {
        assert_eq!(parse_bearer(v), Ok(Some("abc.def.ghi")), "{v:?}");
    }
    assert_eq!(parse_bearer("Bearer a~b+c/d=="), Ok(Some("a~b+c/d==")));
}

#[test]
fn empty_authorization_or_bearer_without_token_means_no_credentials() {
    assert_eq!(parse_bearer(""), Ok(None));
    assert_eq!(parse_bearer("Bearer"), Ok(None));
    assert_eq!(parse_bearer("Bearer   "), Ok(None));
    assert_eq!(bearer_token(&[]), Ok(None));
}

#[test]
fn other_schemes_are_unsupported_not_malformed() {
    for v in ["Basic dXNlcjpwYXNz", "Token abc", "Bearerabc", "DPoP abc.def.ghi"] {
        assert_eq!(parse_bearer(v), Err(AuthError::UnsupportedScheme), "{v:?}");
    }
}

#[test]
fn two_tokens_two_headers_or_bad_characters_are_a_400_invalid_request() {
    for v in [
        "Bearer a b",
        "Bearer a,Bearer b",
        "Bearer a, b",
        "Bearer a\"b",
        "Bearer =abc",
        "Bearer a=b",
        "Bearer é",
    ] {
        let e = parse_bearer(v).unwrap_err();
        assert!(matches!(e, AuthError::MalformedRequest(_)), "{v:?}: {e:?}");
        assert_eq!(e.status(), 400);
    }
    let e = bearer_token(&["Bearer a", "Bearer b"]).unwrap_err();
    assert_eq!(e, AuthError::MalformedRequest("more than one Authorization header"));
}

#[test]
fn forwarded_payload_that_is_not_base64url_json_object_is_malformed() {
    let id = identity(json!({"jwt_authn": {"payload_header": "x-jwt-payload"}}));
    let obj = json!({"sub": "a"}).to_string();
    for v in [
        "!!!".to_owned(),
        format!("{}===", b64(obj.as_bytes())), // over-padded
        b64(b"[1]"),                           // not an object
        b64(b"{\"sub\":\"a\",\"sub\":\"b\"}"), // duplicate key
        b64(b"{\"sub\":"),                     // truncated
        "a".repeat(MAX_TOKEN_BYTES + 1),
    ] {
        assert!(
            matches!(id.principal_from_jwt_authn(&v), Err(AuthError::MalformedToken(_))),
            "{v}"
        );
    }
}

#[test]
fn forwarded_payload_may_be_padded_as_envoys_pad_forward_payload_header_does() {
    let id = identity(json!({"jwt_authn": {"payload_header": "x-jwt-payload"}}));
    let padded = base64::engine::general_purpose::URL_SAFE.encode(json!({"sub": "abc"}).to_string());
    assert!(padded.ends_with('='), "{padded}");
    assert_eq!(id.principal_from_jwt_authn(&padded).unwrap().subject, "abc");
}
