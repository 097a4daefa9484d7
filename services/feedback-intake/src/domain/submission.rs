//! A submission (SubmitFeedback or one import item), parsed: every field checked, so the
//! intake never sees an unchecked value. Violations name the request's field paths.

use crate::settings::IntakeSettings;
use chrono::{DateTime, Utc};
use guestloop_errors::FieldViolations;
use guestloop_errors::parse::{email, known_enum, optional_text, phone, required_text, uuid};
use guestloop_proto::common::v1::{Department, Urgency};
use guestloop_proto::feedback::v1 as pb;
use uuid::Uuid;

pub const LANGUAGES: [&str; 3] = ["zh-CN", "zh-TW", "en"];
const SKEW_SECS: i64 = 300;

/// How to find the guest, as given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuestRef {
    pub guest_id: Option<Uuid>,
    pub loyalty_number: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl GuestRef {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What staff said about a complaint; the rules fill in what is missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseInput {
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: Option<pb::Category>,
    pub urgency: Option<Urgency>,
    pub department: Option<Department>,
    pub assignee_id: Option<String>,
    /// A complaint handled before the hotel came to Guestloop (import only).
    pub past: Option<PastHandling>,
}

/// How a past complaint was handled; its times are in order and not in the future.
#[derive(Debug, Clone, PartialEq)]
pub struct PastHandling {
    pub acknowledge_time: DateTime<Utc>,
    pub resolve_time: DateTime<Utc>,
    pub resolution: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub property_id: String,
    pub channel: pb::FeedbackChannel,
    pub source: String,
    pub external_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub guest: GuestRef,
    pub stay_id: Option<Uuid>,
    pub receive_time: Option<DateTime<Utc>>,
    pub language: Option<String>,
    pub text: String,
    pub category: Option<pb::Category>,
    pub sentiment: Option<pb::Sentiment>,
    pub staff_mentions: Vec<pb::StaffMention>,
    pub ota_review: Option<pb::OtaReview>,
    pub survey: Option<pb::SurveyAnswers>,
    pub tags: Vec<String>,
    pub complaint: Option<CaseInput>,
}

fn specified<E: TryFrom<i32> + PartialEq + Copy>(
    value: i32,
    unspecified: E,
) -> Result<Option<E>, String> {
    let e: E = known_enum(value)?;
    Ok((e != unspecified).then_some(e))
}

pub fn time(
    field: &str,
    ts: Option<prost_types::Timestamp>,
    v: &mut FieldViolations,
) -> Option<DateTime<Utc>> {
    let ts = ts?;
    match DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32) {
        Some(t) if t.timestamp() > Utc::now().timestamp() + SKEW_SECS => {
            v.add(field, "is in the future");
            None
        }
        Some(t) if t.timestamp() < 946_684_800 => {
            v.add(field, "is before 2000");
            None
        }
        Some(t) => Some(t),
        None => {
            v.add(field, "is not a valid time");
            None
        }
    }
}

impl Submission {
    /// Parses the request parts. `limits` bounds text length.
    pub fn parse(
        feedback: Option<pb::Feedback>,
        guest: Option<pb::GuestReference>,
        idempotency_key: &str,
        complaint: Option<pb::CaseDetails>,
        limits: &IntakeSettings,
    ) -> Result<Self, FieldViolations> {
        let mut v = FieldViolations::new();
        let Some(f) = feedback else {
            return Err(FieldViolations::single("feedback", "is required"));
        };
        let property_id = v.check("feedback.property_id", required_text(&f.property_id, 64));
        let channel = v.check(
            "feedback.channel",
            specified(f.channel, pb::FeedbackChannel::Unspecified)
                .and_then(|c| c.ok_or_else(|| "is required".to_string())),
        );
        let text = v
            .check(
                "feedback.text",
                optional_text(&f.text, limits.max_text_chars),
            )
            .flatten()
            .unwrap_or_default();
        let language = v
            .check(
                "feedback.language",
                match f.language.trim() {
                    "" => Ok(None),
                    l if LANGUAGES.contains(&l) => Ok(Some(l.to_string())),
                    other => Err(format!("`{other}` is not one of {LANGUAGES:?}")),
                },
            )
            .flatten();
        let category = v
            .check(
                "feedback.category",
                specified(f.category, pb::Category::Unspecified),
            )
            .flatten();
        let sentiment = v
            .check(
                "feedback.sentiment",
                specified(f.sentiment, pb::Sentiment::Unspecified),
            )
            .flatten();
        let receive_time = time("feedback.receive_time", f.receive_time, &mut v);
        let stay_id = if f.stay_id.trim().is_empty() {
            None
        } else {
            v.check("feedback.stay_id", uuid(&f.stay_id))
        };
        let external_id = v
            .check("feedback.external_id", optional_text(&f.external_id, 128))
            .flatten();
        let mut source = v
            .check("feedback.source", optional_text(&f.source, 64))
            .flatten();
        let idempotency_key = v
            .check("idempotency_key", optional_text(idempotency_key, 128))
            .flatten();

        let ota_review = match (channel, f.ota_review) {
            (Some(pb::FeedbackChannel::OtaReview), Some(r)) => ota(r, &mut v),
            (Some(pb::FeedbackChannel::OtaReview), None) => {
                v.add("feedback.ota_review", "is required for an OTA review");
                None
            }
            (_, Some(_)) => {
                v.add("feedback.ota_review", "is only allowed for an OTA review");
                None
            }
            (_, None) => None,
        };
        let survey = match f.survey {
            Some(s) => survey(s, &mut v),
            None if channel == Some(pb::FeedbackChannel::PostStaySurvey) => {
                v.add("feedback.survey", "is required for a post-stay survey");
                None
            }
            None => None,
        };
        let has_score = survey
            .as_ref()
            .is_some_and(|s| s.csat.is_some() || s.nps.is_some() || !s.csi_scores.is_empty());
        if text.is_empty() && !has_score && !v.fields().any(|f| f == "feedback.text") {
            v.add("feedback.text", "is required unless the survey has a score");
        }
        let staff_mentions = staff(&f.staff_mentions, &mut v);
        if f.tags.len() > 20 {
            v.add("feedback.tags", "at most 20 tags");
        }
        let tags: Vec<String> = f
            .tags
            .iter()
            .enumerate()
            .filter_map(|(i, t)| v.check(&format!("feedback.tags[{i}]"), required_text(t, 50)))
            .collect();

        let guest = guest.unwrap_or_default();
        let guest = GuestRef {
            guest_id: if guest.guest_id.trim().is_empty() {
                None
            } else {
                v.check("guest.guest_id", uuid(&guest.guest_id))
            },
            loyalty_number: v
                .check(
                    "guest.loyalty_number",
                    optional_text(&guest.loyalty_number, 32),
                )
                .flatten(),
            email: v.check("guest.email", email(&guest.email)).flatten(),
            phone: v.check("guest.phone", phone(&guest.phone)).flatten(),
        };
        let complaint = complaint.map(|c| case_input(c, "complaint", &mut v));
        if let Some(past) = complaint.as_ref().and_then(|c| c.past.as_ref()) {
            match receive_time {
                None => v.add(
                    "feedback.receive_time",
                    "is required for a complaint handled in the past",
                ),
                Some(t) if past.acknowledge_time < t => v.add(
                    "complaint.past.acknowledge_time",
                    "is before feedback.receive_time",
                ),
                Some(_) => {}
            }
        }

        if !v.is_empty() {
            return Err(v);
        }
        let channel = channel.expect("checked");
        // An OTA review's site and review id identify it unless the caller says otherwise.
        let mut external_id = external_id;
        if let Some(r) = &ota_review {
            if source.is_none() {
                source = Some(ota_site_name(r));
            }
            if external_id.is_none() && !r.review_id.is_empty() {
                external_id = Some(r.review_id.clone());
            }
        }
        Ok(Self {
            property_id: property_id.expect("checked"),
            channel,
            source: source.unwrap_or_else(|| channel_name(channel).to_string()),
            external_id,
            idempotency_key,
            guest,
            stay_id,
            receive_time,
            language,
            text,
            category,
            sentiment,
            staff_mentions,
            ota_review,
            survey,
            tags,
            complaint,
        })
    }
}

/// Parses staff's case details under `prefix` ("complaint", "details").
pub fn case_input(c: pb::CaseDetails, prefix: &str, v: &mut FieldViolations) -> CaseInput {
    let f = |n: &str| format!("{prefix}.{n}");
    CaseInput {
        title: v.check(&f("title"), optional_text(&c.title, 200)).flatten(),
        description: v
            .check(&f("description"), optional_text(&c.description, 4000))
            .flatten(),
        category: v
            .check(
                &f("category"),
                specified(c.category, pb::Category::Unspecified),
            )
            .flatten(),
        urgency: v
            .check(&f("urgency"), specified(c.urgency, Urgency::Unspecified))
            .flatten(),
        department: v
            .check(
                &f("department"),
                specified(c.department, Department::Unspecified),
            )
            .flatten(),
        assignee_id: v
            .check(&f("assignee_id"), optional_text(&c.assignee_id, 64))
            .flatten(),
        past: c.past.and_then(|p| past_handling(p, &f("past"), v)),
    }
}

/// Parses a past complaint's handling under `prefix` ("complaint.past").
fn past_handling(
    p: pb::PastHandling,
    prefix: &str,
    v: &mut FieldViolations,
) -> Option<PastHandling> {
    let f = |n: &str| format!("{prefix}.{n}");
    let required = |name: &str, t: Option<prost_types::Timestamp>, v: &mut FieldViolations| {
        if t.is_none() {
            v.add(f(name), "is required");
        }
        time(&f(name), t, v)
    };
    let ack = required("acknowledge_time", p.acknowledge_time, v);
    let resolve = required("resolve_time", p.resolve_time, v);
    let resolution = v
        .check(&f("resolution"), optional_text(&p.resolution, 4000))
        .flatten();
    let (ack, resolve) = (ack?, resolve?);
    if resolve < ack {
        v.add(f("resolve_time"), "is before acknowledge_time");
        return None;
    }
    Some(PastHandling {
        acknowledge_time: ack,
        resolve_time: resolve,
        resolution,
    })
}

fn ota(r: pb::OtaReview, v: &mut FieldViolations) -> Option<pb::OtaReview> {
    let before = v.0.len();
    let site = v.check(
        "feedback.ota_review.site",
        specified(r.site, pb::OtaSite::Unspecified)
            .and_then(|s| s.ok_or_else(|| "is required".to_string())),
    );
    if site == Some(pb::OtaSite::Other) && r.site_name.trim().is_empty() {
        v.add(
            "feedback.ota_review.site_name",
            "is required when the site is OTA_SITE_OTHER",
        );
    }
    v.check(
        "feedback.ota_review.site_name",
        optional_text(&r.site_name, 64),
    );
    v.check(
        "feedback.ota_review.review_id",
        optional_text(&r.review_id, 128),
    );
    v.check("feedback.ota_review.title", optional_text(&r.title, 500));
    v.check(
        "feedback.ota_review.reviewer_name",
        optional_text(&r.reviewer_name, 100),
    );
    v.check(
        "feedback.ota_review.review_url",
        optional_text(&r.review_url, 1000),
    );
    v.check(
        "feedback.ota_review.reply_status",
        known_enum::<pb::OtaReplyStatus>(r.reply_status),
    );
    if !r.rating_scale.is_finite() || r.rating_scale < 0.0 || r.rating_scale > 100.0 {
        v.add(
            "feedback.ota_review.rating_scale",
            "must be between 0 and 100",
        );
    } else if !r.rating.is_finite() || r.rating < 0.0 || r.rating > r.rating_scale {
        v.add(
            "feedback.ota_review.rating",
            "must be between 0 and rating_scale",
        );
    } else if r.rating > 0.0 && r.rating_scale == 0.0 {
        v.add(
            "feedback.ota_review.rating_scale",
            "is required with a rating",
        );
    }
    (v.0.len() == before).then_some(r)
}

fn survey(s: pb::SurveyAnswers, v: &mut FieldViolations) -> Option<pb::SurveyAnswers> {
    let before = v.0.len();
    v.check(
        "feedback.survey.invitation_id",
        optional_text(&s.invitation_id, 128),
    );
    if let Some(c) = s.csat
        && !(1..=5).contains(&c)
    {
        v.add("feedback.survey.csat", "must be 1-5");
    }
    if let Some(n) = s.nps
        && !(0..=10).contains(&n)
    {
        v.add("feedback.survey.nps", "must be 0-10");
    }
    let mut seen = Vec::new();
    for (i, c) in s.csi_scores.iter().enumerate() {
        let key = format!("feedback.survey.csi_scores[{i}]");
        match specified(c.dimension, pb::CsiDimension::Unspecified) {
            Ok(Some(d)) if seen.contains(&d) => v.add(format!("{key}.dimension"), "is given twice"),
            Ok(Some(d)) => seen.push(d),
            Ok(None) => v.add(format!("{key}.dimension"), "is required"),
            Err(e) => v.add(format!("{key}.dimension"), e),
        }
        if !(1..=10).contains(&c.score) {
            v.add(format!("{key}.score"), "must be 1-10");
        }
    }
    if s.text_answers.len() > 50 {
        v.add("feedback.survey.text_answers", "at most 50 answers");
    }
    for (i, a) in s.text_answers.iter().enumerate() {
        v.check(
            &format!("feedback.survey.text_answers[{i}].question_id"),
            required_text(&a.question_id, 64),
        );
        v.check(
            &format!("feedback.survey.text_answers[{i}].answer"),
            optional_text(&a.answer, 2000),
        );
    }
    (v.0.len() == before).then_some(s)
}

fn staff(mentions: &[pb::StaffMention], v: &mut FieldViolations) -> Vec<pb::StaffMention> {
    if mentions.len() > 20 {
        v.add("feedback.staff_mentions", "at most 20 mentions");
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, m) in mentions.iter().enumerate() {
        let key = |f: &str| format!("feedback.staff_mentions[{i}].{f}");
        let id = v
            .check(&key("staff_id"), optional_text(&m.staff_id, 64))
            .flatten();
        let name = v
            .check(&key("staff_name"), optional_text(&m.staff_name, 100))
            .flatten();
        if id.is_none() && name.is_none() {
            v.add(key("staff_id"), "give staff_id or staff_name");
        }
        v.check(&key("department"), known_enum::<Department>(m.department));
        v.check(&key("sentiment"), known_enum::<pb::Sentiment>(m.sentiment));
        out.push(pb::StaffMention {
            staff_id: id.unwrap_or_default(),
            staff_name: name.unwrap_or_default(),
            department: m.department,
            sentiment: m.sentiment,
        });
    }
    out
}

pub fn channel_name(c: pb::FeedbackChannel) -> &'static str {
    match c {
        pb::FeedbackChannel::Phone => "phone",
        pb::FeedbackChannel::Email => "email",
        pb::FeedbackChannel::Wechat => "wechat",
        pb::FeedbackChannel::App => "app",
        pb::FeedbackChannel::Website => "website",
        pb::FeedbackChannel::CommentCard => "comment-card",
        pb::FeedbackChannel::InPerson => "in-person",
        pb::FeedbackChannel::OtaReview => "ota",
        pb::FeedbackChannel::PostStaySurvey => "survey",
        pb::FeedbackChannel::Unspecified => "unknown",
    }
}

fn ota_site_name(r: &pb::OtaReview) -> String {
    match pb::OtaSite::try_from(r.site).unwrap_or(pb::OtaSite::Other) {
        pb::OtaSite::BookingCom => "booking.com".into(),
        pb::OtaSite::TripCom => "trip.com".into(),
        pb::OtaSite::Tripadvisor => "tripadvisor".into(),
        pb::OtaSite::Expedia => "expedia".into(),
        pb::OtaSite::Agoda => "agoda".into(),
        pb::OtaSite::Meituan => "meituan".into(),
        pb::OtaSite::Fliggy => "fliggy".into(),
        pb::OtaSite::Qunar => "qunar".into(),
        pb::OtaSite::Google => "google".into(),
        pb::OtaSite::Other | pb::OtaSite::Unspecified => r.site_name.trim().to_lowercase(),
    }
}
