//! `convert-prometheus-config`: a `prometheus.yml` to the equivalent collector TOML. Keys we
//! support are carried over (deprecated `bearer_token*` become `authorization`); every other key
//! is named in a warning, never dropped silently. The result is checked by parsing it back.

use std::path::Path;

use serde_json::Value as Json;
use toml::{Table, Value};

use crate::config::Config;

/// How a key's value is converted.
enum K {
    Str,
    Int,
    Bool,
    StrList,
    LabelMap,
    Params,
    Table(&'static [(&'static str, K)]),
    List(&'static [(&'static str, K)]),
}

const RELABEL: &[(&str, K)] = &[
    ("source_labels", K::StrList),
    ("separator", K::Str),
    ("regex", K::Str),
    ("modulus", K::Int),
    ("target_label", K::Str),
    ("replacement", K::Str),
    ("action", K::Str),
];
const STATIC: &[(&str, K)] = &[("targets", K::StrList), ("labels", K::LabelMap)];
const FILE_SD: &[(&str, K)] = &[("files", K::StrList), ("refresh_interval", K::Str)];
const DNS_SD: &[(&str, K)] = &[("names", K::StrList), ("type", K::Str), ("port", K::Int), ("refresh_interval", K::Str)];
const HTTP_SD: &[(&str, K)] = &[("url", K::Str), ("refresh_interval", K::Str)];
const BASIC_AUTH: &[(&str, K)] = &[("username", K::Str), ("password", K::Str), ("password_file", K::Str)];
const AUTHORIZATION: &[(&str, K)] = &[("type", K::Str), ("credentials", K::Str), ("credentials_file", K::Str)];
const TLS: &[(&str, K)] = &[
    ("ca_file", K::Str),
    ("cert_file", K::Str),
    ("key_file", K::Str),
    ("server_name", K::Str),
    ("insecure_skip_verify", K::Bool),
];
const SCRAPE: &[(&str, K)] = &[
    ("job_name", K::Str),
    ("honor_labels", K::Bool),
    ("honor_timestamps", K::Bool),
    ("scrape_interval", K::Str),
    ("scrape_timeout", K::Str),
    ("metrics_path", K::Str),
    ("scheme", K::Str),
    ("params", K::Params),
    ("basic_auth", K::Table(BASIC_AUTH)),
    ("authorization", K::Table(AUTHORIZATION)),
    ("tls_config", K::Table(TLS)),
    ("sample_limit", K::Int),
    ("label_limit", K::Int),
    ("label_name_length_limit", K::Int),
    ("label_value_length_limit", K::Int),
    ("body_size_limit", K::Str),
    ("target_limit", K::Int),
    ("static_configs", K::List(STATIC)),
    ("file_sd_configs", K::List(FILE_SD)),
    ("dns_sd_configs", K::List(DNS_SD)),
    ("http_sd_configs", K::List(HTTP_SD)),
    ("relabel_configs", K::List(RELABEL)),
    ("metric_relabel_configs", K::List(RELABEL)),
];
const GLOBAL: &[(&str, K)] = &[
    ("scrape_interval", K::Str),
    ("scrape_timeout", K::Str),
    ("evaluation_interval", K::Str),
    ("external_labels", K::LabelMap),
];
const ALERTMANAGER: &[(&str, K)] = &[
    ("scheme", K::Str),
    ("path_prefix", K::Str),
    ("timeout", K::Str),
    ("api_version", K::Str),
    ("basic_auth", K::Table(BASIC_AUTH)),
    ("tls_config", K::Table(TLS)),
    ("static_configs", K::List(STATIC)),
    ("file_sd_configs", K::List(FILE_SD)),
    ("dns_sd_configs", K::List(DNS_SD)),
    ("relabel_configs", K::List(RELABEL)),
];
const ALERTING: &[(&str, K)] = &[("alert_relabel_configs", K::List(RELABEL)), ("alertmanagers", K::List(ALERTMANAGER))];
const TOP: &[(&str, K)] = &[
    ("global", K::Table(GLOBAL)),
    ("rule_files", K::StrList),
    ("alerting", K::Table(ALERTING)),
    ("scrape_configs", K::List(SCRAPE)),
];

/// The conversion result.
#[derive(Debug)]
pub struct Converted {
    /// The TOML document.
    pub toml: String,
    /// One line per key that was not carried over, or value that could not be converted.
    pub warnings: Vec<String>,
}

/// Converts the text of a `prometheus.yml`; `origin` names it in messages.
pub fn convert(yaml: &str, origin: &str) -> Result<Converted, String> {
    let doc: Json = if yaml.trim().is_empty() {
        Json::Object(serde_json::Map::new())
    } else {
        serde_saphyr::from_str(yaml).map_err(|e| format!("{origin}: {e}"))?
    };
    let Json::Object(map) = doc else { return Err(format!("{origin}: expected a YAML mapping at the top level")) };
    let mut warnings = Vec::new();
    let table = table(&map, TOP, "", &mut warnings);
    let mut text = format!("# Converted from {origin} by osprey-collector convert-prometheus-config.\n");
    for w in &warnings {
        text.push_str("# warning: ");
        text.push_str(w);
        text.push('\n');
    }
    text.push('\n');
    text.push_str(&toml::to_string(&table).map_err(|e| format!("writing TOML: {e}"))?);
    // The output must load: anything else is a bug in the conversion or an invalid input.
    Config::parse(&text, "<converted>", Path::new("."))
        .map_err(|e| format!("the converted configuration is not valid: {e}"))?;
    Ok(Converted { toml: text, warnings })
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn table(map: &serde_json::Map<String, Json>, schema: &[(&str, K)], path: &str, warnings: &mut Vec<String>) -> Table {
    let mut out = Table::new();
    let is_scrape = std::ptr::eq(schema, SCRAPE);
    for (name, kind) in schema {
        let Some(v) = map.get(*name) else { continue };
        if v.is_null() {
            continue;
        }
        let p = join(path, name);
        if let Some(val) = value(v, kind, &p, warnings) {
            out.insert((*name).to_owned(), val);
        }
    }
    if is_scrape {
        bearer_token(map, &mut out, path, warnings);
    }
    for k in map.keys() {
        let known =
            schema.iter().any(|(n, _)| n == k) || (is_scrape && (k == "bearer_token" || k == "bearer_token_file"));
        if !known {
            let job = map.get("job_name").and_then(Json::as_str).map(|j| format!(" (job {j:?})")).unwrap_or_default();
            warnings.push(format!("unsupported key `{}`{job} dropped", join(path, k)));
        }
    }
    out
}

/// `bearer_token`/`bearer_token_file` (removed in Prometheus 3) become `authorization`.
fn bearer_token(map: &serde_json::Map<String, Json>, out: &mut Table, path: &str, warnings: &mut Vec<String>) {
    for (old, new) in [("bearer_token", "credentials"), ("bearer_token_file", "credentials_file")] {
        let Some(v) = map.get(old).and_then(scalar) else { continue };
        if out.contains_key("authorization") && out["authorization"].as_table().is_none_or(|t| t.contains_key(new)) {
            warnings.push(format!("key `{}` conflicts with `authorization` and was dropped", join(path, old)));
            continue;
        }
        let auth = out.entry("authorization").or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(t) = auth {
            t.insert(new.to_owned(), Value::String(v));
        }
        warnings.push(format!("deprecated key `{}` converted to `authorization.{new}`", join(path, old)));
    }
}

fn scalar(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn value(v: &Json, kind: &K, path: &str, warnings: &mut Vec<String>) -> Option<Value> {
    let mut bad = |what: &str| {
        warnings.push(format!("key `{path}`: expected {what}, value dropped"));
        None
    };
    match kind {
        K::Str => scalar(v).map(Value::String).or_else(|| bad("a string")),
        K::Int => match v {
            Json::Number(n) if n.as_i64().is_some() => n.as_i64().map(Value::Integer),
            Json::String(s) if s.parse::<i64>().is_ok() => s.parse().ok().map(Value::Integer),
            _ => bad("an integer"),
        },
        K::Bool => match v {
            Json::Bool(b) => Some(Value::Boolean(*b)),
            _ => bad("true or false"),
        },
        K::StrList => match v {
            Json::Array(a) => {
                let items: Option<Vec<Value>> = a.iter().map(|x| scalar(x).map(Value::String)).collect();
                items.map(Value::Array).or_else(|| bad("a list of strings"))
            }
            _ => bad("a list of strings"),
        },
        K::LabelMap => match v {
            Json::Object(m) => Some(Value::Table(
                m.iter().filter_map(|(k, x)| scalar(x).map(|s| (k.clone(), Value::String(s)))).collect(),
            )),
            _ => bad("a mapping of label names to values"),
        },
        K::Params => match v {
            Json::Object(m) => Some(Value::Table(
                m.iter()
                    .filter_map(|(k, x)| match x {
                        Json::Array(a) => {
                            Some((k.clone(), Value::Array(a.iter().filter_map(scalar).map(Value::String).collect())))
                        }
                        _ => scalar(x).map(|s| (k.clone(), Value::Array(vec![Value::String(s)]))),
                    })
                    .collect(),
            )),
            _ => bad("a mapping of parameter names to lists"),
        },
        K::Table(schema) => match v {
            Json::Object(m) => Some(Value::Table(table(m, schema, path, warnings))),
            _ => bad("a mapping"),
        },
        K::List(schema) => match v {
            Json::Array(a) => Some(Value::Array(
                a.iter()
                    .enumerate()
                    .filter_map(|(i, x)| {
                        if let Json::Object(m) = x {
                            Some(Value::Table(table(m, schema, &format!("{path}[{i}]"), warnings)))
                        } else {
                            warnings.push(format!("key `{path}[{i}]`: expected a mapping, value dropped"));
                            None
                        }
                    })
                    .collect(),
            )),
            _ => bad("a list"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YML: &str = r#"
global:
  scrape_interval: 15s
  evaluation_interval: 30s
  external_labels:
    region: eu
    replica: 1
  query_log_file: /tmp/q.log
rule_files: ["rules/*.yml"]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["am:9093"]
remote_write:
  - url: http://mimir/api/v1/push
scrape_configs:
  - job_name: node
    scrape_interval: 30s
    bearer_token: s3cret
    follow_redirects: true
    params:
      collect[]: [cpu, meminfo]
    static_configs:
      - targets: ["a:9100", "b:9100"]
        labels: {env: prod}
    file_sd_configs:
      - files: ["sd/*.json"]
        refresh_interval: 1m
    relabel_configs:
      - source_labels: [__address__]
        modulus: 4
        target_label: __tmp_hash
        action: hashmod
      - source_labels: [__tmp_hash]
        regex: 1
        action: keep
    metric_relabel_configs:
      - regex: go_.*
        source_labels: [__name__]
        action: drop
    sample_limit: 1000
    body_size_limit: 10MB
  - job_name: k8s
    kubernetes_sd_configs:
      - role: pod
"#;

    #[test]
    fn converts_supported_keys_and_names_the_rest() {
        let c = convert(YML, "prometheus.yml").expect("convert");
        let cfg = Config::parse(&c.toml, "out.toml", Path::new("/etc/p")).expect("valid");
        assert_eq!(cfg.global.external_labels["replica"], "1");
        assert_eq!(cfg.scrape_configs.len(), 2);
        let n = &cfg.scrape_configs[0];
        assert_eq!(n.authorization.as_ref().and_then(|a| a.credentials.as_deref()), Some("s3cret"));
        assert_eq!(n.params["collect[]"], ["cpu", "meminfo"]);
        assert_eq!(n.relabel_configs[1].regex.0.as_str(), "1");
        assert_eq!(n.relabel_configs[0].modulus, 4);
        assert_eq!(n.body_size_limit.0, 10 << 20);
        assert_eq!(cfg.alerting.as_ref().map(|a| a.alertmanagers.len()), Some(1));
        for want in [
            "unsupported key `global.query_log_file` dropped",
            "unsupported key `remote_write` dropped",
            "unsupported key `scrape_configs[0].follow_redirects` (job \"node\") dropped",
            "unsupported key `scrape_configs[1].kubernetes_sd_configs` (job \"k8s\") dropped",
            "deprecated key `scrape_configs[0].bearer_token` converted to `authorization.credentials`",
        ] {
            assert!(c.warnings.iter().any(|w| w == want), "missing warning {want:?} in {:#?}", c.warnings);
        }
        assert_eq!(c.warnings.len(), 5, "{:#?}", c.warnings);
        assert!(c.toml.contains("# warning: unsupported key `remote_write` dropped"));
    }

    #[test]
    fn invalid_input_is_an_error() {
        assert!(convert("- a\n- b\n", "p.yml").expect_err("list").contains("mapping"));
        let e =
            convert("scrape_configs:\n  - job_name: a\n    scrape_interval: 10s\n    scrape_timeout: 20s\n", "p.yml")
                .expect_err("invalid");
        assert!(e.contains("scrape timeout greater than scrape interval"), "{e}");
    }
}
