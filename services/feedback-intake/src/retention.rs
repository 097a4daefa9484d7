//! feedback-intake's retention (issue 11, guestloop_db::retention runs it): feedback older
//! than the property's `retention.feedback_text` loses the guest's words as an erasure
//! would (text, survey text answers, OTA title and reviewer, staff names as written, tags,
//! and the excerpt in this service's outbox copy) but keeps its guest link, category and
//! scores; cases older than `retention.case_notes` (from their open time) lose their
//! titles, descriptions and grade reasons, and each history entry older than it (from its
//! own time: a note added years after the case opened lives its full period) loses its
//! note, reason and compensation description. Each walks the property's records in time
//! order from the job's mark. A record that arrives already past its period (a
//! historical import, whose time is behind the mark) is stored without its words
//! ([`expire_on_arrival`], [`expire_case_on_arrival`]), so the mark never has to go back.

use crate::erasure::{self, ERASED};
use crate::state::State;
use crate::store::cases::CaseRow;
use crate::store::directory::{self as store, FeedbackBlobs};
use crate::store::feedback::NewFeedback;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use guestloop_db::retention::{Sweep, Swept, Task};
use sqlx::PgConnection;
use uuid::Uuid;

/// Whether `at` is more than `period` ago.
fn past(at: DateTime<Utc>, period: guestloop_config::Seconds) -> bool {
    chrono::Duration::from_std(period.as_duration()).is_ok_and(|p| at < Utc::now() - p)
}

/// A new item received longer ago than its property's `feedback_text` period loses the
/// words the sweep would blank (kept: category, sentiment, scores, links).
pub fn expire_on_arrival(state: &State, row: &mut NewFeedback) {
    let periods = state.retention.for_property(&state.chain, &row.property_id);
    if !past(row.receive_time, periods.feedback_text) {
        return;
    }
    if !row.text.is_empty() {
        row.text = ERASED.to_string();
    }
    row.ota_review = row.ota_review.as_deref().and_then(erasure::ota_review);
    row.survey = row.survey.as_deref().and_then(erasure::survey);
    row.staff_mentions = row.staff_mentions.as_deref().map(erasure::staff_mentions);
    row.tags.clear();
}

/// A new case opened longer ago than its property's `case_notes` period keeps no title or
/// description.
pub fn expire_case_on_arrival(state: &State, mut row: CaseRow) -> CaseRow {
    if case_notes_expired(state, &row.property_id, row.open_time) {
        row.title = ERASED.to_string();
        if !row.description.is_empty() {
            row.description = ERASED.to_string();
        }
    }
    row
}

/// Whether a case opened at `open_time` is past its property's case-note period (an
/// imported record's notes are then not kept at all).
pub fn case_notes_expired(state: &State, property_id: &str, open_time: DateTime<Utc>) -> bool {
    let periods = state.retention.for_property(&state.chain, property_id);
    past(open_time, periods.case_notes)
}

pub fn tasks() -> Vec<Task> {
    vec![
        Task {
            name: "feedback_text",
            period: |p| p.feedback_text,
            per_property: true,
            sweep: feedback_text,
        },
        Task {
            name: "case_notes",
            period: |p| p.case_notes,
            per_property: true,
            sweep: case_notes,
        },
        Task {
            name: "case_event_notes",
            period: |p| p.case_notes,
            per_property: true,
            sweep: case_event_notes,
        },
    ]
}

/// A feedback item's id, receive time and word-holding blobs.
type DatedBlobs = (
    Uuid,
    DateTime<Utc>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

fn feedback_text<'c>(
    conn: &'c mut PgConnection,
    s: &'c Sweep,
) -> BoxFuture<'c, Result<Swept, sqlx::Error>> {
    Box::pin(async move {
        let (t, id) = s.after_uuid();
        let rows: Vec<DatedBlobs> = sqlx::query_as(
            "SELECT id, receive_time, ota_review, survey, staff_mentions FROM feedback
                  WHERE property_id = $1 AND receive_time < $2
                    AND ($3::timestamptz IS NULL OR (receive_time, id) > ($3, $4::uuid))
                  ORDER BY receive_time, id LIMIT $5 FOR UPDATE",
        )
        .bind(&s.scope)
        .bind(s.cutoff)
        .bind(t)
        .bind(id)
        .bind(s.batch)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = rows.last().map(|r| (r.1, r.0.to_string())) else {
            return Ok(None);
        };
        let blobs: Vec<FeedbackBlobs> = rows
            .into_iter()
            .map(|(id, _, ota, survey, staff)| (id, ota, survey, staff))
            .collect();
        let ids = store::blank_feedback(conn, &blobs, false).await?;
        store::erase_outbox(conn, &ids).await?;
        Ok(Some((last, ids.len() as u64)))
    })
}

fn case_notes<'c>(
    conn: &'c mut PgConnection,
    s: &'c Sweep,
) -> BoxFuture<'c, Result<Swept, sqlx::Error>> {
    Box::pin(async move {
        let (t, id) = s.after_uuid();
        // FOR UPDATE: staff's changes read the case FOR UPDATE too; one under way finishes
        // first and its words are blanked here.
        let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, open_time FROM cases
              WHERE property_id = $1 AND open_time < $2
                AND ($3::timestamptz IS NULL OR (open_time, id) > ($3, $4::uuid))
              ORDER BY open_time, id LIMIT $5 FOR UPDATE",
        )
        .bind(&s.scope)
        .bind(s.cutoff)
        .bind(t)
        .bind(id)
        .bind(s.batch)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = rows.last().map(|r| (r.1, r.0.to_string())) else {
            return Ok(None);
        };
        let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
        store::blank_cases(conn, &ids).await?;
        Ok(Some((last, ids.len() as u64)))
    })
}

fn case_event_notes<'c>(
    conn: &'c mut PgConnection,
    s: &'c Sweep,
) -> BoxFuture<'c, Result<Swept, sqlx::Error>> {
    Box::pin(async move {
        let (t, id) = s.after_uuid();
        let rows: Vec<(Uuid, DateTime<Utc>, Vec<u8>)> = sqlx::query_as(
            "SELECT id, event_time, event FROM case_events
              WHERE property_id = $1 AND event_time < $2
                AND ($3::timestamptz IS NULL OR (event_time, id) > ($3, $4::uuid))
              ORDER BY event_time, id LIMIT $5 FOR UPDATE",
        )
        .bind(&s.scope)
        .bind(s.cutoff)
        .bind(t)
        .bind(id)
        .bind(s.batch)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = rows.last().map(|r| (r.1, r.0.to_string())) else {
            return Ok(None);
        };
        let events: Vec<(Uuid, Vec<u8>)> = rows.into_iter().map(|(id, _, e)| (id, e)).collect();
        store::blank_events(conn, &events).await?;
        Ok(Some((last, events.len() as u64)))
    })
}
