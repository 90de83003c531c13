//! Prometheus rule files (`groups:` YAML), parsed strictly and validated like `rulefmt`:
//! every error names the file, the line and column where known, the group, the rule and the reason.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::{DuplicateKeyPolicy, Options, Spanned};

use crate::duration::parse_duration;
use crate::template::Template;

/// One rule file as written (`groups:` at the top).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    /// The rule groups.
    #[serde(default)]
    groups: Vec<Spanned<RawGroup>>,
}

/// One group as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    /// Group name, unique within the file.
    name: Spanned<String>,
    /// Evaluation interval; the global one when absent.
    interval: Option<Spanned<String>>,
    /// Offset applied to every query's evaluation time.
    query_offset: Option<Spanned<String>>,
    /// Maximum series a rule may produce (0 = no limit).
    #[serde(default)]
    limit: u64,
    /// Labels added to every rule's output.
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// The rules, evaluated in order.
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

/// One rule as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    /// Recording rule's output metric name.
    record: Option<Spanned<String>>,
    /// Alerting rule's alert name.
    alert: Option<Spanned<String>>,
    /// PromQL expression.
    expr: Option<Spanned<String>>,
    /// How long the condition must hold before firing.
    #[serde(rename = "for")]
    for_: Option<Spanned<String>>,
    /// How long to keep firing after the condition clears.
    keep_firing_for: Option<Spanned<String>>,
    /// Labels to add or overwrite.
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// Alert annotations (templates).
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// A validated rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFile {
    /// The path it was read from.
    pub path: PathBuf,
    /// The groups in file order.
    pub groups: Vec<RuleGroupSpec>,
}

/// A validated rule group.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroupSpec {
    /// Group name.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Own interval, if set.
    pub interval: Option<Duration>,
    /// Query offset, if set.
    pub query_offset: Option<Duration>,
    /// Series limit per rule (0 = none).
    pub limit: u64,
    /// Labels added to every rule.
    pub labels: BTreeMap<String, String>,
    /// Rules in order.
    pub rules: Vec<RuleSpec>,
}

/// What kind of rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// Recording rule writing metric `name`.
    Record(String),
    /// Alerting rule raising alert `name`.
    Alert(String),
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// Recording or alerting, with its name.
    pub kind: RuleKind,
    /// The PromQL expression text.
    pub expr: String,
    /// `for` (alerts).
    pub for_: Duration,
    /// `keep_firing_for` (alerts).
    pub keep_firing_for: Duration,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations (alerts).
    pub annotations: BTreeMap<String, String>,
    /// Line of the rule in its file (1-based).
    pub line: u64,
}

impl RuleSpec {
    /// The rule's name (record or alert).
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Record(n) | RuleKind::Alert(n) => n,
        }
    }
}

/// Options for parsing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// Ignore unknown YAML keys (promtool `--ignore-unknown-fields`).
    pub ignore_unknown_fields: bool,
}

/// Reads and validates a rule file; errors are lines `file: line:col: reason`.
pub fn load_rule_file(path: &Path, opts: ParseOptions) -> Result<RuleFile, Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    parse_rule_file(path, &text, opts)
}

fn yaml_options() -> Options {
    let o = Options::default();
    debug_assert!(matches!(o.duplicate_keys, DuplicateKeyPolicy::Error));
    o
}

/// Removes keys a rule file's structs do not know, for `--ignore-unknown-fields`.
fn strip_unknown(text: &str) -> Result<String, String> {
    // Re-parse into a generic tree, keep only known keys, and serialise back as JSON (valid YAML).
    let tree: serde_json::Value =
        serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| e.to_string())?;
    let mut tree = tree;
    if let Some(groups) = tree.get_mut("groups").and_then(|g| g.as_array_mut()) {
        for g in groups {
            if let Some(obj) = g.as_object_mut() {
                obj.retain(|k, _| {
                    ["name", "interval", "query_offset", "limit", "labels", "rules"].contains(&k.as_str())
                });
                if let Some(rules) = obj.get_mut("rules").and_then(|r| r.as_array_mut()) {
                    for r in rules.iter_mut().filter_map(|r| r.as_object_mut()) {
                        r.retain(|k, _| {
                            ["record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"]
                                .contains(&k.as_str())
                        });
                    }
                }
            }
        }
    }
    if let Some(obj) = tree.as_object_mut() {
        obj.retain(|k, _| k == "groups");
    }
    Ok(tree.to_string())
}

/// Parses and validates rule-file text; `path` is used in messages.
pub fn parse_rule_file(path: &Path, text: &str, opts: ParseOptions) -> Result<RuleFile, Vec<String>> {
    let shown = path.display().to_string();
    let owned;
    let text = if opts.ignore_unknown_fields {
        owned = strip_unknown(text).map_err(|e| vec![format!("{shown}: {e}")])?;
        owned.as_str()
    } else {
        text
    };
    let raw: Option<RawFile> = if text.trim().is_empty() {
        None
    } else {
        Some(
            serde_saphyr::from_str_with_options(text, yaml_options())
                .map_err(|e| vec![format!("{shown}: {}", one_line(&e))])?,
        )
    };
    let raw = raw.unwrap_or(RawFile { groups: Vec::new() });
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    let mut groups = Vec::new();
    for g in raw.groups {
        let (gl, gc) = (g.referenced.line(), g.referenced.column());
        let g = g.value;
        let gname = g.name.value.clone();
        if gname.is_empty() {
            errs.push(format!("{shown}: {gl}:{gc}: Groupname must not be empty"));
        }
        if !seen.insert(gname.clone()) {
            // Prometheus reports the group's own position (its first key), not the name's value.
            errs.push(format!("{shown}: {gl}:{gc}: groupname: \"{gname}\" is repeated in the same file"));
        }
        let mut dur = |d: &Option<Spanned<String>>, what: &str| -> Option<Duration> {
            let d = d.as_ref()?;
            match parse_duration(&d.value) {
                Ok(v) => Some(v),
                Err(e) => {
                    errs.push(format!(
                        "{shown}: {}:{}: group {gname:?}: {what}: {e}",
                        d.referenced.line(),
                        d.referenced.column()
                    ));
                    None
                }
            }
        };
        let interval = dur(&g.interval, "interval");
        let query_offset = dur(&g.query_offset, "query_offset");
        for k in g.labels.keys() {
            if k.is_empty() {
                errs.push(format!("{shown}: {gl}:{gc}: group {gname:?}: invalid label name: {k:?}"));
            }
        }
        let mut rules = Vec::new();
        for (i, r) in g.rules.into_iter().enumerate() {
            let line = r.referenced.line();
            match validate_rule(r.value) {
                Ok(spec) => rules.push(RuleSpec { line, ..spec }),
                Err(list) => {
                    for (pos, name, msg) in list {
                        let at = pos.map(|(l, c)| format!("{l}:{c}: ")).unwrap_or_default();
                        errs.push(format!("{shown}: {at}group {gname:?}, rule {}, {name:?}: {msg}", i + 1));
                    }
                }
            }
        }
        groups.push(RuleGroupSpec {
            name: gname,
            file: path.to_path_buf(),
            interval,
            query_offset,
            limit: g.limit,
            labels: g.labels,
            rules,
        });
    }
    if errs.is_empty() { Ok(RuleFile { path: path.to_path_buf(), groups }) } else { Err(errs) }
}

/// Collapses a multi-line YAML error (with snippet) to its first lines' content.
fn one_line(e: &serde_saphyr::Error) -> String {
    let msg = e.to_string();
    let first = msg.lines().next().unwrap_or_default().trim().to_string();
    match e.location() {
        Some(l) if !first.contains(&format!("line {}", l.line())) => format!("{}:{}: {first}", l.line(), l.column()),
        _ => first,
    }
}

type RuleErr = (Option<(u64, u64)>, String, String);

#[allow(clippy::unnecessary_wraps)] // positions are optional everywhere they are used
fn pos<T>(s: &Spanned<T>) -> Option<(u64, u64)> {
    Some((s.referenced.line(), s.referenced.column()))
}

fn validate_rule(r: RawRule) -> Result<RuleSpec, Vec<RuleErr>> {
    let name = r.alert.as_ref().or(r.record.as_ref()).map(|s| s.value.clone()).unwrap_or_default();
    let mut errs: Vec<RuleErr> = Vec::new();
    let mut err = |p: Option<(u64, u64)>, m: String| errs.push((p, name.clone(), m));
    let kind = match (&r.record, &r.alert) {
        (Some(_), Some(a)) => {
            err(pos(a), "only one of 'record' and 'alert' must be set".into());
            None
        }
        (None, None) => {
            err(None, "one of 'record' or 'alert' must be set".into());
            None
        }
        (Some(rec), None) => {
            if rec.value.is_empty() {
                err(pos(rec), "one of 'record' or 'alert' must be set".into());
            }
            Some(RuleKind::Record(rec.value.clone()))
        }
        (None, Some(a)) => {
            if a.value.is_empty() {
                err(pos(a), "one of 'record' or 'alert' must be set".into());
            }
            Some(RuleKind::Alert(a.value.clone()))
        }
    };
    let expr = r.expr.as_ref().map(|e| e.value.clone()).unwrap_or_default();
    match &r.expr {
        Some(e) if !e.value.trim().is_empty() => {
            if let Err(msg) = osprey_promql::durations::parse_checked(&e.value) {
                let msg = osprey_promql::position::with_position(&e.value, msg.trim());
                err(pos(e), format!("could not parse expression: {msg}"));
            }
        }
        other => err(other.as_ref().and_then(pos), "field 'expr' must be set in rule".into()),
    }
    let mut parse_d = |d: &Option<Spanned<String>>, field: &str| -> Duration {
        match d {
            None => Duration::ZERO,
            Some(s) => parse_duration(&s.value).unwrap_or_else(|e| {
                err(pos(s), format!("{field}: {e}"));
                Duration::ZERO
            }),
        }
    };
    let for_ = parse_d(&r.for_, "for");
    let keep_firing_for = parse_d(&r.keep_firing_for, "keep_firing_for");
    if matches!(kind, Some(RuleKind::Record(_))) {
        if !r.annotations.is_empty() {
            err(None, "invalid field 'annotations' in recording rule".into());
        }
        if let Some(f) = &r.for_ {
            err(pos(f), "invalid field 'for' in recording rule".into());
        }
        if let Some(k) = &r.keep_firing_for {
            err(pos(k), "invalid field 'keep_firing_for' in recording rule".into());
        }
    }
    for k in r.labels.keys() {
        if k.is_empty() || k == "__name__" {
            err(None, format!("invalid label name: {k}"));
        }
    }
    for k in r.annotations.keys() {
        if k.is_empty() {
            err(None, format!("invalid annotation name: {k}"));
        }
    }
    if let Some(RuleKind::Alert(a)) = &kind {
        let tname = format!("__alert_{a}");
        for (what, map) in [("label", &r.labels), ("annotation", &r.annotations)] {
            for (k, v) in map {
                if let Err(e) = Template::parse_rule_template(&tname, v) {
                    err(None, format!("{what} {k:?}: {e}"));
                }
            }
        }
    }
    let Some(kind) = kind else { return Err(errs) };
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(RuleSpec { kind, expr, for_, keep_firing_for, labels: r.labels, annotations: r.annotations, line: 0 })
}
