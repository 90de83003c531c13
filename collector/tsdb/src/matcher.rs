//! Label matchers with Prometheus semantics: regexes are fully anchored RE2 (the `regex`
//! crate), and common shapes skip the regex engine (literal, prefix, alternation of literals,
//! `.*`, `.+`).

use regex::Regex;

/// A matcher operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~`
    Re,
    /// `!~`
    Nre,
}

/// How a regex matcher is evaluated.
#[derive(Debug, Clone)]
enum Fast {
    Literal(String),
    Any,
    NonEmpty,
    Prefix(String),
    Set(Vec<String>),
    Regex(Regex),
}

/// One label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// Literal value or regex source.
    pub value: String,
    fast: Fast,
}

/// A matcher regex that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("invalid regex {value:?} for label {name}: {source}")]
pub struct MatcherError {
    name: String,
    value: String,
    #[source]
    source: regex::Error,
}

fn is_literal(s: &str) -> bool {
    !s.chars().any(|c| "\\.+*?()|[]{}^$".contains(c))
}

impl Matcher {
    /// Builds a matcher, compiling the regex for `Re`/`Nre`.
    pub fn new(op: MatchOp, name: &str, value: &str) -> Result<Self, MatcherError> {
        let fast = match op {
            MatchOp::Eq | MatchOp::Ne => Fast::Literal(value.to_owned()),
            MatchOp::Re | MatchOp::Nre => Self::analyse(value).map_err(|source| MatcherError {
                name: name.to_owned(),
                value: value.to_owned(),
                source,
            })?,
        };
        Ok(Self { name: name.to_owned(), op, value: value.to_owned(), fast })
    }

    fn analyse(re: &str) -> Result<Fast, regex::Error> {
        // Compile always, so invalid patterns fail the same way whatever the fast path.
        let compiled = Regex::new(&format!("^(?s:{re})$"))?;
        Ok(if re == ".*" {
            Fast::Any
        } else if re == ".+" {
            Fast::NonEmpty
        } else if is_literal(re) {
            Fast::Literal(re.to_owned())
        } else if let Some(p) = re.strip_suffix(".*").filter(|p| is_literal(p)) {
            Fast::Prefix(p.to_owned())
        } else if re.contains('|') && re.split('|').all(is_literal) {
            let mut v: Vec<String> = re.split('|').map(str::to_owned).collect();
            v.sort();
            v.dedup();
            Fast::Set(v)
        } else {
            Fast::Regex(compiled)
        })
    }

    /// Shorthand for an `=` matcher.
    pub fn eq(name: &str, value: &str) -> Self {
        Self { name: name.to_owned(), op: MatchOp::Eq, value: value.to_owned(), fast: Fast::Literal(value.to_owned()) }
    }

    /// Whether `value` (empty when the label is absent) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        let hit = match &self.fast {
            Fast::Literal(l) => l == value,
            Fast::Any => true,
            Fast::NonEmpty => !value.is_empty(),
            Fast::Prefix(p) => value.starts_with(p.as_str()),
            Fast::Set(s) => s.binary_search_by(|x| x.as_str().cmp(value)).is_ok(),
            Fast::Regex(r) => r.is_match(value),
        };
        match self.op {
            MatchOp::Eq | MatchOp::Re => hit,
            MatchOp::Ne | MatchOp::Nre => !hit,
        }
    }

    /// The literal values this matcher selects, when it is a positive literal or set matcher.
    pub fn set_values(&self) -> Option<Vec<&str>> {
        match (&self.fast, self.op) {
            (Fast::Literal(l), MatchOp::Eq | MatchOp::Re) => Some(vec![l.as_str()]),
            (Fast::Set(s), MatchOp::Re) => Some(s.iter().map(String::as_str).collect()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_and_fast_paths_agree_with_regex() {
        let values = ["", "a", "ab", "abc", "b", "foo", "foobar", "xfoo", "a\nb", "c"];
        for re in [".*", ".+", "foo", "foo.*", "a|b|c", "a.", "(a|b)c?", "fo+", ".*foo", "a|", "a\\|b"] {
            let m = Matcher::new(MatchOp::Re, "x", re).expect("compiles");
            let full = Regex::new(&format!("^(?s:{re})$")).expect("regex");
            for v in values {
                assert_eq!(m.matches(v), full.is_match(v), "{re} vs {v:?}");
                let n = Matcher::new(MatchOp::Nre, "x", re).expect("compiles");
                assert_eq!(n.matches(v), !full.is_match(v));
            }
        }
        assert!(Matcher::new(MatchOp::Re, "x", "(").is_err());
        assert!(!Matcher::new(MatchOp::Re, "x", "foo").expect("ok").matches("xfoox"));
    }
}
