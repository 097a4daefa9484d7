//! Stay RPCs. UpsertStay is what a PMS calls on every reservation change; it is idempotent
//! by (property, PMS reservation id) and emits booking, check-out, change and cancel events
//! (stay_events.rs) through the outbox in the same transaction as the change.

use super::stay_events::{GuestFacts, event_for, is_booking};
use super::{Caller, SOURCE, State, convert, guest_id, page};
use crate::domain::{StayInput, StayStatus};
use crate::error::{GuestProfileError, Result, invalid};
use crate::store::{GuestRecord, StayRecord, stays as store};
use guestloop_db::page::Cursor;
use guestloop_outbox::NewEvent;
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::guestprofile::v1 as pb;
use sqlx::PgConnection;

pub async fn upsert(
    state: &State,
    caller: &Caller,
    req: pb::UpsertStayRequest,
) -> Result<pb::UpsertStayResponse> {
    let mut input = StayInput::try_from(req)?;
    state.writable_property(caller, "stay.property_id", &input.property_id)?;
    let mut tx = state.pool.begin().await?;
    let (guest, _) = state
        .visible_guest(&mut tx, caller, input.guest_id, false)
        .await?;
    if guest.erased {
        return Err(GuestProfileError::FailedPrecondition(
            "the guest was erased".into(),
        ));
    }
    // Stays always point at the surviving profile.
    input.guest_id = guest.id;

    let mut existing =
        store::lock_by_reservation(&mut tx, &input.property_id, &input.pms_reservation_id).await?;
    let mut created = None;
    if existing.is_none() {
        if input.status == StayStatus::CheckedOut && input.checked_out_time.is_none() {
            input.checked_out_time = Some(chrono::Utc::now());
        }
        created = store::insert(&mut tx, &input).await?;
        if created.is_none() {
            // A concurrent first push of the same reservation committed first.
            existing =
                store::lock_by_reservation(&mut tx, &input.property_id, &input.pms_reservation_id)
                    .await?;
        }
    }
    // Against the fields the stay's property requires, as the completeness KPI counts it.
    let complete =
        crate::completeness::score(&guest.profile, &state.required_fields(&input.property_id))
            .1
            .is_empty();
    let response = match (created, existing) {
        (Some(stay), _) => {
            let facts = facts(&mut tx, None, &stay, &guest, complete).await?;
            if let Some(payload) = event_for(None, &stay, &facts) {
                emit(&mut tx, &stay, payload).await?;
            }
            pb::UpsertStayResponse {
                stay: Some(convert::stay(&stay)),
                created: true,
                changed: true,
            }
        }
        (None, Some(old)) => {
            // A check-out pushed again without a time keeps the first one.
            if input.status == StayStatus::CheckedOut && input.checked_out_time.is_none() {
                input.checked_out_time = old.checked_out_time.or_else(|| Some(chrono::Utc::now()));
            }
            if same(&old, &input) {
                pb::UpsertStayResponse {
                    stay: Some(convert::stay(&old)),
                    created: false,
                    changed: false,
                }
            } else {
                let stay = store::update(&mut tx, old.id, &input).await?;
                let facts = facts(&mut tx, Some(&old), &stay, &guest, complete).await?;
                if let Some(payload) = event_for(Some(&old), &stay, &facts) {
                    emit(&mut tx, &stay, payload).await?;
                }
                pb::UpsertStayResponse {
                    stay: Some(convert::stay(&stay)),
                    created: false,
                    changed: true,
                }
            }
        }
        (None, None) => {
            return Err(GuestProfileError::FailedPrecondition(
                "the reservation changed concurrently; retry".into(),
            ));
        }
    };
    tx.commit().await?;
    Ok(response)
}

/// Whether the stored stay already says what the PMS says now.
fn same(old: &StayRecord, s: &StayInput) -> bool {
    old.guest_id == s.guest_id
        && old.status == s.status as i16
        && old.arrival_date == s.arrival_date
        && old.departure_date == s.departure_date
        && old.room_number == s.room_number
        && old.rate_code == s.rate_code
        && old.booking_channel == s.booking_channel
        && old.spend_currency == s.spend.as_ref().map(|(c, _)| c.clone())
        && old.spend_minor == s.spend.as_ref().map(|(_, a)| *a)
        && old.checked_out_time.map(|t| t.timestamp_micros())
            == s.checked_out_time.map(|t| t.timestamp_micros())
}

/// The guest's side of the stay's event; the earlier stays are counted for a booking only.
async fn facts<'a>(
    conn: &mut PgConnection,
    old: Option<&StayRecord>,
    new: &StayRecord,
    guest: &'a GuestRecord,
    profile_complete: bool,
) -> Result<GuestFacts<'a>> {
    let previous_stays = if is_booking(old, new) {
        store::checked_out_count(conn, new.guest_id, new.id).await?
    } else {
        0
    };
    Ok(GuestFacts {
        guest,
        profile_complete,
        previous_stays: i32::try_from(previous_stays).unwrap_or(i32::MAX),
    })
}

/// After the guest's profile changed from `old` (in the same transaction): each stay still
/// to come is booked again when its care depends on what changed (tier, preferences,
/// special needs), so the scheduler re-plans it. From yesterday on, as a guest arriving
/// today in a zone ahead of UTC still counts as coming.
pub async fn rebook_coming_stays(
    conn: &mut PgConnection,
    old: &crate::domain::Profile,
    guest: &GuestRecord,
) -> Result<()> {
    let from = chrono::Utc::now().date_naive() - chrono::Duration::days(1);
    for stay in store::booked_from(conn, guest.id, from).await? {
        let previous = store::checked_out_count(conn, guest.id, stay.id).await?;
        let previous = i32::try_from(previous).unwrap_or(i32::MAX);
        if let Some(payload) = super::stay_events::rebooked(&stay, old, &guest.profile, previous) {
            emit(conn, &stay, payload).await?;
        }
    }
    Ok(())
}

async fn emit(conn: &mut PgConnection, stay: &StayRecord, payload: Payload) -> Result<()> {
    guestloop_outbox::enqueue(
        conn,
        SOURCE,
        NewEvent {
            aggregate_type: "stay",
            aggregate_id: stay.id.to_string(),
            property_id: stay.property_id.clone(),
            payload,
        },
    )
    .await?;
    Ok(())
}

pub async fn get(
    state: &State,
    caller: &Caller,
    req: pb::GetStayRequest,
) -> Result<pb::GetStayResponse> {
    let id = guest_id("stay_id", &req.stay_id)?;
    let stay = store::get(&state.pool, id)
        .await?
        .ok_or(GuestProfileError::NotFound("stay"))?;
    if !caller.can_see_property(&state.chain, &stay.property_id) {
        return Err(GuestProfileError::NotFound("stay"));
    }
    tracing::Span::current().record("property_id", stay.property_id.as_str());
    Ok(pb::GetStayResponse {
        stay: Some(convert::stay(&stay)),
    })
}

pub async fn list(
    state: &State,
    caller: &Caller,
    req: pb::ListStaysRequest,
) -> Result<pb::ListStaysResponse> {
    let page = page(req.page)?;
    let guest = if req.guest_id.is_empty() {
        None
    } else {
        Some(guest_id("guest_id", &req.guest_id)?)
    };
    let property = (!req.property_id.is_empty()).then_some(req.property_id.as_str());
    if guest.is_none() && property.is_none() {
        return Err(invalid("guest_id", "give guest_id or property_id"));
    }
    let mut conn = state.pool.acquire().await?;
    let guest = match guest {
        // Stays of a guest follow merges, and the guest must be visible.
        Some(id) => Some(
            state
                .visible_guest(&mut conn, caller, id, false)
                .await?
                .0
                .id,
        ),
        None => None,
    };
    let rows = store::list(&mut *conn, caller.visible(), guest, property, page).await?;
    let next_page_token = page.next_token(&rows, |s| Cursor {
        t: s.create_time,
        id: s.id,
    });
    Ok(pb::ListStaysResponse {
        stays: rows.iter().map(convert::stay).collect(),
        next_page_token,
    })
}
