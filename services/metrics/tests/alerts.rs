//! KPI alerts with a REAL notification: a KPI that misses its target raises one alert (and
//! one message to the property managers) however many rounds judge it, and clears once
//! when it is met again.

mod common;

use chrono::Utc;
use common::*;
use guestloop_proto::metrics::v1::{self as pb, AlertState, Kpi};
use guestloop_proto::notification::v1::{self as notify, MessageKind};
use guestloop_testkit::keys;
use std::time::Duration;

const ALERTS: &str = r#"
[kpi_alerts]
enabled = true
interval = "200ms"
rules = [{ kpi = "csat", window_days = 7 }]
"#;

async fn alerts(app: &TestApp, token: &str, states: &[AlertState]) -> Vec<pb::KpiAlert> {
    app.client(token)
        .list_alerts(pb::ListAlertsRequest {
            states: states.iter().map(|s| *s as i32).collect(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("ListAlerts: {s:?}"))
        .into_inner()
        .alerts
}

async fn message(app: &TestApp, id: &str) -> notify::OutboundMessage {
    app.notification(&keys().head_office())
        .get_message(notify::GetMessageRequest {
            message_id: id.into(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap_or_else(|s| panic!("GetMessage {id}: {s:?}"))
        .into_inner()
        .message
        .expect("message")
}

/// The messages of `kind` notification holds for sh-bund.
async fn messages(app: &TestApp, kind: MessageKind) -> Vec<notify::OutboundMessage> {
    app.notification(&keys().head_office())
        .list_messages(notify::ListMessagesRequest {
            property_id: "sh-bund".into(),
            kinds: vec![kind as i32],
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("ListMessages: {s:?}"))
        .into_inner()
        .messages
}

async fn outbox(app: &TestApp, event_type: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) FROM outbox WHERE event_type = '{event_type}'"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_kpi_alerts_once_and_clears_once() {
    let app = TestApp::spawn_with_notification(ALERTS).await;
    let ho = keys().head_office();
    let now = Utc::now();
    app.deliver(
        (0..6)
            .map(|i| csat_answer("sh-bund", 1 + i % 2, now))
            .collect(),
    )
    .await;

    // Raised, and the property managers told.
    let raised = eventually("the CSAT alert", Duration::from_secs(10), || async {
        let a = alerts(&app, &ho, &[]).await;
        a.first()
            .filter(|a| !a.message_ids.is_empty())
            .cloned()
            .map(|first| (a.len(), first))
    })
    .await;
    assert_eq!(raised.0, 1, "one alert");
    let alert = raised.1;
    assert_eq!(alert.kpi, Kpi::Csat as i32);
    assert_eq!(alert.state, AlertState::Active as i32);
    assert_eq!(alert.scope, Some(property("sh-bund")));
    assert_eq!(alert.window_days, 7);
    let v = alert.raise_value.expect("raise value");
    assert!(v.value.unwrap() < 0.9 && v.sample_size == 6, "{v:?}");
    assert_eq!(alert.message_ids.len(), 1);
    let m = message(&app, &alert.message_ids[0]).await;
    let spec = m.spec.expect("spec");
    assert_eq!(spec.kind, MessageKind::StaffKpiAlert as i32);
    assert_eq!(spec.property_id, "sh-bund");

    // Many more rounds judge it missed: still the one alert, told once.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let a = alerts(&app, &ho, &[]).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].alert_id, alert.alert_id);
    assert_eq!(a[0].state, AlertState::Active as i32);
    assert_eq!(messages(&app, MessageKind::StaffKpiAlert).await.len(), 1);
    assert_eq!(outbox(&app, "kpi_alert_raised").await, 1);
    assert_eq!(outbox(&app, "kpi_alert_cleared").await, 0);

    // Met again: cleared, and they hear that too.
    app.deliver((0..60).map(|_| csat_answer("sh-bund", 5, now)).collect())
        .await;
    let cleared = eventually("the clearance", Duration::from_secs(10), || async {
        alerts(&app, &ho, &[])
            .await
            .into_iter()
            .find(|a| a.state == AlertState::Cleared as i32 && a.message_ids.len() == 2)
    })
    .await;
    assert_eq!(cleared.alert_id, alert.alert_id);
    let v = cleared.clear_value.expect("clear value");
    // The round that clears may run while the batch is still being applied: the value
    // has just reached the target (at least 54 of the 60 answers in).
    assert!(
        v.value.unwrap() >= 0.9 && (60..=66).contains(&v.sample_size),
        "{v:?}"
    );
    assert!(cleared.clear_time.is_some());
    let m = message(&app, &cleared.message_ids[1]).await;
    assert_eq!(
        m.spec.expect("spec").kind,
        MessageKind::StaffKpiRecovered as i32
    );

    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(alerts(&app, &ho, &[AlertState::Active]).await.is_empty());
    let all = alerts(&app, &ho, &[]).await;
    assert_eq!(all.len(), 1, "no other property, no second alert: {all:?}");
    assert_eq!(messages(&app, MessageKind::StaffKpiAlert).await.len(), 1);
    assert_eq!(
        messages(&app, MessageKind::StaffKpiRecovered).await.len(),
        1
    );
    assert_eq!(outbox(&app, "kpi_alert_raised").await, 1);
    assert_eq!(outbox(&app, "kpi_alert_cleared").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM alerts").await, 1);

    // Another property's staff sees none of it.
    assert!(
        alerts(&app, &keys().staff("hk-harbour"), &[])
            .await
            .is_empty()
    );
    assert_eq!(alerts(&app, &keys().staff("sh-bund"), &[]).await.len(), 1);
    app.stop().await;
}
