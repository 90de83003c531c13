//! Parser for upstream's `promqltest` script language (see the conformance README).

pub use osprey_promql::series::{Point, SeriesLine, parse_float, parse_quoted, parse_series};

/// `expect` lines of an eval.
#[derive(Debug, Clone, Default)]
pub struct Expects {
    /// `expect fail [msg|regex]`.
    pub fail: Option<TextMatch>,
    /// `expect warn …` lines.
    pub warn: Vec<TextMatch>,
    /// `expect info …` lines.
    pub info: Vec<TextMatch>,
    /// `expect no_warn`.
    pub no_warn: bool,
    /// `expect no_info`.
    pub no_info: bool,
}

/// How an expected message is matched.
#[derive(Debug, Clone)]
pub enum TextMatch {
    /// `msg:` exact text.
    Exact(String),
    /// `regex:` (unanchored, Go RE2 syntax).
    Regex(regex::Regex),
    /// No text given: anything.
    Any,
}

/// One `eval` command.
#[derive(Debug, Clone)]
pub struct Eval {
    /// 1-based line number.
    pub line: usize,
    /// The query text.
    pub expr: String,
    /// Range query `(start, end, step)` in ms, or instant at `start`.
    pub range: Option<(i64, i64, i64)>,
    /// Instant evaluation time (ms).
    pub at: i64,
    /// Must fail (`eval_fail` or `expect fail`).
    pub fail: bool,
    /// `expected_fail_message`.
    pub fail_message: Option<String>,
    /// `expected_fail_regexp`.
    pub fail_regexp: Option<regex::Regex>,
    /// `eval_warn`.
    pub warn: bool,
    /// `eval_info`.
    pub info: bool,
    /// Ordered comparison.
    pub ordered: bool,
    /// Newer `expect` lines.
    pub expects: Expects,
    /// `expect range vector from … to … step …` of an instant query.
    pub range_vector: Option<(i64, i64, i64)>,
    /// `expect string "…"`.
    pub string: Option<String>,
    /// A bare number: scalar result expected.
    pub scalar: Option<f64>,
    /// Expected series.
    pub series: Vec<SeriesLine>,
    /// Whether any expected value or the block text is a native histogram.
    pub has_histogram: bool,
}

/// A script command.
#[derive(Debug, Clone)]
pub enum Cmd {
    /// `clear`
    Clear,
    /// `load <step>` (with_nhcb flag) and its series.
    Load { step: i64, nhcb: bool, series: Vec<SeriesLine> },
    /// An evaluation.
    Eval(Box<Eval>),
}

/// Parses a Prometheus duration (`1h5m`, `50m`, `0`, `100ms`, `-1m`) into ms.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (neg, body) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    if body == "0" {
        return Ok(0);
    }
    let mut total: i64 = 0;
    let b = body.as_bytes();
    let mut i = 0;
    if b.is_empty() {
        return Err(format!("empty duration {s:?}"));
    }
    while i < b.len() {
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if st == i {
            return Err(format!("bad duration {s:?}"));
        }
        let n: i64 = body[st..i].parse().map_err(|_| format!("bad duration {s:?}"))?;
        let us = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let mult = match &body[us..i] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            u => return Err(format!("unknown unit {u:?} in duration {s:?}")),
        };
        total += n * mult;
    }
    Ok(if neg { -total } else { total })
}

fn parse_text_match(kind: Option<&str>, text: Option<&str>) -> Result<TextMatch, String> {
    match (kind, text) {
        (Some("msg"), Some(t)) => Ok(TextMatch::Exact(t.trim().to_string())),
        (Some("regex"), Some(t)) => regex::Regex::new(t.trim()).map(TextMatch::Regex).map_err(|e| e.to_string()),
        _ => Ok(TextMatch::Any),
    }
}

/// Parses a whole script.
pub fn parse_script(src: &str) -> Result<Vec<Cmd>, String> {
    let lines: Vec<String> =
        src.lines().map(|l| if l.trim().starts_with('#') { String::new() } else { l.trim().to_string() }).collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    let re_instant =
        regex::Regex::new(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$").expect("regex");
    let re_range =
        regex::Regex::new(r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$")
            .expect("regex");
    let re_expect = regex::Regex::new(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$")
        .expect("regex");
    let re_rv = regex::Regex::new(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$").expect("regex");
    while i < lines.len() {
        let l = &lines[i];
        let lineno = i + 1;
        let err = |m: String| format!("line {lineno}: {m}");
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = l.split_whitespace().next().unwrap_or("").to_lowercase();
        if word == "clear" {
            cmds.push(Cmd::Clear);
            i += 1;
        } else if word.starts_with("load") {
            let nhcb = word == "load_with_nhcb";
            let step = parse_duration(l.split_whitespace().nth(1).unwrap_or("")).map_err(err)?;
            let mut series = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                let sl = &lines[i];
                // `@st` lines (start timestamps) are not used by this engine.
                let first = sl.split_whitespace().next().unwrap_or("");
                if !first.ends_with("@st") && !sl.contains("}@st ") {
                    series.push(parse_series(sl).map_err(|m| format!("line {}: {m}", i + 1))?);
                }
                i += 1;
            }
            cmds.push(Cmd::Load { step, nhcb, series });
        } else if word.starts_with("eval") {
            let mut ev = Eval {
                line: lineno,
                expr: String::new(),
                range: None,
                at: 0,
                fail: false,
                fail_message: None,
                fail_regexp: None,
                warn: false,
                info: false,
                ordered: false,
                expects: Expects::default(),
                range_vector: None,
                string: None,
                scalar: None,
                series: Vec::new(),
                has_histogram: false,
            };
            let modifier;
            if let Some(c) = re_instant.captures(l) {
                modifier = c.get(1).map(|m| m.as_str().to_string());
                ev.at = parse_duration(c.get(2).map_or("0", |m| m.as_str())).map_err(err)?;
                ev.expr = c[3].to_string();
            } else if let Some(c) = re_range.captures(l) {
                modifier = c.get(1).map(|m| m.as_str().to_string());
                ev.range = Some((
                    parse_duration(&c[2]).map_err(err)?,
                    parse_duration(&c[3]).map_err(err)?,
                    parse_duration(&c[4]).map_err(err)?,
                ));
                ev.expr = c[5].to_string();
            } else {
                return Err(err(format!("invalid eval command {l:?}")));
            }
            match modifier.as_deref() {
                Some("fail") => ev.fail = true,
                Some("warn") => ev.warn = true,
                Some("info") => ev.info = true,
                Some("ordered") => ev.ordered = true,
                _ => {}
            }
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                let dl = lines[i].as_str();
                i += 1;
                if dl.contains("{{") {
                    ev.has_histogram = true;
                }
                if ev.fail && dl.starts_with("expected_fail_message") {
                    ev.fail_message = Some(dl["expected_fail_message".len()..].trim().to_string());
                    break;
                }
                if ev.fail && dl.starts_with("expected_fail_regexp") {
                    ev.fail_regexp =
                        Some(regex::Regex::new(dl["expected_fail_regexp".len()..].trim()).map_err(|e| e.to_string())?);
                    break;
                }
                if let Some(c) = re_rv.captures(dl) {
                    let rv = (
                        parse_duration(&c[1]).map_err(err)?,
                        parse_duration(&c[2]).map_err(err)?,
                        parse_duration(&c[3]).map_err(err)?,
                    );
                    ev.at = rv.1;
                    ev.range_vector = Some(rv);
                    continue;
                }
                if let Some(s) = dl.strip_prefix("expect string ") {
                    ev.string = Some(parse_quoted(s.trim())?.0);
                    continue;
                }
                if dl.split(' ').next() == Some("expect") {
                    let c = re_expect.captures(dl).ok_or_else(|| format!("line {i}: bad expect line"))?;
                    let tm = parse_text_match(c.get(2).map(|m| m.as_str()), c.get(3).map(|m| m.as_str()))?;
                    match &c[1] {
                        "ordered" => ev.ordered = true,
                        "fail" => {
                            ev.fail = true;
                            ev.expects.fail = Some(tm);
                        }
                        "warn" => ev.expects.warn.push(tm),
                        "info" => ev.expects.info.push(tm),
                        "no_warn" => ev.expects.no_warn = true,
                        _ => ev.expects.no_info = true,
                    }
                    continue;
                }
                if let Some(v) = parse_float(dl) {
                    ev.scalar = Some(v);
                    break;
                }
                ev.series.push(parse_series(dl).map_err(|m| format!("line {i}: {m}"))?);
            }
            cmds.push(Cmd::Eval(Box::new(ev)));
        } else {
            return Err(err(format!("invalid command {l:?}")));
        }
    }
    Ok(cmds)
}
