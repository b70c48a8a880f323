//! `mcp-ratelimit`: the fleet-wide half of the policy's `limits` (docs/limits.md).
//!
//! Envoy's rate-limit filter, placed after the MCP module, sends one descriptor per
//! `tools/call` that a `scope: global` limit covers: `mcp` = the module's `rl` metadata
//! (`limit_id=counter_key,…`), `id` = the JSON-RPC id, and the call's cost as `hits_addend`.
//! The module has already matched principal, tenant, server and tool against the policy; this
//! service only counts. Every limit named is checked and charged in one Redis script (atomic:
//! all or none), in fixed windows taken from Redis's clock, so every replica of the service and
//! every Envoy share exact counts. Limits come from the same policy file the control plane
//! pushes (re-read when it changes).
//!
//! Failure: Redis down or slow, an unknown limit id, a malformed descriptor → a gRPC error, and
//! Envoy's `failure_mode_deny` decides (closed: `status_on_error`; open: the call passes).

mod redis;

use anyhow::{bail, Context, Result};
use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::{
    RateLimitService, RateLimitServiceServer,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{rate_limit_response, RateLimitRequest, RateLimitResponse};
use mcp_policy_core::limits::{Kind, Limited, Limits, Scope};
use mcp_policy_core::policy::Policy;
use mcp_policy_core::refusal::{Refusal, Why};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tonic::{Request, Response, Status};

/// Checks every named counter, then charges all of them or none. KEYS: counter bases; ARGV per
/// key: max, units, window seconds. Returns {0} or {index (1-based), count, seconds to reset}.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1])
local keys = {}
for i = 1, #KEYS do
  local max = tonumber(ARGV[3*i-2])
  local units = tonumber(ARGV[3*i-1])
  local window = tonumber(ARGV[3*i])
  local start = now - (now % window)
  keys[i] = KEYS[i] .. ':' .. start
  local cur = tonumber(redis.call('GET', keys[i]) or '0')
  if cur + units > max then
    return {i, cur, start + window - now}
  end
end
for i = 1, #KEYS do
  local units = tonumber(ARGV[3*i-1])
  local v = redis.call('INCRBY', keys[i], units)
  if v == units then redis.call('EXPIRE', keys[i], tonumber(ARGV[3*i]) + 60) end
end
return {0}
"#;

struct Service {
    limits: Arc<RwLock<Arc<Policy>>>,
    redis: redis::Pool,
    domain: String,
}

/// One global limit named in a descriptor.
#[derive(Debug, PartialEq)]
struct Named<'a> {
    id: &'a str,
    key: &'a str,
}

/// `id=key,id=key` (the module's `rl` metadata). Keys are 16 hex digits.
fn parse_tokens(v: &str) -> Result<Vec<Named<'_>>> {
    let mut out = Vec::new();
    for t in v.split(',') {
        let Some((id, key)) = t.split_once('=') else {
            bail!("descriptor token {t:?} is not id=key");
        };
        if id.is_empty() || key.len() != 16 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("descriptor token {t:?} is not id=<16 hex digits>");
        }
        out.push(Named { id, key });
    }
    Ok(out)
}

/// The Redis script's arguments for these limits, or why not.
fn plan(limits: &Limits, named: &[Named<'_>], cost: u64) -> Result<(Vec<String>, Vec<String>, Vec<Kind>)> {
    let (mut keys, mut argv, mut kinds) = (Vec::new(), Vec::new(), Vec::new());
    for n in named {
        let Some(rule) = limits.rule(n.id) else {
            bail!(
                "unknown limit {:?}: the Envoy and this service run different policies",
                n.id
            );
        };
        let (Scope::Global, Some(window)) = (rule.scope, rule.kind.window()) else {
            bail!("limit {:?} is not a global window limit", n.id);
        };
        keys.push(format!("mcp:{}:{}", n.id, n.key));
        argv.push(rule.kind.max().to_string());
        argv.push(rule.kind.units(cost).to_string());
        argv.push(window.seconds().to_string());
        kinds.push(rule.kind);
    }
    Ok((keys, argv, kinds))
}

fn header(k: &str, v: &str) -> HeaderValue {
    HeaderValue {
        key: k.into(),
        value: v.into(),
        ..Default::default()
    }
}

impl Service {
    async fn decide(&self, req: RateLimitRequest) -> Result<RateLimitResponse> {
        if !req.domain.is_empty() && req.domain != self.domain {
            bail!("domain {:?}, this service serves {:?}", req.domain, self.domain);
        }
        let policy = self
            .limits
            .read()
            .map(|p| p.clone())
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        // Envoy's request-level hits_addend (0 means 1), unless the descriptor carries its own
        // (the filter's `rate_limits[].hits_addend` lands there).
        let request_cost = u64::from(req.hits_addend.max(1));
        let mut ok = RateLimitResponse {
            overall_code: rate_limit_response::Code::Ok as i32,
            ..Default::default()
        };
        for d in &req.descriptors {
            let Some(mcp) = d.entries.iter().find(|e| e.key == "mcp") else {
                continue;
            };
            let id = d.entries.iter().find(|e| e.key == "id").map(|e| e.value.as_str());
            if d.is_negative_hits {
                bail!("negative hits (refunds) are not supported");
            }
            let cost = d.hits_addend.as_ref().map_or(request_cost, |h| h.value);
            let named = parse_tokens(&mcp.value)?;
            let (keys, argv, kinds) = plan(policy.limits(), &named, cost)?;
            let n = keys.len().to_string();
            let mut args: Vec<&[u8]> = vec![b"EVAL", SCRIPT.as_bytes(), n.as_bytes()];
            args.extend(keys.iter().map(|k| k.as_bytes()));
            args.extend(argv.iter().map(|a| a.as_bytes()));
            let reply = self.redis.call(&args).await?;
            let redis::Reply::Array(items) = reply else {
                bail!("unexpected script reply {reply:?}");
            };
            let num = |i: usize| match items.get(i) {
                Some(redis::Reply::Int(v)) => Ok(*v),
                other => Err(anyhow::anyhow!("unexpected script reply item {other:?}")),
            };
            let which = num(0)?;
            if which == 0 {
                continue;
            }
            let i = (which - 1) as usize;
            let retry_after = num(2)?.max(1) as u64;
            let limited = Limited {
                id: named.get(i).map_or("", |n| n.id),
                kind: kinds.get(i).copied().unwrap_or(Kind::Concurrent { max: 0 }),
                retry_after,
                table_full: false,
            };
            let id = id.filter(|v| serde_json::from_str::<serde_json::Value>(v).is_ok());
            let body = Refusal::new(Why::RateLimited, limited.message())
                .id(id)
                .data(limited.data())
                .body();
            ok.overall_code = rate_limit_response::Code::OverLimit as i32;
            ok.raw_body = body;
            ok.response_headers_to_add = vec![
                header("content-type", "application/json"),
                header("retry-after", &retry_after.to_string()),
            ];
            return Ok(ok);
        }
        Ok(ok)
    }
}

#[tonic::async_trait]
impl RateLimitService for Service {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        match self.decide(request.into_inner()).await {
            Ok(r) => Ok(Response::new(r)),
            Err(e) => {
                eprintln!("mcp-ratelimit: {e:#}");
                Err(Status::unavailable(format!("{e:#}")))
            }
        }
    }
}

/// A policy document, or a filter config whose `policy` is one (the control plane's
/// `filter.json`).
fn load(path: &PathBuf) -> Result<Policy> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))?;
    let policy = doc.get("policy").unwrap_or(&doc);
    Policy::from_json(policy.to_string().as_bytes()).map_err(|es| {
        let all: Vec<String> = es.iter().map(|e| format!("{}: {}", e.path, e.message)).collect();
        anyhow::anyhow!("{}: {}", path.display(), all.join("; "))
    })
}

struct Args {
    listen: String,
    redis: String,
    policy: PathBuf,
    domain: String,
    redis_timeout_ms: u64,
}

fn args() -> Result<Args> {
    let mut a = Args {
        listen: "127.0.0.1:8081".into(),
        redis: "127.0.0.1:6379".into(),
        policy: PathBuf::new(),
        domain: "mcp".into(),
        redis_timeout_ms: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().with_context(|| format!("{k} needs a value"));
        match k.as_str() {
            "--listen" => a.listen = v()?,
            "--redis" => a.redis = v()?,
            "--policy" => a.policy = v()?.into(),
            "--domain" => a.domain = v()?,
            "--redis-timeout-ms" => a.redis_timeout_ms = v()?.parse().context("--redis-timeout-ms")?,
            "-h" | "--help" => {
                println!("mcp-ratelimit --policy FILE [--listen ADDR] [--redis HOST:PORT] [--domain mcp] [--redis-timeout-ms 200]");
                std::process::exit(0);
            }
            _ => bail!("unknown argument {k:?} (see --help)"),
        }
    }
    if a.policy.as_os_str().is_empty() {
        bail!("--policy FILE is required (a policy document, or a filter config with `policy`)");
    }
    Ok(a)
}

fn mtime(p: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    let policy = Arc::new(RwLock::new(Arc::new(load(&a.policy)?)));
    let watched = policy.clone();
    let path = a.policy.clone();
    tokio::spawn(async move {
        let mut seen = mtime(&path);
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = mtime(&path);
            if now != seen {
                seen = now;
                match load(&path) {
                    Ok(p) => {
                        eprintln!("mcp-ratelimit: reloaded {} (version {})", path.display(), p.version());
                        if let Ok(mut w) = watched.write() {
                            *w = Arc::new(p);
                        }
                    }
                    Err(e) => eprintln!("mcp-ratelimit: kept the previous policy: {e:#}"),
                }
            }
        }
    });
    let svc = Service {
        limits: policy,
        redis: redis::Pool::new(&a.redis, 16, Duration::from_millis(a.redis_timeout_ms)),
        domain: a.domain,
    };
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    eprintln!("mcp-ratelimit: listening on {}", listener.local_addr()?);
    tonic::transport::Server::builder()
        .add_service(RateLimitServiceServer::new(svc))
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_and_bad_ones_are_refused() {
        assert_eq!(
            parse_tokens("a=00000000000000ff,b.c=0123456789abcdef").unwrap(),
            vec![
                Named {
                    id: "a",
                    key: "00000000000000ff"
                },
                Named {
                    id: "b.c",
                    key: "0123456789abcdef"
                }
            ]
        );
        for bad in ["", "a", "a=1", "=0123456789abcdef", "a=0123456789abcdeg"] {
            assert!(parse_tokens(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn plan_uses_cost_for_budgets_and_one_for_calls_and_refuses_local_or_unknown_ids() {
        let p = Policy::from_json(
            serde_json::json!({"rules": [], "limits": {"rules": [
                {"id": "b", "scope": "global", "budget": {"max": 100, "per": "hour"}},
                {"id": "c", "scope": "global", "calls": {"max": 5, "per": "second"}},
                {"id": "l", "calls": {"max": 5, "per": "second"}}
            ]}})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let named = parse_tokens("b=0000000000000001,c=0000000000000002").unwrap();
        let (keys, argv, _) = plan(p.limits(), &named, 7).unwrap();
        assert_eq!(keys, ["mcp:b:0000000000000001", "mcp:c:0000000000000002"]);
        assert_eq!(argv, ["100", "7", "3600", "5", "1", "1"]);
        assert!(plan(p.limits(), &parse_tokens("l=0000000000000001").unwrap(), 1).is_err());
        assert!(plan(p.limits(), &parse_tokens("zz=0000000000000001").unwrap(), 1).is_err());
    }
}
