//! The demo's past (issue 13): the days before today at every property of the scenario,
//! played through the public APIs with past times: check-outs at noon local and the
//! guests' survey answers two hours later. The guests gave no consent, so no mail goes out
//! for a stay long gone, and every answer is above the case thresholds. Each property has
//! its own drift (sh-bund improving, hz-lake slipping), so the report's 30-day lines have
//! a shape.
//!
//! The complaints of those days come in as the hotel's old complaint log would: imported
//! closed, with the times they were handled at (`CaseDetails.past`), so no clock runs and
//! nobody is alerted for a case long done. sh-bund's hygiene complaints stop two weeks ago;
//! hz-lake's noise complaints start twelve days ago and stay, so the platform proposes an
//! improvement item for them. The demo's standards run in seconds (a 3 s first response),
//! so most complaints were answered within 2 s and one in five late.

use crate::scenario::{Endpoints, Lcg, PROPERTIES};
use anyhow::Context;
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use guestloop_client::Connection;
use guestloop_proto::common::v1::Date;
use guestloop_proto::feedback::v1 as fb;
use guestloop_proto::guestprofile::v1 as gp;
use guestloop_proto::time::to_timestamp as ts;

/// What the history added.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub stays: usize,
    pub answers: usize,
    /// The closed complaints imported from the old log.
    pub old_cases: Vec<OldCase>,
}

/// A case the old log's import opened (closed).
#[derive(Debug, Clone)]
pub struct OldCase {
    pub property_id: String,
    pub category: i32,
    pub case_id: String,
}

fn date(d: NaiveDate) -> Date {
    use chrono::Datelike;
    Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

/// Plays `days` days before today with `per_day` stays a day at each property.
pub async fn play(
    e: &Endpoints,
    token: &str,
    days: i64,
    per_day: usize,
    seed: u64,
) -> anyhow::Result<History> {
    let conn = |url: &str| -> anyhow::Result<Connection> {
        Ok(Connection::builder(url.to_string())
            .token(token)
            .timeout(std::time::Duration::from_secs(30))
            .connect_lazy()?)
    };
    let mut profile = conn(&e.guest_profile)?.guest_profile();
    let mut feedback = conn(&e.feedback_intake)?.feedback();
    let mut rng = Lcg(seed);
    let run = uuid::Uuid::now_v7().simple().to_string();
    let mut done = History::default();
    let mut old_log = Vec::new();
    for (n, (property, _, _, tz)) in PROPERTIES.iter().enumerate() {
        let zone: chrono_tz::Tz = tz.parse().map_err(|_| anyhow::anyhow!("zone {tz}"))?;
        let today = Utc::now().with_timezone(&zone).date_naive();
        for ago in (1..=days).rev() {
            let day = today - Duration::days(ago);
            let noon = zone
                .from_local_datetime(&day.and_hms_opt(12, 0, 0).context("noon")?)
                .earliest()
                .context("a local noon")?
                .with_timezone(&Utc);
            // 0.0 at the oldest day, 1.0 yesterday.
            let progress = (days - ago) as f64 / days.max(1) as f64;
            for i in 0..per_day {
                let guest = profile
                    .create_guest(gp::CreateGuestRequest {
                        property_id: property.to_string(),
                        guest: Some(gp::Guest {
                            given_name: format!("Past{i}"),
                            family_name: format!("History-{property}"),
                            language: "en".into(),
                            ..Default::default()
                        }),
                        idempotency_key: String::new(),
                    })
                    .await
                    .context("CreateGuest")?
                    .into_inner()
                    .guest
                    .context("a guest")?;
                let stay = profile
                    .upsert_stay(gp::UpsertStayRequest {
                        stay: Some(gp::Stay {
                            guest_id: guest.guest_id.clone(),
                            property_id: property.to_string(),
                            pms_reservation_id: format!("hist-{run}-{property}-{ago}-{i}"),
                            status: gp::StayStatus::CheckedOut as i32,
                            arrival_date: Some(date(day - Duration::days(2))),
                            departure_date: Some(date(day)),
                            checked_out_time: Some(ts(noon)),
                            ..Default::default()
                        }),
                    })
                    .await
                    .context("UpsertStay")?
                    .into_inner()
                    .stay
                    .context("a stay")?;
                done.stays += 1;
                // Satisfied (4-5) more often as sh-bund improves, less as hz-lake slips.
                let satisfied_share = match n {
                    0 => 0.70 + 0.25 * progress,
                    1 => 0.95 - 0.30 * progress,
                    _ => 0.88,
                };
                let satisfied = (rng.next(1000) as f64) < satisfied_share * 1000.0;
                let csat = if satisfied { 4 + rng.next(2) as i32 } else { 3 };
                let nps = if satisfied {
                    9 + rng.next(2) as i32
                } else {
                    7 + rng.next(2) as i32
                };
                feedback
                    .submit_feedback(fb::SubmitFeedbackRequest {
                        feedback: Some(fb::Feedback {
                            property_id: property.to_string(),
                            channel: fb::FeedbackChannel::PostStaySurvey as i32,
                            stay_id: stay.stay_id.clone(),
                            language: "en".into(),
                            receive_time: Some(ts(noon + Duration::hours(2))),
                            survey: Some(fb::SurveyAnswers {
                                csat: Some(csat),
                                nps: Some(nps),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        guest: Some(fb::GuestReference {
                            guest_id: guest.guest_id.clone(),
                            ..Default::default()
                        }),
                        idempotency_key: format!("hist-survey-{}", stay.stay_id),
                        complaint: None,
                    })
                    .await
                    .context("SubmitFeedback")?;
                done.answers += 1;
                if let Some(category) = complaint_of(n, ago, satisfied, &mut rng) {
                    old_log.push(past_complaint(
                        property,
                        &guest.guest_id,
                        category,
                        noon + Duration::hours(3),
                        &mut rng,
                    ));
                }
            }
        }
    }
    let what: Vec<(String, i32)> = old_log
        .iter()
        .map(|i| {
            let f = i.feedback.as_ref();
            (
                f.map(|f| f.property_id.clone()).unwrap_or_default(),
                f.map_or(0, |f| f.category),
            )
        })
        .collect();
    let imported = feedback
        .import_feedback(tokio_stream::iter(old_log))
        .await
        .context("ImportFeedback")?
        .into_inner();
    if imported.failed_count > 0 {
        let first = imported.results.iter().find(|r| r.error_code != 0);
        anyhow::bail!("the old complaint log did not import: {first:?}");
    }
    done.old_cases = imported
        .results
        .into_iter()
        .zip(what)
        .map(|(r, (property_id, category))| OldCase {
            property_id,
            category,
            case_id: r.case_id,
        })
        .collect();
    Ok(done)
}

/// What an unhappy guest of property `n`, `ago` days back, complained about, if anything:
/// hygiene at sh-bund until two weeks ago, noise at hz-lake over the last twelve days.
fn complaint_of(n: usize, ago: i64, satisfied: bool, rng: &mut Lcg) -> Option<fb::Category> {
    if satisfied {
        return None;
    }
    match n {
        0 if ago > 14 => Some(fb::Category::Hygiene),
        1 if ago <= 12 && rng.next(2) == 0 => Some(fb::Category::Noise),
        _ => None,
    }
}

/// A closed complaint from the old log, received at `at`.
fn past_complaint(
    property: &str,
    guest_id: &str,
    category: fb::Category,
    at: chrono::DateTime<Utc>,
    rng: &mut Lcg,
) -> fb::ImportFeedbackRequest {
    let late = rng.next(5) == 0;
    let ack = if late { 6 } else { 1 + rng.next(2) as i64 };
    let resolve = if late { 200 } else { 40 + rng.next(60) as i64 };
    let text = match category {
        fb::Category::Noise => "Loud music from the bar until 2am, we could not sleep",
        _ => "Hair in the bathtub and the towels smelled",
    };
    fb::ImportFeedbackRequest {
        feedback: Some(fb::Feedback {
            property_id: property.to_string(),
            channel: fb::FeedbackChannel::Phone as i32,
            language: "en".into(),
            text: text.into(),
            category: category as i32,
            sentiment: fb::Sentiment::Negative as i32,
            receive_time: Some(ts(at)),
            ..Default::default()
        }),
        guest: Some(fb::GuestReference {
            guest_id: guest_id.to_string(),
            ..Default::default()
        }),
        idempotency_key: format!("old-log-{guest_id}"),
        complaint: Some(fb::CaseDetails {
            past: Some(fb::PastHandling {
                acknowledge_time: Some(ts(at + Duration::seconds(ack))),
                resolve_time: Some(ts(at + Duration::seconds(resolve))),
                resolution: "Apologised, fixed and followed up".into(),
            }),
            ..Default::default()
        }),
    }
}
