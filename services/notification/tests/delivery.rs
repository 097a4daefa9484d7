//! The delivery worker against real sinks: aiosmtpd for email, a Python HTTP server for the
//! SMS gateway (and a WeChat template endpoint that always refuses). Consent from a real
//! guest-profile, quiet hours in the property's time zone, retries with backoff, dead
//! letters and RetryDeadLetter, staff alerts from the staff directory, and the events.

mod common;

use common::*;
use guestloop_proto::common::v1 as c;
use guestloop_proto::notification::v1 as pb;
use pb::AttemptOutcome as A;
use pb::DeliveryStatus as S;
use std::collections::HashMap;

fn worker() -> Options {
    Options {
        worker: true,
        ..Default::default()
    }
}

fn time(t: &prost_types::Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32).unwrap()
}

#[tokio::test]
async fn an_email_arrives_rendered_in_the_guests_language() {
    let app = TestApp::spawn_with(worker()).await;
    // A Hong Kong guest staying in Shanghai: zh-TW, not the property's zh-CN.
    let guest = app
        .guest(
            "sh-bund",
            "mei.lin@example.com",
            "zh-TW",
            &[c::ContactChannel::Email],
        )
        .await;
    let m = app
        .send(send_req(&key(), survey(&guest, "sh-bund")))
        .await
        .message
        .unwrap();
    let sent = app.wait_for(&m.message_id, &[S::Sent]).await;
    assert_eq!(sent.channel, c::ContactChannel::Email as i32);
    assert_eq!(sent.provider, "smtp");
    assert_eq!(sent.language, "zh-TW");
    assert_eq!(sent.template_version, 1);
    assert!(!sent.fallback_used);
    assert_eq!(sent.attempt_count, 1);
    assert_eq!(sent.attempts.len(), 1);
    assert_eq!(sent.attempts[0].outcome, A::Accepted as i32);
    assert!(sent.send_time.is_some());

    let mails = app.smtp.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail["rcpt_tos"][0], "mei.lin@example.com");
    assert_eq!(mail["mail_from"], "care@guestloop.test");
    assert_eq!(mail["subject"], "您在Shanghai Bund的入住體驗如何？");
    let body = mail["body"].as_str().unwrap();
    assert!(body.contains("尊敬的Mei Lin"), "{body}");
    assert!(body.contains("https://s.test/x1"), "{body}");
    assert!(!body.contains("{{"), "{body}");
    assert_eq!(mail["message_id"], sent.provider_message_id);

    // The provider's receipt (relayed by a service) completes it.
    let delivered = app
        .service()
        .record_delivery_receipt(pb::RecordDeliveryReceiptRequest {
            provider: "smtp".into(),
            provider_message_id: sent.provider_message_id.clone(),
            status: S::Delivered as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(delivered.status, S::Delivered as i32);
    assert!(delivered.deliver_time.is_some());
    assert_eq!(
        app.events(&m.message_id).await,
        [
            (S::Unspecified as i32, S::Queued as i32),
            (S::Queued as i32, S::Sent as i32),
            (S::Sent as i32, S::Delivered as i32),
        ]
    );
    // Sent once, whatever happens next.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.smtp.mails().len(), 1);
}

/// A guest's own words in a variable: HTML-escaped in the email's text/html part, verbatim
/// in its text/plain part and in the SMS. A template variable not given is a dead letter
/// (`template_render_failed`), never a message with a blank.
#[tokio::test]
async fn a_guests_words_are_escaped_in_html_and_verbatim_in_text() {
    const WORDS: &str = "<script>alert(1)</script> & \"quotes\"";
    let app = TestApp::spawn_with(worker()).await;
    let by_email = app
        .guest(
            "sh-bund",
            "words@example.com",
            "en",
            &[c::ContactChannel::Email],
        )
        .await;
    let by_sms = app
        .guest(
            "sh-bund",
            "words2@example.com",
            "en",
            &[c::ContactChannel::Sms],
        )
        .await;
    let resolved = |guest: &str, resolution: Option<&str>| {
        let mut spec = guest_message(guest, "sh-bund", pb::MessageKind::ComplaintResolved);
        spec.variables
            .insert("case_reference".into(), "SH01-2025-000042".into());
        if let Some(r) = resolution {
            spec.variables.insert("resolution".into(), r.into());
        }
        send_req(&key(), spec)
    };
    let mail = app
        .send(resolved(&by_email, Some(WORDS)))
        .await
        .message
        .unwrap();
    let sms = app
        .send(resolved(&by_sms, Some(WORDS)))
        .await
        .message
        .unwrap();
    app.wait_for(&mail.message_id, &[S::Sent]).await;
    let sms = app.wait_for(&sms.message_id, &[S::Sent]).await;
    assert_eq!(sms.channel, c::ContactChannel::Sms as i32);

    let mails = app.smtp.mails();
    assert_eq!(mails.len(), 1);
    let raw = mails[0]["raw"].as_str().unwrap();
    assert!(raw.contains("multipart/alternative"), "{raw}");
    let text = mails[0]["body"].as_str().unwrap();
    assert!(
        text.contains(&format!("has been resolved: {WORDS}")),
        "{text}"
    );
    let html = mails[0]["html"].as_str().expect("an HTML part");
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains(
            "has been resolved: &lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; &quot;quotes&quot;"
        ),
        "{html}"
    );
    assert!(html.contains("Dear Mei Lin"), "{html}");

    let requests = app.http.requests();
    assert_eq!(requests.len(), 1);
    let body: serde_json::Value =
        serde_json::from_str(requests[0]["body"].as_str().unwrap()).unwrap();
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .ends_with(&format!("has been resolved: {WORDS}")),
        "{body}"
    );

    // Optional: without a resolution the sentence ends there.
    let bare = app.send(resolved(&by_email, None)).await.message.unwrap();
    app.wait_for(&bare.message_id, &[S::Sent]).await;
    let mails = app.smtp.mails();
    assert_eq!(mails.len(), 2);
    let text = mails[1]["body"].as_str().unwrap();
    assert!(
        text.trim_end()
            .ends_with("SH01-2025-000042 has been resolved."),
        "{text}"
    );

    // Required: the case reference not given.
    let mut spec = guest_message(&by_email, "sh-bund", pb::MessageKind::ComplaintResolved);
    spec.variables.insert("resolution".into(), "ok".into());
    let broken = app.send(send_req(&key(), spec)).await.message.unwrap();
    let dead = app.wait_for(&broken.message_id, &[S::DeadLettered]).await;
    assert_eq!(dead.last_error, "template_render_failed");
    assert_eq!(dead.attempt_count, 0);
    assert_eq!(app.smtp.mails().len(), 2);
}

#[tokio::test]
async fn without_consent_or_address_a_message_is_suppressed() {
    let app = TestApp::spawn_with(worker()).await;
    let no_consent = app.guest("sh-bund", "a@example.com", "en", &[]).await;
    let no_address = app
        .guest("sh-bund", "", "en", &[c::ContactChannel::Email])
        .await;
    let a = app
        .send(send_req(&key(), survey(&no_consent, "sh-bund")))
        .await
        .message
        .unwrap();
    let mut spec = survey(&no_address, "sh-bund");
    spec.channel_preference = vec![c::ContactChannel::Email as i32];
    let b = app.send(send_req(&key(), spec)).await.message.unwrap();
    let a = app.wait_for(&a.message_id, &[S::Suppressed]).await;
    assert_eq!(
        a.suppression_reason,
        pb::SuppressionReason::NoConsent as i32
    );
    assert_eq!(a.attempt_count, 0);
    let b = app.wait_for(&b.message_id, &[S::Suppressed]).await;
    assert_eq!(
        b.suppression_reason,
        pb::SuppressionReason::NoAddress as i32
    );
    assert!(app.smtp.mails().is_empty());
    assert!(app.http.requests().is_empty());
    assert_eq!(
        app.events(&a.message_id).await,
        [
            (S::Unspecified as i32, S::Queued as i32),
            (S::Queued as i32, S::Suppressed as i32)
        ]
    );
}

#[tokio::test]
async fn quiet_hours_defer_all_but_urgent_messages() {
    let app = TestApp::spawn_with(Options {
        worker: true,
        quiet_now: Some("sh-bund"),
        ..Default::default()
    })
    .await;
    let guest = app
        .guest(
            "sh-bund",
            "q@example.com",
            "en",
            &[c::ContactChannel::Email],
        )
        .await;
    let normal = app
        .send(send_req(&key(), survey(&guest, "sh-bund")))
        .await
        .message
        .unwrap();
    let mut urgent = guest_message(&guest, "sh-bund", pb::MessageKind::ComplaintAcknowledgement);
    urgent.urgency = c::Urgency::Urgent as i32;
    urgent
        .variables
        .insert("case_reference".into(), "SH01-2025-000123".into());
    let urgent = app.send(send_req(&key(), urgent)).await.message.unwrap();
    // Another property of the same guest, outside its quiet hours.
    let elsewhere = app
        .send(send_req(&key(), survey(&guest, "hz-lake")))
        .await
        .message
        .unwrap();

    let deferred = app.wait_for(&normal.message_id, &[S::Deferred]).await;
    let until = time(deferred.next_attempt_time.as_ref().unwrap());
    let now = chrono::Utc::now();
    // The quiet window ends at the top of an hour, 1-2 hours from now, local = UTC+8.
    assert!(until > now + chrono::Duration::minutes(59), "{until}");
    assert!(until <= now + chrono::Duration::hours(2), "{until}");
    assert_eq!(chrono::Timelike::minute(&until), 0);
    app.wait_for(&urgent.message_id, &[S::Sent]).await;
    app.wait_for(&elsewhere.message_id, &[S::Sent]).await;
    let subjects: Vec<String> = app
        .smtp
        .mails()
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(subjects.iter().any(|s| s.contains("SH01-2025-000123")));
    // Still deferred: the worker does not pick it before its time.
    let again = app.get(&normal.message_id).await;
    assert_eq!(again.status, S::Deferred as i32);
    assert_eq!(again.attempt_count, 0);
    // A deferred message can still be withdrawn.
    let cancelled = app
        .head_office()
        .cancel_message(pb::CancelMessageRequest {
            message_id: normal.message_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(cancelled.status, S::Cancelled as i32);
}

#[tokio::test]
async fn a_provider_down_is_retried_with_backoff_until_it_recovers() {
    let app = TestApp::spawn_with(Options {
        worker: true,
        http_fail_first: 2,
        ..Default::default()
    })
    .await;
    // Consent for SMS only: email (first in the default order) falls back to SMS.
    let guest = app
        .guest(
            "sh-bund",
            "s@example.com",
            "zh-CN",
            &[c::ContactChannel::Sms],
        )
        .await;
    let m = app
        .send(send_req(&key(), survey(&guest, "sh-bund")))
        .await
        .message
        .unwrap();
    let sent = app.wait_for(&m.message_id, &[S::Sent]).await;
    assert_eq!(sent.channel, c::ContactChannel::Sms as i32);
    assert!(sent.fallback_used);
    assert_eq!(sent.provider, "sms-gateway");
    assert_eq!(sent.provider_message_id, "sink-3");
    assert_eq!(sent.attempt_count, 3);
    let outcomes: Vec<i32> = sent.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [
            A::TemporaryError as i32,
            A::TemporaryError as i32,
            A::Accepted as i32
        ]
    );
    assert_eq!(sent.attempts[0].error, "http_500");
    // Backoff: base 50 ms with jitter in [d/2, d], doubling.
    let t: Vec<_> = sent
        .attempts
        .iter()
        .map(|a| time(a.attempt_time.as_ref().unwrap()))
        .collect();
    assert!(t[1] - t[0] >= chrono::Duration::milliseconds(25), "{t:?}");
    assert!(t[2] - t[1] >= chrono::Duration::milliseconds(50), "{t:?}");

    let requests = app.http.requests();
    assert_eq!(requests.len(), 3);
    let statuses: Vec<i64> = requests
        .iter()
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 500, 200]);
    let last = &requests[2];
    assert_eq!(last["path"], "/sms");
    assert_eq!(last["headers"]["authorization"], "Bearer sms-secret");
    let body: serde_json::Value = serde_json::from_str(last["body"].as_str().unwrap()).unwrap();
    assert!(body["to"].as_str().unwrap().starts_with("+86138"));
    assert_eq!(body["ref"], m.message_id);
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("感谢您入住Shanghai Bund"),
        "{body}"
    );
    assert_eq!(
        app.events(&m.message_id).await,
        [
            (S::Unspecified as i32, S::Queued as i32),
            (S::Queued as i32, S::Failed as i32),
            (S::Failed as i32, S::Sent as i32),
        ]
    );
    eprintln!(
        "numbers: provider-down message retried {} times before SENT",
        2
    );
}

#[tokio::test]
async fn after_the_last_attempt_a_message_is_dead_lettered_and_can_be_retried() {
    let app = TestApp::spawn_with(Options {
        worker: true,
        http_fail_first: 1000,
        ..Default::default()
    })
    .await;
    let guest = app
        .guest("sh-bund", "", "en", &[c::ContactChannel::Sms])
        .await;
    let mut spec = survey(&guest, "sh-bund");
    spec.channel_preference = vec![c::ContactChannel::Sms as i32];
    let m = app.send(send_req(&key(), spec)).await.message.unwrap();
    let dead = app.wait_for(&m.message_id, &[S::DeadLettered]).await;
    assert_eq!(dead.attempt_count, 4, "max_attempts = 4");
    assert_eq!(dead.last_error, "http_500");
    assert!(dead.next_attempt_time.is_none());
    // Visible as a dead letter.
    let listed = app
        .staff("sh-bund")
        .list_messages(pb::ListMessagesRequest {
            statuses: vec![S::DeadLettered as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].message_id, m.message_id);
    // A fresh budget: four more attempts, then dead again.
    let retried = app
        .staff("sh-bund")
        .retry_dead_letter(pb::RetryDeadLetterRequest {
            message_id: m.message_id.clone(),
            reason: "gateway fixed".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(retried.status, S::Queued as i32);
    let dead = app.wait_for(&m.message_id, &[S::DeadLettered]).await;
    assert_eq!(dead.attempt_count, 8);
    assert_eq!(app.http.requests().len(), 8);
    let events = app.events(&m.message_id).await;
    assert_eq!(
        events,
        [
            (S::Unspecified as i32, S::Queued as i32),
            (S::Queued as i32, S::Failed as i32),
            (S::Failed as i32, S::DeadLettered as i32),
            (S::DeadLettered as i32, S::Queued as i32),
            (S::Queued as i32, S::Failed as i32),
            (S::Failed as i32, S::DeadLettered as i32),
        ]
    );
    eprintln!("numbers: 8 attempts, dead-lettered twice (4 + 4)");
}

#[tokio::test]
async fn a_permanent_failure_dead_letters_at_once_and_retry_can_change_channel() {
    let app = TestApp::spawn_with(worker()).await;
    let guest = app
        .guest(
            "sh-bund",
            "bounce@example.com",
            "en",
            &[c::ContactChannel::Email, c::ContactChannel::Sms],
        )
        .await;
    let mut spec = survey(&guest, "sh-bund");
    spec.channel_preference = vec![c::ContactChannel::Email as i32];
    let m = app.send(send_req(&key(), spec)).await.message.unwrap();
    let dead = app.wait_for(&m.message_id, &[S::DeadLettered]).await;
    assert_eq!(dead.attempt_count, 1);
    assert_eq!(dead.attempts[0].outcome, A::PermanentError as i32);
    assert!(dead.last_error.starts_with("smtp_5"), "{}", dead.last_error);
    assert!(app.smtp.mails().is_empty());

    let retried = app
        .head_office()
        .retry_dead_letter(pb::RetryDeadLetterRequest {
            message_id: m.message_id.clone(),
            reason: "mailbox gone; use SMS".into(),
            channel_preference: vec![c::ContactChannel::Sms as i32],
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(
        retried.spec.unwrap().channel_preference,
        [c::ContactChannel::Sms as i32]
    );
    let sent = app.wait_for(&m.message_id, &[S::Sent]).await;
    assert_eq!(sent.channel, c::ContactChannel::Sms as i32);
    assert_eq!(sent.attempt_count, 2);
    assert_eq!(app.http.requests().len(), 1);
    // Once sent, it can no longer be cancelled or retried.
    let err = app
        .head_office()
        .cancel_message(pb::CancelMessageRequest {
            message_id: m.message_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);

    // WeChat's template endpoint refuses (400): permanent, dead-lettered after one attempt.
    let mut spec = survey(&guest, "sh-bund");
    spec.channel_preference = vec![c::ContactChannel::Wechat as i32];
    app.gp_client()
        .set_consent(guestloop_proto::guestprofile::v1::SetConsentRequest {
            guest_id: guest.clone(),
            consent: Some(guestloop_proto::guestprofile::v1::Consent {
                channel: c::ContactChannel::Wechat as i32,
                purpose: c::ConsentPurpose::ServiceFollowUp as i32,
                granted: true,
                source: "test".into(),
                record_time: None,
            }),
        })
        .await
        .unwrap();
    let w = app.send(send_req(&key(), spec)).await.message.unwrap();
    let w = app.wait_for(&w.message_id, &[S::DeadLettered]).await;
    assert_eq!(w.last_error, "http_400");
    assert_eq!(w.provider, "wechat-template");
}

#[tokio::test]
async fn staff_alerts_go_to_the_directory_address() {
    let app = TestApp::spawn_with(Options {
        worker: true,
        // Staff alerts ignore guest quiet hours.
        quiet_now: Some("sh-bund"),
        ..Default::default()
    })
    .await;
    let staff = |role: pb::StaffRole| pb::MessageSpec {
        recipient: Some(pb::Recipient {
            kind: Some(pb::recipient::Kind::Staff(pb::StaffRecipient {
                property_id: "sh-bund".into(),
                role: role as i32,
                ..Default::default()
            })),
        }),
        kind: pb::MessageKind::StaffSlaWarning as i32,
        property_id: "sh-bund".into(),
        variables: HashMap::from([
            ("case_reference".into(), "SH01-2025-000007".into()),
            ("clock".into(), "first response".into()),
            ("due_time".into(), "10:15".into()),
        ]),
        ..Default::default()
    };
    let a = app
        .send(send_req(
            &key(),
            staff(pb::StaffRole::CustomerServiceManager),
        ))
        .await
        .message
        .unwrap();
    let b = app
        .send(send_req(&key(), staff(pb::StaffRole::GeneralManager)))
        .await
        .message
        .unwrap();
    app.wait_for(&a.message_id, &[S::Sent]).await;
    let b = app.wait_for(&b.message_id, &[S::Suppressed]).await;
    assert_eq!(
        b.suppression_reason,
        pb::SuppressionReason::NoStaffForRole as i32
    );
    let mails = app.smtp.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["rcpt_tos"][0], "cs.manager@sh-bund.test");
    assert_eq!(
        mails[0]["subject"],
        "[Shanghai Bund] SH01-2025-000007: first response due 10:15"
    );
    assert!(
        mails[0]["body"]
            .as_str()
            .unwrap()
            .starts_with("Wang Fang: the first response deadline")
    );
}

#[tokio::test]
async fn a_temporary_smtp_refusal_is_retried() {
    let app = TestApp::spawn_with(worker()).await;
    let guest = app
        .guest(
            "hz-lake",
            "greylist@example.com",
            "en",
            &[c::ContactChannel::Email],
        )
        .await;
    let m = app
        .send(send_req(&key(), survey(&guest, "hz-lake")))
        .await
        .message
        .unwrap();
    let sent = app.wait_for(&m.message_id, &[S::Sent]).await;
    assert_eq!(sent.attempt_count, 3);
    let errors: Vec<&str> = sent.attempts.iter().map(|a| a.error.as_str()).collect();
    assert_eq!(errors, ["smtp_451", "smtp_451", ""]);
    assert_eq!(app.smtp.mails().len(), 1);
    assert_eq!(
        app.smtp.mails()[0]["subject"],
        "How was your stay at Hangzhou West Lake?"
    );
}
