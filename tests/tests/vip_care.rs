//! VIP care (issue 13) across real processes and a real SMTP server:
//! - a VIP's stay booked at guest-profile reaches the scheduler through the outbox relay
//!   (StayBooked with the profile's care facts) and becomes the property's pre-arrival tasks,
//!   each due its lead time before the arrival at 14:00 local; the stay cancelled, they are
//!   cancelled;
//! - the VIP's check-out makes the satisfaction contact a call for the duty manager: a task,
//!   an e-mail to the duty manager, and no survey e-mail to the guest.

use chrono::{Datelike, Duration as Span, NaiveTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use guestloop_e2e::eventually;
use guestloop_proto::common::v1::{ConsentPurpose, ContactChannel, Date};
use guestloop_proto::followup::v1 as fu;
use guestloop_proto::guestprofile::v1 as gp;
use guestloop_testkit::platform::Platform;
use guestloop_testkit::{scenario, sinks};
use std::time::Duration;

fn date(d: chrono::NaiveDate) -> Option<Date> {
    Some(Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    })
}

fn to(m: &serde_json::Value, address: &str) -> bool {
    m["rcpt_tos"].to_string().contains(address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vip_booking_becomes_pre_arrival_tasks_and_the_check_out_a_duty_manager_call() {
    let smtp = sinks::smtp_sink();
    let config = scenario::config_toml(smtp.port);
    let spec = guestloop_e2e::platform_spec(
        "vip-care",
        "follow-up-scheduler",
        &config,
        Default::default(),
    )
    .await;
    let mut platform = Platform::start(&spec)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let token = guestloop_e2e::head_office_token(&spec.signing_key);
    let conn = |service: &str| {
        guestloop_client::Connection::builder(platform.service(service).unwrap().endpoint())
            .token(&token)
            .connect_lazy()
            .unwrap()
    };
    let mut profiles = conn("guest-profile").guest_profile();
    let scheduler = conn("follow-up-scheduler").follow_up();

    let guest = profiles
        .create_guest(gp::CreateGuestRequest {
            property_id: "sh-bund".into(),
            guest: Some(gp::Guest {
                given_name: "Wei".into(),
                family_name: "Zhang".into(),
                contacts: Some(gp::Contacts {
                    email: "vip.zhang@guest.test".into(),
                    ..Default::default()
                }),
                language: "en".into(),
                tier: gp::Tier::VipGold as i32,
                preferences: Some(gp::Preferences {
                    room_type: "suite".into(),
                    pillow: "buckwheat".into(),
                    allergies: vec!["peanuts".into()],
                    ..Default::default()
                }),
                special_needs: vec![gp::SpecialNeed {
                    kind: gp::SpecialNeedKind::Accessibility as i32,
                    description: "step-free access".into(),
                }],
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .guest
        .unwrap();
    profiles
        .set_consent(gp::SetConsentRequest {
            guest_id: guest.guest_id.clone(),
            consent: Some(gp::Consent {
                channel: ContactChannel::Email as i32,
                purpose: ConsentPurpose::ServiceFollowUp as i32,
                granted: true,
                source: "e2e".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();

    // --- Booked ten days ahead: the three default pre-arrival tasks.
    let arrival = Utc::now().with_timezone(&Shanghai).date_naive() + Span::days(10);
    let stay = gp::Stay {
        guest_id: guest.guest_id.clone(),
        property_id: "sh-bund".into(),
        pms_reservation_id: "VIP-1".into(),
        status: gp::StayStatus::Booked as i32,
        arrival_date: date(arrival),
        departure_date: date(arrival + Span::days(2)),
        ..Default::default()
    };
    let stay_id = profiles
        .upsert_stay(gp::UpsertStayRequest {
            stay: Some(stay.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .stay
        .unwrap()
        .stay_id;
    let list = |statuses: Vec<fu::TaskStatus>, kind: fu::TaskKind, stay_id: String| {
        let mut c = scheduler.clone();
        async move {
            c.list_tasks(fu::ListTasksRequest {
                property_id: "sh-bund".into(),
                stay_id,
                kinds: vec![kind as i32],
                statuses: statuses.into_iter().map(|s| s as i32).collect(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .tasks
        }
    };
    let tasks = eventually("the pre-arrival tasks", Duration::from_secs(30), || {
        let l = list(vec![], fu::TaskKind::VipCare, stay_id.clone());
        async move { Some(l.await).filter(|t| t.len() == 3) }
    })
    .await;
    let at = Shanghai
        .from_local_datetime(&arrival.and_time(NaiveTime::from_hms_opt(14, 0, 0).unwrap()))
        .unwrap()
        .with_timezone(&Utc);
    let mut leads: Vec<i64> = tasks
        .iter()
        .map(|t| (at.timestamp() - t.due_time.unwrap().seconds) / 3600)
        .collect();
    leads.sort();
    assert_eq!(
        leads,
        [24, 48, 72],
        "welcome amenity, room, special needs: {tasks:?}"
    );
    let words: String = tasks.iter().map(|t| t.instructions.clone()).collect();
    for fact in [
        "Allergies: peanuts",
        "Pillow: buckwheat",
        "Accessibility: step-free access",
    ] {
        assert!(words.contains(fact), "{fact} in {words}");
    }
    assert!(!words.contains("Zhang") && !tasks.iter().any(|t| t.title.contains("Zhang")));

    // --- Cancelled at the PMS: the tasks are cancelled.
    profiles
        .upsert_stay(gp::UpsertStayRequest {
            stay: Some(gp::Stay {
                status: gp::StayStatus::Cancelled as i32,
                ..stay
            }),
        })
        .await
        .unwrap();
    eventually("the tasks cancelled", Duration::from_secs(30), || {
        let l = list(
            vec![fu::TaskStatus::Cancelled],
            fu::TaskKind::VipCare,
            stay_id.clone(),
        );
        async move { (l.await.len() == 3).then_some(()) }
    })
    .await;
    assert!(
        list(
            vec![fu::TaskStatus::Open],
            fu::TaskKind::VipCare,
            stay_id.clone()
        )
        .await
        .is_empty()
    );

    // --- Another stay, checked out: the duty manager's call, not the survey.
    let today = Utc::now().with_timezone(&Shanghai).date_naive();
    let out = profiles
        .upsert_stay(gp::UpsertStayRequest {
            stay: Some(gp::Stay {
                guest_id: guest.guest_id.clone(),
                property_id: "sh-bund".into(),
                pms_reservation_id: "VIP-2".into(),
                status: gp::StayStatus::CheckedOut as i32,
                arrival_date: date(today - Span::days(2)),
                departure_date: date(today),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .stay
        .unwrap()
        .stay_id;
    let calls = eventually("the satisfaction call", Duration::from_secs(30), || {
        let l = list(vec![], fu::TaskKind::SatisfactionCall, out.clone());
        async move { Some(l.await).filter(|t| !t.is_empty()) }
    })
    .await;
    assert_eq!(calls.len(), 1);
    let mail = eventually("the duty manager's alert", Duration::from_secs(30), || {
        std::future::ready(smtp.mails().into_iter().find(|m| to(m, "dm@sh-bund.test")))
    })
    .await;
    assert!(
        mail["body"]
            .to_string()
            .contains("satisfaction call to a VIP guest"),
        "{mail}"
    );
    // Time for a survey to have gone, had one been planned.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let to_guest: Vec<_> = smtp
        .mails()
        .into_iter()
        .filter(|m| to(m, "vip.zhang@guest.test"))
        .collect();
    assert!(to_guest.is_empty(), "no templated contact: {to_guest:?}");
    platform.stop();
}
