//! Target groups, the unit every discovery mechanism produces, and the `[{targets, labels}]`
//! file format shared by file_sd and http_sd.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Labels;
use crate::populate::ADDRESS_LABEL;
use crate::relabel::is_valid_label_name;

/// A set of targets sharing labels, from one source (Prometheus's `targetgroup.Group`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetGroup {
    /// Identifies the group within its provider (`file.json:0`, a DNS name, a static index).
    pub source: String,
    /// One label set per target, each with at least `__address__`.
    pub targets: Vec<Labels>,
    /// Labels common to all targets (target labels win).
    pub labels: Labels,
}

/// `static_configs` entry, also the element type of file_sd and http_sd documents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` addresses.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels attached to every target.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
}

/// The JSON form: Prometheus decodes it without rejecting unknown keys.
#[derive(Deserialize)]
struct LenientGroup {
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<Labels>,
}

impl StaticConfig {
    /// The target group for `source`, after checking label names.
    pub fn to_group(&self, source: String) -> Result<TargetGroup, String> {
        for k in self.labels.keys() {
            if !is_valid_label_name(k) {
                return Err(format!("{k:?} is not a valid label name"));
            }
        }
        let targets = self
            .targets
            .iter()
            .map(|t| {
                if t.contains('/') {
                    return Err(format!("{t:?} is not a valid hostname"));
                }
                Ok(Labels::from([(ADDRESS_LABEL.to_owned(), t.clone())]))
            })
            .collect::<Result<_, _>>()?;
        Ok(TargetGroup { source, targets, labels: self.labels.clone() })
    }
}

/// The document format of a file_sd/http_sd payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocFormat {
    /// JSON array.
    Json,
    /// YAML sequence.
    Yaml,
}

/// Parses a `[{targets, labels}]` document into group configs.
pub fn parse_groups(text: &str, format: DocFormat) -> Result<Vec<StaticConfig>, String> {
    match format {
        DocFormat::Json => {
            let raw: Vec<Option<LenientGroup>> = serde_json::from_str(text).map_err(|e| e.to_string())?;
            Ok(raw
                .into_iter()
                .flatten()
                .map(|g| StaticConfig { targets: g.targets.unwrap_or_default(), labels: g.labels.unwrap_or_default() })
                .collect())
        }
        DocFormat::Yaml => {
            if text.trim().is_empty() {
                return Ok(Vec::new());
            }
            let raw: Option<Vec<StaticConfig>> = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
            Ok(raw.unwrap_or_default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_yaml_documents() {
        let j = r#"[{"targets":["a:1","b:2"],"labels":{"env":"prod"}},{"targets":["c:3"]}]"#;
        let g = parse_groups(j, DocFormat::Json).expect("json");
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].targets, ["a:1", "b:2"]);
        assert_eq!(g[0].labels["env"], "prod");
        let y = "- targets: ['a:1']\n  labels:\n    env: prod\n- targets:\n  - c:3\n";
        let g = parse_groups(y, DocFormat::Yaml).expect("yaml");
        assert_eq!(g[1].targets, ["c:3"]);
        assert!(parse_groups("", DocFormat::Yaml).expect("empty").is_empty());
    }

    #[test]
    fn yaml_scalars_of_other_types_are_label_values_as_in_prometheus() {
        let g =
            parse_groups("- targets: [10.0.0.1:9100]\n  labels:\n    shard: 1\n    canary: true\n", DocFormat::Yaml)
                .expect("yaml");
        assert_eq!(g[0].labels["shard"], "1");
        assert_eq!(g[0].labels["canary"], "true");
        assert_eq!(g[0].targets, ["10.0.0.1:9100"]);
    }

    #[test]
    fn bad_documents_are_errors() {
        assert!(parse_groups("{", DocFormat::Json).is_err());
        assert!(parse_groups("- targets: [a]\n  lables: {}\n", DocFormat::Yaml).expect_err("typo").contains("lables"));
        let bad_label = StaticConfig { targets: vec!["a:1".into()], labels: Labels::from([("0x".into(), "v".into())]) };
        assert!(bad_label.to_group("s".into()).is_err());
    }
}
