//! The stays table, keyed for idempotency by (property_id, pms_reservation_id).

use super::StayRecord;
use crate::domain::StayInput;
use guestloop_db::page::Page;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

const COLUMNS: &str = "id, guest_id, property_id, pms_reservation_id, status, arrival_date, departure_date, \
     room_number, rate_code, booking_channel, spend_currency, spend_minor, checked_out_time, create_time, update_time";

/// The stay for this reservation, locked for the transaction.
pub async fn lock_by_reservation(
    conn: &mut PgConnection,
    property_id: &str,
    pms_reservation_id: &str,
) -> Result<Option<StayRecord>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM stays WHERE property_id = $1 AND pms_reservation_id = $2 FOR UPDATE"
    )))
    .bind(property_id)
    .bind(pms_reservation_id)
    .fetch_optional(conn)
    .await
}

/// Inserts the stay unless the reservation exists (a concurrent first push); `None` then.
pub async fn insert(
    conn: &mut PgConnection,
    s: &StayInput,
) -> Result<Option<StayRecord>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO stays (id, guest_id, property_id, pms_reservation_id, status, arrival_date, departure_date,
            room_number, rate_code, booking_channel, spend_currency, spend_minor, checked_out_time)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)
         ON CONFLICT (property_id, pms_reservation_id) DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(s.guest_id)
    .bind(&s.property_id)
    .bind(&s.pms_reservation_id)
    .bind(s.status as i16)
    .bind(s.arrival_date)
    .bind(s.departure_date)
    .bind(&s.room_number)
    .bind(&s.rate_code)
    .bind(&s.booking_channel)
    .bind(s.spend.as_ref().map(|(c, _)| c.clone()))
    .bind(s.spend.as_ref().map(|(_, a)| *a))
    .bind(s.checked_out_time)
    .fetch_optional(conn)
    .await
}

pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    s: &StayInput,
) -> Result<StayRecord, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE stays SET guest_id=$2, status=$3, arrival_date=$4, departure_date=$5, room_number=$6,
            rate_code=$7, booking_channel=$8, spend_currency=$9, spend_minor=$10, checked_out_time=$11,
            update_time=now()
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(s.guest_id)
    .bind(s.status as i16)
    .bind(s.arrival_date)
    .bind(s.departure_date)
    .bind(&s.room_number)
    .bind(&s.rate_code)
    .bind(&s.booking_channel)
    .bind(s.spend.as_ref().map(|(c, _)| c.clone()))
    .bind(s.spend.as_ref().map(|(_, a)| *a))
    .bind(s.checked_out_time)
    .fetch_one(conn)
    .await
}

pub async fn get<'e>(
    exec: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<StayRecord>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM stays WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(exec)
    .await
}

/// Stays of a guest and/or at a property, limited to `visible` properties (None = all).
pub async fn list<'e>(
    exec: impl PgExecutor<'e>,
    visible: Option<&[String]>,
    guest_id: Option<Uuid>,
    property_id: Option<&str>,
    page: Page,
) -> Result<Vec<StayRecord>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM stays
         WHERE ($1::text[] IS NULL OR property_id = ANY($1))
           AND ($2::uuid IS NULL OR guest_id = $2)
           AND ($3::text IS NULL OR property_id = $3)
           AND ($4::timestamptz IS NULL OR (create_time, id) > ($4, $5))
         ORDER BY create_time, id LIMIT $6"
    )))
    .bind(visible)
    .bind(guest_id)
    .bind(property_id)
    .bind(page.after.map(|a| a.t))
    .bind(page.after.map(|a| a.id))
    .bind(page.size)
    .fetch_all(exec)
    .await
}

/// All stays of a guest at the `visible` properties (None = all), for export.
pub async fn all_for_guest<'e>(
    exec: impl PgExecutor<'e>,
    guest_id: Uuid,
    visible: Option<&[String]>,
) -> Result<Vec<StayRecord>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM stays WHERE guest_id = $1 AND ($2::text[] IS NULL OR property_id = ANY($2))
         ORDER BY create_time, id"
    )))
    .bind(guest_id)
    .bind(visible)
    .fetch_all(exec)
    .await
}

/// The guest's stays still booked to arrive on or after `from`, oldest arrival first.
pub async fn booked_from(
    conn: &mut PgConnection,
    guest_id: Uuid,
    from: chrono::NaiveDate,
) -> Result<Vec<StayRecord>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM stays WHERE guest_id = $1 AND status = $2 AND arrival_date >= $3
         ORDER BY arrival_date, id"
    )))
    .bind(guest_id)
    .bind(crate::domain::StayStatus::Booked as i16)
    .bind(from)
    .fetch_all(conn)
    .await
}

/// The guest's stays other than `except` that checked out: how often they stayed before
/// (a merged profile's stays were moved to the survivor, so they count too).
pub async fn checked_out_count(
    conn: &mut PgConnection,
    guest_id: Uuid,
    except: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM stays WHERE guest_id = $1 AND id <> $2 AND status = $3",
    )
    .bind(guest_id)
    .bind(except)
    .bind(crate::domain::StayStatus::CheckedOut as i16)
    .fetch_one(conn)
    .await
}

/// Moves every stay of `from` to `to` (merge).
pub async fn reassign(conn: &mut PgConnection, from: Uuid, to: Uuid) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE stays SET guest_id = $2, update_time = now() WHERE guest_id = $1")
            .bind(from)
            .bind(to)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}
