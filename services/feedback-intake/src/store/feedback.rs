//! The feedback table.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FeedbackRow {
    pub id: Uuid,
    pub property_id: String,
    pub channel: i16,
    pub source: String,
    pub external_id: Option<String>,
    pub guest_id: Option<Uuid>,
    pub guest_match: i16,
    pub guest_tier: i16,
    pub stay_id: Option<Uuid>,
    pub receive_time: DateTime<Utc>,
    pub language: String,
    pub text: String,
    pub category: i16,
    pub category_source: i16,
    pub sentiment: i16,
    pub sentiment_source: i16,
    pub staff_mentions: Option<Vec<u8>>,
    pub ota_review: Option<Vec<u8>>,
    pub survey: Option<Vec<u8>>,
    pub tags: Vec<String>,
    pub case_id: Option<Uuid>,
    pub reply_time: Option<DateTime<Utc>>,
    pub submitted_by: String,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

const COLUMNS: &str = "id, property_id, channel, source, external_id, guest_id, guest_match, guest_tier, stay_id, \
    receive_time, language, text, category, category_source, sentiment, sentiment_source, staff_mentions, \
    ota_review, survey, tags, case_id, reply_time, submitted_by, create_time, update_time";

/// A new row; `insert` fills the times.
#[derive(Debug, Clone)]
pub struct NewFeedback {
    pub id: Uuid,
    pub property_id: String,
    pub channel: i16,
    pub source: String,
    pub external_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub guest_id: Option<Uuid>,
    pub guest_match: i16,
    pub guest_tier: i16,
    pub stay_id: Option<Uuid>,
    pub receive_time: DateTime<Utc>,
    pub language: String,
    pub text: String,
    pub category: i16,
    pub category_source: i16,
    pub sentiment: i16,
    pub sentiment_source: i16,
    pub staff_mentions: Option<Vec<u8>>,
    pub ota_review: Option<Vec<u8>>,
    pub survey: Option<Vec<u8>>,
    pub ota_site: i16,
    pub low_score: bool,
    pub staff_ids: Vec<String>,
    pub tags: Vec<String>,
    pub submitted_by: String,
}

/// The earlier item this submission repeats: same source and external id, or same key.
/// One query per identity, each the exact shape of its partial unique index: a single
/// query with `OR` and parameter tests got a generic plan that walked every row of the
/// property (seen in the benchmark: 2.5 ms of PostgreSQL CPU per submission, growing).
pub async fn find_replay(
    conn: &mut PgConnection,
    property_id: &str,
    source: &str,
    external_id: Option<&str>,
    idempotency_key: Option<&str>,
) -> Result<Option<FeedbackRow>, sqlx::Error> {
    if let Some(external_id) = external_id {
        let found = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM feedback
              WHERE property_id = $1 AND source = $2 AND external_id = $3"
        )))
        .bind(property_id)
        .bind(source)
        .bind(external_id)
        .fetch_optional(&mut *conn)
        .await?;
        if found.is_some() {
            return Ok(found);
        }
    }
    let Some(key) = idempotency_key else {
        return Ok(None);
    };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM feedback WHERE property_id = $1 AND idempotency_key = $2"
    )))
    .bind(property_id)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
}

/// Inserts unless a concurrent submission of the same item won (then `None`).
pub async fn insert(
    conn: &mut PgConnection,
    f: &NewFeedback,
) -> Result<Option<FeedbackRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO feedback (id, property_id, channel, source, external_id, idempotency_key, guest_id,
            guest_match, guest_tier, stay_id, receive_time, language, text, category, category_source,
            sentiment, sentiment_source, staff_mentions, ota_review, survey, ota_site, low_score,
            staff_ids, tags, submitted_by)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25)
         ON CONFLICT DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(f.id)
    .bind(&f.property_id)
    .bind(f.channel)
    .bind(&f.source)
    .bind(&f.external_id)
    .bind(&f.idempotency_key)
    .bind(f.guest_id)
    .bind(f.guest_match)
    .bind(f.guest_tier)
    .bind(f.stay_id)
    .bind(f.receive_time)
    .bind(&f.language)
    .bind(&f.text)
    .bind(f.category)
    .bind(f.category_source)
    .bind(f.sentiment)
    .bind(f.sentiment_source)
    .bind(&f.staff_mentions)
    .bind(&f.ota_review)
    .bind(&f.survey)
    .bind(f.ota_site)
    .bind(f.low_score)
    .bind(&f.staff_ids)
    .bind(&f.tags)
    .bind(&f.submitted_by)
    .fetch_optional(conn)
    .await
}

/// Inserts new rows (skipping any that repeat an earlier item: ON CONFLICT DO NOTHING) and,
/// for each row inserted, its events (`events`: the event and the row it belongs to) —
/// one statement, so one round trip, and atomic on its own: run outside a transaction it
/// commits by itself. Returns the id and stored time of each row inserted.
///
/// Rows of a guest the guest directory knows (merged away or erased: migrations/1002) are
/// skipped too, for the caller to write and settle in a transaction of its own; the
/// directory's lock, taken shared inside this statement, makes a merge or erasure applied
/// later wait for this commit (directory.rs).
pub async fn insert_many_with_events(
    conn: &mut PgConnection,
    rows: &[&NewFeedback],
    events: &[(&guestloop_outbox::PreparedEvent, Uuid)],
) -> Result<Vec<(Uuid, DateTime<Utc>)>, sqlx::Error> {
    use guestloop_outbox::{OUTBOX_COLUMNS, PreparedColumns};
    let ev = PreparedColumns::of(events.iter().map(|(e, _)| *e));
    // Only the id and the time come back: the rest of each row is what was sent
    // (`FeedbackRow::inserted`). Returning all 25 columns of every row, and building the
    // array columns from JSON in a sub-plan per row, was work per row for nothing
    // (guestloop-bench P3, docs/benchmarks/README.md).
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH directory AS MATERIALIZED (SELECT guest_directory_hits($7::uuid[]) AS hits),
         inserted AS (
         INSERT INTO feedback (id, property_id, channel, source, external_id, idempotency_key, guest_id,
            guest_match, guest_tier, stay_id, receive_time, language, text, category, category_source,
            sentiment, sentiment_source, staff_mentions, ota_review, survey, ota_site, low_score,
            staff_ids, tags, submitted_by)
         SELECT id, property_id, channel, source, external_id, idempotency_key, guest_id,
            guest_match, guest_tier, stay_id, receive_time, language, text, category, category_source,
            sentiment, sentiment_source, staff_mentions, ota_review, survey, ota_site, low_score,
            staff_ids::text[], tags::text[], submitted_by
         FROM UNNEST($1::uuid[], $2::text[], $3::int2[], $4::text[], $5::text[], $6::text[],
            $7::uuid[], $8::int2[], $9::int2[], $10::uuid[], $11::timestamptz[], $12::text[],
            $13::text[], $14::int2[], $15::int2[], $16::int2[], $17::int2[], $18::bytea[],
            $19::bytea[], $20::bytea[], $21::int2[], $22::bool[], $23::text[], $24::text[],
            $25::text[])
            WITH ORDINALITY AS r(id, property_id, channel, source, external_id, idempotency_key,
              guest_id, guest_match, guest_tier, stay_id, receive_time, language, text, category,
              category_source, sentiment, sentiment_source, staff_mentions, ota_review, survey,
              ota_site, low_score, staff_ids, tags, submitted_by, n)
         WHERE guest_id IS NULL OR NOT guest_id = ANY((SELECT hits FROM directory)::uuid[])
         ORDER BY n
         ON CONFLICT DO NOTHING
         RETURNING id, create_time),
         events AS (
         INSERT INTO outbox ({OUTBOX_COLUMNS})
         SELECT e, t, a, s, p, n, w, b
           FROM UNNEST({}, $34::uuid[]) WITH ORDINALITY AS x(e, t, a, s, p, n, w, b, row_id, o)
          WHERE row_id IN (SELECT id FROM inserted)
          ORDER BY o)
         SELECT id, create_time FROM inserted",
        PreparedColumns::arrays(26)
    )))
    .bind(rows.iter().map(|f| f.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.property_id.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.channel).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.source.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.external_id.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.idempotency_key.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.guest_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.guest_match).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.guest_tier).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.stay_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.receive_time).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.language.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.text.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.category).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.category_source).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.sentiment).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.sentiment_source).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.staff_mentions.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.ota_review.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.survey.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.ota_site).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.low_score).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| array_literal(&f.staff_ids)).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| array_literal(&f.tags)).collect::<Vec<_>>())
    .bind(rows.iter().map(|f| f.submitted_by.as_str()).collect::<Vec<_>>())
    .bind(ev.event_id)
    .bind(ev.aggregate_type)
    .bind(ev.aggregate_id)
    .bind(ev.sequence)
    .bind(ev.property_id)
    .bind(ev.event_type)
    .bind(ev.occur_time)
    .bind(ev.envelope)
    .bind(events.iter().map(|(_, row)| *row).collect::<Vec<_>>())
    .fetch_all(conn)
    .await
}

/// `items` as PostgreSQL's text form of a `text[]` (`{"a","b \"c\""}`): an array column
/// cannot be UNNESTed from an array of arrays of different lengths, so each row's array
/// travels as text and is cast back in the statement.
fn array_literal(items: &[String]) -> String {
    let mut out = String::with_capacity(2 + items.iter().map(|i| i.len() + 3).sum::<usize>());
    out.push('{');
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

impl FeedbackRow {
    /// The row `f` became when inserted at `at` (a new row: no case, no reply yet; the
    /// store's triggers change nothing on insert).
    pub fn inserted(f: &NewFeedback, at: DateTime<Utc>) -> Self {
        Self {
            id: f.id,
            property_id: f.property_id.clone(),
            channel: f.channel,
            source: f.source.clone(),
            external_id: f.external_id.clone(),
            guest_id: f.guest_id,
            guest_match: f.guest_match,
            guest_tier: f.guest_tier,
            stay_id: f.stay_id,
            // As stored: PostgreSQL keeps microseconds (sqlx truncates when it binds).
            receive_time: chrono::SubsecRound::trunc_subsecs(f.receive_time, 6),
            language: f.language.clone(),
            text: f.text.clone(),
            category: f.category,
            category_source: f.category_source,
            sentiment: f.sentiment,
            sentiment_source: f.sentiment_source,
            staff_mentions: f.staff_mentions.clone(),
            ota_review: f.ota_review.clone(),
            survey: f.survey.clone(),
            tags: f.tags.clone(),
            case_id: None,
            reply_time: None,
            submitted_by: f.submitted_by.clone(),
            create_time: at,
            update_time: at,
        }
    }
}

pub async fn get<'e>(
    exec: impl PgExecutor<'e>,
    id: Uuid,
    for_update: bool,
) -> Result<Option<FeedbackRow>, sqlx::Error> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM feedback WHERE id = $1{lock}"
    )))
    .bind(id)
    .fetch_optional(exec)
    .await
}

pub async fn set_case(
    conn: &mut PgConnection,
    id: Uuid,
    case_id: Uuid,
) -> Result<FeedbackRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE feedback SET case_id = $2, update_time = now() WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(case_id)
    .fetch_one(conn)
    .await
}

/// Marks the first reply; later replies keep the first time. Returns the row and whether
/// this call set it.
pub async fn set_reply(
    conn: &mut PgConnection,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<(FeedbackRow, bool), sqlx::Error> {
    let updated: Option<FeedbackRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE feedback SET reply_time = $2, update_time = now() WHERE id = $1 AND reply_time IS NULL RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(at)
    .fetch_optional(&mut *conn)
    .await?;
    match updated {
        Some(row) => Ok((row, true)),
        None => Ok((
            get(conn, id, false)
                .await?
                .ok_or(sqlx::Error::RowNotFound)?,
            false,
        )),
    }
}

/// Unanswered feedback of a case (answered when the case is acknowledged).
pub async fn unreplied_of_case<'e>(
    exec: impl PgExecutor<'e>,
    case_id: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM feedback WHERE case_id = $1 AND reply_time IS NULL")
        .bind(case_id)
        .fetch_all(exec)
        .await
}

pub async fn set_ota_review(
    conn: &mut PgConnection,
    id: Uuid,
    review: Vec<u8>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE feedback SET ota_review = $2, update_time = now() WHERE id = $1")
        .bind(id)
        .bind(review)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn ids_of_case<'e>(
    exec: impl PgExecutor<'e>,
    case_id: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM feedback WHERE case_id = $1 ORDER BY receive_time, id")
        .bind(case_id)
        .fetch_all(exec)
        .await
}

/// Filter values, already checked and limited to the caller's scope.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// None: the whole chain.
    pub properties: Option<Vec<String>>,
    pub channels: Vec<i16>,
    pub categories: Vec<i16>,
    pub sentiments: Vec<i16>,
    pub guest_id: Option<Uuid>,
    pub stay_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub has_case: Option<bool>,
    pub replied: Option<bool>,
    pub low_score: Option<bool>,
    pub ota_sites: Vec<i16>,
    pub language: Option<String>,
    pub staff_id: Option<String>,
    /// Full-text query (search only).
    pub query: Option<String>,
}

/// One page: newest received first, or best match first when searching.
pub async fn list<'e>(
    exec: impl PgExecutor<'e>,
    f: &Filter,
    limit: i64,
    offset: i64,
) -> Result<Vec<FeedbackRow>, sqlx::Error> {
    let order = if f.query.is_some() {
        "ts_rank(search, plainto_tsquery('simple', $15)) DESC, receive_time DESC, id DESC"
    } else {
        "receive_time DESC, id DESC"
    };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM feedback
         WHERE ($1::text[] IS NULL OR property_id = ANY($1))
           AND (cardinality($2::smallint[]) = 0 OR channel = ANY($2))
           AND (cardinality($3::smallint[]) = 0 OR category = ANY($3))
           AND (cardinality($4::smallint[]) = 0 OR sentiment = ANY($4))
           AND ($5::uuid IS NULL OR guest_id = $5)
           AND ($6::uuid IS NULL OR stay_id = $6)
           AND ($7::timestamptz IS NULL OR receive_time >= $7)
           AND ($8::timestamptz IS NULL OR receive_time < $8)
           AND ($9::bool IS NULL OR (case_id IS NOT NULL) = $9)
           AND ($10::bool IS NULL OR (reply_time IS NOT NULL) = $10)
           AND ($11::bool IS NULL OR low_score = $11)
           AND (cardinality($12::smallint[]) = 0 OR ota_site = ANY($12))
           AND ($13::text IS NULL OR language = $13)
           AND ($14::text IS NULL OR $14 = ANY(staff_ids))
           AND ($15::text IS NULL OR search @@ plainto_tsquery('simple', $15) OR text ILIKE '%' || replace(replace(replace($15, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%')
         ORDER BY {order}
         LIMIT $16 OFFSET $17"
    )))
    .bind(&f.properties)
    .bind(&f.channels)
    .bind(&f.categories)
    .bind(&f.sentiments)
    .bind(f.guest_id)
    .bind(f.stay_id)
    .bind(f.from)
    .bind(f.to)
    .bind(f.has_case)
    .bind(f.replied)
    .bind(f.low_score)
    .bind(&f.ota_sites)
    .bind(&f.language)
    .bind(&f.staff_id)
    .bind(&f.query)
    .bind(limit)
    .bind(offset)
    .fetch_all(exec)
    .await
}

/// Every item of these guests in `properties` (`None`: all), oldest first: a
/// subject-access export's share (export.rs).
pub async fn of_guests<'e>(
    exec: impl PgExecutor<'e>,
    guest_ids: &[Uuid],
    properties: Option<&[String]>,
) -> Result<Vec<FeedbackRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM feedback
          WHERE guest_id = ANY($1) AND ($2::text[] IS NULL OR property_id = ANY($2))
          ORDER BY receive_time, id"
    )))
    .bind(guest_ids)
    .bind(properties)
    .fetch_all(exec)
    .await
}
