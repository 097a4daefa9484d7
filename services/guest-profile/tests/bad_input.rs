//! Bad input answers INVALID_ARGUMENT naming the field (google.rpc.BadRequest), and nothing
//! is written: no guest, no stay, no consent, no event.

mod common;

use common::*;
use guestloop_proto::common::v1 as c;
use guestloop_proto::guestprofile::v1 as pb;

fn with_contacts(email: &str, phone: &str, wechat: &str) -> pb::Guest {
    pb::Guest {
        contacts: Some(pb::Contacts {
            email: email.into(),
            phone: phone.into(),
            wechat_id: wechat.into(),
        }),
        ..guest()
    }
}

/// Each case: a guest with one thing wrong, and the field the answer must name.
fn bad_guests() -> Vec<(&'static str, pb::Guest, &'static str)> {
    vec![
        (
            "no names",
            pb::Guest {
                given_name: String::new(),
                family_name: String::new(),
                ..guest()
            },
            "guest.family_name",
        ),
        (
            "blank names",
            pb::Guest {
                given_name: "   ".into(),
                family_name: "\t".into(),
                ..guest()
            },
            "guest.family_name",
        ),
        (
            "oversized given name",
            pb::Guest {
                given_name: "W".repeat(101),
                ..guest()
            },
            "guest.given_name",
        ),
        (
            "oversized family name (multibyte)",
            pb::Guest {
                family_name: "张".repeat(101),
                ..guest()
            },
            "guest.family_name",
        ),
        (
            "control character in a name",
            pb::Guest {
                given_name: "Wei\u{0000}".into(),
                ..guest()
            },
            "guest.given_name",
        ),
        (
            "malformed email",
            with_contacts("wei.zhang@", "", ""),
            "guest.contacts.email",
        ),
        (
            "email without a domain dot",
            with_contacts("wei@localhost", "", ""),
            "guest.contacts.email",
        ),
        (
            "phone without +",
            with_contacts("", "13800138000", ""),
            "guest.contacts.phone",
        ),
        (
            "phone with letters",
            with_contacts("", "+86 138 ABCD 8000", ""),
            "guest.contacts.phone",
        ),
        (
            "malformed WeChat id",
            with_contacts("", "", "1bad id!"),
            "guest.contacts.wechat_id",
        ),
        (
            "unknown segment",
            pb::Guest {
                segment: 99,
                ..guest()
            },
            "guest.segment",
        ),
        (
            "unknown tier",
            pb::Guest {
                tier: -3,
                ..guest()
            },
            "guest.tier",
        ),
        (
            "unknown language",
            pb::Guest {
                language: "fr".into(),
                ..guest()
            },
            "guest.language",
        ),
        (
            "impossible birthday",
            pb::Guest {
                birthday: Some(date(2023, 2, 30)),
                ..guest()
            },
            "guest.birthday",
        ),
        (
            "birthday month 13",
            pb::Guest {
                birthday: Some(date(1990, 13, 1)),
                ..guest()
            },
            "guest.birthday",
        ),
        (
            "future birthday",
            pb::Guest {
                birthday: Some(next_year()),
                ..guest()
            },
            "guest.birthday",
        ),
        (
            "impossible anniversary",
            pb::Guest {
                anniversary: Some(date(2019, 2, 29)),
                ..guest()
            },
            "guest.anniversary",
        ),
        (
            "future anniversary",
            pb::Guest {
                anniversary: Some(next_year()),
                ..guest()
            },
            "guest.anniversary",
        ),
        (
            "anniversary without a year",
            pb::Guest {
                anniversary: Some(date(0, 6, 12)),
                ..guest()
            },
            "guest.anniversary",
        ),
        (
            "anniversary before 1900",
            pb::Guest {
                anniversary: Some(date(1899, 12, 31)),
                ..guest()
            },
            "guest.anniversary",
        ),
        (
            "unknown special-need kind",
            pb::Guest {
                special_needs: vec![pb::SpecialNeed {
                    kind: 9,
                    description: "x".into(),
                }],
                ..guest()
            },
            "guest.special_needs[0].kind",
        ),
        (
            "special need without a description",
            pb::Guest {
                special_needs: vec![
                    pb::SpecialNeed {
                        kind: pb::SpecialNeedKind::Medical as i32,
                        description: "diabetic".into(),
                    },
                    pb::SpecialNeed {
                        kind: pb::SpecialNeedKind::Medical as i32,
                        description: " ".into(),
                    },
                ],
                ..guest()
            },
            "guest.special_needs[1].description",
        ),
        (
            "oversized notes",
            pb::Guest {
                notes: "n".repeat(4001),
                ..guest()
            },
            "guest.notes",
        ),
        (
            "too many dietary entries",
            pb::Guest {
                preferences: Some(pb::Preferences {
                    dietary: vec!["vegan".to_string(); 21],
                    ..Default::default()
                }),
                ..guest()
            },
            "guest.preferences.dietary",
        ),
        (
            "malformed loyalty number",
            pb::Guest {
                loyalty_number: "GL 12/34".into(),
                ..guest()
            },
            "guest.loyalty_number",
        ),
    ]
}

#[tokio::test]
async fn create_guest_rejects_each_bad_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let mut client = app.head_office();
    for (case, g, field) in bad_guests() {
        let status = client
            .create_guest(pb::CreateGuestRequest {
                guest: Some(g),
                property_id: "sh-bund".into(),
                idempotency_key: format!("key-{case}"),
            })
            .await
            .expect_err(case);
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{case}: {status:?}"
        );
        let fields = violated_fields(&status);
        assert!(
            fields.iter().any(|f| f == field),
            "{case}: expected `{field}` in {fields:?}"
        );
    }
    assert_eq!(app.count("guests").await, 0);
    assert_eq!(app.count("guest_idempotency").await, 0);
    assert_eq!(app.count("outbox").await, 0);
}

#[tokio::test]
async fn every_violation_is_reported_at_once() {
    let app = TestApp::spawn().await;
    let status = assert_invalid(
        app.head_office()
            .create_guest(pb::CreateGuestRequest {
                guest: Some(pb::Guest {
                    given_name: "x".repeat(200),
                    contacts: Some(pb::Contacts {
                        email: "nope".into(),
                        phone: "nope".into(),
                        wechat_id: String::new(),
                    }),
                    segment: 99,
                    birthday: Some(date(2023, 2, 30)),
                    ..guest()
                }),
                property_id: String::new(),
                idempotency_key: String::new(),
            })
            .await,
        "guest.contacts.email",
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "guest.birthday",
            "guest.contacts.email",
            "guest.contacts.phone",
            "guest.given_name",
            "guest.segment",
            "property_id",
        ]
    );
    // The message does not echo personal data back.
    assert!(!status.message().contains("xxxxxxxx"));
    assert_eq!(app.count("guests").await, 0);
}

#[tokio::test]
async fn create_guest_checks_the_property_and_the_guest() {
    let app = TestApp::spawn().await;
    let mut client = app.head_office();
    assert_invalid(
        client
            .create_guest(pb::CreateGuestRequest {
                guest: None,
                property_id: "sh-bund".into(),
                idempotency_key: String::new(),
            })
            .await,
        "guest",
    );
    assert_invalid(
        client
            .create_guest(pb::CreateGuestRequest {
                guest: Some(guest()),
                property_id: "atlantis".into(),
                idempotency_key: String::new(),
            })
            .await,
        "property_id",
    );
    assert_invalid(
        client
            .create_guest(pb::CreateGuestRequest {
                guest: Some(guest()),
                property_id: "sh-bund".into(),
                idempotency_key: "k".repeat(129),
            })
            .await,
        "idempotency_key",
    );
    assert_eq!(app.count("guests").await, 0);
}

#[tokio::test]
async fn update_guest_rejects_bad_values_and_leaves_the_row_alone() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let before = app.guest_row(&g.guest_id).await;
    let mut client = app.head_office();
    let cases: Vec<(pb::Guest, &[&str], &str)> = vec![
        (
            with_contacts("bad@", "", ""),
            &["contacts.email"],
            "guest.contacts.email",
        ),
        (
            with_contacts("", "+0", ""),
            &["contacts"],
            "guest.contacts.phone",
        ),
        (
            pb::Guest {
                segment: 99,
                ..guest()
            },
            &["segment"],
            "guest.segment",
        ),
        (
            pb::Guest {
                birthday: Some(date(2023, 2, 30)),
                ..guest()
            },
            &["birthday"],
            "guest.birthday",
        ),
        (
            pb::Guest {
                birthday: Some(next_year()),
                ..guest()
            },
            &["birthday"],
            "guest.birthday",
        ),
        (
            pb::Guest {
                anniversary: Some(date(2023, 4, 31)),
                ..guest()
            },
            &["anniversary"],
            "guest.anniversary",
        ),
        // Clearing both names would leave a nameless guest.
        (
            pb::Guest {
                given_name: String::new(),
                family_name: String::new(),
                ..guest()
            },
            &["given_name", "family_name"],
            "guest.family_name",
        ),
        // A good field next to a bad one is not applied either.
        (
            pb::Guest {
                given_name: "Changed".into(),
                tier: 42,
                ..guest()
            },
            &["given_name", "tier"],
            "guest.tier",
        ),
    ];
    for (mut input, paths, field) in cases {
        input.guest_id = g.guest_id.clone();
        assert_invalid(
            client
                .update_guest(pb::UpdateGuestRequest {
                    guest: Some(input),
                    update_mask: mask(paths),
                })
                .await,
            field,
        );
    }
    assert_invalid(
        client
            .update_guest(pb::UpdateGuestRequest {
                guest: Some(pb::Guest {
                    guest_id: "not-a-uuid".into(),
                    ..guest()
                }),
                update_mask: mask(&["notes"]),
            })
            .await,
        "guest.guest_id",
    );
    assert_eq!(app.guest_row(&g.guest_id).await, before);
    assert!(app.access_log(&g.guest_id).await.is_empty());
}

#[tokio::test]
async fn upsert_stay_rejects_bad_stays_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let good = stay(&g.guest_id, "sh-bund", "R-1");
    let future = chrono::Utc::now() + chrono::Duration::hours(2);
    let cases: Vec<(pb::Stay, &str)> = vec![
        (
            pb::Stay {
                status: 99,
                ..good.clone()
            },
            "stay.status",
        ),
        (
            pb::Stay {
                status: 0,
                ..good.clone()
            },
            "stay.status",
        ),
        (
            pb::Stay {
                departure_date: Some(date(2025, 2, 27)),
                ..good.clone()
            },
            "stay.departure_date",
        ),
        (
            pb::Stay {
                arrival_date: Some(date(2025, 2, 30)),
                ..good.clone()
            },
            "stay.arrival_date",
        ),
        (
            pb::Stay {
                arrival_date: None,
                ..good.clone()
            },
            "stay.arrival_date",
        ),
        (
            pb::Stay {
                pms_reservation_id: String::new(),
                ..good.clone()
            },
            "stay.pms_reservation_id",
        ),
        (
            pb::Stay {
                guest_id: "42".into(),
                ..good.clone()
            },
            "stay.guest_id",
        ),
        (
            pb::Stay {
                property_id: "atlantis".into(),
                ..good.clone()
            },
            "stay.property_id",
        ),
        (
            pb::Stay {
                total_spend: Some(c::Money {
                    currency_code: "yuan".into(),
                    amount_minor: -5,
                }),
                ..good.clone()
            },
            "stay.total_spend.currency_code",
        ),
        (
            pb::Stay {
                status: pb::StayStatus::CheckedOut as i32,
                checked_out_time: Some(prost_types::Timestamp {
                    seconds: future.timestamp(),
                    nanos: 0,
                }),
                ..good.clone()
            },
            "stay.checked_out_time",
        ),
        (
            pb::Stay {
                status: pb::StayStatus::Booked as i32,
                checked_out_time: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() - 3600,
                    nanos: 0,
                }),
                ..good.clone()
            },
            "stay.checked_out_time",
        ),
        (
            pb::Stay {
                room_number: "R".repeat(17),
                ..good.clone()
            },
            "stay.room_number",
        ),
    ];
    let mut client = app.head_office();
    for (s, field) in cases {
        assert_invalid(
            client
                .upsert_stay(pb::UpsertStayRequest { stay: Some(s) })
                .await,
            field,
        );
    }
    assert_invalid(
        client
            .upsert_stay(pb::UpsertStayRequest { stay: None })
            .await,
        "stay",
    );
    assert_eq!(app.count("stays").await, 0);
    assert_eq!(app.count("outbox").await, 0);
}

#[tokio::test]
async fn consent_and_permission_requests_are_checked() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let mut client = app.head_office();
    let consent = |channel: i32, purpose: i32, source: &str| pb::Consent {
        channel,
        purpose,
        granted: true,
        source: source.into(),
        record_time: None,
    };
    let email = c::ContactChannel::Email as i32;
    let follow_up = c::ConsentPurpose::ServiceFollowUp as i32;
    for (cn, field) in [
        (consent(99, follow_up, "pms"), "consent.channel"),
        (consent(0, follow_up, "pms"), "consent.channel"),
        (consent(email, 7, "pms"), "consent.purpose"),
        (consent(email, follow_up, ""), "consent.source"),
        (
            pb::Consent {
                record_time: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() + 86_400,
                    nanos: 0,
                }),
                ..consent(email, follow_up, "pms")
            },
            "consent.record_time",
        ),
    ] {
        assert_invalid(
            client
                .set_consent(pb::SetConsentRequest {
                    guest_id: g.guest_id.clone(),
                    consent: Some(cn),
                })
                .await,
            field,
        );
    }
    assert_eq!(app.count("consents").await, 0);
    assert_eq!(app.count("outbox").await, 0);

    assert_invalid(
        client
            .get_contact_permission(pb::GetContactPermissionRequest {
                guest_id: g.guest_id.clone(),
                channel: 42,
                purpose: follow_up,
            })
            .await,
        "channel",
    );
    assert_invalid(
        client
            .get_contact_permission(pb::GetContactPermissionRequest {
                guest_id: g.guest_id.clone(),
                channel: email,
                purpose: 0,
            })
            .await,
        "purpose",
    );
    for r in [
        client
            .get_guest(pb::GetGuestRequest {
                guest_id: "nope".into(),
            })
            .await
            .map(|_| ()),
        client
            .export_guest(pb::ExportGuestRequest {
                guest_id: String::new(),
            })
            .await
            .map(|_| ()),
    ] {
        assert_invalid(r, "guest_id");
    }
    assert_invalid(
        app.client(&manager("sh-bund"))
            .merge_guests(pb::MergeGuestsRequest {
                survivor_guest_id: g.guest_id.clone(),
                duplicate_guest_id: g.guest_id.clone(),
                reason: "same".into(),
            })
            .await,
        "duplicate_guest_id",
    );
    assert_invalid(
        app.client(&manager("sh-bund"))
            .erase_guest(pb::EraseGuestRequest {
                guest_id: g.guest_id.clone(),
                reason: String::new(),
            })
            .await,
        "reason",
    );
    assert_eq!(app.count("merges").await, 0);
    assert!(
        !app.guest_row(&g.guest_id)
            .await
            .contains("\"erased\": true")
    );
}
