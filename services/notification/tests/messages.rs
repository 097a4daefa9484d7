//! The message API with the worker off: durable queueing, one message per idempotency key,
//! get, list, cancel, retry of dead letters, the access matrix and bad input.

mod common;

use common::*;
use guestloop_proto::common::v1 as c;
use guestloop_proto::notification::v1 as pb;
use pb::DeliveryStatus as S;
use tonic::Code;

async fn api_app() -> TestApp {
    TestApp::spawn_with(Options::default()).await
}

#[tokio::test]
async fn one_message_per_idempotency_key() {
    let app = api_app().await;
    let guest = some_uuid();
    let k = key();
    let first = app.send(send_req(&k, survey(&guest, "sh-bund"))).await;
    assert!(first.created);
    let m = first.message.unwrap();
    assert_eq!(m.status, S::Queued as i32);
    assert_eq!(m.idempotency_key, k);
    // A replay, even with different content, answers the first message.
    let mut other = survey(&guest, "sh-bund");
    other.kind = pb::MessageKind::SurveyReminder as i32;
    for _ in 0..3 {
        let again = app.send(send_req(&k, other.clone())).await;
        assert!(!again.created);
        let a = again.message.unwrap();
        assert_eq!(a.message_id, m.message_id);
        assert_eq!(
            a.spec.unwrap().kind,
            pb::MessageKind::SatisfactionSurvey as i32
        );
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    // Queued once: one event, from nothing to QUEUED.
    assert_eq!(
        app.events(&m.message_id).await,
        [(S::Unspecified as i32, S::Queued as i32)]
    );
    // By key too.
    let by_key = app
        .head_office()
        .get_message(pb::GetMessageRequest {
            message_id: String::new(),
            idempotency_key: k.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(by_key.message_id, m.message_id);
    assert!(by_key.attempts.is_empty());
}

#[tokio::test]
async fn not_before_defers_and_cancel_withdraws() {
    let app = api_app().await;
    let mut spec = survey(&some_uuid(), "sh-bund");
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    spec.not_before_time = Some(prost_types::Timestamp {
        seconds: later.timestamp(),
        nanos: 0,
    });
    let m = app.send(send_req(&key(), spec)).await.message.unwrap();
    assert_eq!(m.status, S::Deferred as i32);
    assert_eq!(m.next_attempt_time.unwrap().seconds, later.timestamp());
    let cancelled = app
        .head_office()
        .cancel_message(pb::CancelMessageRequest {
            message_id: m.message_id.clone(),
            idempotency_key: String::new(),
            reason: "survey already answered".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(cancelled.status, S::Cancelled as i32);
    assert!(cancelled.next_attempt_time.is_none());
    // Cancelling again changes nothing and says so calmly.
    let again = app
        .head_office()
        .cancel_message(pb::CancelMessageRequest {
            message_id: m.message_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(again.status, S::Cancelled as i32);
    assert_eq!(
        app.events(&m.message_id).await,
        [
            (S::Unspecified as i32, S::Deferred as i32),
            (S::Deferred as i32, S::Cancelled as i32)
        ]
    );
    // A cancelled message is not a dead letter.
    let err = app
        .head_office()
        .retry_dead_letter(pb::RetryDeadLetterRequest {
            message_id: m.message_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn list_filters_and_pages() {
    let app = api_app().await;
    let guest = some_uuid();
    let case = some_uuid();
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut spec = survey(&guest, "sh-bund");
        if i % 2 == 0 {
            spec = guest_message(&guest, "sh-bund", pb::MessageKind::ComplaintAcknowledgement);
            spec.case_id = case.clone();
            spec.variables
                .insert("case_reference".into(), format!("SH-{i}"));
        }
        ids.push(
            app.send(send_req(&key(), spec))
                .await
                .message
                .unwrap()
                .message_id,
        );
    }
    app.send(send_req(&key(), survey(&some_uuid(), "hz-lake")))
        .await;

    let list = |req: pb::ListMessagesRequest| {
        let mut client = app.head_office();
        async move { client.list_messages(req).await.unwrap().into_inner() }
    };
    let by_guest = list(pb::ListMessagesRequest {
        guest_id: guest.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(by_guest.messages.len(), 5);
    // Newest first.
    assert_eq!(by_guest.messages[0].message_id, ids[4]);
    let by_case = list(pb::ListMessagesRequest {
        case_id: case.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(by_case.messages.len(), 3);
    let by_kind = list(pb::ListMessagesRequest {
        property_id: "sh-bund".into(),
        kinds: vec![pb::MessageKind::SatisfactionSurvey as i32],
        ..Default::default()
    })
    .await;
    assert_eq!(by_kind.messages.len(), 2);
    let queued = list(pb::ListMessagesRequest {
        statuses: vec![S::Queued as i32],
        ..Default::default()
    })
    .await;
    assert_eq!(queued.messages.len(), 6);
    let dead = list(pb::ListMessagesRequest {
        statuses: vec![S::DeadLettered as i32],
        ..Default::default()
    })
    .await;
    assert!(dead.messages.is_empty());
    // Paging: 2 + 2 + 1, no repeats.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(pb::ListMessagesRequest {
            guest_id: guest.clone(),
            page: Some(c::PageRequest {
                page_size: 2,
                page_token: token.clone(),
            }),
            ..Default::default()
        })
        .await;
        seen.extend(page.messages.iter().map(|m| m.message_id.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn another_propertys_staff_sees_nothing() {
    let app = api_app().await;
    let k = key();
    let m = app
        .send(send_req(&k, survey(&some_uuid(), "sh-bund")))
        .await
        .message
        .unwrap();
    // sh-bund's own staff: yes.
    let own = app
        .staff("sh-bund")
        .get_message(pb::GetMessageRequest {
            message_id: m.message_id.clone(),
            ..Default::default()
        })
        .await;
    assert!(own.is_ok());
    let mut other = app.staff("hz-lake");
    let get = other
        .get_message(pb::GetMessageRequest {
            message_id: m.message_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(get.code(), Code::NotFound);
    let by_key = other
        .get_message(pb::GetMessageRequest {
            idempotency_key: k.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(by_key.code(), Code::NotFound);
    let cancel = other
        .cancel_message(pb::CancelMessageRequest {
            message_id: m.message_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(cancel.code(), Code::NotFound);
    let retry = other
        .retry_dead_letter(pb::RetryDeadLetterRequest {
            message_id: m.message_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(retry.code(), Code::NotFound);
    let listed = other
        .list_messages(pb::ListMessagesRequest {
            property_id: "sh-bund".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.messages.is_empty());
    // Sending for a property outside the caller's scope is refused.
    let send = other
        .send_message(send_req(&key(), survey(&some_uuid(), "sh-bund")))
        .await
        .unwrap_err();
    assert_eq!(send.code(), Code::PermissionDenied);
    // Nor can it address a guest it cannot see, even as its own property's message.
    let stranger = other
        .send_message(send_req(&key(), survey(&some_uuid(), "hz-lake")))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::NotFound);
    // The same key from another property's staff reveals nothing about the first message.
    let alert = pb::MessageSpec {
        recipient: Some(pb::Recipient {
            kind: Some(pb::recipient::Kind::Staff(pb::StaffRecipient {
                property_id: "hz-lake".into(),
                role: pb::StaffRole::DutyManager as i32,
                ..Default::default()
            })),
        }),
        kind: pb::MessageKind::StaffNewCase as i32,
        property_id: "hz-lake".into(),
        ..Default::default()
    };
    let replay = other.send_message(send_req(&k, alert)).await.unwrap_err();
    assert_eq!(replay.code(), Code::InvalidArgument);
    assert!(!replay.message().contains(&m.message_id));
    // The regional manager of east sees it; of south does not.
    let east = app.client(&guestloop_testkit::keys().regional("east"));
    assert!(
        east.clone()
            .get_message(pb::GetMessageRequest {
                message_id: m.message_id.clone(),
                ..Default::default()
            })
            .await
            .is_ok()
    );
    let south = app.client(&guestloop_testkit::keys().regional("south"));
    assert_eq!(
        south
            .clone()
            .get_message(pb::GetMessageRequest {
                message_id: m.message_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    // Receipts: service callers only.
    let receipt = app
        .staff("sh-bund")
        .record_delivery_receipt(pb::RecordDeliveryReceiptRequest {
            provider: "smtp".into(),
            provider_message_id: "x".into(),
            status: S::Delivered as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(receipt.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn bad_input_names_the_fields() {
    let app = api_app().await;
    let mut client = app.head_office();
    let err = client
        .send_message(pb::SendMessageRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["idempotency_key", "message"]);

    let mut spec = survey("not-a-uuid", "nowhere");
    spec.purpose = 0;
    spec.case_id = "nope".into();
    spec.language = "fr".into();
    spec.channel_preference = vec![c::ContactChannel::PhoneCall as i32];
    spec.variables
        .insert("favourite_colour".into(), "red".into());
    let err = client
        .send_message(send_req(&"k".repeat(201), spec))
        .await
        .unwrap_err();
    let fields = violated_fields(&err);
    for f in [
        "idempotency_key",
        "message.recipient.guest.guest_id",
        "message.purpose",
        "message.property_id",
        "message.variables[favourite_colour]",
        "message.channel_preference[0]",
        "message.case_id",
        "message.language",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
    }
    // A staff kind to a guest, no kind at all.
    let mut spec = survey(&some_uuid(), "sh-bund");
    spec.kind = pb::MessageKind::StaffNewCase as i32;
    spec.variables.clear();
    let err = client
        .send_message(send_req(&key(), spec))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["message.kind"]);
    let mut spec = survey(&some_uuid(), "sh-bund");
    spec.recipient = None;
    let err = client
        .send_message(send_req(&key(), spec))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["message.recipient"]);

    let err = client
        .list_messages(pb::ListMessagesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["guest_id"]);
    let err = client
        .list_messages(pb::ListMessagesRequest {
            guest_id: "x".into(),
            statuses: vec![99],
            page: Some(c::PageRequest {
                page_size: 1,
                page_token: "garbage".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["guest_id", "statuses[0]", "page.page_token"]
    );
    let err = client
        .get_message(pb::GetMessageRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["message_id"]);
    let err = client
        .retry_dead_letter(pb::RetryDeadLetterRequest {
            message_id: "x".into(),
            channel_preference: vec![0],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["message_id", "channel_preference[0]"]
    );
    // Nothing was written by any of it.
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}
