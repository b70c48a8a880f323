//! Identity costs: a cold bearer verification per algorithm (what a cache miss costs) and a
//! per-worker cache hit (what every later request with the same token costs; target < 1 µs).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, EncodingKey};
use mcp_policy_core::identity::{Credentials, Identity, IdentitySpec};
use serde_json::{json, Value};

const NOW: u64 = 1_700_000_000;

fn sign(kid: &str, alg: Algorithm, key: &EncodingKey) -> String {
    sign_as("https://idp.example", kid, alg, key)
}

fn sign_as(iss: &str, kid: &str, alg: Algorithm, key: &EncodingKey) -> String {
    let header = json!({"alg": alg_name(alg), "kid": kid, "typ": "JWT"});
    // A realistic access token: ~1 KiB with groups.
    let claims = json!({
        "iss": iss, "aud": "https://gw.example/mcp", "sub": "alice@example.com",
        "exp": NOW + 3600, "iat": NOW, "jti": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "scope": "mcp tools:read tools:write", "tid": "acme",
        "groups": (0..20).map(|i| format!("group-{i:02}")).collect::<Vec<_>>(), "roles": ["dev", "oncall"],
    });
    let e = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let msg = format!("{}.{}", e(&header), e(&claims));
    let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), key, alg).expect("sign");
    format!("{msg}.{sig}")
}

fn alg_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        _ => "EdDSA",
    }
}

fn bench(c: &mut Criterion) {
    let jwks: Value = serde_json::from_str(include_str!("../tests/keys/jwks.json")).expect("jwks");
    let spec: IdentitySpec = serde_json::from_value(json!({
        "providers": [{"name": "corp", "issuer": "https://idp.example", "jwks": jwks,
                       "claims": {"tenant": "tid"}}],
        "required_scopes": ["mcp"],
        "resource": "https://gw.example/mcp",
    }))
    .expect("spec");
    let id = Identity::compile(spec).expect("compile");
    let rsa = EncodingKey::from_rsa_pem(include_bytes!("../tests/keys/rsa.pem")).expect("rsa");
    let ec = EncodingKey::from_ec_pem(include_bytes!("../tests/keys/ec.pem")).expect("ec");
    let ed = EncodingKey::from_ed_pem(include_bytes!("../tests/keys/ed25519.pem")).expect("ed");
    let tokens = [
        ("RS256", sign("rsa-1", Algorithm::RS256, &rsa)),
        ("ES256", sign("ec-1", Algorithm::ES256, &ec)),
        ("EdDSA", sign("ed-1", Algorithm::EdDSA, &ed)),
    ];

    let mut g = c.benchmark_group("identity/verify_cold");
    for (name, t) in &tokens {
        assert!(id.verify_bearer(t, NOW).is_ok());
        g.bench_function(*name, |b| b.iter(|| id.verify_bearer(black_box(t), NOW).is_ok()));
    }
    g.finish();

    let mut cache = id.new_token_cache();
    let t = &tokens[0].1;
    id.verify_bearer_cached(&mut cache, t, NOW).expect("warm");
    c.bench_function("identity/cached_hit", |b| {
        b.iter(|| id.verify_bearer_cached(&mut cache, black_box(t), NOW).is_ok())
    });

    // The whole header-time path: parse Authorization, cache hit, required-scope check.
    let auth = format!("Bearer {t}");
    let authz = [auth.as_str()];
    let creds = Credentials {
        authorization: &authz,
        ..Default::default()
    };
    c.bench_function("identity/parse_bearer", |b| {
        b.iter(|| mcp_policy_core::identity::parse_bearer(black_box(&auth)).is_ok())
    });
    c.bench_function("identity/establish_cached", |b| {
        b.iter(|| id.establish(black_box(&creds), &mut cache, NOW).is_ok())
    });

    // Refusals that need no signature check (unknown issuer): what junk tokens cost.
    let stranger = sign_as("https://stranger.example", "rsa-1", Algorithm::RS256, &rsa);
    c.bench_function("identity/reject_unknown_issuer", |b| {
        b.iter(|| id.verify_bearer(black_box(&stranger), NOW).is_err())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
