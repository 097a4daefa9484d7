//! Guest RPCs: create, read, update with a field mask, list, search, completeness,
//! duplicates and merge.

use super::{Caller, SOURCE, State, convert, guest_id, page};
use crate::completeness;
use crate::domain::{Profile, apply_mask, parse_create};
use crate::error::{GuestProfileError, Result, invalid};
use crate::store::{guests as store, privacy as privacy_store, stays as stay_store};
use guestloop_db::page::Cursor;
use guestloop_errors::FieldViolations;
use guestloop_errors::parse::{email, optional_text, phone};
use guestloop_outbox::NewEvent;
use guestloop_proto::events::v1::{GuestMerged, event_envelope::Payload};
use guestloop_proto::guestprofile::v1 as pb;
use uuid::Uuid;

pub async fn create(
    state: &State,
    caller: &Caller,
    req: pb::CreateGuestRequest,
) -> Result<pb::CreateGuestResponse> {
    let (property_id, key, mut profile) = parse_create(&req)?;
    state.writable_property(caller, "property_id", &property_id)?;
    if profile.language.is_none() {
        profile.language = state
            .chain
            .property(&property_id)
            .map(|p| p.default_language.clone());
    }
    let (score, missing) = completeness::score(&profile, &state.required_fields(&property_id));

    let mut tx = state.pool.begin().await?;
    if let Some(key) = &key
        && let Some(existing) = store::find_idempotent(&mut *tx, &property_id, key).await?
    {
        let (guest, _) = state
            .visible_guest(&mut tx, caller, existing, false)
            .await?;
        // The replay returns the stored contact data, which may have changed since.
        state.log_access(&mut tx, caller, &[guest.id]).await?;
        tx.commit().await?;
        return Ok(pb::CreateGuestResponse {
            guest: Some(convert::guest(&guest)),
            created: false,
        });
    }
    let guest = store::insert(
        &mut tx,
        Uuid::now_v7(),
        &property_id,
        &profile,
        score,
        missing.is_empty(),
    )
    .await?;
    if let Some(key) = &key
        && !store::save_idempotency(&mut tx, &property_id, key, guest.id).await?
    {
        // A concurrent call with the same key won; answer with its guest.
        tx.rollback().await?;
        let mut conn = state.pool.acquire().await?;
        let existing = store::find_idempotent(&mut *conn, &property_id, key)
            .await?
            .ok_or(GuestProfileError::NotFound("guest"))?;
        let (guest, _) = state
            .visible_guest(&mut conn, caller, existing, false)
            .await?;
        drop(conn);
        state.log_read(caller, &[guest.id]).await?;
        return Ok(pb::CreateGuestResponse {
            guest: Some(convert::guest(&guest)),
            created: false,
        });
    }
    tx.commit().await?;
    Ok(pb::CreateGuestResponse {
        guest: Some(convert::guest(&guest)),
        created: true,
    })
}

pub async fn get(
    state: &State,
    caller: &Caller,
    req: pb::GetGuestRequest,
) -> Result<pb::GetGuestResponse> {
    let id = guest_id("guest_id", &req.guest_id)?;
    if let Some(guest) = state.read_logged(caller, id).await? {
        return Ok(pb::GetGuestResponse {
            guest: Some(convert::guest(&guest)),
            merged_from_guest_id: String::new(),
        });
    }
    // Boxed: its sqlx futures would otherwise size (and be copied with) every call's
    // future, the hot path's included.
    Box::pin(get_one_by_one(state, caller, id)).await
}

/// A merged id, a guest out of scope, or none at all: resolved (and logged) one by one.
async fn get_one_by_one(
    state: &State,
    caller: &Caller,
    id: uuid::Uuid,
) -> Result<pb::GetGuestResponse> {
    let mut conn = state.pool.acquire().await?;
    let (guest, merged_from) = state.visible_guest(&mut conn, caller, id, false).await?;
    drop(conn);
    state.log_read(caller, &[guest.id]).await?;
    Ok(pb::GetGuestResponse {
        guest: Some(convert::guest(&guest)),
        merged_from_guest_id: merged_from.map(|m| m.to_string()).unwrap_or_default(),
    })
}

pub async fn update(
    state: &State,
    caller: &Caller,
    req: pb::UpdateGuestRequest,
) -> Result<pb::UpdateGuestResponse> {
    let Some(input) = req.guest else {
        return Err(invalid("guest", "is required"));
    };
    let id = guest_id("guest.guest_id", &input.guest_id)?;
    let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(invalid("update_mask", "name at least one field to update"));
    }
    let mut tx = state.pool.begin().await?;
    let (current, _) = state.visible_guest(&mut tx, caller, id, true).await?;
    if current.erased {
        return Err(GuestProfileError::FailedPrecondition(
            "the guest was erased".into(),
        ));
    }
    let profile = apply_mask(current.profile.clone(), &input, &paths)?;
    let (score, missing) =
        completeness::score(&profile, &state.required_fields(&current.home_property_id));
    let guest =
        store::update_profile(&mut tx, current.id, &profile, score, missing.is_empty()).await?;
    super::stays::rebook_coming_stays(&mut tx, &current.profile, &guest).await?;
    state.log_access(&mut tx, caller, &[guest.id]).await?;
    tx.commit().await?;
    Ok(pb::UpdateGuestResponse {
        guest: Some(convert::guest(&guest)),
    })
}

fn guest_cursor(g: &crate::store::GuestRecord) -> Cursor {
    Cursor {
        t: g.create_time,
        id: g.id,
    }
}

pub async fn list(
    state: &State,
    caller: &Caller,
    req: pb::ListGuestsRequest,
) -> Result<pb::ListGuestsResponse> {
    let page = page(req.page)?;
    let property = optional_text(&req.property_id, 64).map_err(|e| invalid("property_id", e))?;
    run_search(
        state,
        caller,
        store::Criteria {
            property_id: property,
            ..Default::default()
        },
        page,
    )
    .await
    .map(|(guests, next_page_token)| pb::ListGuestsResponse {
        guests,
        next_page_token,
    })
}

pub async fn search(
    state: &State,
    caller: &Caller,
    req: pb::SearchGuestsRequest,
) -> Result<pb::SearchGuestsResponse> {
    let mut v = FieldViolations::new();
    let criteria = store::Criteria {
        email: v.check("email", email(&req.email)).flatten(),
        phone: v.check("phone", phone(&req.phone)).flatten(),
        name: v.check("name", optional_text(&req.name, 200)).flatten(),
        loyalty_number: v
            .check("loyalty_number", optional_text(&req.loyalty_number, 32))
            .flatten(),
        property_id: v
            .check("property_id", optional_text(&req.property_id, 64))
            .flatten(),
    };
    let p = req.page.unwrap_or_default();
    let page = match guestloop_db::page::Page::parse(p.page_size, &p.page_token) {
        Ok(page) => Some(page),
        Err((field, description)) => {
            v.add(field, description);
            None
        }
    };
    if !v.is_empty() {
        return Err(v.into());
    }
    if criteria.email.is_none()
        && criteria.phone.is_none()
        && criteria.name.is_none()
        && criteria.loyalty_number.is_none()
        && criteria.property_id.is_none()
    {
        return Err(invalid(
            "email",
            "give at least one of email, phone, name, loyalty_number or property_id",
        ));
    }
    run_search(state, caller, criteria, page.expect("checked"))
        .await
        .map(|(guests, next_page_token)| pb::SearchGuestsResponse {
            guests,
            next_page_token,
        })
}

async fn run_search(
    state: &State,
    caller: &Caller,
    criteria: store::Criteria,
    page: guestloop_db::page::Page,
) -> Result<(Vec<pb::Guest>, String)> {
    let mut conn = state.pool.acquire().await?;
    let rows = store::search(&mut *conn, caller.visible(), &criteria, page).await?;
    let ids: Vec<Uuid> = rows.iter().map(|g| g.id).collect();
    drop(conn);
    state.log_read(caller, &ids).await?;
    let next = page.next_token(&rows, guest_cursor);
    Ok((rows.iter().map(convert::guest).collect(), next))
}

pub async fn completeness(
    state: &State,
    caller: &Caller,
    req: pb::GetGuestCompletenessRequest,
) -> Result<pb::GetGuestCompletenessResponse> {
    let id = guest_id("guest_id", &req.guest_id)?;
    let mut conn = state.pool.acquire().await?;
    let (guest, _) = state.visible_guest(&mut conn, caller, id, false).await?;
    let (score, missing) = completeness::score(
        &guest.profile,
        &state.required_fields(&guest.home_property_id),
    );
    Ok(pb::GetGuestCompletenessResponse {
        score,
        complete: missing.is_empty(),
        missing_fields: missing,
    })
}

pub async fn property_completeness(
    state: &State,
    caller: &Caller,
    req: pb::GetPropertyCompletenessRequest,
) -> Result<pb::GetPropertyCompletenessResponse> {
    let property_id = guestloop_errors::parse::required_text(&req.property_id, 64)
        .map_err(|e| invalid("property_id", e))?;
    if state.chain.property(&property_id).is_none()
        || !caller.can_see_property(&state.chain, &property_id)
    {
        return Err(GuestProfileError::NotFound("property"));
    }
    let (guests, complete) = store::property_completeness(&state.pool, &property_id).await?;
    let target = state
        .standards
        .for_property(&state.chain, &property_id)
        .targets
        .profile_completeness;
    let share = if guests == 0 {
        0.0
    } else {
        complete as f64 / guests as f64
    };
    Ok(pb::GetPropertyCompletenessResponse {
        guests,
        complete_guests: complete,
        complete_share: share,
        target,
        target_met: guests > 0 && share >= target,
    })
}

pub async fn find_duplicates(
    state: &State,
    caller: &Caller,
    req: pb::FindDuplicatesRequest,
) -> Result<pb::FindDuplicatesResponse> {
    let id = guest_id("guest_id", &req.guest_id)?;
    let mut conn = state.pool.acquire().await?;
    let (guest, _) = state.visible_guest(&mut conn, caller, id, false).await?;
    let candidates = store::duplicate_candidates(&mut *conn, caller.visible(), &guest).await?;
    let mut scored: Vec<(f64, Vec<String>, crate::store::GuestRecord)> = candidates
        .into_iter()
        .filter_map(|c| crate::duplicates::score(&guest, &c).map(|(s, r)| (s, r, c)))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.truncate(20);
    let mut ids: Vec<Uuid> = scored.iter().map(|(_, _, c)| c.id).collect();
    ids.push(guest.id);
    drop(conn);
    state.log_read(caller, &ids).await?;
    Ok(pb::FindDuplicatesResponse {
        candidates: scored
            .iter()
            .map(|(score, reasons, c)| pb::DuplicateCandidate {
                guest: Some(convert::guest(c)),
                reasons: reasons.clone(),
                score: *score,
            })
            .collect(),
    })
}

pub async fn merge(
    state: &State,
    caller: &Caller,
    req: pb::MergeGuestsRequest,
) -> Result<pb::MergeGuestsResponse> {
    let mut v = FieldViolations::new();
    let survivor_id = v.check(
        "survivor_guest_id",
        guestloop_errors::parse::uuid(&req.survivor_guest_id),
    );
    let duplicate_id = v.check(
        "duplicate_guest_id",
        guestloop_errors::parse::uuid(&req.duplicate_guest_id),
    );
    let reason = v.check(
        "reason",
        guestloop_errors::parse::required_text(&req.reason, 500),
    );
    if survivor_id.is_some() && survivor_id == duplicate_id {
        v.add("duplicate_guest_id", "must differ from survivor_guest_id");
    }
    if !v.is_empty() {
        return Err(v.into());
    }
    let (survivor_id, duplicate_id, reason) = (
        survivor_id.expect("checked"),
        duplicate_id.expect("checked"),
        reason.expect("checked"),
    );
    if caller.principal.role == guestloop_auth::Role::PropertyStaff {
        return Err(GuestProfileError::PermissionDenied(
            "merging profiles needs a manager",
        ));
    }
    let mut tx = state.pool.begin().await?;
    // Lock in id order so two opposite merges cannot deadlock.
    let (first, second) = if survivor_id < duplicate_id {
        (survivor_id, duplicate_id)
    } else {
        (duplicate_id, survivor_id)
    };
    let a = state.visible_guest(&mut tx, caller, first, true).await?.0;
    let b = state.visible_guest(&mut tx, caller, second, true).await?.0;
    // `a` and `b` are the profiles the two ids resolve to (after earlier merges), so they
    // are told apart by which id was asked for, not by their own ids.
    let (survivor, duplicate) = if first == survivor_id { (a, b) } else { (b, a) };
    if survivor.id == duplicate.id {
        return Err(GuestProfileError::FailedPrecondition(
            "the two ids are already the same guest".into(),
        ));
    }
    if survivor.erased || duplicate.erased {
        return Err(GuestProfileError::FailedPrecondition(
            "an erased guest cannot be merged".into(),
        ));
    }
    let profile = fill_gaps(survivor.profile.clone(), &duplicate.profile);
    let (score, missing) =
        completeness::score(&profile, &state.required_fields(&survivor.home_property_id));
    stay_store::reassign(&mut tx, duplicate.id, survivor.id).await?;
    privacy_store::copy_consents(&mut tx, duplicate.id, survivor.id).await?;
    privacy_store::mark_merged(&mut tx, duplicate.id, survivor.id).await?;
    let record = privacy_store::insert_merge(
        &mut tx,
        survivor.id,
        duplicate.id,
        &reason,
        &caller.principal.subject,
    )
    .await?;
    let merged =
        store::update_profile(&mut tx, survivor.id, &profile, score, missing.is_empty()).await?;
    guestloop_outbox::enqueue(
        &mut tx,
        SOURCE,
        NewEvent {
            aggregate_type: "guest",
            aggregate_id: survivor.id.to_string(),
            property_id: String::new(),
            payload: Payload::GuestMerged(GuestMerged {
                survivor_guest_id: survivor.id.to_string(),
                duplicate_guest_id: duplicate.id.to_string(),
            }),
        },
    )
    .await?;
    state
        .log_access(&mut tx, caller, &[survivor.id, duplicate.id])
        .await?;
    tx.commit().await?;
    Ok(pb::MergeGuestsResponse {
        survivor: Some(convert::guest(&merged)),
        record: Some(convert::merge(&record)),
    })
}

/// The survivor keeps its own values; empty fields take the duplicate's.
fn fill_gaps(mut s: Profile, d: &Profile) -> Profile {
    macro_rules! fill {
        ($($f:ident),*) => { $( if s.$f.is_none() { s.$f = d.$f.clone(); } )* };
    }
    fill!(
        given_name,
        family_name,
        email,
        phone,
        wechat_id,
        language,
        birthday,
        anniversary,
        loyalty_number,
        notes
    );
    if s.segment == 0 {
        s.segment = d.segment;
    }
    s.tier = s.tier.max(d.tier);
    if s.preferences == Default::default() {
        s.preferences = d.preferences.clone();
    }
    for need in &d.special_needs {
        if !s.special_needs.contains(need) {
            s.special_needs.push(need.clone());
        }
    }
    s
}
