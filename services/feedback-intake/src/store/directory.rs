//! The guest directory (migrations/1002): merges and erasures learnt from guest-profile,
//! its lock, and the bulk changes they make across feedback, cases, case_events and the
//! outbox. What survives an erasure is decided in erasure.rs; this is only the SQL.

use crate::erasure::{self, ERASED};
use sqlx::PgConnection;
use uuid::Uuid;

/// Takes the guest-directory lock exclusively until the transaction ends (the key
/// `guest_directory_hits()` takes shared, migrations/1002): waits for every writer that
/// holds it shared to commit (so their rows are visible here) and keeps new ones out until
/// this change commits (so they see it). Must come before anything else in the transaction.
/// The same lock the other services' guest directories use (each in its own schema).
pub use guestloop_db::guest_directory::lock_exclusive;

/// Which of `ids` were merged away or erased; takes the lock shared for the rest of the
/// transaction (see `guest_directory_hits()`).
pub async fn hits(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT guest_directory_hits($1::uuid[])")
        .bind(ids)
        .fetch_one(conn)
        .await
}

/// Remembers duplicate -> survivor (ids are UUIDs in this schema).
pub use guestloop_db::guest_directory::record_merge;

pub async fn record_erasure(conn: &mut PgConnection, guest_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO erased_guests (guest_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(guest_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// `guest` and the survivors its merges lead to, in order (the last is where its records
/// belong now), each with whether it was erased. Sixteen hops at most: guest-profile never
/// merges into a merged-away profile, so a longer chain would be a loop.
pub async fn chain(conn: &mut PgConnection, guest: Uuid) -> Result<Vec<(Uuid, bool)>, sqlx::Error> {
    sqlx::query_as(
        "WITH RECURSIVE chain(id, depth) AS (
             SELECT $1::uuid, 0
             UNION ALL
             SELECT m.survivor_guest_id, c.depth + 1
               FROM guest_merges m JOIN chain c ON m.duplicate_guest_id = c.id
              WHERE c.depth < 16)
         SELECT id, EXISTS (SELECT 1 FROM erased_guests e WHERE e.guest_id = chain.id)
           FROM chain ORDER BY depth",
    )
    .bind(guest)
    .fetch_all(conn)
    .await
}

/// Feedback and cases of `from` now belong to `to`. Returns the cases moved, as
/// (property, case) for queue watchers.
pub async fn move_guest(
    conn: &mut PgConnection,
    from: &[Uuid],
    to: Uuid,
) -> Result<(u64, Vec<(String, Uuid)>), sqlx::Error> {
    // Feedback first: a case is opened from a feedback row read FOR UPDATE, so a case
    // written meanwhile is committed before this statement gets that row, and the cases
    // statement below (a later snapshot) sees it.
    let feedback = sqlx::query(
        "UPDATE feedback SET guest_id = $2, update_time = now() WHERE guest_id = ANY($1)",
    )
    .bind(from)
    .bind(to)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let cases = sqlx::query_as(
        "UPDATE cases SET guest_id = $2, update_time = now() WHERE guest_id = ANY($1)
         RETURNING property_id, id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    Ok((feedback, cases))
}

/// Replaces the words of every feedback item of `guest` and unlinks it from the guest;
/// returns their ids.
pub async fn erase_feedback(
    conn: &mut PgConnection,
    guest: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    // FOR UPDATE: a reply being recorded (which rewrites the OTA review blob) finishes
    // first, and its blob is the one rewritten here.
    let rows: Vec<FeedbackBlobs> = sqlx::query_as(
        "SELECT id, ota_review, survey, staff_mentions FROM feedback WHERE guest_id = $1 FOR UPDATE",
    )
    .bind(guest)
    .fetch_all(&mut *conn)
    .await?;
    blank_feedback(conn, &rows, true).await
}

/// A feedback item's id and the blobs that can hold words (OTA review, survey answers,
/// staff mentions), as [`blank_feedback`] takes them.
pub type FeedbackBlobs = (Uuid, Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

/// Replaces the words of these items (read FOR UPDATE by the caller) and, with
/// `unlink_guest`, their link to the guest (erasure; retention keeps it). Returns their ids.
pub async fn blank_feedback(
    conn: &mut PgConnection,
    rows: &[FeedbackBlobs],
    unlink_guest: bool,
) -> Result<Vec<Uuid>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    let ota: Vec<Option<Vec<u8>>> = rows
        .iter()
        .map(|r| r.1.as_deref().and_then(erasure::ota_review))
        .collect();
    let survey: Vec<Option<Vec<u8>>> = rows
        .iter()
        .map(|r| r.2.as_deref().and_then(erasure::survey))
        .collect();
    let staff: Vec<Option<Vec<u8>>> = rows
        .iter()
        .map(|r| r.3.as_deref().map(erasure::staff_mentions))
        .collect();
    // Tags are free labels the submitter typed about the item; they cannot be told apart
    // from personal data, so they go too. The search vector follows the text (generated).
    sqlx::query(
        "UPDATE feedback f
            SET text = $5, ota_review = u.ota, survey = u.survey, staff_mentions = u.staff,
                tags = '{}', guest_id = CASE WHEN $6 THEN NULL ELSE f.guest_id END,
                update_time = now()
           FROM UNNEST($1::uuid[], $2::bytea[], $3::bytea[], $4::bytea[]) AS u(id, ota, survey, staff)
          WHERE f.id = u.id",
    )
    .bind(&ids)
    .bind(&ota)
    .bind(&survey)
    .bind(&staff)
    .bind(ERASED)
    .bind(unlink_guest)
    .execute(&mut *conn)
    .await?;
    super::replies::blank(conn, &ids, ERASED).await?;
    Ok(ids)
}

/// Drops the guest's words from this service's own outbox copies of FeedbackReceived for
/// `feedback` (nothing deletes outbox rows, so delivered ones would keep them for good).
pub async fn erase_outbox(conn: &mut PgConnection, feedback: &[Uuid]) -> Result<u64, sqlx::Error> {
    let ids: Vec<String> = feedback.iter().map(Uuid::to_string).collect();
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT id, envelope FROM outbox
          WHERE aggregate_type = 'feedback' AND aggregate_id = ANY($1)
            AND event_type = 'feedback_received'",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    guestloop_outbox::rewrite_envelopes(conn, &rows, erasure::envelope).await
}

/// Replaces the free text of every case of `guest` and of its history, and unlinks the
/// cases from the guest. Statuses, grades, clocks, compensation amounts and versions stay:
/// no case event is added (an erasure is not work on the case). Returns (property, case).
pub async fn erase_cases(
    conn: &mut PgConnection,
    guest: Uuid,
) -> Result<Vec<(String, Uuid)>, sqlx::Error> {
    // Staff's changes read the case FOR UPDATE: one under way finishes first and is
    // rewritten here; one that starts later sees the erased row.
    let cases: Vec<(String, Uuid)> = sqlx::query_as(
        "UPDATE cases
            SET title = $2,
                description = CASE WHEN description = '' THEN '' ELSE $2 END,
                grade_reason = CASE WHEN grade_reason = '' THEN '' ELSE $2 END,
                guest_id = NULL, update_time = now()
          WHERE guest_id = $1
         RETURNING property_id, id",
    )
    .bind(guest)
    .bind(ERASED)
    .fetch_all(&mut *conn)
    .await?;
    if cases.is_empty() {
        return Ok(cases);
    }
    let case_ids: Vec<Uuid> = cases.iter().map(|c| c.1).collect();
    blank_case_events(conn, &case_ids).await?;
    Ok(cases)
}

/// Replaces the titles, descriptions and grade reasons of these cases (retention: the
/// guest link stays; their history's notes go by their own time, [`blank_events`]).
pub async fn blank_cases(conn: &mut PgConnection, case_ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE cases
            SET title = $2,
                description = CASE WHEN description = '' THEN '' ELSE $2 END,
                grade_reason = CASE WHEN grade_reason = '' THEN '' ELSE $2 END,
                update_time = now()
          WHERE id = ANY($1)",
    )
    .bind(case_ids)
    .bind(ERASED)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks the reason, note and compensation description of every event of these cases.
async fn blank_case_events(conn: &mut PgConnection, case_ids: &[Uuid]) -> Result<(), sqlx::Error> {
    let events: Vec<(Uuid, Vec<u8>)> =
        sqlx::query_as("SELECT id, event FROM case_events WHERE case_id = ANY($1)")
            .bind(case_ids)
            .fetch_all(&mut *conn)
            .await?;
    blank_events(conn, &events).await
}

/// Marks the reason, note and compensation description of these events (id, encoded
/// event), read by the caller.
pub async fn blank_events(
    conn: &mut PgConnection,
    events: &[(Uuid, Vec<u8>)],
) -> Result<(), sqlx::Error> {
    let (ids, blobs): (Vec<Uuid>, Vec<Vec<u8>>) = events
        .iter()
        .map(|(id, bytes)| (*id, erasure::case_event(bytes)))
        .unzip();
    sqlx::query(
        "UPDATE case_events c
            SET event = u.event, note = CASE WHEN c.note = '' THEN '' ELSE $3 END
           FROM UNNEST($1::uuid[], $2::bytea[]) AS u(id, event) WHERE c.id = u.id",
    )
    .bind(&ids)
    .bind(&blobs)
    .bind(ERASED)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
