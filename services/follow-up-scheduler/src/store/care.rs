//! Pre-arrival care plans (care/): per stay, the arrival its tasks were timed for and the
//! stay event that last planned them. The tasks are ordinary tasks (store/tasks.rs) whose
//! idempotency keys name the plan: `care:<stay_id>:<task>:<version>`.

use chrono::NaiveDate;
use sqlx::PgConnection;

pub const ACTIVE: i16 = 1;
pub const CANCELLED: i16 = 2;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PlanRow {
    pub stay_id: String,
    pub property_id: String,
    pub arrival_date: NaiveDate,
    /// The sequence of the stay event that last changed the plan.
    pub version: i64,
    pub state: i16,
}

/// The idempotency key of one pre-arrival task of a plan version.
pub fn task_key(stay_id: &str, task: &str, version: i64) -> String {
    format!("care:{stay_id}:{task}:{version}")
}

/// The task name in a care task's key (`welcome_amenity`, …).
pub fn task_of_key(key: &str) -> Option<&str> {
    let mut parts = key.split(':');
    (parts.next() == Some("care")).then_some(())?;
    parts.nth(1)
}

/// The stay's plan, locked for the transaction.
pub async fn lock(conn: &mut PgConnection, stay_id: &str) -> Result<Option<PlanRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT stay_id, property_id, arrival_date, version, state FROM care_plans
          WHERE stay_id = $1 FOR UPDATE",
    )
    .bind(stay_id)
    .fetch_optional(conn)
    .await
}

pub async fn save(conn: &mut PgConnection, p: &PlanRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO care_plans (stay_id, property_id, arrival_date, version, state, update_time)
         VALUES ($1, $2, $3, $4, $5, now())
         ON CONFLICT (stay_id) DO UPDATE SET arrival_date = EXCLUDED.arrival_date,
             version = EXCLUDED.version, state = EXCLUDED.state, update_time = now()",
    )
    .bind(&p.stay_id)
    .bind(&p.property_id)
    .bind(p.arrival_date)
    .bind(p.version)
    .bind(p.state)
    .execute(conn)
    .await?;
    Ok(())
}

/// An erased guest's plans go (their tasks keep the guest id, so they find them).
pub async fn forget_guest(conn: &mut PgConnection, guest_id: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM care_plans WHERE stay_id IN (
             SELECT stay_id FROM tasks
              WHERE guest_id = $1 AND stay_id <> '' AND starts_with(idempotency_key, 'care:'))",
    )
    .bind(guest_id)
    .execute(conn)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_task() {
        let k = task_key("0195a3c0-0000-7b62-9a4e-6f1b2c3d4e5f", "welcome_amenity", 3);
        assert_eq!(
            k,
            "care:0195a3c0-0000-7b62-9a4e-6f1b2c3d4e5f:welcome_amenity:3"
        );
        assert_eq!(task_of_key(&k), Some("welcome_amenity"));
        assert_eq!(task_of_key("timer:x:1"), None);
    }
}
