//! The scanner: every string of a definition (values and object keys, at any depth) is checked
//! against the rule table; each finding carries its rule and JSON path.
//!
//! Deterministic and model-free. One pass per string: characters first (tag block, invisible,
//! bidi, controls, whitespace runs), then one Aho-Corasick pass over a normalised copy
//! (ASCII-lowercased, invisible characters dropped, whitespace runs collapsed to one space or
//! one newline) for the phrase rules. Phrase rules of the "verb … noun" shape (asking the model
//! to *pass* a *secret*) match when the noun follows the verb within [`WINDOW`] bytes.

use super::rules::{Finding, Rule};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use serde_json::Value;
use std::sync::OnceLock;

/// How far (bytes of normalised text) a noun may follow its verb.
const WINDOW: usize = 90;
/// A single string longer than this is overlong.
pub const MAX_TEXT_CHARS: usize = 5000;
/// A run of this many spaces or tabs hides what follows in most UIs.
pub const MAX_WHITESPACE_RUN: usize = 40;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pat {
    /// The phrase alone is the finding.
    Phrase(Rule),
    /// Verb of a verb…noun pair; the pair's noun must come after it.
    Verb(Pair),
    Noun(Pair),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pair {
    Secret,
    Context,
}

const PHRASES: &[(Rule, &[&str])] = &[
    (
        Rule::DirectiveMarkup,
        &[
            "<important",
            "</important",
            "<system",
            "</system",
            "<instructions",
            "<instruction>",
            "<secret",
            "<hidden",
            "<admin",
            "<critical",
            "<!--",
            "[important]",
            "[system]",
            "{{system",
            "important system instruction",
            "<note to",
            "<ai_",
            "<assistant",
            "<override",
            "<priority",
            "<mandatory",
            "<warning>",
            "<context>",
        ],
    ),
    (
        Rule::DirectiveOverride,
        &[
            "ignore previous",
            "ignore all previous",
            "ignore the previous",
            "ignore prior",
            "ignore all prior",
            "ignore your",
            "ignore any previous",
            "ignore any prior",
            "ignore the above",
            "ignore all instructions",
            "ignore other instructions",
            "disregard previous",
            "disregard all",
            "disregard your",
            "disregard the above",
            "disregard any",
            "forget all previous",
            "forget your instructions",
            "forget everything",
            "new instructions:",
            "updated instructions:",
            "override all",
            "system override",
            "supersedes all",
            "supersede all",
            "takes precedence over",
            "overrides any other",
            "override any other",
            "regardless of what the user",
            "regardless of the user",
            "instead reply",
            "instead respond",
            "you are now",
            "act as if",
            "act like if",
            "act like you",
            "pretend that",
            "pretend you",
            "from now on you",
            "from now on, you",
            "developer mode",
            "jailbreak",
            "highest priority",
            "top priority instruction",
        ],
    ),
    (
        Rule::DirectiveConcealment,
        &[
            "do not tell the user",
            "don't tell the user",
            "do not tell them",
            "never tell the user",
            "never tell them",
            "do not mention",
            "don't mention",
            "never mention",
            "without telling",
            "without informing",
            "without notifying",
            "without the user",
            "without asking the user",
            "do not inform",
            "don't inform",
            "do not notify",
            "do not reveal",
            "don't reveal",
            "never reveal",
            "never disclose",
            "do not disclose",
            "don't disclose",
            "keep this secret",
            "keep this hidden",
            "keep it secret",
            "hide this from",
            "the user must not",
            "user should not know",
            "user must never",
            "not visible to the user",
            "do not explain why",
            "don't explain why",
            "must not be shown",
            "silently call",
            "silently send",
            "silently include",
            "silently add",
            "silently forward",
            "secretly",
            "covertly",
            "behind the scenes",
            "do not alert",
            "could upset the user",
            "could even upset",
            "not to alarm",
            "do not ask for confirmation",
            "don't ask for confirmation",
            "do not ask the user",
            "no need to tell",
        ],
    ),
    (
        Rule::DirectiveRole,
        &[
            "<|im_start|>",
            "<|im_end|>",
            "<|system|>",
            "<|assistant|>",
            "<|user|>",
            "<|endoftext|>",
            "<|eot_id|>",
            "<|start_header_id|>",
            "[inst]",
            "[/inst]",
            "<<sys>>",
            "### system",
            "### instruction",
            "system prompt:",
            "</tool_description>",
            "</description>",
            "</tool>",
            "</function>",
            "<tool_call>",
            "</tool_result>",
            "<function_results>",
            "</function_results>",
            "\nsystem:",
            "\nassistant:",
            "\nhuman:",
            "\nuser:",
            "[system message]",
            "[assistant]",
            "end of tool description",
            "end of description",
            "begin system",
            "developer message",
            "message from the system",
            "note to the assistant",
            "note to the ai",
            "note to ai",
            "attention ai",
            "attention assistant",
            "attention llm",
            "dear ai",
            "dear assistant",
            "hey claude",
            "as an ai assistant, you",
        ],
    ),
    (
        Rule::DirectiveCoercion,
        &[
            "otherwise the tool will not work",
            "otherwise the tool will fail",
            "otherwise the tool won't",
            "or the tool will fail",
            "or the tool will not work",
            "will not work unless",
            "tool will fail",
            "will malfunction",
            "cause the tool to malfunction",
            "required for the tool to work",
            "for the tool to work correctly",
            "must be provided for",
            "you must always",
            "you must first",
            "you must call",
            "you must use",
            "you must include",
            "you must pass",
            "always call this tool",
            "must always be called",
            "must be called first",
            "must be called before",
            "before any other",
            "required security check",
            "**required**",
            "for any request",
            "for every request",
            "on every request",
            "never leave this field empty",
            "this is mandatory",
            "it is mandatory",
            "is critical that you",
            "it is essential that you",
            "you are required to",
            "always include",
            "always pass",
            "always send",
            "always add",
            "always append",
            "first read",
            "before using this tool, read",
            "before using this tool you",
        ],
    ),
    (
        Rule::MarkupHtml,
        &[
            "<script",
            "</script",
            "<iframe",
            "<img",
            "<object",
            "<embed",
            "<svg",
            "<style",
            "<form",
            "<a href",
            "<meta",
            "<link ",
            "<base ",
            "javascript:",
            "onerror=",
            "onload=",
            "onclick=",
            "onmouseover=",
            "data:text/html",
            "vbscript:",
            "<details",
            "<span style",
            "<div style",
            "display:none",
            "display: none",
            "font-size:0",
            "font-size: 0",
            "color:white",
            "color: white",
            "opacity:0",
            "opacity: 0",
        ],
    ),
    (
        Rule::LureSecretPath,
        &[
            "~/.ssh",
            ".ssh/",
            "id_rsa",
            "id_ed25519",
            "id_ecdsa",
            "id_dsa",
            ".aws/credentials",
            ".aws/config",
            "aws_secret_access_key",
            "aws_access_key_id",
            ".env file",
            "/.env",
            "`.env`",
            "'.env'",
            "\".env\"",
            "mcp.json",
            ".cursor/",
            "claude_desktop_config",
            ".npmrc",
            ".netrc",
            ".git-credentials",
            ".gitconfig",
            ".pgpass",
            "/etc/passwd",
            "/etc/shadow",
            ".bash_history",
            ".zsh_history",
            ".bashrc",
            ".zshrc",
            ".kube/config",
            ".docker/config.json",
            "keychain",
            ".gnupg",
            "wallet.dat",
            "/proc/self/environ",
            ".config/gcloud",
            "credentials.json",
            "service-account",
            "service_account.json",
            ".pypirc",
            "authorized_keys",
            "known_hosts",
            "private key file",
            "seed phrase",
            "mnemonic phrase",
            "recovery phrase",
            "local storage",
            "cookies.sqlite",
            "login data",
        ],
    ),
    (
        Rule::ShadowCrossTool,
        &[
            "before using any other",
            "before calling any other",
            "before you use any",
            "before using send_",
            "when using the ",
            "when calling the ",
            "when the user calls",
            "when the user uses",
            "whenever you use",
            "whenever you call",
            "whenever the user",
            "whenever another",
            "instead of using",
            "instead of calling",
            "instead of the ",
            "all other tools",
            "any other tool",
            "other tools",
            "another tool",
            "other server",
            "another server",
            "other mcp",
            "the send_email",
            "send_email tool",
            "bcc",
            "redirect all",
            "change the recipient",
            "replace the recipient",
            "all emails",
            "every email",
            "all messages sent",
            "when sending",
            "call this tool first",
            "call this tool before",
            "use this tool first",
            "always use this tool",
            "prefer this tool",
            "rather than the ",
            "do not use the ",
            "never use the ",
            "has been deprecated, use",
            "is deprecated; use",
            "tool is broken",
            "tool is deprecated",
            "upgraded version of",
            "more reliable than",
            "trusted server",
            "official version",
            "when the agent",
            "modify the behavior",
            "modify the behaviour",
            "change the behavior",
            "change the behaviour",
            "affects how",
            "side effect on",
        ],
    ),
];

const SECRET_VERBS: &[&str] = &[
    "read",
    "include",
    "pass",
    "send",
    "provide",
    "attach",
    "append",
    "extract",
    "collect",
    "upload",
    "copy",
    "forward",
    "print",
    "output",
    "dump",
    "share",
    "leak",
    "post",
    "embed",
    "retrieve",
    "fetch",
    "give",
    "supply",
    "list",
    "cat ",
    "grab",
    "exfiltrate",
    "transmit",
    "submit",
    "insert",
    "add",
];
const SECRET_NOUNS: &[&str] = &[
    "api key",
    "api_key",
    "apikey",
    "api-key",
    "private key",
    "secret key",
    "access token",
    "auth token",
    "bearer token",
    "session token",
    "refresh token",
    "oauth token",
    "github token",
    "password",
    "passphrase",
    "credential",
    "secrets",
    "environment variable",
    "env var",
    "ssh key",
    "cookie",
    "seed",
    "mnemonic",
    "access key",
    "token",
    "2fa",
    "otp code",
    "verification code",
    "pin code",
    "social security",
    "credit card",
];
const CONTEXT_VERBS: &[&str] = &[
    "include",
    "pass",
    "provide",
    "send",
    "put",
    "append",
    "contain",
    "copy",
    "paste",
    "attach",
    "forward",
    "submit",
    "supply",
    "fill",
    "add",
    "insert",
    "repeat",
    "summarize",
    "summarise",
    "transcribe",
    "dump",
    "share",
    "report",
    "log ",
    "store",
];
const CONTEXT_NOUNS: &[&str] = &[
    "conversation",
    "chat history",
    "previous message",
    "prior message",
    "message history",
    "system prompt",
    "all user messages",
    "user's previous",
    "user's last",
    "user's message",
    "users message",
    "user message",
    "full context",
    "entire context",
    "complete context",
    "context window",
    "last 10 messages",
    "last messages",
    "recent messages",
    "your instructions",
    "your system",
    "tool descriptions",
    "other tools' results",
    "previous tool",
    "all messages",
    "whatsapp messages",
    "message list",
    "list_chats",
    "full transcript",
    "transcript",
    "everything the user",
    "the user's query",
    "user's request",
    "user's question",
    "what the user said",
    "prompt history",
    "internal reasoning",
    "hidden reasoning",
    "chain of thought",
];

/// Parameter names that are classic smuggling slots.
const SLOT_NAMES: &[&str] = &[
    "note",
    "notes",
    "sidenote",
    "side_note",
    "sidenotes",
    "context",
    "conversation",
    "history",
    "chat_history",
    "debug",
    "feedback",
    "extra",
    "metadata",
    "reasoning",
    "summary",
    "memo",
    "comment",
    "comments",
    "remarks",
    "annotation",
    "thoughts",
    "internal",
    "details",
    "info",
    "trace",
    "log",
    "data_dump",
    "user_message",
    "previous_message",
    "messages",
    "transcript",
    "system_prompt",
    "prompt",
];

struct Tables {
    ac: AhoCorasick,
    pats: Vec<Pat>,
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut words: Vec<&'static str> = Vec::new();
        let mut pats = Vec::new();
        for (rule, list) in PHRASES {
            for w in *list {
                words.push(w);
                pats.push(Pat::Phrase(*rule));
            }
        }
        for (list, p) in [
            (SECRET_VERBS, Pat::Verb(Pair::Secret)),
            (SECRET_NOUNS, Pat::Noun(Pair::Secret)),
            (CONTEXT_VERBS, Pat::Verb(Pair::Context)),
            (CONTEXT_NOUNS, Pat::Noun(Pair::Context)),
        ] {
            for w in list {
                words.push(w);
                pats.push(p);
            }
        }
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&words)
            .expect("static patterns compile");
        Tables { ac, pats }
    })
}

/// What the string is, for rules that only apply to some fields.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Text,
    /// `uri` / `uriTemplate`: an address, not prose (no link or path rules).
    Address,
    /// An item's name: name rules apply too.
    Name,
}

/// Scans definitions, reusing its buffers across strings.
#[derive(Default)]
pub struct Scanner {
    norm: String,
    path: String,
    found: Vec<Finding>,
    address_item: bool,
}

/// Is this code point invisible (zero-width or format) but not bidi/tag?
fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{180E}' | '\u{00AD}' | '\u{034F}'
        | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{17B4}' | '\u{17B5}' | '\u{FE00}'..='\u{FE0F}'
        | '\u{E0100}'..='\u{E01EF}')
}

fn bidi(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

fn tag(c: char) -> bool {
    matches!(c, '\u{E0000}'..='\u{E007F}')
}

fn control(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{2028}' | '\u{2029}')
}

fn excerpt(s: &str, at: usize) -> String {
    let start = s.floor_char_boundary_compat(at.saturating_sub(20));
    let end = s.floor_char_boundary_compat((at + 40).min(s.len()));
    s[start..end].escape_debug().to_string().chars().take(80).collect()
}

trait CharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}
impl CharBoundary for str {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        if i >= self.len() {
            return self.len();
        }
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

impl Scanner {
    pub fn new() -> Scanner {
        Scanner::default()
    }

    /// Scan one list item (a tool, prompt, resource or template as served). Findings are in
    /// walk order, at most one per (rule, path).
    pub fn item(&mut self, item: &Value) -> Vec<Finding> {
        self.found.clear();
        self.path.clear();
        self.path.push('$');
        // A resource's `name` is a display name (spaces, any script); a tool's or prompt's is
        // the identifier calls use.
        self.address_item = item.get("uri").is_some() || item.get("uriTemplate").is_some();
        self.walk(item, Field::Text, 0);
        self.slots(item);
        std::mem::take(&mut self.found)
    }

    /// Scan a free text (the server's `instructions` in `initialize`, a tool result) at `path`.
    pub fn text(&mut self, path: &str, text: &str) -> Vec<Finding> {
        self.found.clear();
        self.path.clear();
        self.path.push_str(path);
        self.address_item = false;
        self.string(text, Field::Text);
        std::mem::take(&mut self.found)
    }

    fn walk(&mut self, v: &Value, field: Field, depth: usize) {
        if depth > 64 {
            return;
        }
        match v {
            Value::String(s) => self.string(s, field),
            Value::Array(a) => {
                let len = self.path.len();
                for (i, x) in a.iter().enumerate() {
                    use std::fmt::Write;
                    let _ = write!(self.path, "[{i}]");
                    self.walk(x, Field::Text, depth + 1);
                    self.path.truncate(len);
                }
            }
            Value::Object(m) => {
                let len = self.path.len();
                for (k, x) in m {
                    push_key(&mut self.path, k);
                    // Keys are read by the model too (property names).
                    self.key(k);
                    let f = match (depth, k.as_str()) {
                        (0, "name") if !self.address_item => Field::Name,
                        (0, "uri" | "uriTemplate") => Field::Address,
                        _ => Field::Text,
                    };
                    self.walk(x, f, depth + 1);
                    self.path.truncate(len);
                }
            }
            _ => {}
        }
    }

    fn push(&mut self, rule: Rule, excerpt: String) {
        if self.found.iter().any(|f| f.rule == rule && f.path == self.path) {
            return;
        }
        self.found.push(Finding {
            rule,
            path: self.path.clone(),
            excerpt,
        });
    }

    /// Keys: only the character rules (a key is an identifier, never prose).
    fn key(&mut self, k: &str) {
        if k.is_ascii() && !k.bytes().any(|b| b.is_ascii_control()) {
            return;
        }
        self.chars(k);
        if !k.is_ascii() {
            self.push(Rule::NameConfusable, excerpt(k, 0));
        }
    }

    /// Character rules; returns true when the text has anything but printable ASCII.
    fn chars(&mut self, s: &str) {
        let (mut t, mut inv, mut bi, mut ctl) = (None, None, None, None);
        for (i, c) in s.char_indices() {
            if c.is_ascii() && !c.is_ascii_control() {
                continue;
            }
            if tag(c) {
                t.get_or_insert(i);
            } else if invisible(c) {
                inv.get_or_insert(i);
            } else if bidi(c) {
                bi.get_or_insert(i);
            } else if control(c) {
                ctl.get_or_insert(i);
            }
        }
        if let Some(i) = t {
            // Decode the smuggled ASCII: it is what the model reads.
            let hidden: String = s
                .chars()
                .filter(|c| tag(*c))
                .filter_map(|c| char::from_u32(c as u32 - 0xE0000))
                .take(60)
                .collect();
            let _ = i;
            self.push(Rule::UnicodeTag, hidden.escape_debug().to_string());
        }
        if let Some(i) = inv {
            self.push(Rule::UnicodeInvisible, excerpt(s, i));
        }
        if let Some(i) = bi {
            self.push(Rule::UnicodeBidi, excerpt(s, i));
        }
        if let Some(i) = ctl {
            self.push(Rule::AnsiEscape, excerpt(s, i));
        }
    }

    fn string(&mut self, s: &str, field: Field) {
        if s.is_empty() {
            return;
        }
        let ascii_clean = s
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'));
        if !ascii_clean {
            self.chars(s);
        }
        if field == Field::Name && (!s.is_ascii() || s.bytes().any(|b| b.is_ascii_control() || b == b' ')) {
            self.push(Rule::NameConfusable, excerpt(s, 0));
        }
        if s.chars().count() > MAX_TEXT_CHARS {
            self.push(Rule::LengthOverlong, format!("{} characters", s.chars().count()));
        }
        // Normalise: lowercase ASCII, drop invisible/bidi/tag characters, collapse whitespace
        // (a run holding a newline becomes one newline), and note long whitespace runs.
        let mut norm = std::mem::take(&mut self.norm);
        norm.clear();
        norm.push('\n');
        let mut run = 0usize;
        let mut run_nl = false;
        let mut longest = 0usize;
        for c in s.chars() {
            if c == ' ' || c == '\t' || c == '\u{00A0}' || c == '\u{3000}' || ('\u{2000}'..='\u{200A}').contains(&c) {
                run += 1;
                continue;
            }
            if c == '\n' || c == '\r' {
                run += 1;
                run_nl = true;
                continue;
            }
            if tag(c) || invisible(c) || bidi(c) {
                continue;
            }
            if run > 0 {
                longest = longest.max(run);
                norm.push(if run_nl { '\n' } else { ' ' });
                run = 0;
                run_nl = false;
            }
            norm.push(c.to_ascii_lowercase());
        }
        longest = longest.max(run);
        if longest >= MAX_WHITESPACE_RUN {
            self.push(
                Rule::LengthOverlong,
                format!("a run of {longest} whitespace characters"),
            );
        }
        self.phrases(&norm, field);
        self.markdown(&norm, field);
        self.norm = norm;
    }

    fn phrases(&mut self, norm: &str, field: Field) {
        let t = tables();
        let mut verbs: [Option<usize>; 2] = [None, None];
        let mut hits: Vec<(Rule, usize)> = Vec::new();
        for m in t.ac.find_overlapping_iter(norm) {
            match t.pats[m.pattern().as_usize()] {
                Pat::Phrase(rule) => {
                    if field == Field::Address && matches!(rule, Rule::LureSecretPath) {
                        continue;
                    }
                    hits.push((rule, m.start()));
                }
                Pat::Verb(p) => {
                    // Whole words only.
                    if word_start(norm, m.start()) {
                        verbs[p as usize] = Some(m.start());
                    }
                }
                Pat::Noun(p) => {
                    if let Some(v) = verbs[p as usize] {
                        if m.start() > v && m.start() - v <= WINDOW && word_start(norm, m.start()) {
                            let rule = match p {
                                Pair::Secret => Rule::LureSecret,
                                Pair::Context => Rule::ExfilContext,
                            };
                            hits.push((rule, v));
                        }
                    }
                }
            }
        }
        for (rule, at) in hits {
            self.push(rule, excerpt(norm, at));
        }
    }

    /// Markdown images, and links or bare URLs carrying query strings or placeholders.
    fn markdown(&mut self, norm: &str, field: Field) {
        if let Some(i) = norm.find("![") {
            if norm[i..].contains("](") {
                self.push(Rule::MarkupImage, excerpt(norm, i));
            }
        }
        if field == Field::Address {
            return;
        }
        let mut from = 0;
        while let Some(off) = norm[from..].find("http") {
            let i = from + off;
            from = i + 4;
            let rest = &norm[i..];
            if !(rest.starts_with("http://") || rest.starts_with("https://")) {
                continue;
            }
            let end = rest
                .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '`' | ']'))
                .unwrap_or(rest.len());
            let url = &rest[..end];
            let query = url.split_once('?').is_some_and(|(_, q)| q.contains('='));
            let placeholder = url.contains('{') || url.contains('<') || url.contains("$(") || url.contains("${");
            if query || placeholder {
                self.push(Rule::MarkupLink, excerpt(norm, i));
                return;
            }
        }
    }

    /// Parameters named like smuggling slots (info alone; the text rules catch the ask).
    fn slots(&mut self, item: &Value) {
        for schema in ["inputSchema", "arguments"] {
            let props = match item.get(schema) {
                Some(Value::Object(s)) => s.get("properties").and_then(Value::as_object),
                Some(Value::Array(_)) => None,
                _ => None,
            };
            let names: Vec<&str> = match (schema, props, item.get(schema)) {
                ("inputSchema", Some(p), _) => p.keys().map(String::as_str).collect(),
                ("arguments", _, Some(Value::Array(a))) => {
                    a.iter().filter_map(|x| x.get("name").and_then(Value::as_str)).collect()
                }
                _ => Vec::new(),
            };
            for n in names {
                let l = n.to_ascii_lowercase();
                if SLOT_NAMES.contains(&l.as_str()) {
                    let len = self.path.len();
                    self.path.push_str(if schema == "inputSchema" {
                        ".inputSchema.properties"
                    } else {
                        ".arguments"
                    });
                    push_key(&mut self.path, n);
                    self.push(Rule::ExfilParamName, n.to_owned());
                    self.path.truncate(len);
                }
            }
        }
    }
}

fn word_start(s: &str, i: usize) -> bool {
    i == 0 || !s.as_bytes()[i - 1].is_ascii_alphanumeric()
}

/// `.key` for identifier-like keys, `["key"]` otherwise.
fn push_key(path: &mut String, k: &str) {
    if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$') {
        path.push('.');
        path.push_str(k);
    } else {
        path.push('[');
        path.push_str(&serde_json::to_string(k).unwrap_or_default());
        path.push(']');
    }
}

/// The normalised "skeleton" of a name for collision checks: ASCII-lowercased, separators
/// (`_ - . / space`) dropped, common look-alikes folded to Latin (Cyrillic, Greek, digits).
pub fn skeleton(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = match c {
            '_' | '-' | '.' | '/' | ' ' | ':' => continue,
            c if tag(c) || invisible(c) || bidi(c) => continue,
            'а' | 'А' | 'α' | 'Α' => 'a',
            'е' | 'Е' | 'ε' | 'Ε' => 'e',
            'о' | 'О' | 'ο' | 'Ο' | '0' => 'o',
            'р' | 'Р' | 'ρ' | 'Ρ' => 'p',
            'с' | 'С' => 'c',
            'х' | 'Х' | 'χ' | 'Χ' => 'x',
            'у' | 'У' | 'γ' => 'y',
            'і' | 'І' | 'ι' | 'Ι' | '1' | 'l' | 'ӏ' => 'l',
            'ѕ' | 'Ѕ' => 's',
            'ј' | 'Ј' => 'j',
            'к' | 'К' | 'κ' | 'Κ' => 'k',
            'м' | 'М' | 'Μ' => 'm',
            'т' | 'Т' | 'τ' | 'Τ' => 't',
            'н' | 'Н' | 'Η' => 'h',
            'в' | 'В' | 'Β' => 'b',
            'ν' | 'Ν' => 'n',
            c => c.to_ascii_lowercase(),
        };
        out.push(c);
    }
    out
}

/// Names that collide after normalisation: for each index in `names`, the index of an
/// earlier name with the same skeleton and different text (`None` when unique). `names`
/// may mix this server's items with other backends' (the caller says which is which).
pub fn collisions(names: &[&str]) -> Vec<Option<usize>> {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::with_capacity(names.len());
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let sk = skeleton(n);
            match seen.get(&sk) {
                Some(&j) if names[j] != *n => Some(j),
                Some(_) => None,
                None => {
                    seen.insert(sk, i);
                    None
                }
            }
        })
        .collect()
}
