//! `file_sd_configs`: JSON/YAML target files matched by globs, re-read when their directory
//! changes (inotify through `notify`) and every `refresh_interval` as a fallback. A file that
//! fails to read or parse keeps its last good targets, is logged and counted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use notify::{RecursiveMode, Watcher};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::TargetGroup;
use crate::duration::PromDuration;
use crate::group::{DocFormat, parse_groups};
use crate::manager::{Metrics, ProviderTx};

/// `__meta_filepath`: the file a target came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

fn default_refresh() -> PromDuration {
    PromDuration::from_secs(300)
}

fn is_default_refresh(d: &PromDuration) -> bool {
    *d == default_refresh()
}

/// One `file_sd_configs` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// File paths; the last path element may contain a `*` glob; names end in .json/.yml/.yaml.
    pub files: Vec<String>,
    /// Re-read interval as a fallback to file watching (default 5m).
    #[serde(default = "default_refresh", skip_serializing_if = "is_default_refresh")]
    pub refresh_interval: PromDuration,
}

impl FileSdConfig {
    /// Checks the config as Prometheus does.
    pub fn validate(&self) -> Result<(), String> {
        if self.files.is_empty() {
            return Err("file service discovery config must contain at least one path name".into());
        }
        for f in &self.files {
            let name = Path::new(f).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let dir_has_glob = Path::new(f).parent().is_some_and(|p| p.to_string_lossy().contains('*'));
            if dir_has_glob || !valid_file_name(&name) {
                return Err(format!("path name {f:?} is not valid for file discovery"));
            }
        }
        if self.refresh_interval.0.is_zero() {
            return Err("file_sd refresh_interval must be greater than 0".into());
        }
        Ok(())
    }

    /// Resolves relative paths against `dir` (the config file's directory), as Prometheus does.
    pub fn set_directory(&mut self, dir: &Path) {
        for f in &mut self.files {
            if Path::new(f).is_relative() {
                *f = dir.join(&*f).to_string_lossy().into_owned();
            }
        }
    }
}

/// Prometheus's rule: `[^*]*(\*[^/]*)?\.(json|yml|yaml)` (any case of the extension).
fn valid_file_name(name: &str) -> bool {
    let Some((stem, ext)) = name.rsplit_once('.') else { return false };
    let ext_ok = ["json", "yml", "yaml", "JSON", "YML", "YAML"].contains(&ext);
    ext_ok && stem.matches('*').count() <= 1
}

fn format_of(path: &Path) -> Option<DocFormat> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "json" => Some(DocFormat::Json),
        "yml" | "yaml" => Some(DocFormat::Yaml),
        _ => None,
    }
}

/// Files bigger than this are refused (a target list, not a data set).
const MAX_FILE_BYTES: u64 = 64 << 20;

/// Reads one target file into groups with `__meta_filepath` and sources `path:index`.
pub fn read_file(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let format = format_of(path).ok_or_else(|| format!("{}: unknown file extension", path.display()))?;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("{}: file is larger than {MAX_FILE_BYTES} bytes", path.display()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let shown = path.to_string_lossy().into_owned();
    let cfgs = parse_groups(&text, format).map_err(|e| format!("{shown}: {e}"))?;
    cfgs.iter()
        .enumerate()
        .map(|(i, c)| {
            let mut g = c.to_group(format!("{shown}:{i}")).map_err(|e| format!("{shown}: group {i}: {e}"))?;
            g.labels.insert(FILEPATH_LABEL.to_owned(), shown.clone());
            Ok(g)
        })
        .collect()
}

/// State of one file_sd provider: last good groups per file.
#[derive(Default)]
pub(crate) struct FileState {
    last: BTreeMap<PathBuf, Vec<TargetGroup>>,
}

impl FileState {
    /// Re-expands the globs and re-reads every matched file; returns all groups.
    pub(crate) fn refresh(&mut self, cfg: &FileSdConfig, metrics: &Metrics) -> Vec<TargetGroup> {
        let mut matched = Vec::new();
        for pattern in &cfg.files {
            match glob::glob(pattern) {
                Ok(paths) => matched.extend(paths.flatten()),
                Err(e) => tracing::warn!(pattern, error = %e, "file_sd: bad glob"),
            }
        }
        matched.sort();
        matched.dedup();
        let mut next = BTreeMap::new();
        for p in matched {
            match read_file(&p) {
                Ok(groups) => {
                    next.insert(p, groups);
                }
                Err(e) => {
                    metrics.file_read_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, "file_sd: error reading file; keeping its last good targets");
                    if let Some(old) = self.last.remove(&p) {
                        next.insert(p, old);
                    }
                }
            }
        }
        self.last = next;
        self.last.values().flatten().cloned().collect()
    }
}

/// Directories to watch: the parent of each pattern.
fn watch_dirs(cfg: &FileSdConfig) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = cfg
        .files
        .iter()
        .map(|f| {
            Path::new(f)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Runs the provider until the task is aborted.
pub(crate) async fn run(cfg: FileSdConfig, tx: ProviderTx, metrics: Arc<Metrics>) {
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<()>();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
            let _ = ev_tx.send(());
        }
    });
    let _watcher = match watcher {
        Ok(mut w) => {
            for d in watch_dirs(&cfg) {
                if let Err(e) = w.watch(&d, RecursiveMode::NonRecursive) {
                    tracing::warn!(dir = %d.display(), error = %e, "file_sd: cannot watch; relying on refresh_interval");
                }
            }
            Some(w)
        }
        Err(e) => {
            tracing::warn!(error = %e, "file_sd: no file watcher; relying on refresh_interval");
            None
        }
    };
    let mut state = FileState::default();
    let mut tick = tokio::time::interval(cfg.refresh_interval.0);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(()) = ev_rx.recv() => {
                // Coalesce a burst of events (write + rename + chmod) into one read.
                while ev_rx.try_recv().is_ok() {}
            }
        }
        tx.send(state.refresh(&cfg, &metrics));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_follows_prometheus_patterns() {
        let ok = |f: &str| FileSdConfig { files: vec![f.into()], refresh_interval: default_refresh() }.validate();
        assert!(ok("/etc/sd/*.json").is_ok());
        assert!(ok("targets.yml").is_ok());
        assert!(ok("a/b/nodes-*.YAML").is_ok());
        assert!(ok("/etc/*/x.json").is_err());
        assert!(ok("/etc/sd/*.txt").is_err());
        assert!(ok("/etc/sd/*a*.json").is_err());
        assert!(FileSdConfig { files: vec![], refresh_interval: default_refresh() }.validate().is_err());
    }

    #[test]
    fn broken_file_keeps_last_good_targets_and_counts() {
        let dir = std::env::temp_dir().join(format!("osprey-filesd-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("a.json");
        std::fs::write(&f, r#"[{"targets":["h1:1"],"labels":{"env":"p"}}]"#).expect("write");
        std::fs::write(dir.join("b.yml"), "- targets: ['h2:2']\n").expect("write");
        std::fs::write(dir.join("ignored.txt"), "x").expect("write");
        let cfg = FileSdConfig {
            files: vec![format!("{}/*.json", dir.display()), format!("{}/*.yml", dir.display())],
            refresh_interval: default_refresh(),
        };
        let m = Metrics::default();
        let mut st = FileState::default();
        let g = st.refresh(&cfg, &m);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].source, format!("{}:0", f.display()));
        assert_eq!(g[0].labels[FILEPATH_LABEL], f.display().to_string());
        assert_eq!(g[0].targets[0]["__address__"], "h1:1");
        std::fs::write(&f, "[{not json").expect("write");
        let g2 = st.refresh(&cfg, &m);
        assert_eq!(g2, g, "broken file keeps its last good targets");
        assert_eq!(m.file_read_errors.load(Ordering::Relaxed), 1);
        std::fs::remove_file(&f).expect("rm");
        let g3 = st.refresh(&cfg, &m);
        assert_eq!(g3.len(), 1, "a deleted file's targets go away");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
