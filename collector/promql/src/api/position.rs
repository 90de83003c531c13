//! Prometheus-style `line:col: parse error: …` prefixes for parser messages.
//!
//! The `promql-parser` crate reports errors without a position. The position is recovered for
//! the lexical errors (end of input, an unmatched closing bracket); other syntax and type
//! errors are reported at `1:1`, the start of the expression (where Prometheus reports type
//! errors of a whole expression; for a misplaced token it names the token's own position).

/// `line:col` (1-based, columns in characters) of byte offset `off` in `q`.
fn line_col(q: &str, off: usize) -> (usize, usize) {
    let before = &q[..off.min(q.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Byte offset of the first closing bracket without an opener, skipping quoted strings.
fn unmatched_closer(q: &str) -> Option<usize> {
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in q.char_indices() {
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
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The parser's message with Prometheus's `line:col: parse error: ` prefix.
pub fn with_position(q: &str, msg: &str) -> String {
    let off = if msg.starts_with("unclosed") || msg.contains("end of input") {
        q.trim_end_matches([' ', '\t']).len()
    } else if msg.starts_with("unexpected right") {
        unmatched_closer(q).unwrap_or(0)
    } else {
        0
    };
    let (line, col) = line_col(q, off);
    let msg = msg.replace("unexpected right parenthesis ')'", "unexpected right parenthesis");
    format!("{line}:{col}: parse error: {msg}")
}

#[cfg(test)]
mod tests {
    use super::with_position;

    #[test]
    fn positions_point_at_the_end_or_the_stray_bracket() {
        assert_eq!(with_position("sum(", "unclosed left parenthesis"), "1:5: parse error: unclosed left parenthesis");
        assert_eq!(
            with_position("a{b=\")\"})", "unexpected right parenthesis ')'"),
            "1:9: parse error: unexpected right parenthesis"
        );
        assert_eq!(
            with_position("up{\n", "unexpected end of input inside braces").split(':').take(2).collect::<Vec<_>>(),
            ["2", "1"]
        );
        assert!(
            with_position("1 + \"a\"", "binary expression must contain only scalar and instant vector types")
                .starts_with("1:1: parse error: ")
        );
    }
}
