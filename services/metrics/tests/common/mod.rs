//! What every metrics integration test starts from: a fresh test database (real PostgreSQL
//! via guestloop_testkit), metrics in-process on port 0 (optionally beside a REAL
//! notification), typed clients with any token, hand-built event envelopes delivered through
//! EventIngestService, and an assertion pool on the service's schema.
#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, Utc};
use guestloop_client::{Connection, EventIngestClient, MetricsClient, NotificationClient};
use guestloop_proto::common::v1::{Date, DateRange};
use guestloop_proto::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use guestloop_proto::metrics::v1::{self as pb, Kpi, ScopeLevel};
#[allow(unused_imports)]
pub use guestloop_testkit::grpc::{assert_code, assert_invalid, violated_fields};
use guestloop_testkit::keys;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

struct Running {
    addr: SocketAddr,
    admin: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    fn start<F>(addr: SocketAddr, admin: SocketAddr, run: F) -> Self
    where
        F: FnOnce(tokio::sync::oneshot::Receiver<()>) -> tokio::task::JoinHandle<()>,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = run(rx);
        Self {
            addr,
            admin,
            stop: Some(tx),
            handle: Some(handle),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// One database, metrics on it, and a notification when the test asked for one.
pub struct TestApp {
    _db: guestloop_testkit::TestDatabase,
    /// metrics' schema, for assertions.
    pub pool: PgPool,
    /// notification's schema, when started.
    pub notification_pool: Option<PgPool>,
    metrics: Running,
    notification: Option<Running>,
    /// metrics' settings layers, for replicas.
    layers: Vec<String>,
}

/// Another metrics process on the same database (a replica racing the first).
pub struct Replica {
    running: Running,
}

impl Replica {
    pub async fn scrape(&self) -> String {
        scrape(self.running.admin).await
    }
}

/// Judging settings every test starts from; `extra` layers over them.
const BASE: &str = r#"
[kpis]
min_sample = 5
gauge_interval = "200ms"
[kpi_alerts]
enabled = false
[daily_report]
enabled = false
"#;

fn metrics_layers(url: &str, extra: &str) -> Vec<String> {
    let overrides = guestloop_testkit::service_layer(url);
    let mut out: Vec<String> = metrics_service::default_layers()
        .iter()
        .map(|l| l.to_string())
        .collect();
    out.push(guestloop_testkit::TEST_CHAIN_TOML.to_string());
    out.push(overrides);
    out.push(BASE.to_string());
    out.push(extra.to_string());
    out
}

fn pool(url: &str, schema: &str) -> PgPool {
    let options = PgConnectOptions::from_str(url)
        .expect("service url")
        .options([("search_path", schema)]);
    PgPoolOptions::new()
        .max_connections(2)
        .connect_lazy_with(options)
}

async fn start_notification(
    db: &guestloop_testkit::TestDatabase,
    extra: &str,
) -> (Running, PgPool, String) {
    let url = db.service_url("notification", "notification_svc").await;
    let overrides = format!(
        "{}[delivery]\nworker_enabled = false\n",
        guestloop_testkit::service_layer(&url)
    );
    let mut layers: Vec<&str> = notification::default_layers().to_vec();
    layers.push(guestloop_testkit::TEST_CHAIN_TOML);
    layers.push(&overrides);
    layers.push(extra);
    let settings: notification::Settings =
        guestloop_config::load_from_env(&layers, None, std::iter::empty())
            .expect("notification test settings are valid");
    let app = notification::Application::build(settings)
        .await
        .expect("notification builds");
    let (addr, admin) = (app.grpc_addr(), app.admin_addr());
    let running = Running::start(addr, admin, |rx| {
        tokio::spawn(async move {
            let _ = app
                .run_until_stopped(async move {
                    let _ = rx.await;
                })
                .await;
        })
    });
    let layer = format!(
        "[peers]\nnotification = \"http://{addr}\"\n[auth]\nsigning_key_path = \"{}\"\n",
        keys().signing_key_path.display()
    );
    (running, pool(&url, "notification"), layer)
}

async fn start_metrics(layers: &[String]) -> Running {
    let layers: Vec<&str> = layers.iter().map(String::as_str).collect();
    let settings: metrics_service::Settings =
        guestloop_config::load_from_env(&layers, None, std::iter::empty())
            .expect("metrics test settings are valid");
    let app = metrics_service::Application::build(settings)
        .await
        .expect("metrics builds");
    let (addr, admin) = (app.grpc_addr(), app.admin_addr());
    Running::start(addr, admin, |rx| {
        tokio::spawn(async move {
            let _ = app
                .run_until_stopped(async move {
                    let _ = rx.await;
                })
                .await;
        })
    })
}

/// The Prometheus text of an admin port.
async fn scrape(admin: SocketAddr) -> String {
    guestloop_testkit::scrape(admin).await.expect("admin port")
}

impl TestApp {
    /// A fresh database and metrics on it; `extra` is a settings layer over the test ones.
    pub async fn spawn(extra: &str) -> Self {
        Self::spawn_inner(extra, None).await
    }

    /// Like `spawn`, with a REAL notification (in-process, delivery worker off: messages
    /// stay queued) that metrics notifies.
    pub async fn spawn_with_notification(extra: &str) -> Self {
        Self::spawn_inner(extra, Some("")).await
    }

    /// Like `spawn_with_notification`; `notification_extra` is a layer over notification's
    /// test settings (e.g. its staff directory).
    pub async fn spawn_with_notification_settings(extra: &str, notification_extra: &str) -> Self {
        Self::spawn_inner(extra, Some(notification_extra)).await
    }

    async fn spawn_inner(extra: &str, notification_extra: Option<&str>) -> Self {
        let db = guestloop_testkit::test_database().await;
        let (notification, notification_pool, peer) = match notification_extra {
            Some(n) => {
                let (r, p, layer) = start_notification(&db, n).await;
                (Some(r), Some(p), layer)
            }
            None => (None, None, String::new()),
        };
        let url = db.service_url("metrics", "metrics_svc").await;
        let layers = metrics_layers(&url, &format!("{peer}\n{extra}"));
        let metrics = start_metrics(&layers).await;
        Self {
            pool: pool(&url, "metrics"),
            _db: db,
            notification_pool,
            metrics,
            notification,
            layers,
        }
    }

    /// A second metrics on the same database and peers, with the same settings.
    pub async fn replica(&self) -> Replica {
        self.replica_with("").await
    }

    /// Like `replica`, with one more settings layer.
    pub async fn replica_with(&self, extra: &str) -> Replica {
        let mut layers = self.layers.clone();
        layers.push(extra.to_string());
        Replica {
            running: start_metrics(&layers).await,
        }
    }

    /// Stops metrics (and notification) and waits until they have ended.
    pub async fn stop(mut self) {
        for r in [Some(&mut self.metrics), self.notification.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(tx) = r.stop.take() {
                let _ = tx.send(());
            }
            if let Some(h) = r.handle.take() {
                tokio::time::timeout(Duration::from_secs(20), h)
                    .await
                    .expect("service stops")
                    .expect("service task");
            }
        }
    }

    fn connection(addr: SocketAddr, token: &str) -> Connection {
        Connection::builder(format!("http://{addr}"))
            .token(token)
            .timeout(Duration::from_secs(30))
            .connect_lazy()
            .expect("client")
    }

    /// metrics' gRPC address.
    pub fn addr(&self) -> SocketAddr {
        self.metrics.addr
    }

    pub fn client(&self, token: &str) -> MetricsClient {
        Self::connection(self.metrics.addr, token).metrics()
    }

    pub fn events(&self, token: &str) -> EventIngestClient {
        Self::connection(self.metrics.addr, token).event_ingest()
    }

    /// A client of the notification started beside metrics.
    pub fn notification(&self, token: &str) -> NotificationClient {
        let r = self.notification.as_ref().expect("a notification");
        Self::connection(r.addr, token).notification()
    }

    pub fn head_office(&self) -> MetricsClient {
        self.client(&keys().head_office())
    }

    pub fn staff(&self, property: &str) -> MetricsClient {
        self.client(&keys().staff(property))
    }

    pub fn regional(&self, region: &str) -> MetricsClient {
        self.client(&keys().regional(region))
    }

    /// Delivers `events` as an outbox relay would (service token), redelivering whatever
    /// was not acknowledged; every event must be acknowledged within a few rounds.
    pub async fn deliver(&self, events: Vec<EventEnvelope>) {
        let mut c = self.events(&service_token());
        let mut pending = events;
        for _ in 0..5 {
            if pending.is_empty() {
                return;
            }
            let acked = c
                .deliver_events(ev::DeliverEventsRequest {
                    events: pending.clone(),
                })
                .await
                .unwrap_or_else(|s| panic!("delivery failed: {s:?}"))
                .into_inner()
                .acknowledged_event_ids;
            pending.retain(|e| !acked.contains(&e.event_id));
        }
        assert!(pending.is_empty(), "events never acknowledged: {pending:?}");
    }

    /// Waits until the chain and region sums have folded every queued delta (they fold
    /// every `kpis.scope_fold_interval`): a test that compares the schema before and after
    /// must not take its "before" with the fold still to come.
    pub async fn folded(&self) {
        eventually(
            "the scope deltas folded",
            Duration::from_secs(10),
            || async { (self.count("SELECT COUNT(*) FROM scope_deltas").await == 0).then_some(()) },
        )
        .await
    }

    /// The Prometheus text of metrics' admin port.
    pub async fn scrape(&self) -> String {
        scrape(self.metrics.admin).await
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// GetKpis for one local day.
    pub async fn kpis(
        &self,
        client: &mut MetricsClient,
        scope: pb::Scope,
        from: NaiveDate,
        to: NaiveDate,
        include_breakdowns: bool,
    ) -> pb::GetKpisResponse {
        client
            .get_kpis(pb::GetKpisRequest {
                scope: Some(scope),
                date_range: Some(range(from, to)),
                granularity: pb::Granularity::Day as i32,
                kpis: vec![],
                include_breakdowns,
            })
            .await
            .unwrap_or_else(|s| panic!("GetKpis failed: {s:?}"))
            .into_inner()
    }
}

/// Polls `f` until it answers Some (`within` at most).
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A token of another Guestloop service (what outbox relays deliver events with).
pub fn service_token() -> String {
    keys().token(guestloop_auth::Role::Service, &[], None)
}

pub fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn secs(s: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: s,
        nanos: 0,
    }
}

pub fn date(d: NaiveDate) -> Date {
    use chrono::Datelike;
    Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

pub fn range(from: NaiveDate, to: NaiveDate) -> DateRange {
    DateRange {
        start_date: Some(date(from)),
        end_date: Some(date(to)),
    }
}

/// The local day of `t` at a property of the test chain.
pub fn local_day(property: &str, t: DateTime<Utc>) -> NaiveDate {
    let zone: chrono_tz::Tz = match property {
        "hk-harbour" => chrono_tz::Asia::Hong_Kong,
        "sh-bund" | "hz-lake" | "sz-bay" => chrono_tz::Asia::Shanghai,
        other => panic!("{other} is not in the test chain"),
    };
    t.with_timezone(&zone).date_naive()
}

pub fn property(id: &str) -> pb::Scope {
    pb::Scope {
        level: ScopeLevel::Property as i32,
        id: id.into(),
    }
}

pub fn region(id: &str) -> pb::Scope {
    pb::Scope {
        level: ScopeLevel::Region as i32,
        id: id.into(),
    }
}

pub fn chain() -> pb::Scope {
    pb::Scope {
        level: ScopeLevel::Chain as i32,
        id: String::new(),
    }
}

/// The total of a KPI without breakdown.
pub fn total(r: &pb::GetKpisResponse, kpi: Kpi) -> pb::KpiValue {
    r.series
        .iter()
        .find(|s| s.kpi == kpi as i32 && s.breakdown.is_none())
        .and_then(|s| s.total)
        .unwrap_or_else(|| panic!("no total for {kpi:?}"))
}

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// A hand-built envelope, as a service's outbox would deliver it.
pub fn envelope(
    source: &str,
    aggregate_type: &str,
    aggregate_id: &str,
    property_id: &str,
    occur: DateTime<Utc>,
    payload: Payload,
) -> EventEnvelope {
    EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        source: source.into(),
        aggregate_type: aggregate_type.into(),
        aggregate_id: aggregate_id.into(),
        sequence: 1,
        occur_time: Some(ts(occur)),
        property_id: property_id.into(),
        traceparent: String::new(),
        payload: Some(payload),
    }
}

/// A survey answer with only a CSAT score.
pub fn csat_answer(property: &str, csat: i32, at: DateTime<Utc>) -> EventEnvelope {
    let feedback = new_id("fb");
    envelope(
        "feedback-intake",
        "feedback",
        &feedback,
        property,
        at,
        Payload::SurveyAnswered(ev::SurveyAnswered {
            feedback_id: feedback.clone(),
            property_id: property.into(),
            guest_id: new_id("guest"),
            stay_id: new_id("stay"),
            channel: 9,
            answer_time: Some(ts(at)),
            csat: Some(csat),
            ..Default::default()
        }),
    )
}
