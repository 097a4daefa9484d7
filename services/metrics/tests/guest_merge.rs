//! guest-profile's GuestMerged through EventIngestService.DeliverEvents (issue 11): the
//! duplicate's per-guest state (checked-out stays, quotes) moves to the survivor, once, in
//! any order relative to the duplicate's own events, to the other merges of a chain and to
//! erasures; no rollup changes because of a merge; a later VIP check-out of either profile
//! counts the other's stay as a return; redeliveries and unknown or malformed ids are
//! acknowledged without effect.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use guestloop_proto::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use guestloop_proto::guestprofile::v1::Tier;

fn guest() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn merged(survivor: &str, duplicate: &str) -> EventEnvelope {
    envelope(
        "guest-profile",
        "guest",
        survivor,
        "",
        Utc::now(),
        Payload::GuestMerged(ev::GuestMerged {
            survivor_guest_id: survivor.into(),
            duplicate_guest_id: duplicate.into(),
        }),
    )
}

fn erased(guest_id: &str) -> EventEnvelope {
    envelope(
        "guest-profile",
        "guest",
        guest_id,
        "",
        Utc::now(),
        Payload::GuestErased(ev::GuestErased {
            guest_id: guest_id.into(),
        }),
    )
}

/// A VIP gold check-out of the guest `days_ago` days ago.
fn checked_out(guest_id: &str, days_ago: i64) -> EventEnvelope {
    let stay = new_id("stay");
    let at: DateTime<Utc> = Utc::now() - Duration::days(days_ago);
    envelope(
        "guest-profile",
        "stay",
        &stay,
        "sh-bund",
        at,
        Payload::StayCheckedOut(ev::StayCheckedOut {
            stay_id: stay.clone(),
            guest_id: guest_id.into(),
            property_id: "sh-bund".into(),
            checked_out_time: Some(ts(at)),
            tier: Tier::VipGold as i32,
            ..Default::default()
        }),
    )
}

/// Feedback of the guest with words worth quoting.
fn feedback(guest_id: &str) -> EventEnvelope {
    let id = new_id("fb");
    envelope(
        "feedback-intake",
        "feedback",
        &id,
        "sh-bund",
        Utc::now(),
        Payload::FeedbackReceived(ev::FeedbackReceived {
            feedback_id: id.clone(),
            property_id: "sh-bund".into(),
            guest_id: guest_id.into(),
            channel: 1,
            receive_time: Some(ts(Utc::now())),
            language: "en".into(),
            redacted_excerpt: "The breakfast was cold".into(),
            ..Default::default()
        }),
    )
}

/// (stays, quotes) naming the guest.
async fn state_of(app: &TestApp, guest_id: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM stay_state WHERE guest_id = $1),
                (SELECT COUNT(*) FROM quotes WHERE guest_id = $1)",
    )
    .bind(guest_id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// Every rollup, as text: what every KPI is computed from.
async fn rollups(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT r::text FROM rollups r ORDER BY 1")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// (VIP check-outs, of which returns) at sh-bund.
async fn vip_returns(app: &TestApp) -> (i64, i64) {
    sqlx::query_as(
        "SELECT COALESCE(SUM(n), 0)::bigint, COALESCE(SUM(num), 0)::bigint FROM rollups
          WHERE property_id = 'sh-bund' AND measure = 'vip_return' AND breakdown = ''",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn inbox_has(app: &TestApp, event_id: &str) -> bool {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE event_id = $1::uuid")
        .bind(event_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    n == 1
}

#[tokio::test]
async fn a_merge_moves_stays_and_quotes_once_and_changes_no_kpi() {
    let app = TestApp::spawn("").await;
    let (survivor, duplicate) = (guest(), guest());
    app.deliver(vec![
        checked_out(&duplicate, 30),
        checked_out(&survivor, 20),
        feedback(&duplicate),
    ])
    .await;
    assert_eq!(vip_returns(&app).await, (2, 0), "two first stays");
    let before = rollups(&app).await;
    let merge = merged(&survivor, &duplicate);
    app.deliver(vec![merge.clone()]).await;
    assert_eq!(state_of(&app, &duplicate).await, (0, 0));
    assert_eq!(state_of(&app, &survivor).await, (2, 1));
    assert_eq!(rollups(&app).await, before, "a merge changes no KPI");

    // Redelivered, alone and twice in one batch: acknowledged, applied once.
    app.deliver(vec![merge.clone()]).await;
    app.deliver(vec![merge.clone(), merge.clone()]).await;
    assert!(inbox_has(&app, &merge.event_id).await);
    assert_eq!(app.count("SELECT COUNT(*) FROM guest_merges").await, 1);
    assert_eq!(state_of(&app, &survivor).await, (2, 1));
    assert_eq!(rollups(&app).await, before);

    // From now on the two are one guest: a VIP check-out is a return.
    app.deliver(vec![checked_out(&survivor, 1)]).await;
    assert_eq!(vip_returns(&app).await, (3, 1));
}

#[tokio::test]
async fn the_duplicates_events_after_the_merge_land_on_the_survivor() {
    let app = TestApp::spawn("").await;
    let (survivor, duplicate) = (guest(), guest());
    app.deliver(vec![checked_out(&survivor, 40)]).await;
    app.deliver(vec![merged(&survivor, &duplicate)]).await;
    // The duplicate's check-out and feedback arrive after the merge: its check-out is a
    // return (the survivor stayed 40 days ago).
    app.deliver(vec![checked_out(&duplicate, 2), feedback(&duplicate)])
        .await;
    assert_eq!(state_of(&app, &duplicate).await, (0, 0));
    assert_eq!(state_of(&app, &survivor).await, (2, 1));
    assert_eq!(vip_returns(&app).await, (2, 1));
}

#[tokio::test]
async fn a_chain_ends_on_its_last_survivor_in_either_order() {
    // (name, merges in delivery order as (survivor, duplicate) indexes into [d, s, t])
    type Case = (&'static str, [(usize, usize); 2]);
    let cases: [Case; 2] = [
        ("d->s then s->t", [(1, 0), (2, 1)]),
        ("s->t then d->s", [(2, 1), (1, 0)]),
    ];
    let app = TestApp::spawn("").await;
    for (name, merges) in cases {
        let ids = [guest(), guest(), guest()];
        for g in &ids {
            app.deliver(vec![checked_out(g, 100), feedback(g)]).await;
        }
        for (s, d) in merges {
            app.deliver(vec![merged(&ids[s], &ids[d])]).await;
        }
        app.deliver(vec![feedback(&ids[0])]).await;
        assert_eq!(state_of(&app, &ids[0]).await, (0, 0), "{name}: d");
        assert_eq!(state_of(&app, &ids[1]).await, (0, 0), "{name}: s");
        assert_eq!(state_of(&app, &ids[2]).await, (3, 4), "{name}: t");
    }
}

#[tokio::test]
async fn an_erasure_anywhere_in_the_chain_removes_the_survivors_quotes_in_any_order() {
    // (name, events in delivery order; 'm' merge d->s, 'e' erase s, 'E' erase d, 'q' a
    // quote of d)
    let cases = [
        ("erase s, then merge", "qem"),
        ("merge, then erase s", "qme"),
        ("erase s, merge, late quote of d", "emq"),
        ("merge, erase d", "qmE"),
        ("erase d, merge", "qEm"),
    ];
    let app = TestApp::spawn("").await;
    for (name, order) in cases {
        let (survivor, duplicate) = (guest(), guest());
        app.deliver(vec![feedback(&survivor)]).await;
        for step in order.chars() {
            let e = match step {
                'm' => merged(&survivor, &duplicate),
                'e' => erased(&survivor),
                'E' => erased(&duplicate),
                _ => feedback(&duplicate),
            };
            app.deliver(vec![e]).await;
        }
        assert_eq!(state_of(&app, &survivor).await.1, 0, "{name}: survivor");
        assert_eq!(state_of(&app, &duplicate).await.1, 0, "{name}: duplicate");
    }
}

#[tokio::test]
async fn unknown_and_malformed_merges_are_acknowledged_without_effect() {
    let app = TestApp::spawn("").await;
    let bystander = guest();
    app.deliver(vec![checked_out(&bystander, 3), feedback(&bystander)])
        .await;
    let before = rollups(&app).await;
    let same = guest();
    // (what, event, whether it is applied)
    let cases = [
        ("never seen ids", merged(&guest(), &guest()), true),
        ("empty survivor", merged("", &guest()), false),
        ("not a uuid", merged(&guest(), "guest-7"), false),
        ("into itself", merged(&same, &same), false),
    ];
    for (what, event, applied) in cases {
        let id = event.event_id.clone();
        app.deliver(vec![event]).await;
        assert_eq!(inbox_has(&app, &id).await, applied, "{what}");
    }
    assert_eq!(state_of(&app, &bystander).await, (1, 1));
    assert_eq!(app.count("SELECT COUNT(*) FROM guest_merges").await, 1);
    assert_eq!(rollups(&app).await, before);
}
