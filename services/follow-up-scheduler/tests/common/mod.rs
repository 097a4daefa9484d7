//! What every follow-up-scheduler integration test starts from: a fresh test database (real
//! PostgreSQL via guestloop_testkit), the service in-process on port 0 (as many replicas as
//! a test wants, each stoppable on its own), typed clients with any token, and an assertion
//! pool on the service's schema.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use guestloop_client::{Connection, EventIngestClient, FollowUpClient};
use guestloop_proto::followup::v1 as pb;
#[allow(unused_imports)]
pub use guestloop_testkit::grpc::violated_fields;
use guestloop_testkit::keys;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(1);

pub fn next() -> u32 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

struct Replica {
    addr: SocketAddr,
    admin: SocketAddr,
    /// False for the notification and guest-profile started beside the replicas.
    scheduler: bool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

/// One database and the replicas started on it.
pub struct TestApp {
    db: guestloop_testkit::TestDatabase,
    url: String,
    /// The service's schema, for assertions.
    pub pool: PgPool,
    replicas: Vec<Replica>,
}

fn layers(url: &str, worker: bool, extra: &str) -> Vec<String> {
    let overrides = peer_overrides(
        url,
        &format!(
            r#"[timers]
worker_enabled = {worker}
poll_interval = "50ms"
batch_size = 10
lease = "5s"
default_late_threshold = "30s"
action_timeout = "1s"
max_attempts = 3
retry_delay = "200ms"
"#
        ),
    );
    let mut out: Vec<String> = follow_up_scheduler::default_layers()
        .iter()
        .map(|l| l.to_string())
        .collect();
    out.push(guestloop_testkit::TEST_CHAIN_TOML.to_string());
    out.push(overrides);
    out.push(extra.to_string());
    out
}

impl TestApp {
    /// A fresh database and one replica, its worker on or off.
    pub async fn spawn(worker: bool) -> Self {
        let db = guestloop_testkit::test_database().await;
        let url = db.service_url("followup", "followup_svc").await;
        let options = PgConnectOptions::from_str(&url)
            .expect("service url")
            .options([("search_path", "followup")]);
        let pool = PgPoolOptions::new()
            .max_connections(3)
            .connect_lazy_with(options);
        let mut app = Self {
            db,
            pool,
            url,
            replicas: Vec::new(),
        };
        app.start(worker, "").await;
        app
    }

    /// A REAL notification (in-process, port 0, delivery worker off: messages stay
    /// queued) in its own schema of this database; returns the settings layer that points a
    /// scheduler replica at it (peer address and a signing key for service tokens) and a
    /// pool on notification's schema.
    pub async fn notification(&mut self) -> (String, PgPool) {
        let url = self
            .db
            .service_url("notification", "notification_svc")
            .await;
        let overrides = peer_overrides(&url, "[delivery]\nworker_enabled = false\n");
        let mut layers: Vec<&str> = notification::default_layers().to_vec();
        layers.push(guestloop_testkit::TEST_CHAIN_TOML);
        layers.push(&overrides);
        let settings: notification::Settings =
            guestloop_config::load_from_env(&layers, None, std::iter::empty())
                .expect("notification test settings are valid");
        let app = notification::Application::build(settings)
            .await
            .expect("notification builds");
        let addr = app.grpc_addr();
        let admin = app.admin_addr();
        self.beside(addr, admin, |stop| async move {
            let _ = app.run_until_stopped(stop).await;
        });
        let options = PgConnectOptions::from_str(&url)
            .expect("notification url")
            .options([("search_path", "notification")]);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_lazy_with(options);
        let layer = format!(
            "[peers]\nnotification = \"http://{addr}\"\n[auth]\nsigning_key_path = \"{}\"\n",
            keys().signing_key_path.display()
        );
        (layer, pool)
    }

    /// A REAL guest-profile (in-process, port 0) in its own schema of this database, for
    /// the look-ups the scheduler makes (a guest's birthday and anniversary, consent):
    /// its gRPC URL and a head-office client of it.
    pub async fn guest_profile(&mut self) -> (String, guestloop_client::GuestProfileClient) {
        let url = self
            .db
            .service_url("guest_profile", "guest_profile_svc")
            .await;
        let overrides = peer_overrides(&url, "");
        let mut layers: Vec<&str> = guest_profile::default_layers().to_vec();
        layers.push(guestloop_testkit::TEST_CHAIN_TOML);
        layers.push(&overrides);
        let settings: guest_profile::Settings =
            guestloop_config::load_from_env(&layers, None, std::iter::empty())
                .expect("guest-profile test settings are valid");
        let app = guest_profile::Application::build(settings)
            .await
            .expect("guest-profile builds");
        let addr = app.grpc_addr();
        let admin = app.admin_addr();
        self.beside(addr, admin, |stop| async move {
            let _ = app.run_until_stopped(stop).await;
        });
        let client = Connection::builder(format!("http://{addr}"))
            .token(&keys().head_office())
            .timeout(Duration::from_secs(30))
            .connect_lazy()
            .expect("client")
            .guest_profile();
        (format!("http://{addr}"), client)
    }

    /// Runs a peer service beside the replicas (stopped with them): `run` gets the future
    /// that resolves when it should stop.
    fn beside<F, Fut>(&mut self, addr: SocketAddr, admin: SocketAddr, run: F)
    where
        F: FnOnce(futures::future::BoxFuture<'static, ()>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(run(Box::pin(async move {
            let _ = rx.await;
        })));
        self.replicas.push(Replica {
            addr,
            admin,
            scheduler: false,
            stop: Some(tx),
            handle: Some(handle),
        });
    }

    /// Starts another replica on the same database; returns its index.
    pub async fn start(&mut self, worker: bool, extra: &str) -> usize {
        let layers = layers(&self.url, worker, extra);
        let layers: Vec<&str> = layers.iter().map(String::as_str).collect();
        let settings: follow_up_scheduler::Settings =
            guestloop_config::load_from_env(&layers, None, std::iter::empty())
                .expect("test settings are valid");
        let app = follow_up_scheduler::Application::build(settings)
            .await
            .expect("follow-up-scheduler builds");
        let addr = app.grpc_addr();
        let admin = app.admin_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let _ = app
                .run_until_stopped(async move {
                    let _ = rx.await;
                })
                .await;
        });
        self.replicas.push(Replica {
            addr,
            admin,
            scheduler: true,
            stop: Some(tx),
            handle: Some(handle),
        });
        self.replicas.len() - 1
    }

    /// Stops replica `i` and waits until it (and its worker) have ended.
    pub async fn stop(&mut self, i: usize) {
        let r = &mut self.replicas[i];
        if let Some(tx) = r.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = r.handle.take() {
            tokio::time::timeout(Duration::from_secs(20), h)
                .await
                .expect("replica stops")
                .expect("replica task");
        }
    }

    /// The Prometheus text of the first running scheduler replica's admin port.
    pub async fn metrics(&self) -> String {
        let r = self
            .replicas
            .iter()
            .find(|r| r.handle.is_some() && r.scheduler)
            .expect("a running replica");
        guestloop_testkit::scrape(r.admin)
            .await
            .expect("admin port")
    }

    /// The gRPC address of the first running scheduler replica.
    pub fn addr(&self) -> SocketAddr {
        self.replicas
            .iter()
            .find(|r| r.handle.is_some() && r.scheduler)
            .expect("a running replica")
            .addr
    }

    /// A client of the first running scheduler replica.
    pub fn client(&self, token: &str) -> FollowUpClient {
        let r = self
            .replicas
            .iter()
            .find(|r| r.handle.is_some() && r.scheduler)
            .expect("a running replica");
        Connection::builder(format!("http://{}", r.addr))
            .token(token)
            .timeout(Duration::from_secs(30))
            .connect_lazy()
            .expect("client")
            .follow_up()
    }

    /// An EventIngestService client of the first running scheduler replica.
    pub fn events(&self, token: &str) -> EventIngestClient {
        let r = self
            .replicas
            .iter()
            .find(|r| r.handle.is_some() && r.scheduler)
            .expect("a running replica");
        Connection::builder(format!("http://{}", r.addr))
            .token(token)
            .timeout(Duration::from_secs(30))
            .connect_lazy()
            .expect("client")
            .event_ingest()
    }

    pub fn head_office(&self) -> FollowUpClient {
        self.client(&keys().head_office())
    }

    pub fn staff(&self, property: &str) -> FollowUpClient {
        self.client(&keys().staff(property))
    }

    pub async fn schedule(&self, timer: pb::Timer) -> pb::ScheduleTimerResponse {
        self.head_office()
            .schedule_timer(pb::ScheduleTimerRequest { timer: Some(timer) })
            .await
            .unwrap_or_else(|s| panic!("schedule failed: {s:?}"))
            .into_inner()
    }

    pub async fn get(&self, key: &str) -> pb::Timer {
        self.head_office()
            .get_timer(pb::GetTimerRequest {
                key: key.into(),
                timer_id: String::new(),
            })
            .await
            .expect("get timer")
            .into_inner()
            .timer
            .expect("timer")
    }

    /// Polls until the timer reaches one of `states` (`within` at most).
    pub async fn wait_for(
        &self,
        key: &str,
        states: &[pb::TimerState],
        within: Duration,
    ) -> pb::Timer {
        let started = Instant::now();
        loop {
            let t = self.get(key).await;
            if states.iter().any(|s| *s as i32 == t.state) {
                return t;
            }
            assert!(
                started.elapsed() < within,
                "timer stuck at {:?}: {t:?}",
                pb::TimerState::try_from(t.state)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Executions of the timer's action recorded by the workers.
    pub async fn firings(&self, timer_id: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM timer_firings WHERE timer_id = $1::uuid")
            .bind(timer_id)
            .fetch_one(&self.pool)
            .await
            .expect("firings")
    }
}

/// A peer service's settings in tests: port 0, its schema's URL, migrating on start,
/// the test keys; `extra` appended.
fn peer_overrides(url: &str, extra: &str) -> String {
    format!("{}{extra}", guestloop_testkit::service_layer(url))
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

pub fn secs(s: f64) -> prost_types::Duration {
    let d = Duration::from_secs_f64(s);
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

pub fn key(purpose: &str) -> String {
    format!("ext/{}-{}/{purpose}", std::process::id(), next())
}

/// A custom timer at `property`, due at `due`, without an action.
pub fn timer(key: &str, property: &str, due: DateTime<Utc>) -> pb::Timer {
    pb::Timer {
        key: key.into(),
        purpose: pb::TimerPurpose::Custom as i32,
        property_id: property.into(),
        due_time: Some(ts(due)),
        late_policy: pb::LatePolicy::Fire as i32,
        ..Default::default()
    }
}

pub fn in_ms(ms: i64) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::milliseconds(ms)
}

/// Delivers `events` as an outbox relay does (a service token) and asserts every one was
/// acknowledged, in order.
pub async fn deliver(app: &TestApp, events: Vec<guestloop_proto::events::v1::EventEnvelope>) {
    let ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    let acked = app
        .events(&service_token())
        .deliver_events(guestloop_proto::events::v1::DeliverEventsRequest { events })
        .await
        .unwrap_or_else(|s| panic!("deliver: {s:?}"))
        .into_inner()
        .acknowledged_event_ids;
    assert_eq!(acked, ids, "every event acknowledged, in order");
}
