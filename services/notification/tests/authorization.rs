//! The access matrix of notification. sh-bund holds a sent message, a dead letter, a
//! deferred message and a staff alert, and the delivery worker runs. Every RPC (enumerated
//! from the published descriptor, so a new RPC fails this test until it has a row) is called
//! by every caller: outsiders (hz-lake's staff and manager in the same region, hk-harbour's
//! staff, the south regional manager) are refused — PERMISSION_DENIED for sending as or to
//! sh-bund (its staff included), NOT_FOUND for its messages and its property, INVALID_ARGUMENT
//! for its idempotency key, PERMISSION_DENIED for receipts and events from a non-service —
//! their lists show nothing of sh-bund, and the schema is byte-for-byte what it was; insiders
//! (sh-bund's staff and manager, staff of two properties, the east regional manager, head
//! office, a service) see and work it. Without a trusted token every RPC is UNAUTHENTICATED.

mod common;

use chrono::{Duration as Span, Utc};
use common::*;
use guestloop_auth::Role;
use guestloop_client::{EventIngestClient, NotificationClient};
use guestloop_proto::common::v1::{ContactChannel, PageRequest};
use guestloop_proto::events::v1::{self as ev, event_envelope::Payload};
use guestloop_proto::notification::v1::{self as pb, DeliveryStatus as S};
use guestloop_testkit::authz::{Expect, Policy, Who, answer, connection, run_table, snapshot};
use std::collections::BTreeSet;
use std::time::Duration;
use tonic::{Code, Status};

/// What sh-bund holds. Insiders each get their own, since their calls change it.
struct World {
    guest: String,
    sent: pb::OutboundMessage,
    dead: pb::OutboundMessage,
    /// Not before tomorrow: cancellable.
    deferred: pb::OutboundMessage,
    alert: pb::OutboundMessage,
}

impl World {
    /// What must never reach an outsider, in an answer or an error.
    fn secrets(&self) -> Vec<String> {
        let mut out = vec![
            self.guest.clone(),
            self.sent.provider_message_id.clone(),
            "sh-bund".into(),
        ];
        for m in [&self.sent, &self.dead, &self.deferred, &self.alert] {
            out.push(m.message_id.clone());
            out.push(m.idempotency_key.clone());
        }
        out
    }
}

fn staff_alert(property: &str, recipient: pb::StaffRecipient) -> pb::MessageSpec {
    pb::MessageSpec {
        recipient: Some(pb::Recipient {
            kind: Some(pb::recipient::Kind::Staff(recipient)),
        }),
        kind: pb::MessageKind::StaffNewCase as i32,
        // Every variable its template prints (one not given would dead-letter the alert).
        variables: [
            ("case_reference", "SH01-2025-000001"),
            ("category", "noise"),
            ("urgency", "normal"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        property_id: property.into(),
        ..Default::default()
    }
}

fn cs_manager(property: &str) -> pb::StaffRecipient {
    pb::StaffRecipient {
        property_id: property.into(),
        role: pb::StaffRole::CustomerServiceManager as i32,
        ..Default::default()
    }
}

async fn world(app: &TestApp) -> World {
    let email = [ContactChannel::Email];
    let guest = app
        .guest(
            "sh-bund",
            &format!("gao{}@example.com", next()),
            "en",
            &email,
        )
        .await;
    let bouncing = app
        .guest("sh-bund", "bounce@example.com", "en", &email)
        .await;
    let sent = app
        .send(send_req(&key(), survey(&guest, "sh-bund")))
        .await
        .message
        .unwrap();
    let mut spec = survey(&bouncing, "sh-bund");
    spec.channel_preference = vec![ContactChannel::Email as i32];
    let dead = app.send(send_req(&key(), spec)).await.message.unwrap();
    let mut spec = survey(&guest, "sh-bund");
    spec.not_before_time = Some(prost_types::Timestamp {
        seconds: (Utc::now() + Span::days(1)).timestamp(),
        nanos: 0,
    });
    let deferred = app.send(send_req(&key(), spec)).await.message.unwrap();
    let alert = staff_alert("sh-bund", cs_manager("sh-bund"));
    let alert = app.send(send_req(&key(), alert)).await.message.unwrap();
    World {
        guest,
        sent: app.wait_for(&sent.message_id, &[S::Sent]).await,
        dead: app.wait_for(&dead.message_id, &[S::DeadLettered]).await,
        deferred,
        alert: app.wait_for(&alert.message_id, &[S::Sent]).await,
    }
}

#[derive(Debug, Clone, Copy)]
enum Call {
    SendAtShBund,
    SendWithItsKeyElsewhere,
    SendToItsGuestFromElsewhere,
    SendToItsStaffFromElsewhere,
    SendToItsStaffMemberFromElsewhere,
    GetMessageById,
    GetMessageByKey,
    ListMessagesOfShBund,
    ListMessagesOfGuest,
    ListDeadLetters,
    CancelMessage,
    RetryDeadLetter,
    RecordDeliveryReceipt,
    ListTemplates,
    PreviewTemplateAtShBund,
    PreviewTemplateAtOwnProperty,
    ListStaff,
    DeliverEvents,
}

const NOT_FOUND: Policy = Policy::Scoped(Code::NotFound);
const DENIED: Policy = Policy::Scoped(Code::PermissionDenied);

/// The matrix: every row is called by every caller.
const TABLE: &[(Call, &str, Policy)] = &[
    (Call::SendAtShBund, "SendMessage", DENIED),
    // Keys are chain-wide: refused without a word about whose it is.
    (
        Call::SendWithItsKeyElsewhere,
        "SendMessage",
        Policy::Scoped(Code::InvalidArgument),
    ),
    // sh-bund's guest, addressed as one's own property's: guest-profile, asked as the
    // caller, does not show them the guest, so there is no such guest for them.
    (Call::SendToItsGuestFromElsewhere, "SendMessage", NOT_FOUND),
    // Writing as one's own property to another's staff is writing to that property.
    (Call::SendToItsStaffFromElsewhere, "SendMessage", DENIED),
    (
        Call::SendToItsStaffMemberFromElsewhere,
        "SendMessage",
        DENIED,
    ),
    (Call::GetMessageById, "GetMessage", NOT_FOUND),
    (Call::GetMessageByKey, "GetMessage", NOT_FOUND),
    (Call::ListMessagesOfShBund, "ListMessages", Policy::Filtered),
    (Call::ListMessagesOfGuest, "ListMessages", Policy::Filtered),
    (Call::ListDeadLetters, "ListMessages", Policy::Filtered),
    (Call::CancelMessage, "CancelMessage", NOT_FOUND),
    (Call::RetryDeadLetter, "RetryDeadLetter", NOT_FOUND),
    (
        Call::RecordDeliveryReceipt,
        "RecordDeliveryReceipt",
        Policy::Only(Role::Service),
    ),
    // Templates are the chain's, not a property's: everyone reads them.
    (Call::ListTemplates, "ListTemplates", Policy::Filtered),
    (Call::PreviewTemplateAtShBund, "PreviewTemplate", NOT_FOUND),
    (
        Call::PreviewTemplateAtOwnProperty,
        "PreviewTemplate",
        Policy::Filtered,
    ),
    // The staff directory (ids, roles, languages) is for services addressing staff.
    (Call::ListStaff, "ListStaff", Policy::Only(Role::Service)),
    (
        Call::DeliverEvents,
        "DeliverEvents",
        Policy::Only(Role::Service),
    ),
];

struct Clients {
    api: NotificationClient,
    events: EventIngestClient,
}

fn clients(app: &TestApp, who: &Who) -> Clients {
    let conn = connection(app.addr, who);
    Clients {
        api: conn.notification(),
        events: conn.event_ingest(),
    }
}

fn by_id(m: &pb::OutboundMessage) -> pb::GetMessageRequest {
    pb::GetMessageRequest {
        message_id: m.message_id.clone(),
        idempotency_key: String::new(),
    }
}

fn list(f: impl FnOnce(&mut pb::ListMessagesRequest)) -> pb::ListMessagesRequest {
    let mut req = pb::ListMessagesRequest {
        page: Some(PageRequest {
            page_size: 500,
            page_token: String::new(),
        }),
        ..Default::default()
    };
    f(&mut req);
    req
}

fn preview(property: &str) -> pb::PreviewTemplateRequest {
    pb::PreviewTemplateRequest {
        kind: pb::MessageKind::SatisfactionSurvey as i32,
        channel: ContactChannel::Email as i32,
        property_id: property.into(),
        ..Default::default()
    }
}

async fn call(
    c: &mut Clients,
    w: &World,
    who: &Who,
    what: Call,
) -> Result<guestloop_testkit::authz::Answer, Status> {
    let api = &mut c.api;
    match what {
        Call::SendAtShBund => answer(
            api.send_message(send_req(&key(), survey(&w.guest, "sh-bund")))
                .await,
            "sh-bund",
        ),
        Call::SendWithItsKeyElsewhere => {
            let alert = staff_alert(who.own, cs_manager(who.own));
            let req = send_req(&w.sent.idempotency_key, alert);
            answer(api.send_message(req).await, &w.sent.message_id)
        }
        Call::SendToItsGuestFromElsewhere => answer(
            api.send_message(send_req(&key(), survey(&w.guest, who.own)))
                .await,
            &w.guest,
        ),
        Call::SendToItsStaffFromElsewhere => {
            let req = send_req(&key(), staff_alert(who.own, cs_manager("sh-bund")));
            answer(api.send_message(req).await, "sh-bund")
        }
        Call::SendToItsStaffMemberFromElsewhere => {
            // s-001 is sh-bund's customer-service manager in the staff directory.
            let member = pb::StaffRecipient {
                staff_id: "s-001".into(),
                ..Default::default()
            };
            answer(
                api.send_message(send_req(&key(), staff_alert(who.own, member)))
                    .await,
                "s-001",
            )
        }
        Call::GetMessageById => answer(api.get_message(by_id(&w.sent)).await, &w.sent.message_id),
        Call::GetMessageByKey => {
            let req = pb::GetMessageRequest {
                idempotency_key: w.sent.idempotency_key.clone(),
                message_id: String::new(),
            };
            answer(api.get_message(req).await, &w.sent.message_id)
        }
        Call::ListMessagesOfShBund => {
            let req = list(|r| r.property_id = "sh-bund".into());
            answer(api.list_messages(req).await, &w.alert.message_id)
        }
        Call::ListMessagesOfGuest => {
            let req = list(|r| r.guest_id = w.guest.clone());
            answer(api.list_messages(req).await, &w.sent.message_id)
        }
        Call::ListDeadLetters => {
            let req = list(|r| r.statuses = vec![S::DeadLettered as i32]);
            answer(api.list_messages(req).await, &w.dead.message_id)
        }
        Call::CancelMessage => {
            let req = pb::CancelMessageRequest {
                message_id: w.deferred.message_id.clone(),
                ..Default::default()
            };
            answer(api.cancel_message(req).await, &w.deferred.message_id)
        }
        Call::RetryDeadLetter => {
            let req = pb::RetryDeadLetterRequest {
                message_id: w.dead.message_id.clone(),
                ..Default::default()
            };
            answer(api.retry_dead_letter(req).await, &w.dead.message_id)
        }
        Call::RecordDeliveryReceipt => {
            let req = pb::RecordDeliveryReceiptRequest {
                provider: w.sent.provider.clone(),
                provider_message_id: w.sent.provider_message_id.clone(),
                status: S::Delivered as i32,
                ..Default::default()
            };
            answer(api.record_delivery_receipt(req).await, &w.sent.message_id)
        }
        Call::ListTemplates => answer(
            api.list_templates(pb::ListTemplatesRequest::default())
                .await,
            "survey_link",
        ),
        Call::PreviewTemplateAtShBund => answer(
            api.preview_template(preview("sh-bund")).await,
            "Shanghai Bund",
        ),
        Call::PreviewTemplateAtOwnProperty => answer(
            api.preview_template(preview(who.own)).await,
            "Shanghai Bund",
        ),
        Call::ListStaff => {
            let req = pb::ListStaffRequest {
                roles: vec![pb::StaffRole::CustomerServiceManager as i32],
            };
            answer(api.list_staff(req).await, "s-001")
        }
        Call::DeliverEvents => {
            let event = ev::EventEnvelope {
                event_id: uuid::Uuid::now_v7().to_string(),
                source: "feedback-intake".into(),
                aggregate_type: "feedback".into(),
                property_id: "sh-bund".into(),
                payload: Some(Payload::FeedbackReceived(ev::FeedbackReceived {
                    feedback_id: uuid::Uuid::now_v7().to_string(),
                    property_id: "sh-bund".into(),
                    guest_id: w.guest.clone(),
                    channel: guestloop_proto::feedback::v1::FeedbackChannel::Wechat as i32,
                    receive_time: Some(prost_types::Timestamp {
                        seconds: Utc::now().timestamp(),
                        nanos: 0,
                    }),
                    ..Default::default()
                })),
                ..Default::default()
            };
            let id = event.event_id.clone();
            answer(
                c.events
                    .deliver_events(ev::DeliverEventsRequest {
                        events: vec![event],
                    })
                    .await,
                &id,
            )
        }
    }
}

/// Runs every row as `who` on `w`; returns how many cells were checked.
async fn run_rows(app: &TestApp, w: &World, who: &Who, expect: impl Fn(Policy) -> Expect) -> usize {
    let mut c = clients(app, who);
    run_table(who, TABLE, &w.secrets(), expect, async |what| {
        call(&mut c, w, who, what).await
    })
    .await
}

fn worker() -> Options {
    Options {
        worker: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn the_matrix_calls_every_rpc() {
    let called: BTreeSet<&str> = TABLE.iter().map(|(_, rpc, _)| *rpc).collect();
    guestloop_testkit::authz::assert_covers(
        &called,
        "guestloop.notification.v1",
        "NotificationService",
    );
}

#[tokio::test]
async fn outsiders_neither_see_nor_change_sh_bunds_messages() {
    let app = TestApp::spawn_with(worker()).await;
    let w = world(&app).await;
    let before = snapshot(&app.pool).await;
    let mails = app.smtp.mails().len();
    let mut cells = 0;
    for who in guestloop_testkit::authz::outsiders() {
        cells += run_rows(&app, &w, &who, |p| p.expect(&who)).await;
        assert_eq!(
            snapshot(&app.pool).await,
            before,
            "{}: the schema is unchanged",
            who.name
        );
    }
    // Nothing was queued that the worker could still send to sh-bund's guests or staff.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.smtp.mails().len(), mails);
    eprintln!("outsiders: {cells} cells");
}

#[tokio::test]
async fn insiders_see_and_work_sh_bunds_messages() {
    let app = TestApp::spawn_with(worker()).await;
    let mut cells = 0;
    for who in guestloop_testkit::authz::insiders() {
        let w = world(&app).await;
        cells += run_rows(&app, &w, &who, |p| p.expect(&who)).await;
        // The writes took effect (the rows above only saw their answers).
        assert_eq!(
            app.get(&w.deferred.message_id).await.status,
            S::Cancelled as i32,
            "{}",
            who.name
        );
    }
    eprintln!("insiders: {cells} cells");
}

#[tokio::test]
async fn without_a_trusted_token_nothing_answers_and_nothing_changes() {
    let app = TestApp::spawn_with(worker()).await;
    let w = world(&app).await;
    let before = snapshot(&app.pool).await;
    for who in guestloop_testkit::authz::strangers() {
        run_rows(&app, &w, &who, |_| Expect::Refused(Code::Unauthenticated)).await;
    }
    assert_eq!(snapshot(&app.pool).await, before);
}
