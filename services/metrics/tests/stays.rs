//! A check-out undone and redone at the PMS (a second StayCheckedOut for the same stay,
//! with a new event id) counts the stay once.

mod common;

use chrono::Utc;
use common::*;
use guestloop_proto::events::v1 as ev;
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::metrics::v1::Kpi;

#[tokio::test]
async fn a_redone_check_out_counts_the_stay_once() {
    let app = TestApp::spawn("").await;
    let stay = new_id("stay");
    let checked_out = |complete: bool| {
        let now = Utc::now();
        envelope(
            "guest-profile",
            "stay",
            &stay,
            "sh-bund",
            now,
            Payload::StayCheckedOut(ev::StayCheckedOut {
                stay_id: stay.clone(),
                guest_id: "guest-1".into(),
                property_id: "sh-bund".into(),
                checked_out_time: Some(ts(now)),
                profile_complete: complete,
                ..Default::default()
            }),
        )
    };
    app.deliver(vec![checked_out(false), checked_out(true)])
        .await;
    let day = local_day("sh-bund", Utc::now());
    let r = app
        .kpis(&mut app.head_office(), property("sh-bund"), day, day, false)
        .await;
    let stays = total(&r, Kpi::ComplaintsPer100Stays);
    assert_eq!(
        stays.denominator, 1,
        "one stay, however often it checked out"
    );
    let profiles = total(&r, Kpi::ProfileCompleteness);
    assert_eq!(
        (profiles.numerator, profiles.denominator),
        (0, 1),
        "as at its first check-out"
    );
}
