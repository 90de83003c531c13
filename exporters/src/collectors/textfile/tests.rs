//! Tests of the `textfile` collector: every upstream fixture case, globbing, path cleaning.

use agent_core::encode::{Format, encode};
use agent_core::model::normalize;

use super::*;
use crate::testutil::fixtures;

/// The fixture root as the collector prints it (cleaned, absolute).
fn fixture_root() -> String {
    go_clean(&fixtures().to_string_lossy())
}

/// Runs the collector on `dirs` (relative to the fixture root) with mtimes fixed at 1, and
/// prints paths relative to the fixture root's parent, as upstream's test does.
fn run(dirs: &[&str]) -> String {
    let root = fixture_root();
    let c = TextFile { dirs: dirs.iter().map(|d| format!("{root}/{d}")).collect(), fixed_mtime: Some(1.0) };
    let mut sink = Sink::new();
    c.collect(&mut sink).unwrap();
    let mut fams = sink.into_families();
    normalize(&mut fams);
    let mut out = Vec::new();
    encode(&mut out, &fams, Format::Text);
    String::from_utf8(out).unwrap().replace(&format!("{root}/"), "fixtures/")
}

/// Asserts the output for `dirs` equals upstream's `textfile/<case>.out`.
fn assert_case(dirs: &[&str], case: &str) {
    let want = std::fs::read_to_string(fixtures().join(format!("textfile/{case}.out"))).unwrap();
    let got = run(dirs);
    assert_eq!(got, want, "case {case}\n--- got:\n{got}\n--- want:\n{want}");
}

#[test]
fn no_metric_files() {
    assert_case(&["textfile/no_metric_files"], "no_metric_files");
}

#[test]
fn two_metric_files() {
    assert_case(&["textfile/two_metric_files"], "two_metric_files");
}

#[test]
fn nonexistent_path() {
    assert_case(&["textfile/nonexistent_path"], "nonexistent_path");
}

#[test]
fn client_side_timestamp() {
    assert_case(&["textfile/client_side_timestamp"], "client_side_timestamp");
}

#[test]
fn different_metric_types() {
    assert_case(&["textfile/different_metric_types"], "different_metric_types");
}

#[test]
fn inconsistent_metrics() {
    assert_case(&["textfile/inconsistent_metrics"], "inconsistent_metrics");
}

#[test]
fn histogram() {
    assert_case(&["textfile/histogram"], "histogram");
}

#[test]
fn histogram_extra_dimension() {
    assert_case(&["textfile/histogram_extra_dimension"], "histogram_extra_dimension");
}

#[test]
fn summary() {
    assert_case(&["textfile/summary"], "summary");
}

#[test]
fn summary_extra_dimension() {
    assert_case(&["textfile/summary_extra_dimension"], "summary_extra_dimension");
}

#[test]
fn glob_extra_dimension_two_directories() {
    assert_case(&["textfile/histogram_extra_dimension", "textfile/summary_extra_dimension"], "glob_extra_dimension");
}

#[test]
fn glob_extra_dimension_glob() {
    assert_case(&["textfile/*_extra_dimension"], "glob_extra_dimension");
}

#[test]
fn metrics_merge_empty_help() {
    assert_case(&["textfile/metrics_merge_empty_help"], "metrics_merge_empty_help");
}

#[test]
fn metrics_merge_no_help() {
    assert_case(&["textfile/metrics_merge_no_help"], "metrics_merge_no_help");
}

#[test]
fn metrics_merge_same_help() {
    assert_case(&["textfile/metrics_merge_same_help"], "metrics_merge_same_help");
}

#[test]
fn metrics_merge_different_help() {
    assert_case(&["textfile/metrics_merge_different_help"], "metrics_merge_different_help");
}

/// A temporary directory with the given files.
fn temp_dir(tag: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("osprey-textfile-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

/// Output lines of a run over `dir`, without mtimes.
fn lines_of(dir: &Path) -> Vec<String> {
    let c = TextFile { dirs: vec![dir.to_string_lossy().into_owned()], fixed_mtime: Some(1.0) };
    let mut sink = Sink::new();
    c.collect(&mut sink).unwrap();
    let mut fams = sink.into_families();
    normalize(&mut fams);
    let mut out = Vec::new();
    encode(&mut out, &fams, Format::Text);
    String::from_utf8(out).unwrap().lines().filter(|l| !l.contains("mtime")).map(str::to_owned).collect()
}

#[test]
fn malformed_file_is_skipped_and_others_still_appear() {
    let dir = temp_dir("bad", &[("a.prom", "good 1\n"), ("b.prom", "bad{ 1\n"), ("c.prom", "also_good 2\n")]);
    let lines = lines_of(&dir);
    assert!(lines.contains(&"node_textfile_scrape_error 1".to_owned()), "{lines:?}");
    assert!(lines.iter().any(|l| l == "good 1") && lines.iter().any(|l| l == "also_good 2"), "{lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("bad")), "{lines:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn merge_rules_of_client_golang() {
    let dir = temp_dir(
        "merge",
        &[
            ("a.prom", "# TYPE x counter\nx{f=\"a\"} 1\ndup 1\n"),
            ("b.prom", "# TYPE x gauge\nx{f=\"b\"} 2\ndup 2\n"),
            ("c.prom", "# HELP h first\nh 1\n"),
            ("d.prom", "h{f=\"d\"} 2\n"),
        ],
    );
    let lines = lines_of(&dir);
    let has = |l: &str| lines.iter().any(|x| x == l);
    // The later family of another type and the repeated series are dropped.
    assert!(has("x{f=\"a\"} 1") && !has("x{f=\"b\"} 2"), "{lines:?}");
    assert!(has("dup 1") && !has("dup 2"), "{lines:?}");
    // A file without HELP after one with HELP gets the generated help, which then conflicts.
    assert!(has("# HELP h first") && has("h 1") && !has("h{f=\"d\"} 2"), "{lines:?}");
    assert!(has("node_textfile_scrape_error 0"), "{lines:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn fractional_histogram_counts_read_as_zero() {
    let dir = temp_dir("frac", &[("h.prom", "# TYPE h histogram\nh_bucket{le=\"1\"} 0.5\nh_sum 3\nh_count 1\n")]);
    let lines = lines_of(&dir);
    for want in ["h_bucket{le=\"1\"} 0", "h_bucket{le=\"+Inf\"} 0", "h_sum 3", "h_count 0"] {
        assert!(lines.iter().any(|l| l == want), "{want}: {lines:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cleans_paths_like_go() {
    assert_eq!(go_clean("a/b/../c/./d/"), "a/c/d");
    assert_eq!(go_clean("/../x//y"), "/x/y");
    assert_eq!(go_clean("../../x"), "../../x");
    assert_eq!(go_clean(""), ".");
    assert_eq!(go_clean("/"), "/");
}

#[test]
fn glob_patterns_like_go() {
    assert_eq!(glob_match("*.prom", "a.prom"), Some(true));
    assert_eq!(glob_match("*_extra_dimension", "histogram_extra_dimension"), Some(true));
    assert_eq!(glob_match("a?c", "abc"), Some(true));
    assert_eq!(glob_match("[a-c]x", "bx"), Some(true));
    assert_eq!(glob_match("[^a-c]x", "bx"), Some(false));
    assert_eq!(glob_match("\\*", "*"), Some(true));
    assert_eq!(glob_match("[]a]", "a"), None);
    assert_eq!(glob_match("[a-", "a"), None);
    assert_eq!(glob_match("x[", "y"), None, "malformed even when the prefix fails");
    let root = fixture_root();
    let got = glob(&format!("{root}/textfile/*_dimension")).unwrap();
    assert_eq!(
        got,
        [format!("{root}/textfile/histogram_extra_dimension"), format!("{root}/textfile/summary_extra_dimension")]
    );
    assert_eq!(glob_or_literal("/nonexistent/*"), ["/nonexistent/*"]);
}
