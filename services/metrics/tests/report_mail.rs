//! The daily report delivered, with a REAL notification and two metrics replicas racing on
//! one database: every property manager, regional manager and head-office subscriber of the
//! staff directory gets yesterday's report of their scope exactly once (each delivery row
//! sent once, and the send counter at one per recipient and scope: not just notification's
//! dedupe),
//! in their own language, with the scope's name, charts and comparison; front-desk staff
//! get nothing.

mod common;

use chrono::{Duration, Utc};
use common::*;
use guestloop_proto::notification::v1::{self as notify, MessageKind};
use guestloop_testkit::keys;
use std::collections::BTreeMap;

const MAILER: &str = r#"
[daily_report]
enabled = true
local_hour = 0
interval = "200ms"
"#;

const STAFF: &str = r#"
[[staff]]
staff_id = "pm-sh"
name = "Manager Shanghai"
property_id = "sh-bund"
roles = ["property_manager"]
email = "pm@sh-bund.test"
language = "zh-CN"
[[staff]]
staff_id = "pm-hz"
name = "Manager Hangzhou"
property_id = "hz-lake"
roles = ["property_manager", "regional_manager"]
email = "pm@hz-lake.test"
language = "en"
[[staff]]
staff_id = "rm-south"
name = "Regional South"
property_id = "hk-harbour"
roles = ["regional_manager"]
email = "rm@south.test"
[[staff]]
staff_id = "ho"
name = "Head Office"
property_id = "sh-bund"
roles = ["head_office"]
email = "ho@chain.test"
language = "en"
[[staff]]
staff_id = "fd-sh"
name = "Front Desk"
property_id = "sh-bund"
roles = ["front_desk"]
email = "fd@sh-bund.test"
language = "en"
"#;

/// (staff id, report scope as in the idempotency key, what the page must say).
const EXPECTED: [(&str, &str, &[&str]); 5] = [
    (
        "pm-sh",
        "property:sh-bund",
        &["宾客之声日报", "Shanghai Bund"],
    ),
    (
        "pm-hz",
        "property:hz-lake",
        &["Voice of the customer", "Hangzhou West Lake"],
    ),
    (
        "pm-hz",
        "region:east",
        &[
            "Voice of the customer",
            "East China",
            "Properties compared",
            "Shanghai Bund",
            "Hangzhou West Lake",
        ],
    ),
    // No language of their own: their property's default (hk-harbour: zh-TW).
    (
        "rm-south",
        "region:south",
        &[
            "賓客之聲日報",
            "South China",
            "各酒店對比",
            "Hong Kong Harbour",
        ],
    ),
    (
        "ho",
        "chain:",
        &["Voice of the customer", "Test Hotels", "Shenzhen Bay"],
    ),
];

fn sent_count(scrape: &str) -> i64 {
    scrape
        .lines()
        .filter(|l| l.starts_with("metrics_daily_reports_total") && l.contains("outcome=\"sent\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_manager_gets_their_scopes_report_once_in_their_language() {
    let app = TestApp::spawn_with_notification_settings(MAILER, STAFF).await;
    let yesterday = local_day("sh-bund", Utc::now()) - Duration::days(1);
    let noon = Utc::now() - Duration::days(1);
    app.deliver(
        (0..6)
            .map(|i| csat_answer(["sh-bund", "hz-lake"][i % 2], 2 + i as i32 % 4, noon))
            .collect(),
    )
    .await;
    let replica = app.replica().await;

    let sent = eventually(
        "five reports accepted",
        std::time::Duration::from_secs(20),
        || async {
            let n = app
                .count("SELECT COUNT(*) FROM report_mailings WHERE message_id <> ''")
                .await;
            (n >= 5).then_some(n)
        },
    )
    .await;
    assert_eq!(sent, 5);
    // More rounds on both replicas change nothing.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM report_mailings").await, 5);
    // Each row sent once, by one replica (the flag is set in the sender's transaction).
    assert_eq!(
        app.count("SELECT COUNT(*) FROM report_mailings WHERE sends = 1")
            .await,
        5
    );
    // The replicas run in this one process and share its metrics recorder: one total.
    assert_eq!(sent_count(&replica.scrape().await), 5);

    let messages = app
        .notification(&keys().head_office())
        .list_messages(notify::ListMessagesRequest {
            kinds: vec![MessageKind::StaffDailyReport as i32],
            // The delivery worker is off: every message stays queued.
            statuses: vec![notify::DeliveryStatus::Queued as i32],
            ..Default::default()
        })
        .await
        .expect("ListMessages")
        .into_inner()
        .messages;
    let by_key: BTreeMap<String, notify::OutboundMessage> = messages
        .into_iter()
        .map(|m| (m.idempotency_key.clone(), m))
        .collect();
    assert_eq!(by_key.len(), 5, "{:?}", by_key.keys().collect::<Vec<_>>());
    for (staff, scope, says) in EXPECTED {
        let key = format!("voc:{yesterday}:{scope}:{staff}");
        let m = by_key
            .get(&key)
            .unwrap_or_else(|| panic!("no report {key}; have {:?}", by_key.keys()));
        let to = m
            .spec
            .as_ref()
            .and_then(|s| s.recipient.as_ref())
            .and_then(|r| r.kind.as_ref());
        match to {
            Some(notify::recipient::Kind::Staff(s)) => assert_eq!(s.staff_id, staff),
            other => panic!("{key} addressed to {other:?}"),
        }
        let vars = &m.spec.as_ref().expect("spec").variables;
        assert_eq!(vars["report_date"], yesterday.to_string(), "{key}");
        let page = &vars["report_html"];
        for s in says {
            assert!(page.contains(s), "{key}: the page lacks {s:?}");
        }
        assert!(page.contains("<svg"), "{key}: no charts");
        let compared = page.contains("Properties compared") || page.contains("各酒店對比");
        assert_eq!(compared, !scope.starts_with("property:"), "{key}");
    }
    assert!(
        !by_key.keys().any(|k| k.ends_with(":fd-sh")),
        "front desk receives no report"
    );
}
