//! A booked stay announced (issue 13): StayBooked carries what the scheduler plans
//! pre-arrival care from — the guest's tier, their earlier checked-out stays (merged
//! profiles' included) and the profile's care facts — and nothing else about the guest. A
//! stay booked again after a cancellation is announced again; a stay first seen later than
//! booked is no booking. A change to the guest's tier or care facts books their stays still
//! to come again (a name does not). Erasing the guest blanks the care facts in the outbox.

mod common;

use common::*;
use guestloop_proto::events::v1::{EventEnvelope, StayBooked, event_envelope::Payload};
use guestloop_proto::guestprofile::v1 as pb;

fn bookings(events: &[EventEnvelope]) -> Vec<StayBooked> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::StayBooked(b)) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

fn with_status(s: pb::Stay, status: pb::StayStatus) -> pb::Stay {
    pb::Stay {
        status: status as i32,
        ..s
    }
}

#[tokio::test]
async fn a_booking_announces_the_tier_earlier_stays_and_care_facts() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    // Earlier: two stays that checked out (at two properties), one cancelled, one still to
    // come; and a duplicate profile, merged in, with a check-out of its own.
    for (property, reservation, status) in [
        ("sh-bund", "E-1", pb::StayStatus::CheckedOut),
        ("hz-lake", "E-2", pb::StayStatus::CheckedOut),
        ("sh-bund", "E-3", pb::StayStatus::Cancelled),
        ("sh-bund", "E-4", pb::StayStatus::Booked),
    ] {
        app.upsert_stay(with_status(
            stay(&g.guest_id, property, reservation),
            status,
        ))
        .await;
    }
    let duplicate = app
        .create_guest("sz-bay", minimal_guest("Wei", "Zhang"))
        .await;
    app.upsert_stay(with_status(
        stay(&duplicate.guest_id, "sz-bay", "D-1"),
        pb::StayStatus::CheckedOut,
    ))
    .await;
    app.head_office()
        .merge_guests(pb::MergeGuestsRequest {
            survivor_guest_id: g.guest_id.clone(),
            duplicate_guest_id: duplicate.guest_id.clone(),
            reason: "same person".into(),
        })
        .await
        .expect("merge");

    let booked = app
        .upsert_stay(pb::Stay {
            arrival_date: Some(date(2026, 12, 20)),
            departure_date: Some(date(2026, 12, 23)),
            ..stay(&g.guest_id, "hk-harbour", "NEW-1")
        })
        .await
        .stay
        .unwrap();
    let events = app.events("stay", &booked.stay_id).await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (
            e.source.as_str(),
            e.aggregate_type.as_str(),
            e.property_id.as_str(),
            e.sequence
        ),
        ("guest-profile", "stay", "hk-harbour", 1)
    );
    let b = bookings(&events).pop().expect("a StayBooked");
    assert_eq!(b.stay_id, booked.stay_id);
    assert_eq!(b.guest_id, g.guest_id);
    assert_eq!(b.property_id, "hk-harbour");
    assert_eq!(b.arrival_date, Some(date(2026, 12, 20)));
    assert_eq!(b.departure_date, Some(date(2026, 12, 23)));
    assert_eq!(b.tier, pb::Tier::VipGold as i32);
    assert_eq!(
        b.previous_stays, 3,
        "two check-outs of its own, one merged in"
    );
    let care = b.care.expect("care facts");
    let prefs = g.preferences.clone().unwrap();
    assert_eq!(
        (care.room_type, care.pillow, care.floor),
        (prefs.room_type, prefs.pillow, prefs.floor)
    );
    assert_eq!(care.dietary, prefs.dietary);
    assert_eq!(care.allergies, prefs.allergies);
    assert_eq!(care.special_needs, g.special_needs);
    // No contact data, names, notes or free text.
    let text = format!("{events:?}");
    for personal in [
        email_of(&g),
        phone_of(&g),
        g.given_name.clone(),
        g.family_name.clone(),
        g.notes.clone(),
        prefs.free_text.clone(),
        g.loyalty_number.clone(),
    ] {
        assert!(!text.contains(&personal), "{personal} in {text}");
    }
}

#[tokio::test]
async fn a_stay_booked_again_after_a_cancellation_is_announced_again() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let s = stay(&g.guest_id, "sh-bund", "AGAIN-1");
    let id = app.upsert_stay(s.clone()).await.stay.unwrap().stay_id;
    for status in [
        pb::StayStatus::Cancelled,
        pb::StayStatus::Booked,
        pb::StayStatus::CheckedIn,
    ] {
        app.upsert_stay(with_status(s.clone(), status)).await;
    }
    let events = app.events("stay", &id).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e.payload {
            Some(Payload::StayBooked(_)) => "booked",
            Some(Payload::StayCancelled(_)) => "cancelled",
            Some(Payload::StayChanged(_)) => "changed",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["booked", "cancelled", "booked", "changed"]);

    // Seen first when the guest is already in the house: no booking to announce.
    let walk_in = app
        .upsert_stay(with_status(
            stay(&g.guest_id, "sh-bund", "WALK-IN"),
            pb::StayStatus::CheckedIn,
        ))
        .await
        .stay
        .unwrap();
    assert!(app.events("stay", &walk_in.stay_id).await.is_empty());
}

#[tokio::test]
async fn erasing_the_guest_blanks_the_care_facts_of_their_bookings() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let other = app.create_guest("sh-bund", guest()).await;
    let mine = app
        .upsert_stay(stay(&g.guest_id, "sh-bund", "ER-1"))
        .await
        .stay
        .unwrap();
    let theirs = app
        .upsert_stay(stay(&other.guest_id, "sh-bund", "ER-2"))
        .await
        .stay
        .unwrap();
    app.head_office()
        .erase_guest(pb::EraseGuestRequest {
            guest_id: g.guest_id.clone(),
            reason: "the guest asked".into(),
        })
        .await
        .expect("erase");

    let b = bookings(&app.events("stay", &mine.stay_id).await)
        .pop()
        .unwrap();
    assert_eq!(b.care, None, "the care facts are gone");
    assert_eq!(
        (b.stay_id.as_str(), b.tier),
        (mine.stay_id.as_str(), pb::Tier::VipGold as i32),
        "the rest stays"
    );
    let text = format!("{:?}", app.events("stay", &mine.stay_id).await);
    assert!(
        !text.contains("buckwheat") && !text.contains("step-free"),
        "{text}"
    );
    // Another guest's booking keeps its facts.
    let kept = bookings(&app.events("stay", &theirs.stay_id).await)
        .pop()
        .unwrap();
    assert_eq!(kept.care.unwrap().pillow, "buckwheat");
}

#[tokio::test]
async fn a_tier_or_care_change_books_the_coming_stays_again() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let soon = chrono::Utc::now().date_naive() + chrono::Duration::days(10);
    let ymd = |d: chrono::NaiveDate| {
        use chrono::Datelike;
        date(d.year(), d.month() as i32, d.day() as i32)
    };
    let coming = |reservation: &str| pb::Stay {
        arrival_date: Some(ymd(soon)),
        departure_date: Some(ymd(soon + chrono::Duration::days(2))),
        ..stay(&g.guest_id, "sh-bund", reservation)
    };
    let mut ids = Vec::new();
    // Two stays to come, one long past (still BOOKED in the PMS), one checked out, one
    // cancelled: only the two to come are booked again.
    for s in [
        coming("C-1"),
        coming("C-2"),
        stay(&g.guest_id, "sh-bund", "OLD-1"),
        with_status(coming("OUT-1"), pb::StayStatus::CheckedOut),
        with_status(coming("X-1"), pb::StayStatus::Cancelled),
    ] {
        ids.push(app.upsert_stay(s).await.stay.unwrap().stay_id);
    }
    let bookings_of = |id: &str| {
        let (app, id) = (&app, id.to_string());
        async move { bookings(&app.events("stay", &id).await) }
    };
    let before: Vec<usize> = futures::future::join_all(ids.iter().map(|i| bookings_of(i)))
        .await
        .iter()
        .map(Vec::len)
        .collect();

    let update = |guest: pb::Guest, paths: &[&str]| pb::UpdateGuestRequest {
        guest: Some(guest),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }),
    };
    // A name changes nothing the property prepares: no event.
    app.head_office()
        .update_guest(update(
            pb::Guest {
                guest_id: g.guest_id.clone(),
                given_name: "Wei-Ming".into(),
                ..Default::default()
            },
            &["given_name"],
        ))
        .await
        .expect("rename");
    // Platinum now, and an allergy: each coming stay is booked again with both.
    let mut prefs = g.preferences.clone().unwrap();
    prefs.allergies.push("shellfish".into());
    app.head_office()
        .update_guest(update(
            pb::Guest {
                guest_id: g.guest_id.clone(),
                tier: pb::Tier::VipPlatinum as i32,
                preferences: Some(prefs),
                ..Default::default()
            },
            &["tier", "preferences"],
        ))
        .await
        .expect("upgrade");
    for (i, id) in ids.iter().enumerate() {
        let now = bookings_of(id).await;
        if i < 2 {
            assert_eq!(now.len(), before[i] + 1, "stay {i}");
            let last = now.last().unwrap();
            assert_eq!(last.tier, pb::Tier::VipPlatinum as i32);
            assert!(
                last.care
                    .as_ref()
                    .unwrap()
                    .allergies
                    .contains(&"shellfish".to_string())
            );
        } else {
            assert_eq!(now.len(), before[i], "stay {i} is not to come");
        }
    }
}
