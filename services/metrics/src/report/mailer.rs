//! The daily report delivered. Each morning, from `daily_report.local_hour` in the
//! recipient's own time zone (their property's), yesterday's voice-of-customer report goes
//! by e-mail (notification, STAFF_DAILY_REPORT) to every property manager for their
//! property, every regional manager for their region and every head-office subscriber for
//! the chain, rendered in the recipient's language. Who they are comes from notification's
//! staff directory (ListStaff), which holds no name or address for us.
//!
//! Exactly once per recipient, scope and day across replicas: the due deliveries are
//! inserted as rows (ON CONFLICT DO NOTHING), and a replica sends only rows it holds FOR
//! UPDATE SKIP LOCKED, marking them sent in the same transaction. A replica that dies after
//! notification accepted but before its commit leaves the row to another, whose send has the
//! same idempotency key and so answers the message already queued.

use super::{build, html};
use crate::api::scope;
use crate::state::State;
use chrono::{Duration, NaiveDate, Timelike, Utc};
use guestloop_proto::metrics::v1::{Scope, ScopeLevel};
use guestloop_proto::notification::v1 as notify;
use notify::StaffRole;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

/// Rows one replica holds and sends in one transaction.
const BATCH: i64 = 20;

pub async fn run(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let every = state.daily_report.interval.as_duration();
    loop {
        match tick(&state).await {
            Ok(sent) if sent > 0 => tracing::info!(sent, "daily reports sent"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "daily reports not sent; retried next round"),
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("asking notification for the staff directory: {0:?}")]
    Directory(tonic::Code),
}

/// One round: insert what became due, send what is unsent, forget what is old. Returns the
/// number of reports notification accepted.
pub async fn tick(state: &State) -> Result<usize, MailError> {
    let Some(client) = &state.notification else {
        return Ok(0);
    };
    let staff = client
        .clone()
        .list_staff(notify::ListStaffRequest {
            roles: vec![
                StaffRole::PropertyManager as i32,
                StaffRole::RegionalManager as i32,
                StaffRole::HeadOffice as i32,
            ],
        })
        .await
        .map_err(|s| MailError::Directory(s.code()))?
        .into_inner()
        .staff;
    insert_due(state, &staff).await?;
    let mut sent = 0;
    loop {
        let (claimed, accepted) = send_batch(state).await?;
        sent += accepted;
        // Stop when nothing is left, or when notification refuses everything (down).
        if claimed == 0 || accepted == 0 {
            break;
        }
    }
    let keep = Utc::now().date_naive() - Duration::days(state.daily_report.keep_days);
    sqlx::query("DELETE FROM report_mailings WHERE report_date < $1")
        .bind(keep)
        .execute(&state.pool)
        .await?;
    Ok(sent)
}

/// The reports each member receives: (level, scope id) per role they hold.
fn scopes_of(m: &notify::StaffMember) -> Vec<(ScopeLevel, String)> {
    m.roles
        .iter()
        .filter_map(|r| match StaffRole::try_from(*r).ok()? {
            StaffRole::PropertyManager => Some((ScopeLevel::Property, m.property_id.clone())),
            StaffRole::RegionalManager if !m.region_id.is_empty() => {
                Some((ScopeLevel::Region, m.region_id.clone()))
            }
            StaffRole::HeadOffice => Some((ScopeLevel::Chain, String::new())),
            _ => None,
        })
        .collect()
}

/// The report day due for a member now: yesterday in their zone once the hour has come.
fn due_day(state: &State, m: &notify::StaffMember) -> Option<NaiveDate> {
    let zone: chrono_tz::Tz = state
        .chain
        .property(&m.property_id)?
        .time_zone
        .parse()
        .ok()?;
    let local = Utc::now().with_timezone(&zone);
    (local.hour() >= state.daily_report.local_hour).then(|| local.date_naive() - Duration::days(1))
}

fn language(l: &str) -> &'static str {
    match l {
        "zh-CN" => "zh-CN",
        "zh-TW" => "zh-TW",
        _ => "en",
    }
}

async fn insert_due(state: &State, staff: &[notify::StaffMember]) -> Result<(), sqlx::Error> {
    let (mut days, mut ids, mut levels, mut scopes, mut langs) =
        (vec![], vec![], vec![], vec![], vec![]);
    for m in staff {
        let Some(day) = due_day(state, m) else {
            continue;
        };
        for (level, id) in scopes_of(m) {
            days.push(day);
            ids.push(m.staff_id.clone());
            levels.push(level as i16);
            scopes.push(id);
            langs.push(language(&m.language).to_string());
        }
    }
    if days.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO report_mailings (report_date, staff_id, scope_level, scope_id, language)
         SELECT * FROM UNNEST($1::date[], $2::text[], $3::smallint[], $4::text[], $5::text[])
         ON CONFLICT DO NOTHING",
    )
    .bind(days)
    .bind(ids)
    .bind(levels)
    .bind(scopes)
    .bind(langs)
    .execute(&state.pool)
    .await?;
    Ok(())
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    report_date: NaiveDate,
    staff_id: String,
    scope_level: i16,
    scope_id: String,
    language: String,
}

/// Claims up to BATCH unsent rows, builds each scope's report once, renders it once per
/// language and sends it to each recipient; returns (claimed, accepted).
async fn send_batch(state: &State) -> Result<(usize, usize), MailError> {
    let Some(client) = &state.notification else {
        return Ok((0, 0));
    };
    let oldest = Utc::now().date_naive() - Duration::days(state.daily_report.retry_days + 1);
    let mut tx = state.pool.begin().await?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT report_date, staff_id, scope_level, scope_id, language FROM report_mailings
         WHERE message_id = '' AND report_date >= $1
         ORDER BY report_date, scope_level, scope_id, language, staff_id
         LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(oldest)
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    let claimed = rows.len();
    let mut by_scope: BTreeMap<(NaiveDate, i16, String), Vec<Row>> = BTreeMap::new();
    for r in rows {
        by_scope
            .entry((r.report_date, r.scope_level, r.scope_id.clone()))
            .or_default()
            .push(r);
    }
    let mut accepted = 0;
    for ((day, level, id), recipients) in by_scope {
        let wanted = Scope {
            level: i32::from(level),
            id: id.clone(),
        };
        let Some(resolved) = scope::of(state, &wanted) else {
            // The property or region left the chain: nothing to report, nothing to retry.
            mark(&mut tx, &recipients, "-", "scope_gone").await?;
            continue;
        };
        let report = build(state, &resolved, day, state.daily_report.top_issues).await?;
        let scope_name = html::scope_name(&report, &state.chain);
        let mut rendered: BTreeMap<&str, String> = BTreeMap::new();
        for r in &recipients {
            let lang = language(&r.language);
            let body = rendered
                .entry(lang)
                .or_insert_with(|| html::render(&report, &state.chain, lang))
                .clone();
            let level_name = ScopeLevel::try_from(i32::from(level))
                .unwrap_or_default()
                .as_str_name()
                .trim_start_matches("SCOPE_LEVEL_")
                .to_ascii_lowercase();
            let key = format!("voc:{day}:{level_name}:{id}:{}", r.staff_id);
            let spec = notify::MessageSpec {
                recipient: Some(notify::Recipient {
                    kind: Some(notify::recipient::Kind::Staff(notify::StaffRecipient {
                        property_id: resolved.properties.first().cloned().unwrap_or_default(),
                        staff_id: r.staff_id.clone(),
                        ..Default::default()
                    })),
                }),
                kind: notify::MessageKind::StaffDailyReport as i32,
                variables: [
                    ("report_html".to_string(), body),
                    ("report_date".to_string(), day.to_string()),
                    ("scope_name".to_string(), scope_name.clone()),
                ]
                .into_iter()
                .collect(),
                property_id: resolved.properties.first().cloned().unwrap_or_default(),
                ..Default::default()
            };
            let answer = client
                .clone()
                .send_message(notify::SendMessageRequest {
                    idempotency_key: key,
                    message: Some(spec),
                })
                .await;
            match answer {
                Ok(a) => {
                    let id = a
                        .into_inner()
                        .message
                        .map(|m| m.message_id)
                        .unwrap_or_default();
                    mark(&mut tx, std::slice::from_ref(r), &id, "").await?;
                    metrics::counter!("metrics_daily_reports_total", "outcome" => "sent")
                        .increment(1);
                    accepted += 1;
                }
                Err(s) => {
                    sqlx::query(
                        "UPDATE report_mailings SET attempts = attempts + 1, last_error = $5
                         WHERE report_date = $1 AND staff_id = $2 AND scope_level = $3
                            AND scope_id = $4",
                    )
                    .bind(r.report_date)
                    .bind(&r.staff_id)
                    .bind(r.scope_level)
                    .bind(&r.scope_id)
                    .bind(format!("{:?}", s.code()))
                    .execute(&mut *tx)
                    .await?;
                    metrics::counter!("metrics_daily_reports_total", "outcome" => "refused")
                        .increment(1);
                    tracing::warn!(code = ?s.code(), %day, "daily report not accepted by notification");
                }
            }
        }
    }
    tx.commit().await?;
    Ok((claimed, accepted))
}

async fn mark(
    tx: &mut sqlx::PgConnection,
    rows: &[Row],
    message_id: &str,
    error: &str,
) -> Result<(), sqlx::Error> {
    for r in rows {
        sqlx::query(
            "UPDATE report_mailings SET message_id = $5, send_time = now(), last_error = $6,
                sends = sends + CASE WHEN $6 = '' THEN 1 ELSE 0 END
             WHERE report_date = $1 AND staff_id = $2 AND scope_level = $3 AND scope_id = $4",
        )
        .bind(r.report_date)
        .bind(&r.staff_id)
        .bind(r.scope_level)
        .bind(&r.scope_id)
        .bind(message_id)
        .bind(error)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
