//! Relabeling with Prometheus's semantics (`model/relabel`): every action, fully anchored RE2
//! regexes, Go's `$1`/`${1}` expansion, the same defaults and validation, and the md5-based
//! `hashmod` so that shards computed here agree with Prometheus's.

use std::collections::BTreeMap;
use std::fmt;

use md5::{Digest, Md5};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::goregex::AnchoredRegex;

/// The default regex, `(.*)`.
pub const DEFAULT_REGEX: &str = "(.*)";

/// A relabel action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Action {
    /// Set `target_label` to the expanded `replacement` when `regex` matches.
    #[default]
    Replace,
    /// Drop the target/series unless `regex` matches the joined source values.
    Keep,
    /// Drop the target/series when `regex` matches the joined source values.
    Drop,
    /// Keep only when the joined source values equal the value of `target_label`.
    KeepEqual,
    /// Drop when the joined source values equal the value of `target_label`.
    DropEqual,
    /// Set `target_label` to md5(joined values) modulo `modulus`.
    HashMod,
    /// Copy labels whose names match `regex` to the expanded `replacement` name.
    LabelMap,
    /// Remove labels whose names match `regex`.
    LabelDrop,
    /// Remove labels whose names do not match `regex`.
    LabelKeep,
    /// Set `target_label` to the lower-cased joined values.
    Lowercase,
    /// Set `target_label` to the upper-cased joined values.
    Uppercase,
}

impl Action {
    /// The configuration name (`replace`, `hashmod`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Replace => "replace",
            Self::Keep => "keep",
            Self::Drop => "drop",
            Self::KeepEqual => "keepequal",
            Self::DropEqual => "dropequal",
            Self::HashMod => "hashmod",
            Self::LabelMap => "labelmap",
            Self::LabelDrop => "labeldrop",
            Self::LabelKeep => "labelkeep",
            Self::Lowercase => "lowercase",
            Self::Uppercase => "uppercase",
        }
    }

    const ALL: [Self; 11] = [
        Self::Replace,
        Self::Keep,
        Self::Drop,
        Self::KeepEqual,
        Self::DropEqual,
        Self::HashMod,
        Self::LabelMap,
        Self::LabelDrop,
        Self::LabelKeep,
        Self::Lowercase,
        Self::Uppercase,
    ];
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // Prometheus accepts any case.
        let lower = s.to_lowercase();
        Self::ALL.into_iter().find(|a| a.name() == lower).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|a| a.name()).collect();
            serde::de::Error::custom(format!("unknown relabel action {s:?}, expected one of {}", names.join(", ")))
        })
    }
}

/// A relabel regex as written in configuration (anchored when used).
#[derive(Clone, Debug, PartialEq)]
pub struct RelabelRegex(pub AnchoredRegex);

impl RelabelRegex {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        AnchoredRegex::new(pattern).map(Self)
    }
}

impl Default for RelabelRegex {
    fn default() -> Self {
        Self::new(DEFAULT_REGEX).expect("default regex compiles")
    }
}

impl Serialize for RelabelRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(|e| serde::de::Error::custom(format!("invalid regex {s:?}: {e}")))
    }
}

fn default_separator() -> String {
    ";".into()
}

fn default_replacement() -> String {
    "$1".into()
}

fn is_default_separator(s: &str) -> bool {
    s == ";"
}

fn is_default_replacement(s: &str) -> bool {
    s == "$1"
}

fn is_default_regex(r: &RelabelRegex) -> bool {
    r.0.as_str() == DEFAULT_REGEX
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_default_action(a: &Action) -> bool {
    *a == Action::Replace
}

/// One relabel rule (`relabel_configs` / `metric_relabel_configs` entry).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` into the matched value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    /// Separator between source values (default `;`).
    #[serde(default = "default_separator", skip_serializing_if = "is_default_separator")]
    pub separator: String,
    /// Regex matched against the joined value, anchored (default `(.*)`).
    #[serde(default, skip_serializing_if = "is_default_regex")]
    pub regex: RelabelRegex,
    /// Modulus for `hashmod`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub modulus: u64,
    /// Label written by `replace`, `hashmod`, `lowercase`, `uppercase`, compared by the equal actions.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_label: String,
    /// Replacement template (default `$1`).
    #[serde(default = "default_replacement", skip_serializing_if = "is_default_replacement")]
    pub replacement: String,
    /// The action (default `replace`).
    #[serde(default, skip_serializing_if = "is_default_action")]
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        Self {
            source_labels: Vec::new(),
            separator: default_separator(),
            regex: RelabelRegex::default(),
            modulus: 0,
            target_label: String::new(),
            replacement: default_replacement(),
            action: Action::Replace,
        }
    }
}

/// Whether `s` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`, Prometheus's legacy scheme,
/// which Osprey's data model uses).
pub fn is_valid_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A label name that may contain `$1`, `${1}`, `$name` references (Prometheus's relabel target rule).
fn is_valid_templated_name(s: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$")
            .expect("static regex")
    })
    .is_match(s)
}

impl RelabelConfig {
    /// Checks the rule as Prometheus's `relabel.Config.Validate` does.
    pub fn validate(&self) -> Result<(), String> {
        use Action::{DropEqual, HashMod, KeepEqual, LabelDrop, LabelKeep, LabelMap, Lowercase, Replace, Uppercase};
        let a = self.action;
        if a == HashMod && self.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        if matches!(a, Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual)
            && self.target_label.is_empty()
        {
            return Err(format!("relabel configuration for {a} action requires 'target_label' value"));
        }
        let templated = self.target_label.contains('$');
        if a == Replace
            && (if templated {
                !is_valid_templated_name(&self.target_label)
            } else {
                !is_valid_label_name(&self.target_label)
            })
        {
            return Err(format!("{:?} is invalid 'target_label' for {a} action", self.target_label));
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual | HashMod)
            && !is_valid_label_name(&self.target_label)
        {
            return Err(format!("{:?} is invalid 'target_label' for {a} action", self.target_label));
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual) && !is_default_replacement(&self.replacement) {
            return Err(format!("'replacement' can not be set for {a} action"));
        }
        if a == LabelMap && !is_valid_templated_name(&self.replacement) {
            return Err(format!("{:?} is invalid 'replacement' for {a} action", self.replacement));
        }
        if matches!(a, KeepEqual | DropEqual)
            && (!is_default_regex(&self.regex)
                || self.modulus != 0
                || !is_default_separator(&self.separator)
                || !is_default_replacement(&self.replacement))
        {
            return Err(format!("{a} action requires only 'source_labels' and `target_label`, and no other fields"));
        }
        if matches!(a, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || !is_default_separator(&self.separator)
                || !is_default_replacement(&self.replacement))
        {
            return Err(format!("{a} action requires only 'regex', and no other fields"));
        }
        Ok(())
    }
}

/// Mutable access to a label set, so that relabeling runs on the caller's own label type.
/// Setting an empty value removes the label, as Prometheus's `labels.Builder` does.
pub trait LabelAccess {
    /// The value of `name`, or "" when absent.
    fn get_label(&self, name: &str) -> &str;
    /// Sets `name` (an empty value removes it).
    fn set_label(&mut self, name: &str, value: String);
    /// Removes `name`.
    fn del_label(&mut self, name: &str);
    /// A snapshot of all label names.
    fn label_names(&self) -> Vec<String>;
    /// Keeps only the labels whose names satisfy `keep`.
    fn retain_labels(&mut self, keep: &mut dyn FnMut(&str) -> bool) {
        for name in self.label_names() {
            if !keep(&name) {
                self.del_label(&name);
            }
        }
    }
}

impl LabelAccess for BTreeMap<String, String> {
    fn get_label(&self, name: &str) -> &str {
        self.get(name).map_or("", String::as_str)
    }
    fn set_label(&mut self, name: &str, value: String) {
        if value.is_empty() {
            self.remove(name);
        } else {
            self.insert(name.to_owned(), value);
        }
    }
    fn del_label(&mut self, name: &str) {
        self.remove(name);
    }
    fn label_names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
    fn retain_labels(&mut self, keep: &mut dyn FnMut(&str) -> bool) {
        self.retain(|k, _| keep(k));
    }
}

/// Applies `cfgs` in order; returns `false` when a rule drops the label set (the labels are then
/// in an unspecified state).
pub fn process<L: LabelAccess>(labels: &mut L, cfgs: &[RelabelConfig]) -> bool {
    cfgs.iter().all(|c| apply(c, labels))
}

/// Prometheus's hashmod: md5 of `value`, last 8 bytes as a big-endian u64, modulo `modulus`.
pub fn hashmod(value: &str, modulus: u64) -> u64 {
    let sum = Md5::digest(value.as_bytes());
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&sum[8..16]);
    u64::from_be_bytes(tail) % modulus.max(1)
}

fn apply<L: LabelAccess>(cfg: &RelabelConfig, lb: &mut L) -> bool {
    let val = match cfg.source_labels.as_slice() {
        [] => String::new(),
        [one] => lb.get_label(one).to_owned(),
        many => many.iter().map(|n| lb.get_label(n)).collect::<Vec<_>>().join(&cfg.separator),
    };
    let re = &cfg.regex.0;
    match cfg.action {
        Action::Drop => return !re.is_match(&val),
        Action::Keep => return re.is_match(&val),
        Action::DropEqual => return lb.get_label(&cfg.target_label) != val,
        Action::KeepEqual => return lb.get_label(&cfg.target_label) == val,
        Action::Replace => {
            let Some(caps) = re.captures(&val) else { return true };
            let target = re.expand(&caps, &cfg.target_label);
            let res = re.expand(&caps, &cfg.replacement);
            if !is_valid_label_name(&target) {
                return true;
            }
            lb.set_label(&target, res);
        }
        Action::Lowercase => lb.set_label(&cfg.target_label, go_case(&val, char::to_lowercase)),
        Action::Uppercase => lb.set_label(&cfg.target_label, go_case(&val, char::to_uppercase)),
        Action::HashMod => lb.set_label(&cfg.target_label, hashmod(&val, cfg.modulus).to_string()),
        Action::LabelMap => {
            for name in lb.label_names() {
                if let Some(new) = re.replace(&name, &cfg.replacement) {
                    let v = lb.get_label(&name).to_owned();
                    lb.set_label(&new, v);
                }
            }
        }
        Action::LabelDrop => lb.retain_labels(&mut |name| !re.is_match(name)),
        Action::LabelKeep => lb.retain_labels(&mut |name| re.is_match(name)),
    }
    true
}

/// Go's `strings.ToLower`/`ToUpper` map rune by rune, without context rules (final sigma).
fn go_case<I: Iterator<Item = char>>(s: &str, f: fn(char) -> I) -> String {
    s.chars().flat_map(f).collect()
}

#[cfg(test)]
#[path = "relabel_tests.rs"]
mod tests;
