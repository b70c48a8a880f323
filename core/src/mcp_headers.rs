//! MCP 2026-07-28 request headers checked against the body: `MCP-Protocol-Version`,
//! `Mcp-Method`, `Mcp-Name` and `Mcp-Param-{Name}`.
//!
//! Owns: collecting those headers, decoding the `=?base64?…?=` form, and refusing any
//! disagreement with the body as `HeaderMismatch` (HTTP 400, JSON-RPC -32020). Does not own:
//! whether a protocol version is supported, or the policy decision.
//!
//! Why a gateway must do this: a load balancer may route on `Mcp-Name` while the server runs
//! `params.name`; if the two differ, the policy judged one tool and another runs. Spec:
//! `basic/transports/streamable-http.mdx` §"Request Metadata" and §"Server Validation"
//! (revision 2026-07-28).
//!
//! Rules (and the choices where the spec leaves room, all on the strict side):
//! - A header that is present must match the body, whatever the version: even a legacy request
//!   is refused if it carries an `Mcp-Name` that disagrees with its body, because something
//!   downstream may route on it.
//! - Headers are *required* only when the request is modern (header or body version ≥
//!   2026-07-28): `MCP-Protocol-Version` whenever the body carries a `_meta` version,
//!   `Mcp-Method` on every request, `Mcp-Name` on `tools/call`, `prompts/get`,
//!   `resources/read`, and `Mcp-Param-*` when the tool's bindings are known and the body has a
//!   non-null value. A modern header with no `_meta` version in the body is also refused.
//! - `Mcp-Name` on a method that defines no name, or `Mcp-Method` on a body without a method,
//!   is a mismatch (the header claims something the body does not say).
//! - A header repeated (case-insensitively) is malformed: we cannot know which copy a peer uses.
//! - `Mcp-Param-{Name}` maps to an argument through the tool's `x-mcp-header` annotation
//!   ([`param_bindings`]). When the caller does not know the tool's schema,
//!   [`ParamRule::SameNameArgument`] assumes the header name equals a top-level argument name
//!   (ASCII case-insensitive); headers matching no argument are forwarded unchecked, as the
//!   spec requires of intermediaries that do not recognise them.
//! - Values compare as: string as-is (after decoding), boolean as `true`/`false`, number
//!   numerically within ±2^53 (`42.0` equals `42`, as the spec suggests) and by exact text
//!   beyond; a header for a `null`, object, array or absent body value is a mismatch.
//! - Base64 padding may be present or absent (both decode to the same bytes, so accepting
//!   both opens no ambiguity); the decoded bytes must be UTF-8.

use crate::jsonrpc::Message;
use crate::mcp::{Method, Target};
use crate::strict_json::{find_member, Scanner};
use crate::subject::{json_string, Params};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use std::borrow::Cow;

/// The first protocol version whose requests carry the mirrored headers.
pub const FIRST_HEADER_VERSION: &str = "2026-07-28";

/// Longest header or body value echoed into an error message.
const MAX_ECHO: usize = 64;

const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Headers and body disagree, or a required header is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Header mismatch: {message}")]
pub struct HeaderMismatch {
    /// The header at fault, in canonical spelling (`Mcp-Param-Region`).
    pub header: String,
    pub message: String,
}

impl HeaderMismatch {
    /// JSON-RPC `HeaderMismatch` (MCP 2026-07-28 §"Server Validation").
    pub const CODE: i32 = -32020;
    pub const HTTP_STATUS: u16 = 400;

    pub fn code(&self) -> i32 {
        Self::CODE
    }

    pub fn http_status(&self) -> u16 {
        Self::HTTP_STATUS
    }

    fn new(header: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            header: header.into(),
            message: message.into(),
        }
    }

    fn differs(header: &str, got: &str, body: &str) -> Self {
        Self::new(
            header,
            format!(
                "{header} header value '{}' does not match body value '{}'",
                echo(got),
                echo(body)
            ),
        )
    }

    fn missing(header: &str, why: &str) -> Self {
        Self::new(header, format!("{header} header is required {why}"))
    }
}

fn echo(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_ECHO).filter(|c| !c.is_control()).collect();
    if s.chars().count() > MAX_ECHO {
        out.push('…');
    }
    out
}

/// The MCP request headers, picked out of all request headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct McpHeaders<'h> {
    pub protocol_version: Option<&'h [u8]>,
    pub method: Option<&'h [u8]>,
    pub name: Option<&'h [u8]>,
    /// `Mcp-Param-{Name}` headers as `(Name, value)`.
    pub params: Vec<(&'h [u8], &'h [u8])>,
}

const PARAM_PREFIX: &[u8] = b"mcp-param-";

impl<'h> McpHeaders<'h> {
    /// Pick the MCP headers out of `(name, value)` pairs (names in any case). A header given
    /// twice is refused.
    pub fn collect<I>(headers: I) -> Result<Self, HeaderMismatch>
    where
        I: IntoIterator<Item = (&'h [u8], &'h [u8])>,
    {
        let mut out = McpHeaders::default();
        for (name, value) in headers {
            let slot = if name.eq_ignore_ascii_case(b"mcp-protocol-version") {
                Some((&mut out.protocol_version, "MCP-Protocol-Version"))
            } else if name.eq_ignore_ascii_case(b"mcp-method") {
                Some((&mut out.method, "Mcp-Method"))
            } else if name.eq_ignore_ascii_case(b"mcp-name") {
                Some((&mut out.name, "Mcp-Name"))
            } else {
                None
            };
            if let Some((slot, canonical)) = slot {
                if slot.replace(value).is_some() {
                    return Err(HeaderMismatch::new(
                        canonical,
                        format!("{canonical} header given more than once"),
                    ));
                }
                continue;
            }
            if name.len() > PARAM_PREFIX.len() && name[..PARAM_PREFIX.len()].eq_ignore_ascii_case(PARAM_PREFIX) {
                let suffix = &name[PARAM_PREFIX.len()..];
                if out.params.iter().any(|(n, _)| n.eq_ignore_ascii_case(suffix)) {
                    let h = param_header(suffix);
                    return Err(HeaderMismatch::new(
                        h.clone(),
                        format!("{h} header given more than once"),
                    ));
                }
                out.params.push((suffix, value));
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.protocol_version.is_none() && self.method.is_none() && self.name.is_none() && self.params.is_empty()
    }
}

fn param_header(suffix: &[u8]) -> String {
    format!("Mcp-Param-{}", String::from_utf8_lossy(suffix))
}

/// Decode a header value that may use the `=?base64?…?=` form (markers case-sensitive, as the
/// spec says). A plain value must be visible ASCII, space or tab.
pub fn decode_value(raw: &[u8]) -> Result<Cow<'_, str>, &'static str> {
    const OPEN: &[u8] = b"=?base64?";
    const CLOSE: &[u8] = b"?=";
    if raw.len() >= OPEN.len() + CLOSE.len() && raw.starts_with(OPEN) && raw.ends_with(CLOSE) {
        let inner = &raw[OPEN.len()..raw.len() - CLOSE.len()];
        let bytes = B64.decode(inner).map_err(|_| "invalid base64 in =?base64?…?= value")?;
        return String::from_utf8(bytes)
            .map(Cow::Owned)
            .map_err(|_| "base64 value is not UTF-8");
    }
    if !raw.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        return Err("invalid characters in header value");
    }
    // All bytes are ASCII, so this cannot fail.
    std::str::from_utf8(raw)
        .map(Cow::Borrowed)
        .map_err(|_| "invalid characters in header value")
}

fn plain(header: &str, raw: &[u8]) -> Result<Cow<'static, str>, HeaderMismatch> {
    if !raw.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        return Err(HeaderMismatch::new(
            header,
            format!("{header} header contains invalid characters"),
        ));
    }
    Ok(Cow::Owned(String::from_utf8_lossy(raw).into_owned()))
}

fn decoded<'r>(header: &str, raw: &'r [u8]) -> Result<Cow<'r, str>, HeaderMismatch> {
    decode_value(raw).map_err(|why| HeaderMismatch::new(header, format!("{header} header: {why}")))
}

/// Does a request at this version require the mirrored headers?
pub fn requires_headers(version: &str) -> bool {
    // Versions are ISO dates, so text order is date order; anything not a date (a draft tag)
    // sorts after digits and counts as modern, the strict side.
    version >= FIRST_HEADER_VERSION
}

/// A tool parameter mirrored into `Mcp-Param-{header}` (an `x-mcp-header` annotation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamBinding {
    /// The `{Name}` part, as annotated.
    pub header: String,
    /// Property names from the arguments object down to the value.
    pub path: Vec<String>,
}

/// How `Mcp-Param-*` headers map to arguments for this request.
#[derive(Debug, Clone, Copy)]
pub enum ParamRule<'b> {
    /// The tool's annotations are known (from its `tools/list` entry, see [`param_bindings`]).
    Bindings(&'b [ParamBinding]),
    /// Unknown: a header is checked against a top-level argument of the same name (ASCII
    /// case-insensitive), if there is one.
    SameNameArgument,
}

/// Check the MCP headers of one request against its body.
pub fn check(
    headers: &McpHeaders<'_>,
    message: &Message<'_>,
    params: &Params<'_>,
    rule: ParamRule<'_>,
) -> Result<(), HeaderMismatch> {
    let is_request = matches!(message, Message::Request { .. });

    // MCP-Protocol-Version vs params._meta.
    let header_version = headers
        .protocol_version
        .map(|v| plain("MCP-Protocol-Version", v))
        .transpose()?;
    let body_version = params.protocol_version().ok().flatten();
    match (&header_version, &body_version) {
        (Some(h), Some(b)) if h != b => return Err(HeaderMismatch::differs("MCP-Protocol-Version", h, b)),
        (None, Some(_)) => {
            return Err(HeaderMismatch::missing(
                "MCP-Protocol-Version",
                "when the body carries _meta protocolVersion",
            ))
        }
        (Some(h), None) if is_request && requires_headers(h) => {
            return Err(HeaderMismatch::new(
                "MCP-Protocol-Version",
                format!(
                    "MCP-Protocol-Version header is '{}' but the body has no _meta protocolVersion",
                    echo(h)
                ),
            ))
        }
        _ => {}
    }
    let modern = is_request
        && header_version
            .as_deref()
            .or(body_version.as_deref())
            .is_some_and(requires_headers);

    // Mcp-Method vs method.
    let body_method = message.method();
    match (headers.method, body_method) {
        (Some(h), Some(b)) => {
            let h = plain("Mcp-Method", h)?;
            if h != b {
                return Err(HeaderMismatch::differs("Mcp-Method", &h, b));
            }
        }
        (Some(h), None) => {
            let h = String::from_utf8_lossy(h);
            return Err(HeaderMismatch::new(
                "Mcp-Method",
                format!("Mcp-Method header value '{}' but the body is not a request", echo(&h)),
            ));
        }
        (None, _) if modern => return Err(HeaderMismatch::missing("Mcp-Method", "on every request")),
        (None, _) => {}
    }
    let method = body_method.map_or(Method::ClientResponse, Method::from_name);

    // Mcp-Name vs params.name / params.uri.
    let d = method.descriptor();
    let name_field = match d.target {
        Target::Name if d.name_header => Some(("name", params.name())),
        Target::Uri if d.name_header => Some(("uri", params.uri())),
        _ => None,
    };
    match (headers.name, name_field) {
        (Some(h), Some((field, body))) => {
            let h = decoded("Mcp-Name", h)?;
            match body {
                Ok(Some(b)) if *h == *b => {}
                Ok(Some(b)) => return Err(HeaderMismatch::differs("Mcp-Name", &h, &b)),
                _ => {
                    return Err(HeaderMismatch::new(
                        "Mcp-Name",
                        format!(
                            "Mcp-Name header value '{}' but params.{field} is not a string",
                            echo(&h)
                        ),
                    ))
                }
            }
        }
        (Some(_), None) => {
            return Err(HeaderMismatch::new(
                "Mcp-Name",
                format!(
                    "Mcp-Name header is not defined for {}",
                    echo(body_method.unwrap_or("a response"))
                ),
            ))
        }
        (None, Some(_)) if modern => {
            return Err(HeaderMismatch::missing(
                "Mcp-Name",
                "on tools/call, prompts/get and resources/read",
            ))
        }
        (None, _) => {}
    }

    // Mcp-Param-* vs arguments (tools/call only; elsewhere they are not ours to judge).
    if method == Method::ToolsCall {
        let arguments = params.arguments().ok().flatten().map(|a| a.get());
        check_params(headers, arguments, rule, modern)?;
    }
    Ok(())
}

fn check_params(
    headers: &McpHeaders<'_>,
    arguments: Option<&str>,
    rule: ParamRule<'_>,
    modern: bool,
) -> Result<(), HeaderMismatch> {
    match rule {
        ParamRule::Bindings(bindings) => {
            for b in bindings {
                let header = format!("Mcp-Param-{}", b.header);
                let body = lookup(arguments, &b.path).map_err(|why| HeaderMismatch::new(&header, why))?;
                let body = body.filter(|v| *v != "null");
                let given = headers
                    .params
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(b.header.as_bytes()));
                match (given, body) {
                    (Some((_, raw)), body) => compare_param(&header, raw, body)?,
                    (None, Some(_)) if modern => {
                        return Err(HeaderMismatch::missing(
                            &header,
                            "because the argument it mirrors is present",
                        ))
                    }
                    (None, _) => {}
                }
            }
        }
        ParamRule::SameNameArgument => {
            let Some(arguments) = arguments else {
                return Ok(());
            };
            for (name, raw) in &headers.params {
                let header = param_header(name);
                let mut s = Scanner::new(arguments);
                s.object(|key, s| -> Result<(), HeaderMismatch> {
                    let pos = s.pos();
                    let value = s.skip_value(crate::strict_json::DEFAULT_MAX_DEPTH).map_err(|_| {
                        HeaderMismatch::new(&header, format!("arguments are not valid JSON near byte {pos}"))
                    })?;
                    let key = key
                        .decode()
                        .map_err(|_| HeaderMismatch::new(&header, "argument name is not valid JSON"))?;
                    if key.as_bytes().eq_ignore_ascii_case(name) {
                        compare_param(&header, raw, Some(value))?;
                    }
                    Ok(())
                })?;
            }
        }
    }
    Ok(())
}

impl From<crate::strict_json::Syntax> for HeaderMismatch {
    fn from(s: crate::strict_json::Syntax) -> Self {
        HeaderMismatch::new(
            "Mcp-Param",
            format!("arguments are not valid JSON at byte {}: {}", s.offset, s.message),
        )
    }
}

/// The raw JSON at `path` inside the arguments object, if every step exists.
fn lookup<'a>(arguments: Option<&'a str>, path: &[String]) -> Result<Option<&'a str>, String> {
    let mut cur = match arguments {
        Some(a) => a,
        None => return Ok(None),
    };
    for step in path {
        if !cur.starts_with('{') {
            return Ok(None);
        }
        match find_member(cur, step) {
            Ok(Some(v)) => cur = v,
            Ok(None) => return Ok(None),
            Err(_) => return Err(format!("argument {step:?} is ambiguous or malformed in the body")),
        }
    }
    Ok(Some(cur))
}

fn compare_param(header: &str, raw: &[u8], body: Option<&str>) -> Result<(), HeaderMismatch> {
    let got = decoded(header, raw)?;
    let Some(body) = body else {
        return Err(HeaderMismatch::new(
            header,
            format!(
                "{header} header value '{}' but the body has no value for it",
                echo(&got)
            ),
        ));
    };
    let equal = match body.as_bytes().first() {
        Some(b'"') => json_string(body).is_some_and(|b| b == *got),
        Some(b't' | b'f') => body == got,
        Some(b'-' | b'0'..=b'9') => numbers_equal(&got, body),
        _ => false,
    };
    if equal {
        Ok(())
    } else {
        let shown = json_string(body).map_or_else(|| body.to_owned(), Cow::into_owned);
        Err(HeaderMismatch::differs(header, &got, &shown))
    }
}

/// Numeric comparison within the range where `f64` is exact for integers; exact text beyond.
fn numbers_equal(header: &str, body: &str) -> bool {
    const SAFE: f64 = 9_007_199_254_740_991.0;
    let mut s = Scanner::new(header);
    if s.number().is_err() || !s.at_end() {
        return false;
    }
    match (header.parse::<f64>(), body.parse::<f64>()) {
        (Ok(h), Ok(b)) if h.is_finite() && b.is_finite() && h.abs() <= SAFE && b.abs() <= SAFE => h == b,
        _ => header == body,
    }
}

/// The `x-mcp-header` bindings of a tool's `inputSchema`, or every problem that makes the
/// annotations invalid (the spec says clients drop such tools; a gateway may too).
pub fn param_bindings(input_schema: &serde_json::Value) -> Result<Vec<ParamBinding>, Vec<String>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    if input_schema.get("x-mcp-header").is_some() {
        problems.push("x-mcp-header on the schema root".to_owned());
    }
    reachable(input_schema, &mut Vec::new(), &mut out, &mut problems);
    for (i, b) in out.iter().enumerate() {
        if out[..i].iter().any(|o| o.header.eq_ignore_ascii_case(&b.header)) {
            problems.push(format!(
                "x-mcp-header {:?} is not unique (case-insensitively)",
                b.header
            ));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Walk a schema node reachable from the root through `properties` only.
fn reachable(
    node: &serde_json::Value,
    path: &mut Vec<String>,
    out: &mut Vec<ParamBinding>,
    problems: &mut Vec<String>,
) {
    let Some(obj) = node.as_object() else {
        return;
    };
    for (key, child) in obj {
        if key == "properties" {
            let Some(props) = child.as_object() else {
                continue;
            };
            for (name, schema) in props {
                path.push(name.clone());
                if let Some(h) = schema.get("x-mcp-header") {
                    match annotation(h, schema) {
                        Ok(header) => out.push(ParamBinding {
                            header,
                            path: path.clone(),
                        }),
                        Err(why) => problems.push(format!("{}: {why}", path.join("."))),
                    }
                }
                reachable(schema, path, out, problems);
                path.pop();
            }
        } else if key != "x-mcp-header" {
            unreachable_annotations(child, problems);
        }
    }
}

/// Any annotation below a non-`properties` keyword (`items`, `oneOf`, `$defs`…) is invalid.
fn unreachable_annotations(node: &serde_json::Value, problems: &mut Vec<String>) {
    match node {
        serde_json::Value::Object(obj) => {
            if obj.contains_key("x-mcp-header") {
                problems.push("x-mcp-header on a property that is not statically reachable".to_owned());
            }
            obj.values().for_each(|v| unreachable_annotations(v, problems));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| unreachable_annotations(v, problems)),
        _ => {}
    }
}

fn annotation(h: &serde_json::Value, schema: &serde_json::Value) -> Result<String, String> {
    let Some(h) = h.as_str() else {
        return Err("x-mcp-header must be a string".into());
    };
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if h.is_empty() || !h.chars().all(tchar) {
        return Err(format!("x-mcp-header {h:?} is not an HTTP token"));
    }
    let primitive = |t: &serde_json::Value| matches!(t.as_str(), Some("string" | "integer" | "boolean"));
    let ok = match schema.get("type") {
        Some(serde_json::Value::Array(ts)) => {
            ts.iter().any(primitive) && ts.iter().all(|t| primitive(t) || t.as_str() == Some("null"))
        }
        Some(t) => primitive(t),
        None => false,
    };
    if !ok {
        return Err(format!(
            "x-mcp-header {h:?} is on a parameter that is not string, integer or boolean"
        ));
    }
    Ok(h.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::{parse, Body};

    const V: &str = "2026-07-28";

    fn run(pairs: &[(&str, &str)], body: &str, rule: ParamRule<'_>) -> Result<(), HeaderMismatch> {
        let Ok(Body::Single(m)) = parse(body.as_bytes()) else {
            panic!("bad test body")
        };
        let params = Params::parse(&m).unwrap();
        let headers = McpHeaders::collect(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))?;
        check(&headers, &m, &params, rule)
    }

    fn call(name: &str, args: &str) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":{name},"arguments":{args},"_meta":{{"io.modelcontextprotocol/protocolVersion":"{V}"}}}}}}"#
        )
    }

    #[test]
    fn matching_modern_headers_pass() {
        let body = call(r#""get_weather""#, r#"{"location":"Seattle"}"#);
        let h = [
            ("MCP-Protocol-Version", V),
            ("mcp-method", "tools/call"),
            ("Mcp-Name", "get_weather"),
        ];
        assert_eq!(run(&h, &body, ParamRule::SameNameArgument), Ok(()));
    }

    #[test]
    fn mcp_name_mismatch_is_minus_32020_with_http_400() {
        let body = call(r#""bar""#, "{}");
        let e = run(
            &[
                ("MCP-Protocol-Version", V),
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", "foo"),
            ],
            &body,
            ParamRule::SameNameArgument,
        )
        .unwrap_err();
        assert_eq!((e.code(), e.http_status()), (-32020, 400));
        assert_eq!(
            e.to_string(),
            "Header mismatch: Mcp-Name header value 'foo' does not match body value 'bar'"
        );
    }

    #[test]
    fn base64_mcp_name_is_decoded_before_comparing() {
        let body = call(r#""Hello, 世界""#, "{}");
        let h = [
            ("MCP-Protocol-Version", V),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "=?base64?SGVsbG8sIOS4lueVjA==?="),
        ];
        assert_eq!(run(&h, &body, ParamRule::SameNameArgument), Ok(()));
        let h = [
            ("MCP-Protocol-Version", V),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "=?base64?SGVsbG8sIOS4lueVjA?="),
        ];
        assert_eq!(
            run(&h, &body, ParamRule::SameNameArgument),
            Ok(()),
            "unpadded base64 decodes the same"
        );
        let h = [
            ("MCP-Protocol-Version", V),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "=?BASE64?SGVsbG8sIOS4lueVjA==?="),
        ];
        assert!(
            run(&h, &body, ParamRule::SameNameArgument).is_err(),
            "markers are case-sensitive"
        );
    }

    #[test]
    fn resources_read_compares_the_uri_and_prompts_get_the_name() {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{{"uri":"file:///a","_meta":{{"io.modelcontextprotocol/protocolVersion":"{V}"}}}}}}"#
        );
        let ok = [
            ("MCP-Protocol-Version", V),
            ("Mcp-Method", "resources/read"),
            ("Mcp-Name", "file:///a"),
        ];
        assert_eq!(run(&ok, &body, ParamRule::SameNameArgument), Ok(()));
        let bad = [
            ("MCP-Protocol-Version", V),
            ("Mcp-Method", "resources/read"),
            ("Mcp-Name", "file:///b"),
        ];
        assert!(run(&bad, &body, ParamRule::SameNameArgument).is_err());
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p"}}"#;
        assert_eq!(run(&[("Mcp-Name", "p")], body, ParamRule::SameNameArgument), Ok(()));
        assert!(run(&[("Mcp-Name", "q")], body, ParamRule::SameNameArgument).is_err());
    }

    #[test]
    fn method_and_version_must_match_the_body() {
        let body = call(r#""x""#, "{}");
        let e = run(
            &[
                ("MCP-Protocol-Version", V),
                ("Mcp-Method", "tools/list"),
                ("Mcp-Name", "x"),
            ],
            &body,
            ParamRule::SameNameArgument,
        );
        assert_eq!(e.unwrap_err().header, "Mcp-Method");
        let e = run(
            &[
                ("MCP-Protocol-Version", "2025-11-25"),
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", "x"),
            ],
            &body,
            ParamRule::SameNameArgument,
        );
        assert_eq!(e.unwrap_err().header, "MCP-Protocol-Version");
        let e = run(
            &[("Mcp-Method", "tools/call"), ("Mcp-Name", "x")],
            &body,
            ParamRule::SameNameArgument,
        );
        assert_eq!(
            e.unwrap_err().header,
            "MCP-Protocol-Version",
            "body version without header"
        );
    }

    #[test]
    fn modern_requests_must_carry_the_required_headers() {
        let body = call(r#""x""#, "{}");
        let e = run(
            &[("MCP-Protocol-Version", V), ("Mcp-Name", "x")],
            &body,
            ParamRule::SameNameArgument,
        )
        .unwrap_err();
        assert_eq!(e.header, "Mcp-Method");
        let e = run(
            &[("MCP-Protocol-Version", V), ("Mcp-Method", "tools/call")],
            &body,
            ParamRule::SameNameArgument,
        )
        .unwrap_err();
        assert_eq!(e.header, "Mcp-Name");
        let legacy = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#;
        assert_eq!(
            run(
                &[("MCP-Protocol-Version", "2025-06-18")],
                legacy,
                ParamRule::SameNameArgument
            ),
            Ok(())
        );
        let e = run(
            &[
                ("MCP-Protocol-Version", V),
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", "x"),
            ],
            legacy,
            ParamRule::SameNameArgument,
        );
        assert!(e.is_err(), "a modern header needs the body's _meta version");
    }

    #[test]
    fn headers_the_body_cannot_back_are_refused() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert_eq!(
            run(&[("Mcp-Name", "x")], body, ParamRule::SameNameArgument)
                .unwrap_err()
                .header,
            "Mcp-Name"
        );
        let body = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
        assert_eq!(
            run(&[("Mcp-Method", "ping")], body, ParamRule::SameNameArgument)
                .unwrap_err()
                .header,
            "Mcp-Method"
        );
    }

    #[test]
    fn repeated_or_malformed_headers_are_refused() {
        let body = call(r#""x""#, "{}");
        assert!(run(
            &[("Mcp-Name", "x"), ("mcp-name", "x")],
            &body,
            ParamRule::SameNameArgument
        )
        .is_err());
        assert!(run(
            &[("Mcp-Param-A", "1"), ("mcp-param-a", "1")],
            &body,
            ParamRule::SameNameArgument
        )
        .is_err());
        let e = run(
            &[
                ("MCP-Protocol-Version", V),
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", "=?base64?!!!?="),
            ],
            &body,
            ParamRule::SameNameArgument,
        );
        assert!(e.unwrap_err().message.contains("base64"));
        let e = run(
            &[
                ("MCP-Protocol-Version", V),
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", "=?base64?/w==?="),
            ],
            &body,
            ParamRule::SameNameArgument,
        );
        assert!(e.unwrap_err().message.contains("UTF-8"));
        let e = run(
            &[
                ("MCP-Protocol-Version", V),
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", "x\u{e9}"),
            ],
            &body,
            ParamRule::SameNameArgument,
        );
        assert!(e.unwrap_err().message.contains("invalid characters"));
    }

    #[test]
    fn same_name_params_compare_strings_numbers_and_booleans() {
        let args = r#"{"region":"us-west1","n":42,"flag":true,"x":null,"o":{}}"#;
        let body = call(r#""t""#, args);
        let base = [
            ("MCP-Protocol-Version", V),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "t"),
        ];
        let with = |extra: (&'static str, &'static str)| {
            let mut h = base.to_vec();
            h.push(extra);
            run(&h, &body, ParamRule::SameNameArgument)
        };
        assert_eq!(with(("Mcp-Param-Region", "us-west1")), Ok(()));
        assert!(with(("Mcp-Param-Region", "eu-west1")).is_err());
        assert_eq!(with(("Mcp-Param-N", "42")), Ok(()));
        assert_eq!(with(("Mcp-Param-N", "42.0")), Ok(()));
        assert!(with(("Mcp-Param-N", "43")).is_err());
        assert!(with(("Mcp-Param-N", "0x2a")).is_err());
        assert_eq!(with(("Mcp-Param-Flag", "true")), Ok(()));
        assert!(with(("Mcp-Param-Flag", "True")).is_err());
        assert!(with(("Mcp-Param-X", "null")).is_err());
        assert!(with(("Mcp-Param-O", "{}")).is_err());
        assert_eq!(
            with(("Mcp-Param-Unknown", "anything")),
            Ok(()),
            "unrecognised headers are forwarded"
        );
    }

    #[test]
    fn bound_params_follow_their_path_and_are_required_when_modern() {
        let bindings = [ParamBinding {
            header: "TenantId".into(),
            path: vec!["ctx".into(), "tenant_id".into()],
        }];
        let body = call(r#""t""#, r#"{"ctx":{"tenant_id":"acme"}}"#);
        let base = [
            ("MCP-Protocol-Version", V),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "t"),
        ];
        let mut h = base.to_vec();
        h.push(("mcp-param-tenantid", "acme"));
        assert_eq!(run(&h, &body, ParamRule::Bindings(&bindings)), Ok(()));
        h.pop();
        h.push(("Mcp-Param-TenantId", "evil"));
        assert!(run(&h, &body, ParamRule::Bindings(&bindings)).is_err());
        let e = run(&base, &body, ParamRule::Bindings(&bindings)).unwrap_err();
        assert_eq!(e.header, "Mcp-Param-TenantId");
        let null_body = call(r#""t""#, r#"{"ctx":{"tenant_id":null}}"#);
        assert_eq!(run(&base, &null_body, ParamRule::Bindings(&bindings)), Ok(()));
        let dup_body = call(r#""t""#, r#"{"ctx":{"tenant_id":"a","tenant_id":"b"}}"#);
        assert!(run(&base, &dup_body, ParamRule::Bindings(&bindings)).is_err());
    }

    #[test]
    fn decode_value_handles_both_forms() {
        assert_eq!(decode_value(b"plain value").unwrap(), "plain value");
        assert_eq!(decode_value(b"=?base64?IHBhZGRlZCA=?=").unwrap(), " padded ");
        assert_eq!(
            decode_value(b"=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=").unwrap(),
            "=?base64?literal?="
        );
        assert_eq!(
            decode_value(b"=?base64?abc").unwrap(),
            "=?base64?abc",
            "no closing marker: plain"
        );
        assert!(decode_value(b"a\r\nb").is_err());
    }

    #[test]
    fn bindings_come_from_statically_reachable_annotations() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"},
                "ctx": {"type": "object", "properties": {"id": {"type": "integer", "x-mcp-header": "Id"}}},
                "q": {"type": "string"}
            }
        });
        let mut b = param_bindings(&schema).unwrap();
        b.sort_by(|x, y| x.header.cmp(&y.header));
        assert_eq!(
            b[0],
            ParamBinding {
                header: "Id".into(),
                path: vec!["ctx".into(), "id".into()]
            }
        );
        assert_eq!(
            b[1],
            ParamBinding {
                header: "Region".into(),
                path: vec!["region".into()]
            }
        );
        for bad in [
            serde_json::json!({"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}),
            serde_json::json!({"properties": {"a": {"type": "string", "x-mcp-header": "A B"}}}),
            serde_json::json!({"properties": {"a": {"type": "string", "x-mcp-header": "A"}, "b": {"type": "string", "x-mcp-header": "a"}}}),
            serde_json::json!({"properties": {"a": {"type": "array", "items": {"type": "string", "x-mcp-header": "A"}}}}),
            serde_json::json!({"oneOf": [{"properties": {"a": {"type": "string", "x-mcp-header": "A"}}}]}),
        ] {
            assert!(param_bindings(&bad).is_err(), "{bad}");
        }
    }
}
