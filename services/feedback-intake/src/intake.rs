//! Taking in one piece of feedback: replay check, guest lookup, stay check, classification,
//! the row, a case when the rules or the submitter say so, and the events — one transaction,
//! shared with concurrent submissions (group commit, guestloop_db::group).

use crate::case_ops::{self, Actor, SOURCE};
use crate::convert;
use crate::domain::rules;
use crate::domain::submission::Submission;
use crate::error::{FeedbackError, Result, invalid};
use crate::redact;
use crate::state::{Caller, State};
use crate::store::cases::CaseRow;
use crate::store::feedback::{self as store, FeedbackRow, NewFeedback};
use chrono::Utc;
use guestloop_outbox::NewEvent;
use guestloop_proto::events::v1::{FeedbackReceived, SurveyAnswered, event_envelope::Payload};
use guestloop_proto::feedback::v1 as pb;
use guestloop_proto::guestprofile::v1::Tier;
use prost::Message;
use sqlx::PgConnection;
use std::sync::Arc;
use uuid::Uuid;

/// The outcome of one submission.
#[derive(Debug)]
pub struct Outcome {
    pub feedback: FeedbackRow,
    pub case: Option<CaseRow>,
    pub created: bool,
}

/// How a submission arrived: which batcher writes it if it opens no case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    Single,
    Imported,
}

/// Stores one parsed submission (the caller may write to its property), opening a case if
/// the chain's rules say so, and answers once it is committed.
///
/// `s` comes boxed: an async fn keeps room for each argument twice in its future (the
/// argument and the local it is moved into), and the case path's closure a third time; at
/// 712 bytes a submission, that was most of the 3.4 KB future an import keeps thousands of
/// (-Zprint-type-sizes).
pub async fn submit(
    state: &Arc<State>,
    caller: &Caller,
    s: Box<Submission>,
    arrival: Arrival,
) -> Result<Outcome> {
    state.writable_property(caller, "feedback.property_id", &s.property_id)?;
    // A retry answers with the earlier item before any remote look-up (so it needs no
    // guest-profile). Without one to save, the check is left to the write itself (ON
    // CONFLICT, then the replay look-up for what was skipped): a round trip less per call.
    let looks_up = !s.guest.is_empty() || s.stay_id.is_some();
    if looks_up && (s.external_id.is_some() || s.idempotency_key.is_some()) {
        // Boxed, as the look-ups below: this function's future would otherwise hold room
        // for the largest future it awaits (sqlx's pool acquire is 14.5 KB, a guest-profile
        // call 2.6 KB; -Zprint-type-sizes) for as long as it lives, and an import keeps
        // thousands of them in flight (16.6 KB each before, 1.3 KB now with `s` boxed).
        let key = ReplayKey::of(&s);
        let earlier = Box::pin(async {
            let mut conn = state.pool.acquire().await?;
            replay(&mut conn, &key).await
        });
        if let Some(existing) = earlier.await? {
            return Ok(existing);
        }
    }
    // Look-ups at guest-profile happen before the transaction: no locks held on a remote call.
    let mut who = Box::pin(state.guests.resolve(&s.guest)).await?;
    if let Some(stay_id) = s.stay_id {
        let Some((stay_guest, stay_property)) = Box::pin(state.guests.stay(stay_id)).await? else {
            return Err(invalid("feedback.stay_id", "is not a known stay"));
        };
        if stay_property != s.property_id {
            return Err(invalid("feedback.stay_id", "is a stay at another property"));
        }
        match who.guest_id {
            Some(g) if g != stay_guest => {
                return Err(invalid("feedback.stay_id", "is a stay of another guest"));
            }
            Some(_) => {}
            None => who = Box::pin(state.guests.by_id(stay_guest)).await?,
        }
    }
    let guessed = state.classifier.classify(&s.text, s.language.as_deref());
    let (category, category_source) = match s.category {
        Some(c) => (c, pb::ClassificationSource::Submitter),
        None if s.text.is_empty() => (pb::Category::Other, pb::ClassificationSource::Classifier),
        None => (guessed.category, pb::ClassificationSource::Classifier),
    };
    let (sentiment, sentiment_source) = match s.sentiment {
        Some(x) => (x, pb::ClassificationSource::Submitter),
        None => (guessed.sentiment, pb::ClassificationSource::Classifier),
    };
    let low_score = s
        .survey
        .as_ref()
        .is_some_and(|sv| rules::low_score(sv, &state.intake));
    let survey = s.survey.clone().map(|mut sv| {
        sv.low_score = low_score;
        sv
    });
    let receive_time = s.receive_time.unwrap_or_else(Utc::now);
    let mut row = NewFeedback {
        id: Uuid::now_v7(),
        property_id: s.property_id.clone(),
        channel: s.channel as i16,
        source: s.source.clone(),
        external_id: s.external_id.clone(),
        idempotency_key: s.idempotency_key.clone(),
        guest_id: who.guest_id,
        guest_match: who.matched as i16,
        guest_tier: who.tier as i16,
        stay_id: s.stay_id,
        receive_time,
        language: s
            .language
            .clone()
            .unwrap_or_else(|| guessed.language.to_string()),
        text: s.text.clone(),
        category: category as i16,
        category_source: category_source as i16,
        sentiment: sentiment as i16,
        sentiment_source: sentiment_source as i16,
        staff_mentions: (!s.staff_mentions.is_empty())
            .then(|| crate::store::encode_list(&s.staff_mentions)),
        ota_review: s.ota_review.as_ref().map(Message::encode_to_vec),
        survey: survey.as_ref().map(Message::encode_to_vec),
        ota_site: s.ota_review.as_ref().map_or(0, |r| r.site as i16),
        low_score,
        staff_ids: s
            .staff_mentions
            .iter()
            .filter(|m| !m.staff_id.is_empty())
            .map(|m| m.staff_id.clone())
            .collect(),
        tags: s.tags.clone(),
        submitted_by: caller.subject().to_string(),
    };
    // Classified above on the words; a record already past its retention period (a
    // historical import) is stored without them, as the retention job would leave it.
    crate::retention::expire_on_arrival(state, &mut row);

    let reason = if s.complaint.is_some() {
        Some(pb::CaseOpenReason::Complaint)
    } else {
        rules::auto_open_reason(
            s.channel,
            sentiment,
            low_score,
            s.ota_review.as_ref(),
            &state.intake,
        )
    };
    if reason.is_none() {
        // No case: the row and its events go out with concurrent submissions' in
        // multi-row statements and one commit (intake_batch); answered after that commit.
        let events = guestloop_outbox::prepare_new(
            SOURCE,
            received_events(
                state,
                &row,
                None,
                s.ota_review.as_ref(),
                survey.as_ref(),
                &s.staff_mentions,
            ),
        );
        let batch = match arrival {
            Arrival::Single => &state.batch,
            Arrival::Imported => &state.import_batch,
        };
        return batch.submit(row, events, ReplayKey::of(&s)).await;
    }
    // A case to open: the row, its events and the case share a transaction with concurrent
    // submissions (group commit), each behind its own savepoint.
    let (state, caller) = (Arc::clone(state), caller.clone());
    let tier = who.tier;
    state
        .clone()
        .group
        .run(move |conn| {
            Box::pin(async move {
                write(
                    conn,
                    &state,
                    &caller,
                    &s,
                    &row,
                    survey.as_ref(),
                    reason,
                    tier,
                )
                .await
            })
        })
        .await
}

/// Everything one submission that opens a case writes, on the group commit's connection.
#[allow(clippy::too_many_arguments)]
async fn write(
    conn: &mut PgConnection,
    state: &State,
    caller: &Caller,
    s: &Submission,
    row: &NewFeedback,
    survey: Option<&pb::SurveyAnswers>,
    reason: Option<pb::CaseOpenReason>,
    tier: Tier,
) -> Result<Outcome> {
    // Before the row: a merge or erasure of this guest applied already is seen here, one
    // applied later waits for this commit and settles the row itself (directory.rs).
    let settle = crate::directory::must_settle(&mut *conn, row.guest_id).await?;
    let Some(feedback) = store::insert(&mut *conn, row).await? else {
        // The same item committed first, or is earlier in this very batch: answer with it.
        return replay(&mut *conn, &ReplayKey::of(s))
            .await?
            .ok_or(FeedbackError::NotFound("feedback"));
    };
    // The case id is known up front so FeedbackReceived (which names it) goes out before
    // CaseOpened, as consumers expect.
    let case_id = reason.map(|_| Uuid::now_v7());
    let feedback = FeedbackRow {
        case_id,
        ..feedback
    };
    // The row was inserted in this transaction under a fresh id: its events are the
    // aggregate's first (no lock or sequence look-up needed), written in one statement.
    let events = received_events(
        state,
        row,
        case_id,
        s.ota_review.as_ref(),
        survey,
        &s.staff_mentions,
    );
    guestloop_outbox::enqueue_new(conn, SOURCE, events).await?;
    let case = match (reason, case_id) {
        (Some(reason), Some(id)) => {
            let input = s.complaint.clone().unwrap_or_default();
            Some(
                case_ops::open(
                    &mut *conn,
                    state,
                    id,
                    &Actor::of(caller),
                    &feedback,
                    input,
                    reason,
                    tier,
                )
                .await?,
            )
        }
        _ => None,
    };
    let outcome = Outcome {
        feedback,
        case,
        created: true,
    };
    match (settle, row.guest_id) {
        (true, Some(guest)) => settled(conn, guest, outcome).await,
        _ => Ok(outcome),
    }
}

/// `outcome` after settling its guest (merged away or erased before it was written): the
/// rows as stored now, so the answer carries neither the erased words nor the old id.
pub(crate) async fn settled(
    conn: &mut PgConnection,
    guest: Uuid,
    outcome: Outcome,
) -> Result<Outcome> {
    crate::directory::settle(&mut *conn, guest).await?;
    let feedback = store::get(&mut *conn, outcome.feedback.id, false)
        .await?
        .ok_or(FeedbackError::NotFound("feedback"))?;
    let case = match &outcome.case {
        Some(c) => crate::store::cases::get(&mut *conn, &c.id.to_string(), false).await?,
        None => None,
    };
    Ok(Outcome {
        feedback,
        case,
        ..outcome
    })
}

/// What identifies an item across retries: same source and external id, or same key.
#[derive(Debug, Clone)]
pub(crate) struct ReplayKey {
    property_id: String,
    source: String,
    external_id: Option<String>,
    idempotency_key: Option<String>,
}

impl ReplayKey {
    fn of(s: &Submission) -> Self {
        Self {
            property_id: s.property_id.clone(),
            source: s.source.clone(),
            external_id: s.external_id.clone(),
            idempotency_key: s.idempotency_key.clone(),
        }
    }
}

/// The earlier item this submission repeats, with its case.
pub(crate) async fn replay(conn: &mut PgConnection, key: &ReplayKey) -> Result<Option<Outcome>> {
    let Some(feedback) = store::find_replay(
        &mut *conn,
        &key.property_id,
        &key.source,
        key.external_id.as_deref(),
        key.idempotency_key.as_deref(),
    )
    .await?
    else {
        return Ok(None);
    };
    let case = match feedback.case_id {
        Some(id) => crate::store::cases::get(&mut *conn, &id.to_string(), false).await?,
        None => None,
    };
    Ok(Some(Outcome {
        feedback,
        case,
        created: false,
    }))
}

/// FeedbackReceived (and SurveyAnswered for a survey) of a new item.
fn received_events(
    state: &State,
    f: &NewFeedback,
    case_id: Option<Uuid>,
    ota: Option<&pb::OtaReview>,
    survey: Option<&pb::SurveyAnswers>,
    staff: &[pb::StaffMention],
) -> Vec<NewEvent> {
    let event = |payload| NewEvent {
        aggregate_type: "feedback",
        aggregate_id: f.id.to_string(),
        property_id: f.property_id.clone(),
        payload,
    };
    let id = |u: Option<Uuid>| u.map(|u| u.to_string()).unwrap_or_default();
    let mut events = vec![event(Payload::FeedbackReceived(FeedbackReceived {
        feedback_id: f.id.to_string(),
        property_id: f.property_id.clone(),
        channel: i32::from(f.channel),
        guest_id: id(f.guest_id),
        stay_id: id(f.stay_id),
        receive_time: Some(convert::ts(f.receive_time)),
        language: f.language.clone(),
        category: i32::from(f.category),
        sentiment: i32::from(f.sentiment),
        ota_site: ota.map_or(0, |r| r.site),
        normalized_rating: ota.and_then(rules::normalized_rating),
        has_survey: survey.is_some(),
        staff_mentions: staff
            .iter()
            .map(|m| pb::StaffMention {
                staff_name: String::new(),
                ..m.clone()
            })
            .collect(),
        case_id: id(case_id),
        redacted_excerpt: if f.text == crate::erasure::ERASED {
            String::new()
        } else {
            redact::excerpt(&f.text, 280)
        },
        guest_tier: i32::from(f.guest_tier),
        reply_due_time: crate::reply::announced_due(
            state,
            f.channel,
            ota,
            f.sentiment,
            f.receive_time,
        ),
    }))];
    if let Some(s) = survey {
        events.push(event(Payload::SurveyAnswered(SurveyAnswered {
            feedback_id: f.id.to_string(),
            property_id: f.property_id.clone(),
            guest_id: id(f.guest_id),
            stay_id: id(f.stay_id),
            channel: i32::from(f.channel),
            invitation_id: s.invitation_id.clone(),
            answer_time: Some(convert::ts(f.receive_time)),
            csat: s.csat,
            nps: s.nps,
            csi_scores: s.csi_scores.clone(),
            low_score: s.low_score,
            guest_tier: i32::from(f.guest_tier),
        })));
    }
    events
}
