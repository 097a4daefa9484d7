//! Retention of what messages were sent with (issue 11): a sent message older than its
//! region's `retention.message_variables` loses its template variables; one of another
//! region, a recent one and one still on its way keep theirs.

mod common;

use common::*;
use guestloop_proto::common::v1 as c;
use guestloop_proto::notification::v1 as pb;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_message_variables_go_and_the_rest_stays() {
    let app = TestApp::spawn_with(Options {
        worker: true,
        extra_toml: r#"
[retention]
interval = "100ms"
[retention.regions.east]
message_variables = "1d"
"#
        .into(),
        ..Default::default()
    })
    .await;
    let with_words = |guest: &str, property: &str| {
        let mut spec = survey(guest, property);
        spec.variables
            .insert("survey_link".into(), "https://survey.test/wombat".into());
        spec
    };
    let bund = app
        .guest(
            "sh-bund",
            "a@example.com",
            "en",
            &[c::ContactChannel::Email],
        )
        .await;
    let harbour = app
        .guest(
            "hk-harbour",
            "b@example.com",
            "en",
            &[c::ContactChannel::Email],
        )
        .await;
    let mut sent = Vec::new();
    for (guest, property) in [
        (&bund, "sh-bund"),
        (&harbour, "hk-harbour"),
        (&bund, "sh-bund"),
    ] {
        let m = app
            .send(send_req(&key(), with_words(guest, property)))
            .await
            .message
            .unwrap();
        app.wait_for(&m.message_id, &[pb::DeliveryStatus::Sent])
            .await;
        sent.push(m.message_id);
    }
    // The first two are made two days old; the third stays recent.
    let old: Vec<uuid::Uuid> = sent[..2].iter().map(|id| id.parse().unwrap()).collect();
    sqlx::query(
        "UPDATE messages SET create_time = create_time - interval '2 days' WHERE id = ANY($1)",
    )
    .bind(&old)
    .execute(&app.pool)
    .await
    .unwrap();

    let start = Instant::now();
    let expired = loop {
        let m = app.get(&sent[0]).await;
        if m.spec.as_ref().is_some_and(|s| s.variables.is_empty()) {
            break m;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{m:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Who, what kind, how and when stay.
    assert_eq!(expired.status, pb::DeliveryStatus::Sent as i32);
    assert_eq!(expired.channel, c::ContactChannel::Email as i32);
    let spec = expired.spec.unwrap();
    assert_eq!(spec.kind, pb::MessageKind::SatisfactionSurvey as i32);
    assert_eq!(spec.property_id, "sh-bund");
    // hk-harbour is in the south: the chain's 365 days; the recent one is not due.
    for id in &sent[1..] {
        let m = app.get(id).await;
        assert_eq!(
            m.spec
                .unwrap()
                .variables
                .get("survey_link")
                .map(String::as_str),
            Some("https://survey.test/wombat"),
            "{id}"
        );
    }
}
