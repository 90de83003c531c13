//! `check rules`: promtool's output format and exit codes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::file::{ParseOptions, RuleFile, load_rule_file};

/// Options for [`check_rules`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Parsing options.
    pub parse: ParseOptions,
    /// Lint problems (duplicate rules) make the exit code 3 (`--lint-fatal`).
    pub lint_fatal: bool,
    /// Skip the duplicate-rule lint (`--lint=none`).
    pub no_lint: bool,
}

/// What `check rules` prints and returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit code: 0 ok, 1 invalid file, 3 lint failure with `lint_fatal`.
    pub exit_code: i32,
}

/// Checks rule files like `promtool check rules FILE...`.
pub fn check_rules(files: &[PathBuf], opts: CheckOptions) -> CheckReport {
    let mut rep = CheckReport::default();
    let mut failed = false;
    let mut lint_failed = false;
    for f in files {
        let _ = writeln!(rep.stdout, "Checking {}", f.display());
        match load_rule_file(f, opts.parse) {
            Ok(rf) => {
                let n: usize = rf.groups.iter().map(|g| g.rules.len()).sum();
                let dups = if opts.no_lint { Vec::new() } else { duplicates(&rf) };
                if dups.is_empty() {
                    let _ = writeln!(rep.stdout, "  SUCCESS: {n} rules found");
                } else {
                    lint_failed = true;
                    let _ = writeln!(rep.stderr, "  FAILED:");
                    let _ = writeln!(rep.stderr, "lint error {} duplicate rule(s) found.", dups.len());
                    for (name, labels) in dups {
                        let _ = writeln!(rep.stderr, "Metric: {name}\nLabel(s):");
                        for (k, v) in labels {
                            let _ = writeln!(rep.stderr, "\t{k}: {v}");
                        }
                    }
                    let _ = writeln!(rep.stderr, "Might cause inconsistency while recording expressions");
                }
            }
            Err(errs) => {
                failed = true;
                let _ = writeln!(rep.stderr, "  FAILED:");
                for e in errs {
                    let _ = writeln!(rep.stderr, "{e}");
                }
            }
        }
        rep.stdout.push('\n');
    }
    rep.exit_code = if failed {
        1
    } else if lint_failed && opts.lint_fatal {
        3
    } else {
        0
    };
    rep
}

/// Rules in one group with the same name and labels (promtool's duplicate lint).
pub fn duplicates(rf: &RuleFile) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for g in &rf.groups {
        let mut seen: Vec<(&str, &BTreeMap<String, String>)> = Vec::new();
        for r in &g.rules {
            let key = (r.name(), &r.labels);
            if seen.contains(&key) {
                out.push((r.name().to_string(), r.labels.clone()));
            } else {
                seen.push(key);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("osprey-rules-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn good_file_counts_rules() {
        let p = write(
            "good.yml",
            "groups:\n- name: g\n  interval: 30s\n  rules:\n  - record: a:b\n    expr: sum(up)\n  - alert: X\n    expr: up == 0\n    for: 5m\n    annotations:\n      summary: '{{ $labels.instance }} down'\n",
        );
        let r = check_rules(std::slice::from_ref(&p), CheckOptions::default());
        assert_eq!(r.exit_code, 0, "{r:?}");
        assert_eq!(r.stdout, format!("Checking {}\n  SUCCESS: 2 rules found\n\n", p.display()));
    }

    #[test]
    fn bad_inputs_name_file_line_and_reason() {
        let cases = [
            ("unknown.yml", "groups:\n- name: g\n  rulez: []\n", "unknown field"),
            (
                "dupgroup.yml",
                "groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n",
                "4:3: groupname: \"g\" is repeated in the same file",
            ),
            (
                "baddur.yml",
                "groups:\n- name: g\n  interval: 5 minutes\n  rules: []\n",
                "3:13: group \"g\": interval: not a valid duration string",
            ),
            (
                "badexpr.yml",
                "groups:\n- name: g\n  rules:\n  - record: x\n    expr: 'sum(up'\n",
                "5:11: group \"g\", rule 1, \"x\": could not parse expression: 1:7: parse error: unclosed left parenthesis",
            ),
            (
                "badfor.yml",
                "groups:\n- name: g\n  rules:\n  - alert: x\n    expr: up\n    for: 5q\n",
                "6:10: group \"g\", rule 1, \"x\": for: not a valid duration",
            ),
            (
                "both.yml",
                "groups:\n- name: g\n  rules:\n  - alert: x\n    record: y\n    expr: up\n",
                "only one of 'record' and 'alert' must be set",
            ),
            (
                "rec_ann.yml",
                "groups:\n- name: g\n  rules:\n  - record: x\n    expr: up\n    annotations:\n      a: b\n",
                "invalid field 'annotations' in recording rule",
            ),
            ("dupkey.yml", "groups:\n- name: g\n  name: h\n  rules: []\n", "duplicate"),
            (
                "badtmpl.yml",
                "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      s: '{{ $label.x }}'\n",
                "annotation \"s\": template: __alert_A:1: undefined variable \"$label\"",
            ),
            (
                // promql-parser panics on this duration; the check must report it instead.
                "hugedur.yml",
                "groups:\n- name: g\n  rules:\n  - record: x\n    expr: 'rate(x[99999999999999999999])'\n",
                "could not parse expression",
            ),
        ];
        for (name, text, want) in cases {
            let p = write(name, text);
            let r = check_rules(std::slice::from_ref(&p), CheckOptions::default());
            assert_eq!(r.exit_code, 1, "{name}: {r:?}");
            assert!(r.stderr.contains(&format!("{}: ", p.display())), "{name}: no file name in {}", r.stderr);
            assert!(r.stderr.contains(want), "{name}: want {want:?} in {}", r.stderr);
        }
    }

    #[test]
    fn duplicate_rules_are_a_lint_error_fatal_only_on_request() {
        let p = write(
            "dups.yml",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels: {severity: page}\n  - alert: A\n    expr: up == 0\n    labels: {severity: page}\n",
        );
        let r = check_rules(std::slice::from_ref(&p), CheckOptions::default());
        assert_eq!(r.exit_code, 0);
        assert!(
            r.stderr.contains("lint error 1 duplicate rule(s) found.\nMetric: A\nLabel(s):\n\tseverity: page\n"),
            "{}",
            r.stderr
        );
        let r = check_rules(&[p], CheckOptions { lint_fatal: true, ..CheckOptions::default() });
        assert_eq!(r.exit_code, 3);
    }
}
