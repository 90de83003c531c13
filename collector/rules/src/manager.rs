//! The set of loaded groups: load from `rule_files` globs, reload atomically (a bad file keeps
//! the old rules active), carry alert state across reloads.

use std::path::PathBuf;
use std::time::Duration;

use crate::file::{ParseOptions, load_rule_file};
use crate::group::RuleGroup;

/// Loaded rule groups.
#[derive(Debug, Default)]
pub struct RuleManager {
    /// Groups in file order; the collector evaluates each on its own task.
    pub groups: Vec<RuleGroup>,
}

/// Loads every file; any error fails the whole load (file, line, reason per error).
pub fn load_groups(files: &[PathBuf], default_interval: Duration) -> Result<Vec<RuleGroup>, Vec<String>> {
    let mut groups = Vec::new();
    let mut errs = Vec::new();
    for f in files {
        match load_rule_file(f, ParseOptions::default()) {
            Ok(rf) => groups.extend(rf.groups.into_iter().map(|g| RuleGroup::new(g, default_interval))),
            Err(e) => errs.extend(e),
        }
    }
    if errs.is_empty() { Ok(groups) } else { Err(errs) }
}

impl RuleManager {
    /// Replaces the rules with those in `files`; on error the old rules stay and the errors are
    /// returned. Groups with the same file and name keep their alerts' state.
    pub fn reload(&mut self, files: &[PathBuf], default_interval: Duration) -> Result<(), Vec<String>> {
        let mut new = load_groups(files, default_interval)?;
        for g in &mut new {
            if let Some(old) = self.groups.iter().find(|o| o.spec.file == g.spec.file && o.spec.name == g.spec.name) {
                g.copy_state(old);
            }
        }
        self.groups = new;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::RuleContext;
    use crate::eval::{Appender, Labels, QueryEngine, QueryError, Sample};
    use crate::group::Rule;

    /// Test-only fake engine: `x` always returns one sample.
    struct FakeEngineForUnitTests;

    impl QueryEngine for FakeEngineForUnitTests {
        fn instant(&self, _: &str, _: i64) -> Result<Vec<Sample>, QueryError> {
            Ok(vec![Sample { labels: Labels::new(), value: 1.0 }])
        }
    }

    struct Sink;

    impl Appender for Sink {
        fn append(&mut self, _: &Labels, _: i64, _: f64) {}
    }

    #[test]
    fn bad_reload_keeps_old_rules_and_good_reload_keeps_alert_state() {
        let dir = std::env::temp_dir().join(format!("osprey-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("r.yml");
        std::fs::write(&f, "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x\n    for: 10m\n").unwrap();
        let mut m = RuleManager::default();
        m.reload(std::slice::from_ref(&f), Duration::from_secs(60)).unwrap();
        m.groups[0].eval(0, &FakeEngineForUnitTests, &mut Sink, &RuleContext::default(), None);
        std::fs::write(&f, "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: 'x +'\n").unwrap();
        let errs = m.reload(std::slice::from_ref(&f), Duration::from_secs(60)).unwrap_err();
        assert!(errs[0].contains("r.yml: 5:11: group \"g\", rule 1, \"A\": could not parse expression"), "{errs:?}");
        assert_eq!(m.groups.len(), 1, "old rules stay active");
        std::fs::write(
            &f,
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x\n    for: 10m\n    labels: {team: a}\n",
        )
        .unwrap();
        m.reload(std::slice::from_ref(&f), Duration::from_secs(60)).unwrap();
        let Rule::Alerting(a) = &m.groups[0].rules[0] else { panic!() };
        assert_eq!(a.active.values().next().map(|a| a.active_at_ms), Some(0), "pending timer survives reload");
    }
}
