//! R8: feedback-intake's request parsers under random input, shared by the property tests
//! below (`cargo test`) and the cargo-fuzz target `feedback_intake` (fuzz/, the long run).
//! A submission is parsed as SubmitFeedback and every ImportFeedback item parse it, then
//! goes through what intake does before storage (classifier, rules, redaction); case
//! details as OpenCase parses them; stored lists as rows are read back; guest-profile's
//! events as the consumer parses them (ingest.rs); stored blobs as erasure rewrites them
//! (erasure.rs). None may panic; a rejection must name real fields of the request; what is
//! accepted keeps its invariants.

use crate::classify::Classifier;
use crate::domain::directory::DirectoryChange;
use crate::domain::rules;
use crate::domain::submission::{Submission, case_input};
use crate::settings::IntakeSettings;
use guestloop_errors::FieldViolations;
use guestloop_errors::parse::optional_text;
use guestloop_proto::arbitrary::{Choices, assert_names_fields, encoded, request};
use guestloop_proto::common::v1::{Department, Urgency};
use guestloop_proto::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use guestloop_proto::feedback::v1 as pb;
use std::sync::OnceLock;

/// The parse steps, by name; [`run`] picks one by index.
pub const SURFACES: [&str; 6] = [
    "SubmitFeedback",
    "OpenCase",
    "classify",
    "stored lists",
    "guest events",
    "erasure",
];

/// Runs surface `surface` (mod [`SURFACES`]) on input drawn from `data`.
pub fn run(surface: usize, data: &[u8]) {
    let c = &mut Choices::new(data);
    match surface % SURFACES.len() {
        0 => submit(c),
        1 => open_case(c),
        2 => classify(c),
        3 => stored_lists(c),
        4 => guest_event(c),
        _ => erasure(c),
    }
}

fn limits() -> &'static IntakeSettings {
    static LIMITS: OnceLock<IntakeSettings> = OnceLock::new();
    LIMITS.get_or_init(|| {
        guestloop_config::load_offline::<crate::Settings>(&crate::default_layers())
            .expect("the default settings load")
            .intake
    })
}

fn classifier() -> &'static Classifier {
    static CLASSIFIER: OnceLock<Classifier> = OnceLock::new();
    CLASSIFIER.get_or_init(Classifier::with_defaults)
}

const ID: &str = "0195a3c0-5f1e-7b62-9a4e-6f1b2c3d4e5f";

/// Submissions every parse accepts: a complaint with survey scores, and an OTA review. The
/// surface changes a few fields of one of them.
fn valid_submission(ota: bool) -> pb::SubmitFeedbackRequest {
    let mut feedback = pb::Feedback {
        property_id: "sh-bund".into(),
        channel: pb::FeedbackChannel::Email as i32,
        language: "en".into(),
        text: "The room was dirty and the staff at 前台 were rude. Call +86 138 0013 8000".into(),
        receive_time: Some(prost_types::Timestamp {
            seconds: 1_741_000_000,
            nanos: 0,
        }),
        stay_id: ID.into(),
        staff_mentions: vec![pb::StaffMention {
            staff_id: "s-1".into(),
            staff_name: "Wang".into(),
            department: Department::FrontOffice as i32,
            sentiment: pb::Sentiment::Negative as i32,
        }],
        survey: Some(pb::SurveyAnswers {
            invitation_id: "inv-1".into(),
            csat: Some(2),
            nps: Some(3),
            csi_scores: vec![pb::CsiScore {
                dimension: pb::CsiDimension::Cleanliness as i32,
                score: 3,
            }],
            text_answers: vec![pb::SurveyTextAnswer {
                question_id: "q1".into(),
                answer: "dirty".into(),
            }],
            low_score: false,
        }),
        tags: vec!["vip".into()],
        ..Default::default()
    };
    if ota {
        feedback.channel = pb::FeedbackChannel::OtaReview as i32;
        feedback.survey = None;
        feedback.ota_review = Some(pb::OtaReview {
            site: pb::OtaSite::TripCom as i32,
            review_id: "r-9".into(),
            rating: 2.5,
            rating_scale: 5.0,
            title: "Not clean".into(),
            ..Default::default()
        });
    }
    pb::SubmitFeedbackRequest {
        feedback: Some(feedback),
        guest: Some(pb::GuestReference {
            guest_id: ID.into(),
            email: "li.wei@example.com".into(),
            phone: "+8613800138000".into(),
            loyalty_number: "VIP-1".into(),
        }),
        idempotency_key: "k-1".into(),
        complaint: Some(valid_details()),
    }
}

fn valid_details() -> pb::CaseDetails {
    pb::CaseDetails {
        title: "Dirty room".into(),
        description: "Hair in the bathroom".into(),
        category: pb::Category::Hygiene as i32,
        urgency: Urgency::Urgent as i32,
        department: Department::Housekeeping as i32,
        assignee_id: "u-1".into(),
        past: None,
    }
}

fn rejected(request: &str, v: &FieldViolations) {
    assert_names_fields(
        request,
        v.0.iter()
            .map(|f| (f.field.as_str(), f.description.as_str())),
    );
}

fn submit(c: &mut Choices<'_>) {
    const REQ: &str = "guestloop.feedback.v1.SubmitFeedbackRequest";
    let valid = valid_submission(c.bool());
    let Some(req) = request(REQ, &valid, c) else {
        return;
    };
    let limits = limits();
    let s = match Submission::parse(
        req.feedback,
        req.guest,
        &req.idempotency_key,
        req.complaint,
        limits,
    ) {
        Ok(s) => s,
        Err(v) => return rejected(REQ, &v),
    };
    assert!(!s.property_id.is_empty() && s.property_id.chars().count() <= 64);
    assert!(s.text.chars().count() <= limits.max_text_chars);
    assert!(!s.text.is_empty() || s.survey.is_some());
    assert!(s.tags.len() <= 20 && s.staff_mentions.len() <= 20);
    assert_ne!(s.channel, pb::FeedbackChannel::Unspecified);
    // What intake::submit computes from a parsed submission before it stores anything.
    let guessed = classifier().classify(&s.text, s.language.as_deref());
    let category = s.category.unwrap_or(guessed.category);
    let low = s
        .survey
        .as_ref()
        .is_some_and(|sv| rules::low_score(sv, limits));
    let _ = rules::auto_open_reason(
        s.channel,
        s.sentiment.unwrap_or(guessed.sentiment),
        low,
        s.ota_review.as_ref(),
        limits,
    );
    if let Some(r) = &s.ota_review {
        assert!(rules::normalized_rating(r).is_none_or(|x| (0.0..=1.0).contains(&x)));
    }
    let urgency = rules::default_urgency(category, s.channel, &s.text);
    let _ = rules::default_department(category);
    let (grade, reason) = rules::grade(category, urgency, &s.text, true, 3);
    assert_ne!(grade, pb::RiskGrade::Unspecified);
    assert!(!reason.is_empty());
    let excerpt = crate::redact::excerpt(&s.text, 280);
    assert!(excerpt.chars().count() <= 280);
}

fn open_case(c: &mut Choices<'_>) {
    const REQ: &str = "guestloop.feedback.v1.OpenCaseRequest";
    let valid = pb::OpenCaseRequest {
        feedback_id: ID.into(),
        details: Some(valid_details()),
        idempotency_key: "k-1".into(),
    };
    let Some(req) = request(REQ, &valid, c) else {
        return;
    };
    // As cases::open checks its request.
    let mut v = FieldViolations::new();
    let input = case_input(req.details.unwrap_or_default(), "details", &mut v);
    v.check("idempotency_key", optional_text(&req.idempotency_key, 128));
    if !v.is_empty() {
        return rejected(REQ, &v);
    }
    assert!(
        input
            .title
            .as_ref()
            .is_none_or(|t| t.chars().count() <= 200)
    );
    assert_ne!(input.urgency, Some(Urgency::Unspecified));
}

fn classify(c: &mut Choices<'_>) {
    let hint = match c.byte() % 3 {
        0 => None,
        _ => Some(c.text()),
    };
    let text = c.text();
    let verdict = classifier().classify(&text, hint.as_deref());
    assert!((0.0..=1.0).contains(&verdict.confidence), "{verdict:?}");
    assert!(["zh-CN", "zh-TW", "en"].contains(&verdict.language));
    let excerpt = crate::redact::excerpt(&text, 280);
    assert!(excerpt.chars().count() <= 280);
    assert!(
        !excerpt.contains('@'),
        "an address survived redaction: {excerpt}"
    );
    let digits = excerpt
        .chars()
        .collect::<Vec<_>>()
        .windows(7)
        .any(|w| w.iter().all(char::is_ascii_digit));
    assert!(!digits, "a phone number survived redaction: {excerpt}");
}

fn stored_lists(c: &mut Choices<'_>) {
    // staff_mentions are stored as length-delimited messages and read back leniently.
    let bytes = c.rest();
    let mentions: Vec<pb::StaffMention> = crate::store::decode_list(bytes);
    let again = crate::store::encode_list(&mentions);
    assert_eq!(
        crate::store::decode_list::<pb::StaffMention>(&again),
        mentions
    );
}

fn guest_event(c: &mut Choices<'_>) {
    const ENV: &str = "guestloop.events.v1.EventEnvelope";
    let payload = if c.bool() {
        Payload::GuestMerged(ev::GuestMerged {
            survivor_guest_id: ID.into(),
            duplicate_guest_id: "0195a3c0-0000-7b62-9a4e-6f1b2c3d4e5f".into(),
        })
    } else {
        Payload::GuestErased(ev::GuestErased {
            guest_id: ID.into(),
        })
    };
    let valid = EventEnvelope {
        event_id: ID.into(),
        source: "guest-profile".into(),
        aggregate_type: "guest".into(),
        aggregate_id: ID.into(),
        sequence: 1,
        payload: Some(payload),
        ..Default::default()
    };
    let Some(env) = request(ENV, &valid, c) else {
        return;
    };
    match DirectoryChange::of(&env) {
        None => assert!(!matches!(
            env.payload,
            Some(Payload::GuestErased(_) | Payload::GuestMerged(_))
        )),
        // Acknowledged and dropped by the consumer: it must say which ids were bad.
        Some(Err(v)) => rejected(ENV, &v),
        // A merge into itself would be a chain that never ends.
        Some(Ok(DirectoryChange::Merged {
            survivor,
            duplicate,
        })) => assert_ne!(survivor, duplicate),
        Some(Ok(DirectoryChange::Erased { .. })) => {}
    }
}

/// Erasure rewrites what is stored, whatever it is: the result reads back and holds no
/// free text but the marker.
fn erasure(c: &mut Choices<'_>) {
    use crate::erasure::{self, ERASED};
    use prost::Message;
    let free = |t: &str| t.is_empty() || t == ERASED;
    let kind = c.below(5);
    let bytes = match c.byte() % 4 {
        0 => c.rest().to_vec(),
        _ => encoded(
            [
                "guestloop.feedback.v1.OtaReview",
                "guestloop.feedback.v1.SurveyAnswers",
                "guestloop.feedback.v1.CaseEvent",
                "guestloop.events.v1.EventEnvelope",
                "guestloop.feedback.v1.StaffMention",
            ][kind],
            c,
        ),
    };
    match kind {
        0 => {
            if let Some(out) = erasure::ota_review(&bytes) {
                let r = pb::OtaReview::decode(out.as_slice()).expect("reads back");
                assert!(free(&r.title) && free(&r.reviewer_name) && r.review_url.is_empty());
            }
        }
        1 => {
            if let Some(out) = erasure::survey(&bytes) {
                let s = pb::SurveyAnswers::decode(out.as_slice()).expect("reads back");
                assert!(s.text_answers.iter().all(|a| free(&a.answer)));
            }
        }
        2 => {
            let e =
                pb::CaseEvent::decode(erasure::case_event(&bytes).as_slice()).expect("reads back");
            assert!(free(&e.note) && free(&e.reason));
            assert!(e.compensation.is_none_or(|x| free(&x.description)));
        }
        3 => {
            if let Some(out) = erasure::envelope(&bytes) {
                let e = EventEnvelope::decode(out.as_slice()).expect("reads back");
                let Some(Payload::FeedbackReceived(f)) = e.payload else {
                    panic!("only FeedbackReceived is rewritten");
                };
                assert!(f.redacted_excerpt.is_empty());
                assert!(f.staff_mentions.iter().all(|m| m.staff_name.is_empty()));
            }
        }
        _ => {
            let list = {
                let mut buf = Vec::new();
                if let Ok(m) = pb::StaffMention::decode(bytes.as_slice()) {
                    m.encode_length_delimited(&mut buf).expect("vec grows");
                }
                buf
            };
            let out: Vec<pb::StaffMention> =
                crate::store::decode_list(&erasure::staff_mentions(&list));
            assert!(out.iter().all(|m| free(&m.staff_name)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // A few seconds in a debug build (the classifier dominates); the long run is
        // `scripts/fuzz.sh`.
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn no_parse_step_panics_and_every_rejection_names_its_fields(
            data in proptest::collection::vec(any::<u8>(), 0..1024)
        ) {
            for surface in 0..SURFACES.len() {
                run(surface, &data);
            }
        }
    }
}
