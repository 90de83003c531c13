//! Go's number formatting (`%v`, `%g`, `%e`, `%f` of `fmt`), needed so rendered annotations
//! match what Prometheus prints byte for byte.

/// Decimal digits and exponent of `v` (v = 0.d1d2… × 10^(exp+1)); `prec` significant digits or shortest.
fn digits(v: f64, prec: Option<usize>) -> (String, i32) {
    let s = match prec {
        Some(p) => format!("{:.*e}", p.saturating_sub(1), v.abs()),
        None => format!("{:e}", v.abs()),
    };
    let (m, e) = s.split_once('e').expect("exponent");
    let exp: i32 = e.parse().expect("exponent");
    (m.replace('.', ""), exp)
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v.is_infinite() {
        Some(if v > 0.0 { "+Inf".into() } else { "-Inf".into() })
    } else {
        None
    }
}

fn exp_form(neg: bool, d: &str, exp: i32, upper: bool) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(&d[..1]);
    if d.len() > 1 {
        out.push('.');
        out.push_str(&d[1..]);
    }
    out.push(if upper { 'E' } else { 'e' });
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
    out
}

fn fixed_form(neg: bool, d: &str, exp: i32) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(d);
    } else {
        let int_len = (exp + 1) as usize;
        if d.len() <= int_len {
            out.push_str(d);
            for _ in d.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&d[..int_len]);
            out.push('.');
            out.push_str(&d[int_len..]);
        }
    }
    out
}

/// Go `%g` with optional precision (`%v` of a float64 is `fmt_g(v, None)`).
pub fn fmt_g(v: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let prec = prec.map(|p| p.max(1));
    let (d, exp) = digits(v, prec);
    let d = d.trim_end_matches('0');
    let d = if d.is_empty() { "0" } else { d };
    // strconv: the shortest form decides with precision 6.
    let eprec = prec.map_or(6, |p| p as i32);
    let neg = v < 0.0;
    if exp < -4 || exp >= eprec { exp_form(neg, d, exp, upper) } else { fixed_form(neg, d, exp) }
}

/// Go `%e` with precision (default 6).
pub fn fmt_e(v: f64, prec: usize, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let (d, exp) = digits(v, Some(prec + 1));
    let exp = if v == 0.0 { 0 } else { exp };
    exp_form(v < 0.0 || (v == 0.0 && v.is_sign_negative()), &d, exp, upper)
}

/// Go `%f` with precision (default 6).
pub fn fmt_f(v: f64, prec: usize) -> String {
    special(v).unwrap_or_else(|| format!("{v:.prec$}"))
}
