//! Stored records to API messages.

use crate::domain::Profile;
use crate::store::privacy::{AccessRecord, ConsentRecord, MergeRecord};
use crate::store::{GuestRecord, StayRecord};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use guestloop_proto::common::v1 as common;
use guestloop_proto::guestprofile::v1 as pb;

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn date(d: NaiveDate) -> common::Date {
    common::Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

pub fn guest(g: &GuestRecord) -> pb::Guest {
    let p: &Profile = &g.profile;
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    pb::Guest {
        guest_id: g.id.to_string(),
        given_name: s(&p.given_name),
        family_name: s(&p.family_name),
        contacts: Some(pb::Contacts {
            email: s(&p.email),
            phone: s(&p.phone),
            wechat_id: s(&p.wechat_id),
        }),
        language: s(&p.language),
        birthday: p.birthday.map(date),
        segment: p.segment,
        tier: p.tier,
        loyalty_number: s(&p.loyalty_number),
        preferences: Some(pb::Preferences {
            room_type: s(&p.preferences.room_type),
            pillow: s(&p.preferences.pillow),
            floor: s(&p.preferences.floor),
            dietary: p.preferences.dietary.clone(),
            allergies: p.preferences.allergies.clone(),
            free_text: s(&p.preferences.free_text),
        }),
        special_needs: special_needs(p),
        notes: s(&p.notes),
        completeness_score: g.completeness_score,
        erased: g.erased,
        create_time: Some(timestamp(g.create_time)),
        update_time: Some(timestamp(g.update_time)),
        home_property_id: g.home_property_id.clone(),
        anniversary: p.anniversary.map(date),
    }
}

pub fn stay(s: &StayRecord) -> pb::Stay {
    pb::Stay {
        stay_id: s.id.to_string(),
        guest_id: s.guest_id.to_string(),
        property_id: s.property_id.clone(),
        pms_reservation_id: s.pms_reservation_id.clone(),
        status: i32::from(s.status),
        arrival_date: Some(date(s.arrival_date)),
        departure_date: Some(date(s.departure_date)),
        room_number: s.room_number.clone().unwrap_or_default(),
        rate_code: s.rate_code.clone().unwrap_or_default(),
        booking_channel: s.booking_channel.clone().unwrap_or_default(),
        total_spend: match (&s.spend_currency, s.spend_minor) {
            (Some(c), Some(a)) => Some(common::Money {
                currency_code: c.clone(),
                amount_minor: a,
            }),
            _ => None,
        },
        checked_out_time: s.checked_out_time.map(timestamp),
        create_time: Some(timestamp(s.create_time)),
        update_time: Some(timestamp(s.update_time)),
    }
}

pub fn consent(c: &ConsentRecord) -> pb::Consent {
    pb::Consent {
        channel: i32::from(c.channel),
        purpose: i32::from(c.purpose),
        granted: c.granted,
        source: c.source.clone(),
        record_time: Some(timestamp(c.record_time)),
    }
}

pub fn merge(m: &MergeRecord) -> pb::MergeRecord {
    pb::MergeRecord {
        merge_id: m.id.to_string(),
        survivor_guest_id: m.survivor_guest_id.to_string(),
        duplicate_guest_id: m.duplicate_guest_id.to_string(),
        reason: m.reason.clone(),
        merged_by: m.merged_by.clone(),
        merge_time: Some(timestamp(m.merge_time)),
    }
}

pub fn access(a: &AccessRecord) -> pb::AccessLogEntry {
    pb::AccessLogEntry {
        accessor: a.accessor.clone(),
        accessor_role: a.accessor_role.clone(),
        guest_id: a.guest_id.to_string(),
        rpc: a.rpc.clone(),
        access_time: Some(timestamp(a.access_time)),
    }
}

/// The profile's special needs as the API and the events carry them.
pub fn special_needs(p: &crate::domain::Profile) -> Vec<pb::SpecialNeed> {
    p.special_needs
        .iter()
        .map(|n| pb::SpecialNeed {
            kind: n.kind,
            description: n.description.clone(),
        })
        .collect()
}
