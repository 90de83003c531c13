//! Lexer and parser for the Go `text/template` subset Prometheus rule templates use.
#![allow(clippy::many_single_char_names)]

/// A parsed template node.
#[derive(Debug, Clone)]
pub enum Node {
    /// Literal text.
    Text(String),
    /// `{{ pipeline }}`: prints unless it declares or assigns.
    Action(Pipe),
    /// `{{if}}` / `{{with}}` (with: `dot` = true).
    Cond { pipe: Pipe, with: bool, then: Vec<Node>, otherwise: Vec<Node> },
    /// `{{range}}`.
    Range { pipe: Pipe, then: Vec<Node>, otherwise: Vec<Node> },
}

/// A pipeline, optionally declaring (`:=`) or assigning (`=`) variables.
#[derive(Debug, Clone)]
pub struct Pipe {
    /// Variables declared/assigned, without `$`.
    pub vars: Vec<String>,
    /// True for `:=`.
    pub decl: bool,
    /// Commands separated by `|`.
    pub cmds: Vec<Vec<Arg>>,
}

/// One operand of a command.
#[derive(Debug, Clone)]
pub enum Arg {
    /// `.a.b` (empty = `.`), at the byte offset Go reports for it.
    Field(Vec<String>, usize),
    /// `$x.a.b`, at the byte offset Go reports for it.
    Var(String, Vec<String>, usize),
    /// A function name, at its byte offset.
    Func(String, usize),
    /// String literal.
    Str(String),
    /// Integer literal.
    Int(i64),
    /// Float literal.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `nil`.
    Nil,
    /// `( pipeline ).a.b`.
    Sub(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Declare,
    Assign,
    Bar,
    LParen,
    RParen,
    Comma,
    Str(String),
    Num(String),
    Field(Vec<String>, usize),
    Var(String, Vec<String>, usize),
    Ident(String, usize),
}

/// Parse error with the template line it occurred on.
pub type PErr = (usize, String);

struct Action {
    line: usize,
    toks: Vec<Tok>,
}

enum Piece {
    Text(String),
    Act(Action),
}

fn split(src: &str) -> Result<Vec<Piece>, PErr> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut line = 1;
    while let Some(i) = rest.find("{{") {
        let mut text = &rest[..i];
        let mut after = &rest[i + 2..];
        let trim_left = after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
        if trim_left {
            text = text.trim_end();
            after = &after[1..];
        }
        if !text.is_empty() {
            out.push(Piece::Text(text.to_string()));
        }
        line += rest[..i].matches('\n').count();
        // Find the closing delimiter outside string literals.
        let (body, consumed) = find_close(after).ok_or((line, "unclosed action".to_string()))?;
        let mut body_s = body;
        let mut trim_right = false;
        if body_s.ends_with(" -") || body_s.ends_with("\t-") || body_s.ends_with("\n-") {
            body_s = &body_s[..body_s.len() - 1];
            trim_right = true;
        }
        let trimmed = body_s.trim();
        let base = src.len() - after.len() + (body_s.len() - body_s.trim_start().len());
        if !(trimmed.starts_with("/*") && trimmed.ends_with("*/")) {
            out.push(Piece::Act(Action { line, toks: lex(trimmed, base).map_err(|e| (line, e))? }));
        }
        line += body.matches('\n').count();
        rest = &after[consumed..];
        if trim_right {
            let t = rest.trim_start();
            line += rest[..rest.len() - t.len()].matches('\n').count();
            rest = t;
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    Ok(out)
}

fn find_close(s: &str) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        match quote {
            Some(q) => {
                if b[i] == b'\\' && q != b'`' {
                    i += 1;
                } else if b[i] == q {
                    quote = None;
                }
            }
            None => {
                if b[i] == b'"' || b[i] == b'`' || b[i] == b'\'' {
                    quote = Some(b[i]);
                } else if s[i..].starts_with("}}") {
                    return Some((&s[..i], i + 2));
                }
            }
        }
        i += 1;
    }
    None
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Lexes one action body starting at byte `base` of the template. Positions are those Go's
/// parser gives the nodes: a variable with fields and a field chain report their last link's
/// chain start (`$x.a.b` at `.a`, `.a.b` at `.b`), everything else its first byte.
fn lex(s: &str, base: usize) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = s.chars().collect();
    let at: Vec<usize> = s.char_indices().map(|(b, _)| base + b).chain(std::iter::once(base + s.len())).collect();
    let mut i = 0;
    let mut toks = Vec::new();
    let fields = |i: &mut usize| -> Vec<String> {
        let mut f = Vec::new();
        while *i < cs.len() && cs[*i] == '.' && *i + 1 < cs.len() && ident_char(cs[*i + 1]) {
            *i += 1;
            let st = *i;
            while *i < cs.len() && ident_char(cs[*i]) {
                *i += 1;
            }
            f.push(cs[st..*i].iter().collect());
        }
        f
    };
    while i < cs.len() {
        let c = cs[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            ':' if cs.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            '|' => {
                toks.push(Tok::Bar);
                i += 1;
            }
            '(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                i += 1;
                let st = i;
                let f = fields(&mut i);
                toks.push(Tok::RParen);
                if !f.is_empty() {
                    toks.push(Tok::Field(f, at[st]));
                }
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            '"' => {
                i += 1;
                let mut v = String::new();
                loop {
                    let Some(&ch) = cs.get(i) else { return Err("unterminated quoted string".into()) };
                    i += 1;
                    match ch {
                        '"' => break,
                        '\\' => {
                            let e = *cs.get(i).ok_or("unterminated quoted string")?;
                            i += 1;
                            v.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '0' => '\0',
                                other => other,
                            });
                        }
                        _ => v.push(ch),
                    }
                }
                toks.push(Tok::Str(v));
            }
            '`' => {
                i += 1;
                let st = i;
                while i < cs.len() && cs[i] != '`' {
                    i += 1;
                }
                if i >= cs.len() {
                    return Err("unterminated raw quoted string".into());
                }
                toks.push(Tok::Str(cs[st..i].iter().collect()));
                i += 1;
            }
            '$' => {
                let dollar = i;
                i += 1;
                let st = i;
                while i < cs.len() && ident_char(cs[i]) {
                    i += 1;
                }
                let name: String = cs[st..i].iter().collect();
                let chain = i;
                let f = fields(&mut i);
                toks.push(Tok::Var(name, f.clone(), if f.is_empty() { at[dollar] } else { at[chain] }));
            }
            '.' if cs.get(i + 1).is_some_and(|c| ident_char(*c) && !c.is_ascii_digit()) => {
                let first = i;
                let second = cs[i + 1..].iter().position(|c| *c == '.').map_or(first, |k| i + 1 + k);
                let f = fields(&mut i);
                toks.push(Tok::Field(f.clone(), if f.len() > 1 { at[second] } else { at[first] }));
            }
            '.' => {
                toks.push(Tok::Field(Vec::new(), at[i]));
                i += 1;
            }
            c if c.is_ascii_digit() || ((c == '-' || c == '+') && cs.get(i + 1).is_some_and(char::is_ascii_digit)) => {
                let st = i;
                i += 1;
                while i < cs.len()
                    && (cs[i].is_ascii_alphanumeric()
                        || cs[i] == '.'
                        || cs[i] == '_'
                        || ((cs[i] == '-' || cs[i] == '+') && matches!(cs[i - 1], 'e' | 'E')))
                {
                    i += 1;
                }
                toks.push(Tok::Num(cs[st..i].iter().collect()));
            }
            c if ident_char(c) => {
                let st = i;
                while i < cs.len() && ident_char(cs[i]) {
                    i += 1;
                }
                toks.push(Tok::Ident(cs[st..i].iter().collect(), at[st]));
            }
            other => return Err(format!("unexpected {other:?} in command")),
        }
    }
    Ok(toks)
}

/// Known function names (checked at parse time, like Go's "function %q not defined").
pub const FUNCS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    "slice",
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "toDuration",
    "parseDuration",
    "pathPrefix",
    "externalURL",
    "stripPort",
    "stripDomain",
    "now",
];

struct Parser {
    pieces: std::vec::IntoIter<Piece>,
    scopes: Vec<Vec<String>>,
    line: usize,
}

enum Stop {
    Eof,
    End,
    Else(Vec<Tok>),
}

/// Parses template text; `predeclared` variables (without `$`) are in scope.
pub fn parse(src: &str, predeclared: &[&str]) -> Result<Vec<Node>, PErr> {
    let pieces = split(src)?;
    let mut root: Vec<String> = vec![String::new()];
    root.extend(predeclared.iter().map(|s| (*s).to_string()));
    let mut p = Parser { pieces: pieces.into_iter(), scopes: vec![root], line: 1 };
    let (nodes, end) = p.list()?;
    match end {
        Stop::Eof => Ok(nodes),
        Stop::End => Err((p.line, "unexpected {{end}}".into())),
        Stop::Else(_) => Err((p.line, "unexpected {{else}}".into())),
    }
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, Stop), PErr> {
        let mut nodes = Vec::new();
        while let Some(piece) = self.pieces.next() {
            let act = match piece {
                Piece::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Piece::Act(a) => a,
            };
            self.line = act.line;
            let mut toks = act.toks;
            match toks.first() {
                Some(Tok::Ident(k, _)) if k == "end" => return Ok((nodes, Stop::End)),
                Some(Tok::Ident(k, _)) if k == "else" => {
                    toks.remove(0);
                    return Ok((nodes, Stop::Else(toks)));
                }
                Some(Tok::Ident(k, _)) if k == "if" || k == "with" || k == "range" => {
                    let kw = k.clone();
                    toks.remove(0);
                    nodes.push(self.control(&kw, toks)?);
                }
                Some(Tok::Ident(k, _))
                    if ["define", "template", "block", "break", "continue"].contains(&k.as_str()) =>
                {
                    return Err((self.line, format!("{{{{{k}}}}} is not supported in rule templates")));
                }
                None => return Err((self.line, "missing value for command".into())),
                _ => {
                    let pipe = self.pipe(toks, false)?;
                    nodes.push(Node::Action(pipe));
                }
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn control(&mut self, kw: &str, toks: Vec<Tok>) -> Result<Node, PErr> {
        self.scopes.push(Vec::new());
        let pipe = self.pipe(toks, kw == "range")?;
        let (then, end) = self.list()?;
        self.scopes.pop();
        let otherwise = match end {
            Stop::Eof => return Err((self.line, format!("unexpected EOF in {kw}"))),
            Stop::End => Vec::new(),
            Stop::Else(rest) if rest.is_empty() => {
                self.scopes.push(Vec::new());
                let (nodes, end) = self.list()?;
                self.scopes.pop();
                if !matches!(end, Stop::End) {
                    return Err((self.line, format!("expected end; found else or EOF in {kw}")));
                }
                nodes
            }
            Stop::Else(mut rest) => {
                // `else if …` / `else with …` chain: one nested node sharing our end.
                let Some(Tok::Ident(k2, _)) = rest.first().cloned() else {
                    return Err((self.line, "unexpected tokens after else".into()));
                };
                if k2 != "if" && k2 != "with" {
                    return Err((self.line, "unexpected tokens after else".into()));
                }
                rest.remove(0);
                vec![self.control(&k2, rest)?]
            }
        };
        Ok(match kw {
            "range" => Node::Range { pipe, then, otherwise },
            _ => Node::Cond { pipe, with: kw == "with", then, otherwise },
        })
    }

    fn pipe(&mut self, toks: Vec<Tok>, range: bool) -> Result<Pipe, PErr> {
        let mut vars = Vec::new();
        let mut decl = false;
        let mut toks = toks;
        // Look for `$a :=`, `$a, $b :=` (range) or `$a =`.
        let split_at = toks.iter().position(|t| matches!(t, Tok::Declare | Tok::Assign));
        if let Some(k) = split_at {
            let head: Vec<Tok> = toks.drain(..=k).collect();
            decl = matches!(head[k], Tok::Declare);
            for t in &head[..k] {
                match t {
                    Tok::Var(v, f, _) if f.is_empty() => vars.push(v.clone()),
                    Tok::Comma if range => {}
                    _ => return Err((self.line, "unexpected token in variable declaration".into())),
                }
            }
            if vars.is_empty() || vars.len() > if range { 2 } else { 1 } {
                return Err((self.line, "too many declarations".into()));
            }
            if !decl {
                for v in &vars {
                    self.check_var(v)?;
                }
            }
        }
        let mut pos = 0;
        let p = self.pipe_toks(&toks, &mut pos)?;
        if pos != toks.len() {
            return Err((self.line, format!("unexpected {:?} in operand", toks[pos])));
        }
        if decl {
            self.scopes.last_mut().expect("scope").extend(vars.iter().cloned());
        }
        Ok(Pipe { vars, decl, cmds: p })
    }

    fn check_var(&self, v: &str) -> Result<(), PErr> {
        if self.scopes.iter().any(|s| s.iter().any(|x| x == v)) {
            Ok(())
        } else {
            Err((self.line, format!("undefined variable \"${v}\"")))
        }
    }

    fn pipe_toks(&self, toks: &[Tok], pos: &mut usize) -> Result<Vec<Vec<Arg>>, PErr> {
        let mut cmds = Vec::new();
        let mut cmd = Vec::new();
        while *pos < toks.len() {
            let t = toks[*pos].clone();
            *pos += 1;
            match t {
                Tok::Bar => {
                    if cmd.is_empty() {
                        return Err((self.line, "missing command".into()));
                    }
                    cmds.push(std::mem::take(&mut cmd));
                }
                Tok::RParen => {
                    *pos -= 1;
                    break;
                }
                Tok::LParen => {
                    let inner = self.pipe_toks(toks, pos)?;
                    if toks.get(*pos) != Some(&Tok::RParen) {
                        return Err((self.line, "unclosed left paren".into()));
                    }
                    *pos += 1;
                    let f = match toks.get(*pos) {
                        Some(Tok::Field(f, _)) => {
                            *pos += 1;
                            f.clone()
                        }
                        _ => Vec::new(),
                    };
                    cmd.push(Arg::Sub(Box::new(Pipe { vars: Vec::new(), decl: false, cmds: inner }), f));
                }
                Tok::Str(s) => cmd.push(Arg::Str(s)),
                Tok::Num(n) => cmd.push(parse_num(&n).ok_or((self.line, format!("bad number syntax: {n:?}")))?),
                Tok::Field(f, at) => cmd.push(Arg::Field(f, at)),
                Tok::Var(v, f, at) => {
                    self.check_var(&v)?;
                    cmd.push(Arg::Var(v, f, at));
                }
                Tok::Ident(id, at) => cmd.push(match id.as_str() {
                    "true" => Arg::Bool(true),
                    "false" => Arg::Bool(false),
                    "nil" => Arg::Nil,
                    f if FUNCS.contains(&f) => Arg::Func(id, at),
                    _ => return Err((self.line, format!("function {id:?} not defined"))),
                }),
                Tok::Declare | Tok::Assign | Tok::Comma => {
                    return Err((self.line, "unexpected token in command".into()));
                }
            }
        }
        if cmd.is_empty() {
            return Err((self.line, "missing value for command".into()));
        }
        cmds.push(cmd);
        Ok(cmds)
    }
}

fn parse_num(n: &str) -> Option<Arg> {
    let clean = n.replace('_', "");
    if let Some(h) = clean.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).ok().map(Arg::Int);
    }
    if let Ok(i) = clean.parse::<i64>() {
        return Some(Arg::Int(i));
    }
    clean.parse::<f64>().ok().map(Arg::Float)
}
