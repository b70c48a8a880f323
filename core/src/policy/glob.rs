//! Name patterns: `*` matches any run of characters (including none, including `/`); every other
//! character matches itself, byte for byte, case-sensitively.
//!
//! There is no `?`, no character class and no escape: MCP tool and prompt names cannot contain
//! `*` (2025-11-25 spec, "Tool names": `[A-Za-z0-9_.-]`), and a URI that does is matched by a
//! wider `*`. Patterns are split once at compile time so matching never allocates; the common
//! shapes (exact, `*`, `prefix*`, `*suffix`) skip the general loop.

/// What a pattern is matched against, which decides what counts as foreign syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Text {
    /// MCP tool and prompt names: `[A-Za-z0-9_.-]` by the spec (`/` and `:` seen in the
    /// wild). `?`, brackets, braces, `!`, `\`, `^`, `$`, `(`, `)`, `|`, `+` and whitespace can
    /// only be an attempt at glob or regex syntax.
    Name,
    /// URIs, subjects, claim and argument values, hosts: `?` (a query), `!` and `[::1]` (an IPv6
    /// host) are ordinary characters here; only what cannot be meant literally is refused.
    Free,
}

/// What patterns support, for messages.
pub(crate) const SUPPORTED: &str =
    "patterns support only `*` (any run of characters, `/` included); every other character matches itself";

/// Why `pattern` looks like syntax this matcher does not have (so a rule using it would match
/// something other than what its author meant, usually nothing), or `None`.
pub(crate) fn unsupported(pattern: &str, text: Text) -> Option<String> {
    let why = |what: &str| Some(format!("{what} is not supported: {SUPPORTED}"));
    for prefix in ["re:", "regex:", "regexp:", "glob:"] {
        if pattern.starts_with(prefix) {
            return why(&format!("{prefix:?} (regular expression or pattern-kind prefix)"));
        }
    }
    if pattern.starts_with('!') && text == Text::Name {
        return why("negation with `!` (use a deny rule)");
    }
    if pattern.contains('\\') {
        return why("`\\` (escapes)");
    }
    if let Some(open) = pattern.find('{') {
        if pattern[open..]
            .find('}')
            .is_some_and(|close| pattern[open..open + close].contains(','))
        {
            return why("brace alternation `{a,b}` (list each pattern instead)");
        }
    }
    if let Some(open) = pattern.find('[') {
        // `[::1]` is an IPv6 host; `[a-z]`, `[abc]`, `[!x]` are character classes.
        if let Some(close) = pattern[open..].find(']') {
            let inner = &pattern[open + 1..open + close];
            if text == Text::Name || !inner.contains(':') {
                return why("a character class `[...]`");
            }
        }
    }
    if text == Text::Name {
        if let Some(c) = pattern
            .chars()
            .find(|c| matches!(c, '?' | '[' | ']' | '{' | '}' | '^' | '$' | '(' | ')' | '|' | '+') || c.is_whitespace())
        {
            return why(&format!(
                "{c:?} in a name pattern (`?` is not a single-character wildcard here)"
            ));
        }
    }
    None
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Glob {
    /// No `*`: the name must equal this.
    Exact(Box<str>),
    /// `*`: everything.
    Any,
    /// `prefix*`.
    Prefix(Box<str>),
    /// `*suffix`.
    Suffix(Box<str>),
    /// Anything else: `prefix*mid1*mid2*suffix`; middles are found left to right.
    General {
        prefix: Box<str>,
        middles: Box<[Box<str>]>,
        suffix: Box<str>,
        min_len: usize,
    },
}

impl Glob {
    /// Compile a pattern. Runs of `*` collapse to one. The empty pattern is the caller's to
    /// refuse (it would match only the empty name, which is never what a policy author meant).
    pub(crate) fn new(pattern: &str) -> Glob {
        if !pattern.contains('*') {
            return Glob::Exact(pattern.into());
        }
        let parts: Vec<&str> = pattern.split('*').collect();
        // `split` on a pattern containing `*` yields at least two parts.
        let prefix = parts[0];
        let suffix = parts[parts.len() - 1];
        let middles: Vec<Box<str>> = parts[1..parts.len() - 1]
            .iter()
            .filter(|m| !m.is_empty())
            .map(|m| Box::<str>::from(*m))
            .collect();
        match (prefix.is_empty(), middles.is_empty(), suffix.is_empty()) {
            (true, true, true) => Glob::Any,
            (false, true, true) => Glob::Prefix(prefix.into()),
            (true, true, false) => Glob::Suffix(suffix.into()),
            _ => {
                let min_len = prefix.len() + suffix.len() + middles.iter().map(|m| m.len()).sum::<usize>();
                Glob::General {
                    prefix: prefix.into(),
                    middles: middles.into(),
                    suffix: suffix.into(),
                    min_len,
                }
            }
        }
    }

    /// The literal text every match starts with (`""` when the pattern starts with `*`).
    pub(crate) fn literal_prefix(&self) -> &str {
        match self {
            Glob::Exact(p) | Glob::Prefix(p) | Glob::General { prefix: p, .. } => p,
            Glob::Any | Glob::Suffix(_) => "",
        }
    }

    pub(crate) fn matches(&self, s: &str) -> bool {
        match self {
            Glob::Exact(e) => **e == *s,
            Glob::Any => true,
            Glob::Prefix(p) => s.starts_with(&**p),
            Glob::Suffix(x) => s.ends_with(&**x),
            Glob::General {
                prefix,
                middles,
                suffix,
                min_len,
            } => {
                if s.len() < *min_len || !s.starts_with(&**prefix) || !s.ends_with(&**suffix) {
                    return false;
                }
                // The suffix is anchored at the end and the prefix at the start; the middles
                // must fit, in order, in what lies between. Leftmost-first is optimal for
                // `*`-only patterns: taking a later occurrence never leaves more room.
                let mut rest = &s[prefix.len()..s.len() - suffix.len()];
                for m in middles.iter() {
                    match rest.find(&**m) {
                        Some(i) => rest = &rest[i + m.len()..],
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

/// Any-of: a list of patterns where one match is enough.
pub(crate) fn any_matches(globs: &[Glob], s: &str) -> bool {
    globs.iter().any(|g| g.matches(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p).matches(s)
    }

    #[test]
    fn a_pattern_without_a_star_matches_only_itself() {
        assert!(m("search", "search"));
        assert!(!m("search", "search2"));
        assert!(!m("search", "Search"));
        assert_eq!(Glob::new("search"), Glob::Exact("search".into()));
    }

    #[test]
    fn a_lone_star_matches_everything_including_the_empty_name() {
        assert!(m("*", ""));
        assert!(m("*", "a/b/c"));
        assert_eq!(Glob::new("**"), Glob::Any);
    }

    #[test]
    fn a_star_matches_slashes_and_empty_runs() {
        assert!(m("file:///repo/*", "file:///repo/a/b.txt"));
        assert!(m("file:///repo/*", "file:///repo/"));
        assert!(!m("file:///repo/*", "file:///repo"));
        assert!(m("*_read", "github_read"));
        assert!(m("*_read", "_read"));
        assert!(!m("*_read", "github_read_all"));
    }

    #[test]
    fn middles_must_appear_in_order_without_overlapping_prefix_or_suffix() {
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "a-x-b-y-c"));
        assert!(!m("a*b*c", "acb"));
        // The prefix and the suffix may not share characters.
        assert!(!m("ab*ba", "aba"));
        assert!(m("ab*ba", "abba"));
        // A middle may not be taken from the suffix.
        assert!(!m("x*ab*b", "xab"));
        assert!(m("x*ab*b", "xabb"));
        assert!(m("*a*", "banana"));
        assert!(!m("*z*", "banana"));
    }

    #[test]
    fn runs_of_stars_collapse() {
        assert_eq!(Glob::new("a**"), Glob::Prefix("a".into()));
        assert!(m("a**b", "ab"));
        assert!(m("a***b", "axxb"));
    }

    #[test]
    fn glob_and_regex_syntax_the_matcher_lacks_is_named_and_refused() {
        for p in [
            "delete_?",
            "[a-z]*",
            "!admin",
            "re:^delete.*",
            "{read,write}_file",
            "a\\*b",
            "x+",
            "a|b",
            "(a)",
        ] {
            let why = unsupported(p, Text::Name).unwrap_or_default();
            assert!(
                why.contains("not supported") && why.contains("only `*`"),
                "{p}: {why:?}"
            );
        }
        for p in ["re:.*", "file:///[a-z]*", "file:///{a,b}/*", "c:\\x"] {
            assert!(unsupported(p, Text::Free).is_some(), "{p}");
        }
    }

    #[test]
    fn ordinary_names_uris_and_ipv6_hosts_are_not_mistaken_for_syntax() {
        for p in ["github_*", "*", "ns.tool-1", "a/b:c"] {
            assert_eq!(unsupported(p, Text::Name), None, "{p}");
        }
        for p in [
            "https://api/x?y=*",
            "[::1]:*",
            "http://[::1]:*",
            "file:///repo/{path}",
            "!bang",
            "a b",
        ] {
            assert_eq!(unsupported(p, Text::Free), None, "{p}");
        }
    }

    #[test]
    fn matching_is_byte_exact_for_non_ascii_names() {
        assert!(m("réper*", "répertoire"));
        assert!(m("*é", "café"));
        assert!(!m("*é", "cafe"));
    }
}
