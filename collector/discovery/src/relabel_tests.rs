//! Table tests for relabel semantics, cases chosen from Prometheus's edge cases.

use std::collections::BTreeMap;

use super::*;

fn ls(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn rule(toml_like: &[(&str, &str)]) -> RelabelConfig {
    let mut c = RelabelConfig::default();
    for (k, v) in toml_like {
        match *k {
            "source_labels" => c.source_labels = v.split(',').map(str::to_owned).collect(),
            "separator" => c.separator = (*v).to_owned(),
            "regex" => c.regex = RelabelRegex::new(v).expect("regex"),
            "modulus" => c.modulus = v.parse().expect("modulus"),
            "target_label" => c.target_label = (*v).to_owned(),
            "replacement" => c.replacement = (*v).to_owned(),
            "action" => c.action = serde_json::from_value(serde_json::Value::String((*v).to_owned())).expect("action"),
            _ => panic!("bad key {k}"),
        }
    }
    c.validate().unwrap_or_else(|e| panic!("invalid test rule {toml_like:?}: {e}"));
    c
}

/// (input, rules, expected output or None when dropped)
type Case =
    (&'static [(&'static str, &'static str)], Vec<RelabelConfig>, Option<&'static [(&'static str, &'static str)]>);

fn cases() -> Vec<Case> {
    vec![
        // replace with a capture
        (
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            vec![rule(&[
                ("source_labels", "a"),
                ("regex", "f(.*)"),
                ("target_label", "d"),
                ("replacement", "ch${1}-ch${1}"),
            ])],
            Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")]),
        ),
        // joined sources with the separator, several rules in order
        (
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            vec![
                rule(&[
                    ("source_labels", "a,b"),
                    ("regex", "f(.*);(.*)r"),
                    ("target_label", "a"),
                    ("replacement", "b${1}${2}m"),
                ]),
                rule(&[
                    ("source_labels", "c,a"),
                    ("regex", "(b).*b(.*)ba(.*)"),
                    ("target_label", "d"),
                    ("replacement", "$1$2$2$3"),
                ]),
            ],
            Some(&[("a", "boobam"), ("b", "bar"), ("c", "baz"), ("d", "boooom")]),
        ),
        // no match: nothing happens
        (
            &[("a", "foo")],
            vec![rule(&[("source_labels", "a"), ("regex", "f"), ("target_label", "x"), ("replacement", "y")])],
            Some(&[("a", "foo")]),
        ),
        // empty replacement result deletes the target label
        (
            &[("a", "foo"), ("b", "bar")],
            vec![rule(&[("source_labels", "a"), ("regex", "(f).*"), ("target_label", "b"), ("replacement", "$2")])],
            Some(&[("a", "foo")]),
        ),
        // absent source label reads as "" and the default regex matches it: sets a constant
        (
            &[("a", "foo")],
            vec![rule(&[("source_labels", "missing"), ("target_label", "env"), ("replacement", "prod")])],
            Some(&[("a", "foo"), ("env", "prod")]),
        ),
        // templated target label; an invalid expanded name is skipped
        (
            &[("a", "some-name-value")],
            vec![
                rule(&[
                    ("source_labels", "a"),
                    ("regex", "some-([^-]+)-([^,]+)"),
                    ("target_label", "${1}"),
                    ("replacement", "${2}"),
                ]),
                rule(&[
                    ("source_labels", "a"),
                    ("regex", "some-([^-]+)(-[^,]+)"),
                    ("target_label", "${2}"),
                    ("replacement", "x"),
                ]),
            ],
            Some(&[("a", "some-name-value"), ("name", "value")]),
        ),
        // $1x is the (missing) group "1x": empty value deletes
        (
            &[("a", "foo")],
            vec![rule(&[("source_labels", "a"), ("regex", "(.*)"), ("target_label", "a"), ("replacement", "$1x")])],
            Some(&[]),
        ),
        // keep / drop are anchored
        (&[("a", "foo")], vec![rule(&[("source_labels", "a"), ("regex", "f"), ("action", "keep")])], None),
        (
            &[("a", "foo")],
            vec![rule(&[("source_labels", "a"), ("regex", "fo+"), ("action", "keep")])],
            Some(&[("a", "foo")]),
        ),
        (&[("a", "foo")], vec![rule(&[("source_labels", "a"), ("regex", "f.*"), ("action", "drop")])], None),
        (
            &[("a", "foo")],
            vec![rule(&[("source_labels", "a"), ("regex", "o"), ("action", "drop")])],
            Some(&[("a", "foo")]),
        ),
        // keep on an absent label with a regex that needs text drops
        (&[("a", "foo")], vec![rule(&[("source_labels", "b"), ("regex", ".+"), ("action", "keep")])], None),
        // action names are case-insensitive
        (&[("a", "foo")], vec![rule(&[("source_labels", "a"), ("regex", "foo"), ("action", "DROP")])], None),
        // keepequal / dropequal
        (
            &[("a", "1"), ("b", "1")],
            vec![rule(&[("source_labels", "a"), ("target_label", "b"), ("action", "keepequal")])],
            Some(&[("a", "1"), ("b", "1")]),
        ),
        (
            &[("a", "1"), ("b", "2")],
            vec![rule(&[("source_labels", "a"), ("target_label", "b"), ("action", "keepequal")])],
            None,
        ),
        (
            &[("a", "1"), ("b", "1")],
            vec![rule(&[("source_labels", "a"), ("target_label", "b"), ("action", "dropequal")])],
            None,
        ),
        // hashmod: values computed by Prometheus (md5, last 8 bytes, big endian)
        (
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            vec![rule(&[("source_labels", "c"), ("target_label", "d"), ("modulus", "1000"), ("action", "hashmod")])],
            Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
        ),
        (
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            vec![rule(&[("source_labels", "a,b"), ("target_label", "d"), ("modulus", "10"), ("action", "hashmod")])],
            Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "0")]),
        ),
        // labelmap
        (
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            vec![rule(&[("regex", "a"), ("replacement", "b"), ("action", "labelmap")])],
            Some(&[("a", "foo"), ("b", "foo"), ("c", "baz")]),
        ),
        (
            &[("__meta_my_bar", "aaa"), ("__meta_my_baz", "bbb"), ("__meta_other", "ccc")],
            vec![rule(&[("regex", "__meta_(my.*)"), ("replacement", "${1}"), ("action", "labelmap")])],
            Some(&[
                ("__meta_my_bar", "aaa"),
                ("__meta_my_baz", "bbb"),
                ("__meta_other", "ccc"),
                ("my_bar", "aaa"),
                ("my_baz", "bbb"),
            ]),
        ),
        // labeldrop / labelkeep
        (
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            vec![rule(&[("regex", "a|b"), ("action", "labeldrop")])],
            Some(&[("c", "baz")]),
        ),
        (
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            vec![rule(&[("regex", "(b.*)"), ("action", "labelkeep")])],
            Some(&[("b", "bar")]),
        ),
        // lowercase / uppercase
        (
            &[("foo", "bAr123Foo")],
            vec![
                rule(&[("source_labels", "foo"), ("target_label", "foo_lower"), ("action", "lowercase")]),
                rule(&[("source_labels", "foo"), ("target_label", "foo_upper"), ("action", "uppercase")]),
            ],
            Some(&[("foo", "bAr123Foo"), ("foo_lower", "bar123foo"), ("foo_upper", "BAR123FOO")]),
        ),
        // a regex alternation does not escape the anchors
        (&[("a", "xfoo")], vec![rule(&[("source_labels", "a"), ("regex", "foo|bar"), ("action", "keep")])], None),
        // the s flag: `.` matches a newline
        (
            &[("a", "x\ny")],
            vec![rule(&[("source_labels", "a"), ("regex", "x.y"), ("action", "keep")])],
            Some(&[("a", "x\ny")]),
        ),
    ]
}

#[test]
fn relabel_table() {
    for (i, (input, rules, want)) in cases().into_iter().enumerate() {
        let mut l = ls(input);
        let kept = process(&mut l, &rules);
        match want {
            None => assert!(!kept, "case {i}: expected drop, got {l:?}"),
            Some(w) => {
                assert!(kept, "case {i}: unexpectedly dropped");
                assert_eq!(l, ls(w), "case {i}");
            }
        }
    }
}

#[test]
fn hashmod_matches_prometheus() {
    // 976 is the value in Prometheus's own relabel tests; the integration test compares more with a running Prometheus.
    assert_eq!(hashmod("baz", 1000), 976);
    assert_eq!(hashmod("foo;bar", 10), 0);
}

#[test]
fn validation_follows_prometheus() {
    let bad: &[(&[(&str, &str)], &str)] = &[
        (&[("action", "hashmod"), ("target_label", "x")], "non-zero modulus"),
        (&[("action", "replace")], "requires 'target_label'"),
        (&[("action", "lowercase")], "requires 'target_label'"),
        (&[("action", "replace"), ("target_label", "0bad")], "invalid 'target_label'"),
        (&[("action", "replace"), ("target_label", "a-$1")], "invalid 'target_label'"),
        (&[("action", "uppercase"), ("target_label", "x"), ("replacement", "y")], "can not be set"),
        (&[("action", "labelmap"), ("replacement", "a-b")], "invalid 'replacement'"),
        (&[("action", "keepequal"), ("target_label", "x"), ("regex", "a")], "requires only 'source_labels'"),
        (&[("action", "labeldrop"), ("source_labels", "a")], "requires only 'regex'"),
        (&[("action", "labelkeep"), ("target_label", "a")], "requires only 'regex'"),
    ];
    for (pairs, want) in bad {
        let mut c = RelabelConfig::default();
        for (k, v) in *pairs {
            match *k {
                "action" => {
                    c.action = serde_json::from_value(serde_json::Value::String((*v).to_owned())).expect("action");
                }
                "target_label" => c.target_label = (*v).to_owned(),
                "replacement" => c.replacement = (*v).to_owned(),
                "regex" => c.regex = RelabelRegex::new(v).expect("regex"),
                "source_labels" => c.source_labels = vec![(*v).to_owned()],
                _ => unreachable!(),
            }
        }
        let err = c.validate().expect_err(&format!("{pairs:?} accepted"));
        assert!(err.contains(want), "{pairs:?}: {err}");
    }
    assert!(rule(&[("action", "replace"), ("target_label", "${1}_x")]).validate().is_ok());
}

#[test]
fn unknown_action_is_named() {
    let e = serde_json::from_str::<Action>("\"rename\"").expect_err("accepted");
    assert!(e.to_string().contains("unknown relabel action \"rename\""), "{e}");
}

#[test]
fn defaults_roundtrip_without_noise() {
    let c: RelabelConfig = serde_json::from_str(r#"{"source_labels":["a"],"target_label":"b"}"#).expect("parse");
    assert_eq!(c.separator, ";");
    assert_eq!(c.replacement, "$1");
    assert_eq!(c.regex.0.as_str(), "(.*)");
    assert_eq!(c.action, Action::Replace);
    assert_eq!(serde_json::to_string(&c).expect("ser"), r#"{"source_labels":["a"],"target_label":"b"}"#);
    // An explicitly empty separator/replacement is kept, as in Prometheus.
    let c: RelabelConfig =
        serde_json::from_str(r#"{"source_labels":["a","b"],"separator":"","target_label":"c","replacement":""}"#)
            .expect("parse");
    assert_eq!(c.separator, "");
    assert_eq!(c.replacement, "");
}
