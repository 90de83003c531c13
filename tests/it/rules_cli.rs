//! `osprey-collector check rules` / `test rules` against the real `promtool` on upstream's rule
//! test files (`../shared/conformance/rules/testdata`, run from that directory as its README
//! says), on the shipped rule set, and on bad input. Exit codes must be equal and the failure
//! text equal after the normalisations listed in [`normalise`], each with its reason.
//!
//! The packaged promtool is 2.42; upstream's files use syntax and flags added later. Such runs
//! are detected from promtool's own complaint (an unknown field in its test-file structs, an
//! unknown flag) or listed in [`OLD_PROMTOOL_SEMANTICS`], and compared with upstream's expected
//! exit code from the README's table ([`UPSTREAM_EXPECTED`]) instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use regex::Regex;

use crate::harness::{TempDir, built_bin, peer, workspace};

fn testdata() -> PathBuf {
    match std::env::var_os("OSPREY_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d).join("rules/testdata"),
        None => workspace().join("../shared/conformance/rules/testdata"),
    }
}

/// Expected `promtool test rules` exit codes from the conformance README's table (upstream's
/// own tests, current promtool).
const UPSTREAM_EXPECTED: &[(&str, i32)] = &[
    ("unittest.yml", 0),
    ("long-period.yml", 0),
    ("at-modifier-test.yml", 0),
    ("negative-offset-test.yml", 0),
    ("no-test-group-interval.yml", 0),
    ("start-time-test.yml", 0),
    ("failing.yml", 1),
    ("bad-input-series.yml", 1),
    ("bad-promql.yml", 1),
    ("bad-rules-syntax-test.yml", 1),
    ("bad-rules-error-test.yml", 1),
    ("rules_run.yml", 1),
    ("--run correct rules_run.yml", 0),
    ("--run wrong rules_run.yml", 1),
    ("rules_run_fuzzy.yml", 1),
    ("--run correct rules_run_fuzzy.yml", 0),
    ("--run wrong rules_run_fuzzy.yml", 1),
    ("rules_run_no_fuzzy.yml", 1),
    ("--ignore-unknown-fields rules_run_extrafields.yml", 0),
];

/// Runs where promtool 2.42's behaviour is an old bug fixed upstream, not detectable from its
/// output: compared with [`UPSTREAM_EXPECTED`].
const OLD_PROMTOOL_SEMANTICS: &[(&str, &str)] = &[(
    "no-test-group-interval.yml",
    "a test group without `interval` loads its input with step 0 in 2.42 (every value at t=0); \
     upstream defaults it to evaluation_interval, as we do",
)];

/// Runs we cannot match yet: (run, reason). Each must still differ, so the list stays honest.
const KNOWN_FAILING: &[(&str, &str)] = &[(
    "unittest.yml",
    "native histograms (`{{…}}` input values and `histogram:` expectations): the PromQL engine \
     stores floats only",
)];

/// Rule files whose `check rules` stderr cannot match 2.42's yet (exit codes still must).
const CHECK_KNOWN_DIFFERENT: &[(&str, &str)] = &[(
    "features.yml",
    "needs a newer promtool (2.42 also rejects its UTF-8 rule names); our parser (promql-parser \
     crate) accepts the experimental functions but not duration expressions or `anchored`",
)];

fn upstream(run: &str) -> Option<i32> {
    UPSTREAM_EXPECTED.iter().find(|(r, _)| *r == run).map(|(_, c)| *c)
}

fn run_in(bin: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(bin).args(args).current_dir(dir).output().unwrap_or_else(|e| panic!("{}: {e}", bin.display()))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Normalises what is documented to differ between promtool 2.42 and us:
/// 1. the two series of a many-to-many error: 2.42 prints them in encounter order, current
///    Prometheus (and we) sorted (upstream `promql/testdata/operators.test`, "stable, sorted
///    order");
/// 2. PromQL parser messages after `could not parse expression:` and input-series parse errors:
///    the `promql-parser` crate words errors differently from Go's parser;
/// 3. YAML decoder errors for unknown keys: Go's yaml.v2 lists every unknown field
///    (`line N: field X not found in type T`), serde-saphyr stops at the first (`line N column
///    M: unknown field `X``); both become `<unknown field X at line N>` for the first one;
fn normalise(s: &str) -> String {
    let dup = Regex::new(r"on the (\w+) hand-side of the operation: \[(\{[^}]*\}), (\{[^}]*\})\]").unwrap();
    let s = dup.replace_all(s, |c: &regex::Captures<'_>| {
        let (mut a, mut b) = (c[2].to_string(), c[3].to_string());
        if b < a {
            std::mem::swap(&mut a, &mut b);
        }
        format!("on the {} hand-side of the operation: [{a}, {b}]", &c[1])
    });
    let parse = Regex::new(r"(?m)could not parse expression: .*$").unwrap();
    let s = parse.replace_all(&s, "could not parse expression: <parser message>");
    let series = Regex::new(r#"(?m)^(\d+:\d+: parse error: .*|series ".*": .*)$"#).unwrap();
    let s = series.replace_all(&s, "<input series parse error>");
    let go_yaml =
        Regex::new(r"yaml: unmarshal errors:\n  line (\d+): field (\S+) not found in type \S+(\n  line .*)*").unwrap();
    let s = go_yaml.replace_all(&s, "<unknown field $2 at line $1>");
    let ours_yaml = Regex::new(r"error: line (\d+) column \d+: unknown field `([^`]+)`.*").unwrap();
    ours_yaml.replace_all(&s, "<unknown field $2 at line $1>").into_owned()
}

fn is_yml(name: &str) -> bool {
    Path::new(name).extension().is_some_and(|e| e.eq_ignore_ascii_case("yml"))
}

/// Unit-test files in the directory (YAML with a top-level `tests:` key), sorted.
fn unit_test_files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .expect("conformance rules testdata")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let body = std::fs::read_to_string(e.path()).ok()?;
            (is_yml(&name) && body.lines().any(|l| l.starts_with("tests:"))).then_some(name)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn test_rules_matches_promtool_on_upstream_unit_tests() {
    let Some(promtool) = peer("promtool") else { return };
    let ours = built_bin("osprey-collector");
    let dir = testdata();
    let mut runs: Vec<String> = unit_test_files(&dir);
    assert!(runs.len() >= 14, "expected upstream's unit-test files in {}: {runs:?}", dir.display());
    for (r, _) in UPSTREAM_EXPECTED {
        if r.starts_with("--") {
            runs.push((*r).to_string());
        }
    }
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for run in &runs {
        let args: Vec<&str> = ["test", "rules"].into_iter().chain(run.split(' ')).collect();
        let t = run_in(&promtool, &dir, &args);
        let o = run_in(&ours, &dir, &args);
        let (tc, oc) = (t.status.code().unwrap_or(-1), o.status.code().unwrap_or(-1));
        let (terr, oerr) = (text(&t.stderr), text(&o.stderr));
        let too_old = terr.contains("not found in type main.") || terr.contains("unknown long flag");
        let old_semantics = OLD_PROMTOOL_SEMANTICS.iter().find(|(r, _)| r == run);
        let known = KNOWN_FAILING.iter().find(|(r, _)| r == run);
        let verdict = if too_old || old_semantics.is_some() {
            let want = upstream(run).unwrap_or_else(|| panic!("{run}: promtool too old and no upstream expectation"));
            let why = old_semantics.map_or("packaged promtool predates this syntax/flag", |(_, w)| w);
            if oc == want {
                format!("version-skew, osprey = upstream's {want} ({why})")
            } else if let Some((_, reason)) = known {
                format!("KNOWN-FAILING (upstream {want}): {reason}")
            } else {
                failures.push(format!("{run}: osprey {oc}, upstream expects {want}\n{oerr}"));
                format!("MISMATCH (upstream expects {want})")
            }
        } else {
            let same_out = text(&t.stdout) == text(&o.stdout);
            let same_err = normalise(&terr) == normalise(&oerr);
            if tc == oc && same_out && same_err {
                if let Some(want) = upstream(run) {
                    assert_eq!(oc, want, "{run}: both tools disagree with upstream's table");
                }
                "match".to_string()
            } else if let Some((_, reason)) = known {
                format!("KNOWN-FAILING: {reason}")
            } else {
                failures.push(format!(
                    "{run}: exit promtool {tc} osprey {oc}; stdout equal {same_out}\n--- promtool stderr (normalised)\n{}\n--- osprey stderr (normalised)\n{}",
                    normalise(&terr),
                    normalise(&oerr)
                ));
                "MISMATCH".to_string()
            }
        };
        if known.is_some() {
            assert!(
                verdict.starts_with("KNOWN-FAILING"),
                "{run} is listed as known-failing but now passes: update the list"
            );
        }
        table.push(format!("{run}: promtool={tc} osprey={oc} {verdict}"));
    }
    println!("test rules, per file:\n{}", table.join("\n"));
    assert!(failures.is_empty(), "differences from promtool:\n{}", failures.join("\n\n"));
}

#[test]
fn check_rules_matches_promtool_on_upstream_rule_files() {
    let Some(promtool) = peer("promtool") else { return };
    let ours = built_bin("osprey-collector");
    let dir = testdata();
    let tests = unit_test_files(&dir);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("testdata")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_yml(n) && !tests.contains(n))
        .collect();
    files.sort();
    assert!(files.len() >= 12, "{files:?}");
    let mut failures = Vec::new();
    for f in &files {
        for lint_fatal in [false, true] {
            let mut args = vec!["check", "rules"];
            if lint_fatal {
                args.push("--lint-fatal");
            }
            args.push(f);
            let t = run_in(&promtool, &dir, &args);
            let o = run_in(&ours, &dir, &args);
            let (tc, oc) = (t.status.code().unwrap_or(-1), o.status.code().unwrap_or(-1));
            let same_text =
                text(&t.stdout) == text(&o.stdout) && normalise(&text(&t.stderr)) == normalise(&text(&o.stderr));
            let known = CHECK_KNOWN_DIFFERENT.iter().find(|(k, _)| k == f);
            let verdict = match (tc == oc, same_text, known) {
                (true, true, _) => "match".to_string(),
                (true, false, Some((_, why))) => format!("exit codes match, text KNOWN-DIFFERENT: {why}"),
                _ => {
                    failures.push(format!(
                        "{f} lint_fatal={lint_fatal}: promtool {tc} osprey {oc}\n{}{}\n--- osprey\n{}{}",
                        text(&t.stdout),
                        text(&t.stderr),
                        text(&o.stdout),
                        text(&o.stderr)
                    ));
                    "MISMATCH".to_string()
                }
            };
            let flag = if lint_fatal { " --lint-fatal" } else { "" };
            println!("check rules{flag} {f}: promtool={tc} osprey={oc} {verdict}");
        }
    }
    // Lint options, including an unknown one (promtool warns on stdout and carries on).
    for extra in [&["--lint=none"][..], &["--lint=bogus"], &["--lint=none,all", "--lint-fatal"], &["--lint=all"]] {
        let args: Vec<&str> =
            ["check", "rules"].iter().chain(extra).chain(&["rules_duplicates.yml"]).copied().collect();
        let t = run_in(&promtool, &dir, &args);
        let o = run_in(&ours, &dir, &args);
        println!("{}: promtool={:?} osprey={:?}", args.join(" "), t.status.code(), o.status.code());
        if t.status.code() != o.status.code() || t.stdout != o.stdout || t.stderr != o.stderr {
            failures.push(format!("{args:?}: promtool {t:?}\nosprey {o:?}"));
        }
    }
    assert!(failures.is_empty(), "check rules differs:\n{}", failures.join("\n\n"));
}

#[test]
fn shipped_rule_set_passes_check_and_test_under_both_tools() {
    let Some(promtool) = peer("promtool") else { return };
    let ours = built_bin("osprey-collector");
    let dir = workspace().join("packaging/rules");
    for bin in [&promtool, &ours] {
        for args in [["check", "rules", "osprey-node.rules.yml"], ["test", "rules", "osprey-node.test.yml"]] {
            let out = run_in(bin, &dir, &args);
            let stdout = text(&out.stdout);
            println!("{} {}: exit {:?}", bin.display(), args.join(" "), out.status.code());
            assert!(out.status.success(), "{} {args:?}: {stdout}{}", bin.display(), text(&out.stderr));
            assert!(stdout.contains("SUCCESS"), "{stdout}");
        }
    }
}

#[test]
fn test_rules_fails_on_a_wrong_expectation_in_the_shipped_tests() {
    // The shipped test passing must mean something: flip one expected value and both fail.
    let Some(promtool) = peer("promtool") else { return };
    let ours = built_bin("osprey-collector");
    let tmp = TempDir::new("rules-cli-mutant");
    let src = workspace().join("packaging/rules");
    std::fs::copy(src.join("osprey-node.rules.yml"), tmp.join("osprey-node.rules.yml")).unwrap();
    let test = std::fs::read_to_string(src.join("osprey-node.test.yml")).unwrap();
    let re = Regex::new(r"(?m)^(\s+)exp_alerts: \[\]$").unwrap();
    let mutated = re.replacen(&test, 1, "${1}exp_alerts:\n${1}  - exp_labels: {mutant: \"yes\"}");
    assert_ne!(mutated, test, "the shipped test has an empty exp_alerts to mutate");
    std::fs::write(tmp.join("t.yml"), mutated.as_ref()).unwrap();
    let t = run_in(&promtool, &tmp.0, &["test", "rules", "t.yml"]);
    let o = run_in(&ours, &tmp.0, &["test", "rules", "t.yml"]);
    assert_eq!(t.status.code(), Some(1), "{}", text(&t.stderr));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(normalise(&text(&t.stderr)), normalise(&text(&o.stderr)));
    assert_eq!(text(&t.stdout), text(&o.stdout));
}

/// Regression: a rule file with a PromQL error, an unknown field or a duplicate group gives
/// file, line and reason from `check rules`, exit 1, as promtool does.
#[test]
fn check_rules_bad_input_names_file_line_and_reason() {
    let Some(promtool) = peer("promtool") else { return };
    let ours = built_bin("osprey-collector");
    let tmp = TempDir::new("rules-cli-bad");
    let cases = [
        (
            "promql.yml",
            "groups:\n- name: g\n  rules:\n  - record: x\n    expr: sum(up\n",
            "promql.yml: 5:11: group \"g\", rule 1, \"x\": could not parse expression: ",
        ),
        ("unknown.yml", "groups:\n- name: g\n  rulez: []\n", "unknown.yml: <unknown field rulez at line 3>"),
        (
            "dup.yml",
            "groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n",
            "dup.yml: 4:3: groupname: \"g\" is repeated in the same file",
        ),
    ];
    for (name, body, want) in cases {
        std::fs::write(tmp.join(name), body).unwrap();
        let t = run_in(&promtool, &tmp.0, &["check", "rules", name]);
        let o = run_in(&ours, &tmp.0, &["check", "rules", name]);
        println!("{name}: promtool={:?} osprey={:?}\n  {}", t.status.code(), o.status.code(), text(&o.stderr).trim());
        assert_eq!(t.status.code(), Some(1), "{name}: promtool");
        assert_eq!(o.status.code(), Some(1), "{name}: osprey");
        for (who, err) in [("promtool", text(&t.stderr)), ("osprey", text(&o.stderr))] {
            assert!(normalise(&err).contains(want), "{name} ({who}): want {want:?} in {err:?}");
        }
        assert_eq!(text(&t.stdout), text(&o.stdout), "{name}: stdout");
        if name != "unknown.yml" {
            // No normalisation needed here: the parser message and position are Prometheus's.
            assert_eq!(text(&t.stderr), text(&o.stderr), "{name}: stderr");
        }
    }
}

/// Rules exercising chaining inside a group, `group_eval_order`, `for`, `keep_firing_for`,
/// templated labels, annotations with every common template function, `query`, external
/// labels/URL, a template error, and `ALERTS`/`ALERTS_FOR_STATE`.
const DIFF_RULES: &str = r#"groups:
- name: first
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - record: job:up:double
    expr: job:up:sum * 2
    labels:
      doubled: "yes"
- name: second
  rules:
  - alert: HostDown
    expr: up == 0
    for: 2m
    keep_firing_for: 1m
    labels:
      severity: page
      team: '{{ $labels.job }}-team'
    annotations:
      summary: 'Instance {{ $labels.instance }} down, value {{ $value }}'
      desc: '{{ $externalLabels.cluster }} {{ $externalURL }} {{ humanize 1234567 }} {{ humanize1024 2048 }} {{ humanizeDuration 3725 }} {{ humanizePercentage 0.123 }} {{ humanizeTimestamp 1700000000 }}'
      count: '{{ with query "count(up)" }}{{ . | first | value }}{{ end }}'
      bad: '{{ $labels.nope.deeper }}'
      bad2: 'x {{ query "nothing" | first | value }}'
      bad3: '{{ humanize "one" }} {{ .Labels.instance.x }}'
  - alert: Ratio
    expr: job:up:double / 2 < 2
    labels: {severity: info}
    annotations:
      v: '{{ printf "%.2f" $value }} {{ $labels.job | toUpper }} {{ reReplaceAll "(.*)-(.*)" "$2" "a-b" }} {{ title "hello world" }} {{ if gt $value 1.0 }}big{{ else }}small{{ end }}'
      r: '{{ range $i, $x := query "up" | sortByLabel "instance" }}{{ $i }}={{ $x.Labels.instance }}:{{ $x.Value }};{{ end }}'
"#;

/// Expectations left empty on purpose: both tools fail and print what they got, so the
/// comparison covers every alert's labels and rendered annotations and every sample value.
/// Range windows avoid sample timestamps (Prometheus 3 made them left-open; 2.42 is closed).
const DIFF_TESTS: &str = r#"rule_files: [r.yml]
evaluation_interval: 1m
group_eval_order: [second, first]
tests:
- name: main
  interval: 1m
  external_labels: {cluster: prod}
  external_url: http://osprey.example:9090
  input_series:
  - series: 'up{job="node", instance="a:9100"}'
    values: '1 1 0x6 1 1 stale'
  - series: 'up{job="node", instance="b:9100"}'
    values: '1+0x3 _ 1x4 0 0 0 0'
  - series: 'requests_total{job="api"}'
    values: '0+10x5 3 13 23'
  alert_rule_test:
  - {eval_time: 1m, alertname: HostDown, exp_alerts: []}
  - {eval_time: 3m, alertname: HostDown, exp_alerts: []}
  - {eval_time: 4m, alertname: HostDown, exp_alerts: []}
  - {eval_time: 8m30s, alertname: HostDown, exp_alerts: []}
  - {eval_time: 9m, alertname: HostDown, exp_alerts: []}
  - {eval_time: 10m, alertname: HostDown, exp_alerts: []}
  - {eval_time: 13m, alertname: HostDown, exp_alerts: []}
  - {eval_time: 3m, alertname: Ratio, exp_alerts: []}
  - {eval_time: 5m, alertname: Ratio, exp_alerts: []}
  promql_expr_test:
  - {expr: 'job:up:double', eval_time: 5m}
  - {expr: 'job:up:sum', eval_time: 12m}
  - {expr: 'ALERTS', eval_time: 4m}
  - {expr: 'ALERTS_FOR_STATE', eval_time: 4m}
  - {expr: 'rate(requests_total[150s])', eval_time: 8m}
  - {expr: 'increase(requests_total[270s])', eval_time: 8m}
  - {expr: 'max_over_time(job:up:sum[9m:2m])', eval_time: 12m}
  - {expr: 'up offset -1m', eval_time: 2m}
  - {expr: 'scalar(sum(up))', eval_time: 2m}
  - {expr: 'count(up) / 3', eval_time: 1m}
"#;

#[test]
fn test_rules_reports_the_same_alerts_annotations_and_samples_as_promtool() {
    let Some(promtool) = peer("promtool") else { return };
    let ours = built_bin("osprey-collector");
    let tmp = TempDir::new("rules-cli-diff");
    std::fs::write(tmp.join("r.yml"), DIFF_RULES).unwrap();
    std::fs::write(tmp.join("t.yml"), DIFF_TESTS).unwrap();
    let t = run_in(&promtool, &tmp.0, &["test", "rules", "t.yml"]);
    let o = run_in(&ours, &tmp.0, &["test", "rules", "t.yml"]);
    let (terr, oerr) = (text(&t.stderr), text(&o.stderr));
    assert_eq!(t.status.code(), Some(1), "{terr}");
    assert_eq!(o.status.code(), Some(1), "{oerr}");
    let failures = terr.matches("got:").count();
    // 19 expectations; HostDown has nothing firing at 1m, 3m and 10m, so those three pass.
    assert_eq!(failures, 16, "failing expectations print what promtool got:\n{terr}");
    assert!(terr.contains("desc=\"prod http://osprey.example:9090 1.235M 2ki"), "{terr}");
    assert_eq!(text(&t.stdout), text(&o.stdout), "stdout");
    let (tn, on) = (normalise(&terr), normalise(&oerr));
    for (a, b) in tn.lines().zip(on.lines()) {
        assert_eq!(a, b, "first differing failure line");
    }
    assert_eq!(tn, on);
}

/// Small files for the runner's own error paths: (name, body).
const EDGE_FILES: &[(&str, &str)] = &[
    (
        "globs.yml",
        "rule_files: [nope*.yml, missing.yml]\ntests:\n- input_series: [{series: up, values: \"1\"}]\n  promql_expr_test: [{expr: up, eval_time: 0, exp_samples: [{labels: up, value: 1}]}]\n",
    ),
    ("order.yml", "rule_files: [r.yml]\ngroup_eval_order: [first, first]\ntests: []\n"),
    (
        "noalertname.yml",
        "rule_files: [r.yml]\ntests:\n- name: x\n  input_series: [{series: up, values: \"0x5\"}]\n  alert_rule_test: [{eval_time: 60s, exp_alerts: []}]\n",
    ),
    (
        "exprs.yml",
        "tests:\n- input_series: [{series: up, values: \"1\"}]\n  promql_expr_test:\n  - {expr: up, eval_time: 0, exp_samples: [{labels: \"up{\", value: 1}]}\n  - {expr: \"up[1m]\", eval_time: 1m}\n  - {expr: '\"s\"', eval_time: 1m}\n  - {expr: 'sum(up', eval_time: 1m}\n",
    ),
];

/// The runner's error paths print what promtool prints: rule-file globs matching nothing (a
/// warning, not a failure), a repeated `group_eval_order` name, a missing `alertname`, bad
/// expected labels, non-vector results, a bad expression, a test file that does not exist
/// (promtool's program name differs, nothing else).
#[test]
fn test_rules_error_paths_match_promtool() {
    let Some(promtool) = peer("promtool") else { return };
    let ours = built_bin("osprey-collector");
    let tmp = TempDir::new("rules-cli-edge");
    std::fs::write(tmp.join("r.yml"), DIFF_RULES).unwrap();
    let mut names: Vec<&str> = Vec::new();
    for (name, body) in EDGE_FILES {
        std::fs::write(tmp.join(name), body).unwrap();
        names.push(name);
    }
    names.push("does-not-exist.yml");
    for name in names {
        let t = run_in(&promtool, &tmp.0, &["test", "rules", name]);
        let o = run_in(&ours, &tmp.0, &["test", "rules", name]);
        let (tc, oc) = (t.status.code(), o.status.code());
        println!("{name}: promtool={tc:?} osprey={oc:?}");
        assert_eq!(tc, oc, "{name}: exit codes");
        assert_eq!(text(&t.stdout), text(&o.stdout), "{name}: stdout");
        let terr = text(&t.stderr).replacen("promtool: error:", "osprey-collector: error:", 1);
        assert_eq!(normalise(&terr), normalise(&text(&o.stderr)), "{name}: stderr");
    }
}
