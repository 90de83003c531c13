//! The agent's optional TOML file: every flag is a dotted key (`[web] listen-address`,
//! `[collector.cpu] info = true`, `[collector.cpu] enabled = false`). Unknown keys and wrong
//! types are errors with the file, line and the valid keys.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::catalog::{FlagKind, Value};
use crate::cli::{ConfigError, GLOBAL_FLAGS};
use crate::collectors::ALL;

/// Parses one top-level table section (its key, e.g. `processes`, is owned by a module):
/// `(text, origin, value)` → the value stored under that key in the result, or an error with
/// file and line.
pub type SectionParser = fn(&str, &str, &toml::Spanned<DeValue<'_>>) -> Result<Value, ConfigError>;

/// Top-level tables parsed by their own modules instead of mapping to flags.
static SECTIONS: &[(&str, SectionParser)] =
    &[("probe", crate::collectors::probe::parse_section), ("processes", crate::collectors::processes::parse_section)];

/// Every key the file accepts, with its kind.
fn known_keys() -> HashMap<String, FlagKind> {
    let mut keys: HashMap<String, FlagKind> = GLOBAL_FLAGS.iter().map(|f| (f.name.to_owned(), f.kind)).collect();
    for d in ALL {
        keys.insert(format!("collector.{}.enabled", d.name), FlagKind::Bool(d.default_enabled));
        for f in d.flags {
            keys.insert(f.name.to_owned(), f.kind);
        }
    }
    keys
}

/// Reads and validates `path`; returns values by flag name (`collector.<name>.enabled` for
/// collector toggles).
pub fn load(path: &Path) -> Result<HashMap<String, Value>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("reading config file {}: {e}", path.display())))?;
    parse(&text, &path.display().to_string())
}

/// The entries of a top-level `[[key]]` array (value `v`), each with the line it starts on,
/// decoded as `T` (whose serde errors, e.g. `deny_unknown_fields`, come back as `file:line: …`).
pub fn table_array<T: DeserializeOwned>(
    text: &str,
    origin: &str,
    key: &str,
    v: &toml::Spanned<DeValue<'_>>,
) -> Result<Vec<(usize, T)>, ConfigError> {
    let line = line_of(text, v.span().start);
    let DeValue::Array(items) = v.get_ref() else {
        return Err(ConfigError(format!("{origin}:{line}: `{key}`: expected [[{key}]] tables")));
    };
    items
        .iter()
        .map(|item| {
            let line = line_of(text, item.span().start);
            if !matches!(item.get_ref(), DeValue::Table(_)) {
                return Err(ConfigError(format!("{origin}:{line}: `{key}`: expected [[{key}]] tables")));
            }
            T::deserialize(ValueDeserializer::from(item.clone())).map(|t| (line, t)).map_err(|e| {
                let at = e.span().map_or(line, |s| line_of(text, s.start));
                ConfigError(format!("{origin}:{at}: [[{key}]]: {}", e.message()))
            })
        })
        .collect()
}

/// Parses config text; `origin` names the file in errors.
pub fn parse(text: &str, origin: &str) -> Result<HashMap<String, Value>, ConfigError> {
    let table = DeTable::parse(text).map_err(|e| {
        let line = e.span().map_or(0, |s| line_of(text, s.start));
        ConfigError(format!("{origin}:{line}: invalid TOML: {}", e.message()))
    })?;
    let known = known_keys();
    let mut out = HashMap::new();
    flatten(text, origin, "", table.get_ref(), &known, &mut out)?;
    Ok(out)
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

fn flatten(
    text: &str,
    origin: &str,
    prefix: &str,
    table: &DeTable<'_>,
    known: &HashMap<String, FlagKind>,
    out: &mut HashMap<String, Value>,
) -> Result<(), ConfigError> {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.get_ref().to_string() } else { format!("{prefix}.{}", k.get_ref()) };
        let line = line_of(text, k.span().start);
        if prefix.is_empty()
            && let Some((_, parse)) = SECTIONS.iter().find(|(name, _)| *name == key)
        {
            let value = parse(text, origin, v)?;
            // A section that configures a collector turns it on unless the file says otherwise.
            out.entry(format!("collector.{key}.enabled")).or_insert(Value::Bool(true));
            out.insert(key, value);
            continue;
        }
        if let DeValue::Table(sub) = v.get_ref()
            && !known.contains_key(&key)
        {
            if !known.keys().any(|n| n.starts_with(&format!("{key}."))) {
                return Err(unknown(origin, line, &key, known));
            }
            flatten(text, origin, &key, sub, known, out)?;
            continue;
        }
        let Some(kind) = known.get(&key) else { return Err(unknown(origin, line, &key, known)) };
        let value = convert(v.get_ref(), *kind)
            .ok_or_else(|| ConfigError(format!("{origin}:{line}: key `{key}`: expected {}", expected(*kind))))?;
        out.insert(key, value);
    }
    Ok(())
}

fn expected(kind: FlagKind) -> &'static str {
    match kind {
        FlagKind::Bool(_) => "true or false",
        FlagKind::Str(_) => "a string",
        FlagKind::List => "a string or an array of strings",
    }
}

fn convert(v: &DeValue<'_>, kind: FlagKind) -> Option<Value> {
    match (kind, v) {
        (FlagKind::Bool(_), DeValue::Boolean(b)) => Some(Value::Bool(*b)),
        (FlagKind::Str(_), DeValue::String(s)) => Some(Value::Str(s.to_string())),
        (FlagKind::Str(_), DeValue::Integer(i)) => Some(Value::Str(i.as_str().to_owned())),
        (FlagKind::List, DeValue::String(s)) => Some(Value::List(vec![s.to_string()])),
        (FlagKind::List, DeValue::Array(a)) => a
            .iter()
            .map(|e| match e.get_ref() {
                DeValue::String(s) => Some(s.to_string()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(Value::List),
        _ => None,
    }
}

fn unknown(origin: &str, line: usize, key: &str, known: &HashMap<String, FlagKind>) -> ConfigError {
    let parent = key.rsplit_once('.').map_or("", |(p, _)| p);
    let siblings: BTreeSet<&str> = known
        .keys()
        .filter_map(|k| {
            let rest = if parent.is_empty() { Some(k.as_str()) } else { k.strip_prefix(parent)?.strip_prefix('.') };
            rest.map(|r| r.split('.').next().unwrap_or(r))
        })
        .collect();
    let mut siblings = siblings;
    if parent.is_empty() {
        siblings.extend(SECTIONS.iter().map(|(name, _)| *name));
    }
    let list: Vec<&str> = siblings.into_iter().collect();
    let scope = if parent.is_empty() { "at the top level".to_owned() } else { format!("under `{parent}`") };
    ConfigError(format!("{origin}:{line}: unknown key `{key}`; valid keys {scope}: {}", list.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_keys_map_to_flags() {
        let v = parse(
            "[web]\nlisten-address = \":9200\"\nmax-requests = 5\n[collector.loadavg]\nenabled = false\n",
            "a.toml",
        )
        .unwrap();
        assert_eq!(v["web.listen-address"], Value::List(vec![":9200".into()]));
        assert_eq!(v["web.max-requests"], Value::Str("5".into()));
        assert_eq!(v["collector.loadavg.enabled"], Value::Bool(false));
    }

    #[test]
    fn unknown_key_names_file_line_and_valid_keys() {
        let e = parse("[web]\n\nlisten-adress = \":9200\"\n", "agent.toml").unwrap_err();
        assert!(e.0.starts_with("agent.toml:3: unknown key `web.listen-adress`"), "{e}");
        assert!(e.0.contains("listen-address"), "{e}");
        let e = parse("[nope]\nx = 1\n", "agent.toml").unwrap_err();
        assert!(e.0.contains("unknown key `nope`"), "{e}");
        assert!(e.0.contains("processes"), "table sections are listed too: {e}");
    }

    #[test]
    fn wrong_type_is_reported() {
        let e = parse("[collector.loadavg]\nenabled = \"yes\"\n", "agent.toml").unwrap_err();
        assert_eq!(e.0, "agent.toml:2: key `collector.loadavg.enabled`: expected true or false");
    }

    #[test]
    fn invalid_toml_has_a_line() {
        let e = parse("[web\n", "agent.toml").unwrap_err();
        assert!(e.0.starts_with("agent.toml:1: invalid TOML"), "{e}");
    }
}
