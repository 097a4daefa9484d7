//! Profile completeness: per guest against the chain's required fields, and the share of
//! complete profiles per property against the chain's target.

mod common;

use common::*;
use guestloop_proto::guestprofile::v1 as pb;

// The chain's default required fields (libs/config defaults.toml):
// given_name, family_name, contacts.email, contacts.phone, language, birthday.

async fn completeness(app: &TestApp, guest_id: &str) -> pb::GetGuestCompletenessResponse {
    app.head_office()
        .get_guest_completeness(pb::GetGuestCompletenessRequest {
            guest_id: guest_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn property(app: &TestApp, property_id: &str) -> pb::GetPropertyCompletenessResponse {
    app.head_office()
        .get_property_completeness(pb::GetPropertyCompletenessRequest {
            property_id: property_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_full_profile_is_complete() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let c = completeness(&app, &g.guest_id).await;
    assert_eq!(c.score, 100);
    assert!(c.complete);
    assert!(c.missing_fields.is_empty());
    assert_eq!(g.completeness_score, 100);
}

#[tokio::test]
async fn missing_fields_are_named_and_scored() {
    let app = TestApp::spawn().await;
    // Names only; the language comes from the property (zh-CN).
    let g = app
        .create_guest("sh-bund", minimal_guest("Wei", "Zhang"))
        .await;
    assert_eq!(g.language, "zh-CN");
    let c = completeness(&app, &g.guest_id).await;
    assert_eq!(
        c.missing_fields,
        vec!["contacts.email", "contacts.phone", "birthday"]
    );
    assert_eq!(c.score, 50);
    assert!(!c.complete);
    assert_eq!(g.completeness_score, 50);

    // Filling two of them raises the score, on the guest too.
    let updated = app
        .head_office()
        .update_guest(pb::UpdateGuestRequest {
            guest: Some(pb::Guest {
                guest_id: g.guest_id.clone(),
                contacts: Some(pb::Contacts {
                    email: "wei@example.com".into(),
                    ..Default::default()
                }),
                birthday: Some(date(1990, 1, 2)),
                ..Default::default()
            }),
            update_mask: mask(&["contacts.email", "birthday"]),
        })
        .await
        .unwrap()
        .into_inner()
        .guest
        .unwrap();
    assert_eq!(updated.completeness_score, 83);
    let c = completeness(&app, &g.guest_id).await;
    assert_eq!(c.missing_fields, vec!["contacts.phone"]);
    assert_eq!(c.score, 83);

    let only_family = app.create_guest("sh-bund", minimal_guest("", "Li")).await;
    let c = completeness(&app, &only_family.guest_id).await;
    assert_eq!(
        c.missing_fields,
        vec!["given_name", "contacts.email", "contacts.phone", "birthday"]
    );
    assert_eq!(c.score, 33);
}

#[tokio::test]
async fn property_share_against_the_target() {
    let app = TestApp::spawn().await;
    // hz-lake: two complete, one not.
    for _ in 0..2 {
        app.create_guest("hz-lake", guest()).await;
    }
    let incomplete = app.create_guest("hz-lake", minimal_guest("Na", "Li")).await;
    // sz-bay: all complete.
    app.create_guest("sz-bay", guest()).await;
    // A guest from elsewhere who stayed at sz-bay counts there too.
    let visitor = app.create_guest("hk-harbour", guest()).await;
    app.upsert_stay(stay(&visitor.guest_id, "sz-bay", "SZ-1"))
        .await;

    let hz = property(&app, "hz-lake").await;
    assert_eq!((hz.guests, hz.complete_guests), (3, 2));
    assert!((hz.complete_share - 2.0 / 3.0).abs() < 1e-9);
    assert!((hz.target - 0.98).abs() < 1e-9);
    assert!(!hz.target_met);

    let sz = property(&app, "sz-bay").await;
    assert_eq!((sz.guests, sz.complete_guests), (2, 2));
    assert!((sz.complete_share - 1.0).abs() < 1e-9);
    assert!(sz.target_met);

    let empty = property(&app, "sh-bund").await;
    assert_eq!((empty.guests, empty.complete_guests), (0, 0));
    assert_eq!(empty.complete_share, 0.0);
    assert!(!empty.target_met);

    // Completing the last profile meets the target.
    app.head_office()
        .update_guest(pb::UpdateGuestRequest {
            guest: Some(pb::Guest {
                guest_id: incomplete.guest_id.clone(),
                ..guest()
            }),
            update_mask: mask(&["contacts", "birthday"]),
        })
        .await
        .unwrap();
    let hz = property(&app, "hz-lake").await;
    assert_eq!((hz.guests, hz.complete_guests), (3, 3));
    assert!(hz.target_met);

    // Erased and merged-away profiles no longer count.
    app.head_office()
        .erase_guest(pb::EraseGuestRequest {
            guest_id: incomplete.guest_id.clone(),
            reason: "guest asked".into(),
        })
        .await
        .unwrap();
    assert_eq!(property(&app, "hz-lake").await.guests, 2);

    assert_code(
        app.head_office()
            .get_property_completeness(pb::GetPropertyCompletenessRequest {
                property_id: "atlantis".into(),
            })
            .await,
        tonic::Code::NotFound,
    );
}

#[tokio::test]
async fn required_fields_and_target_follow_the_property_standards() {
    let app = TestApp::spawn_with(
        "[standards.properties.hz-lake]\n\
         required_profile_fields = [\"given_name\", \"contacts.email\", \"tier\", \"segment\"]\n\
         profile_completeness_target = 0.5\n",
    )
    .await;
    let no_segment = pb::Guest {
        segment: 0,
        ..guest()
    };
    let at_hz = app.create_guest("hz-lake", no_segment.clone()).await;
    let c = completeness(&app, &at_hz.guest_id).await;
    assert_eq!(c.missing_fields, vec!["segment"]);
    assert_eq!(c.score, 75);
    assert_eq!(at_hz.completeness_score, 75);

    // The same profile is complete where the chain default applies.
    let at_bund = app.create_guest("sh-bund", no_segment).await;
    let c = completeness(&app, &at_bund.guest_id).await;
    assert!(c.complete);
    assert_eq!(c.score, 100);

    app.create_guest("hz-lake", guest()).await;
    let hz = property(&app, "hz-lake").await;
    assert_eq!((hz.guests, hz.complete_guests), (2, 1));
    assert!((hz.target - 0.5).abs() < 1e-9);
    assert!(hz.target_met);
    assert!((property(&app, "sh-bund").await.target - 0.98).abs() < 1e-9);
}
