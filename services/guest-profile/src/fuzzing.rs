//! R8: guest-profile's request parsers under random input, shared by the property tests
//! below (a few thousand cases in `cargo test`) and the cargo-fuzz target `guest_profile`
//! (fuzz/, the long run). Each surface takes a request the way the handler gets it, drawn
//! from choice bytes (guestloop_proto::arbitrary) or decoded from them as they are, and
//! runs the parse step the handler runs before any storage. None may panic; a rejection must
//! name real fields of the request; what is accepted must hold the domain's invariants.

use crate::domain::{ConsentInput, Profile, StayInput, apply_mask, parse_create};
use guestloop_errors::FieldViolations;
use guestloop_proto::arbitrary::{Choices, assert_names_fields, request};
use guestloop_proto::common::v1::{ConsentPurpose, ContactChannel, Date, PageRequest};
use guestloop_proto::guestprofile::v1 as pb;

const GUEST_ID: &str = "0195a3c0-5f1e-7b62-9a4e-6f1b2c3d4e5f";

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

/// A guest every parse accepts; the surfaces change a few of its fields.
fn valid_guest() -> pb::Guest {
    pb::Guest {
        guest_id: GUEST_ID.into(),
        given_name: "Wei".into(),
        family_name: "Li".into(),
        contacts: Some(pb::Contacts {
            email: "li.wei@example.com".into(),
            phone: "+8613800138000".into(),
            wechat_id: "wxid_abc123".into(),
        }),
        language: "zh-CN".into(),
        birthday: date(1990, 5, 1),
        anniversary: date(2015, 10, 3),
        segment: pb::Segment::Leisure as i32,
        tier: pb::Tier::VipGold as i32,
        loyalty_number: "VIP-12345".into(),
        preferences: Some(pb::Preferences {
            room_type: "king".into(),
            dietary: vec!["vegetarian".into()],
            ..Default::default()
        }),
        special_needs: vec![pb::SpecialNeed {
            kind: pb::SpecialNeedKind::Accessibility as i32,
            description: "step-free room".into(),
        }],
        notes: "prefers a quiet room".into(),
        ..Default::default()
    }
}

/// The parse steps, by name; [`run`] picks one by index.
pub const SURFACES: [&str; 6] = [
    "UpsertStay",
    "SetConsent",
    "CreateGuest",
    "UpdateGuest",
    "paging",
    "ids",
];

/// Runs surface `surface` (mod [`SURFACES`]) on input drawn from `data`.
pub fn run(surface: usize, data: &[u8]) {
    let c = &mut Choices::new(data);
    match surface % SURFACES.len() {
        0 => upsert_stay(c),
        1 => set_consent(c),
        2 => create_guest(c),
        3 => update_guest(c),
        4 => paging(c),
        _ => ids(c),
    }
}

fn rejected(request: &str, v: &FieldViolations) {
    assert_names_fields(
        request,
        v.0.iter()
            .map(|f| (f.field.as_str(), f.description.as_str())),
    );
}

fn upsert_stay(c: &mut Choices<'_>) {
    const REQ: &str = "guestloop.guestprofile.v1.UpsertStayRequest";
    let valid = pb::UpsertStayRequest {
        stay: Some(pb::Stay {
            guest_id: GUEST_ID.into(),
            property_id: "sh-bund".into(),
            pms_reservation_id: "R-1".into(),
            status: pb::StayStatus::CheckedOut as i32,
            arrival_date: date(2025, 3, 1),
            departure_date: date(2025, 3, 3),
            room_number: "1208".into(),
            total_spend: Some(guestloop_proto::common::v1::Money {
                currency_code: "CNY".into(),
                amount_minor: 120_000,
            }),
            checked_out_time: Some(prost_types::Timestamp {
                seconds: 1_741_000_000,
                nanos: 0,
            }),
            ..Default::default()
        }),
    };
    let Some(req) = request(REQ, &valid, c) else {
        return;
    };
    match StayInput::try_from(req) {
        Ok(s) => {
            assert!(s.departure_date >= s.arrival_date);
            assert!((s.departure_date - s.arrival_date).num_days() <= 366);
            assert!(!s.property_id.is_empty() && s.property_id.chars().count() <= 64);
            assert!(
                s.spend
                    .as_ref()
                    .is_none_or(|(code, amount)| code.len() == 3 && *amount >= 0)
            );
            assert!(s.checked_out_time.is_none() || s.status == pb::StayStatus::CheckedOut);
        }
        Err(v) => rejected(REQ, &v),
    }
}

fn set_consent(c: &mut Choices<'_>) {
    const REQ: &str = "guestloop.guestprofile.v1.SetConsentRequest";
    let valid = pb::SetConsentRequest {
        guest_id: GUEST_ID.into(),
        consent: Some(pb::Consent {
            channel: ContactChannel::Email as i32,
            purpose: ConsentPurpose::ServiceFollowUp as i32,
            granted: true,
            source: "front desk".into(),
            record_time: None,
        }),
    };
    let Some(req) = request(REQ, &valid, c) else {
        return;
    };
    match ConsentInput::try_from(req) {
        Ok(input) => assert!(!input.source.is_empty() && input.source.chars().count() <= 100),
        Err(v) => rejected(REQ, &v),
    }
}

/// Invariants of any profile that parsed: names and free text within their limits.
fn check_profile(p: &Profile) {
    assert!(p.given_name.is_some() || p.family_name.is_some());
    for (s, max) in [
        (&p.given_name, 100),
        (&p.family_name, 100),
        (&p.notes, 4000),
        (&p.preferences.free_text, 2000),
        (&p.wechat_id, 20),
        (&p.loyalty_number, 32),
    ] {
        assert!(
            s.as_ref()
                .is_none_or(|s| !s.is_empty() && s.chars().count() <= max)
        );
    }
    assert!(p.special_needs.len() <= 20);
    assert!(p.preferences.dietary.len() <= 20 && p.preferences.allergies.len() <= 20);
    assert!(pb::Segment::try_from(p.segment).is_ok() && pb::Tier::try_from(p.tier).is_ok());
    // Birthdays and anniversaries are real past dates with their year.
    let today = chrono::Utc::now().date_naive();
    for d in [p.birthday, p.anniversary].into_iter().flatten() {
        assert!(d <= today && chrono::Datelike::year(&d) >= 1900, "{d}");
    }
}

fn create_guest(c: &mut Choices<'_>) {
    const REQ: &str = "guestloop.guestprofile.v1.CreateGuestRequest";
    let valid = pb::CreateGuestRequest {
        property_id: "sh-bund".into(),
        guest: Some(valid_guest()),
        idempotency_key: "pms-42".into(),
    };
    let Some(req) = request(REQ, &valid, c) else {
        return;
    };
    match parse_create(&req) {
        Ok((property_id, _, profile)) => {
            assert!(!property_id.is_empty());
            check_profile(&profile);
            // Completeness scoring runs on every stored profile.
            let required: Vec<String> = [
                "given_name",
                "family_name",
                "contacts.email",
                "contacts.phone",
                "language",
                "birthday",
                "no_such_field",
            ]
            .iter()
            .map(|f| f.to_string())
            .collect();
            let (score, missing) = crate::completeness::score(&profile, &required);
            assert!((0..=100).contains(&score) && missing.len() <= required.len());
        }
        Err(v) => rejected(REQ, &v),
    }
}

fn update_guest(c: &mut Choices<'_>) {
    const REQ: &str = "guestloop.guestprofile.v1.UpdateGuestRequest";
    let valid = pb::UpdateGuestRequest {
        guest: Some(valid_guest()),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["given_name".into(), "contacts.email".into()],
        }),
    };
    let Some(req) = request(REQ, &valid, c) else {
        return;
    };
    let input = req.guest.unwrap_or_default();
    let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
    // The stored profile the mask applies to: any profile that could have been created.
    let current = Profile {
        family_name: Some("Li".into()),
        ..Profile::default()
    };
    match apply_mask(current, &input, &paths) {
        Ok(profile) => check_profile(&profile),
        Err(v) => rejected(REQ, &v),
    }
}

fn paging(c: &mut Choices<'_>) {
    const REQ: &str = "guestloop.guestprofile.v1.ListGuestsRequest";
    let valid = pb::ListGuestsRequest {
        page: Some(PageRequest {
            page_size: 10,
            page_token: String::new(),
        }),
        ..Default::default()
    };
    let Some(req) = request(REQ, &valid, c) else {
        return;
    };
    match crate::api::page(req.page) {
        Ok(page) => assert!((1..=guestloop_db::page::MAX_PAGE_SIZE).contains(&page.size)),
        Err(e) => {
            let status = tonic::Status::from(e);
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
        }
    }
}

fn ids(c: &mut Choices<'_>) {
    let text = c.text();
    if let Ok(id) = crate::api::guest_id("guest_id", &text) {
        assert_eq!(
            crate::api::guest_id("guest_id", &id.to_string()).ok(),
            Some(id)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // About a second in a debug build; the long run is `scripts/fuzz.sh`.
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn no_parse_step_panics_and_every_rejection_names_its_fields(
            data in proptest::collection::vec(any::<u8>(), 0..1024)
        ) {
            for surface in 0..SURFACES.len() {
                run(surface, &data);
            }
        }
    }
}
