//! The transactional outbox (ARCHITECTURE.md, "How services talk"). A service writes its
//! change and the event in one transaction ([`enqueue`]); the [`Relay`] delivers each
//! subscriber's stream in commit order (so in order per aggregate), retrying with backoff
//! until the subscriber acknowledges. Consumers record applied event ids ([`inbox`]) so a
//! redelivery changes nothing: at-least-once on the wire, exactly-once in effect.

pub mod consume;
/// R8: the envelope decoder under random input (tests and fuzz/).
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod guest_merge;
pub mod inbox;
mod relay;
mod sequencer;

pub use relay::{Relay, Subscriber};

use guestloop_proto::events::v1::{EventEnvelope, event_envelope::Payload};
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

/// The outbox and inbox tables; services run these with their own migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// An event to write with the change that caused it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// "stay", "guest", "case", …
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    /// Empty for chain-wide aggregates (a guest).
    pub property_id: String,
    pub payload: Payload,
}

/// Writes `event` into the outbox on `conn`, which must be inside the transaction that makes
/// the change. Returns the event id.
pub async fn enqueue(
    conn: &mut PgConnection,
    source: &str,
    event: NewEvent,
) -> Result<Uuid, sqlx::Error> {
    let event_id = Uuid::now_v7();
    let now = chrono::Utc::now();
    // Serialises writers of one aggregate so sequences never collide.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("{}:{}", event.aggregate_type, event.aggregate_id))
        .execute(&mut *conn)
        .await?;
    let sequence: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(sequence), 0) + 1 FROM outbox
         WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(event.aggregate_type)
    .bind(&event.aggregate_id)
    .fetch_one(&mut *conn)
    .await?;
    let (event_type, envelope) = envelope(source, event_id, now, sequence, &event);
    sqlx::query(
        "INSERT INTO outbox (event_id, aggregate_type, aggregate_id, sequence, property_id,
                             event_type, occur_time, envelope)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(event_id)
    .bind(event.aggregate_type)
    .bind(&event.aggregate_id)
    .bind(sequence)
    .bind(&event.property_id)
    .bind(event_type)
    .bind(now)
    .bind(envelope)
    .execute(&mut *conn)
    .await?;
    Ok(event_id)
}

/// Writes the first events of aggregates created in this same transaction (fresh ids no
/// other transaction can know before this one commits), numbered 1, 2, … per aggregate in
/// order. It needs neither the per-aggregate lock nor the sequence look-up of [`enqueue`],
/// and writes every event in one statement: the hot intake path's share of the outbox.
pub async fn enqueue_new(
    conn: &mut PgConnection,
    source: &str,
    events: Vec<NewEvent>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let prepared = prepare_new(source, events);
    write_prepared(conn, &prepared).await?;
    Ok(prepared.iter().map(|p| p.event_id).collect())
}

/// An event of a new aggregate with its envelope built: made where the change is decided
/// (so the envelope carries that request's trace context), written later, perhaps by a
/// batch writer on another task.
#[derive(Debug, Clone)]
pub struct PreparedEvent {
    pub event_id: Uuid,
    aggregate_type: &'static str,
    aggregate_id: String,
    sequence: i64,
    property_id: String,
    event_type: String,
    occur_time: chrono::DateTime<chrono::Utc>,
    envelope: Vec<u8>,
}

/// The envelopes of new aggregates' first events (see [`enqueue_new`]), in the current
/// span's trace context.
pub fn prepare_new(source: &str, events: Vec<NewEvent>) -> Vec<PreparedEvent> {
    let now = chrono::Utc::now();
    let mut sequences: std::collections::HashMap<(&'static str, String), i64> =
        std::collections::HashMap::new();
    events
        .into_iter()
        .map(|event| {
            let sequence = sequences
                .entry((event.aggregate_type, event.aggregate_id.clone()))
                .or_insert(0);
            *sequence += 1;
            let event_id = Uuid::now_v7();
            let (event_type, envelope) = envelope(source, event_id, now, *sequence, &event);
            PreparedEvent {
                event_id,
                aggregate_type: event.aggregate_type,
                aggregate_id: event.aggregate_id,
                sequence: *sequence,
                property_id: event.property_id,
                event_type,
                occur_time: now,
                envelope,
            }
        })
        .collect()
}

/// Writes prepared events in one statement, inside the caller's transaction.
pub async fn write_prepared(
    conn: &mut PgConnection,
    events: &[PreparedEvent],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let c = PreparedColumns::of(events.iter());
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO outbox ({OUTBOX_COLUMNS})
         SELECT e, t, a, s, p, n, w, b
           FROM UNNEST({}) WITH ORDINALITY AS x(e, t, a, s, p, n, w, b, o)
          ORDER BY o",
        PreparedColumns::arrays(1)
    )))
    .bind(c.event_id)
    .bind(c.aggregate_type)
    .bind(c.aggregate_id)
    .bind(c.sequence)
    .bind(c.property_id)
    .bind(c.event_type)
    .bind(c.occur_time)
    .bind(c.envelope)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The outbox columns a prepared event fills, in [`PreparedColumns`]' order.
pub const OUTBOX_COLUMNS: &str = "event_id, aggregate_type, aggregate_id, sequence, property_id, event_type, occur_time, envelope";

/// Prepared events as one array per outbox column, for a writer that inserts them inside a
/// statement of its own (a row and its events in one round trip): bind the fields in
/// declaration order to the parameters [`PreparedColumns::arrays`] names.
pub struct PreparedColumns<'a> {
    pub event_id: Vec<Uuid>,
    pub aggregate_type: Vec<&'a str>,
    pub aggregate_id: Vec<&'a str>,
    pub sequence: Vec<i64>,
    pub property_id: Vec<&'a str>,
    pub event_type: Vec<&'a str>,
    pub occur_time: Vec<chrono::DateTime<chrono::Utc>>,
    pub envelope: Vec<&'a [u8]>,
}

impl<'a> PreparedColumns<'a> {
    pub fn of(events: impl Iterator<Item = &'a PreparedEvent>) -> Self {
        let mut c = Self {
            event_id: Vec::new(),
            aggregate_type: Vec::new(),
            aggregate_id: Vec::new(),
            sequence: Vec::new(),
            property_id: Vec::new(),
            event_type: Vec::new(),
            occur_time: Vec::new(),
            envelope: Vec::new(),
        };
        for e in events {
            c.event_id.push(e.event_id);
            c.aggregate_type.push(e.aggregate_type);
            c.aggregate_id.push(&e.aggregate_id);
            c.sequence.push(e.sequence);
            c.property_id.push(&e.property_id);
            c.event_type.push(&e.event_type);
            c.occur_time.push(e.occur_time);
            c.envelope.push(&e.envelope);
        }
        c
    }

    /// The eight typed array parameters `$first` … `$first + 7`, for an UNNEST.
    pub fn arrays(first: usize) -> String {
        [
            "uuid",
            "text",
            "text",
            "bigint",
            "text",
            "text",
            "timestamptz",
            "bytea",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", first + i))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// The event's kind and its encoded envelope, as the outbox stores and delivers it.
fn envelope(
    source: &str,
    event_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
    sequence: i64,
    event: &NewEvent,
) -> (String, Vec<u8>) {
    let envelope = EventEnvelope {
        event_id: event_id.to_string(),
        source: source.to_string(),
        aggregate_type: event.aggregate_type.to_string(),
        aggregate_id: event.aggregate_id.clone(),
        sequence,
        occur_time: Some(prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: now.timestamp_subsec_nanos() as i32,
        }),
        property_id: event.property_id.clone(),
        traceparent: guestloop_telemetry::propagation::current_traceparent().unwrap_or_default(),
        payload: Some(event.payload.clone()),
    };
    (payload_name(&event.payload), envelope.encode_to_vec())
}

/// The payload's kind as a stable snake_case name, for queries and metrics labels.
pub fn payload_name(payload: &Payload) -> String {
    // The variant is what Debug prints before its first '('; stop formatting there rather
    // than render the whole event (texts included) to throw it away.
    struct Variant(String);
    impl std::fmt::Write for Variant {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            match s.find('(') {
                Some(i) => {
                    self.0.push_str(&s[..i]);
                    Err(std::fmt::Error)
                }
                None => {
                    self.0.push_str(s);
                    Ok(())
                }
            }
        }
    }
    let mut variant = Variant(String::new());
    let _ = std::fmt::write(&mut variant, format_args!("{payload:?}"));
    let variant = variant.0;
    let mut name = String::new();
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                name.push('_');
            }
            name.push(c.to_ascii_lowercase());
        } else {
            name.push(c);
        }
    }
    name
}

/// What `subscriber` has still to receive: the relay's gauges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backlog {
    /// Events written but not yet acknowledged (as [`pending`]).
    pub events: i64,
    /// How long ago the oldest of them was written; 0 when there is none. The events'
    /// lag: the clocks they start (a case's SLA at the scheduler) start that much late.
    pub oldest_age_seconds: f64,
}

/// [`pending`] and the age of the oldest pending event in one round trip; each part is read
/// on its own index (the commit-order one, and the partial one of the unsequenced rows).
pub async fn backlog(pool: &sqlx::PgPool, subscriber: &str) -> Result<Backlog, sqlx::Error> {
    let (events, oldest_age_seconds): (i64, f64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM outbox WHERE position > COALESCE(
                    (SELECT last_delivered_id FROM outbox_cursor WHERE subscriber = $1), 0))
              + (SELECT COUNT(*) FROM outbox WHERE position IS NULL),
                COALESCE(EXTRACT(EPOCH FROM now() - LEAST(
                    (SELECT occur_time FROM outbox WHERE position > COALESCE(
                        (SELECT last_delivered_id FROM outbox_cursor WHERE subscriber = $1), 0)
                     ORDER BY position LIMIT 1),
                    (SELECT occur_time FROM outbox WHERE position IS NULL ORDER BY id LIMIT 1)
                ))::float8, 0)",
    )
    .bind(subscriber)
    .fetch_one(pool)
    .await?;
    Ok(Backlog {
        events,
        oldest_age_seconds: oldest_age_seconds.max(0.0),
    })
}

/// Events written but not yet acknowledged by `subscriber`.
pub async fn pending(pool: &sqlx::PgPool, subscriber: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        // Two counts, each on its own index (an OR of the two would scan the table).
        "SELECT (SELECT COUNT(*) FROM outbox WHERE position > COALESCE(
                    (SELECT last_delivered_id FROM outbox_cursor WHERE subscriber = $1), 0))
              + (SELECT COUNT(*) FROM outbox WHERE position IS NULL)",
    )
    .bind(subscriber)
    .fetch_one(pool)
    .await
}

/// Rewrites envelopes already in the outbox, in place (an erasure taking personal data out
/// of events written before it, delivered or not: nothing deletes outbox rows). `rows` are
/// (outbox id, envelope) as the caller selected them; `rewrite` gives the new envelope, or
/// `None` to leave one as it is. Returns how many changed.
pub async fn rewrite_envelopes(
    conn: &mut sqlx::PgConnection,
    rows: &[(i64, Vec<u8>)],
    rewrite: impl Fn(&[u8]) -> Option<Vec<u8>>,
) -> Result<u64, sqlx::Error> {
    let (ids, envelopes): (Vec<i64>, Vec<Vec<u8>>) = rows
        .iter()
        .filter_map(|(id, bytes)| Some((*id, rewrite(bytes)?)))
        .unzip();
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query(
        "UPDATE outbox o SET envelope = u.envelope
           FROM UNNEST($1::bigint[], $2::bytea[]) AS u(id, envelope) WHERE o.id = u.id",
    )
    .bind(&ids)
    .bind(&envelopes)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Every envelope in the outbox for one aggregate, oldest first (tests and support tools).
pub async fn envelopes_for(
    pool: &sqlx::PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<EventEnvelope>, sqlx::Error> {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT envelope FROM outbox WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY id",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|b| EventEnvelope::decode(b.as_slice()).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::payload_name;
    use guestloop_proto::events::v1::{FeedbackReceived, StayCheckedOut, event_envelope::Payload};

    #[test]
    fn payload_names_are_the_variants_in_snake_case() {
        let received = Payload::FeedbackReceived(FeedbackReceived {
            redacted_excerpt: "text (with a parenthesis) that is never rendered".into(),
            ..Default::default()
        });
        assert_eq!(payload_name(&received), "feedback_received");
        assert_eq!(
            payload_name(&Payload::StayCheckedOut(StayCheckedOut::default())),
            "stay_checked_out"
        );
    }
}
