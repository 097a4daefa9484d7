//! The anniversary on the profile (issue 13): a date with its year, kept, updated through
//! its own mask path, filled from a merged duplicate and removed by erasure. Bad values are
//! refused naming `guest.anniversary` (tests/bad_input.rs has the table of them).

mod common;

use common::*;
use guestloop_proto::guestprofile::v1 as pb;

async fn get(app: &TestApp, id: &str) -> pb::Guest {
    app.head_office()
        .get_guest(pb::GetGuestRequest {
            guest_id: id.into(),
        })
        .await
        .expect("get guest")
        .into_inner()
        .guest
        .unwrap()
}

#[tokio::test]
async fn the_anniversary_is_kept_updated_and_left_alone_by_other_updates() {
    let app = TestApp::spawn().await;
    let created = app
        .create_guest(
            "sh-bund",
            pb::Guest {
                anniversary: Some(date(2012, 2, 29)),
                ..guest()
            },
        )
        .await;
    assert_eq!(created.anniversary, Some(date(2012, 2, 29)));
    assert_eq!(
        get(&app, &created.guest_id).await.anniversary,
        Some(date(2012, 2, 29))
    );

    // Another field's update keeps it; its own path changes it; sent empty, it is cleared.
    let update = |g: pb::Guest, paths: &[&str]| pb::UpdateGuestRequest {
        guest: Some(g),
        update_mask: mask(paths),
    };
    let cases: [(
        &str,
        pb::Guest,
        &[&str],
        Option<guestloop_proto::common::v1::Date>,
    ); 3] = [
        (
            "notes only",
            pb::Guest {
                anniversary: Some(date(2000, 1, 1)),
                notes: "new note".into(),
                ..created.clone()
            },
            &["notes"],
            Some(date(2012, 2, 29)),
        ),
        (
            "the anniversary",
            pb::Guest {
                anniversary: Some(date(2015, 10, 3)),
                ..created.clone()
            },
            &["anniversary"],
            Some(date(2015, 10, 3)),
        ),
        (
            "the anniversary, empty",
            pb::Guest {
                anniversary: None,
                ..created.clone()
            },
            &["anniversary"],
            None,
        ),
    ];
    for (case, g, paths, expected) in cases {
        let updated = app
            .head_office()
            .update_guest(update(g, paths))
            .await
            .unwrap_or_else(|s| panic!("{case}: {s:?}"))
            .into_inner()
            .guest
            .unwrap();
        assert_eq!(updated.anniversary, expected, "{case}");
        assert_eq!(
            get(&app, &created.guest_id).await.anniversary,
            expected,
            "{case}"
        );
    }
}

#[tokio::test]
async fn a_merge_fills_the_anniversary_and_an_erasure_removes_it() {
    let app = TestApp::spawn().await;
    let survivor = app.create_guest("sh-bund", guest()).await;
    let duplicate = app
        .create_guest(
            "sh-bund",
            pb::Guest {
                anniversary: Some(date(2010, 6, 12)),
                ..minimal_guest("Wei", "Zhang")
            },
        )
        .await;
    assert_eq!(survivor.anniversary, None);
    let merged = app
        .head_office()
        .merge_guests(pb::MergeGuestsRequest {
            survivor_guest_id: survivor.guest_id.clone(),
            duplicate_guest_id: duplicate.guest_id.clone(),
            reason: "same person".into(),
        })
        .await
        .expect("merge")
        .into_inner()
        .survivor
        .unwrap();
    assert_eq!(merged.anniversary, Some(date(2010, 6, 12)));

    app.head_office()
        .erase_guest(pb::EraseGuestRequest {
            guest_id: survivor.guest_id.clone(),
            reason: "the guest asked".into(),
        })
        .await
        .expect("erase");
    assert_eq!(get(&app, &survivor.guest_id).await.anniversary, None);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM guests WHERE anniversary IS NOT NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "neither profile keeps it");
}
