//! The `[processes]` section of the agent's TOML: process groups in process-exporter's model.
//!
//! ```toml
//! [processes]
//! children = true            # a matched process's unmatched descendants join its group
//! threads = true             # sum context switches and states over threads (as upstream)
//! smaps = false              # proportional memory from smaps_rollup (costly)
//!
//! [[processes.group]]
//! name = "{{.Comm}}"         # template; default "{{.ExeBase}}"
//! comm = ["nginx"]           # any of these /proc/PID/comm values
//! exe = ["/usr/sbin/nginx"]  # argv[0]: a full path, or a base name matching any directory
//! cmdline = ['-c (?P<cfg>\S+)']  # every regex must match the space-joined command line
//! ```
//! Within a group every given matcher must match; groups are tried in order, first match wins
//! (process-exporter's `process_names`). Errors name the file and line.

use std::collections::HashMap;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use crate::catalog::{Section, Value};
use crate::cli::ConfigError;
use crate::config_file::line_of;

/// The validated `[processes]` section.
#[derive(Debug)]
pub struct ProcessesConfig {
    /// Track unmatched descendants of matched processes in their ancestor's group.
    pub children: bool,
    /// Read `/proc/PID/task/*` of multi-threaded processes for context switches and states.
    pub threads: bool,
    /// Read `/proc/PID/smaps_rollup` for proportional memory.
    pub smaps: bool,
    /// The groups, in match order.
    pub groups: Vec<Group>,
}

impl Default for ProcessesConfig {
    fn default() -> Self {
        Self { children: true, threads: true, smaps: false, groups: Vec::new() }
    }
}

/// One `[[processes.group]]`.
#[derive(Debug)]
pub struct Group {
    /// The name template.
    pub name: Template,
    /// Accepted `comm` values (empty = no comm matcher).
    pub comm: Vec<String>,
    /// `exe` rules: (base name, full path when the rule had a `/`).
    pub exe: Vec<(String, Option<String>)>,
    /// Command line regexes, all of which must match.
    pub cmdline: Vec<Regex>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionToml {
    /// process-exporter's `-children` (default true).
    #[serde(default = "yes")]
    children: bool,
    /// Read `task/*/` of multi-threaded processes, as process-exporter always does (default true).
    #[serde(default = "yes")]
    threads: bool,
    /// process-exporter's `-gather-smaps` (default false here: it costs a large read per process).
    #[serde(default)]
    smaps: bool,
    /// The groups.
    #[serde(default)]
    group: Vec<Spanned<GroupToml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupToml {
    /// Name template.
    name: Option<Spanned<String>>,
    /// comm values.
    comm: Option<Vec<String>>,
    /// exe rules.
    exe: Option<Vec<String>>,
    /// cmdline regexes.
    cmdline: Option<Vec<Spanned<String>>>,
}

fn yes() -> bool {
    true
}

/// Parses the `processes` table of the config file.
pub fn parse_section(text: &str, origin: &str, v: &Spanned<DeValue<'_>>) -> Result<Value, ConfigError> {
    let err = |offset: usize, msg: &str| ConfigError(format!("{origin}:{}: {msg}", line_of(text, offset)));
    let raw = SectionToml::deserialize(toml::de::ValueDeserializer::from(v.clone())).map_err(|e| {
        let at = e.span().map_or(v.span().start, |s| s.start);
        err(at, &format!("[processes]: {}", e.message().trim_end()))
    })?;
    let mut groups = Vec::new();
    let mut literal_names: HashMap<String, usize> = HashMap::new();
    for g in raw.group {
        let at = g.span().start;
        let g = g.into_inner();
        if g.comm.is_none() && g.exe.is_none() && g.cmdline.is_none() {
            return Err(err(at, "[[processes.group]]: no matchers provided (give comm, exe or cmdline)"));
        }
        let (name_src, name_at) = g.name.map_or(("{{.ExeBase}}".to_owned(), at), |n| {
            let s = n.span().start;
            (n.into_inner(), s)
        });
        let name = Template::parse(&name_src)
            .map_err(|e| err(name_at, &format!("[[processes.group]] name {name_src:?}: {e}")))?;
        if let Some(lit) = name.literal() {
            let line = line_of(text, name_at);
            if let Some(first) = literal_names.insert(lit.to_owned(), line) {
                return Err(err(name_at, &format!("duplicate group name {lit:?} (first defined at line {first})")));
            }
        }
        let mut cmdline = Vec::new();
        for r in g.cmdline.unwrap_or_default() {
            let s = r.span().start;
            let src = r.into_inner();
            let re = Regex::new(&src).map_err(|e| {
                err(s, &format!("[[processes.group]] cmdline: invalid regular expression {src:?}: {e}"))
            })?;
            cmdline.push(re);
        }
        let exe = g
            .exe
            .unwrap_or_default()
            .into_iter()
            .map(|e| if e.contains('/') { (base_name(&e).to_owned(), Some(e)) } else { (e, None) })
            .collect();
        groups.push(Group { name, comm: g.comm.unwrap_or_default(), exe, cmdline });
    }
    let cfg = ProcessesConfig { children: raw.children, threads: raw.threads, smaps: raw.smaps, groups };
    Ok(Value::Section(Section(std::sync::Arc::new(cfg))))
}

/// Go's `filepath.Base` for the paths that occur in argv[0].
pub fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if path.is_empty() { "." } else { "/" };
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// What a process offers to matchers and name templates.
#[derive(Debug, Default)]
pub struct ProcAttrs<'a> {
    /// `/proc/PID/comm` (from `stat`).
    pub comm: &'a str,
    /// `/proc/PID/cmdline` split on NUL.
    pub cmdline: &'a [String],
    /// The PID.
    pub pid: i32,
}

impl Group {
    /// `Some(captures)` when every matcher of this group accepts the process.
    pub fn matches(&self, p: &ProcAttrs<'_>) -> Option<HashMap<String, String>> {
        if !self.comm.is_empty() && !self.comm.iter().any(|c| c == p.comm) {
            return None;
        }
        if !self.exe.is_empty() {
            let argv0 = p.cmdline.first()?;
            let base = base_name(argv0);
            let ok = self.exe.iter().any(|(b, full)| b == base && full.as_ref().is_none_or(|f| f == argv0));
            if !ok {
                return None;
            }
        }
        let mut captures = HashMap::new();
        if !self.cmdline.is_empty() {
            let joined = p.cmdline.join(" ");
            for re in &self.cmdline {
                let caps = re.captures(&joined)?;
                for (i, name) in re.capture_names().enumerate() {
                    let v = caps.get(i).map_or("", |m| m.as_str());
                    captures.insert(name.unwrap_or("").to_owned(), v.to_owned());
                }
            }
        }
        Some(captures)
    }
}

/// A name template: Go `text/template` syntax limited to field references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

/// A piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Text copied as is.
    Lit(String),
    /// `{{.Comm}}`.
    Comm,
    /// `{{.ExeBase}}`.
    ExeBase,
    /// `{{.ExeFull}}`.
    ExeFull,
    /// `{{.PID}}`.
    Pid,
    /// `{{.Username}}`.
    Username,
    /// `{{.Matches.NAME}}`.
    Match(String),
}

/// What a template is rendered from.
pub struct TemplateInput<'a> {
    /// The process.
    pub attrs: &'a ProcAttrs<'a>,
    /// Captures of the cmdline regexes.
    pub matches: &'a HashMap<String, String>,
    /// The effective user name, looked up only when the template uses it.
    pub username: &'a dyn Fn() -> String,
}

impl Template {
    /// Parses `{{.Comm}}`, `{{.ExeBase}}`, `{{.ExeFull}}`, `{{.PID}}`, `{{.Username}}` and
    /// `{{.Matches.NAME}}` (spaces inside the braces allowed) between literal text.
    pub fn parse(src: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = src;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or("unclosed {{")?;
            let action = after[..close].trim();
            let part = match action {
                ".Comm" => Part::Comm,
                ".ExeBase" => Part::ExeBase,
                ".ExeFull" => Part::ExeFull,
                ".PID" => Part::Pid,
                ".Username" => Part::Username,
                a => match a.strip_prefix(".Matches.") {
                    Some(n) if !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                        Part::Match(n.to_owned())
                    }
                    _ => {
                        return Err(format!(
                            "unsupported template action {{{{{a}}}}} (supported: .Comm, .ExeBase, .ExeFull, .PID, .Username, .Matches.NAME)"
                        ));
                    }
                },
            };
            parts.push(part);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_owned()));
        }
        Ok(Self(parts))
    }

    /// The fixed name when the template has no actions.
    pub fn literal(&self) -> Option<&str> {
        match self.0.as_slice() {
            [] => Some(""),
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Renders the template; a missing capture renders as process-exporter renders it
    /// (`<no value>`).
    pub fn render(&self, input: &TemplateInput<'_>) -> String {
        let a = input.attrs;
        let (exe_base, exe_full) = match a.cmdline.first() {
            Some(full) => (base_name(full), full.as_str()),
            None => (a.comm, a.comm),
        };
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Comm => out.push_str(a.comm),
                Part::ExeBase => out.push_str(exe_base),
                Part::ExeFull => out.push_str(exe_full),
                Part::Pid => out.push_str(&a.pid.to_string()),
                Part::Username => out.push_str(&(input.username)()),
                Part::Match(n) => out.push_str(input.matches.get(n).map_or("<no value>", String::as_str)),
            }
        }
        out
    }

    /// True when rendering needs the user name.
    pub fn uses_username(&self) -> bool {
        self.0.contains(&Part::Username)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<std::sync::Arc<ProcessesConfig>, ConfigError> {
        let v = crate::config_file::parse(text, "agent.toml")?;
        match v.get("processes") {
            Some(Value::Section(s)) => Ok(s.0.clone().downcast::<ProcessesConfig>().expect("type")),
            other => panic!("no section: {other:?}"),
        }
    }

    #[test]
    fn groups_parse_and_enable_the_collector() {
        let text = "[processes]\nchildren = false\n[[processes.group]]\nname = \"web-{{.Matches.port}}\"\ncmdline = ['--port=(?P<port>\\d+)']\n[[processes.group]]\ncomm = [\"sshd\"]\n";
        let c = parse(text).unwrap();
        assert!(!c.children && c.threads && !c.smaps);
        assert_eq!(c.groups.len(), 2);
        let v = crate::config_file::parse(text, "agent.toml").unwrap();
        assert_eq!(v["collector.processes.enabled"], Value::Bool(true));
        let v = crate::config_file::parse(&format!("[collector.processes]\nenabled = false\n{text}"), "a").unwrap();
        assert_eq!(v["collector.processes.enabled"], Value::Bool(false));
    }

    #[test]
    fn invalid_regex_names_file_and_line() {
        let e = parse("[[processes.group]]\nname = \"x\"\ncmdline = [\n  'ok',\n  'bad(',\n]\n").unwrap_err();
        assert!(
            e.0.starts_with("agent.toml:5: [[processes.group]] cmdline: invalid regular expression \"bad(\""),
            "{e}"
        );
    }

    #[test]
    fn duplicate_group_name_names_both_lines() {
        let e = parse("[[processes.group]]\nname = \"db\"\ncomm = [\"a\"]\n\n[[processes.group]]\nname = \"db\"\ncomm = [\"b\"]\n")
            .unwrap_err();
        assert_eq!(e.0, "agent.toml:6: duplicate group name \"db\" (first defined at line 2)");
    }

    #[test]
    fn unknown_key_and_missing_matchers_are_errors() {
        let e = parse("[[processes.group]]\nname = \"x\"\ncomms = [\"a\"]\n").unwrap_err();
        assert!(e.0.starts_with("agent.toml:") && e.0.contains("unknown field `comms`"), "{e}");
        let e = parse("[processes]\nthread = true\n").unwrap_err();
        assert!(e.0.contains("unknown field `thread`"), "{e}");
        let e = parse("\n[[processes.group]]\nname = \"x\"\n").unwrap_err();
        assert_eq!(e.0, "agent.toml:2: [[processes.group]]: no matchers provided (give comm, exe or cmdline)");
        let e = parse("[[processes.group]]\nname = \"{{.Cgroups}}\"\ncomm = [\"a\"]\n").unwrap_err();
        assert!(e.0.starts_with("agent.toml:2: [[processes.group]] name") && e.0.contains("unsupported"), "{e}");
    }

    fn attrs<'a>(comm: &'a str, cmdline: &'a [String]) -> ProcAttrs<'a> {
        ProcAttrs { comm, cmdline, pid: 42 }
    }

    #[test]
    fn matchers_follow_process_exporter() {
        let c = parse(
            "[[processes.group]]\nexe = [\"/usr/sbin/nginx\", \"postgres\"]\n[[processes.group]]\ncomm = [\"bash\"]\ncmdline = ['-c (?P<what>\\w+)']\nname = \"{{.Comm}}:{{.Matches.what}}:{{.PID}}:{{ .ExeFull }}\"\n",
        )
        .unwrap();
        let argv = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let nginx = argv(&["/usr/sbin/nginx", "-g", "daemon off;"]);
        let other_nginx = argv(&["/opt/nginx"]);
        let pg = argv(&["/usr/lib/postgresql/15/bin/postgres"]);
        assert!(c.groups[0].matches(&attrs("nginx", &nginx)).is_some());
        assert!(c.groups[0].matches(&attrs("nginx", &other_nginx)).is_none());
        assert!(c.groups[0].matches(&attrs("postgres", &pg)).is_some());
        assert!(c.groups[0].matches(&attrs("kthreadd", &[])).is_none());
        let bash = argv(&["/bin/bash", "-c", "loop"]);
        let m = c.groups[1].matches(&attrs("bash", &bash)).unwrap();
        let user = || "root".to_owned();
        let a = attrs("bash", &bash);
        let name = c.groups[1].name.render(&TemplateInput { attrs: &a, matches: &m, username: &user });
        assert_eq!(name, "bash:loop:42:/bin/bash");
        assert!(c.groups[1].matches(&attrs("sh", &bash)).is_none());
        // Default template: ExeBase, falling back to comm without a command line.
        let a = attrs("kworker/0:1", &[]);
        let t = Template::parse("{{.ExeBase}}").unwrap();
        assert_eq!(t.render(&TemplateInput { attrs: &a, matches: &HashMap::new(), username: &user }), "kworker/0:1");
    }
}
