//! The per-worker token cache: hits skip verification, entries die with the token, the bound
//! holds, and a cache never answers for a different token or a replaced config.

mod identity_support;

use identity_support::*;
use mcp_policy_core::identity::{AuthError, TokenCache};
use serde_json::json;
use std::sync::Arc;

#[test]
fn second_verification_of_a_token_is_served_from_the_cache() {
    let id = identity(json!({}));
    let mut cache = id.new_token_cache();
    let t = rs256(&claims());
    let a = id.verify_bearer_cached(&mut cache, &t, NOW).unwrap();
    let b = id.verify_bearer_cached(&mut cache, &t, NOW + 1).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(cache.len(), 1);
}

#[test]
fn cached_entry_dies_at_exp_plus_leeway_like_verification_does() {
    let id = identity(json!({})); // leeway 30
    let mut cache = id.new_token_cache();
    let t = rs256(&claims_with(json!({"exp": NOW + 100})));
    id.verify_bearer_cached(&mut cache, &t, NOW).unwrap();
    assert!(
        cache.get(&t, NOW + 129).is_some(),
        "alive one second before exp + leeway"
    );
    assert!(cache.get(&t, NOW + 130).is_none(), "dead at exp + leeway");
    assert_eq!(cache.len(), 0, "a dead entry is dropped when found");
    assert_eq!(
        id.verify_bearer_cached(&mut cache, &t, NOW + 130),
        Err(AuthError::Expired)
    );
}

#[test]
fn refused_tokens_are_never_cached() {
    let id = identity(json!({}));
    let mut cache = id.new_token_cache();
    let t = rs256(&claims_with(json!({"aud": "https://other"})));
    assert!(id.verify_bearer_cached(&mut cache, &t, NOW).is_err());
    assert!(cache.is_empty());
}

#[test]
fn the_cache_never_holds_more_than_its_bound() {
    let id = identity(json!({"token_cache_size": 2}));
    let mut cache = id.new_token_cache();
    let tokens: Vec<String> = (0..4)
        .map(|i| es256(&claims_with(json!({"jti": format!("t{i}"), "exp": NOW + 100 + i}))))
        .collect();
    for t in &tokens {
        id.verify_bearer_cached(&mut cache, t, NOW).unwrap();
        assert!(cache.len() <= 2);
    }
    assert_eq!(cache.len(), 2);
    // The entries closest to expiry were evicted; the last two remain.
    assert!(cache.get(&tokens[0], NOW).is_none());
    assert!(cache.get(&tokens[3], NOW).is_some());
}

#[test]
fn a_full_cache_drops_expired_entries_before_live_ones() {
    let mut cache = TokenCache::new(2);
    let p = Arc::new(mcp_policy_core::principal::Principal::anonymous());
    cache.insert("short", p.clone(), NOW + 10, NOW);
    cache.insert("long", p.clone(), NOW + 1000, NOW);
    cache.insert("new", p, NOW + 500, NOW + 20);
    assert!(cache.get("short", NOW + 20).is_none());
    assert!(cache.get("long", NOW + 20).is_some());
    assert!(cache.get("new", NOW + 20).is_some());
}

#[test]
fn a_token_differing_only_in_its_last_byte_is_not_a_cache_hit() {
    let id = identity(json!({}));
    let mut cache = id.new_token_cache();
    let t = rs256(&claims());
    id.verify_bearer_cached(&mut cache, &t, NOW).unwrap();
    let mut forged = t.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        id.verify_bearer_cached(&mut cache, &forged, NOW),
        Err(AuthError::BadSignature)
    );
    // Same signature tail, different payload: the full compare refuses it too.
    let (_, sig) = t.rsplit_once('.').unwrap();
    let other = rs256(&claims_with(json!({"sub": "mallory"})));
    let (msg, _) = other.rsplit_once('.').unwrap();
    assert_eq!(
        id.verify_bearer_cached(&mut cache, &format!("{msg}.{sig}"), NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn a_config_reload_never_serves_the_old_configs_cached_principal() {
    let old = identity(json!({}));
    let mut cache = old.new_token_cache();
    let t = rs256(&claims());
    old.verify_bearer_cached(&mut cache, &t, NOW).unwrap();
    // The new config no longer trusts this issuer: the cached principal must not survive.
    let new = identity(json!({"providers": [provider(json!({"issuer": "https://new-idp"}))]}));
    assert_eq!(
        new.verify_bearer_cached(&mut cache, &t, NOW),
        Err(AuthError::WrongIssuer)
    );
    assert!(cache.is_empty());
}

#[test]
fn cache_size_zero_turns_caching_off() {
    let id = identity(json!({"token_cache_size": 0}));
    let mut cache = id.new_token_cache();
    let t = eddsa(&claims());
    let a = id.verify_bearer_cached(&mut cache, &t, NOW).unwrap();
    let b = id.verify_bearer_cached(&mut cache, &t, NOW).unwrap();
    assert!(!Arc::ptr_eq(&a, &b));
    assert!(cache.is_empty());
}

#[test]
fn required_scopes_are_checked_on_cache_hits_too() {
    let id = identity(json!({"required_scopes": ["admin"]}));
    let mut cache = id.new_token_cache();
    let t = rs256(&claims());
    let creds_auth = [format!("Bearer {t}")];
    let auth: Vec<&str> = creds_auth.iter().map(String::as_str).collect();
    let creds = mcp_policy_core::identity::Credentials {
        authorization: &auth,
        ..Default::default()
    };
    for _ in 0..2 {
        let e = id.establish(&creds, &mut cache, NOW).unwrap_err();
        assert_eq!(
            e,
            AuthError::InsufficientScope {
                needed: vec!["admin".into()]
            }
        );
    }
    assert_eq!(cache.len(), 1);
}
