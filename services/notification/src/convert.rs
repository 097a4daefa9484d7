//! Stored rows to API and event messages.

use crate::store::messages::{AttemptRow, MessageRow};
use chrono::{DateTime, Utc};
use guestloop_proto::events::v1::MessageStatusChanged;
use guestloop_proto::notification::v1::{self as pb, DeliveryStatus};

pub fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn message(r: &MessageRow, attempts: &[AttemptRow]) -> pb::OutboundMessage {
    let status = r.status();
    let waiting = matches!(status, DeliveryStatus::Deferred | DeliveryStatus::Failed);
    pb::OutboundMessage {
        message_id: r.id.to_string(),
        idempotency_key: r.idempotency_key.clone(),
        spec: Some(r.spec()),
        status: status as i32,
        suppression_reason: i32::from(r.suppression_reason),
        channel: i32::from(r.channel),
        fallback_used: r.fallback_used,
        language: r.language.clone(),
        template_version: r.template_version,
        provider: r.provider.clone(),
        provider_message_id: r.provider_message_id.clone(),
        attempt_count: r.attempt_count,
        next_attempt_time: if waiting {
            r.next_attempt_time.map(ts)
        } else {
            None
        },
        last_error: r.last_error.clone(),
        create_time: Some(ts(r.create_time)),
        send_time: r.send_time.map(ts),
        deliver_time: r.deliver_time.map(ts),
        update_time: Some(ts(r.update_time)),
        attempts: attempts.iter().map(attempt).collect(),
    }
}

fn attempt(a: &AttemptRow) -> pb::DeliveryAttempt {
    pb::DeliveryAttempt {
        attempt: a.attempt,
        channel: i32::from(a.channel),
        provider: a.provider.clone(),
        attempt_time: Some(ts(a.attempt_time)),
        outcome: i32::from(a.outcome),
        error: a.error.clone(),
        latency: Some(prost_types::Duration {
            seconds: a.latency_ms / 1000,
            nanos: ((a.latency_ms % 1000) * 1_000_000) as i32,
        }),
    }
}

/// The event for a status change of `r` from `previous`.
pub fn status_changed(r: &MessageRow, previous: DeliveryStatus) -> MessageStatusChanged {
    let spec = r.spec();
    let failed = matches!(
        r.status(),
        DeliveryStatus::Failed | DeliveryStatus::DeadLettered
    );
    MessageStatusChanged {
        message_id: r.id.to_string(),
        property_id: r.property_id.clone(),
        kind: i32::from(r.kind),
        recipient_kind: i32::from(r.recipient_kind),
        guest_id: r.guest_id.clone(),
        case_id: r.case_id.clone(),
        stay_id: r.stay_id.clone(),
        task_id: spec.task_id,
        channel: i32::from(r.channel),
        fallback_used: r.fallback_used,
        previous_status: previous as i32,
        status: i32::from(r.status),
        suppression_reason: i32::from(r.suppression_reason),
        attempt_count: r.attempt_count,
        urgency: i32::from(r.urgency),
        create_time: Some(ts(r.create_time)),
        status_time: Some(ts(r.update_time)),
        error_code: if failed {
            r.last_error
                .split(|c: char| c.is_whitespace() || c == ':')
                .next()
                .unwrap_or_default()
                .to_string()
        } else {
            String::new()
        },
    }
}
