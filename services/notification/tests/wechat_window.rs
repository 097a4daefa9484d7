//! WeChat's 48-hour window, end to end: feedback-intake's FeedbackReceived (channel WECHAT)
//! delivered to notification's EventIngestService records the guest's last interaction;
//! the delivery worker then sends WeChat messages of free-form kinds through the free-form
//! provider inside the window, and as template messages (fallback_used) outside it, or on
//! to SMS when no template provider exists. Real guest-profile, PostgreSQL and HTTP sink.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use guestloop_client::{Connection, EventIngestClient};
use guestloop_proto::common::v1 as c;
use guestloop_proto::events::v1::{self as ev, event_envelope::Payload};
use guestloop_proto::feedback::v1::FeedbackChannel;
use guestloop_proto::notification::v1 as pb;
use guestloop_testkit::keys;
use pb::DeliveryStatus as S;

/// Template and free-form WeChat endpoints on the HTTP sink; both put the mode in the body.
const TEMPLATE_TOML: &str = r#"
[providers.http.wechat-template]
url = "http://127.0.0.1:{http_port}/wechat/template"
payload = '{"touser": "{{to}}", "template_id": "{{template_id}}", "data": "{{body}}", "wechat_mode": "{{wechat_mode}}"}'
"#;
const FREE_FORM_TOML: &str = r#"
[providers.http.wechat-cs]
channel = "wechat"
wechat_mode = "free_form"
url = "http://127.0.0.1:{http_port}/wechat/custom"
payload = '{"touser": "{{to}}", "msgtype": "text", "content": "{{body}}", "wechat_mode": "{{wechat_mode}}"}'
"#;

async fn app_with(without_wechat_template: bool) -> TestApp {
    TestApp::spawn_with(Options {
        worker: true,
        extra_toml: if without_wechat_template {
            FREE_FORM_TOML.to_string()
        } else {
            format!("{TEMPLATE_TOML}{FREE_FORM_TOML}")
        },
        without_wechat_template,
        ..Default::default()
    })
    .await
}

fn ingest(app: &TestApp, token: &str) -> EventIngestClient {
    Connection::builder(format!("http://{}", app.addr))
        .token(token)
        .connect_lazy()
        .expect("client")
        .event_ingest()
}

fn service_token() -> String {
    keys().token(guestloop_auth::Role::Service, &[], None)
}

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

/// Whole seconds, as the events carry them.
fn hours_ago(h: i64) -> DateTime<Utc> {
    DateTime::from_timestamp((Utc::now() - Duration::hours(h)).timestamp(), 0).unwrap()
}

fn envelope(source: &str, aggregate: &str, payload: Payload) -> ev::EventEnvelope {
    ev::EventEnvelope {
        event_id: some_uuid(),
        source: source.into(),
        aggregate_type: aggregate.into(),
        aggregate_id: some_uuid(),
        sequence: 1,
        occur_time: Some(ts(Utc::now())),
        payload: Some(payload),
        ..Default::default()
    }
}

fn feedback(guest_id: &str, channel: FeedbackChannel, at: DateTime<Utc>) -> ev::EventEnvelope {
    envelope(
        "feedback-intake",
        "feedback",
        Payload::FeedbackReceived(ev::FeedbackReceived {
            feedback_id: some_uuid(),
            property_id: "sh-bund".into(),
            channel: channel as i32,
            guest_id: guest_id.into(),
            receive_time: Some(ts(at)),
            ..Default::default()
        }),
    )
}

fn erased(guest_id: &str) -> ev::EventEnvelope {
    envelope(
        "guest-profile",
        "guest",
        Payload::GuestErased(ev::GuestErased {
            guest_id: guest_id.into(),
        }),
    )
}

/// Delivers as a service; returns the acknowledged ids.
async fn deliver(app: &TestApp, events: &[ev::EventEnvelope]) -> Vec<String> {
    ingest(app, &service_token())
        .deliver_events(ev::DeliverEventsRequest {
            events: events.to_vec(),
        })
        .await
        .expect("deliver events")
        .into_inner()
        .acknowledged_event_ids
}

fn ids(events: &[ev::EventEnvelope]) -> Vec<String> {
    events.iter().map(|e| e.event_id.clone()).collect()
}

async fn last_interaction(app: &TestApp, guest_id: &str) -> Option<DateTime<Utc>> {
    sqlx::query_scalar("SELECT last_interaction_time FROM wechat_interactions WHERE guest_id = $1")
        .bind(guest_id)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

async fn wechat_guest(app: &TestApp) -> String {
    app.guest(
        "sh-bund",
        "",
        "en",
        &[c::ContactChannel::Wechat, c::ContactChannel::Sms],
    )
    .await
}

/// A complaint acknowledgement (a free-form kind by default), WeChat first, then SMS.
fn acknowledgement(guest_id: &str) -> pb::MessageSpec {
    let mut m = guest_message(
        guest_id,
        "sh-bund",
        pb::MessageKind::ComplaintAcknowledgement,
    );
    m.variables
        .insert("case_reference".into(), "SH-BUND-2026-000042".into());
    m.channel_preference = vec![
        c::ContactChannel::Wechat as i32,
        c::ContactChannel::Sms as i32,
    ];
    m
}

/// The fallback_used of the message's last MessageStatusChanged event.
async fn event_fallback(app: &TestApp, message_id: &str) -> bool {
    guestloop_outbox::envelopes_for(&app.pool, "message", message_id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(Payload::MessageStatusChanged(c)) if c.status == S::Sent as i32 => {
                Some(c.fallback_used)
            }
            _ => None,
        })
        .next_back()
        .expect("a SENT event")
}

fn body(request: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(request["body"].as_str().unwrap()).unwrap()
}

async fn sent(app: &TestApp, spec: pb::MessageSpec) -> pb::OutboundMessage {
    let m = app.send(send_req(&key(), spec)).await.message.unwrap();
    app.wait_for(&m.message_id, &[S::Sent]).await
}

#[tokio::test]
async fn inside_the_window_wechat_goes_free_form() {
    let started = std::time::Instant::now();
    let app = app_with(false).await;
    let guest = wechat_guest(&app).await;
    let e = feedback(&guest, FeedbackChannel::Wechat, hours_ago(1));
    assert_eq!(deliver(&app, std::slice::from_ref(&e)).await, ids(&[e]));

    let m = sent(&app, acknowledgement(&guest)).await;
    assert_eq!(m.channel, c::ContactChannel::Wechat as i32);
    assert_eq!(m.provider, "wechat-cs");
    assert!(!m.fallback_used);
    assert!(!event_fallback(&app, &m.message_id).await);
    let requests = app.http.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["path"], "/wechat/custom");
    let b = body(&requests[0]);
    assert_eq!(b["wechat_mode"], "free_form");
    assert!(b["touser"].as_str().unwrap().starts_with("wxguest"));
    assert!(
        b["content"]
            .as_str()
            .unwrap()
            .contains("SH-BUND-2026-000042"),
        "{b}"
    );

    // A kind not configured free-form capable goes as a template, and that is no fallback.
    let mut greeting = guest_message(&guest, "sh-bund", pb::MessageKind::BirthdayGreeting);
    greeting.channel_preference = vec![c::ContactChannel::Wechat as i32];
    let g = sent(&app, greeting).await;
    assert_eq!(g.provider, "wechat-template");
    assert!(!g.fallback_used);
    assert_eq!(body(&app.http.requests()[1])["wechat_mode"], "template");
    eprintln!("numbers: free-form test took {:?}", started.elapsed());
}

#[tokio::test]
async fn outside_the_window_wechat_falls_back_to_the_template() {
    let app = app_with(false).await;
    let stale = wechat_guest(&app).await;
    let never = wechat_guest(&app).await;
    let e = feedback(&stale, FeedbackChannel::Wechat, hours_ago(49));
    assert_eq!(deliver(&app, std::slice::from_ref(&e)).await, ids(&[e]));

    for guest in [&stale, &never] {
        let m = sent(&app, acknowledgement(guest)).await;
        assert_eq!(m.channel, c::ContactChannel::Wechat as i32);
        assert_eq!(m.provider, "wechat-template");
        assert!(m.fallback_used, "{m:?}");
        assert!(event_fallback(&app, &m.message_id).await);
    }
    let requests = app.http.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r["path"], "/wechat/template");
        assert_eq!(body(r)["wechat_mode"], "template");
    }
}

#[tokio::test]
async fn without_a_template_provider_a_closed_window_goes_on_to_sms() {
    let app = app_with(true).await;
    let outside = wechat_guest(&app).await;
    let inside = wechat_guest(&app).await;
    let events = [
        feedback(&outside, FeedbackChannel::Wechat, hours_ago(49)),
        feedback(&inside, FeedbackChannel::Wechat, hours_ago(47)),
    ];
    assert_eq!(deliver(&app, &events).await, ids(&events));

    let m = sent(&app, acknowledgement(&outside)).await;
    assert_eq!(m.channel, c::ContactChannel::Sms as i32);
    assert_eq!(m.provider, "sms-gateway");
    assert!(m.fallback_used);
    let m = sent(&app, acknowledgement(&inside)).await;
    assert_eq!(m.provider, "wechat-cs");
    assert!(!m.fallback_used);
    let paths: Vec<String> = app
        .http
        .requests()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paths, ["/sms", "/wechat/custom"]);
}

#[tokio::test]
async fn redelivery_applies_once_and_an_older_event_does_not_move_the_time_back() {
    let app = app_with(false).await;
    let guest = some_uuid();
    let two_hours_ago = hours_ago(2);
    let newer = feedback(&guest, FeedbackChannel::Wechat, two_hours_ago);
    let older = feedback(&guest, FeedbackChannel::Wechat, hours_ago(30));
    // Not WeChat, and not a subscribed event: acknowledged, no effect.
    let email = feedback(&some_uuid(), FeedbackChannel::Email, hours_ago(1));
    let other = envelope(
        "feedback-intake",
        "case",
        Payload::CaseOpened(ev::CaseOpened::default()),
    );
    let batch = [newer.clone(), email.clone(), other.clone()];
    assert_eq!(deliver(&app, &batch).await, ids(&batch));
    assert_eq!(last_interaction(&app, &guest).await, Some(two_hours_ago));

    // Older, delivered after the newer one: the time stays.
    assert_eq!(
        deliver(&app, std::slice::from_ref(&older)).await,
        ids(std::slice::from_ref(&older))
    );
    assert_eq!(last_interaction(&app, &guest).await, Some(two_hours_ago));

    // Erase, then redeliver the already-applied event: acknowledged, not applied again.
    let erase = erased(&guest);
    deliver(&app, &[erase]).await;
    assert_eq!(last_interaction(&app, &guest).await, None);
    let again = [newer.clone(), newer.clone()];
    assert_eq!(deliver(&app, &again).await, ids(&again));
    assert_eq!(last_interaction(&app, &guest).await, None);
    // A WeChat message of the guest that reaches here only after the erasure (a new event,
    // late or re-ordered) is acknowledged and records nothing: the erased trace stays gone.
    let late = feedback(&guest, FeedbackChannel::Wechat, hours_ago(1));
    assert_eq!(
        deliver(&app, std::slice::from_ref(&late)).await,
        ids(&[late])
    );
    assert_eq!(last_interaction(&app, &guest).await, None);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM wechat_interactions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "the email feedback recorded nothing");
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE event_id = $1")
        .bind(uuid::Uuid::parse_str(&newer.event_id).unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(inbox, 1);
}

#[tokio::test]
async fn only_services_may_deliver_events() {
    let app = app_with(false).await;
    let guest = some_uuid();
    let hour_ago = hours_ago(1);
    let e = feedback(&guest, FeedbackChannel::Wechat, hour_ago);
    for token in [keys().staff("sh-bund"), keys().head_office()] {
        let err = ingest(&app, &token)
            .deliver_events(ev::DeliverEventsRequest {
                events: vec![e.clone()],
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    }
    let err = ingest(&app, "not-a-token")
        .deliver_events(ev::DeliverEventsRequest {
            events: vec![e.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    assert_eq!(last_interaction(&app, &guest).await, None);
    // The same event from a service applies.
    deliver(&app, &[e]).await;
    assert_eq!(last_interaction(&app, &guest).await, Some(hour_ago));
}

#[tokio::test]
async fn guest_erased_removes_the_interaction() {
    let app = app_with(false).await;
    let erased_guest = wechat_guest(&app).await;
    let kept = some_uuid();
    let hour_ago = hours_ago(1);
    let events = [
        feedback(&erased_guest, FeedbackChannel::Wechat, hour_ago),
        feedback(&kept, FeedbackChannel::Wechat, hour_ago),
    ];
    deliver(&app, &events).await;
    assert!(last_interaction(&app, &erased_guest).await.is_some());
    let e = erased(&erased_guest);
    assert_eq!(deliver(&app, std::slice::from_ref(&e)).await, ids(&[e]));
    assert_eq!(last_interaction(&app, &erased_guest).await, None);
    assert_eq!(last_interaction(&app, &kept).await, Some(hour_ago));
}
