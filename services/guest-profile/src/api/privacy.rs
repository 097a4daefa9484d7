//! Privacy RPCs: consent, the contact permission notification asks for at send time,
//! erasure, and the access log (the export is export.rs).

use super::{Caller, SOURCE, State, convert, guest_id, page};
use crate::domain::ConsentInput;
use crate::error::{GuestProfileError, Result, invalid};
use crate::store::{erasures as erasure_store, privacy as store};
use guestloop_outbox::NewEvent;
use guestloop_proto::common::v1::{ConsentPurpose, ContactChannel};
use guestloop_proto::events::v1::{ConsentChanged, GuestErased, event_envelope::Payload};
use guestloop_proto::guestprofile::v1 as pb;

pub async fn set_consent(
    state: &State,
    caller: &Caller,
    req: pb::SetConsentRequest,
) -> Result<pb::SetConsentResponse> {
    let input = ConsentInput::try_from(req)?;
    let mut tx = state.pool.begin().await?;
    let (guest, _) = state
        .visible_guest(&mut tx, caller, input.guest_id, true)
        .await?;
    if guest.erased {
        return Err(GuestProfileError::FailedPrecondition(
            "the guest was erased".into(),
        ));
    }
    let record = store::insert_consent(&mut tx, guest.id, &input).await?;
    guestloop_outbox::enqueue(
        &mut tx,
        SOURCE,
        NewEvent {
            aggregate_type: "guest",
            aggregate_id: guest.id.to_string(),
            property_id: String::new(),
            payload: Payload::ConsentChanged(ConsentChanged {
                guest_id: guest.id.to_string(),
                channel: input.channel as i32,
                purpose: input.purpose as i32,
                granted: input.granted,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(pb::SetConsentResponse {
        consent: Some(convert::consent(&record)),
    })
}

pub async fn list_consents(
    state: &State,
    caller: &Caller,
    req: pb::ListConsentsRequest,
) -> Result<pb::ListConsentsResponse> {
    let id = guest_id("guest_id", &req.guest_id)?;
    let mut conn = state.pool.acquire().await?;
    let (guest, _) = state.visible_guest(&mut conn, caller, id, false).await?;
    let consents = store::current_consents(&mut *conn, guest.id).await?;
    Ok(pb::ListConsentsResponse {
        consents: consents.iter().map(convert::consent).collect(),
    })
}

pub async fn contact_permission(
    state: &State,
    caller: &Caller,
    req: pb::GetContactPermissionRequest,
) -> Result<pb::GetContactPermissionResponse> {
    let id = guest_id("guest_id", &req.guest_id)?;
    let channel = guestloop_errors::parse::known_enum::<ContactChannel>(req.channel)
        .and_then(|c| {
            if c == ContactChannel::Unspecified {
                Err("is required".into())
            } else {
                Ok(c)
            }
        })
        .map_err(|e| invalid("channel", e))?;
    let purpose = guestloop_errors::parse::known_enum::<ConsentPurpose>(req.purpose)
        .and_then(|p| {
            if p == ConsentPurpose::Unspecified {
                Err("is required".into())
            } else {
                Ok(p)
            }
        })
        .map_err(|e| invalid("purpose", e))?;
    let mut conn = state.pool.acquire().await?;
    let (guest, _) = state.visible_guest(&mut conn, caller, id, false).await?;
    let mut response = pb::GetContactPermissionResponse {
        guest_id: guest.id.to_string(),
        language: guest.profile.language.clone().unwrap_or_default(),
        ..Default::default()
    };
    if guest.erased {
        response.denial_reason = "erased".into();
        return Ok(response);
    }
    let granted = store::current_consents(&mut *conn, guest.id)
        .await?
        .iter()
        .any(|c| c.channel == channel as i16 && c.purpose == purpose as i16 && c.granted);
    if !granted {
        response.denial_reason = "no_consent".into();
        return Ok(response);
    }
    let p = &guest.profile;
    let address = match channel {
        ContactChannel::Email => p.email.clone(),
        ContactChannel::Sms | ContactChannel::PhoneCall => p.phone.clone(),
        ContactChannel::Wechat => p.wechat_id.clone(),
        // Push goes to the guest's app installation, addressed by guest id.
        ContactChannel::AppPush => Some(guest.id.to_string()),
        ContactChannel::Unspecified => None,
    };
    let Some(address) = address else {
        response.denial_reason = "no_address".into();
        return Ok(response);
    };
    drop(conn);
    state.log_read(caller, &[guest.id]).await?;
    response.allowed = true;
    response.address = address;
    response.given_name = p.given_name.clone().unwrap_or_default();
    response.family_name = p.family_name.clone().unwrap_or_default();
    Ok(response)
}

pub async fn erase(
    state: &State,
    caller: &Caller,
    req: pb::EraseGuestRequest,
) -> Result<pb::EraseGuestResponse> {
    let id = guest_id("guest_id", &req.guest_id)?;
    guestloop_errors::parse::required_text(&req.reason, 500).map_err(|e| invalid("reason", e))?;
    if caller.principal.role == guestloop_auth::Role::PropertyStaff {
        return Err(GuestProfileError::PermissionDenied(
            "erasure needs a manager",
        ));
    }
    let mut tx = state.pool.begin().await?;
    let (guest, _) = state.visible_guest(&mut tx, caller, id, true).await?;
    let ids = store::merged_ids(&mut *tx, guest.id).await?;
    let erase_time = store::erase(&mut tx, &ids).await?;
    // The care facts the guest's bookings carried to the scheduler (StayBooked).
    crate::store::stay_care::erase(&mut tx, &ids).await?;
    // A guest erased before answers the erasure that erased it; one erased before
    // erasures were recorded gets one now, which follows the services all the same.
    let existing = if guest.erased {
        erasure_store::latest_of(&mut *tx, &ids).await?
    } else {
        None
    };
    let erasure_id = match existing {
        Some(id) => id,
        None => {
            erasure_store::create(
                &mut tx,
                &erasure_store::NewErasure {
                    guest_id: guest.id,
                    erased_guest_ids: &ids,
                    reason: &req.reason,
                    requested_by: &caller.principal.subject,
                    requested_by_role: caller.principal.role.as_str(),
                    erase_time,
                    services: &state
                        .data_services
                        .iter()
                        .map(|d| d.service.clone())
                        .collect::<Vec<_>>(),
                },
            )
            .await?
        }
    };
    if !guest.erased {
        for erased in &ids {
            guestloop_outbox::enqueue(
                &mut tx,
                SOURCE,
                NewEvent {
                    aggregate_type: "guest",
                    aggregate_id: erased.to_string(),
                    property_id: String::new(),
                    payload: Payload::GuestErased(GuestErased {
                        guest_id: erased.to_string(),
                    }),
                },
            )
            .await?;
        }
    }
    let erasure = erasure_store::get_many(&mut tx, &[erasure_id]).await?.pop();
    tx.commit().await?;
    tracing::info!(guest_id = %guest.id, %erasure_id, "guest erased");
    Ok(pb::EraseGuestResponse {
        guest_id: guest.id.to_string(),
        erase_time: Some(convert::timestamp(erase_time)),
        erasure: erasure.as_ref().map(super::erasures::to_pb),
    })
}

pub async fn access_log(
    state: &State,
    caller: &Caller,
    req: pb::ListAccessLogRequest,
) -> Result<pb::ListAccessLogResponse> {
    let id = guest_id("guest_id", &req.guest_id)?;
    let p = req.page.unwrap_or_default();
    let size = page(Some(guestloop_proto::common::v1::PageRequest {
        page_size: p.page_size,
        page_token: String::new(),
    }))?
    .size;
    let after: i64 = if p.page_token.is_empty() {
        0
    } else {
        p.page_token
            .parse()
            .map_err(|_| invalid("page.page_token", "is not a token this server issued"))?
    };
    if !caller.principal.role.is_manager() {
        return Err(GuestProfileError::PermissionDenied(
            "the access log is for managers",
        ));
    }
    let mut conn = state.pool.acquire().await?;
    let (guest, _) = state.visible_guest(&mut conn, caller, id, false).await?;
    let ids = store::merged_ids(&mut *conn, guest.id).await?;
    let rows = store::access_log(&mut *conn, &ids, after, size).await?;
    let next_page_token = match rows.last() {
        Some(last) if rows.len() as i64 >= size => last.id.to_string(),
        _ => String::new(),
    };
    Ok(pb::ListAccessLogResponse {
        entries: rows.iter().map(convert::access).collect(),
        next_page_token,
    })
}
