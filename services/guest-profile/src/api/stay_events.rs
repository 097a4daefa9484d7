//! What a stay change means to the other services: the outbox event UpsertStay writes with
//! it, if any. The first check-out (the after-stay plan, the stay KPIs); a cancellation; a
//! booking — a new reservation, or a cancelled one booked again — with the guest's tier,
//! earlier stays and care facts (the scheduler's pre-arrival care for VIP and frequent
//! guests); or a change to a stay the others already know about. A change to the guest's
//! tier or care facts before arrival books their coming stays again ([`rebooked`]), so the
//! pre-arrival care follows the profile.

use super::convert;
use crate::domain::{Profile, StayStatus};
use crate::store::{GuestRecord, StayRecord};
use guestloop_proto::events::v1::{
    StayBooked, StayCancelled, StayCare, StayChanged, StayCheckedOut, event_envelope::Payload,
};

/// What the events need to know about the guest besides the stay.
pub struct GuestFacts<'a> {
    pub guest: &'a GuestRecord,
    /// The profile has every field the stay's property requires.
    pub profile_complete: bool,
    /// The guest's other checked-out stays (asked only for a booking: [`is_booking`]).
    pub previous_stays: i32,
}

/// Whether the change books the stay: created as BOOKED, or BOOKED again after it was
/// cancelled. The caller then counts the guest's earlier stays for [`event_for`].
pub fn is_booking(old: Option<&StayRecord>, new: &StayRecord) -> bool {
    new.status == StayStatus::Booked as i16
        && old.is_none_or(|o| o.status == StayStatus::Cancelled as i16)
}

/// The event for a stay that was `old` (None: just created) and is `new`.
pub fn event_for(
    old: Option<&StayRecord>,
    new: &StayRecord,
    facts: &GuestFacts<'_>,
) -> Option<Payload> {
    let checked_out = StayStatus::CheckedOut as i16;
    let cancelled = StayStatus::Cancelled as i16;
    let was = old.map(|o| o.status);
    let guest = facts.guest;
    if new.status == checked_out && was != Some(checked_out) {
        return Some(Payload::StayCheckedOut(StayCheckedOut {
            stay_id: new.id.to_string(),
            guest_id: new.guest_id.to_string(),
            property_id: new.property_id.clone(),
            checked_out_time: new.checked_out_time.map(convert::timestamp),
            arrival_date: Some(convert::date(new.arrival_date)),
            departure_date: Some(convert::date(new.departure_date)),
            tier: guest.profile.tier,
            language: guest.profile.language.clone().unwrap_or_default(),
            profile_complete: facts.profile_complete,
        }));
    }
    if new.status == cancelled && was != Some(cancelled) {
        return Some(Payload::StayCancelled(StayCancelled {
            stay_id: new.id.to_string(),
            guest_id: new.guest_id.to_string(),
            property_id: new.property_id.clone(),
        }));
    }
    if is_booking(old, new) {
        return Some(booked(new, &guest.profile, facts.previous_stays));
    }
    old.map(|_| {
        Payload::StayChanged(StayChanged {
            stay_id: new.id.to_string(),
            guest_id: new.guest_id.to_string(),
            property_id: new.property_id.clone(),
            status: i32::from(new.status),
            arrival_date: Some(convert::date(new.arrival_date)),
            departure_date: Some(convert::date(new.departure_date)),
            checked_out_time: new.checked_out_time.map(convert::timestamp),
            tier: guest.profile.tier,
        })
    })
}

fn booked(stay: &StayRecord, profile: &Profile, previous_stays: i32) -> Payload {
    Payload::StayBooked(StayBooked {
        stay_id: stay.id.to_string(),
        guest_id: stay.guest_id.to_string(),
        property_id: stay.property_id.clone(),
        arrival_date: Some(convert::date(stay.arrival_date)),
        departure_date: Some(convert::date(stay.departure_date)),
        tier: profile.tier,
        previous_stays,
        care: Some(care(profile)),
    })
}

/// The booking of a stay still to come, again, when the guest's profile went from `old` to
/// `new`: `None` unless the tier or the care facts changed (a name or an address changes
/// nothing the property prepares).
pub fn rebooked(
    stay: &StayRecord,
    old: &Profile,
    new: &Profile,
    previous_stays: i32,
) -> Option<Payload> {
    (old.tier != new.tier || care(old) != care(new)).then(|| booked(stay, new, previous_stays))
}

/// The care facts a property prepares from: preferences and special needs. Never names,
/// contact data, free text or notes.
fn care(p: &Profile) -> StayCare {
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    StayCare {
        room_type: s(&p.preferences.room_type),
        pillow: s(&p.preferences.pillow),
        floor: s(&p.preferences.floor),
        dietary: p.preferences.dietary.clone(),
        allergies: p.preferences.allergies.clone(),
        special_needs: convert::special_needs(p),
    }
}
