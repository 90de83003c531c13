//! Config parsing and validation tests.

use super::*;

fn parse(t: &str) -> Result<Config, ConfigError> {
    Config::parse(t, "c.toml", Path::new("/etc/osprey"))
}

#[test]
fn embedded_default_is_valid() {
    let c = parse(DEFAULT_CONFIG).expect("default config");
    assert_eq!(c.scrape_configs.len(), 2);
    assert_eq!(c.scrape_configs[1].static_configs[0].targets, ["localhost:9100"]);
    assert_eq!(c.scrape_configs[0].scrape_timeout, Some(PromDuration::from_secs(10)));
}

#[test]
fn defaults_follow_prometheus() {
    let c = parse("[global]\nscrape_interval = \"5s\"\n[[scrape_configs]]\njob_name = \"a\"\n[[scrape_configs]]\njob_name = \"b\"\nscrape_interval = \"1m\"\n").expect("ok");
    // The global timeout (10s) is capped at the global interval (5s).
    assert_eq!(c.global.scrape_timeout, Some(PromDuration::from_secs(5)));
    assert_eq!(c.scrape_configs[0].scrape_interval, Some(PromDuration::from_secs(5)));
    assert_eq!(c.scrape_configs[0].scrape_timeout, Some(PromDuration::from_secs(5)));
    assert_eq!(c.scrape_configs[1].scrape_timeout, Some(PromDuration::from_secs(5)));
    assert_eq!(c.scrape_configs[0].metrics_path, "/metrics");
    assert_eq!(c.scrape_configs[0].scheme, "http");
    assert!(c.scrape_configs[0].honor_timestamps);
}

#[test]
fn relative_paths_resolve_against_the_config_dir() {
    let c = parse("rule_files = [\"rules/*.yml\"]\n[[scrape_configs]]\njob_name = \"a\"\nfile_sd_configs = [{ files = [\"sd/*.json\"] }]\ntls_config = { ca_file = \"ca.pem\" }\n").expect("ok");
    assert_eq!(c.rule_files, ["/etc/osprey/rules/*.yml"]);
    assert_eq!(c.scrape_configs[0].file_sd_configs[0].files, ["/etc/osprey/sd/*.json"]);
    assert_eq!(
        c.scrape_configs[0].tls_config.as_ref().and_then(|t| t.ca_file.clone()),
        Some(PathBuf::from("/etc/osprey/ca.pem"))
    );
}

fn err(t: &str) -> ConfigError {
    parse(t).expect_err("should fail")
}

#[test]
fn errors_name_file_line_and_key() {
    let e =
        err("[global]\nscrape_interval = \"15s\"\n\n[[scrape_configs]]\njob_name = \"a\"\nscrape_intervall = \"1m\"\n");
    assert_eq!((e.line, e.key.as_deref()), (Some(6), Some("scrape_intervall")));
    assert!(e.message.contains("unknown field `scrape_intervall`") && e.message.contains("scrape_interval"), "{e}");
    assert!(e.to_string().starts_with("c.toml:6: key `scrape_intervall`: "), "{e}");

    let e = err("[[scrape_configs]]\njob_name = \"a\"\nscrape_interval = \"10s\"\nscrape_timeout = \"20s\"\n");
    assert_eq!((e.line, e.key.as_deref()), (Some(4), Some("scrape_configs[0].scrape_timeout")));
    assert!(e.message.contains("scrape timeout greater than scrape interval"), "{e}");

    let e = err("[[scrape_configs]]\njob_name = \"a\"\n[[scrape_configs]]\njob_name = \"a\"\n");
    assert_eq!((e.line, e.key.as_deref()), (Some(4), Some("scrape_configs[1].job_name")));
    assert!(e.message.contains("found multiple scrape configs with job name \"a\""), "{e}");

    let e = err("[[scrape_configs]]\njob_name = \"a\"\nscrape_interval = \"15 seconds\"\n");
    assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("scrape_interval")));
    assert!(e.message.contains("not a valid duration"), "{e}");

    let e = err(
        "[[scrape_configs]]\njob_name = \"a\"\nrelabel_configs = [\n  { action = \"keep\", source_labels = [\"x\"] },\n  { action = \"hashmod\", target_label = \"s\" },\n]\n",
    );
    assert_eq!((e.line, e.key.as_deref()), (Some(5), Some("scrape_configs[0].relabel_configs[1]")));
    assert!(e.message.contains("non-zero modulus"), "{e}");

    let e = err("[[scrape_configs]]\njob_name = \"a\"\ndns_sd_configs = [{ names = [\"x\"], type = \"A\" }]\n");
    assert_eq!(e.key.as_deref(), Some("scrape_configs[0].dns_sd_configs[0]"));
    assert!(e.message.contains("port is required"), "{e}");

    let e = err("[[scrape_configs]]\njob_name = \"a\"\nstatic_configs = [{ targets = [\"a:1\"], lables = {} }]\n");
    assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("lables")));

    let e = err("[global]\nscrape_timeout = \"2m\"\n");
    assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("global.scrape_timeout")));

    let e = err(
        "[[scrape_configs]]\njob_name = \"a\"\nbasic_auth = { username = \"u\", password = \"p\" }\nauthorization = { credentials = \"t\" }\n",
    );
    assert!(e.message.contains("at most one of basic_auth"), "{e}");
    let e = err("[[scrape_configs]]\njob_name = \"a\"\nauthorization = { type = \"Basic\", credentials = \"t\" }\n");
    assert!(e.message.contains("use \"basic_auth\" instead"), "{e}");
    let e = err("[[scrape_configs]]\njob_name = \"a\"\nscheme = \"ftp\"\n");
    assert_eq!(e.key.as_deref(), Some("scrape_configs[0].scheme"));
    let e = err("[[scrape_configs]]\njob_name = \"a\"\nbody_size_limit = \"10XB\"\n");
    assert!(e.message.contains("invalid size"), "{e}");
    let e = err("[[scrape_configs]]\njob_name = \"a\"\nfile_sd_configs = [{ files = [\"/x/*.txt\"] }]\n");
    assert!(e.message.contains("not valid for file discovery"), "{e}");
    let e = err("[global]\nexternal_labels = { \"bad-name\" = \"x\" }\n");
    assert!(e.message.contains("not a valid label name"), "{e}");
}

#[test]
fn secrets_are_not_in_debug_output() {
    let c = parse("[[scrape_configs]]\njob_name = \"a\"\nbasic_auth = { username = \"u\", password = \"hunter2\" }\n")
        .expect("ok");
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn limits_parse() {
    let c = parse("[[scrape_configs]]\njob_name = \"a\"\nsample_limit = 100\nlabel_limit = 30\nlabel_name_length_limit = 200\nlabel_value_length_limit = 1000\nbody_size_limit = \"10MB\"\ntarget_limit = 5\n").expect("ok");
    let s = &c.scrape_configs[0];
    assert_eq!(
        (s.sample_limit, s.label_limit, s.label_name_length_limit, s.label_value_length_limit, s.target_limit),
        (100, 30, 200, 1000, 5)
    );
    assert_eq!(s.body_size_limit.0, 10 << 20);
}

#[test]
fn credentials_read_files_and_hide_secrets() {
    let dir = std::env::temp_dir().join(format!("osprey-creds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("token"), "abc123\n").expect("write");
    let c = Config::parse(
        "[[scrape_configs]]\njob_name = \"a\"\nauthorization = { credentials_file = \"token\" }\n[[scrape_configs]]\njob_name = \"b\"\nbasic_auth = { username = \"u\", password = \"p\" }\n[[scrape_configs]]\njob_name = \"c\"\n",
        "c.toml",
        &dir,
    )
    .expect("ok");
    let a = c.scrape_configs[0].credentials().expect("creds");
    assert_eq!(a, Credentials::Header { scheme: "Bearer".into(), credentials: "abc123".into() });
    assert!(!format!("{a:?}").contains("abc123"));
    assert_eq!(
        c.scrape_configs[1].credentials().expect("creds"),
        Credentials::Basic { username: "u".into(), password: "p".into() }
    );
    assert_eq!(c.scrape_configs[2].credentials().expect("creds"), Credentials::None);
    std::fs::remove_file(dir.join("token")).expect("rm");
    assert!(c.scrape_configs[0].credentials().expect_err("missing file").contains("token"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn alerting_and_notify_sections_parse_with_defaults() {
    let c = parse(
        r#"
[alerting]
resend_delay = "5s"
[[alerting.alertmanagers]]
static_configs = [{ targets = ["127.0.0.1:9093"] }]
basic_auth = { username = "u", password_file = "pw" }
[[notify.receiver]]
type = "telegram"
name = "ops"
bot_token = "123:abc"
chat_id = -100
[[notify.route]]
receiver = "ops"
matchers = ['severity="page"']
group_by = ["alertname"]
[[notify.route]]
receiver = "ops"
group_wait = "10s"
repeat_interval = "1h30m"
"#,
    )
    .expect("ok");
    let a = c.alerting.expect("alerting");
    assert_eq!(a.resend_delay, PromDuration::from_secs(5));
    assert_eq!((a.batch_size, a.queue_capacity), (256, 10_000));
    assert_eq!(a.alertmanagers[0].timeout, PromDuration::from_secs(10));
    assert_eq!(
        a.alertmanagers[0].basic_auth.as_ref().and_then(|b| b.password_file.clone()),
        Some(PathBuf::from("/etc/osprey/pw"))
    );
    let n = c.notify.expect("notify");
    assert_eq!(n.routes[0].group_wait, 30, "Alertmanager's default group_wait");
    assert_eq!((n.routes[1].group_wait, n.routes[1].repeat_interval), (10, 5400), "durations as strings");
    let e = parse("[[notify.receiver]]\ntype = \"webhook\"\nname = \"a\"\nurl = \"http://x\"\n[[notify.route]]\nreceiver = \"a\"\ngroup_wait = \"5 minutes\"\n")
        .expect_err("bad duration");
    assert!(e.to_string().contains("invalid duration \"5 minutes\""), "{e}");
    assert!(n.receiver("ops").is_some());
}

#[test]
fn route_to_an_undefined_receiver_is_an_error_with_its_line() {
    let e = parse("[[notify.receiver]]\ntype = \"webhook\"\nname = \"a\"\nurl = \"http://x\"\n[[notify.route]]\nreceiver = \"b\"\n")
        .expect_err("undefined receiver");
    assert_eq!(e.line, Some(6), "{e}");
    assert!(e.to_string().contains("receiver \"b\", which is not defined"), "{e}");
    let e = parse("[[notify.receiver]]\ntype = \"pager\"\nname = \"a\"\n").expect_err("unknown type");
    assert!(e.to_string().contains("pager"), "{e}");
    let e = parse("[alerting]\nbatch_sise = 3\n").expect_err("unknown key");
    assert_eq!(e.line, Some(2), "{e}");
}
