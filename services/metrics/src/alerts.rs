//! KPI alerts: every `kpi_alerts.interval`, each rule (a KPI over a rolling window of local
//! days) is judged per property. A KPI that MISSED its target raises an alert, once: one
//! active alert per KPI and scope at most (a unique index, so racing replicas raise one);
//! the property managers are notified, and KpiAlertRaised goes out. When it is MET again the
//! alert clears, they hear that once too. A value without enough sample changes nothing.
//! Notifications are sent after the alert commits, with idempotency keys; one that failed
//! is sent again on the next round.

use crate::kpi::{self, Totals, def_of};
use crate::state::State;
use crate::store::rollups;
use chrono::{DateTime, Duration, Utc};
use guestloop_proto::events::v1::{self as ev, event_envelope::Payload};
use guestloop_proto::metrics::v1::{self as pb, Kpi, KpiStatus, ScopeLevel};
use guestloop_proto::notification::v1 as notify;
use guestloop_proto::time::to_timestamp as ts;
use prost::Message;
use std::sync::Arc;
use tokio::sync::watch;
use uuid::Uuid;

pub async fn run(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let every = state.kpi_alerts.interval.as_duration();
    loop {
        if let Err(e) = tick(&state).await {
            tracing::warn!(error = %e, "KPI alerts not evaluated");
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

fn scope(property: &str) -> pb::Scope {
    pb::Scope {
        level: ScopeLevel::Property as i32,
        id: property.to_string(),
    }
}

/// One round: judge every rule at every property, then send what is unsent.
pub async fn tick(state: &State) -> Result<(), sqlx::Error> {
    for rule in &state.kpi_alerts.rules {
        let Some(k) = kpi::by_name(&rule.kpi) else {
            continue;
        };
        let d = def_of(k).expect("a defined KPI");
        for p in &state.chain.properties {
            let today = crate::ingest::day(state, &p.id, Utc::now());
            let from = today - Duration::days(rule.window_days - 1);
            let sums = rollups::sums(&state.pool, std::slice::from_ref(&p.id), from, today).await?;
            let totals = Totals::from_sums(sums.iter());
            let standards = state.standards.for_property(&state.chain, &p.id);
            let v = kpi::value(d, &totals, "", kpi::target(k, &standards), state.judge());
            match KpiStatus::try_from(v.status).unwrap_or_default() {
                KpiStatus::Missed => raise(state, k, &p.id, rule.window_days, &v).await?,
                KpiStatus::Met => clear(state, k, &p.id, &v).await?,
                _ => {}
            }
        }
    }
    send_unsent(state).await
}

async fn raise(
    state: &State,
    k: Kpi,
    property: &str,
    window: i64,
    v: &pb::KpiValue,
) -> Result<(), sqlx::Error> {
    let mut tx = state.pool.begin().await?;
    let id = Uuid::now_v7();
    let now = Utc::now();
    let inserted = sqlx::query(
        "INSERT INTO alerts (id, kpi, scope_level, scope_id, window_days, state, raise_value,
            raise_time)
         VALUES ($1, $2, $3, $4, $5, 1, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(k as i16)
    .bind(ScopeLevel::Property as i16)
    .bind(property)
    .bind(window as i32)
    .bind(v.encode_to_vec())
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(()); // already active
    }
    guestloop_outbox::enqueue(
        &mut tx,
        crate::SERVICE_NAME,
        guestloop_outbox::NewEvent {
            aggregate_type: "alert",
            aggregate_id: id.to_string(),
            property_id: property.to_string(),
            payload: Payload::KpiAlertRaised(ev::KpiAlertRaised {
                alert_id: id.to_string(),
                kpi: k as i32,
                scope: Some(scope(property)),
                window_days: window as i32,
                value: Some(*v),
                raise_time: Some(ts(now)),
            }),
        },
    )
    .await?;
    tx.commit().await?;
    metrics::counter!("metrics_kpi_alerts_raised_total", "kpi" => kpi::name(k)).increment(1);
    Ok(())
}

async fn clear(state: &State, k: Kpi, property: &str, v: &pb::KpiValue) -> Result<(), sqlx::Error> {
    let mut tx = state.pool.begin().await?;
    let now = Utc::now();
    let cleared: Option<(Uuid, i32, DateTime<Utc>)> = sqlx::query_as(
        "UPDATE alerts SET state = 2, clear_value = $4, clear_time = $5
         WHERE kpi = $1 AND scope_level = $2 AND scope_id = $3 AND state = 1
         RETURNING id, window_days, raise_time",
    )
    .bind(k as i16)
    .bind(ScopeLevel::Property as i16)
    .bind(property)
    .bind(v.encode_to_vec())
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, window, raised)) = cleared else {
        return Ok(());
    };
    guestloop_outbox::enqueue(
        &mut tx,
        crate::SERVICE_NAME,
        guestloop_outbox::NewEvent {
            aggregate_type: "alert",
            aggregate_id: id.to_string(),
            property_id: property.to_string(),
            payload: Payload::KpiAlertCleared(ev::KpiAlertCleared {
                alert_id: id.to_string(),
                kpi: k as i32,
                scope: Some(scope(property)),
                window_days: window,
                value: Some(*v),
                raise_time: Some(ts(raised)),
                clear_time: Some(ts(now)),
            }),
        },
    )
    .await?;
    tx.commit().await?;
    metrics::counter!("metrics_kpi_alerts_cleared_total", "kpi" => kpi::name(k)).increment(1);
    Ok(())
}

fn shown(k: Kpi, v: &pb::KpiValue) -> (String, String) {
    let f = |x: f64| match def_of(k).map(|d| d.unit) {
        Some(pb::KpiUnit::Ratio) => format!("{:.1} %", x * 100.0),
        _ => format!("{x:.1}"),
    };
    (
        v.value.map(f).unwrap_or_else(|| "-".into()),
        v.target.map(f).unwrap_or_else(|| "-".into()),
    )
}

/// Notifies the property managers of raises and clears not notified yet.
async fn send_unsent(state: &State) -> Result<(), sqlx::Error> {
    let Some(client) = &state.notification else {
        return Ok(());
    };
    let rows: Vec<AlertRow> = sqlx::query_as(
        "SELECT id, kpi, scope_level, scope_id, window_days, state, raise_value, raise_time,
            clear_value, clear_time, raise_message_id, clear_message_id
         FROM alerts WHERE (raise_message_id = '') OR (state = 2 AND clear_message_id = '')
         ORDER BY raise_time LIMIT 100",
    )
    .fetch_all(&state.pool)
    .await?;
    for row in rows {
        let AlertRow {
            id,
            kpi: k,
            scope_id: property,
            state: st,
            raise_value,
            clear_value,
            raise_message_id: raise_msg,
            ..
        } = row;
        let k = Kpi::try_from(i32::from(k)).unwrap_or_default();
        let (which, kind, value) = if raise_msg.is_empty() {
            ("raise", notify::MessageKind::StaffKpiAlert, raise_value)
        } else if st == 2 {
            (
                "clear",
                notify::MessageKind::StaffKpiRecovered,
                clear_value.unwrap_or_default(),
            )
        } else {
            continue;
        };
        let v = pb::KpiValue::decode(value.as_slice()).unwrap_or_default();
        let (value, target) = shown(k, &v);
        let mut c = client.clone();
        let sent = c
            .send_message(notify::SendMessageRequest {
                idempotency_key: format!("alert:{id}:{which}"),
                message: Some(notify::MessageSpec {
                    recipient: Some(notify::Recipient {
                        kind: Some(notify::recipient::Kind::Staff(notify::StaffRecipient {
                            property_id: property.clone(),
                            role: notify::StaffRole::PropertyManager as i32,
                            ..Default::default()
                        })),
                    }),
                    kind: kind as i32,
                    variables: [
                        ("kpi".to_string(), kpi::name(k).replace('_', " ")),
                        ("value".to_string(), value),
                        ("target".to_string(), target),
                    ]
                    .into_iter()
                    .collect(),
                    property_id: property.clone(),
                    ..Default::default()
                }),
            })
            .await;
        match sent {
            Ok(r) => {
                let message_id = r
                    .into_inner()
                    .message
                    .map(|m| m.message_id)
                    .unwrap_or_default();
                let column = if which == "raise" {
                    "raise_message_id"
                } else {
                    "clear_message_id"
                };
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE alerts SET {column} = $2 WHERE id = $1"
                )))
                .bind(id)
                .bind(&message_id)
                .execute(&state.pool)
                .await?;
            }
            Err(s) => {
                tracing::warn!(alert_id = %id, code = ?s.code(), "KPI alert not notified; retried next round");
            }
        }
    }
    Ok(())
}

/// The stored alert as the API shows it.
pub fn alert(row: &AlertRow) -> pb::KpiAlert {
    let decode = |b: &Option<Vec<u8>>| b.as_deref().and_then(|b| pb::KpiValue::decode(b).ok());
    pb::KpiAlert {
        alert_id: row.id.to_string(),
        kpi: i32::from(row.kpi),
        scope: Some(pb::Scope {
            level: i32::from(row.scope_level),
            id: row.scope_id.clone(),
        }),
        window_days: row.window_days,
        state: i32::from(row.state),
        raise_value: decode(&Some(row.raise_value.clone())),
        raise_time: Some(ts(row.raise_time)),
        clear_value: decode(&row.clear_value),
        clear_time: row.clear_time.map(ts),
        message_ids: [&row.raise_message_id, &row.clear_message_id]
            .into_iter()
            .filter(|m| !m.is_empty())
            .cloned()
            .collect(),
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertRow {
    pub id: Uuid,
    pub kpi: i16,
    pub scope_level: i16,
    pub scope_id: String,
    pub window_days: i32,
    pub state: i16,
    pub raise_value: Vec<u8>,
    pub raise_time: DateTime<Utc>,
    pub clear_value: Option<Vec<u8>>,
    pub clear_time: Option<DateTime<Utc>>,
    pub raise_message_id: String,
    pub clear_message_id: String,
}
