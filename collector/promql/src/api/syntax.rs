//! Names the offending token of a syntax error the `promql-parser` crate reports only as
//! "invalid promql query", the way Prometheus's parser words it (`unexpected identifier "bar"`,
//! `unexpected <op:*>`, `unexpected <by>`, …), from a light tokenisation of the query. Only the
//! token patterns below are recognised; anything else stays "invalid promql query".

/// A token of the query text.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// Identifier or keyword.
    Ident(String),
    /// Number or duration literal.
    Number(String),
    /// Quoted string, as written.
    Str(String),
    /// Binary or comparison operator.
    Op(String),
    /// Bracket, comma, `@`, `:` or `=` / `=~` / `!~` inside braces.
    Punct(char),
}

const KEYWORDS: &[&str] =
    &["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless", "atan2"];

fn tokens(q: &str) -> Vec<(usize, Tok)> {
    let b: Vec<(usize, char)> = q.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let (off, c) = b[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '#' => {
                while i < b.len() && b[i].1 != '\n' {
                    i += 1;
                }
            }
            '"' | '\'' | '`' => {
                i += 1;
                while i < b.len() && b[i].1 != c {
                    if b[i].1 == '\\' && c != '`' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                let end = b.get(i).map_or(q.len(), |p| p.0);
                out.push((off, Tok::Str(q[off..end].to_owned())));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let st = i;
                while i < b.len() && (b[i].1.is_ascii_alphanumeric() || b[i].1 == '_' || b[i].1 == ':') {
                    i += 1;
                }
                out.push((off, Tok::Ident(b[st..i].iter().map(|p| p.1).collect())));
            }
            c if c.is_ascii_digit() || c == '.' => {
                let st = i;
                while i < b.len() && (b[i].1.is_ascii_alphanumeric() || b[i].1 == '.' || b[i].1 == '_') {
                    i += 1;
                }
                out.push((off, Tok::Number(b[st..i].iter().map(|p| p.1).collect())));
            }
            '=' | '!' | '<' | '>' | '+' | '-' | '*' | '/' | '%' | '^' | '~' => {
                let st = i;
                i += 1;
                if i < b.len() && matches!(b[i].1, '=' | '~') && c != '~' {
                    i += 1;
                }
                out.push((off, Tok::Op(b[st..i].iter().map(|p| p.1).collect())));
            }
            _ => {
                out.push((off, Tok::Punct(c)));
                i += 1;
            }
        }
    }
    out
}

fn is_operand_end(t: &Tok) -> bool {
    match t {
        Tok::Ident(s) => !KEYWORDS.contains(&s.as_str()),
        Tok::Number(_) | Tok::Str(_) => true,
        Tok::Punct(c) => matches!(c, ')' | '}' | ']'),
        Tok::Op(_) => false,
    }
}

/// The offending token's offset and Prometheus's message, when the pattern is known.
pub(crate) fn diagnose(q: &str) -> Option<(usize, String)> {
    let toks = tokens(q);
    // Paren kinds: true for a grouping label list (`by (…)`, `on (…)`, …).
    let mut parens: Vec<bool> = Vec::new();
    let mut braces = 0i32;
    let mut last_closed_grouping = false;
    for (k, (off, t)) in toks.iter().enumerate() {
        let prev = k.checked_sub(1).map(|j| &toks[j].1);
        let in_grouping = parens.last() == Some(&true);
        match t {
            Tok::Ident(s) if KEYWORDS.contains(&s.as_str()) && braces == 0 => {
                let kw = s.as_str();
                if prev.is_none() && matches!(kw, "on" | "ignoring" | "group_left" | "group_right" | "bool") {
                    return Some((*off, format!("unexpected <{kw}>")));
                }
                // `by`/`without` first are read as a metric name; the `(` after it is the error.
                if prev.is_none()
                    && matches!(kw, "by" | "without")
                    && let Some((o, Tok::Punct('('))) = toks.get(1)
                {
                    return Some((*o, "unexpected \"(\"".into()));
                }
                if kw == "bool" && !matches!(prev, Some(Tok::Op(_))) {
                    return Some((*off, "unexpected <bool>".into()));
                }
                if matches!(kw, "by" | "without") && last_closed_grouping {
                    return Some((*off, format!("unexpected <{kw}>")));
                }
                if matches!(kw, "group_left" | "group_right")
                    && let Some(Tok::Ident(p)) = prev
                    && matches!(p.as_str(), "group_left" | "group_right")
                {
                    return Some((*off, format!("unexpected <{kw}> in grouping opts, expected \"(\"")));
                }
            }
            Tok::Ident(s) if braces == 0 && !in_grouping => {
                if let Some(Tok::Ident(p)) = prev
                    && matches!(p.as_str(), "on" | "ignoring")
                {
                    return Some((*off, format!("unexpected identifier \"{s}\" in grouping opts, expected \"(\"")));
                }
                if prev == Some(&Tok::Punct('@')) && !matches!(s.as_str(), "start" | "end") {
                    return Some((*off, format!("unexpected identifier \"{s}\" in @, expected timestamp")));
                }
                if prev.is_some_and(is_operand_end) && !last_closed_grouping {
                    return Some((*off, format!("unexpected identifier \"{s}\"")));
                }
            }
            Tok::Number(n) if in_grouping => {
                return Some((*off, format!("unexpected number \"{n}\" in grouping opts, expected label")));
            }
            Tok::Number(n)
                if braces == 0
                    && prev.is_some_and(is_operand_end)
                    && !last_closed_grouping
                    && (n.parse::<f64>().is_ok() || n.starts_with("0x")) =>
            {
                return Some((*off, format!("unexpected number \"{n}\"")));
            }
            Tok::Str(raw) if braces == 0 && prev.is_some_and(is_operand_end) && !last_closed_grouping => {
                return Some((*off, format!("unexpected string {raw:?}")));
            }
            Tok::Op(o) if braces == 0 && !matches!(o.as_str(), "+" | "-") && matches!(prev, Some(Tok::Op(_))) => {
                return Some((*off, format!("unexpected <op:{o}>")));
            }
            Tok::Punct('{') if braces == 0 && prev == Some(&Tok::Punct('}')) => {
                return Some((*off, "unexpected \"{\"".into()));
            }
            _ => {}
        }
        last_closed_grouping = false;
        match t {
            Tok::Punct('(') => parens.push(matches!(
                prev,
                Some(Tok::Ident(p)) if matches!(p.as_str(), "by" | "without" | "on" | "ignoring" | "group_left" | "group_right")
            )),
            Tok::Punct(')') => last_closed_grouping = parens.pop() == Some(true),
            Tok::Punct('{') => braces += 1,
            Tok::Punct('}') => braces -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::diagnose;

    #[test]
    fn offending_tokens_are_named_like_prometheus() {
        let d = |q: &str| diagnose(q).map(|(o, m)| (o + 1, m));
        assert_eq!(d("foo bar"), Some((5, "unexpected identifier \"bar\"".into())));
        assert_eq!(d("x == == x"), Some((6, "unexpected <op:==>".into())));
        assert_eq!(d("1 +* 2"), Some((4, "unexpected <op:*>".into())));
        assert_eq!(d("sum(x) by (a) by (b)"), Some((15, "unexpected <by>".into())));
        assert_eq!(d("on(a) x"), Some((1, "unexpected <on>".into())));
        assert_eq!(d("x @ foo"), Some((5, "unexpected identifier \"foo\" in @, expected timestamp".into())));
        assert_eq!(d("sum(x) by (1)"), Some((12, "unexpected number \"1\" in grouping opts, expected label".into())));
        assert_eq!(d("x + on a y"), Some((8, "unexpected identifier \"a\" in grouping opts, expected \"(\"".into())));
        assert_eq!(d("x{a=~\"b\"}{c=\"d\"}"), Some((10, "unexpected \"{\"".into())));
        assert_eq!(
            d("x + on(a) group_left group_right y"),
            Some((22, "unexpected <group_right> in grouping opts, expected \"(\"".into()))
        );
        assert_eq!(d("by (a) x"), Some((4, "unexpected \"(\"".into())));
        assert_eq!(d("x bool"), Some((3, "unexpected <bool>".into())));
        assert_eq!(d("rate(x[5m]) 1"), Some((13, "unexpected number \"1\"".into())));
        assert_eq!(d("\"a\" \"b\""), Some((5, "unexpected string \"\\\"b\\\"\"".into())));
        for ok in ["sum by (a) (x)", "x + on(a) group_left y", "rate(x[5m]) offset 1m", "x - -1", "x and on(a) y"] {
            assert_eq!(d(ok), None, "{ok}");
        }
    }
}
