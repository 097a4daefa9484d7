//! The demo's past (issue 13): the days before today at every property of the scenario,
//! played through the public APIs with past times: check-outs at noon local and the
//! guests' survey answers two hours later. The guests gave no consent, so no mail goes out
//! for a stay long gone, and every answer is above the case thresholds, so no case opens
//! with deadlines already behind it. Each property has its own drift (sh-bund improving,
//! hz-lake slipping), so the report's 30-day lines have a shape.

use crate::scenario::{Endpoints, Lcg, PROPERTIES};
use anyhow::Context;
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use guestloop_client::Connection;
use guestloop_proto::common::v1::Date;
use guestloop_proto::feedback::v1 as fb;
use guestloop_proto::guestprofile::v1 as gp;
use guestloop_proto::time::to_timestamp as ts;

/// What the history added.
#[derive(Debug, Clone, Copy, Default)]
pub struct History {
    pub stays: usize,
    pub answers: usize,
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
            }
        }
    }
    Ok(done)
}
