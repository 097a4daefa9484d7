//! Loading order, validation messages and standards resolution.

use super::*;

#[derive(Debug, serde::Deserialize)]
struct Settings {
    #[serde(flatten)]
    common: CommonSettings,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate()
    }
}

const CHAIN: &str = r#"
[database]
url = "postgres://x@localhost/db"
schema = "guest_profile"
[auth]
public_key_path = "/keys/pub.pem"
[[chain.regions]]
id = "east"
name = "East"
[[chain.properties]]
id = "sh-bund"
name = "Bund"
region = "east"
time_zone = "Asia/Shanghai"
default_language = "zh-CN"
[standards.regions.east]
resolution = "36h"
[standards.properties.sh-bund]
first_response_urgent = "5s"
"#;

fn load_with(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    load_from_env(
        &[COMMON_DEFAULTS, CHAIN],
        None,
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

#[test]
fn env_overrides_defaults() {
    let s = load_with(&[("GUESTLOOP__GRPC__LISTEN_ADDR", "0.0.0.0:7000")]).unwrap();
    assert_eq!(s.common.grpc.listen_addr, "0.0.0.0:7000");
    assert_eq!(s.common.grpc.concurrency_limit, 256);
}

#[test]
fn bad_value_names_the_key() {
    let err = load_with(&[("GUESTLOOP__GRPC__LISTEN_ADDR", "nowhere")]).unwrap_err();
    assert!(err.to_string().contains("grpc.listen_addr"), "{err}");
    let err = load_with(&[("GUESTLOOP__DATABASE__URL", "mysql://x")]).unwrap_err();
    assert!(err.to_string().contains("database.url"), "{err}");
    let err = load_with(&[("GUESTLOOP__OUTBOX__SUBSCRIBERS", "metrics")]).unwrap_err();
    assert!(err.to_string().contains("outbox.subscribers[0]"), "{err}");
}

#[test]
fn missing_file_is_reported() {
    let err = load_with(&[("GUESTLOOP_CONFIG", "/does/not/exist.toml")]).unwrap_err();
    assert!(err.to_string().contains("GUESTLOOP_CONFIG"), "{err}");
}

#[test]
fn standards_resolve_chain_region_property() {
    let s = load_with(&[]).unwrap();
    let c = &s.common;
    let p = c.standards.for_property(&c.chain, "sh-bund");
    assert_eq!(p.resolution.as_duration().as_secs(), 36 * 3600);
    assert_eq!(p.first_response_urgent.as_duration().as_secs(), 5);
    assert_eq!(p.first_response_normal.as_duration().as_secs(), 24 * 3600);
    let other = c.standards.for_property(&c.chain, "unknown");
    assert_eq!(other.resolution.as_duration().as_secs(), 48 * 3600);
}

#[test]
fn durations_parse() {
    assert_eq!(Seconds::parse("15m").unwrap().0.as_secs(), 900);
    assert_eq!(Seconds::parse("7d").unwrap().0.as_secs(), 604_800);
    assert_eq!(Seconds::parse("250ms").unwrap().0.as_millis(), 250);
    assert!(Seconds::parse("soon").is_err());
    assert!(Seconds::parse("5y").is_err());
}

#[test]
fn bad_time_zone_names_the_property() {
    let chain = CHAIN.replace("Asia/Shanghai", "Mars/Olympus");
    let err = load_from_env::<Settings>(&[COMMON_DEFAULTS, &chain], None, std::iter::empty())
        .unwrap_err();
    assert!(
        err.to_string().contains("chain.properties[0].time_zone"),
        "{err}"
    );
}

/// The chain configuration the Helm chart ships must load, or a first install fails.
#[test]
fn the_helm_chart_example_config_loads() {
    let values = include_str!("../../../helm/guestloop/values.yaml");
    let start = values
        .find("  toml: |\n")
        .expect("values.yaml has config.toml")
        + "  toml: |\n".len();
    let block: String = values[start..]
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let required =
        "[database]\nurl = \"postgres://x@db/guestloop\"\n[auth]\npublic_key_path = \"/k.pem\"\n";
    let s: Settings = load_from_env(
        &[COMMON_DEFAULTS, required, &block],
        None,
        std::iter::empty(),
    )
    .unwrap_or_else(|e| panic!("helm config: {e}\n{block}"));
    assert_eq!(s.common.chain.properties[0].id, "sh-bund");
}

#[test]
fn retention_resolves_chain_then_region_and_names_bad_keys() {
    let with = |extra: &str| {
        load_from_env::<Settings>(&[COMMON_DEFAULTS, CHAIN, extra], None, std::iter::empty())
    };
    let s = with("[retention.regions.east]\nfeedback_text = \"30d\"\n").unwrap();
    let r = &s.common.retention;
    let days = |p: Seconds| p.as_duration().as_secs() / 86_400;
    let east = r.for_property(&s.common.chain, "sh-bund");
    assert_eq!(
        (
            days(east.feedback_text),
            days(east.case_notes),
            days(east.access_log)
        ),
        (30, 1095, 730),
        "the region changes only what it names"
    );
    // A property the chain does not know gets the chain's periods.
    assert_eq!(
        days(r.for_property(&s.common.chain, "nowhere").feedback_text),
        1095
    );
    let refused = [
        (
            "[retention.regions.north]\nfeedback_text = \"30d\"\n",
            "retention.regions.north",
        ),
        (
            "[retention.regions.east]\ncase_notes = \"0s\"\n",
            "retention.regions.east.case_notes",
        ),
        (
            "[retention.default]\naccess_log = \"0s\"\n",
            "retention.default.access_log",
        ),
        ("[retention]\nbatch = 0\n", "retention.batch"),
        ("[retention]\ninterval = \"0s\"\n", "retention.interval"),
        (
            "[retention]\nmax_batches_per_round = 0\n",
            "retention.max_batches_per_round",
        ),
    ];
    for (toml, key) in refused {
        let err = with(toml).unwrap_err();
        assert!(err.to_string().contains(key), "{toml}: {err}");
    }
}

#[test]
fn vip_tiers_are_named_tiers_silver_and_up_by_default() {
    let s = load_with(&[]).unwrap();
    let vip: Vec<i32> = (0..=5).filter(|t| s.common.chain.is_vip(*t)).collect();
    assert_eq!(vip, [3, 4, 5]);
    let load = |tiers: &str| {
        load_from_env::<Settings>(
            &[
                COMMON_DEFAULTS,
                CHAIN,
                &format!("[chain]\nvip_tiers = {tiers}\n"),
            ],
            None,
            std::iter::empty(),
        )
    };
    let gold_up = load(r#"["TIER_VIP_GOLD", "TIER_VIP_PLATINUM"]"#).unwrap();
    assert!(!gold_up.common.chain.is_vip(3) && gold_up.common.chain.is_vip(4));
    let err = load(r#"["TIER_DIAMOND"]"#).unwrap_err().to_string();
    assert!(
        err.contains("TIER_DIAMOND") && err.contains("vip_tiers"),
        "{err}"
    );
}
