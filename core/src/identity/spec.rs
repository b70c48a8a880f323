//! The `identity` section as written (serde model + JSON Schema). Checked and compiled by
//! [`super::Identity::compile`]; nothing here is trusted until then.

use schemars::JsonSchema;
use serde::Deserialize;

/// How callers are identified. Every source is optional; with none configured every request is
/// anonymous (and only `anonymous_methods` get through).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentitySpec {
    /// Token issuers whose bearer JWTs the module verifies itself. Bearer verification is on
    /// exactly when this list is non-empty.
    #[serde(default)]
    pub providers: Vec<ProviderSpec>,
    /// Trust the payload Envoy's `jwt_authn` filter forwards (`forward_payload_header`).
    #[serde(default)]
    pub jwt_authn: Option<JwtAuthnSpec>,
    /// Identify mTLS peers by the SPIFFE id in their certificate's URI SAN.
    #[serde(default)]
    pub mtls: Option<MtlsSpec>,
    /// Scopes every token-based caller must hold (403 `insufficient_scope` otherwise). mTLS
    /// peers carry no scopes and are exempt.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// JSON-RPC methods a request with no credentials at all may call (e.g. `ping`).
    #[serde(default)]
    pub anonymous_methods: Vec<String>,
    /// This MCP server's resource identifier (RFC 8707 / RFC 9728), e.g.
    /// `https://gw.example/mcp`. Default audience for providers that list none, and the
    /// `resource` of the protected-resource metadata.
    #[serde(default)]
    pub resource: Option<String>,
    /// RFC 9728 `authorization_servers`. Default: the providers' issuers.
    #[serde(default)]
    pub authorization_servers: Option<Vec<String>>,
    /// RFC 9728 `scopes_supported`. Default: `required_scopes`.
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
    /// RFC 9728 `resource_name`, shown to users by clients.
    #[serde(default)]
    pub resource_name: Option<String>,
    /// Path the metadata is served on. Default: derived from `resource` per RFC 9728 §3.1
    /// (`/.well-known/oauth-protected-resource` + the resource's path).
    #[serde(default)]
    pub resource_metadata_path: Option<String>,
    /// Verified tokens each worker thread remembers until they expire. 0 disables the cache.
    /// Default 1024.
    #[serde(default)]
    pub token_cache_size: Option<u32>,
}

/// One token issuer.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Short name for logs and stats (`[A-Za-z0-9_-]`).
    pub name: String,
    /// Exact `iss` value; tokens are routed to a provider by it.
    pub issuer: String,
    /// Accepted `aud` values; a token must name at least one. Default: `[resource]`.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Inline JWKS document (`{"keys":[…]}`). Exactly one of `jwks` and `jwks_file`.
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// Path of a JWKS file, read once at config load through the caller's loader.
    #[serde(default)]
    pub jwks_file: Option<String>,
    /// Accepted `alg` values. Default: every asymmetric algorithm (RS/PS 256/384/512, ES256,
    /// ES384, EdDSA); a token's alg must also fit its key's type. `none` and HS* are refused.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds (0..=300). Default 30.
    #[serde(default)]
    pub leeway_seconds: Option<u64>,
    #[serde(default)]
    pub claims: ClaimMappingSpec,
}

/// Which claims feed the principal. A name starting with `/` is a JSON Pointer (RFC 6901)
/// into the claims, e.g. `/realm_access/roles`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimMappingSpec {
    /// A non-empty string; required in every token. Default `sub`.
    pub subject: String,
    /// An array of strings or a single string. Default `groups`.
    pub groups: String,
    /// An array of strings or a single string. Default `roles`.
    pub roles: String,
    /// A string. Default: not mapped.
    pub tenant: Option<String>,
    /// A space-separated string or an array of strings. Default `scope` (falling back to
    /// `scp` when `scope` is absent).
    pub scopes: String,
}

impl Default for ClaimMappingSpec {
    fn default() -> Self {
        Self {
            subject: "sub".into(),
            groups: "groups".into(),
            roles: "roles".into(),
            tenant: None,
            scopes: "scope".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtAuthnSpec {
    /// The header Envoy's `jwt_authn` writes the verified payload to (`forward_payload_header`).
    /// Envoy must be the only writer of it: see the design note on spoofing.
    pub payload_header: String,
    #[serde(default)]
    pub claims: ClaimMappingSpec,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MtlsSpec {
    /// SPIFFE trust domains whose workloads are accepted, e.g. `example.org`.
    pub trust_domains: Vec<String>,
}
