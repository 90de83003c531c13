//! The template functions: Go's builtins and Prometheus's additions.
#![allow(clippy::many_single_char_names)] // d/h/m/s and Go fmt names read best short.

use std::fmt::Write as _;

use std::collections::BTreeMap;

use super::gofmt::{fmt_e, fmt_f, fmt_g};
use super::{Env, Value};

fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Bool(_) | Value::Nil | Value::Map(_) | Value::List(_) => Err(format!("can't convert {v} to float")),
        Value::Str(s) => parse_go_float(s).ok_or_else(|| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
    }
}

fn parse_go_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

fn to_str(v: &Value) -> String {
    v.to_string()
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() == n { Ok(()) } else { Err(format!("wrong number of args for {name}: want {n} got {}", args.len())) }
}

fn g4(v: f64) -> String {
    fmt_g(v, Some(4), false)
}

/// `humanize`: SI prefixes.
pub fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut v = v;
    if v.abs() >= 1.0 {
        let mut prefix = "";
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}", g4(v))
}

/// `humanize1024`: binary prefixes.
pub fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

/// `humanizeDuration`: seconds as `1d 2h 3m 4s` or sub-second units.
pub fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return "0s".into();
    }
    if v.abs() >= 1.0 {
        let (sign, v) = if v < 0.0 { ("-", -v) } else { ("", v) };
        let t = v as i64;
        let (s, m, h, d) = (t % 60, (t / 60) % 60, (t / 3600) % 24, t / 86400);
        return if d != 0 {
            format!("{sign}{d}d {h}h {m}m {s}s")
        } else if h != 0 {
            format!("{sign}{h}h {m}m {s}s")
        } else if m != 0 {
            format!("{sign}{m}m {s}s")
        } else {
            format!("{sign}{}s", g4(v))
        };
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

pub use agent_core::calendar::civil_from_days as civil;

/// `humanizeTimestamp`: Unix seconds as Go's `time.Time.String()` in UTC.
pub fn humanize_timestamp(v: f64) -> Result<String, String> {
    if v.is_nan() || v.is_infinite() {
        return Ok(g4(v));
    }
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            fmt_g(v, None, false)
        ));
    }
    let secs = v.floor() as i64;
    let mut nanos = ((v - v.floor()) * 1e9).round() as i64;
    let secs = if nanos >= 1_000_000_000 {
        nanos -= 1_000_000_000;
        secs + 1
    } else {
        secs
    };
    // Go converts float seconds with millisecond rounding in Prometheus (`timeFromUnixFloatSeconds`).
    let nanos = (nanos as f64 / 1e6).round() as i64 * 1_000_000;
    let (y, mo, d) = civil(secs.div_euclid(86400));
    let rem = secs.rem_euclid(86400);
    let mut out = format!("{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, (rem / 60) % 60, rem % 60);
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    Ok(out)
}

fn strip_port(s: &str) -> String {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((host, port)) = rest.split_once(']')
            && port.starts_with(':')
            && !port[1..].contains(':')
            && !host.is_empty()
        {
            return host.to_string();
        }
        return s.to_string();
    }
    match s.rsplit_once(':') {
        Some((host, _)) if !host.contains(':') => host.to_string(),
        _ => s.to_string(),
    }
}

fn strip_domain(s: &str) -> String {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']').map_or_else(|| s.to_string(), |_| s.to_string());
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (s, None),
        }
    };
    if host.parse::<std::net::IpAddr>().is_ok() {
        return s.to_string();
    }
    let short = host.split('.').next().unwrap_or(host);
    match port {
        Some(p) => format!("{short}:{p}"),
        None => short.to_string(),
    }
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_');
    }
    out
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn sample_of(v: &Value) -> Result<&BTreeMap<String, Value>, String> {
    match v {
        Value::Map(m) if m.contains_key("Labels") => Ok(m),
        other => Err(format!("expected a sample, got {other}")),
    }
}

fn label_of(v: &Value, name: &str) -> Result<String, String> {
    let s = sample_of(v)?;
    Ok(match s.get("Labels") {
        Some(Value::Map(l)) => l.get(name).map(to_str).unwrap_or_default(),
        _ => String::new(),
    })
}

fn cmp(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            to_float(a)?.partial_cmp(&to_float(b)?).ok_or_else(|| "incomparable NaN".to_string())
        }
        _ => Err("incompatible types for comparison".into()),
    }
}

/// Calls template function `name` with evaluated arguments.
pub fn call(name: &str, mut a: Vec<Value>, env: &Env<'_>) -> Result<Value, String> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let f1 = |a: &[Value]| -> Result<f64, String> {
        arity(name, a, 1)?;
        to_float(&a[0])
    };
    Ok(match name {
        "not" => {
            arity(name, &a, 1)?;
            Value::Bool(!a[0].truthy())
        }
        "len" => {
            arity(name, &a, 1)?;
            Value::Int(match &a[0] {
                Value::Str(s) => s.len(),
                Value::List(l) => l.len(),
                Value::Map(m) => m.len(),
                other => return Err(format!("len of type {other}")),
            } as i64)
        }
        "index" => {
            let mut v = a.first().cloned().unwrap_or(Value::Nil);
            for k in a.iter().skip(1) {
                v = match (v, k) {
                    (Value::Map(m), k) => m.get(&to_str(k)).cloned().unwrap_or(Value::Str(String::new())),
                    (Value::List(l), Value::Int(i)) => {
                        l.get(*i as usize).cloned().ok_or_else(|| format!("index out of range: {i}"))?
                    }
                    (other, _) => return Err(format!("can't index item of type {other}")),
                };
            }
            v
        }
        "eq" => {
            if a.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            let first = a[0].clone();
            Value::Bool(a[1..].iter().any(|b| cmp(&first, b).is_ok_and(|o| o == Equal)))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            arity(name, &a, 2)?;
            let o = cmp(&a[0], &a[1])?;
            Value::Bool(match name {
                "ne" => o != Equal,
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            })
        }
        "print" => {
            let mut s = String::new();
            for (i, v) in a.iter().enumerate() {
                if i > 0 && !matches!(v, Value::Str(_)) && !matches!(a[i - 1], Value::Str(_)) {
                    s.push(' ');
                }
                s.push_str(&to_str(v));
            }
            Value::Str(s)
        }
        "println" => Value::Str(a.iter().map(to_str).collect::<Vec<_>>().join(" ") + "\n"),
        "printf" => {
            if a.is_empty() {
                return Err("wrong number of args for printf".into());
            }
            let fmt = to_str(&a.remove(0));
            Value::Str(sprintf(&fmt, &a))
        }
        "html" => Value::Str(html_escape(&a.iter().map(to_str).collect::<String>())),
        "js" => Value::Str(
            a.iter().map(to_str).collect::<String>().replace('\\', "\\\\").replace('\'', "\\'").replace('"', "\\\""),
        ),
        "urlquery" => Value::Str(query_escape(&a.iter().map(to_str).collect::<String>())),
        "slice" => return Err("slice is not supported".into()),
        "query" => {
            arity(name, &a, 1)?;
            let q = env.query.ok_or("no query engine available")?;
            let res = q.query(&to_str(&a[0]))?;
            Value::List(res.iter().map(|(l, v)| Value::sample(l, *v)).collect())
        }
        "first" => match a.first() {
            Some(Value::List(l)) if !l.is_empty() => l[0].clone(),
            Some(Value::List(_)) => return Err("first() called on vector with no elements".into()),
            _ => return Err("first() needs a query result".into()),
        },
        "label" => {
            arity(name, &a, 2)?;
            Value::Str(label_of(&a[1], &to_str(&a[0]))?)
        }
        "value" => {
            arity(name, &a, 1)?;
            sample_of(&a[0])?.get("Value").cloned().unwrap_or(Value::Nil)
        }
        "strvalue" => {
            arity(name, &a, 1)?;
            Value::Str(label_of(&a[0], "__value__")?)
        }
        "sortByLabel" => {
            arity(name, &a, 2)?;
            let l = to_str(&a[0]);
            let Value::List(mut items) = a.remove(1) else { return Err("sortByLabel needs a query result".into()) };
            items.sort_by_key(|s| label_of(s, &l).unwrap_or_default());
            Value::List(items)
        }
        "args" => Value::Map(a.into_iter().enumerate().map(|(i, v)| (format!("arg{i}"), v)).collect()),
        "reReplaceAll" => {
            arity(name, &a, 3)?;
            let re = regex::Regex::new(&to_str(&a[0])).map_err(|e| e.to_string())?;
            Value::Str(re.replace_all(&to_str(&a[2]), to_str(&a[1]).as_str()).into_owned())
        }
        "match" => {
            arity(name, &a, 2)?;
            let re = regex::Regex::new(&to_str(&a[0])).map_err(|e| e.to_string())?;
            Value::Bool(re.is_match(&to_str(&a[1])))
        }
        "safeHtml" => Value::Str(to_str(a.first().unwrap_or(&Value::Nil))),
        "title" => Value::Str(title(&to_str(a.first().unwrap_or(&Value::Nil)))),
        "toUpper" => Value::Str(to_str(a.first().unwrap_or(&Value::Nil)).to_uppercase()),
        "toLower" => Value::Str(to_str(a.first().unwrap_or(&Value::Nil)).to_lowercase()),
        "graphLink" => {
            Value::Str(format!("/graph?g0.expr={}&g0.tab=0", query_escape(&to_str(a.first().unwrap_or(&Value::Nil)))))
        }
        "tableLink" => {
            Value::Str(format!("/graph?g0.expr={}&g0.tab=1", query_escape(&to_str(a.first().unwrap_or(&Value::Nil)))))
        }
        "humanize" => Value::Str(humanize(f1(&a)?)),
        "humanize1024" => Value::Str(humanize1024(f1(&a)?)),
        "humanizeDuration" | "toDuration" => Value::Str(humanize_duration(f1(&a)?)),
        "humanizePercentage" => Value::Str(format!("{}%", g4(f1(&a)? * 100.0))),
        "humanizeTimestamp" | "toTime" => Value::Str(humanize_timestamp(f1(&a)?)?),
        "parseDuration" => {
            arity(name, &a, 1)?;
            Value::Float(crate::duration::parse_duration(&to_str(&a[0]))?.as_secs_f64())
        }
        "pathPrefix" => {
            let u = env.external_url;
            let after_scheme = u.split_once("://").map_or(u, |(_, r)| r);
            Value::Str(after_scheme.find('/').map(|i| after_scheme[i..].to_string()).unwrap_or_default())
        }
        "externalURL" => Value::Str(env.external_url.to_string()),
        "stripPort" => Value::Str(strip_port(&to_str(a.first().unwrap_or(&Value::Nil)))),
        "stripDomain" => Value::Str(strip_domain(&to_str(a.first().unwrap_or(&Value::Nil)))),
        other => return Err(format!("function {other:?} not defined")),
    })
}

/// Go's `fmt.Sprintf` for the verbs templates use (`%s %v %d %f %e %g %x %q %t %%` with flags,
/// width and precision). Mismatches print Go-style `%!verb(type=value)`.
pub fn sprintf(fmt: &str, args: &[Value]) -> String {
    let cs: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut ai = 0;
    while i < cs.len() {
        if cs[i] != '%' {
            out.push(cs[i]);
            i += 1;
            continue;
        }
        i += 1;
        let (mut minus, mut plus, mut zero, mut space) = (false, false, false, false);
        while i < cs.len() && "-+0 #".contains(cs[i]) {
            match cs[i] {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                _ => {}
            }
            i += 1;
        }
        let num = |i: &mut usize| -> Option<usize> {
            let st = *i;
            while *i < cs.len() && cs[*i].is_ascii_digit() {
                *i += 1;
            }
            cs[st..*i].iter().collect::<String>().parse().ok()
        };
        let width = num(&mut i);
        let prec = if i < cs.len() && cs[i] == '.' {
            i += 1;
            Some(num(&mut i).unwrap_or(0))
        } else {
            None
        };
        let Some(&verb) = cs.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(ai) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        ai += 1;
        let num_str = |f: f64| -> Option<String> {
            Some(match verb {
                'f' | 'F' => fmt_f(f, prec.unwrap_or(6)),
                'e' | 'E' => fmt_e(f, prec.unwrap_or(6), verb == 'E'),
                'g' | 'G' => fmt_g(f, prec, verb == 'G'),
                'v' => fmt_g(f, None, false),
                _ => return None,
            })
        };
        let body = match (verb, arg) {
            ('d', Value::Int(n)) => n.to_string(),
            ('x', Value::Int(n)) => format!("{n:x}"),
            ('X', Value::Int(n)) => format!("{n:X}"),
            ('f' | 'F' | 'e' | 'E' | 'g' | 'G', Value::Int(n)) => {
                format!("%!{verb}(int={n})")
            }
            (_, Value::Float(f)) => {
                num_str(*f).unwrap_or_else(|| format!("%!{verb}(float64={})", fmt_g(*f, None, false)))
            }
            ('s' | 'v', v) => {
                let s = to_str(v);
                match prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                }
            }
            ('q', v) => format!("{:?}", to_str(v)),
            ('t', Value::Bool(b)) => b.to_string(),
            ('x', Value::Str(s)) => s.bytes().fold(String::new(), |mut o, b| {
                let _ = write!(o, "{b:02x}");
                o
            }),
            (_, v) => format!(
                "%!{verb}({}={v})",
                match v {
                    Value::Str(_) => "string",
                    Value::Bool(_) => "bool",
                    Value::Int(_) => "int",
                    _ => "value",
                }
            ),
        };
        let body = if (plus || space) && matches!(arg, Value::Int(_) | Value::Float(_)) && !body.starts_with('-') {
            format!("{}{body}", if plus { '+' } else { ' ' })
        } else {
            body
        };
        let w = width.unwrap_or(0);
        let len = body.chars().count();
        if len >= w {
            out.push_str(&body);
        } else if minus {
            out.push_str(&body);
            out.push_str(&" ".repeat(w - len));
        } else if zero && matches!(arg, Value::Int(_) | Value::Float(_)) {
            let (sign, digits) = if body.starts_with(['-', '+', ' ']) { body.split_at(1) } else { ("", body.as_str()) };
            out.push_str(sign);
            out.push_str(&"0".repeat(w - len));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(w - len));
            out.push_str(&body);
        }
    }
    if ai < args.len() {
        out.push_str("%!(EXTRA ");
        out.push_str(&args[ai..].iter().map(to_str).collect::<Vec<_>>().join(", "));
        out.push(')');
    }
    out
}
