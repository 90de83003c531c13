//! The agent's optional TOML file: every flag is a dotted key (`[web] listen-address`,
//! `[collector.cpu] info = true`, `[collector.cpu] enabled = false`). Unknown keys and wrong
//! types are errors with the file, line and the valid keys.
//!
//! Collectors configured by lists of entries own a top-level array of tables (`[[probe]]`,
//! registered in [`crate::collectors::TABLES`]); they read it with [`tables`], which gives
//! serde errors (unknown fields, wrong types) the file and line.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::catalog::{ConfigSource, FlagKind, Value};
use crate::cli::{ConfigError, GLOBAL_FLAGS};
use crate::collectors::{ALL, TABLES};

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

/// [`load`], also returning the file's text for collectors that read their own tables.
pub fn load_source(path: &Path) -> Result<(HashMap<String, Value>, ConfigSource), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("reading config file {}: {e}", path.display())))?;
    let origin = path.display().to_string();
    let values = parse(&text, &origin)?;
    Ok((values, ConfigSource { origin, text }))
}

/// True when the file has a top-level `[[key]]` array.
pub fn has_tables(src: &ConfigSource, key: &str) -> bool {
    DeTable::parse(&src.text).is_ok_and(|t| t.get_ref().contains_key(key))
}

/// The entries of the top-level `[[key]]` array, each with the line it starts on, decoded
/// as `T` (whose serde errors, e.g. `deny_unknown_fields`, come back as `file:line: …`).
pub fn tables<T: DeserializeOwned>(src: &ConfigSource, key: &str) -> Result<Vec<(usize, T)>, ConfigError> {
    let text = src.text.as_str();
    let origin = &src.origin;
    let root = DeTable::parse(text).map_err(|e| {
        let line = e.span().map_or(0, |s| line_of(text, s.start));
        ConfigError(format!("{origin}:{line}: invalid TOML: {}", e.message()))
    })?;
    let Some(v) = root.get_ref().get(key) else { return Ok(Vec::new()) };
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

fn line_of(text: &str, offset: usize) -> usize {
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
        if prefix.is_empty() && TABLES.iter().any(|(t, _)| *t == key) {
            // Checked in detail by the owning collector at build time.
            if !matches!(v.get_ref(), DeValue::Array(a) if a.iter().all(|i| matches!(i.get_ref(), DeValue::Table(_)))) {
                return Err(ConfigError(format!("{origin}:{line}: `{key}`: expected [[{key}]] tables")));
            }
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
        siblings.extend(TABLES.iter().map(|(t, _)| *t));
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
    }

    #[test]
    fn wrong_type_is_reported() {
        let e = parse("[collector.loadavg]\nenabled = \"yes\"\n", "agent.toml").unwrap_err();
        assert_eq!(e.0, "agent.toml:2: key `collector.loadavg.enabled`: expected true or false");
    }

    #[test]
    fn table_arrays_are_left_to_their_collector_but_must_be_tables() {
        assert!(parse("[[probe]]\nname = \"a\"\nwhatever = 1\n", "a.toml").unwrap().is_empty());
        let e = parse("\nprobe = 1\n", "a.toml").unwrap_err();
        assert_eq!(e.0, "a.toml:2: `probe`: expected [[probe]] tables");
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            name: String,
        }
        let src = ConfigSource {
            origin: "a.toml".into(),
            text: "[[probe]]\nname = \"a\"\n\n[[probe]]\nnam = \"b\"\n".into(),
        };
        let e = tables::<T>(&src, "probe").unwrap_err();
        assert!(e.0.starts_with("a.toml:5: [[probe]]: unknown field `nam`"), "{e}");
        let src = ConfigSource { origin: "a.toml".into(), text: "[[probe]]\nname = \"a\"\n".into() };
        assert_eq!(tables::<T>(&src, "probe").unwrap()[0].0, 1);
    }

    #[test]
    fn invalid_toml_has_a_line() {
        let e = parse("[web\n", "agent.toml").unwrap_err();
        assert!(e.0.starts_with("agent.toml:1: invalid TOML"), "{e}");
    }
}
