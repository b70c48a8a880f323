//! Tool-call argument constraints: compiled from [`ArgumentSpec`], checked against the raw
//! `arguments` text of a `tools/call` only when a rule that carries them is reached.

use super::decimal::Decimal;
use super::glob::{self, any_matches, Glob};
use super::pointer::{self, Found, Segment};
use super::spec::{ArgumentSpec, JsonType};
use serde::de::{self, Visitor};
use serde::Deserializer as _;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// The result of checking one constraint (or all of a rule's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Pass,
    Fail,
    /// The arguments could not be read unambiguously: an allow rule does not apply, a deny rule
    /// does (fail closed either way).
    Malformed,
}

/// A scalar a policy compares against.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Str(Box<str>),
    /// The number's text as serde_json writes it: exact for integers (any `i64`/`u64`) and for
    /// every decimal an `f64` round-trips; compared by [`Decimal`], never through `f64`.
    Num(Box<str>),
    Bool(bool),
    Null,
}

impl Scalar {
    /// Scalars only: objects and arrays are refused by the caller.
    pub(crate) fn from_json(v: &Value) -> Option<Scalar> {
        Some(match v {
            Value::String(s) => Scalar::Str(s.as_str().into()),
            Value::Number(n) => {
                let text = n.to_string();
                Decimal::parse(&text)?;
                Scalar::Num(text.into())
            }
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Null => Scalar::Null,
            Value::Array(_) | Value::Object(_) => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Constraint {
    /// The key as written: reported as the decision's detail.
    pub(crate) key: Box<str>,
    path: Box<[Segment]>,
    kind: Option<JsonType>,
    patterns: Option<Box<[Glob]>>,
    one_of: Option<Box<[Scalar]>>,
    minimum: Option<Box<str>>,
    maximum: Option<Box<str>>,
    max_length: Option<usize>,
    optional: bool,
}

impl Constraint {
    /// Compile one constraint, pushing `(relative path, message)` for every problem.
    pub(crate) fn compile(key: &str, spec: &ArgumentSpec, errs: &mut Vec<(String, String)>) -> Option<Constraint> {
        let before = errs.len();
        let path = match pointer::compile(key) {
            Ok(p) => Some(p),
            Err(e) => {
                errs.push((String::new(), e));
                None
            }
        };
        let s = spec;
        if s.kind.is_none()
            && s.patterns.is_none()
            && s.one_of.is_none()
            && s.minimum.is_none()
            && s.maximum.is_none()
            && s.max_length.is_none()
        {
            errs.push((
                String::new(),
                "constraint checks nothing: give type, patterns, one_of, minimum, maximum or max_length".into(),
            ));
        }
        let numeric = s.minimum.is_some() || s.maximum.is_some();
        let stringy = s.patterns.is_some() || s.max_length.is_some();
        if numeric && stringy {
            errs.push((
                String::new(),
                "minimum/maximum (numbers) and patterns/max_length (strings) cannot both hold".into(),
            ));
        }
        if let Some(k) = s.kind {
            if numeric && !matches!(k, JsonType::Number | JsonType::Integer) {
                errs.push((
                    ".type".into(),
                    format!("type {} conflicts with minimum/maximum", k.label()),
                ));
            }
            if stringy && k != JsonType::String {
                errs.push((
                    ".type".into(),
                    format!("type {} conflicts with patterns/max_length", k.label()),
                ));
            }
        }
        let bound = |n: &Option<serde_json::Number>| n.as_ref().map(|n| Box::<str>::from(n.to_string()));
        let (minimum, maximum) = (bound(&s.minimum), bound(&s.maximum));
        for (field, b) in [(".minimum", &minimum), (".maximum", &maximum)] {
            if b.as_deref().is_some_and(|t| Decimal::parse(t).is_none()) {
                errs.push((field.into(), "must be a finite number".into()));
            }
        }
        if let (Some(lo), Some(hi)) = (
            minimum.as_deref().and_then(Decimal::parse),
            maximum.as_deref().and_then(Decimal::parse),
        ) {
            if lo.cmp(&hi) == std::cmp::Ordering::Greater {
                errs.push((
                    ".minimum".into(),
                    format!(
                        "minimum {} is greater than maximum {}",
                        minimum.as_deref().unwrap_or_default(),
                        maximum.as_deref().unwrap_or_default()
                    ),
                ));
            }
        }
        let patterns = s.patterns.as_ref().map(|ps| {
            if ps.is_empty() {
                errs.push((".patterns".into(), "empty list matches nothing".into()));
            }
            for (i, p) in ps.iter().enumerate() {
                if p.is_empty() {
                    errs.push((format!(".patterns[{i}]"), "empty pattern".into()));
                } else if let Some(why) = glob::unsupported(p, glob::Text::Free) {
                    errs.push((format!(".patterns[{i}]"), format!("{p:?}: {why}")));
                }
            }
            ps.iter().map(|p| Glob::new(p)).collect::<Box<[_]>>()
        });
        let one_of = s.one_of.as_ref().map(|vs| {
            if vs.is_empty() {
                errs.push((".one_of".into(), "empty list matches nothing".into()));
            }
            let mut out = Vec::with_capacity(vs.len());
            for (i, v) in vs.iter().enumerate() {
                match Scalar::from_json(v) {
                    Some(x) => out.push(x),
                    None => errs.push((
                        format!(".one_of[{i}]"),
                        "must be a string, number, boolean or null".into(),
                    )),
                }
            }
            out.into_boxed_slice()
        });
        let max_length = s.max_length.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        if errs.len() != before {
            return None;
        }
        Some(Constraint {
            key: key.into(),
            path: path?,
            kind: s.kind,
            patterns,
            one_of,
            minimum,
            maximum,
            max_length,
            optional: s.optional,
        })
    }

    pub(crate) fn check(&self, args: Option<&RawValue>) -> Outcome {
        let found = match args {
            Some(a) => pointer::raw_at(a, &self.path),
            None => Found::Missing,
        };
        let raw = match found {
            Found::Value(v) => v,
            Found::Missing if self.optional => return Outcome::Pass,
            Found::Missing => return Outcome::Fail,
            Found::Malformed => return Outcome::Malformed,
        };
        let Some(leaf) = Leaf::read(raw) else {
            return Outcome::Malformed;
        };
        if self.holds(&leaf) {
            Outcome::Pass
        } else {
            Outcome::Fail
        }
    }

    fn holds(&self, v: &Leaf<'_>) -> bool {
        if let Some(k) = self.kind {
            let ok = match (k, v) {
                (JsonType::String, Leaf::Str(_)) => true,
                (JsonType::Number, Leaf::Num(..)) => true,
                (JsonType::Integer, Leaf::Num(_, integral)) => *integral,
                (JsonType::Boolean, Leaf::Bool(_)) => true,
                (JsonType::Null, Leaf::Null) => true,
                (JsonType::Array, Leaf::Array) => true,
                (JsonType::Object, Leaf::Object) => true,
                _ => false,
            };
            if !ok {
                return false;
            }
        }
        if let Some(ps) = &self.patterns {
            match v {
                Leaf::Str(s) if any_matches(ps, s) => {}
                _ => return false,
            }
        }
        if let Some(n) = self.max_length {
            match v {
                Leaf::Str(s) if s.chars().count() <= n => {}
                _ => return false,
            }
        }
        if self.minimum.is_some() || self.maximum.is_some() {
            let Leaf::Num(x, _) = v else { return false };
            let below = |bound: &Option<Box<str>>, o: std::cmp::Ordering| {
                // A bound that does not parse was refused at compile time; fail closed anyway.
                bound
                    .as_deref()
                    .is_some_and(|b| Decimal::parse(b).is_none_or(|b| x.cmp(&b) == o))
            };
            if below(&self.minimum, std::cmp::Ordering::Less) || below(&self.maximum, std::cmp::Ordering::Greater) {
                return false;
            }
        }
        if let Some(set) = &self.one_of {
            if !set.iter().any(|s| v.equals(s)) {
                return false;
            }
        }
        true
    }
}

/// The value found at a constraint's path, decoded just enough to check it. Strings borrow
/// from the request unless they contain escapes.
#[derive(Debug)]
enum Leaf<'a> {
    Str(Cow<'a, str>),
    /// The value (by its exact decimal text), and whether it has no fractional part.
    Num(Decimal<'a>, bool),
    Bool(bool),
    Null,
    Array,
    Object,
}

impl<'a> Leaf<'a> {
    fn read(raw: &'a RawValue) -> Option<Leaf<'a>> {
        let text = raw.get().trim();
        Some(match text.as_bytes().first()? {
            b'{' => Leaf::Object,
            b'[' => Leaf::Array,
            b't' => Leaf::Bool(true),
            b'f' => Leaf::Bool(false),
            b'n' => Leaf::Null,
            b'"' => Leaf::Str(
                serde_json::Deserializer::from_str(text)
                    .deserialize_str(StrVisitor)
                    .ok()?,
            ),
            _ => {
                // Beyond f64's range (`1e400`) an upstream cannot read the number the way we
                // would: ambiguous, so malformed (fail closed).
                let _: serde_json::Number = serde_json::from_str(text).ok()?;
                let x = Decimal::parse(text)?;
                Leaf::Num(x, x.is_integer())
            }
        })
    }

    fn equals(&self, s: &Scalar) -> bool {
        match (self, s) {
            (Leaf::Str(a), Scalar::Str(b)) => **a == **b,
            (Leaf::Num(a, _), Scalar::Num(b)) => {
                Decimal::parse(b).is_some_and(|b| a.cmp(&b) == std::cmp::Ordering::Equal)
            }
            (Leaf::Bool(a), Scalar::Bool(b)) => a == b,
            (Leaf::Null, Scalar::Null) => true,
            _ => false,
        }
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(key: &str, spec: Value) -> Constraint {
        let spec: ArgumentSpec = serde_json::from_value(spec).unwrap();
        let mut errs = Vec::new();
        let c = Constraint::compile(key, &spec, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        c.unwrap()
    }

    fn check(c: &Constraint, args: &str) -> Outcome {
        let raw = RawValue::from_string(args.to_owned()).unwrap();
        c.check(Some(&raw))
    }

    fn errors(key: &str, spec: Value) -> Vec<(String, String)> {
        let spec: ArgumentSpec = serde_json::from_value(spec).unwrap();
        let mut errs = Vec::new();
        assert!(Constraint::compile(key, &spec, &mut errs).is_none());
        errs
    }

    #[test]
    fn a_pattern_constraint_passes_matching_strings_only() {
        let k = c("repo", json!({"patterns": ["acme/*"]}));
        assert_eq!(check(&k, r#"{"repo":"acme/web"}"#), Outcome::Pass);
        assert_eq!(check(&k, r#"{"repo":"evil/web"}"#), Outcome::Fail);
        assert_eq!(check(&k, r#"{"repo":7}"#), Outcome::Fail);
        assert_eq!(check(&k, r#"{"repo":"acme\/web"}"#), Outcome::Pass);
    }

    #[test]
    fn a_missing_argument_fails_unless_optional() {
        let k = c("limit", json!({"maximum": 100}));
        assert_eq!(check(&k, "{}"), Outcome::Fail);
        assert_eq!(k.check(None), Outcome::Fail);
        let k = c("limit", json!({"maximum": 100, "optional": true}));
        assert_eq!(check(&k, "{}"), Outcome::Pass);
        assert_eq!(check(&k, r#"{"limit":101}"#), Outcome::Fail);
    }

    #[test]
    fn numeric_bounds_are_inclusive_and_refuse_non_numbers() {
        let k = c("limit", json!({"minimum": 1, "maximum": 100}));
        assert_eq!(check(&k, r#"{"limit":100}"#), Outcome::Pass);
        assert_eq!(check(&k, r#"{"limit":1}"#), Outcome::Pass);
        assert_eq!(check(&k, r#"{"limit":100.5}"#), Outcome::Fail);
        assert_eq!(check(&k, r#"{"limit":0}"#), Outcome::Fail);
        assert_eq!(check(&k, r#"{"limit":"50"}"#), Outcome::Fail);
        assert_eq!(check(&k, r#"{"limit":-1e400}"#), Outcome::Malformed);
    }

    #[test]
    fn integer_type_accepts_whole_floats_and_refuses_fractions() {
        let k = c("n", json!({"type": "integer"}));
        assert_eq!(check(&k, r#"{"n":3}"#), Outcome::Pass);
        assert_eq!(check(&k, r#"{"n":3.0}"#), Outcome::Pass);
        assert_eq!(check(&k, r#"{"n":3.5}"#), Outcome::Fail);
        assert_eq!(check(&k, r#"{"n":"3"}"#), Outcome::Fail);
    }

    #[test]
    fn every_type_is_recognised() {
        for (t, ok) in [
            ("string", r#""s""#),
            ("number", "1.5"),
            ("boolean", "false"),
            ("null", "null"),
            ("array", "[1]"),
            ("object", r#"{"a":1}"#),
        ] {
            let k = c("v", json!({ "type": t }));
            assert_eq!(check(&k, &format!(r#"{{"v":{ok}}}"#)), Outcome::Pass, "{t}");
            let wrong = if t == "string" { "1" } else { r#""s""# };
            assert_eq!(check(&k, &format!(r#"{{"v":{wrong}}}"#)), Outcome::Fail, "{t}");
        }
    }

    #[test]
    fn one_of_compares_strings_exactly_and_numbers_numerically() {
        let k = c("mode", json!({"one_of": ["read", 1, true, null]}));
        assert_eq!(check(&k, r#"{"mode":"read"}"#), Outcome::Pass);
        assert_eq!(check(&k, r#"{"mode":"Read"}"#), Outcome::Fail);
        assert_eq!(check(&k, r#"{"mode":1.0}"#), Outcome::Pass);
        assert_eq!(check(&k, r#"{"mode":true}"#), Outcome::Pass);
        assert_eq!(check(&k, r#"{"mode":null}"#), Outcome::Pass);
        assert_eq!(check(&k, r#"{"mode":["read"]}"#), Outcome::Fail);
    }

    #[test]
    fn numbers_compare_by_exact_decimal_value_not_as_f64() {
        let k = c("id", json!({"one_of": [9007199254740993u64]}));
        assert_eq!(check(&k, r#"{"id":9007199254740993}"#), Outcome::Pass);
        assert_eq!(check(&k, r#"{"id":9007199254740992}"#), Outcome::Fail);
        assert_eq!(check(&k, r#"{"id":9007199254740993.0}"#), Outcome::Pass);
        let k = c("n", json!({"one_of": [1000]}));
        assert_eq!(check(&k, r#"{"n":1e3}"#), Outcome::Pass);
        assert_eq!(check(&k, r#"{"n":1000.0000000000001}"#), Outcome::Fail);
        let k = c("n", json!({"maximum": 9007199254740992u64}));
        assert_eq!(check(&k, r#"{"n":9007199254740992}"#), Outcome::Pass);
        assert_eq!(check(&k, r#"{"n":9007199254740993}"#), Outcome::Fail);
        let k = c("n", json!({"type": "integer"}));
        assert_eq!(check(&k, r#"{"n":9007199254740993.5}"#), Outcome::Fail);
        assert_eq!(check(&k, r#"{"n":1e3}"#), Outcome::Pass);
    }

    #[test]
    fn max_length_counts_characters_not_bytes() {
        let k = c("q", json!({"max_length": 3}));
        assert_eq!(check(&k, r#"{"q":"été"}"#), Outcome::Pass);
        assert_eq!(check(&k, r#"{"q":"étés"}"#), Outcome::Fail);
    }

    #[test]
    fn nested_arguments_are_reached_by_pointer() {
        let k = c("/options/depth", json!({"maximum": 3}));
        assert_eq!(check(&k, r#"{"options":{"depth":2}}"#), Outcome::Pass);
        assert_eq!(check(&k, r#"{"options":{"depth":9}}"#), Outcome::Fail);
        assert_eq!(check(&k, r#"{"options":2}"#), Outcome::Fail);
    }

    #[test]
    fn a_duplicated_argument_is_malformed() {
        let k = c("repo", json!({"patterns": ["acme/*"]}));
        assert_eq!(check(&k, r#"{"repo":"acme/a","repo":"evil/b"}"#), Outcome::Malformed);
    }

    #[test]
    fn contradictory_or_empty_constraints_are_refused() {
        assert!(errors("x", json!({}))[0].1.contains("checks nothing"));
        assert_eq!(errors("x", json!({"type": "string", "maximum": 3}))[0].0, ".type");
        assert_eq!(errors("x", json!({"minimum": 5, "maximum": 3}))[0].0, ".minimum");
        assert_eq!(errors("x", json!({"patterns": []}))[0].0, ".patterns");
        assert_eq!(errors("x", json!({"patterns": ["a", ""]}))[0].0, ".patterns[1]");
        assert_eq!(errors("x", json!({"one_of": [{"a": 1}]}))[0].0, ".one_of[0]");
        assert!(errors("x", json!({"patterns": ["a"], "maximum": 3}))[0]
            .1
            .contains("cannot both"));
        assert!(errors("/a~9", json!({"type": "string"}))[0].1.contains("JSON pointer"));
    }
}
