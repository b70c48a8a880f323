//! `mcp-policy`: the policy workbench on the core crate, the code the Envoy module runs.
//!
//! This file reads files and flags and prints; every check, decision, explanation, diff and
//! replay is `mcp_policy_core::workbench`. Exit status: 0 fine, 1 a finding (a refused
//! document, a failing test, a difference, a decision that would change), 2 a usage or input
//! error.

use mcp_policy_core::config::FilterConfig;
use mcp_policy_core::policy::{self, Policy, PolicySpec};
use mcp_policy_core::principal::Principal;
use mcp_policy_core::workbench::{check, diff, explain, replay, suite, who};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: mcp-policy COMMAND ...

  check FILE...                      every problem of filter configs or policies, with positions
                                     and hints (--kind filter|policy to override detection)
  explain --policy FILE WHO WHAT     the decision, the deciding rule, why each rule did or did not apply
  test TESTS.yaml... [--policy FILE] run policy unit tests; a failure prints a diff, exit 1
  diff OLD NEW [--names a,b,...]     per principal class: tools/resources/prompts gained and lost
  pin record LIST.json... [--out F]  pins (RFC 8785 + SHA-256) of every item in captured list answers
                                     (--out: written atomically, e.g. XDS_DIR/pins/SERVER.json)
  pin diff PINFILE LIST.json...      what a server serves now vs a pin file: changed paths, added, removed
  replay --log ACCESS_LOG --policy CANDIDATE [--principals FILE]
                                     re-decide recorded access-log decisions; report what would change
  usage --log ACCESS_LOG [--period hour|day|month] [--format json|csv]
                                     tools/call usage per period, principal, tenant, server and tool

  FILE is a filter config (the module's JSON) or a bare policy ({\"servers\", \"rules\", \"mode\"}).
  WHO:  --token JWT | --token-file F (verified as the module verifies it; needs identity.providers)
        --claims FILE (a token's claims, mapped by the config's claim mapping; not verified)
        --subject S [--group G]... [--role R]... [--scope S]... [--tenant T] [--issuer I] | --anonymous
  WHAT: [--server NAME] (--tool NAME [--arguments JSON] | --resource URI | --prompt NAME | --method M)

  exit status: 0 fine, 1 a finding (refused, failed, differs, would change), 2 usage or input error
  `mcp-policy COMMAND --help` says more; docs/policy-workbench.md has a worked example.";

const CHECK_HELP: &str = "\
usage: mcp-policy check [--kind filter|policy] FILE...

Checks each file exactly as the module loads it (the same function), and reports every problem
at once: FILE:LINE:COL: error: PATH: MESSAGE, with a hint where one helps (YAML, a byte-order
mark, comments, trailing commas, misspelt field, value, method or server names). Warnings are
rules no request can reach. Exit 1 if any file is refused.";

const EXPLAIN_HELP: &str = "\
usage: mcp-policy explain --policy FILE WHO WHAT

  WHO:  --token JWT | --token-file F     a bearer token, verified as the module would (now)
        --claims FILE                    a JSON object of claims, mapped by the config's providers
        --subject S [--group G]... [--role R]... [--scope S]... [--tenant T] [--issuer I]
        --anonymous
  WHAT: [--server NAME]                  default: the policy's only server, or the config's `server`
        --tool NAME [--arguments JSON] | --resource URI | --prompt NAME | --method M

Prints the decision (as the module would log it), the rule that decided, and for every rule
whether it is in force on the server, matches the target, matches the caller (matcher by
matcher, field by field) and, for tools, whether its argument constraints hold.";

const TEST_HELP: &str = "\
usage: mcp-policy test [--policy FILE] TESTS.yaml...

A test file (YAML or JSON):
  policy: filter.json              # relative to the test file (or --policy)
  principals:
    developer: {subject: alice, groups: [developers]}
  tests:
    - name: developers may delete branches
      who: developer               # or inline: {subject: bob, groups: [contractors]}
      server: demo                 # default: the policy's only server
      tool: delete_branch          # or resource: URI, prompt: NAME, method: NAME
      arguments: {repo: demo}
      expect: allow                # allow | deny | audit_deny
      rule: devs-write             # optional: the deciding rule (\"\" for none)
    - name: contractors see two tools
      who: {subject: bob, groups: [contractors]}
      list: tools                  # tools | resources | resource_templates | prompts
      offered: [echo, add, delete_branch]
      visible: [echo, add]
Exit 1 if any test fails; each failure prints expected (-) and actual (+).";

const DIFF_HELP: &str = "\
usage: mcp-policy diff OLD NEW [--names a,b,...]

For each principal class the two policies distinguish (one caller per principal matcher, any
authenticated caller, the anonymous caller) and each server: the tools, resources and prompts
gained (+) and lost (-), compared as if every server enforced; mode changes are listed first.
--names adds target names to compare (e.g. an upstream's real tool names). Exit 1 if they differ.";

const REPLAY_HELP: &str = "\
usage: mcp-policy replay --log ACCESS_LOG --policy CANDIDATE [--principals FILE]

Re-decides every policy decision recorded in the module's JSON access log under CANDIDATE and
reports each one that would change, grouped by caller, server and request. The log carries the
caller's subject, tenant and groups; a decision that depends on roles, scopes, issuer, other
claims or tool arguments is reported as undetermined unless --principals (YAML/JSON: subject ->
{roles, scopes, issuer, claims, ...}) supplies them. Exit 1 if anything would change or is
undetermined.";

const USAGE_HELP: &str = "\
usage: mcp-policy usage --log ACCESS_LOG [--period hour|day|month] [--format json|csv]

Chargeback from the module's JSON access log: for each period (default day, UTC), principal,
tenant, server and tool, the tools/call lines: calls, admitted, denied, limited, would_limit,
errors (admitted calls answered >= 400), request and response bytes, upstream milliseconds,
budget units charged, and tokens (estimated: response bytes / 4). docs/limits.md.";

/// `print!` that ignores a closed pipe (`mcp-policy explain ... | head`), instead of panicking.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($t)*);
    }};
}

/// A usage or input problem: exit 2.
struct Fail(String);

impl<T: std::fmt::Display> From<T> for Fail {
    fn from(e: T) -> Fail {
        Fail(e.to_string())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(Fail(e)) => {
            eprintln!("mcp-policy: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, Fail> {
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    let help = rest.iter().any(|a| a == "-h" || a == "--help");
    let text = match cmd.as_str() {
        "-h" | "--help" | "help" => Some(USAGE),
        "check" if help => Some(CHECK_HELP),
        "explain" if help => Some(EXPLAIN_HELP),
        "test" if help => Some(TEST_HELP),
        "diff" if help => Some(DIFF_HELP),
        "replay" if help => Some(REPLAY_HELP),
        "usage" if help => Some(USAGE_HELP),
        _ => None,
    };
    if let Some(t) = text {
        say!("{t}\n");
        return Ok(ExitCode::SUCCESS);
    }
    let a = Args::parse(cmd, rest)?;
    match cmd.as_str() {
        "check" => cmd_check(&a),
        "explain" => cmd_explain(&a),
        "test" => cmd_test(&a),
        "diff" => cmd_diff(&a),
        "replay" => cmd_replay(&a),
        "usage" => cmd_usage(&a),
        "pin" => cmd_pin(&a),
        other => Err(Fail(format!("unknown command {other:?}\n\n{USAGE}"))),
    }
}

/// Flags and positionals. Anything starting with `-` must be a known flag: it is never read
/// as a file name.
#[derive(Default)]
struct Args {
    files: Vec<PathBuf>,
    flags: BTreeMap<&'static str, Vec<String>>,
}

impl Args {
    fn parse(cmd: &str, rest: &[String]) -> Result<Args, Fail> {
        let known: &[&'static str] = match cmd {
            "check" => &["--kind"],
            "explain" => &[
                "--policy",
                "--token",
                "--token-file",
                "--claims",
                "--subject",
                "--group",
                "--role",
                "--scope",
                "--tenant",
                "--issuer",
                "--anonymous",
                "--server",
                "--tool",
                "--resource",
                "--prompt",
                "--method",
                "--arguments",
            ],
            "test" => &["--policy"],
            "diff" => &["--names"],
            "replay" => &["--log", "--policy", "--principals"],
            "usage" => &["--log", "--period", "--format"],
            "pin" => &["--out"],
            _ => &[],
        };
        let mut a = Args::default();
        let mut it = rest.iter();
        while let Some(arg) = it.next() {
            if arg.starts_with('-') && arg.len() > 1 {
                let (name, inline) = match arg.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_owned())),
                    None => (arg.as_str(), None),
                };
                let Some(&flag) = known.iter().find(|k| **k == name) else {
                    let names: Vec<String> = known.iter().chain(&["--help"]).map(|s| s.to_string()).collect();
                    let hint = check::closest(name, &names)
                        .map(|b| format!(" (did you mean {b}?)"))
                        .unwrap_or_default();
                    return Err(Fail(format!(
                        "{cmd}: unknown flag {name:?}{hint}; see `mcp-policy {cmd} --help`"
                    )));
                };
                let value = if flag == "--anonymous" {
                    String::new()
                } else {
                    inline
                        .or_else(|| it.next().cloned())
                        .ok_or_else(|| Fail(format!("{flag} needs a value")))?
                };
                a.flags.entry(flag).or_default().push(value);
            } else {
                a.files.push(PathBuf::from(arg));
            }
        }
        Ok(a)
    }

    fn one(&self, flag: &str) -> Result<Option<&str>, Fail> {
        match self.flags.get(flag).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([v]) => Ok(Some(v)),
            Some(_) => Err(Fail(format!("{flag} given more than once"))),
        }
    }

    fn all(&self, flag: &str) -> Vec<String> {
        self.flags.get(flag).cloned().unwrap_or_default()
    }

    fn has(&self, flag: &str) -> bool {
        self.flags.contains_key(flag)
    }

    fn need(&self, flag: &str, cmd: &str) -> Result<&str, Fail> {
        self.one(flag)?
            .ok_or_else(|| Fail(format!("{cmd}: {flag} is required; see `mcp-policy {cmd} --help`")))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Fail> {
    std::fs::read(path).map_err(|e| Fail(format!("{}: cannot read: {e}", path.display())))
}

fn cmd_check(a: &Args) -> Result<ExitCode, Fail> {
    if a.files.is_empty() {
        return Err(Fail(
            "check: give one or more files; see `mcp-policy check --help`".into(),
        ));
    }
    let forced = match a.one("--kind")? {
        None => None,
        Some("filter") => Some(check::DocKind::FilterConfig),
        Some("policy") => Some(check::DocKind::Policy),
        Some(k) => return Err(Fail(format!("--kind {k:?}: expected filter or policy"))),
    };
    let mut ok = true;
    for f in &a.files {
        let bytes = read(f)?;
        let report = check::check(&bytes, forced.unwrap_or_else(|| check::detect(&bytes)));
        ok &= report.ok();
        say!("{}", check::render(&f.display().to_string(), &report));
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// A policy to decide with: its spec, compiled, and the filter config around it (if any).
struct Loaded {
    spec: PolicySpec,
    policy: Policy,
    config: Option<FilterConfig>,
}

fn load_policy(path: &Path) -> Result<Loaded, Fail> {
    let bytes = read(path)?;
    let kind = check::detect(&bytes);
    let report = check::check(&bytes, kind);
    if !report.ok() {
        return Err(Fail(format!(
            "{} is refused by the module's own check:\n{}",
            path.display(),
            check::render(&path.display().to_string(), &report)
        )));
    }
    let (policy_text, config) = match kind {
        check::DocKind::Policy => (bytes.clone(), None),
        check::DocKind::FilterConfig => {
            let config = FilterConfig::from_json(&bytes)?;
            let v: serde_json::Value = serde_json::from_slice(&bytes)?;
            let Some(p) = v.get("policy") else {
                return Err(Fail(format!(
                    "{}: this filter config has no policy section",
                    path.display()
                )));
            };
            (p.to_string().into_bytes(), Some(config))
        }
    };
    let spec = policy::parse_spec(&policy_text).map_err(|e| Fail(format!("{}: {}", path.display(), e[0])))?;
    let policy = Policy::compile(spec.clone()).map_err(|e| Fail(format!("{}: {}", path.display(), e[0])))?;
    Ok(Loaded { spec, policy, config })
}

fn cmd_explain(a: &Args) -> Result<ExitCode, Fail> {
    if !a.files.is_empty() {
        return Err(Fail(format!(
            "explain: unexpected argument {:?}; see `mcp-policy explain --help`",
            a.files[0]
        )));
    }
    let l = load_policy(Path::new(a.need("--policy", "explain")?))?;
    let principal = principal_from_flags(a, &l)?;
    let server = match a.one("--server")? {
        Some(s) => s.to_owned(),
        None => default_server(&l).ok_or_else(|| {
            Fail(format!(
                "explain: --server is required (the policy declares {})",
                l.spec.servers.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?,
    };
    let targets = [
        ("--tool", "tools/call"),
        ("--resource", "resources/read"),
        ("--prompt", "prompts/get"),
    ];
    let given: Vec<_> = targets.iter().filter(|(f, _)| a.has(f)).collect();
    let (method, target) = match (given.as_slice(), a.one("--method")?) {
        ([(flag, m)], None) => (m.to_string(), a.one(flag)?.map(str::to_owned)),
        ([], Some(m)) => (m.to_owned(), None),
        _ => {
            return Err(Fail(
                "explain: give exactly one of --tool, --resource, --prompt, --method".into(),
            ))
        }
    };
    let arguments = match a.one("--arguments")? {
        None => None,
        Some(text) => {
            Some(RawValue::from_string(text.to_owned()).map_err(|e| Fail(format!("--arguments is not JSON: {e}")))?)
        }
    };
    let ask = explain::Ask {
        server,
        method,
        target,
        arguments,
    };
    say!("{}", explain::explain(&l.spec, &l.policy, &principal, &ask));
    Ok(ExitCode::SUCCESS)
}

fn default_server(l: &Loaded) -> Option<String> {
    let declared: Vec<&String> = l.spec.servers.keys().collect();
    match (declared.as_slice(), &l.config) {
        ([one], _) => Some((*one).clone()),
        ([], Some(c)) => Some(c.server.clone()),
        ([], None) => Some("default".into()),
        _ => None,
    }
}

fn principal_from_flags(a: &Args, l: &Loaded) -> Result<Principal, Fail> {
    let token = match (a.one("--token")?, a.one("--token-file")?) {
        (Some(t), None) => Some(t.to_owned()),
        (None, Some(f)) => Some(String::from_utf8_lossy(&read(Path::new(f))?).trim().to_owned()),
        (None, None) => None,
        _ => return Err(Fail("give --token or --token-file, not both".into())),
    };
    let claims = a.one("--claims")?;
    let written = [
        "--subject",
        "--group",
        "--role",
        "--scope",
        "--tenant",
        "--issuer",
        "--anonymous",
    ]
    .iter()
    .any(|f| a.has(f));
    match (token, claims, written) {
        (Some(t), None, false) => {
            let Some(config) = &l.config else {
                return Err(Fail(
                    "--token needs a filter config (its identity section verifies the token), not a bare policy".into(),
                ));
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            Ok(who::from_token(config, &t, now)?)
        }
        (None, Some(f), false) => Ok(who::from_claims(l.config.as_ref(), &read(Path::new(f))?)?),
        (None, None, true) => {
            let spec = who::WhoSpec {
                anonymous: a.has("--anonymous"),
                subject: a.one("--subject")?.map(str::to_owned),
                issuer: a.one("--issuer")?.map(str::to_owned),
                source: None,
                tenant: a.one("--tenant")?.map(str::to_owned),
                groups: a.all("--group"),
                roles: a.all("--role"),
                scopes: a.all("--scope"),
                claims: Default::default(),
            };
            Ok(spec.principal()?)
        }
        (None, None, false) => Err(Fail(
            "explain: say who is asking: --token, --token-file, --claims, --subject ... or --anonymous".into(),
        )),
        _ => Err(Fail(
            "explain: give one way of saying who is asking (token, claims or flags)".into(),
        )),
    }
}

/// YAML or JSON (JSON is YAML), by the same serde model.
fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Fail> {
    let bytes = read(path)?;
    serde_yaml::from_slice(&bytes).map_err(|e| Fail(format!("{}: {e}", path.display())))
}

fn cmd_test(a: &Args) -> Result<ExitCode, Fail> {
    if a.files.is_empty() {
        return Err(Fail(
            "test: give one or more test files; see `mcp-policy test --help`".into(),
        ));
    }
    let mut all_ok = true;
    for f in &a.files {
        let s: suite::Suite = read_yaml(f)?;
        let policy_path = match (a.one("--policy")?, &s.policy) {
            (Some(p), _) => PathBuf::from(p),
            (None, Some(p)) => f.parent().unwrap_or(Path::new(".")).join(p),
            (None, None) => {
                return Err(Fail(format!(
                    "{}: no `policy:` in the file and no --policy",
                    f.display()
                )));
            }
        };
        let l = load_policy(&policy_path)?;
        let declared: Vec<String> = match l.spec.servers.keys().cloned().collect::<Vec<_>>() {
            v if !v.is_empty() => v,
            _ => default_server(&l).into_iter().collect(),
        };
        let outcomes = suite::run(&s, &l.policy, &declared);
        say!(
            "{} ({}, policy version {}):\n",
            f.display(),
            policy_path.display(),
            l.policy.version()
        );
        say!("{}", suite::render(&outcomes));
        all_ok &= outcomes.iter().all(|o| o.failure.is_none());
    }
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn cmd_diff(a: &Args) -> Result<ExitCode, Fail> {
    let [old, new] = a.files.as_slice() else {
        return Err(Fail(
            "diff: give exactly two policies, OLD and NEW; see `mcp-policy diff --help`".into(),
        ));
    };
    let (lo, ln) = (load_policy(old)?, load_policy(new)?);
    let names: Vec<String> = a
        .all("--names")
        .iter()
        .flat_map(|n| n.split(','))
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    let (text, changed) = diff::diff(&lo.spec, &ln.spec, &names)?;
    say!("--- {} (policy version {})\n", old.display(), lo.policy.version());
    say!("+++ {} (policy version {})\n", new.display(), ln.policy.version());
    say!("{text}");
    Ok(if changed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn cmd_replay(a: &Args) -> Result<ExitCode, Fail> {
    if !a.files.is_empty() {
        return Err(Fail(format!(
            "replay: unexpected argument {:?}; see `mcp-policy replay --help`",
            a.files[0]
        )));
    }
    let log = PathBuf::from(a.need("--log", "replay")?);
    let candidate = PathBuf::from(a.need("--policy", "replay")?);
    let l = load_policy(&candidate)?;
    let known: BTreeMap<String, who::WhoSpec> = match a.one("--principals")? {
        Some(p) => read_yaml(Path::new(p))?,
        None => BTreeMap::new(),
    };
    let text = String::from_utf8(read(&log)?).map_err(|e| Fail(format!("{}: not UTF-8: {e}", log.display())))?;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        lines.push(replay::parse_line(i + 1, line).map_err(|e| Fail(format!("{}: {e}", log.display())))?);
    }
    let report = replay::replay(&lines, &l.spec, &l.policy, &known)?;
    say!(
        "{}",
        replay::render(
            &log.display().to_string(),
            &candidate.display().to_string(),
            l.policy.version(),
            &report
        )
    );
    Ok(if report.differs() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn cmd_usage(a: &Args) -> Result<ExitCode, Fail> {
    use mcp_policy_core::limits::usage;
    if !a.files.is_empty() {
        return Err(Fail(format!(
            "usage: unexpected argument {:?}; see `mcp-policy usage --help`",
            a.files[0]
        )));
    }
    let log = PathBuf::from(a.need("--log", "usage")?);
    let period = match a.one("--period")? {
        None => usage::Period::Day,
        Some(p) => usage::Period::parse(p).ok_or_else(|| Fail(format!("--period {p:?}: hour, day or month")))?,
    };
    let text = String::from_utf8(read(&log)?).map_err(|e| Fail(format!("{}: not UTF-8: {e}", log.display())))?;
    let r = usage::report(&text, period);
    match a.one("--format")? {
        None | Some("json") => say!("{}", usage::render_json(&r)),
        Some("csv") => say!("{}", usage::render_csv(&r)),
        Some(f) => return Err(Fail(format!("--format {f:?}: json or csv"))),
    }
    for line in &r.skipped {
        eprintln!(
            "{}:{line}: skipped: not a JSON access-log line with a time",
            log.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The kinds a captured list may hold, with their pin-file keys.
const PIN_KINDS: [(policy::Kind, &str); 4] = [
    (policy::Kind::Tool, "tools"),
    (policy::Kind::Prompt, "prompts"),
    (policy::Kind::Resource, "resources"),
    (policy::Kind::ResourceTemplate, "resource_templates"),
];

/// Every item of the captured answers (a JSON-RPC answer, a bare result, or an object holding
/// several lists), by pin-file kind key → name → (pin, definition).
type Pinned = BTreeMap<&'static str, BTreeMap<String, (String, serde_json::Value)>>;

fn pin_files(files: &[PathBuf]) -> Result<Pinned, Fail> {
    use mcp_policy_core::integrity;
    let mut out: Pinned = BTreeMap::new();
    for f in files {
        let v: serde_json::Value =
            serde_json::from_slice(&read(f)?).map_err(|e| Fail(format!("{}: not JSON: {e}", f.display())))?;
        for (kind, key) in PIN_KINDS {
            for (name, p) in integrity::pin_list(&v, kind) {
                out.entry(key).or_default().insert(name, p);
            }
        }
    }
    Ok(out)
}

/// Write `bytes` to `path` so a reader (xds-server watching its directory) sees the old file or
/// the new one, never a part: a temporary file in the same directory, synced, then renamed.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Fail> {
    use std::io::Write as _;
    let name = path
        .file_name()
        .ok_or_else(|| Fail(format!("--out {}: not a file name", path.display())))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // A dot file: xds-server ignores it while it is being written.
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok::<(), std::io::Error>(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Fail(format!("--out {}: {e}", path.display()))
    })
}

fn cmd_pin(a: &Args) -> Result<ExitCode, Fail> {
    let Some((sub, files)) = a.files.split_first() else {
        return Err(Fail("pin: record LIST.json... | diff PINFILE LIST.json...".into()));
    };
    match sub.to_str() {
        Some("record") => {
            if files.is_empty() {
                return Err(Fail("pin record: give one or more captured list answers".into()));
            }
            let pinned = pin_files(files)?;
            let mut pins = serde_json::Map::new();
            let mut defs = serde_json::Map::new();
            for (key, items) in &pinned {
                pins.insert(
                    (*key).into(),
                    serde_json::Value::Object(
                        items
                            .iter()
                            .map(|(n, (p, _))| (n.clone(), serde_json::Value::String(p.clone())))
                            .collect(),
                    ),
                );
                defs.insert(
                    (*key).into(),
                    serde_json::Value::Object(items.iter().map(|(n, (_, d))| (n.clone(), d.clone())).collect()),
                );
            }
            let doc = serde_json::json!({"pins": pins, "definitions": defs});
            let text = serde_json::to_string_pretty(&doc)? + "\n";
            match a.one("--out")? {
                None => say!("{text}"),
                Some(out) => write_atomically(Path::new(out), text.as_bytes())?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Some("diff") => {
            if a.has("--out") {
                return Err(Fail("pin diff: --out is for pin record".into()));
            }
            let Some((pinfile, lists)) = files.split_first() else {
                return Err(Fail(
                    "pin diff: give a pin file and one or more captured list answers".into(),
                ));
            };
            let doc: serde_json::Value = serde_json::from_slice(&read(pinfile)?)
                .map_err(|e| Fail(format!("{}: not JSON: {e}", pinfile.display())))?;
            let now = pin_files(lists)?;
            let mut differences = 0usize;
            for (_, key) in PIN_KINDS {
                // `pin record`'s file, or a bare pins object (as xds-server's pins/ accepts).
                let pins = doc.get("pins").unwrap_or(&doc);
                let pinned = pins[key].as_object().cloned().unwrap_or_default();
                let served = now.get(key).cloned().unwrap_or_default();
                for (name, (pin, def)) in &served {
                    match pinned.get(name).and_then(|p| p.as_str()) {
                        Some(p) if p == pin => {}
                        Some(p) => {
                            differences += 1;
                            say!("changed {key} {name:?}: {p} -> {pin}\n");
                            match doc["definitions"][key].get(name) {
                                Some(old) => {
                                    for line in mcp_policy_core::integrity::diff(old, def) {
                                        say!("    {line}\n");
                                    }
                                }
                                None => say!("    (the pin file has no definition to compare with)\n"),
                            }
                        }
                        None => {
                            differences += 1;
                            say!("added {key} {name:?}: {pin}\n");
                        }
                    }
                }
                for name in pinned.keys().filter(|n| !served.contains_key(*n)) {
                    differences += 1;
                    say!("removed {key} {name:?}\n");
                }
            }
            if differences == 0 {
                say!("no drift: every item matches its pin\n");
                return Ok(ExitCode::SUCCESS);
            }
            Ok(ExitCode::from(1))
        }
        _ => Err(Fail("pin: record LIST.json... | diff PINFILE LIST.json...".into())),
    }
}
