//! Prometheus-style parse errors (`line:col: parse error: …`) from `promql-parser`'s messages.
//!
//! The `promql-parser` crate reports errors without a position and with its own wording. Here
//! each message it produces for a malformed query is mapped to Prometheus's text (Go's `%q`
//! quoting, "range vector"/"instant vector" type names, lexer wording) and the position is
//! recovered from the query text where the message identifies the place: end of input, a stray
//! or unterminated bracket or quote, a bad character, a zero duration, a range on a
//! non-selector, a misused `bool`, a function or aggregation argument. Where it cannot be
//! recovered the error is placed at `1:1`, the start of the expression (where Prometheus puts
//! type errors of a whole expression). The differential test `tests/it/promql_errors.rs`
//! compares the result with Prometheus and lists what still differs.

/// `line:col` (1-based, columns in characters) of byte offset `off` in `q`.
fn line_col(q: &str, off: usize) -> (usize, usize) {
    let mut off = off.min(q.len());
    while !q.is_char_boundary(off) {
        off -= 1;
    }
    let before = &q[..off];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Byte offsets of the characters outside quoted strings and `#` comments.
fn code_chars(q: &str) -> Vec<(usize, char)> {
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut comment = false;
    for (i, c) in q.char_indices() {
        if comment {
            comment = c != '\n';
            continue;
        }
        if let Some(qc) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && qc != '`' {
                escaped = true;
            } else if c == qc {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '#' => comment = true,
            _ => out.push((i, c)),
        }
    }
    out
}

/// Offset of the opening quote of a string left unterminated.
fn unterminated_quote(q: &str) -> Option<usize> {
    let mut open: Option<(usize, char)> = None;
    let mut escaped = false;
    for (i, c) in q.char_indices() {
        match open {
            Some((_, qc)) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && qc != '`' {
                    escaped = true;
                } else if c == qc {
                    open = None;
                }
            }
            None if matches!(c, '"' | '\'' | '`') => open = Some((i, c)),
            None => {}
        }
    }
    open.map(|(i, _)| i)
}

/// Byte offset of the first closing bracket without an opener, outside strings.
fn unmatched_closer(q: &str, which: char) -> Option<usize> {
    let mut stack = Vec::new();
    for (i, c) in code_chars(q) {
        match c {
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) && c == which {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// End of the query for "end of input" errors: trailing blanks (not newlines) do not count.
fn end_of_input(q: &str) -> usize {
    q.trim_end_matches([' ', '\t']).len()
}

/// The quoted char of a message like `…: 'x'`.
fn quoted_char(msg: &str) -> Option<char> {
    let s = msg.strip_suffix('\'')?;
    let (_, c) = s.rsplit_once('\'')?;
    let mut it = c.chars();
    let ch = it.next()?;
    it.next().is_none().then_some(ch)
}

/// `'name'` → `"name"` (Go's `%q`), for messages that quote names rather than characters.
fn go_quotes(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut parts = msg.split('\'');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let rest: Vec<&str> = parts.collect();
    for (i, p) in rest.iter().enumerate() {
        // Odd segments were inside quotes; an unpaired last quote stays as it was.
        if i % 2 == 0 && i + 1 < rest.len() {
            out.push('"');
            out.push_str(p);
            out.push('"');
        } else if i % 2 == 0 {
            out.push('\'');
            out.push_str(p);
        } else {
            out.push_str(p);
        }
    }
    out
}

fn type_name(t: &str) -> &str {
    match t {
        "matrix" => "range vector",
        "vector" => "instant vector",
        other => other,
    }
}

/// After `name(` (and blanks) in the query: where the first argument of a call starts.
fn after_open(q: &str, name: &str) -> Option<usize> {
    let start = q.find(&format!("{name}("))? + name.len() + 1;
    Some(start + (q[start..].len() - q[start..].trim_start().len()))
}

const PARAM_AGGS: &[&str] = &["count_values", "quantile", "topk", "bottomk", "limitk", "limit_ratio"];

/// Where the parameter of the first parameterised aggregation starts.
fn agg_param(q: &str) -> Option<usize> {
    let i = PARAM_AGGS.iter().filter_map(|a| q.find(a)).min()?;
    let open = q[i..].find('(')? + i + 1;
    let inner = &q[open..];
    // `topk by (x) (…)`: the parameter is inside the second parenthesis.
    let open = if q[i..open].contains(" by") || q[i..open].contains("without") {
        inner.find('(').map_or(open, |j| open + j + 1)
    } else {
        open
    };
    Some(open + (q[open..].len() - q[open..].trim_start().len()))
}

/// Offset of the first zero duration (`0s`, `0m`, …) in a range, subquery step or `offset`.
fn zero_duration(q: &str) -> Option<usize> {
    let chars = code_chars(q);
    let mut text = String::new();
    for (k, &(_, c)) in chars.iter().enumerate() {
        let after_offset =
            c.is_ascii_digit() && text.trim_end().ends_with("offset") && text.ends_with(char::is_whitespace);
        text.push(c);
        let start = if c == '[' || c == ':' {
            k + 1
        } else if after_offset {
            k
        } else {
            continue;
        };
        let rest: Vec<char> = chars[start..].iter().map(|p| p.1).collect();
        let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0
            && rest[..digits].iter().all(|c| *c == '0')
            && rest.get(digits).is_some_and(char::is_ascii_alphabetic)
        {
            return chars.get(start).map(|p| p.0);
        }
    }
    None
}

/// Offset of the first `[` right after a closing parenthesis (a range on a non-selector).
fn range_on_expression(q: &str) -> Option<usize> {
    let chars = code_chars(q);
    let mut prev = None;
    for &(i, c) in &chars {
        if c == '[' && prev == Some(')') {
            return Some(i);
        }
        if !c.is_whitespace() {
            prev = Some(c);
        }
    }
    None
}

/// Offset of the operator before `bool`.
fn operator_before_bool(q: &str) -> Option<usize> {
    let b = q.find(" bool")?;
    let before = q[..b].trim_end();
    let op_len = before.chars().rev().take_while(|c| "+-*/%^=!<>".contains(*c)).count();
    Some(before.len() - op_len)
}

/// Offset of the first comparison operator outside strings and braces.
fn first_comparison(q: &str) -> Option<usize> {
    let chars = code_chars(q);
    let mut braces = 0i32;
    for (k, &(i, c)) in chars.iter().enumerate() {
        match c {
            '{' => braces += 1,
            '}' => braces -= 1,
            '>' | '<' if braces == 0 => return Some(i),
            '=' | '!' if braces == 0 && chars.get(k + 1).is_some_and(|n| n.1 == '=') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Whether the query ends in a binary operator (its right operand is missing).
fn ends_in_operator(q: &str) -> bool {
    let code: String = code_chars(q).into_iter().map(|(_, c)| c).collect();
    let t = code.trim_end();
    t.ends_with(['+', '-', '*', '/', '%', '^', '=', '<', '>'])
        || [" and", " or", " unless", " atan2"].iter().any(|k| t.ends_with(k))
}

/// Prometheus's text for a `promql-parser` message and the byte offset it points at.
fn prometheus_form(q: &str, msg: &str) -> (usize, String) {
    let text = msg.to_owned();
    if msg == "unexpected end of input inside brackets" {
        return (end_of_input(q), "unclosed left bracket".into());
    }
    if msg.starts_with("unclosed") || msg.contains("end of input") {
        return (end_of_input(q), text);
    }
    if msg.starts_with("no expression found in input") {
        return (0, "no expression found in input".into());
    }
    if msg.starts_with("unexpected right parenthesis") {
        // Prometheus points just past the stray parenthesis.
        return (unmatched_closer(q, ')').map_or(0, |i| i + 1), "unexpected right parenthesis ')'".into());
    }
    if msg.starts_with("unexpected right bracket") {
        return (unmatched_closer(q, ']').unwrap_or(0), text);
    }
    if msg.starts_with("unexpected right brace") {
        return (unmatched_closer(q, '}').unwrap_or(0), "unexpected character: '}'".into());
    }
    if msg.starts_with("unterminated quoted string") {
        return (unterminated_quote(q).unwrap_or(0), "unterminated quoted string".into());
    }
    if let Some(c) = quoted_char(msg) {
        if msg.starts_with("unexpected character inside braces") {
            let brace = q.find('{').unwrap_or(0);
            return (q[brace..].find(c).map_or(0, |i| brace + i), text);
        }
        if msg.starts_with("unexpected character after '!'") {
            let at = code_chars(q).windows(2).find(|w| w[0].1 == '!' && w[1].1 == c).map_or(0, |w| w[0].0);
            return (at, text);
        }
        if msg.starts_with("unexpected character: ") {
            return (code_chars(q).iter().find(|p| p.1 == c).map_or(0, |p| p.0), text);
        }
        if msg.starts_with("unknown escape sequence") {
            let esc = q.find(&format!("\\{c}")).unwrap_or(0);
            let open = q[..esc].rfind(['"', '\'']).unwrap_or(0);
            return (open, format!("unknown escape sequence U+{:04X} '{c}'", u32::from(c)));
        }
    }
    if let Some(rest) = msg.strip_prefix("ParseFloatError. ")
        && let Some((num, _)) = rest.split_once(" can't be parsed")
    {
        return (
            q.find(num).unwrap_or(0),
            format!("error parsing number: strconv.ParseFloat: parsing \"{num}\": invalid syntax"),
        );
    }
    if msg == "expected a duration in \"\"" && q.trim_end().ends_with("offset") {
        return (end_of_input(q), "unexpected end of input in offset, expected duration".into());
    }
    if msg == "invalid promql query" && ends_in_operator(q) {
        return (end_of_input(q), "unexpected end of input".into());
    }
    if msg == "invalid promql query"
        && let Some(found) = super::syntax::diagnose(q)
    {
        return found;
    }
    // `expected type matrix in call to function 'rate', got vector`
    if let Some(rest) = msg.strip_prefix("expected type ")
        && let Some((want, rest)) = rest.split_once(" in call to function '")
        && let Some((func, got)) = rest.split_once("', got ")
    {
        return (
            after_open(q, func).unwrap_or(0),
            format!("expected type {} in call to function \"{func}\", got {}", type_name(want), type_name(got)),
        );
    }
    // `expected type string in aggregation expression, got scalar`
    if let Some(rest) = msg.strip_prefix("expected type ")
        && let Some((want, got)) = rest.split_once(" in aggregation expression, got ")
    {
        return (
            agg_param(q).unwrap_or(0),
            format!("expected type {} in aggregation parameter, got {}", type_name(want), type_name(got)),
        );
    }
    if let Some(got) = msg.strip_prefix("unary expression only allowed on expressions of type scalar or vector, got: ")
    {
        return (
            0,
            format!(
                "unary expression only allowed on expressions of type scalar or instant vector, got \"{}\"",
                type_name(got)
            ),
        );
    }
    if let Some(num) = msg.strip_prefix("duration out of range: \"").and_then(|r| r.strip_suffix('"')) {
        return (q.find(num).unwrap_or(0), text);
    }
    if msg == "duration must be greater than 0" {
        return (zero_duration(q).unwrap_or(0), text);
    }
    if msg == "ranges only allowed for vector selectors" {
        return (range_on_expression(q).unwrap_or(0), text);
    }
    if msg == "bool modifier can only be used on comparison operators" {
        return (operator_before_bool(q).unwrap_or(0), text);
    }
    if msg == "comparisons between scalars must use BOOL modifier" {
        return (first_comparison(q).unwrap_or(0), text);
    }
    // `unexpected identifier 'b' in label matching, expected string`
    if let Some(rest) = msg.strip_prefix("unexpected identifier '")
        && let Some((ident, _)) = rest.split_once("' in label matching")
    {
        let at = ["=", "~"].iter().filter_map(|op| q.find(&format!("{op}{ident}")).map(|i| i + 1)).min();
        return (at.unwrap_or(0), go_quotes(msg));
    }
    let quotes_names =
        ["in call to '", "with name '", "set operator '", "allowed for '", "set twice: '", "identifier '"]
            .iter()
            .any(|p| msg.contains(p));
    if quotes_names {
        return (0, go_quotes(msg));
    }
    (0, text)
}

/// The parser's message as Prometheus words it, with the `line:col: parse error: ` prefix.
pub fn with_position(q: &str, msg: &str) -> String {
    let (off, text) = prometheus_form(q, msg);
    let (line, col) = line_col(q, off);
    format!("{line}:{col}: parse error: {text}")
}

#[cfg(test)]
mod tests {
    use super::with_position;

    #[test]
    fn positions_point_at_the_end_or_the_stray_bracket() {
        assert_eq!(with_position("sum(", "unclosed left parenthesis"), "1:5: parse error: unclosed left parenthesis");
        assert_eq!(
            with_position("a{b=\")\"})", "unexpected right parenthesis ')'"),
            "1:10: parse error: unexpected right parenthesis ')'"
        );
        assert_eq!(
            with_position("up{\n", "unexpected end of input inside braces").split(':').take(2).collect::<Vec<_>>(),
            ["2", "1"]
        );
        assert_eq!(
            with_position("x[5m", "unexpected end of input inside brackets"),
            "1:5: parse error: unclosed left bracket"
        );
        assert_eq!(with_position("x # c\n+", "invalid promql query"), "2:2: parse error: unexpected end of input");
        assert!(
            with_position("1 + \"a\"", "binary expression must contain only scalar and instant vector types")
                .starts_with("1:1: parse error: ")
        );
    }

    #[test]
    fn messages_use_prometheus_wording() {
        assert_eq!(
            with_position("rate(x)", "expected type matrix in call to function 'rate', got vector"),
            "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"
        );
        assert_eq!(
            with_position("count_values(1, x)", "expected type string in aggregation expression, got scalar"),
            "1:14: parse error: expected type string in aggregation parameter, got scalar"
        );
        assert_eq!(
            with_position("x{__name__=\"y\"}", "metric name must not be set twice: 'x' or 'y'"),
            "1:1: parse error: metric name must not be set twice: \"x\" or \"y\""
        );
        assert_eq!(
            with_position("x{a=\"\\q\"}", "unknown escape sequence 'q'"),
            "1:5: parse error: unknown escape sequence U+0071 'q'"
        );
        assert_eq!(
            with_position("x[1m:0s]", "duration must be greater than 0"),
            "1:6: parse error: duration must be greater than 0"
        );
        assert_eq!(
            with_position("up offset 0s", "duration must be greater than 0"),
            "1:11: parse error: duration must be greater than 0"
        );
        assert_eq!(
            with_position("1 > 2", "comparisons between scalars must use BOOL modifier").split(':').nth(1),
            Some("3")
        );
        assert_eq!(with_position("x}", "unexpected right brace '}'"), "1:2: parse error: unexpected character: '}'");
        assert_eq!(
            with_position("1e", "ParseFloatError. 1e can't be parsed into f64"),
            "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e\": invalid syntax"
        );
    }
}
