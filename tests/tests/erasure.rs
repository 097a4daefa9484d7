//! Guest erasure across the five services as separate processes (issue 11), as in
//! production: guest-profile's relay delivers GuestErased to feedback-intake,
//! follow-up-scheduler, notification and metrics, and its erasure tracker asks each of them
//! (EventIngestService.GetGuestErasures, every `erasure.check_interval`) until all have
//! confirmed, marking a silent one FAILED after `erasure.confirm_within`.
//!
//! * `an_erased_guest_leaves_nothing_personal_in_any_service`: one guest with marker names,
//!   address, phone and words goes through the whole loop (consent, a check-out and its
//!   after-stay plan, a survey e-mailed through a real SMTP server and answered, a
//!   complaint with staff notes quoting the guest, follow-up tasks and a scheduled
//!   follow-up, a message staff sent the guest). After the erasure is DONE in all five
//!   services, every read API of every service that could answer about the guest is called
//!   and none may answer a marker; the property's KPIs stay as they were.
//! * `a_service_that_was_down_confirms_late_and_the_erasure_completes`: metrics is down
//!   (behind a proxy standing for its Kubernetes Service) when a guest is erased; its part
//!   turns FAILED after `confirm_within`, the others DONE; a new metrics process behind the
//!   same address receives the event, confirms, and the erasure completes.

use chrono::{Datelike, Utc};
use guestloop_e2e::eventually;
use guestloop_proto::common::v1::{
    ConsentPurpose, ContactChannel, Date, DateRange, Money, PageRequest, Urgency,
};
use guestloop_proto::feedback::v1 as fb;
use guestloop_proto::followup::v1 as fu;
use guestloop_proto::guestprofile::v1 as gp;
use guestloop_proto::metrics::v1 as mx;
use guestloop_proto::notification::v1 as nt;
use guestloop_testkit::platform::Platform;
use guestloop_testkit::proxy::ServiceProxy;
use guestloop_testkit::{scenario, sinks};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The guest's given name, family name, e-mail address, phone and words: none of them may
/// be answered by any service once the erasure is DONE.
const GIVEN: &str = "Numbatia";
const FAMILY: &str = "Quokkason";
const EMAIL: &str = "quokka@guest.test";
const PHONE: &str = "+8613900007777";
const WORDS: &str = "the wombat lamp flickered";

/// What is searched for in every answer (ASCII, compared case-insensitively): the phone's
/// digits without the plus, and a part of the words that a redacted or cut excerpt keeps.
const MARKERS: [&str; 6] = [
    GIVEN,
    FAMILY,
    EMAIL,
    "8613900007777",
    "wombat lamp",
    "flickered",
];

const PROPERTY: &str = "sh-bund";

fn shanghai_today() -> chrono::NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
}

fn date(d: chrono::NaiveDate) -> Date {
    Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

fn timestamp(t: chrono::DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn page() -> Option<PageRequest> {
    Some(PageRequest {
        page_size: 500,
        page_token: String::new(),
    })
}

fn property_scope() -> Option<mx::Scope> {
    Some(mx::Scope {
        level: mx::ScopeLevel::Property as i32,
        id: PROPERTY.into(),
    })
}

/// The [erasure] table every test adds to its platform configuration.
fn erasure_toml(confirm_within: &str) -> String {
    format!("\n[erasure]\ncheck_interval = \"200ms\"\nconfirm_within = \"{confirm_within}\"\n")
}

/// Head-office clients of one running platform.
#[derive(Clone)]
struct Clients {
    guests: guestloop_client::GuestProfileClient,
    feedback: guestloop_client::FeedbackClient,
    scheduler: guestloop_client::FollowUpClient,
    notification: guestloop_client::NotificationClient,
    metrics: guestloop_client::MetricsClient,
}

impl Clients {
    fn of(platform: &Platform, token: &str, metrics_endpoint: Option<String>) -> Self {
        let conn = |endpoint: String| {
            guestloop_client::Connection::builder(endpoint)
                .token(token)
                .timeout(Duration::from_secs(20))
                .connect_lazy()
                .unwrap()
        };
        let at = |name: &str| platform.service(name).unwrap().endpoint();
        Self {
            guests: conn(at("guest-profile")).guest_profile(),
            feedback: conn(at("feedback-intake")).feedback(),
            scheduler: conn(at("follow-up-scheduler")).follow_up(),
            notification: conn(at("notification")).notification(),
            metrics: conn(metrics_endpoint.unwrap_or_else(|| at("metrics"))).metrics(),
        }
    }
}

/// A guest created with consent to e-mail follow-up, and a stay checked out just now.
async fn guest_with_stay(c: &mut Clients, reservation: &str) -> (String, String) {
    let today = shanghai_today();
    let guest = c
        .guests
        .create_guest(gp::CreateGuestRequest {
            property_id: PROPERTY.into(),
            guest: Some(gp::Guest {
                given_name: GIVEN.into(),
                family_name: FAMILY.into(),
                language: "en".into(),
                contacts: Some(gp::Contacts {
                    email: EMAIL.into(),
                    phone: PHONE.into(),
                    ..Default::default()
                }),
                birthday: Some(Date {
                    year: 1987,
                    month: 3,
                    day: 14,
                }),
                notes: format!("{GIVEN} told the desk that {WORDS} in her last stay"),
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .guest
        .unwrap();
    c.guests
        .set_consent(gp::SetConsentRequest {
            guest_id: guest.guest_id.clone(),
            consent: Some(gp::Consent {
                channel: ContactChannel::Email as i32,
                purpose: ConsentPurpose::ServiceFollowUp as i32,
                granted: true,
                source: "pms:check-in".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let stay = c
        .guests
        .upsert_stay(gp::UpsertStayRequest {
            stay: Some(gp::Stay {
                guest_id: guest.guest_id.clone(),
                property_id: PROPERTY.into(),
                pms_reservation_id: reservation.into(),
                status: gp::StayStatus::CheckedOut as i32,
                arrival_date: Some(date(today - chrono::Duration::days(2))),
                departure_date: Some(date(today)),
                room_number: "1208".into(),
                checked_out_time: Some(timestamp(Utc::now())),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .stay
        .unwrap();
    (guest.guest_id, stay.stay_id)
}

/// Every id the first test made, for the reads after the erasure.
#[derive(Debug, Default)]
struct Ids {
    guest: String,
    stay: String,
    survey_feedback: String,
    complaint_feedback: String,
    case: String,
    case_reference: String,
    tasks: Vec<String>,
    timers: Vec<String>,
    /// The timers about the guest (the others are the case's clocks).
    guest_timers: Vec<String>,
    custom_timer_key: String,
    messages: Vec<String>,
}

/// One answer of one read API, as `{:?}` (or the error status).
struct Answer {
    service: &'static str,
    rpc: String,
    text: String,
}

macro_rules! ask {
    ($answers:expr, $service:literal, $rpc:expr, $call:expr) => {{
        let text = match $call.await {
            Ok(r) => format!("{:?}", r.into_inner()),
            Err(s) => format!("error {:?}: {}", s.code(), s.message()),
        };
        $answers.push(Answer {
            service: $service,
            rpc: $rpc.to_string(),
            text,
        });
    }};
}

/// Calls every read API of every service that could answer something about the guest.
async fn read_everything(c: &Clients, ids: &Ids) -> Vec<Answer> {
    let mut a = Vec::new();
    let (mut g, mut f, mut s, mut n, mut m) = (
        c.guests.clone(),
        c.feedback.clone(),
        c.scheduler.clone(),
        c.notification.clone(),
        c.metrics.clone(),
    );
    let guest = ids.guest.clone();
    let stay = ids.stay.clone();
    let case = ids.case.clone();

    // guest-profile
    ask!(
        a,
        "guest-profile",
        "GetGuest(guest_id)",
        g.get_guest(gp::GetGuestRequest {
            guest_id: guest.clone()
        })
    );
    ask!(
        a,
        "guest-profile",
        "ExportGuest(guest_id)",
        g.export_guest(gp::ExportGuestRequest {
            guest_id: guest.clone()
        })
    );
    ask!(
        a,
        "guest-profile",
        "ListStays(guest_id)",
        g.list_stays(gp::ListStaysRequest {
            guest_id: guest.clone(),
            page: page(),
            ..Default::default()
        })
    );
    ask!(
        a,
        "guest-profile",
        "ListStays(property_id)",
        g.list_stays(gp::ListStaysRequest {
            property_id: PROPERTY.into(),
            page: page(),
            ..Default::default()
        })
    );
    ask!(
        a,
        "guest-profile",
        "GetStay(stay_id)",
        g.get_stay(gp::GetStayRequest {
            stay_id: stay.clone()
        })
    );
    ask!(
        a,
        "guest-profile",
        "ListGuests(property_id)",
        g.list_guests(gp::ListGuestsRequest {
            property_id: PROPERTY.into(),
            page: page(),
        })
    );
    for (what, req) in [
        (
            "email",
            gp::SearchGuestsRequest {
                email: EMAIL.into(),
                ..Default::default()
            },
        ),
        (
            "phone",
            gp::SearchGuestsRequest {
                phone: PHONE.into(),
                ..Default::default()
            },
        ),
        (
            "family name",
            gp::SearchGuestsRequest {
                name: FAMILY.into(),
                ..Default::default()
            },
        ),
        (
            "given name",
            gp::SearchGuestsRequest {
                name: GIVEN.into(),
                ..Default::default()
            },
        ),
    ] {
        ask!(
            a,
            "guest-profile",
            format!("SearchGuests({what})"),
            g.search_guests(req)
        );
    }
    ask!(
        a,
        "guest-profile",
        "FindDuplicates(guest_id)",
        g.find_duplicates(gp::FindDuplicatesRequest {
            guest_id: guest.clone()
        })
    );
    ask!(
        a,
        "guest-profile",
        "ListConsents(guest_id)",
        g.list_consents(gp::ListConsentsRequest {
            guest_id: guest.clone()
        })
    );
    ask!(
        a,
        "guest-profile",
        "GetContactPermission(guest_id, email)",
        g.get_contact_permission(gp::GetContactPermissionRequest {
            guest_id: guest.clone(),
            channel: ContactChannel::Email as i32,
            purpose: ConsentPurpose::ServiceFollowUp as i32,
        })
    );
    ask!(
        a,
        "guest-profile",
        "GetGuestCompleteness(guest_id)",
        g.get_guest_completeness(gp::GetGuestCompletenessRequest {
            guest_id: guest.clone()
        })
    );
    ask!(
        a,
        "guest-profile",
        "ListAccessLog(guest_id)",
        g.list_access_log(gp::ListAccessLogRequest {
            guest_id: guest.clone(),
            page: page(),
        })
    );
    ask!(
        a,
        "guest-profile",
        "ListErasures",
        g.list_erasures(gp::ListErasuresRequest {
            state: 0,
            page: page(),
        })
    );

    // feedback-intake
    for (what, id) in [
        ("survey", &ids.survey_feedback),
        ("complaint", &ids.complaint_feedback),
    ] {
        ask!(
            a,
            "feedback-intake",
            format!("GetFeedback({what} feedback_id)"),
            f.get_feedback(fb::GetFeedbackRequest {
                feedback_id: id.clone()
            })
        );
    }
    for (what, filter) in [
        (
            "guest_id",
            fb::FeedbackFilter {
                guest_id: guest.clone(),
                ..Default::default()
            },
        ),
        (
            "stay_id",
            fb::FeedbackFilter {
                stay_id: stay.clone(),
                ..Default::default()
            },
        ),
        (
            "property_id",
            fb::FeedbackFilter {
                property_ids: vec![PROPERTY.into()],
                ..Default::default()
            },
        ),
    ] {
        ask!(
            a,
            "feedback-intake",
            format!("ListFeedback({what})"),
            f.list_feedback(fb::ListFeedbackRequest {
                filter: Some(filter),
                page: page(),
            })
        );
    }
    for query in ["wombat", FAMILY, "flickered"] {
        ask!(
            a,
            "feedback-intake",
            format!("SearchFeedback({query:?})"),
            f.search_feedback(fb::SearchFeedbackRequest {
                query: query.into(),
                filter: Some(fb::FeedbackFilter {
                    property_ids: vec![PROPERTY.into()],
                    ..Default::default()
                }),
                page: page(),
            })
        );
        ask!(
            a,
            "feedback-intake",
            format!("SearchCases({query:?})"),
            f.search_cases(fb::SearchCasesRequest {
                query: query.into(),
                filter: Some(fb::CaseFilter {
                    property_ids: vec![PROPERTY.into()],
                    ..Default::default()
                }),
                page: page(),
            })
        );
    }
    ask!(
        a,
        "feedback-intake",
        "GetCase(case_id)",
        f.get_case(fb::GetCaseRequest {
            case_id: case.clone()
        })
    );
    ask!(
        a,
        "feedback-intake",
        "GetCase(reference)",
        f.get_case(fb::GetCaseRequest {
            case_id: ids.case_reference.clone()
        })
    );
    ask!(
        a,
        "feedback-intake",
        "ListCaseEvents(case_id)",
        f.list_case_events(fb::ListCaseEventsRequest {
            case_id: case.clone(),
            page: page(),
        })
    );
    for (what, filter) in [
        (
            "guest_id",
            fb::CaseFilter {
                guest_id: guest.clone(),
                ..Default::default()
            },
        ),
        (
            "property_id",
            fb::CaseFilter {
                property_ids: vec![PROPERTY.into()],
                ..Default::default()
            },
        ),
    ] {
        ask!(
            a,
            "feedback-intake",
            format!("ListCases({what})"),
            f.list_cases(fb::ListCasesRequest {
                filter: Some(filter),
                page: page(),
                ..Default::default()
            })
        );
    }

    // follow-up-scheduler
    for (what, req) in [
        (
            "guest_id",
            fu::ListTimersRequest {
                guest_id: guest.clone(),
                page: page(),
                ..Default::default()
            },
        ),
        (
            "stay_id",
            fu::ListTimersRequest {
                stay_id: stay.clone(),
                page: page(),
                ..Default::default()
            },
        ),
        (
            "case_id",
            fu::ListTimersRequest {
                case_id: case.clone(),
                page: page(),
                ..Default::default()
            },
        ),
        (
            "property_id",
            fu::ListTimersRequest {
                property_id: PROPERTY.into(),
                page: page(),
                ..Default::default()
            },
        ),
    ] {
        ask!(
            a,
            "follow-up-scheduler",
            format!("ListTimers({what})"),
            s.list_timers(req)
        );
    }
    ask!(
        a,
        "follow-up-scheduler",
        "GetTimer(custom key)",
        s.get_timer(fu::GetTimerRequest {
            key: ids.custom_timer_key.clone(),
            ..Default::default()
        })
    );
    for id in &ids.timers {
        ask!(
            a,
            "follow-up-scheduler",
            format!("GetTimer(timer_id {id})"),
            s.get_timer(fu::GetTimerRequest {
                timer_id: id.clone(),
                ..Default::default()
            })
        );
    }
    for (what, req) in [
        (
            "guest_id",
            fu::ListTasksRequest {
                guest_id: guest.clone(),
                page: page(),
                ..Default::default()
            },
        ),
        (
            "stay_id",
            fu::ListTasksRequest {
                stay_id: stay.clone(),
                page: page(),
                ..Default::default()
            },
        ),
        (
            "case_id",
            fu::ListTasksRequest {
                case_id: case.clone(),
                page: page(),
                ..Default::default()
            },
        ),
        (
            "property_id",
            fu::ListTasksRequest {
                property_id: PROPERTY.into(),
                page: page(),
                ..Default::default()
            },
        ),
    ] {
        ask!(
            a,
            "follow-up-scheduler",
            format!("ListTasks({what})"),
            s.list_tasks(req)
        );
    }
    for id in &ids.tasks {
        ask!(
            a,
            "follow-up-scheduler",
            format!("GetTask({id})"),
            s.get_task(fu::GetTaskRequest {
                task_id: id.clone()
            })
        );
    }
    ask!(
        a,
        "follow-up-scheduler",
        "GetCaseClocks(case_id)",
        s.get_case_clocks(fu::GetCaseClocksRequest {
            case_id: case.clone()
        })
    );
    ask!(
        a,
        "follow-up-scheduler",
        "GetStayClocks(stay_id)",
        s.get_stay_clocks(fu::GetStayClocksRequest {
            stay_id: stay.clone()
        })
    );

    // notification
    for (what, req) in [
        (
            "guest_id",
            nt::ListMessagesRequest {
                guest_id: guest.clone(),
                page: page(),
                ..Default::default()
            },
        ),
        (
            "stay_id",
            nt::ListMessagesRequest {
                stay_id: stay.clone(),
                page: page(),
                ..Default::default()
            },
        ),
        (
            "case_id",
            nt::ListMessagesRequest {
                case_id: case.clone(),
                page: page(),
                ..Default::default()
            },
        ),
        (
            "property_id",
            nt::ListMessagesRequest {
                property_id: PROPERTY.into(),
                page: page(),
                ..Default::default()
            },
        ),
    ] {
        ask!(
            a,
            "notification",
            format!("ListMessages({what})"),
            n.list_messages(req)
        );
    }
    for id in &ids.messages {
        ask!(
            a,
            "notification",
            format!("GetMessage({id})"),
            n.get_message(nt::GetMessageRequest {
                message_id: id.clone(),
                ..Default::default()
            })
        );
    }

    // metrics
    let today = shanghai_today();
    ask!(
        a,
        "metrics",
        "GetKpis(property, breakdowns)",
        m.get_kpis(kpis_request())
    );
    ask!(
        a,
        "metrics",
        "GetLeagueTable",
        m.get_league_table(mx::GetLeagueTableRequest {
            date_range: Some(kpi_days()),
            ..Default::default()
        })
    );
    for (what, scope) in [
        ("property", property_scope()),
        (
            "chain",
            Some(mx::Scope {
                level: mx::ScopeLevel::Chain as i32,
                id: String::new(),
            }),
        ),
    ] {
        ask!(
            a,
            "metrics",
            format!("GetVoiceOfCustomerReport({what}, today)"),
            m.get_voice_of_customer_report(mx::GetVoiceOfCustomerReportRequest {
                scope: scope.clone(),
                report_date: Some(date(today)),
                top_issue_limit: 10,
            })
        );
        ask!(
            a,
            "metrics",
            format!("RenderVoiceOfCustomerReport({what}, today)"),
            m.render_voice_of_customer_report(mx::RenderVoiceOfCustomerReportRequest {
                scope,
                report_date: Some(date(today)),
                top_issue_limit: 10,
                language: "en".into(),
            })
        );
    }
    ask!(
        a,
        "metrics",
        "ListAlerts",
        m.list_alerts(mx::ListAlertsRequest {
            page: page(),
            ..Default::default()
        })
    );
    ask!(
        a,
        "metrics",
        "ListStaffMentions(property)",
        m.list_staff_mentions(mx::ListStaffMentionsRequest {
            scope: property_scope(),
            date_range: Some(kpi_days()),
            page: page(),
        })
    );
    a
}

/// Where `answers` name a marker: one entry per answer, "service RPC: leaks [markers]",
/// then the places (with the field names around them), at most three.
fn leaks(answers: &[Answer]) -> Vec<String> {
    let mut found = Vec::new();
    for a in answers {
        let hay = a.text.to_ascii_lowercase();
        let mut hits: Vec<(usize, usize, &str)> = Vec::new();
        for marker in MARKERS {
            let needle = marker.to_ascii_lowercase();
            for (at, _) in hay.match_indices(&needle) {
                hits.push((at, at + needle.len(), marker));
            }
        }
        if hits.is_empty() {
            continue;
        }
        hits.sort();
        let markers: std::collections::BTreeSet<&str> = hits.iter().map(|h| h.2).collect();
        let mut places: Vec<(usize, usize)> = Vec::new();
        for (start, end, _) in &hits {
            let (from, to) = (start.saturating_sub(200), (end + 300).min(a.text.len()));
            match places.last_mut() {
                Some(last) if from <= last.1 => last.1 = last.1.max(to),
                _ => places.push((from, to)),
            }
        }
        let mut entry = format!(
            "{} {}: leaks {markers:?} in {} place(s)",
            a.service,
            a.rpc,
            places.len()
        );
        for (from, to) in places.iter().take(3) {
            let (from, to) = (floor_boundary(&a.text, *from), floor_boundary(&a.text, *to));
            entry.push_str(&format!("\n    …{}…", &a.text[from..to]));
        }
        found.push(entry);
    }
    found
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The KPI window: yesterday to tomorrow in the chain's time zone (covers now whatever the
/// hour, and the task due later today).
fn kpi_days() -> DateRange {
    let today = shanghai_today();
    DateRange {
        start_date: Some(date(today - chrono::Duration::days(1))),
        end_date: Some(date(today + chrono::Duration::days(1))),
    }
}

fn kpis_request() -> mx::GetKpisRequest {
    mx::GetKpisRequest {
        scope: property_scope(),
        date_range: Some(kpi_days()),
        include_breakdowns: true,
        ..Default::default()
    }
}

/// Every KPI series of the property (totals and periods), by KPI and breakdown.
type KpiTable = BTreeMap<String, (Option<mx::KpiValue>, Vec<mx::KpiPeriodValue>)>;

async fn kpi_table(m: &mut guestloop_client::MetricsClient) -> KpiTable {
    let r = m.get_kpis(kpis_request()).await.unwrap().into_inner();
    r.series
        .into_iter()
        .map(|s| {
            let kpi = mx::Kpi::try_from(s.kpi)
                .map(|k| format!("{k:?}"))
                .unwrap_or_else(|_| s.kpi.to_string());
            let key = match &s.breakdown {
                None => kpi,
                Some(b) => format!("{kpi} {:?}", b.key),
            };
            (key, (s.total, s.periods))
        })
        .collect()
}

fn total(t: &KpiTable, k: mx::Kpi) -> mx::KpiValue {
    t.get(&format!("{k:?}"))
        .and_then(|(v, _)| *v)
        .unwrap_or_default()
}

/// Reads the KPIs until two reads a second and a half apart agree.
async fn settled_kpis(m: &mut guestloop_client::MetricsClient) -> KpiTable {
    let mut last = kpi_table(m).await;
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let now = kpi_table(m).await;
        if now == last {
            return now;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the KPIs do not settle"
        );
        last = now;
    }
}

fn short(v: &Option<mx::KpiValue>) -> String {
    match v {
        None => "none".into(),
        Some(v) => format!(
            "{}/{} n={} value={:?} status={:?}",
            v.numerator,
            v.denominator,
            v.sample_size,
            v.value,
            mx::KpiStatus::try_from(v.status).unwrap_or_default()
        ),
    }
}

/// Waits until notification has handed the message to its provider.
async fn delivered(n: &guestloop_client::NotificationClient, message_id: &str) {
    eventually(
        &format!("message {message_id} SENT"),
        Duration::from_secs(30),
        || {
            let (mut n, id) = (n.clone(), message_id.to_string());
            async move {
                let m = n
                    .get_message(nt::GetMessageRequest {
                        message_id: id,
                        ..Default::default()
                    })
                    .await
                    .ok()?
                    .into_inner()
                    .message?;
                (m.status == nt::DeliveryStatus::Sent as i32
                    || m.status == nt::DeliveryStatus::Delivered as i32)
                    .then_some(())
            }
        },
    )
    .await
}

/// The mails the SMTP server accepted for the guest, once there are at least `n`.
async fn mails_to_guest(smtp: &sinks::Sink, n: usize) -> Vec<serde_json::Value> {
    eventually(
        &format!("{n} mails to {EMAIL}"),
        Duration::from_secs(20),
        || {
            let mails: Vec<_> = smtp
                .mails()
                .into_iter()
                .filter(|m| m["rcpt_tos"].to_string().contains(EMAIL))
                .collect();
            std::future::ready((mails.len() >= n).then_some(mails))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_guest_leaves_nothing_personal_in_any_service() {
    let smtp = sinks::smtp_sink();
    let config = scenario::config_toml(smtp.port) + &erasure_toml("10s");
    let spec =
        guestloop_e2e::platform_spec("erasure-all", "metrics", &config, Default::default()).await;
    let mut platform = Platform::start(&spec)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let token = guestloop_e2e::head_office_token(&spec.signing_key);
    let mut c = Clients::of(&platform, &token, None);
    let mut ids = Ids::default();

    // --- The guest checks out; the after-stay plan e-mails the survey through SMTP.
    let (guest_id, stay_id) = guest_with_stay(&mut c, "QK-1208").await;
    ids.guest = guest_id.clone();
    ids.stay = stay_id.clone();
    let key = format!("stay/{stay_id}/satisfaction_contact");
    let survey_timer = eventually("the survey is sent", Duration::from_secs(30), || {
        let (mut s, key) = (c.scheduler.clone(), key.clone());
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
            (t.state == fu::TimerState::Fired as i32 && !t.message_id.is_empty()).then_some(t)
        }
    })
    .await;
    let survey_id = survey_timer.message_id.clone();
    delivered(&c.notification, &survey_id).await;
    let mails = mails_to_guest(&smtp, 1).await;
    assert!(
        mails[0]["body"]
            .as_str()
            .unwrap_or_default()
            .contains(&stay_id),
        "the survey link names the stay: {}",
        mails[0]
    );
    ids.messages.push(survey_id.clone());

    // --- The guest answers the survey (happily, in their own words).
    let survey = c
        .feedback
        .submit_feedback(fb::SubmitFeedbackRequest {
            feedback: Some(fb::Feedback {
                property_id: PROPERTY.into(),
                channel: fb::FeedbackChannel::PostStaySurvey as i32,
                stay_id: stay_id.clone(),
                language: "en".into(),
                text: format!("Lovely stay, although {WORDS} on the first night"),
                survey: Some(fb::SurveyAnswers {
                    invitation_id: survey_id.clone(),
                    csat: Some(5),
                    nps: Some(10),
                    csi_scores: vec![fb::CsiScore {
                        dimension: fb::CsiDimension::Room as i32,
                        score: 9,
                    }],
                    text_answers: vec![fb::SurveyTextAnswer {
                        question_id: "what_went_well".into(),
                        answer: format!("{WORDS}, but the engineer fixed it - {GIVEN}"),
                    }],
                    ..Default::default()
                }),
                tags: vec!["wombat lamp".into()],
                ..Default::default()
            }),
            guest: Some(fb::GuestReference {
                guest_id: guest_id.clone(),
                ..Default::default()
            }),
            idempotency_key: format!("survey-{stay_id}"),
            complaint: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(survey.case.is_none(), "a happy answer opens no case");
    ids.survey_feedback = survey.feedback.unwrap().feedback_id;

    // --- A complaint on the phone, with staff notes quoting the guest.
    let complaint = c
        .feedback
        .submit_feedback(fb::SubmitFeedbackRequest {
            feedback: Some(fb::Feedback {
                property_id: PROPERTY.into(),
                channel: fb::FeedbackChannel::Phone as i32,
                stay_id: stay_id.clone(),
                language: "en".into(),
                text: format!(
                    "This is {GIVEN} {FAMILY} from room 1208: {WORDS} all night. \
                     Call me on {PHONE} or write to {EMAIL}"
                ),
                category: fb::Category::FacilityMaintenance as i32,
                sentiment: fb::Sentiment::Negative as i32,
                ..Default::default()
            }),
            guest: Some(fb::GuestReference {
                guest_id: guest_id.clone(),
                ..Default::default()
            }),
            idempotency_key: "qk-call-1".into(),
            complaint: Some(fb::CaseDetails {
                title: format!("{FAMILY}: {WORDS}"),
                description: format!("Ms {GIVEN} {FAMILY} says {WORDS} all night"),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let case = complaint.case.unwrap();
    ids.complaint_feedback = complaint.feedback.unwrap().feedback_id;
    ids.case = case.case_id.clone();
    ids.case_reference = case.reference.clone();
    c.feedback
        .transition_case(fb::TransitionCaseRequest {
            case_id: case.case_id.clone(),
            to_status: fb::CaseStatus::Acknowledged as i32,
            guest_contacted: true,
            contact_channel: ContactChannel::PhoneCall as i32,
            note: format!("Called Ms {FAMILY} back on {PHONE}: \"{WORDS} all night\""),
            ..Default::default()
        })
        .await
        .unwrap();
    c.feedback
        .record_case_action(fb::RecordCaseActionRequest {
            case_id: case.case_id.clone(),
            note: format!("{GIVEN} {FAMILY} wants a reply at {EMAIL} once {WORDS} is fixed"),
            compensation: Some(fb::Compensation {
                kind: fb::CompensationKind::Amenity as i32,
                value: Some(Money {
                    currency_code: "CNY".into(),
                    amount_minor: 18_800,
                }),
                description: format!("Fruit basket for Ms {FAMILY}"),
            }),
            idempotency_key: "qk-action-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    // --- Follow-up work: a call-back done, a recovery task still open, a follow-up call
    // scheduled for next week.
    let now = Utc::now();
    let callback = c
        .scheduler
        .create_task(fu::CreateTaskRequest {
            task: Some(fu::FollowUpTask {
                kind: fu::TaskKind::ComplaintCallback as i32,
                property_id: PROPERTY.into(),
                guest_id: guest_id.clone(),
                stay_id: stay_id.clone(),
                case_id: case.case_id.clone(),
                title: format!("Call {GIVEN} {FAMILY} back"),
                instructions: format!("She said {WORDS}; her phone is {PHONE}"),
                urgency: Urgency::Normal as i32,
                due_time: Some(timestamp(now + chrono::Duration::minutes(30))),
                ..Default::default()
            }),
            idempotency_key: "qk-task-callback".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    c.scheduler
        .complete_task(fu::CompleteTaskRequest {
            task_id: callback.task_id.clone(),
            outcome: fu::TaskOutcome::IssueResolved as i32,
            outcome_note: format!("Ms {FAMILY} confirmed {WORDS} no more"),
            contact_channel: ContactChannel::PhoneCall as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let recovery = c
        .scheduler
        .create_task(fu::CreateTaskRequest {
            task: Some(fu::FollowUpTask {
                kind: fu::TaskKind::ServiceRecovery as i32,
                property_id: PROPERTY.into(),
                guest_id: guest_id.clone(),
                stay_id: stay_id.clone(),
                case_id: case.case_id.clone(),
                title: format!("Send Ms {FAMILY} a new lamp"),
                instructions: format!("Write to {EMAIL} when it is on its way"),
                urgency: Urgency::Normal as i32,
                due_time: Some(timestamp(now + chrono::Duration::hours(1))),
                ..Default::default()
            }),
            idempotency_key: "qk-task-recovery".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    ids.tasks = vec![callback.task_id.clone(), recovery.task_id.clone()];
    ids.custom_timer_key = format!("care/{guest_id}/next-week-call");
    c.scheduler
        .schedule_timer(fu::ScheduleTimerRequest {
            timer: Some(fu::Timer {
                key: ids.custom_timer_key.clone(),
                purpose: fu::TimerPurpose::Custom as i32,
                property_id: PROPERTY.into(),
                guest_id: guest_id.clone(),
                stay_id: stay_id.clone(),
                case_id: case.case_id.clone(),
                due_time: Some(timestamp(now + chrono::Duration::days(7))),
                action: Some(fu::TimerAction {
                    action: Some(fu::timer_action::Action::CreateTask(fu::CreateTaskAction {
                        kind: fu::TaskKind::PostStayFollowUp as i32,
                        title: format!("Ask Ms {FAMILY} about the lamp"),
                        instructions: format!("She told us {WORDS}; call {PHONE}"),
                        due_after: Some(prost_types::Duration {
                            seconds: 86_400,
                            nanos: 0,
                        }),
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap();

    // --- Staff write to the guest that it is resolved; the mail goes out through SMTP.
    let resolved = c
        .notification
        .send_message(nt::SendMessageRequest {
            idempotency_key: format!("resolved-{}", case.case_id),
            message: Some(nt::MessageSpec {
                recipient: Some(nt::Recipient {
                    kind: Some(nt::recipient::Kind::Guest(nt::GuestRecipient {
                        guest_id: guest_id.clone(),
                    })),
                }),
                kind: nt::MessageKind::ComplaintResolved as i32,
                variables: [
                    ("case_reference".to_string(), case.reference.clone()),
                    (
                        "resolution".to_string(),
                        format!("Ms {FAMILY}, {WORDS} no more: we replaced it"),
                    ),
                ]
                .into_iter()
                .collect(),
                channel_preference: vec![ContactChannel::Email as i32],
                purpose: ConsentPurpose::ServiceFollowUp as i32,
                property_id: PROPERTY.into(),
                case_id: case.case_id.clone(),
                stay_id: stay_id.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    delivered(&c.notification, &resolved.message_id).await;
    let mails = mails_to_guest(&smtp, 2).await;
    assert!(
        mails
            .iter()
            .any(|m| m["body"].as_str().unwrap_or_default().contains(FAMILY)),
        "the guest got the resolution by name: {mails:?}"
    );
    ids.messages.push(resolved.message_id.clone());
    c.feedback
        .transition_case(fb::TransitionCaseRequest {
            case_id: case.case_id.clone(),
            to_status: fb::CaseStatus::Resolved as i32,
            note: format!("Replaced the lamp for {GIVEN} {FAMILY}"),
            ..Default::default()
        })
        .await
        .unwrap();

    // --- Metrics has it all: the answer, both feedback items, the case with both clocks
    // done, the survey contact and both tasks. Then the KPIs before the erasure.
    eventually("metrics to catch up", Duration::from_secs(60), || {
        let mut m = c.metrics.clone();
        async move {
            let t = kpi_table(&mut m).await;
            let tasks = total(&t, mx::Kpi::FollowUpCompletionRate);
            (total(&t, mx::Kpi::Csat).sample_size >= 1
                && total(&t, mx::Kpi::Nps).sample_size >= 1
                && total(&t, mx::Kpi::FeedbackVolume).numerator >= 2
                && total(&t, mx::Kpi::ComplaintVolume).numerator >= 1
                && total(&t, mx::Kpi::SlaComplianceRate).sample_size >= 1
                && total(&t, mx::Kpi::SatisfactionContactWithin48hRate).numerator >= 1
                && tasks.denominator >= 2
                && tasks.numerator >= 1)
                .then_some(())
        }
    })
    .await;
    let before = settled_kpis(&mut c.metrics).await;

    // Every timer of the guest, stay and case, to ask for each by id afterwards.
    for req in [
        fu::ListTimersRequest {
            guest_id: guest_id.clone(),
            page: page(),
            ..Default::default()
        },
        fu::ListTimersRequest {
            stay_id: stay_id.clone(),
            page: page(),
            ..Default::default()
        },
        fu::ListTimersRequest {
            case_id: case.case_id.clone(),
            page: page(),
            ..Default::default()
        },
    ] {
        for t in c
            .scheduler
            .list_timers(req)
            .await
            .unwrap()
            .into_inner()
            .timers
        {
            if t.guest_id == ids.guest && !ids.guest_timers.contains(&t.timer_id) {
                ids.guest_timers.push(t.timer_id.clone());
            }
            if !ids.timers.contains(&t.timer_id) {
                ids.timers.push(t.timer_id);
            }
        }
    }
    let pending_plan = c
        .scheduler
        .get_stay_clocks(fu::GetStayClocksRequest {
            stay_id: stay_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        pending_plan
            .clocks
            .iter()
            .any(|k| k.kind == fu::ClockKind::PostStayFollowUp as i32
                && k.state == fu::ClockState::Running as i32),
        "the 7-day follow-up is pending: {pending_plan:?}"
    );
    for req in [
        nt::ListMessagesRequest {
            guest_id: guest_id.clone(),
            page: page(),
            ..Default::default()
        },
        nt::ListMessagesRequest {
            case_id: case.case_id.clone(),
            page: page(),
            ..Default::default()
        },
    ] {
        for msg in c
            .notification
            .list_messages(req)
            .await
            .unwrap()
            .into_inner()
            .messages
        {
            if !ids.messages.contains(&msg.message_id) {
                ids.messages.push(msg.message_id);
            }
        }
    }

    // Where the markers are before the erasure: the test's data reached each service.
    let answered_before = read_everything(&c, &ids).await;
    let mut holders: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for a in &answered_before {
        let hay = a.text.to_ascii_lowercase();
        let found: Vec<&str> = MARKERS
            .iter()
            .copied()
            .filter(|m| hay.contains(&m.to_ascii_lowercase()))
            .collect();
        if !found.is_empty() {
            holders
                .entry(a.service)
                .or_default()
                .push(format!("{} {found:?}", a.rpc));
        }
    }
    eprintln!("before the erasure, markers answered by:");
    for (service, rpcs) in &holders {
        eprintln!("  {service}:");
        for r in rpcs {
            eprintln!("    {r}");
        }
    }
    for service in ["guest-profile", "feedback-intake", "follow-up-scheduler"] {
        assert!(
            holders.contains_key(service),
            "{service} held none of the guest's data before the erasure"
        );
    }

    // The subject-access export made before the erasure holds every item above, each in
    // its service's share: the stay, the survey answer and the complaint, the case and its
    // history, the tasks and timers, the messages.
    let export = c
        .guests
        .clone()
        .export_guest(gp::ExportGuestRequest {
            guest_id: ids.guest.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(export.gaps.is_empty(), "{:?}", export.gaps);
    let document: serde_json::Value = serde_json::from_str(&export.json_document).unwrap();
    let part = |path: &[&str]| path.iter().fold(&document, |v, k| &v[*k]).to_string();
    let mut wanted: Vec<(&[&str], &String)> = vec![
        (&["guest_profile", "stays"], &ids.stay),
        (
            &["services", "feedback-intake", "feedback"],
            &ids.survey_feedback,
        ),
        (
            &["services", "feedback-intake", "feedback"],
            &ids.complaint_feedback,
        ),
        (&["services", "feedback-intake", "cases"], &ids.case),
        (&["services", "feedback-intake", "case_events"], &ids.case),
    ];
    wanted.extend(
        ids.tasks
            .iter()
            .map(|t| (&["services", "follow-up-scheduler", "tasks"][..], t)),
    );
    wanted.extend(
        ids.guest_timers
            .iter()
            .map(|t| (&["services", "follow-up-scheduler", "timers"][..], t)),
    );
    wanted.extend(
        ids.messages
            .iter()
            .map(|m| (&["services", "notification", "messages"][..], m)),
    );
    assert!(
        !ids.tasks.is_empty() && !ids.guest_timers.is_empty() && !ids.messages.is_empty(),
        "{ids:?}"
    );
    for (path, id) in wanted {
        assert!(
            part(path).contains(id.as_str()),
            "{id} not in the export's {path:?}"
        );
    }
    for marker in [FAMILY, EMAIL, WORDS] {
        assert!(
            export.json_document.contains(marker),
            "{marker} not exported"
        );
        assert!(
            export.html_document.contains(marker),
            "{marker} not on the export page"
        );
    }

    // --- Head office erases the guest; every service confirms.
    let receipt = c
        .guests
        .erase_guest(gp::EraseGuestRequest {
            guest_id: guest_id.clone(),
            reason: "the guest asked by letter".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .erasure
        .expect("EraseGuest answers its erasure");
    let done = gp::ErasureState::Done as i32;
    let confirmed = eventually(
        "all five services confirm the erasure",
        Duration::from_secs(30),
        || {
            let (mut g, id) = (c.guests.clone(), receipt.erasure_id.clone());
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
    let mut parts: Vec<(String, i32)> = confirmed
        .services
        .iter()
        .map(|s| (s.service.clone(), s.state))
        .collect();
    parts.sort();
    assert_eq!(
        parts,
        vec![
            ("feedback-intake".to_string(), done),
            ("follow-up-scheduler".to_string(), done),
            ("guest-profile".to_string(), done),
            ("metrics".to_string(), done),
            ("notification".to_string(), done),
        ],
        "{confirmed:?}"
    );
    assert!(confirmed.complete_time.is_some(), "{confirmed:?}");
    let secs = |t: Option<prost_types::Timestamp>| {
        t.map_or(0.0, |t| t.seconds as f64 + f64::from(t.nanos) / 1e9)
    };
    eprintln!(
        "erasure DONE {:.2}s after the request",
        secs(confirmed.complete_time) - secs(receipt.request_time)
    );

    // --- Whatever the erasure sets off (the scheduler's task cancellations reaching
    // metrics) has landed once the KPIs settle; then every read API is asked.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = settled_kpis(&mut c.metrics).await;
    let answered = read_everything(&c, &ids).await;
    let still_naming_guest_id: Vec<String> = answered
        .iter()
        .filter(|a| a.text.contains(&guest_id))
        .map(|a| format!("{} {}", a.service, a.rpc))
        .collect();
    eprintln!(
        "after the erasure, answers still naming the erased guest's id (pseudonymous, not \
         asserted): {still_naming_guest_id:#?}"
    );
    let leaked = leaks(&answered);

    // --- The KPIs: the erasure changes none. The open task it cancels stays in the
    // follow-up completion denominator as not completed (metrics ignores a cancellation
    // whose reason is guest_erased), where an ordinary cancellation would take it out.
    let mut changed = Vec::new();
    for key in before.keys().chain(after.keys()) {
        let (b, a) = (before.get(key), after.get(key));
        if b != a && !changed.iter().any(|(k, _, _)| k == key) {
            changed.push((
                key.clone(),
                b.map(|v| short(&v.0)).unwrap_or("absent".into()),
                a.map(|v| short(&v.0)).unwrap_or("absent".into()),
            ));
        }
    }
    for (key, b, a) in &changed {
        eprintln!("KPI changed by the erasure: {key}: {b} -> {a}");
    }

    for s in platform.services.iter_mut().rev() {
        let status = s.stop(Duration::from_secs(25)).unwrap().unwrap();
        assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            s.name,
            s.log_tail()
        );
    }

    // Every finding in one report, so a leak does not hide a KPI that moved.
    let mut problems = Vec::new();
    if !leaked.is_empty() {
        problems.push(format!(
            "{} answers still carry the erased guest's personal data:\n{}",
            leaked.len(),
            leaked.join("\n")
        ));
    }
    for (key, b, a) in &changed {
        problems.push(format!("KPI {key} changed by the erasure: {b} -> {a}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_was_down_confirms_late_and_the_erasure_completes() {
    // metrics behind a proxy, as behind its Kubernetes Service: the relay and the tracker
    // reach whichever process is behind it.
    let proxy = ServiceProxy::start().await.expect("a proxy");
    let config = guestloop_testkit::TEST_CHAIN_TOML.to_string()
        + "\n[outbox]\npoll_interval = \"100ms\"\n"
        + &erasure_toml("3s");
    let spec = guestloop_e2e::platform_spec(
        "erasure-late",
        "metrics",
        &config,
        [("GUESTLOOP__PEERS__METRICS".to_string(), proxy.endpoint())]
            .into_iter()
            .collect(),
    )
    .await;
    let mut platform = Platform::start(&spec)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let first_metrics = platform.service("metrics").unwrap().grpc_port;
    proxy.set_backends(&[first_metrics]);
    let token = guestloop_e2e::head_office_token(&spec.signing_key);
    let mut c = Clients::of(&platform, &token, Some(proxy.endpoint()));

    // metrics goes down.
    let at = platform
        .services
        .iter()
        .position(|s| s.name == "metrics")
        .unwrap();
    let mut stopped = platform.services.remove(at);
    let status = stopped.stop(Duration::from_secs(25)).unwrap().unwrap();
    assert!(status.success(), "metrics exited with {status}");
    proxy.reset_connections();

    let (guest_id, _stay) = guest_with_stay(&mut c, "QK-LATE").await;
    let receipt = c
        .guests
        .erase_guest(gp::EraseGuestRequest {
            guest_id: guest_id.clone(),
            reason: "the guest asked".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .erasure
        .unwrap();
    let guests = c.guests.clone();
    let erasure = |want: fn(&gp::Erasure) -> bool| {
        let (g, id) = (guests.clone(), receipt.erasure_id.clone());
        move || {
            let (mut g, id) = (g.clone(), id.clone());
            async move {
                let e = g
                    .get_erasure(gp::GetErasureRequest { erasure_id: id })
                    .await
                    .ok()?
                    .into_inner()
                    .erasure?;
                want(&e).then_some(e)
            }
        }
    };
    let part = |e: &gp::Erasure, name: &str| {
        e.services
            .iter()
            .find(|s| s.service == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} part in {e:?}"))
    };
    let (done, failed) = (
        gp::ErasureState::Done as i32,
        gp::ErasureState::Failed as i32,
    );

    // Past confirm_within: metrics FAILED with why, the four others DONE, the erasure FAILED.
    let down = eventually(
        "the erasure FAILED on metrics alone",
        Duration::from_secs(30),
        erasure(|e| {
            e.state == gp::ErasureState::Failed as i32
                && e.services.iter().all(|s| {
                    (s.service == "metrics") == (s.state == gp::ErasureState::Failed as i32)
                        && (s.service == "metrics" || s.state == gp::ErasureState::Done as i32)
                })
        }),
    )
    .await;
    assert_eq!(down.services.len(), 5, "{down:?}");
    let metrics_part = part(&down, "metrics");
    assert_eq!(metrics_part.state, failed);
    assert!(
        !metrics_part.detail.is_empty(),
        "a failed part says why: {metrics_part:?}"
    );
    assert!(metrics_part.erase_time.is_none(), "{metrics_part:?}");
    assert!(down.complete_time.is_none(), "{down:?}");
    for s in down.services.iter().filter(|s| s.service != "metrics") {
        assert_eq!(s.state, done, "{s:?}");
        assert!(s.erase_time.is_some(), "{s:?}");
    }
    let failed_list = c
        .guests
        .list_erasures(gp::ListErasuresRequest {
            state: failed,
            page: page(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        failed_list
            .erasures
            .iter()
            .any(|e| e.erasure_id == receipt.erasure_id),
        "the failed erasure is on head office's work list: {failed_list:?}"
    );
    eprintln!("metrics part while down: {:?}", metrics_part.detail);

    // metrics comes back behind the same address: it receives the GuestErased event,
    // confirms, and the erasure completes.
    let replica = platform
        .replica(&spec, "metrics")
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    proxy.set_backends(&[replica.grpc_port]);
    proxy.reset_connections();
    let complete = eventually(
        "the erasure completes once metrics confirms",
        Duration::from_secs(30),
        erasure(|e| e.state == gp::ErasureState::Done as i32),
    )
    .await;
    assert!(complete.complete_time.is_some(), "{complete:?}");
    for s in &complete.services {
        assert_eq!(s.state, done, "{s:?}");
        assert!(s.erase_time.is_some(), "{s:?}");
        assert!(s.detail.is_empty(), "{s:?}");
    }
    let late = part(&complete, "metrics");
    assert!(
        late.erase_time.unwrap().seconds >= metrics_part.last_check_time.unwrap().seconds,
        "metrics erased after it was last found silent: {late:?} / {metrics_part:?}"
    );
    // Nothing on the failed list any more.
    let failed_list = c
        .guests
        .list_erasures(gp::ListErasuresRequest {
            state: failed,
            page: page(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !failed_list
            .erasures
            .iter()
            .any(|e| e.erasure_id == receipt.erasure_id),
        "{failed_list:?}"
    );

    platform.services.push(replica);
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
