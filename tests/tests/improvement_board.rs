//! Issue 13 across real processes and a real SMTP server, with two metrics replicas:
//! - an improvement item past its due time reaches sh-bund's general manager by e-mail,
//!   through the scheduler's durable timer and notification, exactly once; an item dismissed
//!   before its due time sends nothing (its timer was cancelled);
//! - each property manager receives the day's voice-of-customer report in the morning,
//!   once, as an HTML mail with its charts;
//! - a hotel's old complaint log, imported closed with the times it was handled at, counts
//!   on its own days: the platform proposes an improvement item for the category that kept
//!   coming back (hz-lake's noise), and nobody is alerted for a case long done.

use guestloop_e2e::eventually;
use guestloop_proto::metrics::v1 as mx;
use guestloop_testkit::platform::Platform;
use guestloop_testkit::{scenario, sinks};
use std::time::Duration;

fn to(m: &serde_json::Value, address: &str) -> bool {
    m["rcpt_tos"].to_string().contains(address)
}

fn subject(m: &serde_json::Value) -> &str {
    m["subject"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_items_reach_the_general_manager_and_reports_reach_managers_once() {
    let smtp = sinks::smtp_sink();
    // The scenario's [improvement] table, with the timers synced fast.
    let config = scenario::config_toml(smtp.port).replace(
        "[improvement]\n",
        "[improvement]\ntimer_sync_interval = \"200ms\"\n",
    ) + "\n[daily_report]\nlocal_hour = 0\ninterval = \"300ms\"\n";
    assert!(config.contains("timer_sync_interval"));
    let spec = guestloop_e2e::platform_spec("board", "metrics", &config, Default::default()).await;
    let mut platform = Platform::start(&spec)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut replica = platform
        .replica(&spec, "metrics")
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let metrics =
        guestloop_client::Connection::builder(platform.service("metrics").unwrap().endpoint())
            .token(&guestloop_e2e::head_office_token(&spec.signing_key))
            .connect_lazy()
            .unwrap()
            .metrics();

    // A whole second, as sent.
    let due = chrono::DateTime::from_timestamp((chrono::Utc::now().timestamp()) + 3, 0).unwrap();
    let item = |property: &str, title: &str| mx::CreateImprovementItemRequest {
        scope: Some(mx::Scope {
            level: mx::ScopeLevel::Property as i32,
            id: property.into(),
        }),
        category: guestloop_proto::feedback::v1::Category::Noise as i32,
        title: title.into(),
        owner_staff_id: "dm-owner".into(),
        due_time: Some(prost_types::Timestamp {
            seconds: due.timestamp(),
            nanos: 0,
        }),
        ..Default::default()
    };
    let overdue = metrics
        .clone()
        .create_improvement_item(item("sh-bund", "Karaoke on floor 12"))
        .await
        .unwrap()
        .into_inner()
        .item
        .unwrap();
    let dismissed = metrics
        .clone()
        .create_improvement_item(item("hz-lake", "Lift noise"))
        .await
        .unwrap()
        .into_inner()
        .item
        .unwrap();
    metrics
        .clone()
        .advance_improvement_item(mx::AdvanceImprovementItemRequest {
            item_id: dismissed.item_id.clone(),
            from_state: mx::ImprovementState::Plan as i32,
            to_state: mx::ImprovementState::Dismissed as i32,
            note: "the lift was replaced".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let mails = eventually("the overdue mail", Duration::from_secs(30), || {
        let mails: Vec<_> = smtp
            .mails()
            .into_iter()
            .filter(|m| subject(m).contains("Improvement item overdue"))
            .collect();
        std::future::ready((!mails.is_empty()).then_some(mails))
    })
    .await;
    assert!(chrono::Utc::now() >= due, "not before its due time");
    let mail = &mails[0];
    assert!(to(mail, "gm@sh-bund.test"), "{mail}");
    let body = mail["body"].as_str().unwrap_or_default();
    assert!(
        body.contains("Karaoke on floor 12") && body.contains(&overdue.item_id),
        "{body}"
    );

    // The managers' morning reports: one per property manager, in HTML with charts.
    let managers = ["sh-bund", "hz-lake", "hk-harbour", "sz-bay"].map(|p| format!("pm@{p}.test"));
    let reports = eventually("four reports", Duration::from_secs(30), || {
        let reports: Vec<_> = smtp
            .mails()
            .into_iter()
            .filter(|m| subject(m).starts_with("Voice of the customer"))
            .collect();
        std::future::ready((reports.len() >= 4).then_some(reports))
    })
    .await;
    for address in &managers {
        let theirs: Vec<_> = reports.iter().filter(|m| to(m, address)).collect();
        assert_eq!(theirs.len(), 1, "{address}: {theirs:?}");
        let html = theirs[0]["html"].as_str().unwrap_or_default();
        assert!(
            html.contains("<svg") && html.contains("<!DOCTYPE html>"),
            "{address}"
        );
    }

    // Later rounds, on both replicas, send nothing more: no second overdue mail, nothing
    // for the dismissed item, no second report.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = smtp.mails();
    let overdue_mails: Vec<_> = all
        .iter()
        .filter(|m| subject(m).contains("Improvement item overdue"))
        .collect();
    assert_eq!(overdue_mails.len(), 1, "{overdue_mails:?}");
    assert!(!all.iter().any(|m| subject(m).contains("Lift noise")));
    let report_mails = all
        .iter()
        .filter(|m| subject(m).starts_with("Voice of the customer"))
        .count();
    assert_eq!(report_mails, 4);

    let shown = metrics
        .clone()
        .get_improvement_item(mx::GetImprovementItemRequest {
            item_id: overdue.item_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .item
        .unwrap();
    assert!(shown.overdue);
    let _ = replica.stop(Duration::from_secs(10));
    platform.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_complaint_log_proposes_an_item_and_alerts_nobody() {
    let smtp = sinks::smtp_sink();
    let config = scenario::config_toml(smtp.port) + "\n[daily_report]\nenabled = false\n";
    let spec = guestloop_e2e::platform_spec("oldlog", "metrics", &config, Default::default()).await;
    let mut platform = Platform::start(&spec)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let token = guestloop_e2e::head_office_token(&spec.signing_key);
    let endpoints = scenario::Endpoints::of(&platform);
    let history = guestloop_testkit::history::play(&endpoints, &token, 14, 6, 11)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let noise = guestloop_proto::feedback::v1::Category::Noise as i32;
    let hz_noise = history
        .old_cases
        .iter()
        .filter(|c| c.property_id == "hz-lake" && c.category == noise)
        .count();
    assert!(hz_noise >= 5, "{:?}", history.old_cases);
    assert_eq!(
        history.old_cases.len(),
        hz_noise,
        "only hz-lake's noise in 14 days"
    );

    let metrics = guestloop_client::Connection::builder(endpoints.metrics.clone())
        .token(&token)
        .connect_lazy()
        .unwrap()
        .metrics();
    let items = eventually("a proposal", Duration::from_secs(60), || {
        let mut m = metrics.clone();
        async move {
            let items = m
                .list_improvement_items(mx::ListImprovementItemsRequest::default())
                .await
                .ok()?
                .into_inner()
                .items;
            (!items.is_empty()).then_some(items)
        }
    })
    .await;
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[0];
    assert_eq!(item.state, mx::ImprovementState::Proposed as i32);
    assert_eq!(item.scope.as_ref().unwrap().id, "hz-lake");
    assert_eq!(item.category, noise);

    // The proposer may run before every imported case has reached metrics; once all have,
    // hz-lake's days count each one where it came in. A case's first response is an event
    // of its own, delivered after the one that opened it: wait for both measures.
    let league = mx::GetLeagueTableRequest {
        scope: Some(mx::Scope {
            level: mx::ScopeLevel::Property as i32,
            id: "hz-lake".into(),
        }),
        date_range: Some(guestloop_proto::common::v1::DateRange {
            start_date: Some(date_ago(14)),
            end_date: Some(date_ago(1)),
        }),
        order_by: mx::LeagueTableOrder::SlaCompliance as i32,
    };
    let row = eventually("every old case in metrics", Duration::from_secs(30), || {
        let (mut m, req) = (metrics.clone(), league.clone());
        async move {
            let row = m
                .get_league_table(req)
                .await
                .ok()?
                .into_inner()
                .rows
                .pop()?;
            let complaints = row.complaints_per_100_stays?.numerator as usize;
            let responses = row.first_response_within_sla?.denominator as usize;
            (complaints == hz_noise && responses == hz_noise).then_some(row)
        }
    })
    .await;
    // One in five of the old log's complaints was answered late, by its own times.
    let sla = row.first_response_within_sla.unwrap();
    assert_eq!(sla.denominator as usize, hz_noise, "{sla:?}");
    assert!(
        sla.numerator > 0 && (sla.numerator as usize) < hz_noise,
        "{sla:?}"
    );
    // Accepted, the item's baseline is taken again: every imported case, on its own day.
    let accepted = metrics
        .clone()
        .advance_improvement_item(mx::AdvanceImprovementItemRequest {
            item_id: item.item_id.clone(),
            from_state: mx::ImprovementState::Proposed as i32,
            to_state: mx::ImprovementState::Plan as i32,
            owner_staff_id: "hz-lake-dm".into(),
            due_time: Some(prost_types::Timestamp {
                seconds: chrono::Utc::now().timestamp() + 14 * 86_400,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .item
        .unwrap();
    let baseline = accepted.baseline.unwrap();
    assert_eq!(baseline.numerator as usize, hz_noise, "{baseline:?}");

    // The cases were closed when they arrived: no clock ran, no case alert went out (one
    // would have fired at once: their deadlines are days past). What the managers do get
    // are the KPI alerts (and recoveries) the history's numbers earn.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails = smtp.mails();
    let other: Vec<_> = mails
        .iter()
        .filter(|m| !subject(m).contains("KPI "))
        .collect();
    assert!(other.is_empty(), "{other:?}");
    platform.stop();
}

fn date_ago(days: i64) -> guestloop_proto::common::v1::Date {
    use chrono::Datelike;
    let d = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
        - chrono::Duration::days(days);
    guestloop_proto::common::v1::Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}
