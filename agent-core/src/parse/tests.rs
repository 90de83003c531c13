//! Unit tests: happy paths on real exporter output, and every error a user can see.

use super::*;
use crate::encode::encode;
use crate::model::{MetricType, Sample, Suffix};

fn text(s: &str) -> Result<Vec<MetricFamily>, ParseError> {
    parse(s.as_bytes(), Format::Text, &Limits::default())
}

fn om(s: &str) -> Result<Vec<MetricFamily>, ParseError> {
    parse(s.as_bytes(), Format::OpenMetrics, &Limits::default())
}

/// Checks each `(input, message)` pair: the input must fail with exactly that message.
fn assert_errors(format: Format, limits: &Limits, cases: &[(&str, &str)]) {
    let mut bad = Vec::new();
    for (input, want) in cases {
        match parse(input.as_bytes(), format, limits) {
            Ok(f) => bad.push(format!("{input:?}: parsed, want error {want:?}: {f:?}")),
            Err(e) if e.to_string() == *want => {}
            Err(e) => bad.push(format!("{input:?}:\n   got {:?}\n  want {want:?}", e.to_string())),
        }
    }
    assert!(bad.is_empty(), "{} of {} cases wrong:\n{}", bad.len(), cases.len(), bad.join("\n"));
}

fn sample(suffix: Suffix, labels: &[(&str, &str)], value: f64, ts: Option<i64>) -> Sample {
    let mut s = Sample::new(labels.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(), value);
    s.suffix = suffix;
    s.timestamp_ms = ts;
    s
}

const E2E: &str = "../../shared/conformance/node_exporter/fixtures/e2e-output.txt";

#[test]
fn node_exporter_e2e_output_parses_as_text() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(E2E);
    let input = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let fams = parse(&input, Format::Text, &Limits::default()).unwrap();
    let types = input.split(|&b| b == b'\n').filter(|l| l.starts_with(b"# TYPE ")).count();
    assert_eq!(fams.len(), types);
    let samples: usize = fams.iter().map(|f| f.samples.len()).sum();
    let lines = input.split(|&b| b == b'\n').filter(|l| !l.is_empty() && !l.starts_with(b"#")).count();
    assert_eq!(samples, lines);
    let cpu = fams.iter().find(|f| f.name == "node_cpu_seconds_total").unwrap();
    assert_eq!(cpu.kind, MetricType::Counter);
    assert!(cpu.samples.iter().all(|s| s.label("cpu").is_some() && s.label("mode").is_some()));
    // Re-encoding what we parsed and parsing again gives the same families.
    let mut out = Vec::new();
    encode(&mut out, &fams, Format::Text);
    assert_eq!(parse(&out, Format::Text, &Limits::default()).unwrap(), fams);
    let mut om_out = Vec::new();
    encode(&mut om_out, &fams, Format::OpenMetrics);
    let back = parse(&om_out, Format::OpenMetrics, &Limits::default()).unwrap();
    assert_eq!(back.len(), fams.len());
}

#[test]
fn text_summary_histogram_and_untyped() {
    let input = r#"# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 3.8386e-05
go_gc_duration_seconds{quantile="1"} 0.000118197
go_gc_duration_seconds_sum 0.00237
go_gc_duration_seconds_count 31
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{handler="/",le="0.1"} 3
http_request_duration_seconds_bucket{handler="/",le="+Inf"} 4
http_request_duration_seconds_sum{handler="/"} 0.5
http_request_duration_seconds_count{handler="/"} 4
node_textfile_thing{b="2",a="1"} -Inf 1395066363000
  other_metric	 NaN
"#;
    let f = text(input).unwrap();
    assert_eq!(f.len(), 4);
    assert_eq!(f[0].help, "A summary of the GC invocation durations.");
    assert_eq!(f[0].samples[0], sample(Suffix::None, &[("quantile", "0.0")], 3.8386e-05, None));
    assert_eq!(f[0].samples[3].suffix, Suffix::Count);
    assert_eq!(f[1].kind, MetricType::Histogram);
    assert_eq!(f[1].samples[0], sample(Suffix::Bucket, &[("handler", "/"), ("le", "0.1")], 3.0, None));
    assert_eq!(f[1].samples[2].suffix, Suffix::Sum);
    assert_eq!(f[2].name, "node_textfile_thing");
    assert_eq!(f[2].kind, MetricType::Untyped);
    assert_eq!(
        f[2].samples[0],
        sample(Suffix::None, &[("a", "1"), ("b", "2")], f64::NEG_INFINITY, Some(1_395_066_363_000))
    );
    assert!(f[3].samples[0].value.is_nan());
}

#[test]
fn text_tolerates_what_client_golang_tolerates() {
    // Blank lines, other comments, blanks inside label sets, a trailing comma, no final newline,
    // HELP after samples, and samples interleaved with another family (merged).
    let input = "\n# just a comment\n#\na { x = \"1\" , } 1\nb 2\n# HELP a late help\na{x=\"2\"}3 -5";
    let f = text(input).unwrap();
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].help, "late help");
    assert_eq!(f[0].samples.len(), 2);
    assert_eq!(f[0].samples[1], sample(Suffix::None, &[("x", "2")], 3.0, Some(-5)));
    assert_eq!(f[1].name, "b");
}

#[test]
fn text_escapes_and_empty_help() {
    let f = text("# HELP a x\\\\y\\nz \"q\"\n# HELP b\na{l=\"\\\"\\\\\\n€\"} 1\n").unwrap();
    assert_eq!(f[0].help, "x\\y\nz \"q\"");
    assert_eq!(f[0].samples[0].labels[0].1, "\"\\\n€");
    assert_eq!(f[1].help, "");
}

#[test]
fn text_suffix_resolution_prefers_exact_names() {
    let f = text("# TYPE x summary\n# TYPE x_sum gauge\nx_sum 1\nx_count 2\ny_sum 3\n").unwrap();
    assert_eq!(f.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["x", "x_sum", "y_sum"]);
    assert_eq!(f[1].samples.len(), 1);
    assert_eq!(f[0].samples[0].suffix, Suffix::Count);
    // A summary has no `_bucket`: it starts an untyped family.
    let f = text("# TYPE x summary\nx_bucket 1\n").unwrap();
    assert_eq!((f[1].name.as_str(), f[1].kind), ("x_bucket", MetricType::Untyped));
}

#[test]
fn floats_follow_go_parsefloat() {
    let ok = [
        ("1", 1.0),
        ("-0", -0.0),
        ("+1.5e3", 1500.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("1E-2", 0.01),
        ("inf", f64::INFINITY),
        ("-Infinity", f64::NEG_INFINITY),
        ("+Inf", f64::INFINITY),
        ("5e-324", 5e-324),
        ("1e-400", 0.0),
    ];
    for (tok, want) in ok {
        let f = text(&format!("x {tok}\n")).unwrap();
        assert_eq!(f[0].samples[0].value.to_bits(), want.to_bits(), "{tok}");
    }
    assert!(text("x nan\n").unwrap()[0].samples[0].value.is_nan());
    for bad in ["0x1p3", "1_000", "+NaN", "-nan", ".", "e5", "1e", "1.2.3", "--1", "Inf1", "0x10"] {
        let e = text(&format!("x {bad}\n")).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::InvalidValue(_)), "{bad}: {e}");
    }
}

#[test]
fn openmetrics_families_suffixes_and_timestamps() {
    let input = r#"# TYPE req counter
# HELP req Requests "served".\n
req_total{code="200"} 7 1520879607.789
req_created{code="200"} 1520430000.123
# TYPE req_seconds counter
# UNIT req_seconds seconds
req_seconds_total 1.0 -0.5 # {trace_id="abc"} 1.0 1520879607.7
# TYPE build info
build_info{version="1.2"} 1
# TYPE state stateset
state{state="a"} 1
# TYPE gh gaugehistogram
gh_bucket{le="1"} 1
gh_bucket{le="+Inf"} 2
gh_gsum 3
gh_gcount 2
# TYPE h histogram
h_bucket{le="0.5"} 1 # {} 0.3
h_created 1
# TYPE s summary
s{quantile="0.99"} 1
s_sum 1
s_count 1
# HELP nometa only help
nometa 1
loose 2
# EOF
"#;
    let f = om(input).unwrap();
    let names: Vec<_> = f.iter().map(|f| (f.name.as_str(), f.kind)).collect();
    assert_eq!(
        names,
        [
            ("req_total", MetricType::Counter),
            ("req_seconds_total", MetricType::Counter),
            ("build_info", MetricType::Info),
            ("state", MetricType::StateSet),
            ("gh", MetricType::GaugeHistogram),
            ("h", MetricType::Histogram),
            ("s", MetricType::Summary),
            ("nometa", MetricType::Untyped),
            ("loose", MetricType::Untyped),
        ]
    );
    assert_eq!(f[0].help, "Requests \"served\".\n");
    assert_eq!(f[0].samples[0], sample(Suffix::None, &[("code", "200")], 7.0, Some(1_520_879_607_789)));
    assert_eq!(f[0].samples[1], sample(Suffix::Created, &[("code", "200")], 1_520_430_000.123, None));
    assert_eq!(f[1].unit, "seconds");
    assert_eq!(f[1].samples[0].timestamp_ms, Some(-500));
    assert_eq!(f[2].samples[0].suffix, Suffix::None);
    assert_eq!(f[4].samples[0].labels[0].1, "1.0");
    assert_eq!(
        f[4].samples.iter().map(|s| s.suffix).collect::<Vec<_>>(),
        [Suffix::Bucket, Suffix::Bucket, Suffix::GSum, Suffix::GCount]
    );
    assert_eq!(f[5].samples[1].suffix, Suffix::Created);
    assert_eq!(f[7].help, "only help");
}

#[test]
fn openmetrics_timestamps_are_exact_decimal_seconds() {
    let cases = [
        ("1.001", 1001),
        ("1", 1000),
        ("1.0015", 1001),
        ("-1.0015", -1001),
        ("-0.001", -1),
        ("1e3", 1_000_000),
        ("1.5E-3", 1),
        ("0.0001", 0),
        ("+2", 2000),
        ("-9223372036854775.808", i64::MIN),
        ("9223372036854775.807", i64::MAX),
        ("0e999999999999999999999", 0),
    ];
    for (tok, ms) in cases {
        let f = om(&format!("x 1 {tok}\n# EOF\n")).unwrap();
        assert_eq!(f[0].samples[0].timestamp_ms, Some(ms), "{tok}");
    }
}

#[test]
fn openmetrics_eof_without_newline_and_empty_input() {
    assert!(om("# EOF").unwrap().is_empty());
    assert!(text("").unwrap().is_empty());
}

#[test]
fn text_errors_name_the_position_and_expectation() {
    assert_errors(
        Format::Text,
        &Limits::default(),
        &[
            ("1x 1", "line 1, column 1: expected metric name, found `1`"),
            ("x", "line 1, column 2: expected a sample value, found end of line"),
            ("x{} ", "line 1, column 5: expected a sample value, found end of line"),
            ("x+1", "line 1, column 2: expected `{` or a blank after the metric name, found `+`"),
            ("x{a=\"1\"", "line 1, column 8: expected `,` or `}` after label value, found end of line"),
            ("x{a=\"1} 1", "line 1, column 5: unterminated label value: missing closing `\"`"),
            ("x{a=1} 1", "line 1, column 5: expected `\"` to start the label value, found `1`"),
            ("x{a \"1\"} 1", "line 1, column 5: expected `=` after label name, found `\"`"),
            ("x{1a=\"1\"} 1", "line 1, column 3: expected label name or `}`, found `1`"),
            ("x{a=\"1\",,} 1", "line 1, column 9: expected label name or `}`, found `,`"),
            ("x{a=\"1\" b=\"2\"} 1", "line 1, column 9: expected `,` or `}` after label value, found `b`"),
            ("x{a=\"1\",a=\"2\"} 1", "line 1, column 9: duplicate label name `a`"),
            ("x{__name__=\"y\"} 1", "line 1, column 3: label name `__name__` is reserved"),
            (
                "x{a=\"\\t\"} 1",
                "line 1, column 6: invalid escape sequence `\\t`, only `\\\\`, `\\\"` and `\\n` are allowed",
            ),
            ("x{a=\"\\", "line 1, column 6: invalid escape sequence `\\`, only `\\\\`, `\\\"` and `\\n` are allowed"),
            ("x{a=\"é\"} 1 2 3", "line 1, column 14: expected end of line after the timestamp, found `3`"),
            (
                "x abc",
                "line 1, column 3: invalid sample value `abc`: expected a float such as `1`, `-2.5e-3`, `NaN` or `+Inf`",
            ),
            ("x 1e400", "line 1, column 3: value `1e400` is out of the float64 range"),
            ("x 1 1.5", "line 1, column 5: invalid timestamp `1.5`: expected an integer number of milliseconds"),
            (
                "x 1 99999999999999999999",
                "line 1, column 5: invalid timestamp `99999999999999999999`: expected an integer number of milliseconds",
            ),
            (
                "x 1\r\n",
                "line 1, column 3: invalid sample value `1\\r`: expected a float such as `1`, `-2.5e-3`, `NaN` or `+Inf`",
            ),
            ("# HELP x a\\tb", "line 1, column 11: invalid escape sequence `\\t`, only `\\\\` and `\\n` are allowed"),
            ("# HELP x a\\\"b", "line 1, column 11: invalid escape sequence `\\\"`, only `\\\\` and `\\n` are allowed"),
            ("# HELP x a\n# HELP x b", "line 2, column 8: second HELP line for metric family `x`"),
            ("# TYPE x gauge\n# TYPE x gauge", "line 2, column 8: second TYPE line for metric family `x`"),
            ("x 1\n# TYPE x gauge", "line 2, column 8: TYPE line for metric family `x` after its samples"),
            (
                "# TYPE x gauges",
                "line 1, column 10: unknown metric type `gauges`, expected one of `counter`, `gauge`, `histogram`, `summary`, `untyped`",
            ),
            (
                "# TYPE x Gauge",
                "line 1, column 10: unknown metric type `Gauge`, expected one of `counter`, `gauge`, `histogram`, `summary`, `untyped`",
            ),
            (
                "# TYPE x info",
                "line 1, column 10: unknown metric type `info`, expected one of `counter`, `gauge`, `histogram`, `summary`, `untyped`",
            ),
            ("# TYPE x gauge x", "line 1, column 16: expected end of line after the metric type, found `x`"),
            ("# TYPE x", "line 1, column 9: expected a blank and a metric type, found end of line"),
            ("# TYPE", "line 1, column 7: expected a blank and a metric name, found end of line"),
            ("# HELP 9", "line 1, column 8: expected metric name, found `9`"),
            ("# HELP x{", "line 1, column 9: expected a blank before the help text, found `{`"),
            (
                "# TYPE x histogram\nx 1",
                "line 2, column 1: sample `x` does not fit histogram `x`: expected a `_bucket`, `_sum` or `_count` suffix",
            ),
            (
                "# TYPE x histogram\nx_bucket 1",
                "line 2, column 1: histogram bucket sample `x_bucket` needs a `le` label",
            ),
            ("# TYPE x histogram\nx_bucket{le=\"x\"} 1", "line 2, column 13: `le` label value `x` is not a float"),
            (
                "# TYPE x summary\nx{q=\"1\"} 1",
                "line 2, column 1: summary quantile sample `x` needs a `quantile` label",
            ),
            ("# TYPE x summary\nx{quantile=\"\"} 1", "line 2, column 12: `quantile` label value `` is not a float"),
            (
                "a 1\n# EOF\n",
                "line 2, column 3: `# EOF` is not valid in the text format 0.0.4 (it ends OpenMetrics input)",
            ),
            ("a 1\n\n\nb\u{e9}\u{ff}", "line 4, column 2: expected `{` or a blank after the metric name, found `é`"),
            (
                "a{l=\"é\"} \u{1b}",
                "line 1, column 10: invalid sample value `\\u{1b}`: expected a float such as `1`, `-2.5e-3`, `NaN` or `+Inf`",
            ),
        ],
    );
}

#[test]
fn invalid_utf8_is_reported_with_its_position() {
    for format in [Format::Text, Format::OpenMetrics] {
        let e = parse(b"a 1\nb{l=\"\xc3\xa9\xff\"} 1\n", format, &Limits::default()).unwrap_err();
        assert_eq!(e.to_string(), "line 2, column 7: invalid UTF-8");
    }
}

#[test]
fn limits_are_enforced() {
    let limits = Limits { max_line_len: 20, max_labels: 2, max_name_len: 5, max_label_value_len: 3 };
    assert_errors(
        Format::Text,
        &limits,
        &[
            ("a 1\nx{a=\"1\",b=\"2\",c=\"3\"} 1", "line 2, column 1: line is longer than the limit of 20 bytes"),
            ("x{a=\"1\",b=\"2\",c=\"3\"}", "line 1, column 15: more than 2 labels"),
            ("abcdef 1", "line 1, column 1: name is longer than the limit of 5 bytes"),
            ("x{abcdef=\"1\"} 1", "line 1, column 3: name is longer than the limit of 5 bytes"),
            ("x{a=\"1234\"} 1", "line 1, column 5: label value is longer than the limit of 3 bytes"),
        ],
    );
    // Escapes count once unescaped: `\n\n\n` is three bytes.
    assert!(parse(b"x{a=\"\\n\\n\\n\"} 1", Format::Text, &limits).is_ok());
}

#[test]
fn openmetrics_errors_name_the_position_and_expectation() {
    let long = "a".repeat(128);
    let too_long = format!("# TYPE a counter\na_total 1 # {{x=\"{long}\"}} 1\n# EOF\n");
    let cases: &[(&str, &str)] = &[
        ("", "line 1, column 1: missing `# EOF` at the end of OpenMetrics input"),
        ("x 1\n", "line 2, column 1: missing `# EOF` at the end of OpenMetrics input"),
        ("x 1", "line 1, column 4: missing `# EOF` at the end of OpenMetrics input"),
        ("# EOF\nx 1\n", "line 2, column 1: unexpected content after `# EOF`"),
        ("# EOF\n\n", "line 2, column 1: unexpected content after `# EOF`"),
        ("# EOF \n", "line 1, column 1: expected `# HELP`, `# TYPE`, `# UNIT` or `# EOF`"),
        ("x 1\n\n# EOF\n", "line 2, column 1: empty line (not allowed in OpenMetrics)"),
        ("# some comment\n# EOF\n", "line 1, column 1: expected `# HELP`, `# TYPE`, `# UNIT` or `# EOF`"),
        ("#HELP x y\n# EOF\n", "line 1, column 1: expected `# HELP`, `# TYPE`, `# UNIT` or `# EOF`"),
        ("# TYPE x gauge \n# EOF\n", "line 1, column 15: expected end of line after the metric type, found ` `"),
        (
            "# TYPE x untyped\n# EOF\n",
            "line 1, column 10: unknown metric type `untyped`, expected one of `counter`, `gauge`, `histogram`, `gaugehistogram`, `stateset`, `info`, `summary`, `unknown`",
        ),
        ("# HELP x\n# EOF\n", "line 1, column 9: expected a space and the help text, found end of line"),
        (
            "# HELP x a\\tb\n# EOF\n",
            "line 1, column 11: invalid escape sequence `\\t`, only `\\\\`, `\\\"` and `\\n` are allowed",
        ),
        ("# HELP x a\n# HELP x b\n# EOF\n", "line 2, column 8: second HELP line for metric family `x`"),
        ("# UNIT x_s s\n# UNIT x_s s\n# EOF\n", "line 2, column 8: second UNIT line for metric family `x_s`"),
        (
            "# TYPE x gauge\n# UNIT x seconds\n# EOF\n",
            "line 2, column 10: unit `seconds` is not a suffix of metric family name `x`",
        ),
        (
            "# TYPE xseconds gauge\n# UNIT xseconds seconds\n# EOF\n",
            "line 2, column 17: unit `seconds` is not a suffix of metric family name `xseconds`",
        ),
        (
            "# UNIT x_bytes bytes\n# TYPE x_bytes info\n# EOF\n",
            "line 2, column 16: info metric family `x_bytes` must not have a unit",
        ),
        (
            "# TYPE x_bytes stateset\n# UNIT x_bytes bytes\n# EOF\n",
            "line 2, column 16: stateset metric family `x_bytes` must not have a unit",
        ),
        ("# UNIT x b-c\n# EOF\n", "line 1, column 11: expected a unit made of `[a-zA-Z0-9_:]` characters, found `-`"),
        (
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n# EOF\n",
            "line 5, column 1: metric family `a` reuses sample name `a` of the earlier gauge family `a`; OpenMetrics families must be contiguous and distinct",
        ),
        (
            "# TYPE a histogram\na_sum 1\n# TYPE a_sum gauge\n# EOF\n",
            "line 3, column 8: metric family `a_sum` reuses sample name `a_sum` of the earlier histogram family `a`; OpenMetrics families must be contiguous and distinct",
        ),
        (
            "# TYPE a_total gauge\n# TYPE a counter\n# EOF\n",
            "line 2, column 8: metric family `a` reuses sample name `a_total` of the earlier gauge family `a_total`; OpenMetrics families must be contiguous and distinct",
        ),
        (
            "# HELP a x\n# TYPE b gauge\n# HELP a y\n# EOF\n",
            "line 3, column 8: metric family `a` reuses sample name `a` of the earlier unknown family `a`; OpenMetrics families must be contiguous and distinct",
        ),
        (
            "# TYPE a gauge\n# TYPE a gauge\n# EOF\n",
            "line 2, column 8: metric family `a` reuses sample name `a` of the earlier gauge family `a`; OpenMetrics families must be contiguous and distinct",
        ),
        (
            "# TYPE a counter\na 1\n# EOF\n",
            "line 2, column 1: sample `a` does not fit counter `a`: expected a `_total` or `_created` suffix",
        ),
        (
            "# TYPE a info\na 1\n# EOF\n",
            "line 2, column 1: sample `a` does not fit info `a`: expected an `_info` suffix",
        ),
        (
            "# TYPE a histogram\na 1\n# EOF\n",
            "line 2, column 1: sample `a` does not fit histogram `a`: expected a `_bucket`, `_sum`, `_count` or `_created` suffix",
        ),
        (
            "# TYPE a gaugehistogram\na 1\n# EOF\n",
            "line 2, column 1: sample `a` does not fit gaugehistogram `a`: expected a `_bucket`, `_gsum` or `_gcount` suffix",
        ),
        (
            "# TYPE a histogram\na_bucket 1\n# EOF\n",
            "line 2, column 1: histogram bucket sample `a_bucket` needs a `le` label",
        ),
        (
            "# TYPE a summary\na{quantile=\"x\"} 1\n# EOF\n",
            "line 2, column 12: `quantile` label value `x` is not a float",
        ),
        ("x  1\n# EOF\n", "line 1, column 3: expected a sample value, found ` `"),
        ("x\n# EOF\n", "line 1, column 2: expected `{` or a space after the metric name, found end of line"),
        ("x{a=\"1\"}1\n# EOF\n", "line 1, column 9: expected a space before the sample value, found `1`"),
        ("x{a=\"1\",} 1\n# EOF\n", "line 1, column 9: expected label name, found `}`"),
        ("x{ a=\"1\"} 1\n# EOF\n", "line 1, column 3: expected label name or `}`, found ` `"),
        ("x{a=\"1\" } 1\n# EOF\n", "line 1, column 8: expected `,` or `}` after label value, found ` `"),
        ("x 1 \n# EOF\n", "line 1, column 5: expected a timestamp or an exemplar, found end of line"),
        (
            "x 1 NaN\n# EOF\n",
            "line 1, column 5: invalid timestamp `NaN`: expected seconds since the epoch as a decimal number, within ±2^63 ms",
        ),
        (
            "x 1 1e20\n# EOF\n",
            "line 1, column 5: invalid timestamp `1e20`: expected seconds since the epoch as a decimal number, within ±2^63 ms",
        ),
        ("x 1 1 2\n# EOF\n", "line 1, column 7: expected `#` starting an exemplar, found `2`"),
        (
            "x 1\r\n# EOF\n",
            "line 1, column 3: invalid sample value `1\\r`: expected a float such as `1`, `-2.5e-3`, `NaN` or `+Inf`",
        ),
        ("x -1e999\n# EOF\n", "line 1, column 3: value `-1e999` is out of the float64 range"),
        (
            "# TYPE a gauge\na 1 # {x=\"y\"} 1\n# EOF\n",
            "line 2, column 5: exemplars are only allowed on counter `_total` and histogram `_bucket` samples",
        ),
        (
            "# TYPE a counter\na_total 1 # x\n# EOF\n",
            "line 2, column 13: expected `{` starting the exemplar labels, found `x`",
        ),
        ("# TYPE a counter\na_total 1 #{}\n# EOF\n", "line 2, column 12: expected a space after `#`, found `{`"),
        (
            "# TYPE a counter\na_total 1 # {} \n# EOF\n",
            "line 2, column 16: expected an exemplar value, found end of line",
        ),
        (
            "# TYPE a counter\na_total 1 # {} 1 x\n# EOF\n",
            "line 2, column 18: invalid timestamp `x`: expected seconds since the epoch as a decimal number, within ±2^63 ms",
        ),
        (&too_long, "line 2, column 13: exemplar labels are longer than 128 characters"),
        (
            "# TYPE h gauge\n# TYPE h histogram\n# EOF\n",
            "line 2, column 8: histogram family `h` and the earlier gauge family `h` would both be named `h`",
        ),
        (
            "# TYPE c counter\n# TYPE c_total histogram\n# EOF\n",
            "line 2, column 8: histogram family `c_total` and the earlier counter family `c` would both be named `c_total`",
        ),
        (
            "# TYPE c_info histogram\n# TYPE c info\n# EOF\n",
            "line 2, column 8: info family `c` and the earlier histogram family `c_info` would both be named `c_info`",
        ),
    ];
    assert_errors(Format::OpenMetrics, &Limits::default(), cases);
}

#[test]
fn openmetrics_accepts_client_golang_gauge_and_counter_sharing_a_name() {
    let input = "# HELP m g\n# TYPE m gauge\nm 1\n# HELP m c\n# TYPE m counter\nm_total 2\n# EOF\n";
    let f = om(input).unwrap();
    assert_eq!(
        f.iter().map(|f| (f.name.as_str(), f.kind)).collect::<Vec<_>>(),
        [("m", MetricType::Gauge), ("m_total", MetricType::Counter)]
    );
    assert_eq!((f[0].help.as_str(), f[1].help.as_str()), ("g", "c"));
    // The same without samples (node_exporter's e2e output re-encoded).
    assert_eq!(om("# TYPE m gauge\n# TYPE m counter\n# EOF\n").unwrap().len(), 2);
}

#[test]
fn exemplar_of_exactly_128_characters_is_fine() {
    let v = "a".repeat(127);
    assert!(om(&format!("# TYPE a counter\na_total 1 # {{x=\"{v}\"}} 1\n# EOF\n")).is_ok());
}

#[test]
fn openmetrics_metadata_after_samples_starts_a_clashing_family() {
    let e = om("# TYPE x gauge\nx 1\n# HELP x late\n# EOF\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 3, column 8: metric family `x` reuses sample name `x` of the earlier gauge family `x`; OpenMetrics families must be contiguous and distinct"
    );
    // A counter whose samples lack `_total` (the common mistake of naming the family `x_total`).
    let e = om("# TYPE x_total counter\nx_total 1\n# EOF\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 2, column 1: sample `x_total` does not fit counter `x_total`: expected a `_total` or `_created` suffix"
    );
}

#[test]
fn default_limits_and_error_fields() {
    let l = Limits::default();
    assert_eq!((l.max_line_len, l.max_labels, l.max_name_len, l.max_label_value_len), (65_536, 128, 1024, 65_536));
    let e = text("ok 1\nbad{").unwrap_err();
    assert_eq!((e.line, e.column), (2, 5));
    assert_eq!(e.kind, ErrorKind::Expected { expected: "label name or `}`", found: Found::EndOfLine });
}
