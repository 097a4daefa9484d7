//! Guests: create, get, update with a field mask, idempotent create, list and search with
//! paging.

mod common;

use common::*;
use guestloop_proto::guestprofile::v1 as pb;
use std::collections::HashSet;

#[tokio::test]
async fn create_then_get_returns_every_field() {
    let app = TestApp::spawn().await;
    let input = guest();
    let created = app.create_guest("sh-bund", input.clone()).await;

    assert!(uuid::Uuid::parse_str(&created.guest_id).is_ok());
    assert_eq!(created.home_property_id, "sh-bund");
    assert_eq!(created.completeness_score, 100);
    assert!(!created.erased);
    assert!(created.create_time.is_some() && created.update_time.is_some());

    let got = app
        .head_office()
        .get_guest(pb::GetGuestRequest {
            guest_id: created.guest_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.merged_from_guest_id, "");
    let got = got.guest.unwrap();
    assert_eq!(got, created);
    // Everything the caller sent comes back as sent.
    let expected = pb::Guest {
        guest_id: created.guest_id.clone(),
        completeness_score: 100,
        create_time: created.create_time,
        update_time: created.update_time,
        home_property_id: "sh-bund".into(),
        ..input
    };
    assert_eq!(got, expected);
}

#[tokio::test]
async fn create_fills_language_from_the_property_and_normalises_contacts() {
    let app = TestApp::spawn().await;
    let g = app
        .create_guest(
            "hk-harbour",
            pb::Guest {
                language: String::new(),
                contacts: Some(pb::Contacts {
                    email: "  Mei.Chan@Example.HK ".into(),
                    phone: "+852 9123-4567".into(),
                    wechat_id: String::new(),
                }),
                ..guest_named("Mei", "Chan")
            },
        )
        .await;
    assert_eq!(g.language, "zh-TW");
    let c = g.contacts.unwrap();
    assert_eq!(c.email, "Mei.Chan@example.hk");
    assert_eq!(c.phone, "+85291234567");
}

#[tokio::test]
async fn update_changes_only_the_masked_fields() {
    let app = TestApp::spawn().await;
    let original = app.create_guest("sh-bund", guest()).await;
    let mut client = app.head_office();

    // The request carries new values for many fields, but the mask names only three.
    let incoming = pb::Guest {
        guest_id: original.guest_id.clone(),
        given_name: "Wendy".into(),
        family_name: "Other".into(),
        contacts: Some(pb::Contacts {
            email: "wendy.new@example.com".into(),
            phone: "+8613900000000".into(),
            wechat_id: String::new(),
        }),
        notes: String::new(),
        tier: pb::Tier::Potential as i32,
        preferences: Some(pb::Preferences {
            pillow: "firm".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let updated = client
        .update_guest(pb::UpdateGuestRequest {
            guest: Some(incoming),
            update_mask: mask(&["given_name", "contacts.email", "notes"]),
        })
        .await
        .unwrap()
        .into_inner()
        .guest
        .unwrap();

    assert_eq!(updated.given_name, "Wendy");
    assert_eq!(
        updated.contacts.as_ref().unwrap().email,
        "wendy.new@example.com"
    );
    // A masked field sent empty is cleared.
    assert_eq!(updated.notes, "");
    // Everything else is as it was.
    assert_eq!(updated.family_name, original.family_name);
    assert_eq!(phone_of(&updated), phone_of(&original));
    assert_eq!(
        updated.contacts.as_ref().unwrap().wechat_id,
        original.contacts.as_ref().unwrap().wechat_id
    );
    assert_eq!(updated.tier, original.tier);
    assert_eq!(updated.preferences, original.preferences);
    assert_eq!(updated.special_needs, original.special_needs);
    assert_eq!(updated.birthday, original.birthday);

    // And it is stored that way.
    let stored = client
        .get_guest(pb::GetGuestRequest {
            guest_id: original.guest_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .guest
        .unwrap();
    assert_eq!(stored, updated);

    // A sub-field path of a message leaves its siblings alone.
    let updated = client
        .update_guest(pb::UpdateGuestRequest {
            guest: Some(pb::Guest {
                guest_id: original.guest_id.clone(),
                preferences: Some(pb::Preferences {
                    pillow: "firm".into(),
                    room_type: "twin".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: mask(&["preferences.pillow"]),
        })
        .await
        .unwrap()
        .into_inner()
        .guest
        .unwrap();
    let prefs = updated.preferences.unwrap();
    assert_eq!(prefs.pillow, "firm");
    assert_eq!(prefs.room_type, "king");
    assert_eq!(prefs.dietary, vec!["vegetarian".to_string()]);
}

#[tokio::test]
async fn update_with_an_unknown_path_names_it_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let original = app.create_guest("sh-bund", guest()).await;
    let before = app.guest_row(&original.guest_id).await;
    let mut client = app.head_office();

    let status = assert_invalid(
        client
            .update_guest(pb::UpdateGuestRequest {
                guest: Some(pb::Guest {
                    guest_id: original.guest_id.clone(),
                    given_name: "Changed".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["given_name", "shoe_size"]),
            })
            .await,
        "update_mask.paths[1]",
    );
    assert_eq!(violated_fields(&status), vec!["update_mask.paths[1]"]);

    // Output-only fields are not updatable either.
    for path in [
        "completeness_score",
        "guest_id",
        "erased",
        "home_property_id",
    ] {
        assert_invalid(
            client
                .update_guest(pb::UpdateGuestRequest {
                    guest: Some(pb::Guest {
                        guest_id: original.guest_id.clone(),
                        ..Default::default()
                    }),
                    update_mask: mask(&[path]),
                })
                .await,
            "update_mask.paths[0]",
        );
    }

    // An empty mask is refused rather than treated as "everything".
    assert_invalid(
        client
            .update_guest(pb::UpdateGuestRequest {
                guest: Some(pb::Guest {
                    guest_id: original.guest_id.clone(),
                    ..Default::default()
                }),
                update_mask: None,
            })
            .await,
        "update_mask",
    );
    assert_eq!(app.guest_row(&original.guest_id).await, before);
}

#[tokio::test]
async fn update_of_a_missing_guest_is_not_found() {
    let app = TestApp::spawn().await;
    let status = assert_code(
        app.head_office()
            .update_guest(pb::UpdateGuestRequest {
                guest: Some(pb::Guest {
                    guest_id: uuid::Uuid::now_v7().to_string(),
                    given_name: "X".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["given_name"]),
            })
            .await,
        tonic::Code::NotFound,
    );
    assert!(status.message().contains("guest"));
}

#[tokio::test]
async fn idempotency_key_replay_returns_the_first_guest() {
    let app = TestApp::spawn().await;
    let mut client = app.client(&guestloop_testkit::keys().staff("sh-bund"));
    let request = |g: pb::Guest, key: &str| pb::CreateGuestRequest {
        guest: Some(g),
        property_id: "sh-bund".into(),
        idempotency_key: key.into(),
    };

    let first = client
        .create_guest(request(guest(), "pms-profile-881"))
        .await
        .unwrap()
        .into_inner();
    assert!(first.created);
    let first_guest = first.guest.unwrap();

    // A retry (even with a different body) answers with the first guest.
    let replay = client
        .create_guest(request(guest_named("Someone", "Else"), "pms-profile-881"))
        .await
        .unwrap()
        .into_inner();
    assert!(!replay.created);
    assert_eq!(replay.guest.unwrap(), first_guest);
    assert_eq!(app.count("guests").await, 1);

    // Another key is another guest.
    let other = client
        .create_guest(request(guest(), "pms-profile-882"))
        .await
        .unwrap()
        .into_inner();
    assert!(other.created);
    assert_ne!(other.guest.unwrap().guest_id, first_guest.guest_id);

    // The same key at another property is that property's own key.
    let elsewhere = app
        .head_office()
        .create_guest(pb::CreateGuestRequest {
            guest: Some(guest()),
            property_id: "hz-lake".into(),
            idempotency_key: "pms-profile-881".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(elsewhere.created);
    assert_eq!(app.count("guests").await, 3);
}

#[tokio::test]
async fn concurrent_creates_with_one_key_make_one_guest() {
    let app = TestApp::spawn().await;
    let client = app.client(&guestloop_testkit::keys().staff("sh-bund"));
    let calls = (0..6).map(|_| {
        let mut c = client.clone();
        tokio::spawn(async move {
            c.create_guest(pb::CreateGuestRequest {
                guest: Some(guest()),
                property_id: "sh-bund".into(),
                idempotency_key: "race-1".into(),
            })
            .await
            .map(|r| r.into_inner())
        })
    });
    let mut ids = HashSet::new();
    let mut created = 0;
    for call in calls.collect::<Vec<_>>() {
        let r = call.await.unwrap().expect("every call succeeds");
        created += usize::from(r.created);
        ids.insert(r.guest.unwrap().guest_id);
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
    assert_eq!(app.count("guests").await, 1);
}

#[tokio::test]
async fn search_by_email_phone_name_loyalty_and_property() {
    let app = TestApp::spawn().await;
    let wei = app
        .create_guest("sh-bund", guest_named("Wei", "Zhang"))
        .await;
    let li = app.create_guest("hz-lake", guest_named("Na", "Li")).await;
    let weiwei = app
        .create_guest("sh-bund", guest_named("Weiwei", "Wang"))
        .await;
    let chinese = app.create_guest("sh-bund", guest_named("伟", "张")).await;
    let mut client = app.head_office();
    let base = client.clone();

    let search = |req: pb::SearchGuestsRequest| {
        let mut c = base.clone();
        async move {
            let mut ids: Vec<String> = c
                .search_guests(req)
                .await
                .unwrap()
                .into_inner()
                .guests
                .into_iter()
                .map(|g| g.guest_id)
                .collect();
            ids.sort();
            ids
        }
    };
    let sorted = |mut v: Vec<&str>| {
        v.sort();
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };

    // Email: exact, case-insensitive.
    assert_eq!(
        search(pb::SearchGuestsRequest {
            email: email_of(&wei).to_uppercase(),
            ..Default::default()
        })
        .await,
        vec![wei.guest_id.clone()]
    );
    // Phone: in any common notation.
    let phone = phone_of(&li);
    let spaced = format!("{} {} {}", &phone[..3], &phone[3..7], &phone[7..]);
    assert_eq!(
        search(pb::SearchGuestsRequest {
            phone: spaced,
            ..Default::default()
        })
        .await,
        vec![li.guest_id.clone()]
    );
    // Name: prefix of given or family name, or of "given family", case-insensitive.
    assert_eq!(
        search(pb::SearchGuestsRequest {
            name: "wei".into(),
            ..Default::default()
        })
        .await,
        sorted(vec![&wei.guest_id, &weiwei.guest_id])
    );
    assert_eq!(
        search(pb::SearchGuestsRequest {
            name: "ZHA".into(),
            ..Default::default()
        })
        .await,
        vec![wei.guest_id.clone()]
    );
    assert_eq!(
        search(pb::SearchGuestsRequest {
            name: "wei zh".into(),
            ..Default::default()
        })
        .await,
        vec![wei.guest_id.clone()]
    );
    assert_eq!(
        search(pb::SearchGuestsRequest {
            name: "张伟".into(),
            ..Default::default()
        })
        .await,
        vec![chinese.guest_id.clone()]
    );
    // LIKE metacharacters are literal.
    assert!(
        search(pb::SearchGuestsRequest {
            name: "%".into(),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    // Loyalty number: exact.
    assert_eq!(
        search(pb::SearchGuestsRequest {
            loyalty_number: weiwei.loyalty_number.clone(),
            ..Default::default()
        })
        .await,
        vec![weiwei.guest_id.clone()]
    );
    // Criteria combine; property narrows to guests tied to it.
    assert_eq!(
        search(pb::SearchGuestsRequest {
            name: "wei".into(),
            property_id: "hz-lake".into(),
            ..Default::default()
        })
        .await,
        Vec::<String>::new()
    );
    app.upsert_stay(stay(&weiwei.guest_id, "hz-lake", "HZ-1"))
        .await;
    assert_eq!(
        search(pb::SearchGuestsRequest {
            name: "wei".into(),
            property_id: "hz-lake".into(),
            ..Default::default()
        })
        .await,
        vec![weiwei.guest_id.clone()]
    );
    assert!(
        search(pb::SearchGuestsRequest {
            email: "nobody@example.com".into(),
            ..Default::default()
        })
        .await
        .is_empty()
    );

    // The property alone is a criterion: every guest tied to it, by home or by stay.
    assert_eq!(
        search(pb::SearchGuestsRequest {
            property_id: "hz-lake".into(),
            ..Default::default()
        })
        .await,
        sorted(vec![&li.guest_id, &weiwei.guest_id])
    );
    // A search needs at least one criterion.
    assert_invalid(
        client
            .search_guests(pb::SearchGuestsRequest::default())
            .await,
        "email",
    );
    // Malformed criteria are named.
    assert_invalid(
        client
            .search_guests(pb::SearchGuestsRequest {
                email: "not an email".into(),
                ..Default::default()
            })
            .await,
        "email",
    );
    assert_invalid(
        client
            .search_guests(pb::SearchGuestsRequest {
                phone: "12345".into(),
                ..Default::default()
            })
            .await,
        "phone",
    );
}

#[tokio::test]
async fn list_by_property_pages_without_duplicates_or_gaps() {
    let app = TestApp::spawn().await;
    let mut expected = HashSet::new();
    for i in 0..7 {
        let g = app
            .create_guest("sh-bund", guest_named(&format!("Guest{i}"), "Page"))
            .await;
        expected.insert(g.guest_id);
    }
    // Guests elsewhere are not listed for sh-bund.
    let other = app
        .create_guest("hz-lake", guest_named("Other", "Page"))
        .await;
    let mut client = app.head_office();

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let r = client
            .list_guests(pb::ListGuestsRequest {
                property_id: "sh-bund".into(),
                page: page(3, &token),
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(r.guests.len() <= 3);
        seen.extend(r.guests.into_iter().map(|g| g.guest_id));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(seen.len(), 7, "no duplicates: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), expected);
    assert!(pages >= 3);

    // Without a property: everything head office sees, in the same stable order.
    let all = client
        .list_guests(pb::ListGuestsRequest {
            property_id: String::new(),
            page: page(100, ""),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.guests.len(), 8);
    assert!(all.next_page_token.is_empty());
    assert!(all.guests.iter().any(|g| g.guest_id == other.guest_id));
    let order: Vec<_> = all
        .guests
        .iter()
        .filter(|g| g.home_property_id == "sh-bund")
        .map(|g| g.guest_id.clone())
        .collect();
    assert_eq!(order, seen);
}

#[tokio::test]
async fn search_pages_through_many_matches() {
    let app = TestApp::spawn().await;
    let mut expected = HashSet::new();
    for i in 0..5 {
        let g = app
            .create_guest("sh-bund", guest_named(&format!("Lin{i}"), "Chen"))
            .await;
        expected.insert(g.guest_id);
    }
    app.create_guest("sh-bund", guest_named("Other", "Person"))
        .await;
    let mut client = app.head_office();
    let mut seen = Vec::new();
    let mut token = String::new();
    for _ in 0..10 {
        let r = client
            .search_guests(pb::SearchGuestsRequest {
                name: "chen".into(),
                page: page(2, &token),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(r.guests.into_iter().map(|g| g.guest_id));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), expected);
}

#[tokio::test]
async fn bad_paging_is_invalid_argument() {
    let app = TestApp::spawn().await;
    let mut client = app.head_office();
    assert_invalid(
        client
            .list_guests(pb::ListGuestsRequest {
                property_id: String::new(),
                page: page(10, "not-a-token"),
            })
            .await,
        "page.page_token",
    );
    assert_invalid(
        client
            .list_guests(pb::ListGuestsRequest {
                property_id: String::new(),
                page: page(501, ""),
            })
            .await,
        "page.page_size",
    );
    assert_invalid(
        client
            .search_guests(pb::SearchGuestsRequest {
                name: "wei".into(),
                page: page(-1, ""),
                ..Default::default()
            })
            .await,
        "page.page_size",
    );
    assert_invalid(
        client
            .search_guests(pb::SearchGuestsRequest {
                name: "wei".into(),
                page: page(10, "garbage"),
                ..Default::default()
            })
            .await,
        "page.page_token",
    );
}
