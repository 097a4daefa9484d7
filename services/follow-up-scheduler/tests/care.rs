//! VIP and frequent-guest care (issue 13) through EventIngestService.DeliverEvents, as
//! guest-profile's outbox relay calls it, and the API staff read it through:
//! - a booking of a configured VIP tier, or of a guest with `frequent_after_stays` earlier
//!   stays, creates exactly the configured pre-arrival tasks, due their lead time before
//!   the arrival (14:00 local); a redelivered booking creates nothing more; others get none;
//! - a cancelled stay cancels them, a moved arrival re-times them, a booking again plans
//!   anew; a booking again while planned (the guest's tier or care facts changed) re-plans:
//!   what is no longer asked is cancelled, what changed is replaced, what is done stays;
//! - a VIP's satisfaction contact is a task for the duty manager (and an alert to them),
//!   not the survey message; a regular guest's is the message;
//! - the anniversary greeting from the profile (a REAL guest-profile answers the look-up)
//!   is planned at 10:00 local with the years it marks, and is sent only with consent.

mod common;

use chrono::{DateTime, Datelike, Duration as Span, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use common::*;
use guestloop_proto::common::v1::{ConsentPurpose, ContactChannel, Date};
use guestloop_proto::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use guestloop_proto::followup::v1 as pb;
use guestloop_proto::guestprofile::v1::{self as gp, SpecialNeed, SpecialNeedKind, Tier};
use guestloop_proto::notification::v1 as nt;
use pb::TimerState as S;
use prost::Message;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The chain's VIPs are gold and platinum only; three earlier stays make a frequent guest;
/// two of the three pre-arrival tasks are configured.
const VIPS: &str = r#"vip_tiers = ["TIER_VIP_GOLD", "TIER_VIP_PLATINUM"]"#;
const CARE: &str = r#"
[care]
frequent_after_stays = 3
arrival_time = "14:00"
[care.pre_arrival]
welcome_amenity = "24h"
room_preferences = "48h"
special_needs = "0s"
"#;

fn uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn envelope(stay: &str, sequence: i64, payload: Payload) -> EventEnvelope {
    EventEnvelope {
        event_id: uid(),
        source: "guest-profile".into(),
        aggregate_type: "stay".into(),
        aggregate_id: stay.into(),
        sequence,
        occur_time: Some(ts(Utc::now())),
        property_id: "sh-bund".into(),
        traceparent: String::new(),
        payload: Some(payload),
    }
}

fn date(d: NaiveDate) -> Option<Date> {
    Some(Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    })
}

/// A day in Shanghai `days` from today.
fn day_in(days: i64) -> NaiveDate {
    Utc::now().with_timezone(&Shanghai).date_naive() + Span::days(days)
}

/// 14:00 in Shanghai on `d`: when the guest is expected.
fn arrival_at(d: NaiveDate) -> DateTime<Utc> {
    Shanghai
        .from_local_datetime(&d.and_time(NaiveTime::from_hms_opt(14, 0, 0).unwrap()))
        .unwrap()
        .with_timezone(&Utc)
}

fn booked(
    stay: &str,
    guest: &str,
    tier: Tier,
    previous_stays: i32,
    arrival: NaiveDate,
    sequence: i64,
) -> EventEnvelope {
    envelope(
        stay,
        sequence,
        Payload::StayBooked(ev::StayBooked {
            stay_id: stay.into(),
            guest_id: guest.into(),
            property_id: "sh-bund".into(),
            arrival_date: date(arrival),
            departure_date: date(arrival + Span::days(3)),
            tier: tier as i32,
            previous_stays,
            care: Some(ev::StayCare {
                room_type: "king".into(),
                pillow: "buckwheat".into(),
                floor: "high".into(),
                dietary: vec!["vegetarian".into()],
                allergies: vec!["peanuts".into()],
                special_needs: vec![SpecialNeed {
                    kind: SpecialNeedKind::Accessibility as i32,
                    description: "step-free access".into(),
                }],
            }),
        }),
    )
}

fn changed(stay: &str, guest: &str, arrival: NaiveDate, sequence: i64) -> EventEnvelope {
    envelope(
        stay,
        sequence,
        Payload::StayChanged(ev::StayChanged {
            stay_id: stay.into(),
            guest_id: guest.into(),
            property_id: "sh-bund".into(),
            status: gp::StayStatus::Booked as i32,
            arrival_date: date(arrival),
            departure_date: date(arrival + Span::days(3)),
            ..Default::default()
        }),
    )
}

fn cancelled(stay: &str, guest: &str, sequence: i64) -> EventEnvelope {
    envelope(
        stay,
        sequence,
        Payload::StayCancelled(ev::StayCancelled {
            stay_id: stay.into(),
            guest_id: guest.into(),
            property_id: "sh-bund".into(),
        }),
    )
}

fn checked_out(stay: &str, guest: &str, tier: Tier, at: DateTime<Utc>) -> EventEnvelope {
    let d = at.with_timezone(&Shanghai).date_naive();
    envelope(
        stay,
        2,
        Payload::StayCheckedOut(ev::StayCheckedOut {
            stay_id: stay.into(),
            guest_id: guest.into(),
            property_id: "sh-bund".into(),
            checked_out_time: Some(ts(at)),
            arrival_date: date(d - Span::days(2)),
            departure_date: date(d),
            tier: tier as i32,
            ..Default::default()
        }),
    )
}

/// The stay's pre-arrival tasks as the property's staff list them, soonest due first.
async fn care_tasks(
    app: &TestApp,
    stay: &str,
    statuses: &[pb::TaskStatus],
) -> Vec<pb::FollowUpTask> {
    app.staff("sh-bund")
        .list_tasks(pb::ListTasksRequest {
            property_id: "sh-bund".into(),
            stay_id: stay.into(),
            kinds: vec![pb::TaskKind::VipCare as i32],
            statuses: statuses.iter().map(|s| *s as i32).collect(),
            ..Default::default()
        })
        .await
        .expect("list tasks")
        .into_inner()
        .tasks
}

fn to_utc(t: Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let t = t.expect("timestamp");
    DateTime::from_timestamp(t.seconds, t.nanos as u32).expect("valid timestamp")
}

/// A replica with the care settings (and `extra`), its worker as asked; the first replica
/// (default settings) is stopped, so events go to it.
async fn care_app(worker: bool, extra: &str) -> TestApp {
    let mut app = TestApp::spawn(false).await;
    app.start(worker, &format!("[chain]\n{VIPS}\n{CARE}\n{extra}"))
        .await;
    app.stop(0).await;
    app
}

async fn outbox_count(app: &TestApp, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(&app.pool)
        .await
        .expect("outbox")
}

#[tokio::test]
async fn a_vip_booking_creates_exactly_the_configured_tasks_before_arrival_once() {
    let app = care_app(false, "").await;
    let (stay, guest) = (uid(), uid());
    let arrival = day_in(10);
    let event = booked(&stay, &guest, Tier::VipGold, 0, arrival, 1);
    deliver(&app, vec![event.clone()]).await;

    let tasks = care_tasks(&app, &stay, &[]).await;
    let expected = arrival_at(arrival);
    let got: Vec<(&str, DateTime<Utc>)> = tasks
        .iter()
        .map(|t| (t.title.as_str(), to_utc(t.due_time)))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "Prepare the room to the preferences of a VIP guest arriving",
                expected - Span::hours(48)
            ),
            (
                "Welcome amenity for a VIP guest arriving",
                expected - Span::hours(24)
            ),
        ],
        "the two configured tasks, each its lead before 14:00 local on the arrival date"
    );
    for t in &tasks {
        assert!(to_utc(t.due_time) < expected);
        assert_eq!(t.status, pb::TaskStatus::Open as i32);
        assert_eq!(t.kind, pb::TaskKind::VipCare as i32);
        assert_eq!(
            (t.guest_id.as_str(), t.stay_id.as_str()),
            (guest.as_str(), stay.as_str())
        );
        assert!(t.assignee_id.is_empty() && t.case_id.is_empty());
    }
    assert_eq!(
        tasks[0].instructions,
        "Room type: king\nPillow: buckwheat\nFloor: high"
    );
    assert!(
        tasks[1].instructions.contains("Dietary: vegetarian")
            && tasks[1].instructions.contains("Allergies: peanuts"),
        "{}",
        tasks[1].instructions
    );

    // Redelivered as the relay does (same event), and once more as a new event of the same
    // booking: nothing more.
    let mut again = event.clone();
    again.event_id = uid();
    deliver(&app, vec![event, again]).await;
    assert_eq!(care_tasks(&app, &stay, &[]).await.len(), 2);
    assert_eq!(outbox_count(&app, "follow_up_task_created").await, 2);
}

#[tokio::test]
async fn who_gets_pre_arrival_care() {
    let app = care_app(false, "").await;
    // (case, tier, earlier stays, tasks)
    let cases = [
        ("a VIP gold guest's first stay", Tier::VipGold, 0, 2),
        ("a VIP platinum guest", Tier::VipPlatinum, 1, 2),
        (
            "VIP silver is not a configured VIP tier",
            Tier::VipSilver,
            0,
            0,
        ),
        (
            "a regular guest with 2 earlier stays (N = 3)",
            Tier::Regular,
            2,
            0,
        ),
        ("a regular guest with 3 earlier stays", Tier::Regular, 3, 2),
        (
            "a guest without a tier and 8 earlier stays",
            Tier::Unspecified,
            8,
            2,
        ),
        ("a potential guest's first stay", Tier::Potential, 0, 0),
    ];
    let stays: Vec<String> = cases.iter().map(|_| uid()).collect();
    let events = cases
        .iter()
        .zip(&stays)
        .map(|((_, tier, previous, _), stay)| booked(stay, &uid(), *tier, *previous, day_in(20), 1))
        .collect();
    deliver(&app, events).await;
    for ((case, .., n), stay) in cases.iter().zip(&stays) {
        let tasks = care_tasks(&app, stay, &[]).await;
        assert_eq!(tasks.len(), *n, "{case}: {tasks:?}");
    }
    let frequent = care_tasks(&app, &stays[4], &[]).await;
    assert!(
        frequent[0]
            .title
            .contains("a frequent guest (3 earlier stays)"),
        "{}",
        frequent[0].title
    );
}

#[tokio::test]
async fn a_cancelled_stay_cancels_its_tasks_and_a_booking_again_plans_anew() {
    let app = care_app(false, "").await;
    let (stay, guest) = (uid(), uid());
    let first = booked(&stay, &guest, Tier::VipGold, 0, day_in(7), 1);
    deliver(&app, vec![first.clone()]).await;
    assert_eq!(
        care_tasks(&app, &stay, &[pb::TaskStatus::Open]).await.len(),
        2
    );

    deliver(&app, vec![cancelled(&stay, &guest, 2)]).await;
    let tasks = care_tasks(&app, &stay, &[]).await;
    assert_eq!(tasks.len(), 2);
    assert!(
        tasks
            .iter()
            .all(|t| t.status == pb::TaskStatus::Cancelled as i32),
        "{tasks:?}"
    );
    assert_eq!(outbox_count(&app, "follow_up_task_cancelled").await, 2);

    // The first booking again (an older event): nothing.
    let mut stale = first;
    stale.event_id = uid();
    deliver(&app, vec![stale]).await;
    assert!(
        care_tasks(&app, &stay, &[pb::TaskStatus::Open])
            .await
            .is_empty()
    );

    // Booked again: a new plan.
    deliver(
        &app,
        vec![booked(&stay, &guest, Tier::VipGold, 0, day_in(9), 3)],
    )
    .await;
    let open = care_tasks(&app, &stay, &[pb::TaskStatus::Open]).await;
    assert_eq!(open.len(), 2, "{open:?}");
    assert_eq!(
        to_utc(open[1].due_time),
        arrival_at(day_in(9)) - Span::hours(24)
    );
}

#[tokio::test]
async fn a_moved_arrival_re_times_the_open_tasks() {
    let app = care_app(false, "").await;
    let (stay, guest) = (uid(), uid());
    deliver(
        &app,
        vec![booked(&stay, &guest, Tier::VipGold, 0, day_in(7), 1)],
    )
    .await;
    let tasks = care_tasks(&app, &stay, &[]).await;
    // The room was prepared already: done is done.
    let room = tasks[0].task_id.clone();
    app.staff("sh-bund")
        .complete_task(pb::CompleteTaskRequest {
            task_id: room.clone(),
            outcome: pb::TaskOutcome::NoActionNeeded as i32,
            ..Default::default()
        })
        .await
        .expect("complete");

    let moved = changed(&stay, &guest, day_in(10), 2);
    deliver(&app, vec![moved.clone()]).await;
    let open = care_tasks(&app, &stay, &[pb::TaskStatus::Open]).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert!(open[0].title.starts_with("Welcome amenity"));
    assert_eq!(
        to_utc(open[0].due_time),
        arrival_at(day_in(10)) - Span::hours(24)
    );
    let cancelled_ones = care_tasks(&app, &stay, &[pb::TaskStatus::Cancelled]).await;
    assert_eq!(cancelled_ones.len(), 1);
    assert_eq!(cancelled_ones[0].task_id, tasks[1].task_id);
    let done = care_tasks(&app, &stay, &[pb::TaskStatus::Completed]).await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].task_id, room);

    // The same change again, and a change that keeps the arrival: nothing moves.
    let mut again = moved;
    again.event_id = uid();
    deliver(&app, vec![again, changed(&stay, &guest, day_in(10), 3)]).await;
    assert_eq!(care_tasks(&app, &stay, &[]).await.len(), 3);
    assert_eq!(
        care_tasks(&app, &stay, &[pb::TaskStatus::Open]).await[0].task_id,
        open[0].task_id
    );
}

#[tokio::test]
async fn a_profile_change_before_arrival_re_plans_the_care() {
    let app = care_app(false, "").await;
    let (stay, guest) = (uid(), uid());
    let arrival = day_in(7);
    let with_care = |tier, seq, care: ev::StayCare| {
        let mut e = booked(&stay, &guest, tier, 0, arrival, seq);
        if let Some(Payload::StayBooked(b)) = e.payload.as_mut() {
            b.care = Some(care);
        }
        e
    };
    let rooms = ev::StayCare {
        room_type: "king".into(),
        pillow: "buckwheat".into(),
        ..Default::default()
    };
    let allergic = ev::StayCare {
        allergies: vec!["peanuts".into()],
        ..rooms.clone()
    };
    let open = || async {
        let mut t = care_tasks(&app, &stay, &[pb::TaskStatus::Open]).await;
        t.sort_by(|a, b| a.title.cmp(&b.title));
        t
    };

    // Booked as a regular guest: nothing to prepare.
    deliver(&app, vec![with_care(Tier::Regular, 1, Default::default())]).await;
    assert!(open().await.is_empty());
    // Made gold before arrival (guest-profile books the stay again): the amenity.
    deliver(&app, vec![with_care(Tier::VipGold, 2, Default::default())]).await;
    let first = open().await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].title.starts_with("Welcome amenity"), "{first:?}");
    // Room preferences added: the room task joins; the amenity is the same task.
    deliver(&app, vec![with_care(Tier::VipGold, 3, rooms.clone())]).await;
    let both = open().await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both[1].title.starts_with("Welcome amenity"));
    assert_eq!(both[1].task_id, first[0].task_id);
    assert!(both[0].instructions.contains("buckwheat"), "{both:?}");
    // The same booking redelivered: nothing more.
    deliver(&app, vec![with_care(Tier::VipGold, 3, rooms.clone())]).await;
    assert_eq!(care_tasks(&app, &stay, &[]).await.len(), 2);
    // An allergy recorded: the amenity is replaced by one that says so; the room task stays.
    deliver(&app, vec![with_care(Tier::VipGold, 4, allergic.clone())]).await;
    let now_open = open().await;
    assert_eq!(now_open.len(), 2, "{now_open:?}");
    assert_eq!(now_open[0].task_id, both[0].task_id);
    assert_ne!(now_open[1].task_id, first[0].task_id);
    assert!(now_open[1].instructions.contains("peanuts"), "{now_open:?}");

    // The amenity is placed; then the tier lapses: the open room task is cancelled, the
    // done amenity stays done.
    app.staff("sh-bund")
        .complete_task(pb::CompleteTaskRequest {
            task_id: now_open[1].task_id.clone(),
            outcome: pb::TaskOutcome::NoActionNeeded as i32,
            ..Default::default()
        })
        .await
        .expect("complete");
    deliver(&app, vec![with_care(Tier::Regular, 5, allergic.clone())]).await;
    assert!(open().await.is_empty());
    let cancelled_ones = care_tasks(&app, &stay, &[pb::TaskStatus::Cancelled]).await;
    assert_eq!(
        cancelled_ones.len(),
        2,
        "the first amenity and the room: {cancelled_ones:?}"
    );
    // Gold again: the room task comes back, the amenity (done) is not asked again.
    deliver(&app, vec![with_care(Tier::VipGold, 6, allergic)]).await;
    let again = open().await;
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(again[0].title.starts_with("Prepare the room"), "{again:?}");
    assert_eq!(
        care_tasks(&app, &stay, &[pb::TaskStatus::Completed])
            .await
            .len(),
        1
    );
}

/// A fast replica (worker on, contact a second after check-out at any hour) with a real
/// notification, and a pool on notification's schema.
async fn fast_care_app() -> (TestApp, sqlx::PgPool) {
    let mut app = TestApp::spawn(false).await;
    let (peer, notification) = app.notification().await;
    // One [chain] table: the test chain's, with quiet hours moved and the VIP tiers.
    let chain = quiet_hours_away_from_now().replacen("[chain]\n", &format!("[chain]\n{VIPS}\n"), 1);
    assert!(chain.contains(VIPS));
    let extra = format!(
        "{peer}\n[plan]\nsatisfaction_delay = \"1s\"\ncontact_hours = {{ start = \"00:00\", end = \"23:59\" }}\n{CARE}\n{chain}"
    );
    app.start(true, &extra).await;
    app.stop(0).await;
    (app, notification)
}

/// The test chain with every property's quiet hours six to eight hours from now.
fn quiet_hours_away_from_now() -> String {
    let hh_mm = |d: Span| {
        (Utc::now() + d)
            .with_timezone(&Shanghai)
            .format("%H:%M")
            .to_string()
    };
    let quiet = format!(
        "quiet_hours = {{ start = \"{}\", end = \"{}\" }}\ndefault_language = ",
        hh_mm(Span::hours(6)),
        hh_mm(Span::hours(8)),
    );
    guestloop_testkit::TEST_CHAIN_TOML.replace("default_language = ", &quiet)
}

fn key(stay: &str, what: &str) -> String {
    format!("stay/{stay}/{what}")
}

#[tokio::test]
async fn a_vips_after_stay_contact_is_a_task_for_the_duty_manager_not_a_message() {
    let (app, notification) = fast_care_app().await;
    let (vip_stay, vip) = (uid(), uid());
    let (regular_stay, regular) = (uid(), uid());
    let out = Utc::now();
    deliver(
        &app,
        vec![
            checked_out(&vip_stay, &vip, Tier::VipGold, out),
            checked_out(&regular_stay, &regular, Tier::Regular, out),
        ],
    )
    .await;
    let done = [S::Fired, S::Skipped, S::Failed];
    let call = app
        .wait_for(&key(&vip_stay, "satisfaction_contact"), &done, WAIT)
        .await;
    let survey = app
        .wait_for(&key(&regular_stay, "satisfaction_contact"), &done, WAIT)
        .await;
    assert_eq!(call.state, S::Fired as i32, "{call:?}");
    assert_eq!(survey.state, S::Fired as i32, "{survey:?}");

    // The VIP: a satisfaction call for the property's duty manager, due by the 48 h
    // standard, and no message to the guest.
    assert!(call.message_id.is_empty(), "{call:?}");
    let tasks = app
        .staff("sh-bund")
        .list_tasks(pb::ListTasksRequest {
            property_id: "sh-bund".into(),
            stay_id: vip_stay.clone(),
            ..Default::default()
        })
        .await
        .expect("the stay's tasks")
        .into_inner()
        .tasks;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task = tasks[0].clone();
    assert_eq!(task.timer_id, call.timer_id);
    assert_eq!(task.kind, pb::TaskKind::SatisfactionCall as i32);
    assert!(task.title.starts_with("Duty manager:"), "{}", task.title);
    assert_eq!(
        (task.guest_id.as_str(), task.stay_id.as_str()),
        (vip.as_str(), vip_stay.as_str())
    );
    let deadline = out + Span::hours(48);
    assert!(
        (to_utc(task.due_time) - deadline).num_seconds().abs() <= 5,
        "due by the 48 h standard: {:?}",
        task.due_time
    );
    let guest_messages: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE guest_id = $1")
            .bind(&vip)
            .fetch_one(&notification)
            .await
            .unwrap();
    assert_eq!(guest_messages, 0, "no templated contact for the VIP");
    // The duty manager was alerted to it, once.
    let alerts: Vec<(i16, Vec<u8>)> =
        sqlx::query_as("SELECT kind, spec FROM messages WHERE idempotency_key = $1")
            .bind(format!("task-alert:timer:{}:1", call.timer_id))
            .fetch_all(&notification)
            .await
            .unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].0, nt::MessageKind::StaffTaskAssigned as i16);
    let spec = nt::MessageSpec::decode(alerts[0].1.as_slice()).unwrap();
    let Some(nt::recipient::Kind::Staff(staff)) = spec.recipient.and_then(|r| r.kind) else {
        panic!("a staff alert")
    };
    assert_eq!(
        (staff.role, staff.property_id.as_str()),
        (nt::StaffRole::DutyManager as i32, "sh-bund")
    );
    assert_eq!(spec.variables["task_title"], task.title);
    // No survey, so no reminder; the 7-day follow-up is the duty manager's call too.
    let reminder = app
        .head_office()
        .get_timer(pb::GetTimerRequest {
            key: key(&vip_stay, "survey_reminder"),
            timer_id: String::new(),
        })
        .await;
    assert_eq!(reminder.unwrap_err().code(), tonic::Code::NotFound);
    let follow_up = app.get(&key(&vip_stay, "post_stay_follow_up")).await;
    let Some(pb::timer_action::Action::CreateTask(a)) = follow_up.action.and_then(|a| a.action)
    else {
        panic!("the follow-up creates a task")
    };
    assert_eq!(
        (a.kind, a.notify_role),
        (
            pb::TaskKind::PostStayFollowUp as i32,
            nt::StaffRole::DutyManager as i32
        )
    );

    // The regular guest: the survey message, as before.
    assert!(!survey.message_id.is_empty());
    let kinds: Vec<i16> = sqlx::query_scalar("SELECT kind FROM messages WHERE guest_id = $1")
        .bind(&regular)
        .fetch_all(&notification)
        .await
        .unwrap();
    assert_eq!(kinds, [nt::MessageKind::SatisfactionSurvey as i16]);
}

/// A guest in the real guest-profile with this anniversary, and marketing consent by email
/// when `consent`.
async fn guest_with_anniversary(
    gp_client: &mut guestloop_client::GuestProfileClient,
    anniversary: NaiveDate,
    consent: bool,
) -> String {
    let n = uid();
    let guest = gp_client
        .create_guest(gp::CreateGuestRequest {
            property_id: "sh-bund".into(),
            guest: Some(gp::Guest {
                family_name: "Anniversary".into(),
                contacts: Some(gp::Contacts {
                    email: format!("a{}@guest.test", &n[..8]),
                    ..Default::default()
                }),
                language: "en".into(),
                anniversary: date(anniversary),
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await
        .expect("create guest")
        .into_inner()
        .guest
        .unwrap();
    if consent {
        gp_client
            .set_consent(gp::SetConsentRequest {
                guest_id: guest.guest_id.clone(),
                consent: Some(gp::Consent {
                    channel: ContactChannel::Email as i32,
                    purpose: ConsentPurpose::Marketing as i32,
                    granted: true,
                    source: "test".into(),
                    ..Default::default()
                }),
            })
            .await
            .expect("consent");
    }
    guest.guest_id
}

#[tokio::test]
async fn the_anniversary_greeting_is_at_ten_local_and_only_with_consent() {
    let mut app = TestApp::spawn(false).await;
    let (peer, notification) = app.notification().await;
    let (gp_url, mut gp_client) = app.guest_profile().await;
    let peers = peer.replace(
        "[peers]\n",
        &format!("[peers]\nguest_profile = \"{gp_url}\"\n"),
    );
    app.start(true, &peers).await;
    app.stop(0).await;

    // Married eight years ago, five days from now.
    let on = day_in(5);
    let anniversary = NaiveDate::from_ymd_opt(on.year() - 8, on.month(), on.day()).unwrap();
    let with = guest_with_anniversary(&mut gp_client, anniversary, true).await;
    let without = guest_with_anniversary(&mut gp_client, anniversary, false).await;
    deliver(
        &app,
        vec![
            checked_out(&uid(), &with, Tier::Regular, Utc::now()),
            checked_out(&uid(), &without, Tier::Regular, Utc::now()),
        ],
    )
    .await;

    let key_of = |g: &str| format!("guest/{g}/anniversary/{}", on.year());
    let ten = Shanghai
        .from_local_datetime(&on.and_time(NaiveTime::from_hms_opt(10, 0, 0).unwrap()))
        .unwrap()
        .with_timezone(&Utc);
    for g in [&with, &without] {
        let t = app.get(&key_of(g)).await;
        assert_eq!(t.purpose, pb::TimerPurpose::AnniversaryCare as i32);
        assert_eq!(t.state, S::Pending as i32);
        assert_eq!(to_utc(t.due_time), ten, "10:00 in Shanghai on the day");
        let Some(pb::timer_action::Action::SendMessage(s)) = t.action.and_then(|a| a.action) else {
            panic!("a greeting message")
        };
        let m = s.message.unwrap();
        assert_eq!(m.kind, nt::MessageKind::AnniversaryGreeting as i32);
        assert_eq!(m.purpose, ConsentPurpose::Marketing as i32);
        assert_eq!(m.variables["years"], "8");
    }

    // Brought forward to now, as if the day had come.
    sqlx::query("UPDATE timers SET due_time = now() WHERE key = ANY($1)")
        .bind(vec![key_of(&with), key_of(&without)])
        .execute(&app.pool)
        .await
        .unwrap();
    let done = [S::Fired, S::Skipped, S::Failed];
    let sent = app.wait_for(&key_of(&with), &done, WAIT).await;
    let skipped = app.wait_for(&key_of(&without), &done, WAIT).await;
    assert_eq!(sent.state, S::Fired as i32, "{sent:?}");
    assert_eq!(skipped.state, S::Skipped as i32, "{skipped:?}");
    assert_eq!(skipped.skip_reason, "no_consent");
    let kinds: Vec<(String, i16)> =
        sqlx::query_as("SELECT guest_id, kind FROM messages WHERE guest_id = ANY($1)")
            .bind(vec![with.clone(), without.clone()])
            .fetch_all(&notification)
            .await
            .unwrap();
    assert_eq!(
        kinds,
        [(with.clone(), nt::MessageKind::AnniversaryGreeting as i16)]
    );
}

#[tokio::test]
async fn an_erased_guest_loses_their_care_facts_and_gets_no_more_care() {
    let app = care_app(false, "").await;
    let (stay, guest) = (uid(), uid());
    deliver(
        &app,
        vec![booked(&stay, &guest, Tier::VipGold, 0, day_in(6), 1)],
    )
    .await;
    assert_eq!(
        care_tasks(&app, &stay, &[pb::TaskStatus::Open]).await.len(),
        2
    );
    let erased = EventEnvelope {
        aggregate_type: "guest".into(),
        aggregate_id: guest.clone(),
        ..envelope(
            &guest,
            1,
            Payload::GuestErased(ev::GuestErased {
                guest_id: guest.clone(),
            }),
        )
    };
    deliver(&app, vec![erased]).await;
    let tasks = care_tasks(&app, &stay, &[]).await;
    assert_eq!(tasks.len(), 2);
    for t in &tasks {
        assert_eq!(t.status, pb::TaskStatus::Cancelled as i32);
        assert_eq!(
            (t.title.as_str(), t.instructions.as_str()),
            ("[erased]", "")
        );
    }
    let plans: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM care_plans")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(plans, 0, "the plan went with the guest");
    // A booking of theirs that arrives after the erasure plans nothing.
    let later = uid();
    deliver(
        &app,
        vec![booked(&later, &guest, Tier::VipGold, 0, day_in(6), 1)],
    )
    .await;
    assert!(care_tasks(&app, &later, &[]).await.is_empty());
}
