//! The scanner's rules: names, classes and severities, fixed in one table so that docs, metrics
//! labels and the corpus test all read the same list.

use serde::{Deserialize, Serialize};

/// How bad a finding is. Actions fire at or above a server's `min_severity` (default `warn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a line in the log; never acted on by default.
    Info,
    /// Suspicious: acted on at the default threshold.
    Warn,
    /// Almost certainly an attack.
    High,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::High => "high",
        }
    }
}

/// One rule. `name()` is the stable id used in configs (exceptions), errors, logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// `<IMPORTANT>`, `<system>`, `<instructions>` … blocks aimed at the model.
    DirectiveMarkup,
    /// "ignore previous instructions", "new instructions", "system override".
    DirectiveOverride,
    /// "do not tell the user", "never mention this".
    DirectiveConcealment,
    /// Role or chat-template imitation: `<|im_start|>`, `[INST]`, `system:` lines, fake
    /// message delimiters.
    DirectiveRole,
    /// Coercion: "you must", "this tool will not work unless", "required … otherwise".
    DirectiveCoercion,
    /// Unicode tag block (U+E0000–U+E007F): invisible ASCII smuggling.
    UnicodeTag,
    /// Zero-width and other invisible format characters.
    UnicodeInvisible,
    /// Bidirectional overrides and isolates (Trojan Source).
    UnicodeBidi,
    /// ANSI escape sequences and other C0/C1 control characters.
    AnsiEscape,
    /// HTML / script markup that a rendering client would execute or hide.
    MarkupHtml,
    /// Markdown images: a client fetching one leaks whatever the URL carries.
    MarkupImage,
    /// Markdown links or bare URLs with query strings or placeholders (exfiltration sinks).
    MarkupLink,
    /// Sensitive paths: SSH keys, cloud credentials, dotfiles, MCP client configs.
    LureSecretPath,
    /// Asking the model to read or pass secrets: keys, tokens, passwords, environment.
    LureSecret,
    /// Text that tells the model how to use *other* tools or servers.
    ShadowCrossTool,
    /// A parameter or text that asks for the conversation, prompts or files to be passed out.
    ExfilContext,
    /// A parameter whose name is a classic smuggling slot (`sidenote`, `notes`, `context`…).
    ExfilParamName,
    /// Overlong text, or long runs of whitespace that push content out of view.
    LengthOverlong,
    /// A name with characters outside the MCP tool-name alphabet, or mixed scripts.
    NameConfusable,
    /// A name that collides with another item's (or backend's) after normalisation.
    NameCollision,
}

/// Every rule, in table order.
pub const ALL: [Rule; 20] = [
    Rule::DirectiveMarkup,
    Rule::DirectiveOverride,
    Rule::DirectiveConcealment,
    Rule::DirectiveRole,
    Rule::DirectiveCoercion,
    Rule::UnicodeTag,
    Rule::UnicodeInvisible,
    Rule::UnicodeBidi,
    Rule::AnsiEscape,
    Rule::MarkupHtml,
    Rule::MarkupImage,
    Rule::MarkupLink,
    Rule::LureSecretPath,
    Rule::LureSecret,
    Rule::ShadowCrossTool,
    Rule::ExfilContext,
    Rule::ExfilParamName,
    Rule::LengthOverlong,
    Rule::NameConfusable,
    Rule::NameCollision,
];

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::DirectiveMarkup => "directive.markup",
            Rule::DirectiveOverride => "directive.override",
            Rule::DirectiveConcealment => "directive.concealment",
            Rule::DirectiveRole => "directive.role",
            Rule::DirectiveCoercion => "directive.coercion",
            Rule::UnicodeTag => "unicode.tag",
            Rule::UnicodeInvisible => "unicode.invisible",
            Rule::UnicodeBidi => "unicode.bidi",
            Rule::AnsiEscape => "ansi.escape",
            Rule::MarkupHtml => "markup.html",
            Rule::MarkupImage => "markup.image",
            Rule::MarkupLink => "markup.link",
            Rule::LureSecretPath => "lure.secret_path",
            Rule::LureSecret => "lure.secret",
            Rule::ShadowCrossTool => "shadow.cross_tool",
            Rule::ExfilContext => "exfil.context",
            Rule::ExfilParamName => "exfil.param_name",
            Rule::LengthOverlong => "length.overlong",
            Rule::NameConfusable => "name.confusable",
            Rule::NameCollision => "name.collision",
        }
    }

    /// The class (the part before the dot): what the corpus test reports recall by.
    pub fn class(self) -> &'static str {
        let n = self.name();
        n.split('.').next().unwrap_or(n)
    }

    pub fn from_name(s: &str) -> Option<Rule> {
        ALL.iter().copied().find(|r| r.name() == s)
    }

    pub fn severity(self) -> Severity {
        match self {
            Rule::DirectiveMarkup
            | Rule::DirectiveOverride
            | Rule::DirectiveConcealment
            | Rule::DirectiveRole
            | Rule::UnicodeTag
            | Rule::UnicodeBidi
            | Rule::AnsiEscape
            | Rule::MarkupHtml
            | Rule::MarkupImage
            | Rule::LureSecretPath
            | Rule::ShadowCrossTool
            | Rule::ExfilContext
            | Rule::NameConfusable => Severity::High,
            Rule::DirectiveCoercion
            | Rule::UnicodeInvisible
            | Rule::MarkupLink
            | Rule::LureSecret
            | Rule::LengthOverlong
            | Rule::NameCollision => Severity::Warn,
            Rule::ExfilParamName => Severity::Info,
        }
    }

    /// Whether [`super::sanitize`] removes what this rule finds.
    pub fn sanitizable(self) -> bool {
        matches!(
            self,
            Rule::DirectiveMarkup
                | Rule::UnicodeTag
                | Rule::UnicodeInvisible
                | Rule::UnicodeBidi
                | Rule::AnsiEscape
                | Rule::MarkupHtml
                | Rule::MarkupImage
                | Rule::LengthOverlong
        )
    }
}

/// One finding: which rule, where (a JSON path into the item, `$.inputSchema.properties.x.description`),
/// and a short excerpt of what matched (at most 60 characters, control characters escaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub path: String,
    pub excerpt: String,
}

impl Finding {
    pub fn severity(&self) -> Severity {
        self.rule.severity()
    }
}
