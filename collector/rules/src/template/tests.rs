//! Cases from Prometheus's `template/template_test.go` (expected outputs as the spec).
#![allow(clippy::needless_pass_by_value)]

use std::collections::BTreeMap;

use super::*;

struct Fixed(Vec<(BTreeMap<String, String>, f64)>);

impl TemplateQuery for Fixed {
    fn query(&self, _expr: &str) -> Result<Samples, String> {
        Ok(self.0.clone())
    }
}

fn lbl(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
}

fn run(text: &str, dot: &Value, q: &[(BTreeMap<String, String>, f64)]) -> Result<String, String> {
    let fixed = Fixed(q.to_vec());
    let env = Env { external_url: "http://testhost:9090/path/prefix", query: Some(&fixed) };
    Template::parse("test", text)?.execute(dot, &[], &env)
}

fn ok(text: &str, dot: Value, want: &str) {
    assert_eq!(run(text, &dot, &[]).as_deref(), Ok(want), "template {text:?}");
}

fn floats(v: &[f64]) -> Value {
    Value::List(v.iter().map(|f| Value::Float(*f)).collect())
}

fn ints(v: &[i64]) -> Value {
    Value::List(v.iter().map(|f| Value::Int(*f)).collect())
}

fn strs(v: &[&str]) -> Value {
    Value::List(v.iter().map(|s| Value::Str((*s).into())).collect())
}

#[test]
fn upstream_expansion_cases() {
    ok("plain text", Value::Nil, "plain text");
    ok("{{ 1 }}", Value::Nil, "1");
    ok("{{ \"<b>\" }}", Value::Nil, "<b>");
    ok("{{ \"<b>\" | safeHtml }}", Value::Nil, "<b>");
    ok("{{ .Foo }}", Value::Nil, "<no value>");
    ok("{{ reReplaceAll \"(a)b\" \"x$1\" \"ab\" }}", Value::Nil, "xa");
    ok("{{ range . }}{{ humanize . }}:{{ end }}", floats(&[0.0, 1.0, 1234567.0, 0.12]), "0:1:1.235M:120m:");
    ok("{{ range . }}{{ humanize . }}:{{ end }}", strs(&["0.0", "1.0", "1234567.0", ".12"]), "0:1:1.235M:120m:");
    ok("{{ range . }}{{ humanize . }}:{{ end }}", ints(&[0, -1, 1, 1234567, i64::MAX]), "0:-1:1:1.235M:9.223E:");
    ok("{{ range . }}{{ humanize1024 . }}:{{ end }}", floats(&[0.0, 1.0, 1048576.0, 0.12]), "0:1:1Mi:0.12:");
    ok("{{ range . }}{{ humanize1024 . }}:{{ end }}", ints(&[0, -1, 1, 1234567, i64::MAX]), "0:-1:1:1.177Mi:8Ei:");
    ok(
        "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
        floats(&[
            0.0,
            1.0,
            60.0,
            3600.0,
            86400.0,
            86400.0 + 3600.0,
            -(86400.0 * 2.0 + 3600.0 * 3.0 + 240.0 + 5.0),
            899.99,
        ]),
        "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:",
    );
    ok(
        "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
        floats(&[0.1, 0.0001, 0.12345, 60.1, 60.5, 1.2345, 12.345]),
        "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:",
    );
    ok("{{ range . }}{{ humanizeDuration . }}:{{ end }}", ints(&[0, -1, 1, 1234567]), "0s:-1s:1s:14d 6h 56m 7s:");
    ok(
        "{{ range . }}{{ humanize . }}:{{ humanize1024 . }}:{{ humanizeDuration . }}:{{humanizeTimestamp .}}:{{ end }}",
        floats(&[f64::INFINITY, f64::NEG_INFINITY, f64::NAN]),
        "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:",
    );
    ok(
        "{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}",
        Value::Nil,
        "-22.22%:0%:12.35%:123.5%",
    );
    ok(
        "{{ range . }}{{ humanizePercentage . }}:{{ end }}",
        ints(&[0, -1, 1, 1234567, i64::MAX]),
        "0%:-100%:100%:1.235e+08%:9.223e+20%:",
    );
    ok(
        "{{ range . }}{{ humanizeTimestamp . }}:{{ end }}",
        ints(&[0, -1, 1, 1234567, 9223372036]),
        "1970-01-01 00:00:00 +0000 UTC:1969-12-31 23:59:59 +0000 UTC:1970-01-01 00:00:01 +0000 UTC:1970-01-15 06:56:07 +0000 UTC:2262-04-11 23:47:16 +0000 UTC:",
    );
    ok("{{ 1435065584.128 | humanizeTimestamp }}", Value::Nil, "2015-06-23 13:19:44.128 +0000 UTC");
    ok("{{ \"aa bb CC\" | title }}", Value::Nil, "Aa Bb CC");
    ok("{{ \"aa bb CC\" | toUpper }}", Value::Nil, "AA BB CC");
    ok("{{ \"aA bB CC\" | toLower }}", Value::Nil, "aa bb cc");
    ok("{{ match \"a+\" \"aa\" }} {{ match \"a+\" \"b\" }}", Value::Nil, "true false");
    ok("{{ graphLink \"up\" }}", Value::Nil, "/graph?g0.expr=up&g0.tab=0");
    ok("{{ tableLink \"up\" }}", Value::Nil, "/graph?g0.expr=up&g0.tab=1");
    ok("{{ pathPrefix }}", Value::Nil, "/path/prefix");
    ok("{{ externalURL }}", Value::Nil, "http://testhost:9090/path/prefix");
    ok("{{ printf \"%0.2f\" (parseDuration \"1h2m10ms\") }}", Value::Nil, "3720.01");
    for (input, want) in [
        ("foo.example.com", "foo.example.com"),
        ("foo.example.com:12345", "foo.example.com"),
        ("192.0.2.1", "192.0.2.1"),
        ("192.0.2.1:12345", "192.0.2.1"),
        ("2001:0DB8::1", "2001:0DB8::1"),
        ("[2001:0DB8::1]:12345", "2001:0DB8::1"),
        ("[2001:0DB8::1]::12345", "[2001:0DB8::1]::12345"),
    ] {
        ok(&format!("{{{{ \"{input}\" | stripPort }}}}"), Value::Nil, want);
    }
    ok("{{ \"foo.example.com\" | stripDomain }}", Value::Nil, "foo");
    ok("{{ \"foo.example.com:12345\" | stripDomain }}", Value::Nil, "foo:12345");
}

#[test]
fn upstream_query_cases() {
    let a = lbl(&[("__name__", "metric"), ("instance", "a")]);
    let b = lbl(&[("__name__", "metric"), ("instance", "b")]);
    let one = [(a.clone(), 11.0)];
    assert_eq!(run("{{ query \"metric{instance='a'}\" | first | value }}", &Value::Nil, &one).unwrap(), "11");
    assert_eq!(run("{{ query \"x\" | first | label \"instance\" }}", &Value::Nil, &one).unwrap(), "a");
    assert_eq!(run("{{ query \"x\" | first | label \"foo\" }}", &Value::Nil, &one).unwrap(), "");
    assert_eq!(run("{{ $x := query \"metric\" | first }}{{ $x.Labels.foo }}", &Value::Nil, &one).unwrap(), "");
    let two = [(b, 21.0), (a, 11.0)];
    assert_eq!(
        run(
            "{{ range query \"metric\" | sortByLabel \"instance\" }}{{.Labels.instance}}:{{.Value}}: {{end}}",
            &Value::Nil,
            &two
        )
        .unwrap(),
        "a:11: b:21: "
    );
    let err = run("{{ query \"missing\" | first }}", &Value::Nil, &[]).unwrap_err();
    assert!(err.contains("error calling first: first() called on vector with no elements"), "{err}");
    let err = run("{{ (query \"missing\").banana }}", &Value::Nil, &[]).unwrap_err();
    assert!(err.contains("can't evaluate field banana in type template.queryResult"), "{err}");
}

#[test]
fn upstream_error_cases() {
    assert_eq!(Template::parse("test", "{{").unwrap_err(), "template: test:1: unclosed action");
    let err = run("{{ humanize \"one\" }}", &Value::Nil, &[]).unwrap_err();
    assert!(err.contains("error calling humanize: strconv.ParseFloat: parsing \"one\": invalid syntax"), "{err}");
    let err = run("{{ range . }}{{ humanizeTimestamp . }}:{{ end }}", &ints(&[i64::MIN]), &[]).unwrap_err();
    assert!(err.contains("-9.223372036854776e+18 cannot be represented as a nanoseconds timestamp"), "{err}");
    assert_eq!(
        Template::parse_rule_template("__alert_InstanceDown", "Instance {{ $label.foo }} down").unwrap_err(),
        "template: __alert_InstanceDown:1: undefined variable \"$label\""
    );
}

#[test]
fn control_flow_and_variables() {
    let labels = lbl(&[("instance", "host:9100"), ("job", "node")]);
    let ext = lbl(&[("cluster", "eu")]);
    let d = AlertTemplateData { labels: &labels, external_labels: &ext, external_url: "http://x/", value: 0.75 };
    let t = "{{ if gt $value 0.5 }}high {{ $labels.instance | stripPort }}{{ else if eq $value 0.0 }}zero{{ else }}low{{ end }} {{ $externalLabels.cluster }} {{ humanizePercentage $value }} {{- \" trimmed\" }}";
    assert_eq!(expand_alert_template("t", t, &d, None), "high host eu 75% trimmed");
    let t = "{{ with $labels.job }}job={{ . }}{{ end }}{{ range $k, $v := $labels }} {{ $k }}={{ $v }}{{ end }}{{/* comment */}}";
    assert_eq!(expand_alert_template("t", t, &d, None), "job=node instance=host:9100 job=node");
    assert_eq!(expand_alert_template("t", "{{ printf \"%.1f%% on %s\" 12.345 \"x\" }}", &d, None), "12.3% on x");
    assert_eq!(
        expand_alert_template("t", "{{ $value }} {{ .Value }} {{ 1e6 }} {{ 1234567.0 }}", &d, None),
        "0.75 0.75 1e+06 1.234567e+06"
    );
}

#[test]
fn template_error_renders_visible_string_never_panics() {
    let labels = BTreeMap::new();
    let d = AlertTemplateData { labels: &labels, external_labels: &labels, external_url: "", value: 1.0 };
    let out = expand_alert_template("__alert_X", "{{ query \"up\" | first }}", &d, None);
    assert!(out.starts_with("<error expanding template: error executing template __alert_X: template: "), "{out}");
    let out = expand_alert_template("__alert_X", "{{ if }}", &d, None);
    assert!(
        out.starts_with("<error expanding template: error parsing template __alert_X: template: __alert_X:1:"),
        "{out}"
    );
    for bad in
        ["{{", "{{ end }}", "{{ range }}", "{{ (", "{{ $x := }}", "{{ \"unterminated }}", "{{ 1 | 2 }}", "}}{{else}}"]
    {
        let out = expand_alert_template("__alert_X", bad, &d, None);
        assert!(out.starts_with("<error expanding template"), "{bad:?} -> {out}");
    }
}

#[test]
fn execution_errors_name_line_column_and_node_like_go() {
    // Texts from the real promtool 2.42 (the column counts Prometheus's prepended definitions).
    let labels = lbl(&[("instance", "a")]);
    let d = AlertTemplateData { labels: &labels, external_labels: &labels, external_url: "", value: 1.0 };
    assert_eq!(
        expand_alert_template("__alert_HostDown", "{{ $labels.nope.deeper }}", &d, None),
        "<error expanding template: error executing template __alert_HostDown: template: __alert_HostDown:1:122: executing \"__alert_HostDown\" at <$labels.nope.deeper>: can't evaluate field deeper in type string>"
    );
    let err =
        run("x\n {{ .a.b.c }}", &Value::Map(BTreeMap::from([("a".into(), Value::Str("s".into()))])), &[]).unwrap_err();
    assert_eq!(err, "template: test:2:6: executing \"test\" at <.a.b.c>: can't evaluate field b in type string");
    let err = run("{{ query \"missing\" | first }}", &Value::Nil, &[]).unwrap_err();
    assert_eq!(
        err,
        "template: test:1:21: executing \"test\" at <first>: error calling first: first() called on vector with no elements"
    );
    let err = run("{{ humanize \"one\" }}", &Value::Nil, &[]).unwrap_err();
    assert_eq!(
        err,
        "template: test:1:3: executing \"test\" at <humanize \"one\">: error calling humanize: strconv.ParseFloat: parsing \"one\": invalid syntax"
    );
}
