//! `osprey-collector check rules` and `osprey-collector test rules`: promtool's flags, output
//! and exit codes, on our rule parser and the real PromQL engine.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use osprey_rules::check::{CheckOptions, check_rules};
use osprey_rules::file::ParseOptions;
use osprey_rules::unittest::{TestOptions, test_rules};

use crate::rules_eval::MemTestBackend;

/// `check rules` arguments (promtool's).
#[derive(clap::Args, Debug)]
pub struct CheckRulesArgs {
    /// Linting checks to apply (comma-separated): all, duplicate-rules, none.
    #[arg(long, default_value = "duplicate-rules")]
    pub lint: String,
    /// Make lint errors exit with exit code 3.
    #[arg(long = "lint-fatal")]
    pub lint_fatal: bool,
    /// Ignore unknown fields in the rule files.
    #[arg(long = "ignore-unknown-fields")]
    pub ignore_unknown_fields: bool,
    /// Accepted for promtool compatibility; every PromQL feature is always on here.
    #[arg(long = "enable-feature", value_delimiter = ',')]
    pub enable_feature: Vec<String>,
    /// The rule files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `test …` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum TestWhat {
    /// Unit tests for rules (promtool's test file format).
    Rules(TestRulesArgs),
}

/// `test rules` arguments (promtool's).
#[derive(clap::Args, Debug)]
pub struct TestRulesArgs {
    /// Only run test groups whose name matches this regex (repeatable).
    #[arg(long)]
    pub run: Vec<String>,
    /// Ignore unknown fields in the test and rule files.
    #[arg(long = "ignore-unknown-fields")]
    pub ignore_unknown_fields: bool,
    /// Accepted for promtool compatibility; every PromQL feature is always on here.
    #[arg(long = "enable-feature", value_delimiter = ',')]
    pub enable_feature: Vec<String>,
    /// The unit test files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

fn emit(stdout: &str, stderr: &str) {
    let _ = std::io::stdout().lock().write_all(stdout.as_bytes());
    let _ = std::io::stderr().lock().write_all(stderr.as_bytes());
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// promtool's file arguments must exist before anything runs (kingpin's `ExistingFiles`).
fn missing_file(files: &[PathBuf]) -> Option<ExitCode> {
    let missing = files.iter().find(|f| !f.exists())?;
    eprintln!("osprey-collector: error: path '{}' does not exist, try --help", missing.display());
    Some(ExitCode::from(1))
}

/// Runs `check rules`.
pub fn check_rules_cmd(a: &CheckRulesArgs) -> ExitCode {
    if let Some(code) = missing_file(&a.files) {
        return code;
    }
    // promtool warns about unknown lint options (on stdout) and carries on without them.
    let mut warnings = String::new();
    let mut duplicates = false;
    for opt in a.lint.split(',') {
        match opt {
            "all" | "duplicate-rules" => duplicates = true,
            "none" => {}
            other => {
                let _ = writeln!(warnings, "WARNING: unknown lint option {other}");
            }
        }
    }
    let opts = CheckOptions {
        parse: ParseOptions { ignore_unknown_fields: a.ignore_unknown_fields },
        lint_fatal: a.lint_fatal,
        no_lint: !duplicates,
    };
    let rep = check_rules(&a.files, opts);
    emit(&(warnings + &rep.stdout), &rep.stderr);
    exit(rep.exit_code)
}

/// Runs `test rules`.
pub fn test_rules_cmd(what: &TestWhat) -> ExitCode {
    let TestWhat::Rules(a) = what;
    if let Some(code) = missing_file(&a.files) {
        return code;
    }
    let opts = TestOptions { run: a.run.clone(), ignore_unknown_fields: a.ignore_unknown_fields };
    let rep = test_rules(&a.files, &MemTestBackend, &opts);
    emit(&rep.stdout, &rep.stderr);
    exit(rep.exit_code)
}
