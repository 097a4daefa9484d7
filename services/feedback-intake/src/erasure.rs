//! What an erased guest's records keep (issue 11): everything statistics need — channel,
//! category, sentiment, scores, ratings, times, property, case links, staff ids — and none
//! of the guest's words. Every free-text field written by the guest, or by staff about the
//! guest, is replaced by [`ERASED`] (when it held anything), so a reader sees that
//! something was there and was erased, not that nothing was said. These are the rewrites of
//! the stored protobuf blobs; the SQL that applies them is store/directory.rs.
//!
//! A blob that does not decode is dropped rather than kept: it may hold the words too.

use guestloop_proto::events::v1::{EventEnvelope, event_envelope::Payload};
use guestloop_proto::feedback::v1 as pb;
use prost::Message;

/// What replaces an erased guest's words: the same marker guest-profile writes over an
/// erased merge's reason.
pub const ERASED: &str = "[erased]";

fn mark(text: &mut String) {
    if !text.is_empty() {
        *text = ERASED.to_string();
    }
}

/// An OTA review keeps its site, review id (the replay key: a re-import of the review lands
/// on this erased row instead of storing the words again), rating, scale and reply status;
/// its title and the reviewer's display name are marked, its link dropped.
pub fn ota_review(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut r = pb::OtaReview::decode(bytes).ok()?;
    mark(&mut r.title);
    mark(&mut r.reviewer_name);
    r.review_url.clear();
    Some(r.encode_to_vec())
}

/// Survey answers keep every score and the invitation; free-text answers are marked.
pub fn survey(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut s = pb::SurveyAnswers::decode(bytes).ok()?;
    for a in &mut s.text_answers {
        mark(&mut a.answer);
    }
    Some(s.encode_to_vec())
}

/// Staff mentions keep the staff id, department and sentiment (staff evaluation); the name
/// as the guest wrote it is marked.
pub fn staff_mentions(bytes: &[u8]) -> Vec<u8> {
    let mut mentions: Vec<pb::StaffMention> = crate::store::decode_list(bytes);
    for m in &mut mentions {
        mark(&mut m.staff_name);
    }
    crate::store::encode_list(&mentions)
}

/// A case event keeps who, when, the moves and the amounts; its reason, note and the
/// compensation's description (staff's words, which quote the guest) are marked.
pub fn case_event(bytes: &[u8]) -> Vec<u8> {
    let Ok(mut e) = pb::CaseEvent::decode(bytes) else {
        return pb::CaseEvent::default().encode_to_vec();
    };
    mark(&mut e.reason);
    mark(&mut e.note);
    if let Some(c) = e.compensation.as_mut() {
        mark(&mut c.description);
    }
    e.encode_to_vec()
}

/// A FeedbackReceived still in this service's outbox loses its excerpt of the guest's words
/// (the proto: consumers drop it for an erased guest; here it is gone at the source, for
/// subscribers not yet served and for the stored copy). `None`: nothing to change.
pub fn envelope(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut env = EventEnvelope::decode(bytes).ok()?;
    let Some(Payload::FeedbackReceived(f)) = env.payload.as_mut() else {
        return None;
    };
    let named = f.staff_mentions.iter().any(|m| !m.staff_name.is_empty());
    if f.redacted_excerpt.is_empty() && !named {
        return None;
    }
    f.redacted_excerpt.clear();
    for m in &mut f.staff_mentions {
        m.staff_name.clear();
    }
    Some(env.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestloop_proto::events::v1::FeedbackReceived;

    const WORDS: &str = "Ms Lin Qiao, 13912345678, lin.qiao@example.com";

    fn has_words(debug: String) -> bool {
        debug.contains("Lin Qiao") || debug.contains("13912345678") || debug.contains("lin.qiao")
    }

    #[test]
    fn every_blob_loses_the_words_and_keeps_the_numbers() {
        let review = pb::OtaReview {
            site: pb::OtaSite::TripCom as i32,
            review_id: "r-1".into(),
            rating: 2.0,
            rating_scale: 5.0,
            title: WORDS.into(),
            reviewer_name: WORDS.into(),
            review_url: format!("https://example.com/{WORDS}"),
            reply_status: pb::OtaReplyStatus::Published as i32,
            ..Default::default()
        };
        let out = pb::OtaReview::decode(&ota_review(&review.encode_to_vec()).unwrap()[..]).unwrap();
        assert!(!has_words(format!("{out:?}")), "{out:?}");
        assert_eq!(
            (
                out.site,
                out.review_id.as_str(),
                out.rating,
                out.rating_scale,
                out.reply_status
            ),
            (review.site, "r-1", 2.0, 5.0, review.reply_status)
        );
        assert_eq!((out.title.as_str(), out.review_url.as_str()), (ERASED, ""));

        let answers = pb::SurveyAnswers {
            invitation_id: "inv-1".into(),
            csat: Some(2),
            nps: Some(3),
            csi_scores: vec![pb::CsiScore {
                dimension: pb::CsiDimension::Room as i32,
                score: 4,
            }],
            text_answers: vec![
                pb::SurveyTextAnswer {
                    question_id: "q1".into(),
                    answer: WORDS.into(),
                },
                pb::SurveyTextAnswer {
                    question_id: "q2".into(),
                    answer: String::new(),
                },
            ],
            low_score: true,
        };
        let out =
            pb::SurveyAnswers::decode(&survey(&answers.encode_to_vec()).unwrap()[..]).unwrap();
        assert!(!has_words(format!("{out:?}")), "{out:?}");
        let expected = pb::SurveyAnswers {
            text_answers: vec![
                pb::SurveyTextAnswer {
                    question_id: "q1".into(),
                    answer: ERASED.into(),
                },
                answers.text_answers[1].clone(),
            ],
            ..answers.clone()
        };
        assert_eq!(out, expected);

        let event = pb::CaseEvent {
            sequence: 3,
            reason: WORDS.into(),
            note: WORDS.into(),
            compensation: Some(pb::Compensation {
                kind: pb::CompensationKind::Refund as i32,
                value: Some(guestloop_proto::common::v1::Money {
                    currency_code: "CNY".into(),
                    amount_minor: 100,
                }),
                description: WORDS.into(),
            }),
            ..Default::default()
        };
        let out = pb::CaseEvent::decode(&case_event(&event.encode_to_vec())[..]).unwrap();
        assert!(!has_words(format!("{out:?}")), "{out:?}");
        assert_eq!(out.sequence, 3);
        assert_eq!(
            out.compensation.unwrap().value,
            event.compensation.unwrap().value
        );

        let mentions = crate::store::encode_list(&[pb::StaffMention {
            staff_id: "s-1".into(),
            staff_name: WORDS.into(),
            department: 1,
            sentiment: 1,
        }]);
        let out: Vec<pb::StaffMention> = crate::store::decode_list(&staff_mentions(&mentions));
        assert!(!has_words(format!("{out:?}")), "{out:?}");
        assert_eq!(out[0].staff_id, "s-1");
    }

    #[test]
    fn the_outbox_copy_loses_its_excerpt_and_only_feedback_received_changes() {
        let env = EventEnvelope {
            event_id: "e-1".into(),
            payload: Some(Payload::FeedbackReceived(FeedbackReceived {
                feedback_id: "f-1".into(),
                category: 3,
                redacted_excerpt: WORDS.into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let out = EventEnvelope::decode(&envelope(&env.encode_to_vec()).unwrap()[..]).unwrap();
        assert!(!has_words(format!("{out:?}")), "{out:?}");
        let Some(Payload::FeedbackReceived(f)) = out.payload else {
            panic!("still a FeedbackReceived");
        };
        assert_eq!((f.feedback_id.as_str(), f.category), ("f-1", 3));
        // Already without words, or another event: left as it is.
        assert_eq!(envelope(&out_without_words()), None);
        assert_eq!(envelope(b"\xff\xff"), None);
    }

    fn out_without_words() -> Vec<u8> {
        EventEnvelope {
            payload: Some(Payload::FeedbackReceived(FeedbackReceived::default())),
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn an_unreadable_blob_is_dropped_not_kept() {
        let garbage = format!("\u{1}\u{2}{WORDS}").into_bytes();
        assert_eq!(ota_review(&garbage), None);
        assert_eq!(survey(&garbage), None);
        assert!(!has_words(format!(
            "{:?}",
            pb::CaseEvent::decode(&case_event(&garbage)[..])
        )));
    }
}
