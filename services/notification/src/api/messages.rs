//! SendMessage, GetMessage, ListMessages, CancelMessage, RetryDeadLetter and
//! RecordDeliveryReceipt.

use crate::convert;
use crate::domain::{self, cancellable};
use crate::error::{NotificationError, Result, invalid};
use crate::ops;
use crate::state::{Caller, State};
use crate::store::messages::{self, Filter, MessageRow};
use chrono::Utc;
use guestloop_db::page::{Cursor, Page};
use guestloop_errors::{FieldViolations, parse};
use guestloop_proto::common::v1::ContactChannel;
use guestloop_proto::notification::v1::{self as pb, DeliveryStatus, MessageKind, RecipientKind};
use prost::Message;
use uuid::Uuid;

pub async fn send(
    state: &State,
    caller: &Caller,
    req: pb::SendMessageRequest,
) -> Result<pb::SendMessageResponse> {
    let new = domain::parse_send(req, &state.chain, &state.templates)?;
    state.writable_property(caller, &new.spec.property_id)?;
    match new.spec.recipient.as_ref().and_then(|r| r.kind.as_ref()) {
        Some(pb::recipient::Kind::Staff(s)) => state.writable_staff(caller, s)?,
        Some(pb::recipient::Kind::Guest(g)) => state.visible_guest(caller, &g.guest_id).await?,
        None => {}
    }
    let mut tx = state.pool.begin().await?;
    let (row, created) = messages::insert_or_get(&mut tx, &new).await?;
    if created {
        ops::created(&mut tx, &row).await?;
    } else if !caller.sees(state, &row.property_id) {
        // The key belongs to another property's message: reveal nothing about it.
        return Err(invalid(
            "idempotency_key",
            "is already used by another message",
        ));
    }
    tx.commit().await?;
    Ok(pb::SendMessageResponse {
        message: Some(convert::message(&row, &[])),
        created,
    })
}

/// The message named by id or key, if the caller sees it.
async fn find(state: &State, caller: &Caller, id: &str, key: &str) -> Result<MessageRow> {
    let row = match (id.trim().is_empty(), key.trim().is_empty()) {
        (false, _) => {
            let id = parse::uuid(id).map_err(|e| invalid("message_id", e))?;
            messages::by_id(&state.pool, id).await?
        }
        (true, false) => {
            // Checked like the key SendMessage took: a NUL byte reached PostgreSQL and the
            // caller got INTERNAL (R8, found by tests/tests/request_decoding.rs).
            let key = parse::required_text(key, crate::domain::MAX_KEY_CHARS)
                .map_err(|e| invalid("idempotency_key", e))?;
            messages::by_key(&state.pool, &key).await?
        }
        (true, true) => {
            return Err(invalid(
                "message_id",
                "one of message_id or idempotency_key is required",
            ));
        }
    };
    match row {
        Some(r) if caller.sees(state, &r.property_id) => Ok(r),
        _ => Err(NotificationError::NotFound("message")),
    }
}

pub async fn get(
    state: &State,
    caller: &Caller,
    req: pb::GetMessageRequest,
) -> Result<pb::GetMessageResponse> {
    let row = find(state, caller, &req.message_id, &req.idempotency_key).await?;
    let attempts = messages::attempts(&state.pool, row.id).await?;
    Ok(pb::GetMessageResponse {
        message: Some(convert::message(&row, &attempts)),
    })
}

pub async fn list(
    state: &State,
    caller: &Caller,
    req: pb::ListMessagesRequest,
) -> Result<pb::ListMessagesResponse> {
    let mut v = FieldViolations::new();
    let opt_uuid = |v: &mut FieldViolations, field: &str, value: &str| -> Option<String> {
        if value.trim().is_empty() {
            return None;
        }
        v.check(field, parse::uuid(value)).map(|u| u.to_string())
    };
    let guest_id = opt_uuid(&mut v, "guest_id", &req.guest_id);
    let case_id = opt_uuid(&mut v, "case_id", &req.case_id);
    let stay_id = opt_uuid(&mut v, "stay_id", &req.stay_id);
    let property_id =
        (!req.property_id.trim().is_empty()).then(|| req.property_id.trim().to_string());
    if let Some(p) = &property_id
        && state.chain.property(p).is_none()
    {
        v.add("property_id", "is not a property of the chain");
    }
    let mut statuses = Vec::new();
    for (i, s) in req.statuses.iter().enumerate() {
        match DeliveryStatus::try_from(*s) {
            Ok(DeliveryStatus::Unspecified) | Err(_) => v.add(
                format!("statuses[{i}]"),
                format!("{s} is not a delivery status"),
            ),
            Ok(st) => statuses.push(st as i16),
        }
    }
    let mut kinds = Vec::new();
    for (i, k) in req.kinds.iter().enumerate() {
        match MessageKind::try_from(*k) {
            Ok(MessageKind::Unspecified) | Err(_) => {
                v.add(format!("kinds[{i}]"), format!("{k} is not a message kind"))
            }
            Ok(kind) => kinds.push(kind as i16),
        }
    }
    let recipient_kind = match RecipientKind::try_from(req.recipient_kind) {
        Ok(RecipientKind::Unspecified) => None,
        Ok(r) => Some(r as i16),
        Err(_) => {
            v.add("recipient_kind", "is not a known value");
            None
        }
    };
    if guest_id.is_none()
        && case_id.is_none()
        && stay_id.is_none()
        && property_id.is_none()
        && req.statuses.is_empty()
    {
        v.add(
            "guest_id",
            "at least one of guest_id, case_id, stay_id, property_id or statuses is required",
        );
    }
    let range = req.create_time_range.unwrap_or_default();
    let created_from = range
        .start_time
        .as_ref()
        .and_then(|t| v.check("create_time_range.start_time", domain::timestamp(t)));
    let created_until = range
        .end_time
        .as_ref()
        .and_then(|t| v.check("create_time_range.end_time", domain::timestamp(t)));
    let page_req = req.page.unwrap_or_default();
    let page = match Page::parse(page_req.page_size, &page_req.page_token) {
        Ok(p) => Some(p),
        Err((field, why)) => {
            v.add(field, why);
            None
        }
    };
    let page = v.into_result(|| page.expect("parsed"))?;
    let filter = Filter {
        guest_id,
        case_id,
        stay_id,
        property_id,
        visible: caller.visible.clone(),
        statuses,
        kinds,
        recipient_kind,
        created_from,
        created_until,
    };
    let rows = messages::list(&state.pool, &filter, page.after, page.size).await?;
    let next_page_token = page.next_token(&rows, |r| Cursor {
        t: r.create_time,
        id: r.id,
    });
    Ok(pb::ListMessagesResponse {
        messages: rows.iter().map(|r| convert::message(r, &[])).collect(),
        next_page_token,
    })
}

pub async fn cancel(
    state: &State,
    caller: &Caller,
    req: pb::CancelMessageRequest,
) -> Result<pb::CancelMessageResponse> {
    parse::optional_text(&req.reason, 500).map_err(|e| invalid("reason", e))?;
    let found = find(state, caller, &req.message_id, &req.idempotency_key).await?;
    state.writable_property(caller, &found.property_id)?;
    let mut tx = state.pool.begin().await?;
    let mut row = messages::lock(&mut tx, found.id)
        .await?
        .ok_or(NotificationError::NotFound("message"))?;
    let previous = row.status();
    if previous == DeliveryStatus::Cancelled {
        return Ok(pb::CancelMessageResponse {
            message: Some(convert::message(&row, &[])),
        });
    }
    if !cancellable(previous) {
        return Err(NotificationError::FailedPrecondition(format!(
            "the message is {} and can no longer be cancelled",
            previous.as_str_name()
        )));
    }
    if messages::leased(&mut tx, row.id).await? {
        return Err(NotificationError::FailedPrecondition(
            "the message is being sent right now".into(),
        ));
    }
    row.status = DeliveryStatus::Cancelled as i16;
    row.next_attempt_time = None;
    if !req.reason.trim().is_empty() {
        row.last_error = format!("cancelled: {}", req.reason.trim());
    }
    ops::save(&mut tx, &mut row, previous, None).await?;
    tx.commit().await?;
    Ok(pb::CancelMessageResponse {
        message: Some(convert::message(&row, &[])),
    })
}

pub async fn retry_dead_letter(
    state: &State,
    caller: &Caller,
    req: pb::RetryDeadLetterRequest,
) -> Result<pb::RetryDeadLetterResponse> {
    let mut v = FieldViolations::new();
    let id = v.check("message_id", parse::uuid(&req.message_id));
    v.check("reason", parse::optional_text(&req.reason, 500));
    for (i, c) in req.channel_preference.iter().enumerate() {
        match ContactChannel::try_from(*c) {
            Ok(ContactChannel::Unspecified) | Ok(ContactChannel::PhoneCall) | Err(_) => v.add(
                format!("channel_preference[{i}]"),
                "must be email, sms, wechat or app_push",
            ),
            Ok(_) => {}
        }
    }
    let id: Uuid = v.into_result(|| id.expect("checked"))?;
    let found = messages::by_id(&state.pool, id)
        .await?
        .filter(|r| caller.sees(state, &r.property_id))
        .ok_or(NotificationError::NotFound("message"))?;
    state.writable_property(caller, &found.property_id)?;
    let mut tx = state.pool.begin().await?;
    let mut row = messages::lock(&mut tx, id)
        .await?
        .ok_or(NotificationError::NotFound("message"))?;
    let previous = row.status();
    if previous != DeliveryStatus::DeadLettered {
        return Err(NotificationError::FailedPrecondition(format!(
            "only a DEAD_LETTERED message can be retried; this one is {}",
            previous.as_str_name()
        )));
    }
    if !req.channel_preference.is_empty() {
        let mut spec = row.spec();
        spec.channel_preference = req.channel_preference.clone();
        row.spec = spec.encode_to_vec();
    }
    row.status = DeliveryStatus::Queued as i16;
    row.budget_start = row.attempt_count;
    row.next_attempt_time = Some(Utc::now());
    ops::save(&mut tx, &mut row, previous, None).await?;
    tx.commit().await?;
    Ok(pb::RetryDeadLetterResponse {
        message: Some(convert::message(&row, &[])),
    })
}

pub async fn receipt(
    state: &State,
    caller: &Caller,
    req: pb::RecordDeliveryReceiptRequest,
) -> Result<pb::RecordDeliveryReceiptResponse> {
    if !caller.is_service() {
        return Err(NotificationError::PermissionDenied(
            "delivery receipts come from service callers only",
        ));
    }
    let mut v = FieldViolations::new();
    let provider = v.check("provider", parse::required_text(&req.provider, 100));
    let reference = v.check(
        "provider_message_id",
        parse::required_text(&req.provider_message_id, 200),
    );
    let status = match DeliveryStatus::try_from(req.status) {
        Ok(
            s @ (DeliveryStatus::Delivered | DeliveryStatus::Failed | DeliveryStatus::DeadLettered),
        ) => Some(s),
        _ => {
            v.add("status", "must be DELIVERED, FAILED or DEAD_LETTERED");
            None
        }
    };
    let receipt_time = req
        .receipt_time
        .as_ref()
        .and_then(|t| v.check("receipt_time", domain::timestamp(t)));
    v.check("error", parse::optional_text(&req.error, 200));
    let (provider, reference, status) = v.into_result(|| {
        (
            provider.unwrap_or_default(),
            reference.unwrap_or_default(),
            status,
        )
    })?;
    let status = status.unwrap_or(DeliveryStatus::Delivered);
    let mut tx = state.pool.begin().await?;
    let mut row = messages::by_provider_ref(&mut tx, &provider, &reference)
        .await?
        .filter(|r| caller.sees(state, &r.property_id))
        .ok_or(NotificationError::NotFound("message"))?;
    let previous = row.status();
    if previous == status {
        return Ok(pb::RecordDeliveryReceiptResponse {
            message: Some(convert::message(&row, &[])),
        });
    }
    if previous != DeliveryStatus::Sent {
        return Err(NotificationError::FailedPrecondition(format!(
            "a receipt applies to a SENT message; this one is {}",
            previous.as_str_name()
        )));
    }
    let now = Utc::now();
    row.status = status as i16;
    match status {
        DeliveryStatus::Delivered => row.deliver_time = Some(receipt_time.unwrap_or(now)),
        DeliveryStatus::Failed => {
            row.last_error = format!("bounce {}", req.error.trim());
            let wait = domain::backoff(
                row.attempt_count.max(1),
                state.delivery.backoff_base.as_duration(),
                state.delivery.backoff_max.as_duration(),
            );
            row.next_attempt_time =
                Some(now + chrono::Duration::from_std(wait).unwrap_or_default());
        }
        _ => row.last_error = format!("bounce {}", req.error.trim()),
    }
    ops::save(&mut tx, &mut row, previous, None).await?;
    tx.commit().await?;
    Ok(pb::RecordDeliveryReceiptResponse {
        message: Some(convert::message(&row, &[])),
    })
}
