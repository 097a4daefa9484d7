//! Privacy: consent per channel and purpose (latest wins), the contact permission
//! notification asks for, export of everything held, erasure, and the access log of every
//! read of contact data.

mod common;

use common::*;
use guestloop_auth::Role;
use guestloop_proto::common::v1::{ConsentPurpose, ContactChannel};
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::guestprofile::v1 as pb;
use tonic::Code;

const EMAIL: i32 = ContactChannel::Email as i32;
const SMS: i32 = ContactChannel::Sms as i32;
const WECHAT: i32 = ContactChannel::Wechat as i32;
const FOLLOW_UP: i32 = ConsentPurpose::ServiceFollowUp as i32;
const MARKETING: i32 = ConsentPurpose::Marketing as i32;

fn consent(channel: i32, purpose: i32, granted: bool, source: &str) -> pb::Consent {
    pb::Consent {
        channel,
        purpose,
        granted,
        source: source.into(),
        record_time: None,
    }
}

async fn set(app: &TestApp, guest_id: &str, c: pb::Consent) -> pb::Consent {
    app.head_office()
        .set_consent(pb::SetConsentRequest {
            guest_id: guest_id.into(),
            consent: Some(c),
        })
        .await
        .unwrap()
        .into_inner()
        .consent
        .unwrap()
}

async fn current(app: &TestApp, guest_id: &str) -> Vec<pb::Consent> {
    app.head_office()
        .list_consents(pb::ListConsentsRequest {
            guest_id: guest_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .consents
}

async fn permission(
    client: &mut guestloop_client::GuestProfileClient,
    guest_id: &str,
    channel: i32,
    purpose: i32,
) -> pb::GetContactPermissionResponse {
    client
        .get_contact_permission(pb::GetContactPermissionRequest {
            guest_id: guest_id.into(),
            channel,
            purpose,
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn consent_latest_decision_wins_per_channel_and_purpose() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    assert!(current(&app, &g.guest_id).await.is_empty());

    let granted = set(
        &app,
        &g.guest_id,
        consent(EMAIL, FOLLOW_UP, true, "pms:check-in"),
    )
    .await;
    assert!(granted.granted);
    assert_eq!(granted.source, "pms:check-in");
    assert!(granted.record_time.is_some());
    set(
        &app,
        &g.guest_id,
        consent(SMS, MARKETING, true, "web:preference-centre"),
    )
    .await;
    set(
        &app,
        &g.guest_id,
        consent(EMAIL, FOLLOW_UP, false, "email:unsubscribe"),
    )
    .await;

    let now = current(&app, &g.guest_id).await;
    assert_eq!(now.len(), 2, "{now:?}");
    let email = now.iter().find(|c| c.channel == EMAIL).unwrap();
    assert_eq!((email.purpose, email.granted), (FOLLOW_UP, false));
    assert_eq!(email.source, "email:unsubscribe");
    let sms = now.iter().find(|c| c.channel == SMS).unwrap();
    assert_eq!((sms.purpose, sms.granted), (MARKETING, true));

    // A decision recorded late but dated earlier does not override a newer one.
    let an_hour_ago = prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() - 3600,
        nanos: 0,
    };
    set(
        &app,
        &g.guest_id,
        pb::Consent {
            record_time: Some(an_hour_ago),
            ..consent(EMAIL, FOLLOW_UP, true, "paper form")
        },
    )
    .await;
    let now = current(&app, &g.guest_id).await;
    let email = now.iter().find(|c| c.channel == EMAIL).unwrap();
    assert!(!email.granted);

    // Every decision is kept, and each is announced.
    assert_eq!(app.count("consents").await, 4);
    let changes: Vec<(i32, i32, bool)> = app
        .events("guest", &g.guest_id)
        .await
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(Payload::ConsentChanged(c)) => Some((c.channel, c.purpose, c.granted)),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (EMAIL, FOLLOW_UP, true),
            (SMS, MARKETING, true),
            (EMAIL, FOLLOW_UP, false),
            (EMAIL, FOLLOW_UP, true),
        ]
    );
}

#[tokio::test]
async fn contact_permission_needs_consent_and_an_address() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let notification = keys_service_token();
    let mut client = app.client(&notification);

    let denied = permission(&mut client, &g.guest_id, EMAIL, FOLLOW_UP).await;
    assert!(!denied.allowed);
    assert_eq!(denied.denial_reason, "no_consent");
    assert_eq!(denied.address, "");
    assert_eq!(denied.given_name, "");
    assert!(app.access_log(&g.guest_id).await.is_empty());

    set(&app, &g.guest_id, consent(EMAIL, FOLLOW_UP, true, "pms")).await;
    let allowed = permission(&mut client, &g.guest_id, EMAIL, FOLLOW_UP).await;
    assert!(allowed.allowed);
    assert_eq!(allowed.denial_reason, "");
    assert_eq!(allowed.address, email_of(&g));
    assert_eq!(allowed.language, "zh-CN");
    assert_eq!(allowed.given_name, "Wei");
    assert_eq!(allowed.family_name, "Zhang");
    assert_eq!(allowed.guest_id, g.guest_id);
    // Consent is per purpose and per channel.
    assert!(
        !permission(&mut client, &g.guest_id, EMAIL, MARKETING)
            .await
            .allowed
    );
    assert!(
        !permission(&mut client, &g.guest_id, SMS, FOLLOW_UP)
            .await
            .allowed
    );

    set(&app, &g.guest_id, consent(SMS, FOLLOW_UP, true, "pms")).await;
    let sms = permission(&mut client, &g.guest_id, SMS, FOLLOW_UP).await;
    assert!(sms.allowed);
    assert_eq!(sms.address, phone_of(&g));

    // Consent without an address on file.
    let no_wechat = app
        .create_guest(
            "sh-bund",
            pb::Guest {
                contacts: Some(pb::Contacts {
                    wechat_id: String::new(),
                    ..g.contacts.clone().unwrap()
                }),
                ..guest()
            },
        )
        .await;
    set(
        &app,
        &no_wechat.guest_id,
        consent(WECHAT, FOLLOW_UP, true, "pms"),
    )
    .await;
    let r = permission(&mut client, &no_wechat.guest_id, WECHAT, FOLLOW_UP).await;
    assert!(!r.allowed);
    assert_eq!(r.denial_reason, "no_address");
    assert_eq!(r.address, "");

    // Withdrawal takes effect at once.
    set(
        &app,
        &g.guest_id,
        consent(EMAIL, FOLLOW_UP, false, "email:unsubscribe"),
    )
    .await;
    let r = permission(&mut client, &g.guest_id, EMAIL, FOLLOW_UP).await;
    assert!(!r.allowed);
    assert_eq!(r.address, "");

    // Only the two reads that returned an address were logged.
    let log = app.access_log(&g.guest_id).await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log.iter().all(|(who, role, rpc)| who == "notification"
        && role == "service"
        && rpc == &format!("{RPC_PREFIX}GetContactPermission")));
}

fn keys_service_token() -> String {
    token_as("notification", Role::Service, &[], None)
}

#[tokio::test]
async fn every_read_of_contact_data_is_logged() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let other = app.create_guest("sh-bund", guest_named("Na", "Li")).await;
    // Creating a guest is not a read.
    assert!(app.access_log(&g.guest_id).await.is_empty());

    let alice = token_as("alice", Role::PropertyStaff, &["sh-bund"], None);
    let bob = token_as("bob", Role::RegionalManager, &[], Some("east"));
    let mut as_alice = app.client(&alice);
    let mut as_bob = app.client(&bob);

    as_alice
        .get_guest(pb::GetGuestRequest {
            guest_id: g.guest_id.clone(),
        })
        .await
        .unwrap();
    as_bob
        .search_guests(pb::SearchGuestsRequest {
            email: email_of(&g),
            ..Default::default()
        })
        .await
        .unwrap();
    as_alice
        .list_guests(pb::ListGuestsRequest {
            property_id: "sh-bund".into(),
            page: None,
        })
        .await
        .unwrap();
    as_alice
        .update_guest(pb::UpdateGuestRequest {
            guest: Some(pb::Guest {
                guest_id: g.guest_id.clone(),
                notes: "asked for a quiet room".into(),
                ..Default::default()
            }),
            update_mask: mask(&["notes"]),
        })
        .await
        .unwrap();
    as_bob
        .find_duplicates(pb::FindDuplicatesRequest {
            guest_id: g.guest_id.clone(),
        })
        .await
        .unwrap();
    set(&app, &g.guest_id, consent(EMAIL, FOLLOW_UP, true, "pms")).await;
    as_alice
        .get_contact_permission(pb::GetContactPermissionRequest {
            guest_id: g.guest_id.clone(),
            channel: EMAIL,
            purpose: FOLLOW_UP,
        })
        .await
        .unwrap();
    // Reads that return no contact data are not logged.
    as_alice
        .get_guest_completeness(pb::GetGuestCompletenessRequest {
            guest_id: g.guest_id.clone(),
        })
        .await
        .unwrap();
    as_alice
        .list_consents(pb::ListConsentsRequest {
            guest_id: g.guest_id.clone(),
        })
        .await
        .unwrap();
    let export = as_bob
        .export_guest(pb::ExportGuestRequest {
            guest_id: g.guest_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();

    let rpc = |name: &str| format!("{RPC_PREFIX}{name}");
    let expected = vec![
        (
            "alice".to_string(),
            "property_staff".to_string(),
            rpc("GetGuest"),
        ),
        ("bob".into(), "regional_manager".into(), rpc("SearchGuests")),
        ("alice".into(), "property_staff".into(), rpc("ListGuests")),
        ("alice".into(), "property_staff".into(), rpc("UpdateGuest")),
        (
            "bob".into(),
            "regional_manager".into(),
            rpc("FindDuplicates"),
        ),
        (
            "alice".into(),
            "property_staff".into(),
            rpc("GetContactPermission"),
        ),
        ("bob".into(), "regional_manager".into(), rpc("ExportGuest")),
    ];
    assert_eq!(app.access_log(&g.guest_id).await, expected);
    // The other guest was read by the list only.
    assert_eq!(
        app.access_log(&other.guest_id).await,
        vec![(
            "alice".to_string(),
            "property_staff".to_string(),
            rpc("ListGuests")
        )]
    );

    // The export contains the log, including the export itself.
    let exported: Vec<(String, String, String)> = export
        .access_log
        .iter()
        .map(|e| (e.accessor.clone(), e.accessor_role.clone(), e.rpc.clone()))
        .collect();
    assert_eq!(exported, expected);
    assert!(
        export
            .access_log
            .iter()
            .all(|e| e.guest_id == g.guest_id && e.access_time.is_some())
    );

    // Managers read the log; staff may not.
    let listed = as_bob
        .list_access_log(pb::ListAccessLogRequest {
            guest_id: g.guest_id.clone(),
            page: page(4, ""),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.entries.len(), 4);
    let rest = as_bob
        .list_access_log(pb::ListAccessLogRequest {
            guest_id: g.guest_id.clone(),
            page: page(4, &listed.next_page_token),
        })
        .await
        .unwrap()
        .into_inner();
    let all: Vec<String> = listed
        .entries
        .iter()
        .chain(&rest.entries)
        .map(|e| e.rpc.clone())
        .collect();
    assert_eq!(
        all,
        expected.iter().map(|e| e.2.clone()).collect::<Vec<_>>()
    );
    assert_code(
        as_alice
            .list_access_log(pb::ListAccessLogRequest {
                guest_id: g.guest_id.clone(),
                page: None,
            })
            .await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn an_idempotent_replay_that_returns_contact_data_is_logged() {
    let app = TestApp::spawn().await;
    let mut client = app.client(&token_as(
        "pms-bund",
        Role::PropertyStaff,
        &["sh-bund"],
        None,
    ));
    let request = pb::CreateGuestRequest {
        guest: Some(guest()),
        property_id: "sh-bund".into(),
        idempotency_key: "p-1".into(),
    };
    let first = client
        .create_guest(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(
        app.access_log(&first.guest.unwrap().guest_id)
            .await
            .is_empty()
    );
    let replay = client.create_guest(request).await.unwrap().into_inner();
    assert!(!replay.created);
    let log = app.access_log(&replay.guest.unwrap().guest_id).await;
    assert_eq!(
        log,
        vec![(
            "pms-bund".to_string(),
            "property_staff".to_string(),
            format!("{RPC_PREFIX}CreateGuest")
        )]
    );
}

#[tokio::test]
async fn export_contains_everything_held() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let dup = app.create_guest("sh-bund", guest()).await;
    let s1 = app
        .upsert_stay(stay(&g.guest_id, "sh-bund", "X-1"))
        .await
        .stay
        .unwrap();
    let s2 = app
        .upsert_stay(stay(&dup.guest_id, "sh-bund", "X-2"))
        .await
        .stay
        .unwrap();
    set(&app, &g.guest_id, consent(EMAIL, FOLLOW_UP, true, "pms")).await;
    set(
        &app,
        &g.guest_id,
        consent(EMAIL, FOLLOW_UP, false, "unsubscribe"),
    )
    .await;
    let merge = app
        .client(&manager("sh-bund"))
        .merge_guests(pb::MergeGuestsRequest {
            survivor_guest_id: g.guest_id.clone(),
            duplicate_guest_id: dup.guest_id.clone(),
            reason: "same person".into(),
        })
        .await
        .unwrap()
        .into_inner();
    app.head_office()
        .get_guest(pb::GetGuestRequest {
            guest_id: g.guest_id.clone(),
        })
        .await
        .unwrap();

    let export = app
        .head_office()
        .export_guest(pb::ExportGuestRequest {
            guest_id: g.guest_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let guest = export.guest.unwrap();
    assert_eq!(guest.guest_id, g.guest_id);
    assert_eq!(email_of(&guest), email_of(&g));
    assert_eq!(guest.preferences, g.preferences);
    assert_eq!(guest.special_needs, g.special_needs);
    let mut stay_ids: Vec<_> = export.stays.iter().map(|s| s.stay_id.clone()).collect();
    stay_ids.sort();
    let mut expected = vec![s1.stay_id, s2.stay_id];
    expected.sort();
    assert_eq!(stay_ids, expected);
    // The whole consent history, not only the current state.
    let history: Vec<(String, bool)> = export
        .consent_history
        .iter()
        .map(|c| (c.source.clone(), c.granted))
        .collect();
    assert_eq!(
        history,
        vec![
            ("pms".to_string(), true),
            ("unsubscribe".to_string(), false)
        ]
    );
    assert_eq!(export.merges, vec![merge.record.unwrap()]);
    let rpcs: Vec<&str> = export
        .access_log
        .iter()
        .map(|e| e.rpc.trim_start_matches(RPC_PREFIX))
        .collect();
    assert_eq!(
        rpcs,
        vec!["MergeGuests", "MergeGuests", "GetGuest", "ExportGuest"]
    );
    assert!(export.export_time.is_some());
}

#[tokio::test]
async fn erase_anonymises_and_tells_the_other_services() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let dup = app.create_guest("sh-bund", guest()).await;
    let stay_id = app
        .upsert_stay(pb::Stay {
            status: pb::StayStatus::CheckedOut as i32,
            ..stay(&g.guest_id, "sh-bund", "ER-1")
        })
        .await
        .stay
        .unwrap()
        .stay_id;
    set(&app, &g.guest_id, consent(EMAIL, FOLLOW_UP, true, "pms")).await;
    let mut manager_client = app.client(&manager("sh-bund"));
    manager_client
        .merge_guests(pb::MergeGuestsRequest {
            survivor_guest_id: g.guest_id.clone(),
            duplicate_guest_id: dup.guest_id.clone(),
            reason: "Wei Zhang twice".into(),
        })
        .await
        .unwrap();

    // Staff may not erase.
    assert_code(
        app.client(&guestloop_testkit::keys().staff("sh-bund"))
            .erase_guest(pb::EraseGuestRequest {
                guest_id: g.guest_id.clone(),
                reason: "guest asked".into(),
            })
            .await,
        Code::PermissionDenied,
    );
    assert!(app.guest_row(&g.guest_id).await.contains(&email_of(&g)));

    let erased = manager_client
        .erase_guest(pb::EraseGuestRequest {
            guest_id: g.guest_id.clone(),
            reason: "guest asked at the desk".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(erased.guest_id, g.guest_id);
    assert!(erased.erase_time.is_some());

    let got = app
        .head_office()
        .get_guest(pb::GetGuestRequest {
            guest_id: g.guest_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .guest
        .unwrap();
    assert!(got.erased);
    assert_eq!(got.given_name, "");
    assert_eq!(got.family_name, "");
    assert_eq!(got.contacts, Some(pb::Contacts::default()));
    assert_eq!(got.birthday, None);
    assert_eq!(got.loyalty_number, "");
    assert_eq!(got.notes, "");
    assert_eq!(got.preferences, Some(pb::Preferences::default()));
    assert!(got.special_needs.is_empty());

    // Nothing personal is left in the database, for the survivor or the merged-away profile.
    for id in [&g.guest_id, &dup.guest_id] {
        let row = app.guest_row(id).await;
        for secret in [
            email_of(&g),
            phone_of(&g),
            email_of(&dup),
            phone_of(&dup),
            "Zhang".to_string(),
            "buckwheat".to_string(),
            "step-free".to_string(),
            g.loyalty_number.clone(),
        ] {
            assert!(!row.contains(&secret), "{secret} left in {row}");
        }
    }
    let reasons: Vec<String> = sqlx::query_scalar("SELECT reason FROM merges")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(reasons.iter().all(|r| !r.contains("Zhang")));
    assert_eq!(app.count("consents").await, 0);
    // Stays remain for statistics, pointing at the anonymous profile.
    let s = app
        .head_office()
        .get_stay(pb::GetStayRequest {
            stay_id: stay_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stay
        .unwrap();
    assert_eq!(s.guest_id, g.guest_id);

    // One GuestErased per profile, for every other service.
    for id in [&g.guest_id, &dup.guest_id] {
        let erased: Vec<_> = app
            .events("guest", id)
            .await
            .into_iter()
            .filter(|e| matches!(&e.payload, Some(Payload::GuestErased(x)) if &x.guest_id == id))
            .collect();
        assert_eq!(erased.len(), 1, "GuestErased for {id}");
    }

    // No contact from now on.
    let mut notification = app.client(&keys_service_token());
    let r = permission(&mut notification, &g.guest_id, EMAIL, FOLLOW_UP).await;
    assert!(!r.allowed);
    assert_eq!(r.denial_reason, "erased");
    assert_eq!(r.address, "");
    assert_eq!(r.given_name, "");
    // Consent cannot be given again, nor the profile filled in.
    assert_code(
        app.head_office()
            .set_consent(pb::SetConsentRequest {
                guest_id: g.guest_id.clone(),
                consent: Some(consent(EMAIL, FOLLOW_UP, true, "pms")),
            })
            .await,
        Code::FailedPrecondition,
    );
    assert_code(
        app.head_office()
            .update_guest(pb::UpdateGuestRequest {
                guest: Some(pb::Guest {
                    guest_id: g.guest_id.clone(),
                    ..guest()
                }),
                update_mask: mask(&["contacts"]),
            })
            .await,
        Code::FailedPrecondition,
    );
    // Search by the old email finds nothing.
    let found = app
        .head_office()
        .search_guests(pb::SearchGuestsRequest {
            email: email_of(&g),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .guests;
    assert!(found.is_empty());

    // Erasing again is harmless and announces nothing new.
    let outbox = app.count("outbox").await;
    manager_client
        .erase_guest(pb::EraseGuestRequest {
            guest_id: g.guest_id.clone(),
            reason: "again".into(),
        })
        .await
        .unwrap();
    assert_eq!(app.count("outbox").await, outbox);
}
