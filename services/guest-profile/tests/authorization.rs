//! Authorization. A guest and a stay at sh-bund; every RPC of the service called by callers
//! outside sh-bund's scope (another property of the same region, a property of another
//! region, the other region's manager) answers NOT_FOUND (PERMISSION_DENIED where the call
//! writes to a property outside the scope, or needs a role the caller lacks), lists and
//! searches show nothing of sh-bund, and the database proves nothing was read, changed,
//! exported or merged. Callers inside the scope see it all. Without a valid token nothing
//! answers except health.

mod common;

use common::*;
use guestloop_auth::{Claims, Role, SigningKey, TokenSigner};
use guestloop_client::GuestProfileClient;
use guestloop_proto::common::v1::{ConsentPurpose, ContactChannel};
use guestloop_proto::guestprofile::v1 as pb;
use guestloop_testkit::keys;
use std::collections::BTreeSet;
use std::fmt::Debug;
use tonic::{Code, Status};

const EMAIL: i32 = ContactChannel::Email as i32;
const FOLLOW_UP: i32 = ConsentPurpose::ServiceFollowUp as i32;

/// What sh-bund holds: two guests (g with an idempotency key, consent and a checked-in
/// stay; g2 with a stay).
struct World {
    g: pb::Guest,
    g2: pb::Guest,
    stay: pb::Stay,
    /// A third sh-bund guest, erased, and its erasure.
    erased: pb::Guest,
    erasure_id: String,
}

const G_KEY: &str = "bund-profile-1";

async fn world(app: &TestApp) -> World {
    let g = app
        .head_office()
        .create_guest(pb::CreateGuestRequest {
            guest: Some(guest()),
            property_id: "sh-bund".into(),
            idempotency_key: G_KEY.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .guest
        .unwrap();
    let g2 = app
        .create_guest("sh-bund", guest_named("Li", "Zhang"))
        .await;
    let stay = app
        .upsert_stay(pb::Stay {
            status: pb::StayStatus::CheckedIn as i32,
            ..stay(&g.guest_id, "sh-bund", "BUND-1")
        })
        .await
        .stay
        .unwrap();
    app.upsert_stay(stay_fixture(&g2.guest_id, "BUND-2")).await;
    app.head_office()
        .set_consent(pb::SetConsentRequest {
            guest_id: g.guest_id.clone(),
            consent: Some(pb::Consent {
                channel: EMAIL,
                purpose: FOLLOW_UP,
                granted: true,
                source: "pms:check-in".into(),
                record_time: None,
            }),
        })
        .await
        .unwrap();
    let erased = app.create_guest("sh-bund", guest()).await;
    let erasure_id = app
        .head_office()
        .erase_guest(pb::EraseGuestRequest {
            guest_id: erased.guest_id.clone(),
            reason: "the guest asked".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .erasure
        .unwrap()
        .erasure_id;
    World {
        g,
        g2,
        stay,
        erased,
        erasure_id,
    }
}

fn stay_fixture(guest_id: &str, reservation: &str) -> pb::Stay {
    stay(guest_id, "sh-bund", reservation)
}

/// Everything a call could change or read, as stored.
#[derive(Debug, PartialEq)]
struct Snapshot {
    counts: Vec<(&'static str, i64)>,
    g: String,
    g2: String,
    stay: String,
    reads_of_g: usize,
    reads_of_g2: usize,
}

async fn snapshot(app: &TestApp, w: &World) -> Snapshot {
    let mut counts = Vec::new();
    for table in [
        "guests",
        "stays",
        "consents",
        "merges",
        "outbox",
        "guest_idempotency",
    ] {
        counts.push((table, app.count(table).await));
    }
    Snapshot {
        counts,
        g: app.guest_row(&w.g.guest_id).await,
        g2: app.guest_row(&w.g2.guest_id).await,
        stay: app.stay_row(&w.stay.stay_id).await,
        reads_of_g: app.access_log(&w.g.guest_id).await.len(),
        reads_of_g2: app.access_log(&w.g2.guest_id).await.len(),
    }
}

/// Every method of GuestProfileService, from the descriptor the server publishes.
/// The day before now, for the contact-read report.
fn last_day() -> Option<guestloop_proto::common::v1::TimeRange> {
    let now = chrono::Utc::now().timestamp();
    let ts = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
    Some(guestloop_proto::common::v1::TimeRange {
        start_time: ts(now - 86_400),
        end_time: ts(now + 60),
    })
}

fn all_rpcs() -> BTreeSet<String> {
    guestloop_testkit::grpc::rpc_names("guestloop.guestprofile.v1", "GuestProfileService")
}

type Probe<'a> = guestloop_testkit::grpc::AccessProbe<'a>;

fn ids(guests: &[pb::Guest]) -> BTreeSet<String> {
    guests.iter().map(|g| g.guest_id.clone()).collect()
}

const NF: &[Code] = &[Code::NotFound];
const DENIED: &[Code] = &[Code::PermissionDenied];
const NF_OR_DENIED: &[Code] = &[Code::NotFound, Code::PermissionDenied];

/// Calls every RPC as an outsider on sh-bund's guest and stay.
async fn probe_outsider(
    w: &World,
    who: &str,
    mut c: GuestProfileClient,
    own_property: &str,
    decoy: &pb::Guest,
) {
    let mut p = Probe {
        who,
        secrets: vec![
            email_of(&w.g),
            phone_of(&w.g),
            w.g.family_name.clone(),
            w.stay.room_number.clone(),
        ],
        called: BTreeSet::new(),
        check_answers: false,
    };
    let sh_bund: BTreeSet<String> = [w.g.guest_id.clone(), w.g2.guest_id.clone()].into();
    let (g, g2) = (w.g.guest_id.clone(), w.g2.guest_id.clone());

    // Guests.
    p.refused(
        "CreateGuest",
        c.create_guest(pb::CreateGuestRequest {
            guest: Some(guest()),
            property_id: "sh-bund".into(),
            idempotency_key: G_KEY.into(),
        })
        .await,
        DENIED,
    );
    for id in [&g, &g2] {
        p.refused(
            "GetGuest",
            c.get_guest(pb::GetGuestRequest {
                guest_id: id.clone(),
            })
            .await,
            NF,
        );
    }
    p.refused(
        "UpdateGuest",
        c.update_guest(pb::UpdateGuestRequest {
            guest: Some(pb::Guest {
                guest_id: g.clone(),
                notes: "owned".into(),
                ..Default::default()
            }),
            update_mask: mask(&["notes"]),
        })
        .await,
        NF,
    );
    let listed = p.answered(
        "ListGuests",
        c.list_guests(pb::ListGuestsRequest {
            property_id: String::new(),
            page: None,
        })
        .await,
    );
    assert!(
        ids(&listed.guests).is_disjoint(&sh_bund),
        "{who}: ListGuests"
    );
    assert!(
        ids(&listed.guests).contains(&decoy.guest_id),
        "{who}: ListGuests works"
    );
    let listed = p.answered(
        "ListGuests",
        c.list_guests(pb::ListGuestsRequest {
            property_id: "sh-bund".into(),
            page: None,
        })
        .await,
    );
    assert!(listed.guests.is_empty(), "{who}: ListGuests at sh-bund");
    for (criterion, req) in [
        (
            "email",
            pb::SearchGuestsRequest {
                email: email_of(&w.g),
                ..Default::default()
            },
        ),
        (
            "phone",
            pb::SearchGuestsRequest {
                phone: phone_of(&w.g),
                ..Default::default()
            },
        ),
        (
            "name",
            pb::SearchGuestsRequest {
                name: "wei zhang".into(),
                ..Default::default()
            },
        ),
        (
            "loyalty",
            pb::SearchGuestsRequest {
                loyalty_number: w.g.loyalty_number.clone(),
                ..Default::default()
            },
        ),
    ] {
        let found = ids(&p
            .answered("SearchGuests", c.search_guests(req).await)
            .guests);
        assert!(
            found.is_disjoint(&sh_bund),
            "{who}: SearchGuests by {criterion} finds sh-bund's guest"
        );
        assert!(
            found.contains(&decoy.guest_id),
            "{who}: SearchGuests by {criterion} misses their own guest"
        );
    }
    let found = p.answered(
        "SearchGuests",
        c.search_guests(pb::SearchGuestsRequest {
            name: "zhang".into(),
            property_id: "sh-bund".into(),
            ..Default::default()
        })
        .await,
    );
    assert!(found.guests.is_empty(), "{who}: SearchGuests at sh-bund");

    // Stays.
    p.refused(
        "UpsertStay",
        c.upsert_stay(pb::UpsertStayRequest {
            stay: Some(stay_fixture(&g, "INTRUDER-1")),
        })
        .await,
        DENIED,
    );
    p.refused(
        "UpsertStay",
        c.upsert_stay(pb::UpsertStayRequest {
            stay: Some(pb::Stay {
                status: pb::StayStatus::Cancelled as i32,
                ..stay_fixture(&g, "BUND-1")
            }),
        })
        .await,
        DENIED,
    );
    // A stay at their own property does not pull sh-bund's guest into their scope.
    p.refused(
        "UpsertStay",
        c.upsert_stay(pb::UpsertStayRequest {
            stay: Some(stay(&g, own_property, "INTRUDER-2")),
        })
        .await,
        NF,
    );
    p.refused(
        "GetStay",
        c.get_stay(pb::GetStayRequest {
            stay_id: w.stay.stay_id.clone(),
        })
        .await,
        NF,
    );
    p.refused(
        "ListStays",
        c.list_stays(pb::ListStaysRequest {
            guest_id: g.clone(),
            ..Default::default()
        })
        .await,
        NF,
    );
    let stays = p.answered(
        "ListStays",
        c.list_stays(pb::ListStaysRequest {
            property_id: "sh-bund".into(),
            ..Default::default()
        })
        .await,
    );
    assert!(stays.stays.is_empty(), "{who}: ListStays at sh-bund");

    // Completeness.
    p.refused(
        "GetGuestCompleteness",
        c.get_guest_completeness(pb::GetGuestCompletenessRequest {
            guest_id: g.clone(),
        })
        .await,
        NF,
    );
    p.refused(
        "GetPropertyCompleteness",
        c.get_property_completeness(pb::GetPropertyCompletenessRequest {
            property_id: "sh-bund".into(),
        })
        .await,
        NF,
    );

    // Duplicates and merge.
    p.refused(
        "FindDuplicates",
        c.find_duplicates(pb::FindDuplicatesRequest {
            guest_id: g.clone(),
        })
        .await,
        NF,
    );
    // Their own guest shares g's email, phone and name; g must not show up as a candidate.
    let candidates = p.answered(
        "FindDuplicates",
        c.find_duplicates(pb::FindDuplicatesRequest {
            guest_id: decoy.guest_id.clone(),
        })
        .await,
    );
    let candidate_ids: BTreeSet<String> = candidates
        .candidates
        .iter()
        .map(|c| c.guest.as_ref().unwrap().guest_id.clone())
        .collect();
    assert!(candidate_ids.is_disjoint(&sh_bund), "{who}: FindDuplicates");
    for (survivor, duplicate) in [(&g, &g2), (&decoy.guest_id, &g), (&g, &decoy.guest_id)] {
        p.refused(
            "MergeGuests",
            c.merge_guests(pb::MergeGuestsRequest {
                survivor_guest_id: survivor.clone(),
                duplicate_guest_id: duplicate.clone(),
                reason: "take over".into(),
            })
            .await,
            NF_OR_DENIED,
        );
    }

    // Privacy.
    p.refused(
        "SetConsent",
        c.set_consent(pb::SetConsentRequest {
            guest_id: g.clone(),
            consent: Some(pb::Consent {
                channel: EMAIL,
                purpose: ConsentPurpose::Marketing as i32,
                granted: true,
                source: "intruder".into(),
                record_time: None,
            }),
        })
        .await,
        NF,
    );
    p.refused(
        "ListConsents",
        c.list_consents(pb::ListConsentsRequest {
            guest_id: g.clone(),
        })
        .await,
        NF,
    );
    p.refused(
        "GetContactPermission",
        c.get_contact_permission(pb::GetContactPermissionRequest {
            guest_id: g.clone(),
            channel: EMAIL,
            purpose: FOLLOW_UP,
        })
        .await,
        NF,
    );
    p.refused(
        "ExportGuest",
        c.export_guest(pb::ExportGuestRequest {
            guest_id: g.clone(),
        })
        .await,
        NF,
    );
    p.refused(
        "EraseGuest",
        c.erase_guest(pb::EraseGuestRequest {
            guest_id: g.clone(),
            reason: "intruder".into(),
        })
        .await,
        NF_OR_DENIED,
    );
    p.refused(
        "ListAccessLog",
        c.list_access_log(pb::ListAccessLogRequest {
            guest_id: g.clone(),
            page: None,
        })
        .await,
        NF_OR_DENIED,
    );
    p.refused(
        "GetErasure",
        c.get_erasure(pb::GetErasureRequest {
            erasure_id: w.erasure_id.clone(),
        })
        .await,
        NF_OR_DENIED,
    );
    p.refused(
        "ListContactReads",
        c.list_contact_reads(pb::ListContactReadsRequest {
            property_id: "sh-bund".into(),
            time_range: last_day(),
        })
        .await,
        NF_OR_DENIED,
    );
    p.refused(
        "ListErasures",
        c.list_erasures(pb::ListErasuresRequest::default()).await,
        DENIED,
    );

    assert_eq!(
        p.called.iter().cloned().collect::<BTreeSet<_>>(),
        all_rpcs(),
        "{who}: the matrix must call every RPC"
    );
}

#[tokio::test]
async fn outsiders_can_neither_read_nor_change_another_propertys_guests() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    // Each outsider has a guest of their own that looks exactly like g.
    let mut decoys = std::collections::HashMap::new();
    for property in ["hz-lake", "hk-harbour", "sz-bay"] {
        let decoy = app
            .create_guest(
                property,
                pb::Guest {
                    guest_id: String::new(),
                    ..w.g.clone()
                },
            )
            .await;
        decoys.insert(property, decoy);
    }
    let outsiders = [
        (
            "staff of hz-lake (same region)",
            keys().staff("hz-lake"),
            "hz-lake",
        ),
        (
            "manager of hz-lake (same region)",
            manager("hz-lake"),
            "hz-lake",
        ),
        (
            "staff of hk-harbour (other region)",
            keys().staff("hk-harbour"),
            "hk-harbour",
        ),
        (
            "regional manager of south",
            keys().regional("south"),
            "sz-bay",
        ),
    ];
    let before = snapshot(&app, &w).await;
    for (who, token, own) in &outsiders {
        probe_outsider(&w, who, app.client(token), own, &decoys[own]).await;
        assert_eq!(
            snapshot(&app, &w).await,
            before,
            "{who}: the database shows no read and no change"
        );
    }
}

#[tokio::test]
async fn insiders_see_the_guest_and_its_stay() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let insiders = [
        ("head office", keys().head_office()),
        ("regional manager of east", keys().regional("east")),
        ("staff of sh-bund", keys().staff("sh-bund")),
        ("manager of sh-bund", manager("sh-bund")),
        (
            "staff of two properties",
            keys().token(Role::PropertyStaff, &["hz-lake", "sh-bund"], None),
        ),
    ];
    for (who, token) in insiders {
        let mut c = app.client(&token);
        let got = c
            .get_guest(pb::GetGuestRequest {
                guest_id: w.g.guest_id.clone(),
            })
            .await
            .unwrap_or_else(|s| panic!("{who}: {s:?}"))
            .into_inner()
            .guest
            .unwrap();
        assert_eq!(email_of(&got), email_of(&w.g), "{who}");
        let found = c
            .search_guests(pb::SearchGuestsRequest {
                email: email_of(&w.g),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .guests;
        assert_eq!(ids(&found), [w.g.guest_id.clone()].into(), "{who}");
        let listed = c
            .list_guests(pb::ListGuestsRequest {
                property_id: "sh-bund".into(),
                page: None,
            })
            .await
            .unwrap()
            .into_inner()
            .guests;
        assert_eq!(
            ids(&listed),
            [
                w.g.guest_id.clone(),
                w.g2.guest_id.clone(),
                w.erased.guest_id.clone()
            ]
            .into(),
            "{who}"
        );
        let s = c
            .get_stay(pb::GetStayRequest {
                stay_id: w.stay.stay_id.clone(),
            })
            .await
            .unwrap_or_else(|s| panic!("{who}: {s:?}"))
            .into_inner()
            .stay
            .unwrap();
        assert_eq!(s, w.stay, "{who}");
        let stays = c
            .list_stays(pb::ListStaysRequest {
                property_id: "sh-bund".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .stays;
        assert_eq!(stays.len(), 2, "{who}");
        let completeness = c
            .get_property_completeness(pb::GetPropertyCompletenessRequest {
                property_id: "sh-bund".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(completeness.guests, 2, "{who}");
        let permission = c
            .get_contact_permission(pb::GetContactPermissionRequest {
                guest_id: w.g.guest_id.clone(),
                channel: EMAIL,
                purpose: FOLLOW_UP,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(permission.allowed, "{who}");
        let export = c
            .export_guest(pb::ExportGuestRequest {
                guest_id: w.g.guest_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(export.stays, vec![w.stay.clone()], "{who}");
    }
}

#[tokio::test]
async fn a_stay_at_a_second_property_shares_the_guest_but_not_the_first_propertys_stays() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let hz_stay = app
        .upsert_stay(stay(&w.g.guest_id, "hz-lake", "HZ-1"))
        .await
        .stay
        .unwrap();
    let mut hz = app.client(&keys().staff("hz-lake"));

    // hz-lake now sees the guest...
    let got = hz
        .get_guest(pb::GetGuestRequest {
            guest_id: w.g.guest_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.guest.unwrap().guest_id, w.g.guest_id);
    let found = hz
        .search_guests(pb::SearchGuestsRequest {
            email: email_of(&w.g),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .guests;
    assert_eq!(ids(&found), [w.g.guest_id.clone()].into());

    // ...and its own stay, but not sh-bund's.
    let stays = hz
        .list_stays(pb::ListStaysRequest {
            guest_id: w.g.guest_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .stays;
    assert_eq!(stays, vec![hz_stay.clone()]);
    assert_code(
        hz.get_stay(pb::GetStayRequest {
            stay_id: w.stay.stay_id.clone(),
        })
        .await,
        Code::NotFound,
    );
    let export = hz
        .export_guest(pb::ExportGuestRequest {
            guest_id: w.g.guest_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(export.stays, vec![hz_stay.clone()]);
    // g2 is still sh-bund's only.
    assert_code(
        hz.get_guest(pb::GetGuestRequest {
            guest_id: w.g2.guest_id.clone(),
        })
        .await,
        Code::NotFound,
    );
    // Head office's export is complete.
    let export = app
        .head_office()
        .export_guest(pb::ExportGuestRequest {
            guest_id: w.g.guest_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(export.stays.len(), 2);
}

/// Calls every RPC once with harmless arguments; returns each RPC's name and outcome.
async fn call_every_rpc(c: &mut GuestProfileClient, id: &str) -> Vec<(&'static str, Code)> {
    fn code<T>(r: Result<T, Status>) -> Code {
        r.map(|_| Code::Ok).unwrap_or_else(|s| s.code())
    }
    let guest_id = || id.to_string();
    vec![
        (
            "CreateGuest",
            code(
                c.create_guest(pb::CreateGuestRequest {
                    guest: Some(guest()),
                    property_id: "sh-bund".into(),
                    idempotency_key: String::new(),
                })
                .await,
            ),
        ),
        (
            "GetGuest",
            code(
                c.get_guest(pb::GetGuestRequest {
                    guest_id: guest_id(),
                })
                .await,
            ),
        ),
        (
            "UpdateGuest",
            code(
                c.update_guest(pb::UpdateGuestRequest {
                    guest: Some(pb::Guest {
                        guest_id: guest_id(),
                        notes: "x".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["notes"]),
                })
                .await,
            ),
        ),
        (
            "ListGuests",
            code(c.list_guests(pb::ListGuestsRequest::default()).await),
        ),
        (
            "SearchGuests",
            code(
                c.search_guests(pb::SearchGuestsRequest {
                    name: "wei".into(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "UpsertStay",
            code(
                c.upsert_stay(pb::UpsertStayRequest {
                    stay: Some(stay(id, "sh-bund", "U-1")),
                })
                .await,
            ),
        ),
        (
            "GetStay",
            code(
                c.get_stay(pb::GetStayRequest {
                    stay_id: guest_id(),
                })
                .await,
            ),
        ),
        (
            "ListStays",
            code(
                c.list_stays(pb::ListStaysRequest {
                    guest_id: guest_id(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "GetGuestCompleteness",
            code(
                c.get_guest_completeness(pb::GetGuestCompletenessRequest {
                    guest_id: guest_id(),
                })
                .await,
            ),
        ),
        (
            "GetPropertyCompleteness",
            code(
                c.get_property_completeness(pb::GetPropertyCompletenessRequest {
                    property_id: "sh-bund".into(),
                })
                .await,
            ),
        ),
        (
            "FindDuplicates",
            code(
                c.find_duplicates(pb::FindDuplicatesRequest {
                    guest_id: guest_id(),
                })
                .await,
            ),
        ),
        (
            "MergeGuests",
            code(
                c.merge_guests(pb::MergeGuestsRequest {
                    survivor_guest_id: guest_id(),
                    duplicate_guest_id: uuid::Uuid::now_v7().to_string(),
                    reason: "x".into(),
                })
                .await,
            ),
        ),
        (
            "SetConsent",
            code(
                c.set_consent(pb::SetConsentRequest {
                    guest_id: guest_id(),
                    consent: Some(pb::Consent {
                        channel: EMAIL,
                        purpose: FOLLOW_UP,
                        granted: true,
                        source: "x".into(),
                        record_time: None,
                    }),
                })
                .await,
            ),
        ),
        (
            "ListConsents",
            code(
                c.list_consents(pb::ListConsentsRequest {
                    guest_id: guest_id(),
                })
                .await,
            ),
        ),
        (
            "GetContactPermission",
            code(
                c.get_contact_permission(pb::GetContactPermissionRequest {
                    guest_id: guest_id(),
                    channel: EMAIL,
                    purpose: FOLLOW_UP,
                })
                .await,
            ),
        ),
        (
            "ExportGuest",
            code(
                c.export_guest(pb::ExportGuestRequest {
                    guest_id: guest_id(),
                })
                .await,
            ),
        ),
        (
            "EraseGuest",
            code(
                c.erase_guest(pb::EraseGuestRequest {
                    guest_id: guest_id(),
                    reason: "x".into(),
                })
                .await,
            ),
        ),
        (
            "ListAccessLog",
            code(
                c.list_access_log(pb::ListAccessLogRequest {
                    guest_id: guest_id(),
                    page: None,
                })
                .await,
            ),
        ),
        (
            "GetErasure",
            code(
                c.get_erasure(pb::GetErasureRequest {
                    erasure_id: uuid::Uuid::now_v7().to_string(),
                })
                .await,
            ),
        ),
        (
            "ListErasures",
            code(c.list_erasures(pb::ListErasuresRequest::default()).await),
        ),
        (
            "ListContactReads",
            code(
                c.list_contact_reads(pb::ListContactReadsRequest {
                    property_id: "sh-bund".into(),
                    time_range: last_day(),
                })
                .await,
            ),
        ),
    ]
}

fn claims(role: Role, properties: &[&str]) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: "guestloop".into(),
        aud: guestloop_auth::DEFAULT_AUDIENCE.into(),
        sub: "someone".into(),
        iat: now,
        nbf: None,
        exp: now + 600,
        jti: uuid::Uuid::new_v4().to_string(),
        role,
        properties: properties.iter().map(|p| p.to_string()).collect(),
        region: None,
    }
}

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let before = snapshot_counts(&app).await;
    let now = chrono::Utc::now().timestamp();
    let signer = keys().signer();
    let (other_private, _) = guestloop_auth::generate_key_pair_pem();
    let other_signer = TokenSigner::new(SigningKey::from_pem(&other_private).unwrap(), "guestloop");

    let tokens: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("garbage", Some("garbage".into())),
        ("three garbage parts", Some("a.b.c".into())),
        (
            "expired",
            Some(signer.sign(&Claims {
                iat: now - 7200,
                exp: now - 3600,
                ..claims(Role::HeadOffice, &[])
            })),
        ),
        (
            "not yet valid",
            Some(signer.sign(&Claims {
                iat: now + 3600,
                exp: now + 7200,
                ..claims(Role::HeadOffice, &[])
            })),
        ),
        (
            "signed with another key",
            Some(
                other_signer
                    .issue(
                        "x",
                        Role::HeadOffice,
                        vec![],
                        None,
                        std::time::Duration::from_secs(600),
                    )
                    .unwrap(),
            ),
        ),
        (
            "another audience",
            Some(signer.sign(&Claims {
                aud: "another-api".into(),
                ..claims(Role::HeadOffice, &[])
            })),
        ),
        (
            "another issuer",
            Some(signer.sign(&Claims {
                iss: "someone-else".into(),
                ..claims(Role::HeadOffice, &[])
            })),
        ),
        (
            "head office claiming a property scope",
            Some(signer.sign(&claims(Role::HeadOffice, &["sh-bund"]))),
        ),
        (
            "staff without a property",
            Some(signer.sign(&claims(Role::PropertyStaff, &[]))),
        ),
        (
            "tampered payload",
            Some({
                let good = keys().staff("sh-bund");
                let forged = signer.sign(&claims(Role::HeadOffice, &[]));
                let good: Vec<&str> = good.split('.').collect();
                let forged: Vec<&str> = forged.split('.').collect();
                format!("{}.{}.{}", good[0], forged[1], good[2])
            }),
        ),
    ];
    for (case, token) in tokens {
        let mut c = match &token {
            Some(t) => app.client(t),
            None => app.anonymous_client(),
        };
        let outcomes = call_every_rpc(&mut c, &g.guest_id).await;
        assert_eq!(
            outcomes
                .iter()
                .map(|(n, _)| n.to_string())
                .collect::<BTreeSet<_>>(),
            all_rpcs()
        );
        for (rpc, code) in outcomes {
            assert_eq!(code, Code::Unauthenticated, "{case}: {rpc}");
        }
    }

    // Not a bearer token at all.
    let mut c = app.anonymous_client();
    let mut request = tonic::Request::new(pb::GetGuestRequest {
        guest_id: g.guest_id.clone(),
    });
    request
        .metadata_mut()
        .insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    assert_code(c.get_guest(request).await, Code::Unauthenticated);

    assert_eq!(snapshot_counts(&app).await, before);
    assert!(app.access_log(&g.guest_id).await.is_empty());

    // The same calls with a valid token do get through (the probe is not vacuous).
    let mut c = app.head_office();
    let outcomes = call_every_rpc(&mut c, &g.guest_id).await;
    assert!(
        outcomes
            .iter()
            // Ids made up for the probe: the answer is NOT_FOUND, past authentication.
            .filter(|(rpc, _)| !["GetStay", "MergeGuests", "GetErasure"].contains(rpc))
            .all(|(_, code)| *code == Code::Ok),
        "{outcomes:?}"
    );
}

async fn snapshot_counts(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "guests",
        "stays",
        "consents",
        "merges",
        "outbox",
        "access_log",
    ] {
        counts.push(app.count(table).await);
    }
    counts
}

#[tokio::test]
async fn health_answers_without_a_token() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let app = TestApp::spawn().await;
    // A bare channel: no token, no interceptor.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    // The server reports SERVING once its first database probe succeeds.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    for service in ["", "guestloop.guestprofile.v1.GuestProfileService"] {
        loop {
            let status = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner()
                .status;
            if status == ServingStatus::Serving as i32 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "`{service}` never became SERVING"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let liveness = health
        .check(HealthCheckRequest {
            service: "guestloop.liveness".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(liveness.status, ServingStatus::Serving as i32);
    assert_code(
        health
            .check(HealthCheckRequest {
                service: "no.such.Service".into(),
            })
            .await,
        Code::NotFound,
    );
}
