//! Duplicates and merge: likely duplicates by email, phone and similar name; a merge moves
//! stays and consent, keeps an audit record, and the merged-away id resolves to the
//! survivor.

mod common;

use common::*;
use guestloop_proto::common::v1 as c;
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::guestprofile::v1 as pb;
use tonic::Code;

fn contacts(email: &str, phone: &str) -> Option<pb::Contacts> {
    Some(pb::Contacts {
        email: email.into(),
        phone: phone.into(),
        wechat_id: String::new(),
    })
}

#[tokio::test]
async fn find_duplicates_by_email_phone_and_similar_name() {
    let app = TestApp::spawn().await;
    let wei = app
        .create_guest(
            "sh-bund",
            pb::Guest {
                contacts: contacts("wei.zhang@example.com", "+8613800138000"),
                ..guest_named("Wei", "Zhang")
            },
        )
        .await;
    let same_email = app
        .create_guest(
            "hz-lake",
            pb::Guest {
                contacts: contacts("WEI.ZHANG@example.com", "+8613911112222"),
                ..guest_named("Vivian", "Wu")
            },
        )
        .await;
    let same_phone = app
        .create_guest(
            "sh-bund",
            pb::Guest {
                contacts: contacts("other@example.com", "+86 138 0013 8000"),
                ..guest_named("Hong", "Liu")
            },
        )
        .await;
    let similar_name = app
        .create_guest(
            "sh-bund",
            pb::Guest {
                contacts: contacts("wz@example.org", "+8613722223333"),
                ..guest_named("Wey", "Zhang")
            },
        )
        .await;
    let both = app
        .create_guest(
            "sh-bund",
            pb::Guest {
                contacts: contacts("wei.zhang@example.com", "+8613800138000"),
                ..guest_named("W.", "Zhang")
            },
        )
        .await;
    // Not duplicates: same family name but another person; entirely unrelated.
    app.create_guest(
        "sh-bund",
        pb::Guest {
            contacts: contacts("xiuying@example.com", "+8613600001111"),
            ..guest_named("Xiuying", "Zhang")
        },
    )
    .await;
    app.create_guest(
        "sh-bund",
        pb::Guest {
            contacts: contacts("maria@example.com", "+34600111222"),
            ..guest_named("Maria", "Garcia")
        },
    )
    .await;

    let found = app
        .head_office()
        .find_duplicates(pb::FindDuplicatesRequest {
            guest_id: wei.guest_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .candidates;
    let by_id = |id: &str| {
        found
            .iter()
            .find(|c| c.guest.as_ref().unwrap().guest_id == id)
            .unwrap_or_else(|| panic!("{id} not among {found:?}"))
    };
    assert_eq!(found.len(), 4, "{found:#?}");
    assert_eq!(by_id(&same_email.guest_id).reasons, vec!["email"]);
    assert_eq!(by_id(&same_phone.guest_id).reasons, vec!["phone"]);
    assert_eq!(by_id(&similar_name.guest_id).reasons, vec!["name"]);
    let b = by_id(&both.guest_id);
    assert_eq!(b.reasons, vec!["email", "phone"]);
    // Best first; exact contact matches outrank a similar name.
    assert_eq!(found[0].guest.as_ref().unwrap().guest_id, both.guest_id);
    assert!(b.score <= 1.0);
    assert!(by_id(&same_email.guest_id).score > by_id(&similar_name.guest_id).score);
    assert!(found.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(
        found
            .iter()
            .all(|c| c.guest.as_ref().unwrap().guest_id != wei.guest_id)
    );
}

struct Pair {
    survivor: pb::Guest,
    duplicate: pb::Guest,
    duplicate_stay: String,
}

/// Two profiles of one person at sh-bund; the duplicate has a stay, consent and a birthday
/// the survivor lacks.
async fn pair(app: &TestApp) -> Pair {
    let survivor = app
        .create_guest(
            "sh-bund",
            pb::Guest {
                birthday: None,
                contacts: contacts("wei.zhang@example.com", ""),
                ..guest_named("Wei", "Zhang")
            },
        )
        .await;
    let duplicate = app
        .create_guest(
            "sh-bund",
            pb::Guest {
                given_name: "Wei".into(),
                family_name: "Zhang".into(),
                contacts: contacts("wei.zhang@example.com", "+8613800138000"),
                birthday: Some(date(1986, 5, 17)),
                ..Default::default()
            },
        )
        .await;
    let duplicate_stay = app
        .upsert_stay(stay(&duplicate.guest_id, "sh-bund", "M-1"))
        .await
        .stay
        .unwrap()
        .stay_id;
    app.head_office()
        .set_consent(pb::SetConsentRequest {
            guest_id: duplicate.guest_id.clone(),
            consent: Some(pb::Consent {
                channel: c::ContactChannel::Sms as i32,
                purpose: c::ConsentPurpose::ServiceFollowUp as i32,
                granted: true,
                source: "pms:check-in".into(),
                record_time: None,
            }),
        })
        .await
        .unwrap();
    Pair {
        survivor,
        duplicate,
        duplicate_stay,
    }
}

#[tokio::test]
async fn merge_moves_stays_and_consent_and_keeps_an_audit_record() {
    let app = TestApp::spawn().await;
    let p = pair(&app).await;
    let token = token_as(
        "mgr-li",
        guestloop_auth::Role::PropertyManager,
        &["sh-bund"],
        None,
    );
    let mut client = app.client(&token);

    let merged = client
        .merge_guests(pb::MergeGuestsRequest {
            survivor_guest_id: p.survivor.guest_id.clone(),
            duplicate_guest_id: p.duplicate.guest_id.clone(),
            reason: "same email and name, confirmed at the desk".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let survivor = merged.survivor.unwrap();
    let record = merged.record.unwrap();
    assert_eq!(survivor.guest_id, p.survivor.guest_id);
    // The survivor keeps its values and takes the duplicate's where it had none.
    assert_eq!(email_of(&survivor), "wei.zhang@example.com");
    assert_eq!(phone_of(&survivor), "+8613800138000");
    assert_eq!(survivor.birthday, Some(date(1986, 5, 17)));
    assert_eq!(survivor.tier, p.survivor.tier);
    assert_eq!(survivor.completeness_score, 100);
    assert_eq!(record.survivor_guest_id, p.survivor.guest_id);
    assert_eq!(record.duplicate_guest_id, p.duplicate.guest_id);
    assert_eq!(record.reason, "same email and name, confirmed at the desk");
    assert_eq!(record.merged_by, "mgr-li");
    assert!(record.merge_time.is_some());
    assert_eq!(app.count("merges").await, 1);

    // The stay moved.
    let s = client
        .get_stay(pb::GetStayRequest {
            stay_id: p.duplicate_stay.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stay
        .unwrap();
    assert_eq!(s.guest_id, p.survivor.guest_id);
    let stays = client
        .list_stays(pb::ListStaysRequest {
            guest_id: p.survivor.guest_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .stays;
    assert_eq!(stays.len(), 1);
    // Asking for the duplicate's stays gives the survivor's.
    let via_duplicate = client
        .list_stays(pb::ListStaysRequest {
            guest_id: p.duplicate.guest_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .stays;
    assert_eq!(via_duplicate, stays);

    // The consent came along.
    let consents = client
        .list_consents(pb::ListConsentsRequest {
            guest_id: p.survivor.guest_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .consents;
    assert_eq!(consents.len(), 1);
    assert_eq!(consents[0].channel, c::ContactChannel::Sms as i32);

    // The merged-away id resolves to the survivor.
    let got = client
        .get_guest(pb::GetGuestRequest {
            guest_id: p.duplicate.guest_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.guest.unwrap().guest_id, p.survivor.guest_id);
    assert_eq!(got.merged_from_guest_id, p.duplicate.guest_id);

    // The duplicate no longer shows up as a guest of its own.
    let found = client
        .search_guests(pb::SearchGuestsRequest {
            email: "wei.zhang@example.com".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .guests;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].guest_id, p.survivor.guest_id);
    let dups = client
        .find_duplicates(pb::FindDuplicatesRequest {
            guest_id: p.survivor.guest_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .candidates;
    assert!(dups.is_empty(), "{dups:?}");

    // The export of the survivor carries the merge record.
    let export = client
        .export_guest(pb::ExportGuestRequest {
            guest_id: p.survivor.guest_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(export.merges, vec![record.clone()]);

    // Other services hear of it.
    let events = app.events("guest", &p.survivor.guest_id).await;
    let merged_events: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::GuestMerged(m)) => Some(m.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(merged_events.len(), 1);
    assert_eq!(merged_events[0].duplicate_guest_id, p.duplicate.guest_id);

    // A stay pushed later for the old id lands on the survivor.
    let later = app
        .upsert_stay(stay(&p.duplicate.guest_id, "sh-bund", "M-2"))
        .await
        .stay
        .unwrap();
    assert_eq!(later.guest_id, p.survivor.guest_id);

    // Merging the two again is refused: they are one guest now.
    assert_code(
        client
            .merge_guests(pb::MergeGuestsRequest {
                survivor_guest_id: p.survivor.guest_id.clone(),
                duplicate_guest_id: p.duplicate.guest_id.clone(),
                reason: "again".into(),
            })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(app.count("merges").await, 1);
}

#[tokio::test]
async fn property_staff_may_not_merge() {
    let app = TestApp::spawn().await;
    let p = pair(&app).await;
    let before = (
        app.guest_row(&p.survivor.guest_id).await,
        app.guest_row(&p.duplicate.guest_id).await,
        app.stay_row(&p.duplicate_stay).await,
    );
    let status = assert_code(
        app.client(&guestloop_testkit::keys().staff("sh-bund"))
            .merge_guests(pb::MergeGuestsRequest {
                survivor_guest_id: p.survivor.guest_id.clone(),
                duplicate_guest_id: p.duplicate.guest_id.clone(),
                reason: "looks the same".into(),
            })
            .await,
        Code::PermissionDenied,
    );
    assert!(!status.message().contains("wei.zhang"));
    let after = (
        app.guest_row(&p.survivor.guest_id).await,
        app.guest_row(&p.duplicate.guest_id).await,
        app.stay_row(&p.duplicate_stay).await,
    );
    assert_eq!(before, after);
    assert_eq!(app.count("merges").await, 0);
    assert_eq!(app.count("consents").await, 1);
}

#[tokio::test]
async fn merging_merged_away_ids_merges_their_survivors() {
    let app = TestApp::spawn().await;
    let a = app.create_guest("sh-bund", guest_named("Ana", "Lee")).await;
    let b = app.create_guest("sh-bund", guest_named("Ana", "Lee")).await;
    let c = app.create_guest("sh-bund", guest_named("Ana", "Li")).await;
    let d = app.create_guest("sh-bund", guest_named("Ana", "Li")).await;
    let mut client = app.client(&manager("sh-bund"));
    let merge = |survivor: &str, duplicate: &str| pb::MergeGuestsRequest {
        survivor_guest_id: survivor.into(),
        duplicate_guest_id: duplicate.into(),
        reason: "same person".into(),
    };
    client
        .merge_guests(merge(&a.guest_id, &b.guest_id))
        .await
        .unwrap();
    client
        .merge_guests(merge(&c.guest_id, &d.guest_id))
        .await
        .unwrap();

    // b now means a, and d means c: survivor b → a survives, d → c is merged into it.
    let r = client
        .merge_guests(merge(&b.guest_id, &d.guest_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.survivor.unwrap().guest_id, a.guest_id);
    let record = r.record.unwrap();
    assert_eq!(record.survivor_guest_id, a.guest_id);
    assert_eq!(record.duplicate_guest_id, c.guest_id);
    // Every old id resolves to a.
    for id in [&b.guest_id, &c.guest_id, &d.guest_id] {
        let got = client
            .get_guest(pb::GetGuestRequest {
                guest_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.guest.unwrap().guest_id, a.guest_id);
        assert_eq!(&got.merged_from_guest_id, id);
    }
}

#[tokio::test]
async fn merge_needs_both_guests_in_scope() {
    let app = TestApp::spawn().await;
    let mine = app.create_guest("hz-lake", guest()).await;
    let theirs = app.create_guest("hk-harbour", guest()).await;
    let before = app.guest_row(&theirs.guest_id).await;
    let mut client = app.client(&manager("hz-lake"));
    for (s, d) in [
        (&mine.guest_id, &theirs.guest_id),
        (&theirs.guest_id, &mine.guest_id),
    ] {
        assert_code(
            client
                .merge_guests(pb::MergeGuestsRequest {
                    survivor_guest_id: s.clone(),
                    duplicate_guest_id: d.clone(),
                    reason: "grab".into(),
                })
                .await,
            Code::NotFound,
        );
    }
    assert_eq!(app.guest_row(&theirs.guest_id).await, before);
    assert_eq!(app.count("merges").await, 0);
}
