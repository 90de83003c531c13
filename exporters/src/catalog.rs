//! The collector catalog: how a collector declares its name, default state, flags and
//! constructor, and the [`Ctx`] it is built from.
//!
//! Adding a collector means one file in `collectors/` exporting a `DEF: Def` and one line in
//! `collectors/mod.rs`; the command line, the TOML file and `--help` pick it up from here.

use std::collections::HashMap;

use agent_core::{Collector, HostPaths};
use regex::Regex;

/// The kind and default of a collector-specific flag.
#[derive(Clone, Copy, Debug)]
pub enum FlagKind {
    /// `--name` / `--no-name`, with its default.
    Bool(bool),
    /// `--name=VALUE`, with its default (empty = unset).
    Str(&'static str),
    /// `--name=VALUE` given any number of times.
    List,
}

/// A collector-specific flag, named exactly as node_exporter names it (without `--`).
#[derive(Clone, Copy, Debug)]
pub struct Flag {
    /// Full flag name, e.g. `collector.filesystem.mount-points-exclude`.
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Kind and default.
    pub kind: FlagKind,
}

/// A collector as the catalog knows it.
pub struct Def {
    /// Name: the `collector` label and `--collector.<name>`.
    pub name: &'static str,
    /// Enabled unless disabled (node_exporter's default set).
    pub default_enabled: bool,
    /// One line of help for `--collector.<name>`.
    pub help: &'static str,
    /// Collector-specific flags.
    pub flags: &'static [Flag],
    /// Builds the collector from validated settings; errors name the offending flag.
    pub build: fn(&Ctx) -> anyhow::Result<Box<dyn Collector>>,
}

/// A flag's resolved value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A validated table section of the config file (e.g. `[[processes.group]]`), parsed by
    /// the module that owns it; see [`Ctx::section`].
    Section(Section),
    /// A boolean flag.
    Bool(bool),
    /// A string flag (may be empty).
    Str(String),
    /// A repeated flag.
    List(Vec<String>),
}

/// A parsed config-file section, shared read-only with the collector that owns it.
#[derive(Clone)]
pub struct Section(pub std::sync::Arc<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Section(..)")
    }
}

impl PartialEq for Section {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Section {}

/// What a collector is built from: host paths and the resolved value of every flag.
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    /// Host paths.
    pub paths: HostPaths,
    /// Flag values by full flag name.
    pub values: HashMap<String, Value>,
}

impl Ctx {
    /// A boolean flag (false when unknown).
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(Value::Bool(true)))
    }

    /// A string flag ("" when unset).
    pub fn str(&self, name: &str) -> &str {
        match self.values.get(name) {
            Some(Value::Str(s)) => s,
            _ => "",
        }
    }

    /// A repeated flag.
    pub fn list(&self, name: &str) -> &[String] {
        match self.values.get(name) {
            Some(Value::List(v)) => v,
            _ => &[],
        }
    }

    /// The config-file section stored under `key` (e.g. `processes`), if the file had one.
    pub fn section<T: Send + Sync + 'static>(&self, key: &str) -> Option<std::sync::Arc<T>> {
        match self.values.get(key) {
            Some(Value::Section(s)) => std::sync::Arc::clone(&s.0).downcast().ok(),
            _ => None,
        }
    }

    /// A regex flag, anchored as node_exporter's `regexp.MustCompile` usage expects
    /// (unanchored: the pattern itself carries `^`/`$`). `None` when empty.
    pub fn regex(&self, name: &str) -> anyhow::Result<Option<Regex>> {
        let s = self.str(name);
        if s.is_empty() {
            return Ok(None);
        }
        Regex::new(s).map(Some).map_err(|e| anyhow::anyhow!("--{name}: invalid regular expression: {e}"))
    }

    /// node_exporter's device filter from an exclude and an include flag (at most one set).
    pub fn device_filter(&self, exclude: &str, include: &str) -> anyhow::Result<DeviceFilter> {
        let ex = self.regex(exclude)?;
        let inc = self.regex(include)?;
        if ex.is_some() && inc.is_some() {
            anyhow::bail!("--{exclude} and --{include} are mutually exclusive");
        }
        Ok(DeviceFilter { exclude: ex, include: inc })
    }
}

/// Include/exclude filter on device or other names.
#[derive(Clone, Debug, Default)]
pub struct DeviceFilter {
    /// Names matching this are skipped.
    pub exclude: Option<Regex>,
    /// When set, only names matching this are kept.
    pub include: Option<Regex>,
}

impl DeviceFilter {
    /// True when `name` is filtered out.
    pub fn ignored(&self, name: &str) -> bool {
        self.exclude.as_ref().is_some_and(|r| r.is_match(name))
            || self.include.as_ref().is_some_and(|r| !r.is_match(name))
    }
}
