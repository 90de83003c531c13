//! Go `regexp` (RE2) compatibility on top of the `regex` crate: Prometheus's fully anchored
//! relabel regexes with ASCII-only Perl classes (`\d`, `\w`, `\s`, `\b` as in RE2), and Go's
//! `Regexp.Expand` template rules (`$1`, `${1}`, `$name`, `$$`).

use std::fmt;

/// A relabel regex: `^(?s:PATTERN)$`, compiled with RE2 class semantics.
#[derive(Clone)]
pub struct AnchoredRegex {
    source: String,
    re: regex::Regex,
}

impl AnchoredRegex {
    /// Compiles `pattern` anchored at both ends, as Prometheus's `relabel.NewRegexp`.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        let translated = translate_perl_classes(pattern);
        let re = regex::Regex::new(&format!("^(?s:{translated})$"))?;
        Ok(Self { source: pattern.to_owned(), re })
    }

    /// The pattern as written, without the added anchors.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    /// The captures of matching the whole of `s`.
    pub fn captures<'s>(&self, s: &'s str) -> Option<regex::Captures<'s>> {
        self.re.captures(s)
    }

    /// Expands `template` with `caps` (from [`Self::captures`]).
    pub fn expand(&self, caps: &regex::Captures<'_>, template: &str) -> String {
        if template.contains('$') { expand(&self.re, caps, template) } else { template.to_owned() }
    }

    /// Expands `template` with the captures of matching `s`, or `None` when it does not match.
    pub fn replace(&self, s: &str, template: &str) -> Option<String> {
        let caps = self.re.captures(s)?;
        Some(expand(&self.re, &caps, template))
    }
}

impl fmt::Debug for AnchoredRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

impl PartialEq for AnchoredRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Rewrites `\d \D \w \W \s \S \b \B` to their ASCII (RE2) meanings; the `regex` crate makes them
/// Unicode-aware by default.
fn translate_perl_classes(pattern: &str) -> String {
    const D: &str = "0-9";
    const W: &str = "0-9A-Za-z_";
    const S: &str = "\\t\\n\\x0C\\r ";
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let set = match n.to_ascii_lowercase() {
                    'd' => Some(D),
                    'w' => Some(W),
                    's' => Some(S),
                    _ => None,
                };
                match (set, n.is_ascii_uppercase(), in_class) {
                    (Some(set), false, true) => out.push_str(set),
                    (Some(set), false, false) => {
                        out.push('[');
                        out.push_str(set);
                        out.push(']');
                    }
                    (Some(set), true, _) => {
                        out.push_str("[^");
                        out.push_str(set);
                        out.push(']');
                    }
                    (None, _, false) if n == 'b' || n == 'B' => {
                        out.push_str("(?-u:\\");
                        out.push(n);
                        out.push(')');
                    }
                    _ => {
                        out.push('\\');
                        out.push(n);
                    }
                }
                class_start = false;
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                // A `]` right after `[` or `[^` is a literal.
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            '[' if in_class && chars.peek() == Some(&':') => {
                // POSIX class `[:alpha:]`: copy through to its closing `:]`.
                out.push('[');
                for c2 in chars.by_ref() {
                    out.push(c2);
                    if c2 == ']' {
                        break;
                    }
                }
            }
            '[' => out.push_str("\\["),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            _ => {
                // RE2 treats `&&`, `--` and `~~` inside a class literally; the regex crate treats
                // them as set operators.
                if in_class && matches!(c, '&' | '-' | '~') && chars.peek() == Some(&c) && !class_start {
                    out.push('\\');
                    out.push(c);
                } else {
                    out.push(c);
                }
                class_start = false;
            }
        }
    }
    out
}

/// Go's `Regexp.Expand`: `$name` / `${name}` take the longest run of letters, digits and `_`;
/// an all-digit name (no leading zero) is a group number; an unknown group expands to nothing;
/// `$$` is a `$`; a malformed reference leaves the `$` as text.
pub fn expand(re: &regex::Regex, caps: &regex::Captures<'_>, template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let Some((name, after)) = extract(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        match group_number(name) {
            Some(n) => {
                if let Some(m) = caps.get(n) {
                    out.push_str(m.as_str());
                }
            }
            None => {
                if let Some(i) = re.capture_names().position(|n| n == Some(name))
                    && let Some(m) = caps.get(i)
                {
                    out.push_str(m.as_str());
                }
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses a reference name after `$`; returns the name and the text after it.
fn extract(s: &str) -> Option<(&str, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body.char_indices().find(|&(_, c)| !(c.is_alphanumeric() || c == '_')).map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    let mut rest = &body[end..];
    if brace {
        rest = rest.strip_prefix('}')?;
    }
    Some((name, rest))
}

/// Go's rule: a decimal name without a leading zero (below 1e8) is a group number.
fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit()) || (name.len() > 1 && name.starts_with('0')) || name.len() > 8 {
        return None;
    }
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(pattern: &str, s: &str, template: &str) -> Option<String> {
        AnchoredRegex::new(pattern).expect("regex").replace(s, template)
    }

    #[test]
    fn anchored_on_both_ends() {
        let r = AnchoredRegex::new("foo").expect("regex");
        assert!(r.is_match("foo"));
        assert!(!r.is_match("foobar"));
        assert!(!r.is_match("afoo"));
        // `.` matches newlines (the `s` flag).
        assert!(AnchoredRegex::new("a.b").expect("regex").is_match("a\nb"));
        // Alternation stays inside the anchors.
        let alt = AnchoredRegex::new("a|b").expect("regex");
        assert!(alt.is_match("a") && alt.is_match("b") && !alt.is_match("ab"));
    }

    #[test]
    fn perl_classes_are_ascii_as_in_re2() {
        assert!(!AnchoredRegex::new(r"\d").expect("regex").is_match("٣"));
        assert!(AnchoredRegex::new(r"\d+").expect("regex").is_match("123"));
        assert!(!AnchoredRegex::new(r"\w").expect("regex").is_match("é"));
        assert!(AnchoredRegex::new(r"[\w.]+").expect("regex").is_match("a.b_c"));
        assert!(AnchoredRegex::new(r"\D").expect("regex").is_match("é"));
        assert!(AnchoredRegex::new(r"[^\d]x").expect("regex").is_match("ax"));
        assert!(AnchoredRegex::new(r"[]a]+").expect("regex").is_match("]a"));
        assert!(AnchoredRegex::new(r"[a-c&&]+").expect("regex").is_match("a&&b"));
        assert!(AnchoredRegex::new(r"[[:alpha:]]+").expect("regex").is_match("abc"));
        assert!(AnchoredRegex::new(r".*\bfoo").expect("regex").is_match("a foo"));
    }

    proptest::proptest! {
        /// With only `${N}` references and no `$$`, Go's rules and the regex crate's agree.
        #[test]
        fn braced_numeric_references_agree_with_regex_crate(
            parts in proptest::collection::vec(("[a-z .-]{0,4}", 0usize..4), 0..5),
            input in "[a-c]{0,6}",
        ) {
            let re = regex::Regex::new("^(?s:([a-c]*?)(b*)(c?))$").expect("regex");
            let template = parts.iter().map(|(lit, n)| format!("{lit}${{{n}}}")).collect::<Vec<_>>().concat();
            if let Some(caps) = re.captures(&input) {
                let mut want = String::new();
                caps.expand(&template, &mut want);
                proptest::prop_assert_eq!(expand(&re, &caps, &template), want);
            }
        }
    }

    #[test]
    fn go_expand_rules() {
        assert_eq!(exp("(a)(b)", "ab", "$2$1").as_deref(), Some("ba"));
        assert_eq!(exp("(a)(b)", "ab", "${1}x").as_deref(), Some("ax"));
        // `$1x` names the group "1x", which does not exist: empty.
        assert_eq!(exp("(a)(b)", "ab", "$1x").as_deref(), Some(""));
        assert_eq!(exp("(a)", "a", "$$1").as_deref(), Some("$1"));
        assert_eq!(exp("(a)", "a", "cost: $").as_deref(), Some("cost: $"));
        assert_eq!(exp("(a)", "a", "${1").as_deref(), Some("${1"));
        assert_eq!(exp("(a)", "a", "$-").as_deref(), Some("$-"));
        assert_eq!(exp("(a)", "a", "$9").as_deref(), Some(""));
        assert_eq!(exp("(a)", "a", "$01").as_deref(), Some(""));
        assert_eq!(exp("(?P<host>[^:]+):(?P<port>\\d+)", "h:1", "$port/$host").as_deref(), Some("1/h"));
        assert_eq!(exp("(a)|(b)", "b", "[$1][$2]").as_deref(), Some("[][b]"));
        assert_eq!(exp("(a)", "b", "$1"), None);
    }
}
