//! The closed loop played against a running platform (issue 5): the end-to-end test and
//! the local demo (`guestloop-local --demo`) play the same scenario. A small chain (2
//! regions, 4 properties) with SLA durations in seconds: guests check out, the scheduler
//! sends their satisfaction surveys through notification (a real SMTP server takes them),
//! some answer badly and cases open, half of those are acknowledged at once and half left
//! to breach (the ladder escalates and alerts), then all are resolved. `play` returns what
//! the scenario did, so the caller can compute the KPIs on its own and compare.

use anyhow::{Context, bail};
use guestloop_client::Connection;
use guestloop_proto::common::v1::{ConsentPurpose, ContactChannel, Date, DateRange, PageRequest};
use guestloop_proto::feedback::v1 as fb;
use guestloop_proto::followup::v1 as fu;
use guestloop_proto::guestprofile::v1 as gp;
use guestloop_proto::metrics::v1 as mx;
use guestloop_proto::notification::v1 as nt;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const PROPERTIES: [(&str, &str, &str, &str); 4] = [
    ("sh-bund", "Shanghai Bund", "east", "Asia/Shanghai"),
    ("hz-lake", "Hangzhou West Lake", "east", "Asia/Shanghai"),
    ("hk-harbour", "Hong Kong Harbour", "south", "Asia/Hong_Kong"),
    ("sz-bay", "Shenzhen Bay", "south", "Asia/Shanghai"),
];

/// The platform configuration of the scenario: the chain with quiet hours away from now,
/// working hours all day, SLA durations in seconds, fast polling, an SMTP provider on
/// `smtp_port`, and one member of staff per role at each property.
pub fn config_toml(smtp_port: u16) -> String {
    use chrono::Timelike;
    let local = (chrono::Utc::now().hour() + 8) % 24; // every property is UTC+8
    let mut s = String::from(
        r#"[chain]
name = "Guestloop Demo Hotels"
[[chain.regions]]
id = "east"
name = "East China"
[[chain.regions]]
id = "south"
name = "South China"
"#,
    );
    for (id, name, region, tz) in PROPERTIES {
        s.push_str(&format!(
            r#"[[chain.properties]]
id = "{id}"
name = "{name}"
region = "{region}"
time_zone = "{tz}"
default_language = "en"
quiet_hours = {{ start = "{:02}:00", end = "{:02}:00" }}
working_hours = {{ start = "00:00", end = "23:59" }}
"#,
            (local + 8) % 24,
            (local + 9) % 24
        ));
    }
    s.push_str(&format!(
        r#"
[standards.default]
first_response_normal = "3s"
first_response_urgent = "2s"
resolution = "120s"
sla_warning_at = 0.5
escalation_steps = ["4s", "4s", "4s"]

[outbox]
poll_interval = "100ms"
batch_size = 200

[timers]
poll_interval = "100ms"
batch_size = 100
lease = "10s"
action_timeout = "3s"
retry_delay = "500ms"

[plan]
satisfaction_delay = "1s"
contact_hours = {{ start = "00:00", end = "23:59" }}
birthday_care = false

[delivery]
poll_interval = "100ms"
batch_size = 100
backoff_base = "200ms"
backoff_max = "2s"
guest_channels = ["email"]

[providers.smtp]
host = "127.0.0.1"
port = {smtp_port}
from = "care@guestloop.test"

[kpis]
min_sample = 5
gauge_interval = "1s"

[kpi_alerts]
interval = "1s"

[improvement]
propose_interval = "2s"
"#
    ));
    let roles = [
        ("fd", "front_desk"),
        ("dm", "duty_manager"),
        ("csm", "customer_service_manager"),
        ("gm", "general_manager"),
        ("pm", "property_manager"),
    ];
    for (id, ..) in PROPERTIES {
        for (short, role) in roles {
            s.push_str(&format!(
                "[[staff]]\nstaff_id = \"{id}-{short}\"\nname = \"{short} {id}\"\nproperty_id = \"{id}\"\nroles = [\"{role}\"]\nemail = \"{short}@{id}.test\"\nlanguage = \"en\"\n"
            ));
        }
        s.push_str(&format!(
            "[[staff]]\nstaff_id = \"{id}-dh\"\nname = \"dh {id}\"\nproperty_id = \"{id}\"\nroles = [\"department_head\"]\nemail = \"dh@{id}.test\"\nlanguage = \"en\"\n"
        ));
    }
    s
}

/// What unhappy guests write (the classifier sorts them into categories).
const COMPLAINTS: [&str; 5] = [
    "The room was noisy and nobody came to help",
    "The bathroom was dirty and the towels smelled",
    "Breakfast was cold and the waiter ignored us",
    "The air conditioning was broken all night",
    "We were charged twice for the minibar",
];

/// Where the services listen.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub guest_profile: String,
    pub feedback_intake: String,
    pub follow_up_scheduler: String,
    pub notification: String,
    pub metrics: String,
}

impl Endpoints {
    /// Each service of a running platform, at its own address.
    pub fn of(platform: &crate::platform::Platform) -> Self {
        let url = |n: &str| {
            platform
                .service(n)
                .map(|s| s.endpoint())
                .unwrap_or_default()
        };
        Self {
            guest_profile: url("guest-profile"),
            feedback_intake: url("feedback-intake"),
            follow_up_scheduler: url("follow-up-scheduler"),
            notification: url("notification"),
            metrics: url("metrics"),
        }
    }
}

/// What the scenario did at one property, for the caller's own KPI arithmetic.
#[derive(Debug, Clone, Default)]
pub struct PropertyPlay {
    pub stays: i64,
    /// Guests who consented to e-mail follow-up (their survey is sent).
    pub consenting: i64,
    /// Guests whose profile had every required field at check-out.
    pub complete: i64,
    /// (CSAT 1-5, NPS 0-10) of every answer.
    pub answers: Vec<(i32, i32)>,
    /// Cases opened by low answers: (case id, acknowledged at once).
    pub cases: Vec<(String, bool)>,
}

#[derive(Debug, Clone, Default)]
pub struct Played {
    /// The chain's local day the scenario started on.
    pub first_day: Date,
    pub properties: BTreeMap<String, PropertyPlay>,
    /// Escalation hops the scheduler made on the ignored cases.
    pub hops: i64,
    pub elapsed: Duration,
}

/// A deterministic pseudo-random sequence (no dependency, same run every time).
pub(crate) struct Lcg(pub(crate) u64);
impl Lcg {
    pub(crate) fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

async fn eventually<T, F, Fut>(what: &str, within: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if start.elapsed() > within {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn today() -> Date {
    use chrono::Datelike;
    let d = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

/// Today's date range (local; every property is UTC+8).
impl Played {
    /// The local days the scenario ran over. A run that crosses midnight in Shanghai (16:00
    /// UTC) checks guests out on one day and surveys them on the next; a KPI over "today"
    /// alone then missed every survey (seen in CI: "surveys counted 0/210").
    pub fn days(&self) -> DateRange {
        DateRange {
            start_date: Some(self.first_day),
            end_date: Some(today()),
        }
    }
}

pub fn today_range() -> DateRange {
    DateRange {
        start_date: Some(today()),
        end_date: Some(today()),
    }
}

/// The chain's totals of `kpis` over `days`, in that order (zero where there is none).
pub async fn chain_totals(
    metrics: &mut guestloop_client::MetricsClient,
    days: DateRange,
    kpis: &[mx::Kpi],
) -> anyhow::Result<Vec<mx::KpiValue>> {
    let r = metrics
        .get_kpis(mx::GetKpisRequest {
            scope: Some(mx::Scope {
                level: mx::ScopeLevel::Chain as i32,
                id: String::new(),
            }),
            date_range: Some(days),
            kpis: kpis.iter().map(|k| *k as i32).collect(),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(kpis
        .iter()
        .map(|k| {
            r.series
                .iter()
                .find(|s| s.kpi == *k as i32 && s.breakdown.is_none())
                .and_then(|s| s.total)
                .unwrap_or_default()
        })
        .collect())
}

/// Satisfaction surveys SENT so far at the scenario's properties.
async fn sent_surveys(mut n: guestloop_client::NotificationClient) -> anyhow::Result<i64> {
    let mut sent = 0i64;
    for (property, ..) in PROPERTIES {
        let mut token = String::new();
        loop {
            let r = n
                .list_messages(nt::ListMessagesRequest {
                    property_id: property.into(),
                    statuses: vec![nt::DeliveryStatus::Sent as i32],
                    kinds: vec![nt::MessageKind::SatisfactionSurvey as i32],
                    page: Some(PageRequest {
                        page_size: 500,
                        page_token: token.clone(),
                    }),
                    ..Default::default()
                })
                .await?
                .into_inner();
            sent += r.messages.len() as i64;
            if r.next_page_token.is_empty() {
                break;
            }
            token = r.next_page_token;
        }
    }
    Ok(sent)
}

/// Plays the scenario with `guests` guests per property; `token` is a head-office token.
pub async fn play(e: &Endpoints, token: &str, guests: usize, seed: u64) -> anyhow::Result<Played> {
    let started = Instant::now();
    let conn = |url: &str| -> anyhow::Result<Connection> {
        Ok(Connection::builder(url.to_string())
            .token(token)
            .timeout(Duration::from_secs(30))
            .connect_lazy()?)
    };
    let mut profile = conn(&e.guest_profile)?.guest_profile();
    let mut feedback = conn(&e.feedback_intake)?.feedback();
    let scheduler = conn(&e.follow_up_scheduler)?.follow_up();
    let notification = conn(&e.notification)?.notification();
    let metrics = conn(&e.metrics)?.metrics();
    let mut rng = Lcg(seed);
    let mut played = Played {
        first_day: today(),
        ..Default::default()
    };
    let run = uuid::Uuid::now_v7().simple().to_string();

    let surveys_before = sent_surveys(notification.clone()).await?;

    // 1. Check-outs. Nine in ten guests consent to e-mail follow-up.
    let mut stays = Vec::new();
    for (property, ..) in PROPERTIES {
        let p = played.properties.entry(property.to_string()).or_default();
        for i in 0..guests {
            // One in three profiles is complete: phone and birthday too.
            let complete = i % 3 == 0;
            let guest = profile
                .create_guest(gp::CreateGuestRequest {
                    property_id: property.into(),
                    guest: Some(gp::Guest {
                        given_name: format!("Guest{i}"),
                        family_name: format!("Demo-{property}"),
                        language: "en".into(),
                        contacts: Some(gp::Contacts {
                            email: format!("g{i}.{property}.{run}@guest.test"),
                            phone: if complete {
                                format!("+86139{:08}", rng.next(100_000_000))
                            } else {
                                String::new()
                            },
                            ..Default::default()
                        }),
                        birthday: complete.then_some(Date {
                            year: 1985,
                            month: 5,
                            day: 17,
                        }),
                        ..Default::default()
                    }),
                    idempotency_key: String::new(),
                })
                .await
                .context("CreateGuest")?
                .into_inner()
                .guest
                .context("a guest")?;
            let consent = rng.next(10) != 0;
            if consent {
                profile
                    .set_consent(gp::SetConsentRequest {
                        guest_id: guest.guest_id.clone(),
                        consent: Some(gp::Consent {
                            channel: ContactChannel::Email as i32,
                            purpose: ConsentPurpose::ServiceFollowUp as i32,
                            granted: true,
                            source: "demo".into(),
                            ..Default::default()
                        }),
                    })
                    .await
                    .context("SetConsent")?;
                p.consenting += 1;
            }
            let date = |day| {
                Some(Date {
                    year: 2026,
                    month: 11,
                    day,
                })
            };
            let stay = profile
                .upsert_stay(gp::UpsertStayRequest {
                    stay: Some(gp::Stay {
                        guest_id: guest.guest_id.clone(),
                        property_id: property.into(),
                        pms_reservation_id: format!("{run}-{i}"),
                        status: gp::StayStatus::CheckedOut as i32,
                        arrival_date: date(20),
                        departure_date: date(22),
                        ..Default::default()
                    }),
                })
                .await
                .context("UpsertStay")?
                .into_inner()
                .stay
                .context("a stay")?;
            p.stays += 1;
            p.complete += i64::from(complete);
            if consent {
                stays.push((property, guest.guest_id, stay.stay_id));
            }
        }
    }

    // 2. The surveys go out: every consenting guest's invitation is SENT over SMTP (counted
    // on top of those sent before this play, so plays on one platform add up).
    let expected: i64 = played.properties.values().map(|p| p.consenting).sum();
    eventually("the satisfaction surveys", Duration::from_secs(90), || {
        let n = notification.clone();
        async move { Ok((sent_surveys(n).await? >= surveys_before + expected).then_some(())) }
    })
    .await?;

    // 3. Guests answer; about one in six badly (CSAT <= 2 or NPS <= 6 opens a case).
    for (property, guest_id, stay_id) in &stays {
        let bad = rng.next(6) == 0;
        let (csat, nps) = if bad {
            (1 + rng.next(2) as i32, rng.next(7) as i32)
        } else {
            (3 + rng.next(3) as i32, 7 + rng.next(4) as i32)
        };
        let r = feedback
            .submit_feedback(fb::SubmitFeedbackRequest {
                feedback: Some(fb::Feedback {
                    property_id: property.to_string(),
                    channel: fb::FeedbackChannel::PostStaySurvey as i32,
                    stay_id: stay_id.clone(),
                    language: "en".into(),
                    text: if bad {
                        COMPLAINTS[rng.next(COMPLAINTS.len() as u64) as usize].into()
                    } else {
                        String::new()
                    },
                    survey: Some(fb::SurveyAnswers {
                        csat: Some(csat),
                        nps: Some(nps),
                        ..Default::default()
                    }),
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
            .context("SubmitFeedback")?
            .into_inner();
        let p = played.properties.get_mut(*property).expect("a property");
        p.answers.push((csat, nps));
        if let Some(case) = r.case {
            // Half the cases are acknowledged at once; the other half wait past their
            // first-response deadline.
            let at_once = p.cases.len().is_multiple_of(2);
            if at_once {
                transition(&mut feedback, &case.case_id, fb::CaseStatus::Acknowledged).await?;
            }
            p.cases.push((case.case_id, at_once));
        }
    }

    // 4. The ignored cases breach and climb the ladder.
    let ignored: Vec<String> = played
        .properties
        .values()
        .flat_map(|p| p.cases.iter().filter(|(_, a)| !a).map(|(c, _)| c.clone()))
        .collect();
    for case_id in &ignored {
        let hops = eventually("an escalation", Duration::from_secs(60), || {
            let mut s = scheduler.clone();
            let case_id = case_id.clone();
            async move {
                // NOT_FOUND until the scheduler has the case's event (a case opened just
                // before this step may still be in feedback-intake's outbox).
                let c = match s
                    .get_case_clocks(fu::GetCaseClocksRequest { case_id })
                    .await
                {
                    Ok(c) => c.into_inner(),
                    Err(e) if e.code() == tonic::Code::NotFound => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                Ok((!c.hops.is_empty()).then_some(c.hops.len() as i64))
            }
        })
        .await?;
        played.hops += hops;
    }

    // 5. Everything is resolved.
    for p in played.properties.values() {
        for (case_id, at_once) in &p.cases {
            if !at_once {
                transition(&mut feedback, case_id, fb::CaseStatus::Acknowledged).await?;
            }
            transition(&mut feedback, case_id, fb::CaseStatus::Resolved).await?;
        }
    }

    // 6. Metrics has seen it all: every answer, case and both clocks of every case.
    let answers: i64 = played
        .properties
        .values()
        .map(|p| p.answers.len() as i64)
        .sum();
    let cases: i64 = played
        .properties
        .values()
        .map(|p| p.cases.len() as i64)
        .sum();
    let progress = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let days = played.days();
    let waited = eventually("metrics to catch up", Duration::from_secs(120), || {
        let progress = progress.clone();
        let mut m = metrics.clone();
        async move {
            let kpis = [
                mx::Kpi::Csat,
                mx::Kpi::ComplaintVolume,
                mx::Kpi::SlaComplianceRate,
                mx::Kpi::SatisfactionContactWithin48hRate,
            ];
            let values = chain_totals(&mut m, days, &kpis).await?;
            let total = |k: mx::Kpi| values[kpis.iter().position(|x| *x == k).expect("asked")];
            let n = |k: mx::Kpi| total(k).sample_size;
            let contacted = total(mx::Kpi::SatisfactionContactWithin48hRate).numerator;
            tracing::debug!(
                csat = n(mx::Kpi::Csat),
                answers,
                complaints = n(mx::Kpi::ComplaintVolume),
                cases,
                compliance = n(mx::Kpi::SlaComplianceRate),
                contacted,
                expected,
                "waiting for metrics"
            );
            *progress.lock().expect("progress") = format!(
                "CSAT n {}/{answers}, complaints {}/{cases}, SLA n {}/{cases}, surveys counted {contacted}/{expected}",
                n(mx::Kpi::Csat),
                n(mx::Kpi::ComplaintVolume),
                n(mx::Kpi::SlaComplianceRate)
            );
            Ok((n(mx::Kpi::Csat) >= answers
                && n(mx::Kpi::ComplaintVolume) >= cases
                && n(mx::Kpi::SlaComplianceRate) >= cases
                && contacted >= expected)
                .then_some(()))
        }
    })
    .await;
    if let Err(e) = waited {
        bail!("{e}: {}", progress.lock().expect("progress"));
    }
    played.elapsed = started.elapsed();
    Ok(played)
}

async fn transition(
    client: &mut guestloop_client::FeedbackClient,
    case_id: &str,
    to: fb::CaseStatus,
) -> anyhow::Result<()> {
    client
        .transition_case(fb::TransitionCaseRequest {
            case_id: case_id.to_string(),
            to_status: to as i32,
            guest_contacted: true,
            contact_channel: ContactChannel::PhoneCall as i32,
            note: "demo".into(),
            ..Default::default()
        })
        .await
        .with_context(|| format!("TransitionCase to {to:?}"))?;
    Ok(())
}
