//! The closed loop of issue 4 across real processes, as in production: guest-profile and
//! feedback-intake deliver their events to follow-up-scheduler through their outbox relays
//! (service tokens), the scheduler asks guest-profile for consent, escalates through
//! feedback-intake's EscalateCase and alerts staff through notification. SLA durations are
//! shrunk to seconds. Erasing a guest at guest-profile reaches feedback-intake the same way
//! (issue 11): the guest's words leave its feedback and cases.

use chrono::{Datelike, Timelike, Utc};
use guestloop_e2e::eventually;
use guestloop_proto::common::v1::{ConsentPurpose, ContactChannel, Date};
use guestloop_proto::feedback::v1 as fb;
use guestloop_proto::followup::v1 as fu;
use guestloop_proto::guestprofile::v1 as gp;
use guestloop_proto::notification::v1 as nt;
use guestloop_testkit::platform::Platform;
use std::time::{Duration, Instant};

/// The test chain, with quiet hours placed away from now so guests may be contacted while
/// the test runs, and the standards in seconds.
fn config() -> String {
    let shanghai = (Utc::now().hour() + 8) % 24;
    let quiet = format!(
        r#"quiet_hours = {{ start = "{:02}:00", end = "{:02}:00" }}"#,
        (shanghai + 6) % 24,
        (shanghai + 7) % 24
    );
    format!(
        r#"
[chain]
name = "Loop Hotels"
[[chain.regions]]
id = "east"
name = "East China"
[[chain.properties]]
id = "sh-bund"
name = "Shanghai Bund"
region = "east"
time_zone = "Asia/Shanghai"
default_language = "en"
{quiet}
working_hours = {{ start = "00:00", end = "23:59" }}

[standards.default]
first_response_normal = "3s"
first_response_urgent = "2s"
resolution = "60s"
sla_warning_at = 0.5
escalation_steps = ["3s", "3s", "3s"]

[outbox]
poll_interval = "100ms"

[timers]
poll_interval = "100ms"
lease = "10s"
action_timeout = "3s"
retry_delay = "500ms"

[plan]
satisfaction_delay = "1s"
contact_hours = {{ start = "00:00", end = "23:59" }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_outs_plan_contacts_and_late_cases_climb_the_ladder() {
    let spec =
        guestloop_e2e::platform_spec("loop", "follow-up-scheduler", &config(), Default::default())
            .await;
    let mut platform = Platform::start(&spec)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let token = guestloop_e2e::head_office_token(&spec.signing_key);
    let conn = |name: &str| {
        guestloop_client::Connection::builder(platform.service(name).unwrap().endpoint())
            .token(&token)
            .connect_lazy()
            .unwrap()
    };
    let mut guests = conn("guest-profile").guest_profile();
    let mut feedback = conn("feedback-intake").feedback();
    let mut scheduler = conn("follow-up-scheduler").follow_up();
    let mut notification = conn("notification").notification();

    // --- The after-stay plan: two guests check out; only the one who consented is asked.
    let shanghai = chrono_tz::Asia::Shanghai;
    let birthday = (Utc::now().with_timezone(&shanghai) + chrono::Duration::days(2)).date_naive();
    let mut stays = Vec::new();
    let mut guest_ids = Vec::new();
    for (i, consent) in [true, false].into_iter().enumerate() {
        let guest = guests
            .create_guest(gp::CreateGuestRequest {
                property_id: "sh-bund".into(),
                guest: Some(gp::Guest {
                    family_name: format!("Loop{i}"),
                    birthday: Some(Date {
                        year: 1990,
                        month: birthday.month() as i32,
                        day: birthday.day() as i32,
                    }),
                    contacts: Some(gp::Contacts {
                        email: format!("loop{i}@guest.test"),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .guest
            .unwrap();
        if consent {
            guests
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
        }
        let date = |day| {
            Some(Date {
                year: 2026,
                month: 11,
                day,
            })
        };
        let stay = guests
            .upsert_stay(gp::UpsertStayRequest {
                stay: Some(gp::Stay {
                    guest_id: guest.guest_id.clone(),
                    property_id: "sh-bund".into(),
                    pms_reservation_id: format!("LOOP-{i}"),
                    status: gp::StayStatus::CheckedOut as i32,
                    arrival_date: date(20),
                    departure_date: date(22),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .stay
            .unwrap();
        stays.push(stay.stay_id);
        guest_ids.push(guest.guest_id);
    }
    let mut outcome = Vec::new();
    for stay in &stays {
        let key = format!("stay/{stay}/satisfaction_contact");
        let t = eventually(&key, Duration::from_secs(20), || {
            let mut s = scheduler.clone();
            let key = key.clone();
            async move {
                let t = s
                    .get_timer(fu::GetTimerRequest {
                        key,
                        ..Default::default()
                    })
                    .await
                    .ok()?
                    .into_inner()
                    .timer?;
                matches!(
                    fu::TimerState::try_from(t.state).ok()?,
                    fu::TimerState::Fired | fu::TimerState::Skipped | fu::TimerState::Failed
                )
                .then_some(t)
            }
        })
        .await;
        outcome.push(t);
    }
    assert_eq!(
        outcome[0].state,
        fu::TimerState::Fired as i32,
        "{:?}",
        outcome[0]
    );
    let survey = notification
        .get_message(nt::GetMessageRequest {
            message_id: outcome[0].message_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(
        survey.spec.unwrap().kind,
        nt::MessageKind::SatisfactionSurvey as i32
    );
    assert_eq!(outcome[1].state, fu::TimerState::Skipped as i32);
    assert_eq!(outcome[1].skip_reason, "no_consent");
    let clocks = scheduler
        .get_stay_clocks(fu::GetStayClocksRequest {
            stay_id: stays[0].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .clocks;
    assert_eq!(clocks.len(), 3, "survey, reminder, 7-day follow-up");

    // Birthday care: 10:00 local at the property of the stay, on the guest's birthday
    // (asked of guest-profile with the scheduler's own token).
    let greeting = scheduler
        .get_timer(fu::GetTimerRequest {
            key: format!("guest/{}/birthday/{}", guest_ids[0], birthday.year()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .timer
        .unwrap();
    let due = greeting.due_time.unwrap();
    let local = chrono::DateTime::from_timestamp(due.seconds, 0)
        .unwrap()
        .with_timezone(&shanghai);
    assert_eq!(local.date_naive(), birthday);
    assert_eq!((local.hour(), local.minute()), (10, 0));

    // --- A complaint nobody answers climbs the ladder, one step per missed deadline.
    let open = |text: &'static str, key: &'static str| {
        let mut f = feedback.clone();
        async move {
            f.submit_feedback(fb::SubmitFeedbackRequest {
                feedback: Some(fb::Feedback {
                    property_id: "sh-bund".into(),
                    channel: fb::FeedbackChannel::Phone as i32,
                    text: text.into(),
                    language: "en".into(),
                    category: fb::Category::Noise as i32,
                    sentiment: fb::Sentiment::Negative as i32,
                    ..Default::default()
                }),
                idempotency_key: key.into(),
                complaint: Some(fb::CaseDetails::default()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .case
            .unwrap()
        }
    };
    let ignored = open("Loud music next door all night", "loop-ignored").await;
    let answered = open("The corridor was noisy in the morning", "loop-answered").await;
    let started = Instant::now();

    // The answered one is acknowledged at once: its first-response clock is met.
    feedback
        .transition_case(fb::TransitionCaseRequest {
            case_id: answered.case_id.clone(),
            to_status: fb::CaseStatus::Acknowledged as i32,
            guest_contacted: true,
            contact_channel: ContactChannel::PhoneCall as i32,
            note: "called back".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let case_clocks = |case_id: String| {
        let mut s = scheduler.clone();
        async move {
            s.get_case_clocks(fu::GetCaseClocksRequest { case_id })
                .await
                .ok()
                .map(|r| r.into_inner())
        }
    };
    let ladder = eventually("three hops", Duration::from_secs(40), || {
        let f = case_clocks(ignored.case_id.clone());
        async move { f.await.filter(|c| c.hops.len() >= 3) }
    })
    .await;
    let climbed = started.elapsed();
    let tiers: Vec<(i32, i32, bool)> = ladder
        .hops
        .iter()
        .map(|h| (h.from_tier, h.to_tier, h.confirmed))
        .collect();
    use fb::EscalationTier as T;
    assert_eq!(
        tiers,
        vec![
            (T::FrontLine as i32, T::CustomerServiceManager as i32, true),
            (
                T::CustomerServiceManager as i32,
                T::DepartmentHead as i32,
                true
            ),
            (T::DepartmentHead as i32, T::GeneralManager as i32, true),
        ],
        "one hop per missed deadline, in order"
    );
    // Three deadlines: the first response (2 s if the case is urgent, else 3 s), then two
    // 3 s ladder steps. The third hop comes no sooner (instants as the services recorded).
    let secs = |t: &prost_types::Timestamp| t.seconds as f64 + f64::from(t.nanos) / 1e9;
    let opened = secs(ignored.open_time.as_ref().unwrap());
    let first_due = secs(ignored.first_response_due_time.as_ref().unwrap());
    let third = secs(ladder.hops[2].hop_time.as_ref().unwrap());
    let after_open = third - opened;
    assert!(
        after_open >= first_due - opened + 6.0,
        "third hop {after_open:.3}s after opening, first response due after {:.3}s",
        first_due - opened
    );
    eprintln!("ladder climbed in {climbed:?} (third hop {after_open:.3}s after opening)");
    let case = feedback
        .get_case(fb::GetCaseRequest {
            case_id: ignored.case_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(case.escalation_tier, T::GeneralManager as i32);
    let fr = ladder
        .clocks
        .iter()
        .find(|c| c.kind == fu::ClockKind::FirstResponse as i32)
        .unwrap();
    assert_eq!(fr.state, fu::ClockState::Breached as i32);
    assert!(fr.warned, "warned at 50 % before the breach");
    // Each hop alerted its new owner; the warning went to the front line.
    let messages = notification
        .list_messages(nt::ListMessagesRequest {
            case_id: ignored.case_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    let kinds = |k: nt::MessageKind| {
        messages
            .iter()
            .filter(|m| m.spec.as_ref().is_some_and(|s| s.kind == k as i32))
            .count()
    };
    assert_eq!(kinds(nt::MessageKind::StaffEscalation), 3, "{messages:?}");
    assert!(kinds(nt::MessageKind::StaffSlaWarning) >= 1);
    for h in &ladder.hops {
        assert!(messages.iter().any(|m| m.message_id == h.message_id));
    }

    // The answered case: first response met, no hop.
    let calm = case_clocks(answered.case_id.clone()).await.unwrap();
    let fr = calm
        .clocks
        .iter()
        .find(|c| c.kind == fu::ClockKind::FirstResponse as i32)
        .unwrap();
    assert_eq!(fr.state, fu::ClockState::Met as i32, "{fr:?}");
    assert!(calm.hops.is_empty(), "{:?}", calm.hops);

    // Waiting for the guest pauses its resolution clock; resolving stops it, met.
    feedback
        .transition_case(fb::TransitionCaseRequest {
            case_id: answered.case_id.clone(),
            to_status: fb::CaseStatus::WaitingForGuest as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let clock_state = |case_id: String, kind: fu::ClockKind, state: fu::ClockState| {
        let f = case_clocks(case_id);
        async move {
            f.await?
                .clocks
                .into_iter()
                .find(|c| c.kind == kind as i32 && c.state == state as i32)
        }
    };
    eventually("resolution paused", Duration::from_secs(10), || {
        clock_state(
            answered.case_id.clone(),
            fu::ClockKind::Resolution,
            fu::ClockState::Paused,
        )
    })
    .await;
    feedback
        .transition_case(fb::TransitionCaseRequest {
            case_id: answered.case_id.clone(),
            to_status: fb::CaseStatus::Resolved as i32,
            note: "moved rooms".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let res = eventually("resolution met", Duration::from_secs(10), || {
        clock_state(
            answered.case_id.clone(),
            fu::ClockKind::Resolution,
            fu::ClockState::Met,
        )
    })
    .await;
    assert!(res.paused_duration.unwrap().nanos > 0 || res.paused_duration.unwrap().seconds > 0);

    // --- Erasure (issue 11): the second guest phones in a complaint about their stay, in
    // their own words; head office erases them at guest-profile. Its relay tells
    // feedback-intake (GuestErased), which forgets the words and the link within seconds.
    let erased = guest_ids[1].clone();
    let words =
        "Loop1 here, call +8613900001111 or loop1@guest.test: the quokka minibar bill was wrong";
    let filed = feedback
        .submit_feedback(fb::SubmitFeedbackRequest {
            feedback: Some(fb::Feedback {
                property_id: "sh-bund".into(),
                channel: fb::FeedbackChannel::Phone as i32,
                text: words.into(),
                language: "en".into(),
                category: fb::Category::BillingPrice as i32,
                sentiment: fb::Sentiment::Negative as i32,
                stay_id: stays[1].clone(),
                ..Default::default()
            }),
            guest: Some(fb::GuestReference {
                guest_id: erased.clone(),
                ..Default::default()
            }),
            complaint: Some(fb::CaseDetails {
                description: "Loop1 says the quokka minibar was charged twice".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (filed_feedback, filed_case) = (filed.feedback.unwrap(), filed.case.unwrap());
    assert_eq!(filed_feedback.guest_id, erased);
    // The subject-access export gathers every service's share before the erasure: the
    // feedback with the guest's words, the case and its history.
    let export = eventually(
        "the export holds the guest's case",
        Duration::from_secs(15),
        || {
            let (mut g, id) = (guests.clone(), erased.clone());
            let case_id = filed_case.case_id.clone();
            async move {
                let e = g
                    .export_guest(gp::ExportGuestRequest { guest_id: id })
                    .await
                    .ok()?
                    .into_inner();
                e.json_document.contains(&case_id).then_some(e)
            }
        },
    )
    .await;
    assert!(export.gaps.is_empty(), "{:?}", export.gaps);
    let document: serde_json::Value = serde_json::from_str(&export.json_document).unwrap();
    let share = |service: &str, key: &str| document["services"][service][key].to_string();
    assert!(share("feedback-intake", "feedback").contains(&filed_feedback.feedback_id));
    assert!(share("feedback-intake", "feedback").contains("quokka minibar bill"));
    assert!(share("feedback-intake", "cases").contains(&filed_case.case_id));
    assert!(share("feedback-intake", "case_events").contains("CASE_EVENT"));
    assert!(
        document["guest_profile"]["guest"]["family_name"]
            .as_str()
            .is_some_and(|n| n.starts_with("Loop")),
        "{}",
        document["guest_profile"]
    );
    assert!(export.html_document.contains("quokka minibar bill"));
    assert!(export.html_document.starts_with("<!DOCTYPE html>"));

    let receipt = guests
        .erase_guest(gp::EraseGuestRequest {
            guest_id: erased.clone(),
            reason: "the guest asked".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .erasure
        .expect("EraseGuest answers its erasure");
    // The receipt: guest-profile's own part is done at once; the four services that got
    // GuestErased confirm through the tracker (GetGuestErasures), each with its own time.
    assert_eq!(receipt.guest_id, erased);
    assert_eq!(receipt.requested_by_role, "head_office");
    let parts = |e: &gp::Erasure| {
        e.services
            .iter()
            .map(|s| (s.service.clone(), s.state))
            .collect::<Vec<_>>()
    };
    let pending = gp::ErasureState::Pending as i32;
    let done = gp::ErasureState::Done as i32;
    assert_eq!(
        parts(&receipt),
        vec![
            ("guest-profile".to_string(), done),
            ("feedback-intake".to_string(), pending),
            ("follow-up-scheduler".to_string(), pending),
            ("metrics".to_string(), pending),
            ("notification".to_string(), pending),
        ]
    );
    let confirmed = eventually(
        "every service confirms the erasure",
        Duration::from_secs(30),
        || {
            let (mut g, id) = (guests.clone(), receipt.erasure_id.clone());
            async move {
                let e = g
                    .get_erasure(gp::GetErasureRequest { erasure_id: id })
                    .await
                    .ok()?
                    .into_inner()
                    .erasure?;
                (e.state == done).then_some(e)
            }
        },
    )
    .await;
    assert!(
        confirmed
            .services
            .iter()
            .all(|s| s.state == done && s.erase_time.is_some() && s.detail.is_empty())
    );
    assert_eq!(confirmed.services.len(), 5);
    assert!(confirmed.complete_time.is_some());
    // Exported again, the erased guest's words are nowhere.
    let after = guests
        .export_guest(gp::ExportGuestRequest {
            guest_id: erased.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    for secret in ["quokka", "loop1@guest.test", "8613900001111"] {
        assert!(!after.json_document.contains(secret), "{secret}");
        assert!(!after.html_document.contains(secret), "{secret}");
    }
    let erased_answers = || {
        let (mut f, fid, cid) = (
            feedback.clone(),
            filed_feedback.feedback_id.clone(),
            filed_case.case_id.clone(),
        );
        async move {
            let item = f
                .get_feedback(fb::GetFeedbackRequest { feedback_id: fid })
                .await
                .ok()?;
            let case = f
                .get_case(fb::GetCaseRequest {
                    case_id: cid.clone(),
                })
                .await
                .ok()?;
            let history = f
                .list_case_events(fb::ListCaseEventsRequest {
                    case_id: cid,
                    page: None,
                })
                .await
                .ok()?;
            Some(format!("{item:?}\n{case:?}\n{history:?}"))
        }
    };
    let said = eventually(
        "feedback-intake forgets the erased guest",
        Duration::from_secs(15),
        || {
            let f = erased_answers();
            async move { f.await.filter(|s| !s.contains("quokka")) }
        },
    )
    .await;
    for secret in [
        "Loop1",
        "loop1@guest.test",
        "8613900001111",
        "quokka",
        erased.as_str(),
    ] {
        assert!(!said.contains(secret), "{secret} still answered:\n{said}");
    }
    assert!(said.contains("[erased]"), "{said}");

    for s in platform.services.iter_mut().rev() {
        let status = s.stop(Duration::from_secs(25)).unwrap().unwrap();
        assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            s.name,
            s.log_tail()
        );
    }
}
