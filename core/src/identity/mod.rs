//! Identity: who is calling, established from a bearer JWT the module verifies itself, from the
//! payload Envoy's `jwt_authn` forwards, or from an mTLS peer's SPIFFE id.
//!
//! Owns the `identity` config section (spec → checked → compiled [`Identity`]), JWT
//! verification, the per-worker [`TokenCache`], the 401/403 challenge text (RFC 6750, RFC 9728)
//! and the protected-resource metadata document. Does not own what a principal may do (that is
//! `policy`), header I/O or serving the metadata (that is `filter/`). Pure: `now` is always a
//! parameter, files come through a loader the caller passes in.
//!
//! Layout: [`spec`] the config model · `jwks` key checks · `jwt` verification · `claims`
//! strict claim mapping · `cache` the per-worker [`TokenCache`] · [`header`] Authorization
//! parsing · [`spiffe`] SPIFFE ids · [`metadata`] RFC 9728 · [`error`] refusals and challenges.
//!
//! Use: compile once per config on the main thread ([`Identity::compile`]); per worker keep one
//! [`TokenCache`] in a `thread_local` (a cache notices a config reload and empties itself); per
//! request call [`Identity::establish`], and on [`AuthError::MissingToken`] let the request
//! through as anonymous only if [`Identity::allows_anonymous`] says so for its JSON-RPC method.

mod cache;
mod claims;
pub mod error;
pub mod header;
mod jwks;
mod jwt;
pub mod metadata;
pub mod spec;
pub mod spiffe;

pub use cache::{TokenCache, MAX_IDENTITY_CACHES};
pub use error::{AuthError, ClaimProblem};
pub use header::{bearer_token, parse_bearer};
pub use jwt::MAX_TOKEN_BYTES;
pub use metadata::{metadata_url_for, protected_resource_metadata};
pub use spec::{ClaimMappingSpec, IdentitySpec, JwtAuthnSpec, MtlsSpec, ProviderSpec};
pub use spiffe::{parse_spiffe_id, SpiffeId};

use crate::principal::{Principal, Source};
use crate::reply::{self, Reply};
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use claims::ClaimMapping;
use jwt::Provider;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Default [`IdentitySpec::token_cache_size`].
pub const DEFAULT_TOKEN_CACHE_SIZE: usize = 1024;
const MAX_TOKEN_CACHE_SIZE: u32 = 1 << 20;
const DEFAULT_LEEWAY_SECONDS: u64 = 30;
const MAX_LEEWAY_SECONDS: u64 = 300;

/// Every config problem: `(path, message)`, e.g.
/// `("identity.providers[1].jwks.keys[0]", "unsupported kty \"oct\": …")`.
pub type IdentityErrors = Vec<(String, String)>;

/// What a request presented, as raw header values (every value of each header, so duplicates
/// are seen rather than silently picked from).
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// Every `Authorization` value.
    pub authorization: &'a [&'a str],
    /// Every value of the configured `jwt_authn` payload header.
    pub jwt_payload: &'a [&'a str],
    /// URI SANs of the verified peer certificate (empty without mTLS).
    pub peer_uri_sans: &'a [&'a str],
}

/// The compiled `identity` section: immutable, `Send + Sync`, shared by every worker.
#[derive(Debug)]
pub struct Identity {
    /// Unique per compile: lets a [`TokenCache`] notice a config reload.
    id: u64,
    providers: Vec<Provider>,
    jwt_authn: Option<(String, ClaimMapping)>,
    trust_domains: Option<Vec<String>>,
    /// Sorted, de-duplicated.
    required_scopes: Vec<String>,
    /// `required_scopes` space-joined, for challenges.
    scope_param: Option<String>,
    anonymous_methods: Vec<String>,
    metadata: Option<Metadata>,
    token_cache_size: usize,
}

#[derive(Debug)]
struct Metadata {
    url: String,
    path: String,
    json: String,
}

/// base64url, padding optional (but canonical if present).
const FORWARDED_PAYLOAD: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Identity {
    /// Check and compile a spec with inline JWKS only (`jwks_file` is reported as an error).
    pub fn compile(spec: IdentitySpec) -> Result<Identity, IdentityErrors> {
        Identity::compile_with_loader(spec, &mut |_| {
            Err("jwks_file needs a file loader here; inline the JWKS as jwks".into())
        })
    }

    /// Check and compile, reading `jwks_file`s through `load` (called at most once per
    /// provider, at config load, never on the request path). Reports every problem.
    pub fn compile_with_loader(
        spec: IdentitySpec,
        load: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    ) -> Result<Identity, IdentityErrors> {
        let mut errors: IdentityErrors = Vec::new();

        // Resource and metadata first: providers default their audience to the resource.
        let resource = match &spec.resource {
            Some(r) => match metadata::parse_resource_url(r) {
                Ok(_) => Some(r.clone()),
                Err(m) => {
                    errors.push(("identity.resource".into(), m));
                    None
                }
            },
            None => None,
        };

        let mut providers = Vec::with_capacity(spec.providers.len());
        for (i, ps) in spec.providers.iter().enumerate() {
            let path = format!("identity.providers[{i}]");
            if ps.name.is_empty()
                || !ps
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                errors.push((
                    format!("{path}.name"),
                    format!("must be non-empty and use only [A-Za-z0-9_-], got {:?}", ps.name),
                ));
            } else if spec.providers[..i].iter().any(|o| o.name == ps.name) {
                errors.push((format!("{path}.name"), format!("duplicate provider name {:?}", ps.name)));
            }
            if ps.issuer.is_empty() || ps.issuer.chars().any(char::is_control) {
                errors.push((
                    format!("{path}.issuer"),
                    "must be a non-empty string without control characters".into(),
                ));
            } else if spec.providers[..i].iter().any(|o| o.issuer == ps.issuer) {
                errors.push((
                    format!("{path}.issuer"),
                    format!(
                        "duplicate issuer {:?}: tokens are routed to providers by iss",
                        ps.issuer
                    ),
                ));
            }
            let audiences = if ps.audiences.is_empty() {
                match &resource {
                    Some(r) => vec![r.clone()],
                    None => {
                        if spec.resource.is_none() {
                            errors.push((
                                format!("{path}.audiences"),
                                "must list at least one audience (or set identity.resource)".into(),
                            ));
                        }
                        Vec::new()
                    }
                }
            } else {
                for (j, a) in ps.audiences.iter().enumerate() {
                    if a.is_empty() {
                        errors.push((format!("{path}.audiences[{j}]"), "must not be empty".into()));
                    }
                }
                ps.audiences.clone()
            };
            let algorithms = match &ps.algorithms {
                None => jwks::ASYMMETRIC.to_vec(),
                Some(list) if list.is_empty() => {
                    errors.push((
                        format!("{path}.algorithms"),
                        "must not be empty (omit it for every asymmetric algorithm)".into(),
                    ));
                    Vec::new()
                }
                Some(list) => {
                    let mut algs = Vec::new();
                    for (j, a) in list.iter().enumerate() {
                        match jwks::parse_alg(a) {
                            Ok(a) if !algs.contains(&a) => algs.push(a),
                            Ok(_) => {}
                            Err(m) => errors.push((format!("{path}.algorithms[{j}]"), m)),
                        }
                    }
                    algs
                }
            };
            let leeway = ps.leeway_seconds.unwrap_or(DEFAULT_LEEWAY_SECONDS);
            if leeway > MAX_LEEWAY_SECONDS {
                errors.push((
                    format!("{path}.leeway_seconds"),
                    format!("must be at most {MAX_LEEWAY_SECONDS}, got {leeway}"),
                ));
            }
            let claims = ClaimMapping::compile(&ps.claims, &format!("{path}.claims"), &mut errors);
            let keys = match (&ps.jwks, &ps.jwks_file) {
                (Some(doc), None) => jwks::compile(doc, &algorithms, &format!("{path}.jwks"), &mut errors),
                (None, Some(file)) => {
                    match load(file).and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("is not JSON: {e}"))) {
                        Ok(doc) => jwks::compile(&doc, &algorithms, &format!("{path}.jwks_file"), &mut errors),
                        Err(m) => {
                            errors.push((format!("{path}.jwks_file"), m));
                            Vec::new()
                        }
                    }
                }
                (Some(_), Some(_)) => {
                    errors.push((path.clone(), "set exactly one of jwks and jwks_file, not both".into()));
                    Vec::new()
                }
                (None, None) => {
                    errors.push((path.clone(), "needs keys: set jwks (inline JWKS) or jwks_file".into()));
                    Vec::new()
                }
            };
            providers.push(Provider {
                name: ps.name.clone(),
                issuer: ps.issuer.clone(),
                audiences,
                algorithms,
                leeway,
                claims,
                keys,
            });
        }

        let jwt_authn = spec.jwt_authn.as_ref().map(|j| {
            let h = j.payload_header.to_ascii_lowercase();
            if h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                errors.push((
                    "identity.jwt_authn.payload_header".into(),
                    format!("is not a valid header name: {:?}", j.payload_header),
                ));
            }
            if matches!(h.as_str(), "authorization" | "cookie" | "host") {
                errors.push((
                    "identity.jwt_authn.payload_header".into(),
                    format!("must be a dedicated header, not {h:?}"),
                ));
            }
            (
                h,
                ClaimMapping::compile(&j.claims, "identity.jwt_authn.claims", &mut errors),
            )
        });

        let trust_domains = spec.mtls.as_ref().map(|m| {
            if m.trust_domains.is_empty() {
                errors.push((
                    "identity.mtls.trust_domains".into(),
                    "must list at least one trust domain".into(),
                ));
            }
            for (i, td) in m.trust_domains.iter().enumerate() {
                if let Err(e) = spiffe::check_trust_domain(td) {
                    errors.push((format!("identity.mtls.trust_domains[{i}]"), format!("{e}: {td:?}")));
                }
            }
            m.trust_domains.clone()
        });

        for (i, s) in spec.required_scopes.iter().enumerate() {
            if let Some(m) = scope_token_problem(s) {
                errors.push((format!("identity.required_scopes[{i}]"), m));
            }
        }
        let mut required_scopes = spec.required_scopes.clone();
        required_scopes.sort_unstable();
        required_scopes.dedup();
        let scope_param = (!required_scopes.is_empty()).then(|| required_scopes.join(" "));

        for (i, m) in spec.anonymous_methods.iter().enumerate() {
            if m.is_empty() {
                errors.push((format!("identity.anonymous_methods[{i}]"), "must not be empty".into()));
            }
        }

        let metadata = build_metadata(&spec, resource.as_deref(), &providers, &required_scopes, &mut errors);

        let token_cache_size = match spec.token_cache_size {
            None => DEFAULT_TOKEN_CACHE_SIZE,
            Some(n) if n > MAX_TOKEN_CACHE_SIZE => {
                errors.push((
                    "identity.token_cache_size".into(),
                    format!("must be at most {MAX_TOKEN_CACHE_SIZE}, got {n}"),
                ));
                0
            }
            Some(n) => n as usize,
        };

        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Identity {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            providers,
            jwt_authn,
            trust_domains,
            required_scopes,
            scope_param,
            anonymous_methods: spec.anonymous_methods,
            metadata,
            token_cache_size,
        })
    }

    /// Establish who is calling, then enforce `required_scopes`.
    ///
    /// Sources, first match wins: a bearer token (when providers are configured), the
    /// `jwt_authn` payload header (when configured), the mTLS peer's SPIFFE id (when
    /// configured). A presented-but-bad credential is an error, never a fall-through, except a
    /// non-Bearer `Authorization` scheme, which other sources may still override. With nothing
    /// presented: [`AuthError::MissingToken`] (see [`Identity::allows_anonymous`]).
    pub fn establish(
        &self,
        creds: &Credentials<'_>,
        cache: &mut TokenCache,
        now: u64,
    ) -> Result<Arc<Principal>, AuthError> {
        let p = self.identify(creds, cache, now)?;
        self.check_required_scopes(&p)?;
        Ok(p)
    }

    fn identify(&self, creds: &Credentials<'_>, cache: &mut TokenCache, now: u64) -> Result<Arc<Principal>, AuthError> {
        let mut fallback = AuthError::MissingToken;
        if !self.providers.is_empty() {
            match header::bearer_token(creds.authorization) {
                Ok(Some(token)) => return self.verify_bearer_cached(cache, token, now),
                Ok(None) => {}
                Err(AuthError::UnsupportedScheme) => fallback = AuthError::UnsupportedScheme,
                Err(e) => return Err(e),
            }
        }
        if self.jwt_authn.is_some() {
            match creds.jwt_payload {
                [] => {}
                [one] => return self.principal_from_jwt_authn(one).map(Arc::new),
                _ => {
                    return Err(AuthError::MalformedRequest(
                        "more than one forwarded JWT payload header",
                    ))
                }
            }
        }
        if self.trust_domains.is_some() {
            if let Some(p) = self.principal_from_uri_sans(creds.peer_uri_sans)? {
                return Ok(Arc::new(p));
            }
        }
        Err(fallback)
    }

    /// Verify a bearer JWT (no cache). `now` is seconds since the Unix epoch.
    pub fn verify_bearer(&self, token: &str, now: u64) -> Result<Principal, AuthError> {
        jwt::verify(&self.providers, token, now).map(|(p, _)| p)
    }

    /// Verify a bearer JWT through the worker's cache: a hit is a hash, a compare and an
    /// `Arc` clone; a miss verifies and remembers the token until `exp` + leeway.
    pub fn verify_bearer_cached(
        &self,
        cache: &mut TokenCache,
        token: &str,
        now: u64,
    ) -> Result<Arc<Principal>, AuthError> {
        cache.bind(self.id, self.token_cache_size);
        if let Some(p) = cache.get(token, now) {
            return Ok(p);
        }
        let (p, dead_at) = jwt::verify(&self.providers, token, now)?;
        let p = Arc::new(p);
        cache.insert(token, Arc::clone(&p), dead_at, now);
        Ok(p)
    }

    /// A principal from Envoy `jwt_authn`'s forwarded payload: a base64url JSON object, with or
    /// without padding (Envoy pads it when `pad_forward_payload_header` is set). The signature, `exp` and audience were Envoy's to check; claim types and
    /// mapping are checked here, as strictly as for our own tokens.
    pub fn principal_from_jwt_authn(&self, header_value: &str) -> Result<Principal, AuthError> {
        let Some((_, mapping)) = &self.jwt_authn else {
            return Err(AuthError::MissingToken);
        };
        let v = header_value.trim_matches([' ', '\t']);
        if v.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::MalformedToken("the forwarded payload is too large"));
        }
        let bytes = FORWARDED_PAYLOAD
            .decode(v)
            .map_err(|_| AuthError::MalformedToken("the forwarded payload is not base64url"))?;
        let claims = claims::parse_object(&bytes)
            .ok_or(AuthError::MalformedToken("the forwarded payload is not a JSON object"))?;
        let issuer = claims::opt_string(&claims, "iss")?.unwrap_or_default();
        claims::principal_from_claims(claims, mapping, Source::JwtAuthn, issuer)
    }

    /// The principal a token with these claims would get, without a token: for `mcp-policy
    /// explain --claims`, which asks "what if", never on the request path. The claim mapping is
    /// the provider's whose `issuer` equals `iss`, else `jwt_authn`'s (source `jwt_authn`),
    /// else the default mapping; no signature, time or audience check is made.
    pub fn principal_from_claims(
        &self,
        claims: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Principal, AuthError> {
        let issuer = claims::opt_string(&claims, "iss")?.unwrap_or_default();
        let (mapping, source) = match self.providers.iter().find(|p| p.issuer == issuer) {
            Some(p) => (p.claims.clone(), Source::Jwt),
            None => match &self.jwt_authn {
                Some((_, m)) => (m.clone(), Source::JwtAuthn),
                None => (ClaimMapping::default_mapping(), Source::Jwt),
            },
        };
        claims::principal_from_claims(claims, &mapping, source, issuer)
    }

    /// A principal from a SPIFFE id: subject = the whole id, issuer = its trust domain, which
    /// must be configured.
    pub fn principal_from_spiffe_id(&self, uri: &str) -> Result<Principal, AuthError> {
        let id = spiffe::parse_spiffe_id(uri).map_err(AuthError::InvalidSpiffeId)?;
        let allowed = self.trust_domains.as_deref().unwrap_or_default();
        if !allowed.iter().any(|td| td == id.trust_domain) {
            return Err(AuthError::UntrustedTrustDomain);
        }
        let mut p = Principal::anonymous();
        p.source = Source::Mtls;
        p.subject = uri.to_owned();
        p.issuer = id.trust_domain.to_owned();
        Ok(p)
    }

    /// The principal for a peer certificate's URI SANs: `Ok(None)` when none is a SPIFFE id;
    /// an error when more than one is (X509-SVID §2 allows exactly one).
    pub fn principal_from_uri_sans(&self, sans: &[&str]) -> Result<Option<Principal>, AuthError> {
        let is_spiffe = |s: &&&str| s.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("spiffe:"));
        let mut ids = sans.iter().filter(is_spiffe);
        match (ids.next(), ids.next()) {
            (None, _) => Ok(None),
            (Some(one), None) => self.principal_from_spiffe_id(one).map(Some),
            (Some(_), Some(_)) => Err(AuthError::InvalidSpiffeId(
                "the certificate carries more than one SPIFFE id",
            )),
        }
    }

    /// `required_scopes` for token-based principals (mTLS and anonymous carry no scopes and
    /// are exempt). Refusal lists every required scope, as MCP step-up expects.
    pub fn check_required_scopes(&self, p: &Principal) -> Result<(), AuthError> {
        if !matches!(p.source, Source::Jwt | Source::JwtAuthn) {
            return Ok(());
        }
        if self.required_scopes.iter().all(|s| p.has_scope(s)) {
            Ok(())
        } else {
            Err(AuthError::InsufficientScope {
                needed: self.required_scopes.clone(),
            })
        }
    }

    /// Whether any method may be called without credentials.
    pub fn has_anonymous_methods(&self) -> bool {
        !self.anonymous_methods.is_empty()
    }

    /// Whether a request with no credentials may call `method`.
    pub fn allows_anonymous(&self, method: &str) -> bool {
        self.anonymous_methods.iter().any(|m| m == method)
    }

    /// The `WWW-Authenticate` value for a refusal (`None` when it takes no challenge).
    pub fn www_authenticate(&self, err: &AuthError) -> Option<String> {
        error::www_authenticate(
            err,
            self.metadata.as_ref().map(|m| m.url.as_str()),
            self.scope_param.as_deref(),
        )
    }

    /// A complete plain-text refusal: status, `WWW-Authenticate`, details `mcp_policy_auth_<label>`.
    /// (Callers answering with a JSON-RPC body reuse the status and header.)
    pub fn reply(&self, err: &AuthError) -> Reply {
        let mut r = reply::http_error(err.status(), details(err), &err.description());
        if let Some(h) = self.www_authenticate(err) {
            r.headers.push(("www-authenticate", h));
        }
        r
    }

    /// A fresh per-worker cache sized from config.
    pub fn new_token_cache(&self) -> TokenCache {
        let mut c = TokenCache::new(self.token_cache_size);
        c.bind(self.id, self.token_cache_size);
        c
    }

    /// Whether bearer tokens are verified (providers configured).
    pub fn bearer_enabled(&self) -> bool {
        !self.providers.is_empty()
    }

    /// Lower-cased `jwt_authn` payload header name, when configured.
    pub fn jwt_authn_header(&self) -> Option<&str> {
        self.jwt_authn.as_ref().map(|(h, _)| h.as_str())
    }

    pub fn mtls_enabled(&self) -> bool {
        self.trust_domains.is_some()
    }

    /// Provider names, in config order (for stats).
    pub fn provider_names(&self) -> impl Iterator<Item = &str> {
        self.providers.iter().map(|p| p.name.as_str())
    }

    /// Sorted, de-duplicated.
    pub fn required_scopes(&self) -> &[String] {
        &self.required_scopes
    }

    /// Path the filter serves the metadata on (GET, unauthenticated), when `resource` is set.
    pub fn metadata_path(&self) -> Option<&str> {
        self.metadata.as_ref().map(|m| m.path.as_str())
    }

    /// Absolute metadata URL (the `resource_metadata` challenge parameter).
    pub fn metadata_url(&self) -> Option<&str> {
        self.metadata.as_ref().map(|m| m.url.as_str())
    }

    /// The RFC 9728 metadata document, serialized once at compile.
    pub fn metadata_json(&self) -> Option<&str> {
        self.metadata.as_ref().map(|m| m.json.as_str())
    }
}

/// Envoy response-code details per refusal (single tokens, as Envoy requires).
pub fn details(err: &AuthError) -> &'static str {
    match err {
        AuthError::MissingToken => "mcp_policy_auth_missing_token",
        AuthError::UnsupportedScheme => "mcp_policy_auth_unsupported_scheme",
        AuthError::MalformedRequest(_) => "mcp_policy_auth_malformed_request",
        AuthError::MalformedToken(_) => "mcp_policy_auth_malformed_token",
        AuthError::Expired => "mcp_policy_auth_expired",
        AuthError::NotYetValid => "mcp_policy_auth_not_yet_valid",
        AuthError::WrongIssuer => "mcp_policy_auth_wrong_issuer",
        AuthError::WrongAudience => "mcp_policy_auth_wrong_audience",
        AuthError::UnknownKid => "mcp_policy_auth_unknown_kid",
        AuthError::BadSignature => "mcp_policy_auth_bad_signature",
        AuthError::AlgorithmNotAllowed => "mcp_policy_auth_alg_not_allowed",
        AuthError::InvalidClaim { .. } => "mcp_policy_auth_invalid_claim",
        AuthError::InsufficientScope { .. } => "mcp_policy_auth_insufficient_scope",
        AuthError::InvalidSpiffeId(_) => "mcp_policy_auth_invalid_spiffe_id",
        AuthError::UntrustedTrustDomain => "mcp_policy_auth_untrusted_trust_domain",
        AuthError::Revoked => "mcp_policy_auth_revoked",
    }
}

/// RFC 6749 §3.3 `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn scope_token_problem(s: &str) -> Option<String> {
    if s.is_empty() || !s.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e)) {
        return Some(format!("is not a valid scope token (RFC 6749 §3.3): {s:?}"));
    }
    None
}

fn build_metadata(
    spec: &IdentitySpec,
    resource: Option<&str>,
    providers: &[Provider],
    required_scopes: &[String],
    errors: &mut IdentityErrors,
) -> Option<Metadata> {
    let Some(resource) = resource else {
        if spec.resource.is_none() {
            for field in [
                "authorization_servers",
                "scopes_supported",
                "resource_name",
                "resource_metadata_path",
            ] {
                let set = match field {
                    "authorization_servers" => spec.authorization_servers.is_some(),
                    "scopes_supported" => spec.scopes_supported.is_some(),
                    "resource_name" => spec.resource_name.is_some(),
                    _ => spec.resource_metadata_path.is_some(),
                };
                if set {
                    errors.push((
                        format!("identity.{field}"),
                        "needs identity.resource (it describes that resource)".into(),
                    ));
                }
            }
        }
        return None;
    };
    let url = metadata::parse_resource_url(resource).ok()?;
    let path = match &spec.resource_metadata_path {
        Some(p) => {
            if let Err(m) = metadata::check_path(p) {
                errors.push(("identity.resource_metadata_path".into(), m));
            }
            p.clone()
        }
        None => metadata::metadata_path_for(&url),
    };
    let servers = match &spec.authorization_servers {
        Some(list) => {
            for (i, s) in list.iter().enumerate() {
                if let Err(m) = metadata::parse_resource_url(s) {
                    errors.push((format!("identity.authorization_servers[{i}]"), m));
                }
            }
            list.clone()
        }
        None => {
            let mut v: Vec<String> = Vec::new();
            for p in providers {
                if !v.contains(&p.issuer) {
                    v.push(p.issuer.clone());
                }
            }
            v
        }
    };
    let scopes = match &spec.scopes_supported {
        Some(list) => {
            for (i, s) in list.iter().enumerate() {
                if let Some(m) = scope_token_problem(s) {
                    errors.push((format!("identity.scopes_supported[{i}]"), m));
                }
            }
            list.clone()
        }
        None => required_scopes.to_vec(),
    };
    if let Some(n) = &spec.resource_name {
        if n.is_empty() || n.chars().any(char::is_control) {
            errors.push((
                "identity.resource_name".into(),
                "must be non-empty text without control characters".into(),
            ));
        }
    }
    let json =
        metadata::protected_resource_metadata(resource, &servers, &scopes, spec.resource_name.as_deref()).to_string();
    Some(Metadata {
        url: format!("{}{}", url.origin, path),
        path,
        json,
    })
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Identity>();
}
