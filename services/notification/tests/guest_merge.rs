//! guest-profile's GuestMerged through EventIngestService.DeliverEvents (issue 11): the
//! duplicate's messages and its WeChat interaction (the 48-hour window) move to the
//! survivor, once, in any order relative to the duplicate's own events and to the other
//! merges of a chain; redeliveries and unknown or malformed ids are acknowledged without
//! effect. The delivery worker is off: messages stay queued, only their guest is looked at.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use guestloop_client::{Connection, EventIngestClient};
use guestloop_proto::events::v1::{self as ev, event_envelope::Payload};
use guestloop_proto::feedback::v1::FeedbackChannel;
use guestloop_testkit::keys;

fn ingest(app: &TestApp) -> EventIngestClient {
    Connection::builder(format!("http://{}", app.addr))
        .token(&keys().token(guestloop_auth::Role::Service, &[], None))
        .connect_lazy()
        .expect("client")
        .event_ingest()
}

/// Whole seconds, as the events carry them, from one "now" per test binary (so an
/// expectation computed later names the same instant).
fn hours_ago(h: i64) -> DateTime<Utc> {
    static NOW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let now = *NOW.get_or_init(|| Utc::now().timestamp());
    DateTime::from_timestamp(now, 0).unwrap() - Duration::hours(h)
}

fn envelope(source: &str, aggregate: &str, payload: Payload) -> ev::EventEnvelope {
    ev::EventEnvelope {
        event_id: some_uuid(),
        source: source.into(),
        aggregate_type: aggregate.into(),
        aggregate_id: some_uuid(),
        sequence: 1,
        occur_time: Some(prost_types::Timestamp {
            seconds: Utc::now().timestamp(),
            nanos: 0,
        }),
        payload: Some(payload),
        ..Default::default()
    }
}

/// A WeChat message of the guest, `h` hours ago.
fn interaction(guest_id: &str, h: i64) -> ev::EventEnvelope {
    envelope(
        "feedback-intake",
        "feedback",
        Payload::FeedbackReceived(ev::FeedbackReceived {
            feedback_id: some_uuid(),
            property_id: "sh-bund".into(),
            channel: FeedbackChannel::Wechat as i32,
            guest_id: guest_id.into(),
            receive_time: Some(prost_types::Timestamp {
                seconds: hours_ago(h).timestamp(),
                nanos: 0,
            }),
            ..Default::default()
        }),
    )
}

fn merged(survivor: &str, duplicate: &str) -> ev::EventEnvelope {
    envelope(
        "guest-profile",
        "guest",
        Payload::GuestMerged(ev::GuestMerged {
            survivor_guest_id: survivor.into(),
            duplicate_guest_id: duplicate.into(),
        }),
    )
}

/// Delivers as a service and asserts every event was acknowledged, in order.
async fn deliver(app: &TestApp, events: Vec<ev::EventEnvelope>) {
    let ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    let acked = ingest(app)
        .deliver_events(ev::DeliverEventsRequest { events })
        .await
        .expect("deliver events")
        .into_inner()
        .acknowledged_event_ids;
    assert_eq!(acked, ids);
}

async fn send_to(app: &TestApp, guest_id: &str) {
    app.send(send_req(&key(), survey(guest_id, "sh-bund")))
        .await;
}

/// (messages naming the guest, its stored last WeChat interaction).
async fn state_of(app: &TestApp, guest_id: &str) -> (i64, Option<DateTime<Utc>>) {
    sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM messages WHERE guest_id = $1),
                (SELECT last_interaction_time FROM wechat_interactions WHERE guest_id = $1)",
    )
    .bind(guest_id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// The window a send naming `guest_id` reads (store::interactions::last).
async fn window_of(app: &TestApp, guest_id: &str) -> Option<DateTime<Utc>> {
    sqlx::query_scalar(
        "SELECT last_interaction_time FROM wechat_interactions WHERE guest_id = guest_survivor($1)",
    )
    .bind(guest_id)
    .fetch_optional(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_merge_moves_messages_and_keeps_the_later_interaction_once() {
    let app = TestApp::spawn().await;
    // (duplicate's interaction, survivor's, the survivor's after the merge), in hours ago
    let cases: [(Option<i64>, Option<i64>, Option<i64>); 5] = [
        (Some(3), Some(10), Some(3)),
        (Some(10), Some(3), Some(3)),
        (Some(5), None, Some(5)),
        (None, Some(5), Some(5)),
        (None, None, None),
    ];
    for (dup_at, surv_at, want) in cases {
        let (survivor, duplicate) = (some_uuid(), some_uuid());
        for (guest, at) in [(&duplicate, dup_at), (&survivor, surv_at)] {
            if let Some(h) = at {
                deliver(&app, vec![interaction(guest, h)]).await;
            }
        }
        send_to(&app, &duplicate).await;
        send_to(&app, &duplicate).await;
        send_to(&app, &survivor).await;
        let merge = merged(&survivor, &duplicate);
        deliver(&app, vec![merge.clone()]).await;
        let case = format!("{dup_at:?} {surv_at:?}");
        let want = (3, want.map(hours_ago));
        assert_eq!(state_of(&app, &duplicate).await, (0, None), "{case}");
        assert_eq!(state_of(&app, &survivor).await, want, "{case}");

        // Redelivered, alone and twice in one batch: acknowledged, applied once.
        deliver(&app, vec![merge.clone()]).await;
        deliver(&app, vec![merge.clone(), merge.clone()]).await;
        assert_eq!(state_of(&app, &survivor).await, want, "{case}: redelivered");
        let inbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE event_id = $1::uuid")
            .bind(&merge.event_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(inbox, 1, "{case}");
    }
}

#[tokio::test]
async fn the_duplicates_events_after_the_merge_land_on_the_survivor() {
    let app = TestApp::spawn().await;
    let (survivor, duplicate) = (some_uuid(), some_uuid());
    deliver(&app, vec![interaction(&survivor, 20)]).await;
    deliver(&app, vec![merged(&survivor, &duplicate)]).await;
    // The duplicate's WeChat message and a send naming it, both after the merge.
    deliver(&app, vec![interaction(&duplicate, 2)]).await;
    send_to(&app, &duplicate).await;
    assert_eq!(state_of(&app, &duplicate).await, (0, None));
    assert_eq!(state_of(&app, &survivor).await, (1, Some(hours_ago(2))));
    // A send naming the duplicate reads the survivor's window.
    assert_eq!(window_of(&app, &duplicate).await, Some(hours_ago(2)));
    // An older interaction of the duplicate, late, does not move the window back.
    deliver(&app, vec![interaction(&duplicate, 30)]).await;
    assert_eq!(state_of(&app, &survivor).await, (1, Some(hours_ago(2))));
}

#[tokio::test]
async fn a_chain_ends_on_its_last_survivor_in_either_order() {
    // (name, merges in delivery order as (survivor, duplicate) indexes into [d, s, t])
    type Case = (&'static str, [(usize, usize); 2]);
    let cases: [Case; 2] = [
        ("d->s then s->t", [(1, 0), (2, 1)]),
        ("s->t then d->s", [(2, 1), (1, 0)]),
    ];
    let app = TestApp::spawn().await;
    for (name, merges) in cases {
        let ids = [some_uuid(), some_uuid(), some_uuid()];
        // d wrote last; each has one message.
        for (guest, h) in ids.iter().zip([1, 5, 9]) {
            deliver(&app, vec![interaction(guest, h)]).await;
            send_to(&app, guest).await;
        }
        for (s, d) in merges {
            deliver(&app, vec![merged(&ids[s], &ids[d])]).await;
        }
        // And a late message for the first duplicate.
        send_to(&app, &ids[0]).await;
        assert_eq!(state_of(&app, &ids[0]).await, (0, None), "{name}: d");
        assert_eq!(state_of(&app, &ids[1]).await, (0, None), "{name}: s");
        assert_eq!(
            state_of(&app, &ids[2]).await,
            (4, Some(hours_ago(1))),
            "{name}: t"
        );
        for id in &ids {
            assert_eq!(window_of(&app, id).await, Some(hours_ago(1)), "{name}");
        }
    }
}

#[tokio::test]
async fn unknown_and_malformed_merges_are_acknowledged_without_effect() {
    let app = TestApp::spawn().await;
    let bystander = some_uuid();
    deliver(&app, vec![interaction(&bystander, 4)]).await;
    send_to(&app, &bystander).await;
    let same = some_uuid();
    // (what, event, whether it is applied)
    let cases = [
        ("never seen ids", merged(&some_uuid(), &some_uuid()), true),
        ("empty survivor", merged("", &some_uuid()), false),
        ("not a uuid", merged(&some_uuid(), "guest-7"), false),
        ("into itself", merged(&same, &same), false),
    ];
    for (what, event, applied) in cases {
        let id = event.event_id.clone();
        deliver(&app, vec![event]).await;
        let inbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE event_id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(inbox == 1, applied, "{what}");
    }
    assert_eq!(state_of(&app, &bystander).await, (1, Some(hours_ago(4))));
    let merges: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM guest_merges")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(merges, 1);
}
