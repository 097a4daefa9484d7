//! What every notification integration test starts from: a REAL guest-profile and
//! notification, both in-process on port 0, each in its own schema of one fresh test
//! database; a REAL SMTP server (aiosmtpd) and a REAL HTTP provider endpoint (Python's
//! http.server), each a separate process; typed clients with any token; guest fixtures.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use chrono::{Timelike, Utc};
use guestloop_client::{Connection, GuestProfileClient, NotificationClient};
use guestloop_proto::common::v1 as common;
use guestloop_proto::guestprofile::v1 as gp;
use guestloop_proto::notification::v1 as pb;
#[allow(unused_imports)]
pub use guestloop_testkit::grpc::violated_fields;
use guestloop_testkit::keys;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

pub use guestloop_testkit::sinks::{Sink, http_sink, next, smtp_sink};

/// The test chain (as guestloop_testkit's), with quiet hours set relative to now: around
/// the current time at `quiet_now`, away from it everywhere else.
pub fn chain_toml(quiet_now: Option<&str>) -> String {
    let local_hour = (Utc::now().hour() + 8) % 24; // every test property is UTC+8
    let hh = |h: u32| format!("{:02}:00", h % 24);
    let props = [
        ("sh-bund", "Shanghai Bund", "east", "Asia/Shanghai", "zh-CN"),
        (
            "hz-lake",
            "Hangzhou West Lake",
            "east",
            "Asia/Shanghai",
            "zh-CN",
        ),
        (
            "hk-harbour",
            "Hong Kong Harbour",
            "south",
            "Asia/Hong_Kong",
            "zh-TW",
        ),
        ("sz-bay", "Shenzhen Bay", "south", "Asia/Shanghai", "zh-CN"),
    ];
    let mut out = String::from(
        "[chain]\nname = \"Test Hotels\"\n\n[[chain.regions]]\nid = \"east\"\nname = \"East China\"\n\n[[chain.regions]]\nid = \"south\"\nname = \"South China\"\n",
    );
    for (id, name, region, tz, lang) in props {
        let (start, end) = if quiet_now == Some(id) {
            (hh(local_hour + 23), hh(local_hour + 2))
        } else {
            (hh(local_hour + 3), hh(local_hour + 4))
        };
        out.push_str(&format!(
            "\n[[chain.properties]]\nid = \"{id}\"\nname = \"{name}\"\nregion = \"{region}\"\ntime_zone = \"{tz}\"\ndefault_language = \"{lang}\"\nquiet_hours = {{ start = \"{start}\", end = \"{end}\" }}\nworking_hours = {{ start = \"00:00\", end = \"23:59\" }}\n"
        ));
    }
    out
}

async fn pool_on(url: &str, schema: &str) -> PgPool {
    let options = PgConnectOptions::from_str(url)
        .expect("service url")
        .options([("search_path", schema)]);
    PgPoolOptions::new()
        .max_connections(3)
        .connect_with(options)
        .await
        .expect("assertion pool")
}

/// How to start a TestApp.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Run the delivery worker (off: messages stay QUEUED, for the API tests).
    pub worker: bool,
    /// The property whose quiet hours are now.
    pub quiet_now: Option<&'static str>,
    /// HTTP provider: 500 for the first N requests.
    pub http_fail_first: u32,
    /// One more TOML layer over notification's test settings; `{http_port}` in it becomes
    /// the HTTP sink's port.
    pub extra_toml: String,
    /// Configure no WeChat template provider.
    pub without_wechat_template: bool,
}

/// A running guest-profile and notification sharing one fresh database, with the sinks.
pub struct TestApp {
    pub addr: SocketAddr,
    pub gp_addr: SocketAddr,
    /// notification's schema, as its role.
    pub pool: PgPool,
    pub smtp: Sink,
    pub http: Sink,
    /// notification's settings layers, for replicas.
    layers: Vec<String>,
    shutdown: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// Builds and starts one notification from `layers`; returns its address and stop switch.
async fn start_notification(layers: &[String]) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let layers: Vec<&str> = layers.iter().map(String::as_str).collect();
    let settings: notification::Settings =
        guestloop_config::load_from_env(&layers, None, std::iter::empty())
            .expect("notification test settings are valid");
    let app = notification::Application::build(settings)
        .await
        .expect("notification builds");
    let addr = app.grpc_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

/// notification's test settings layers (used by the load tests too).
pub fn notification_layers(
    url: &str,
    gp_addr: SocketAddr,
    chain: &str,
    smtp_port: u16,
    http_port: u16,
    worker: bool,
) -> Vec<String> {
    let overrides = format!(
        r#"{}[peers]
guest_profile = "http://{gp_addr}"
[delivery]
worker_enabled = {worker}
poll_interval = "100ms"
batch_size = 20
lease = "10s"
max_attempts = 4
backoff_base = "50ms"
backoff_max = "400ms"
send_timeout = "3s"
guest_channels = ["email", "sms"]
[providers.smtp]
host = "127.0.0.1"
port = {smtp_port}
from = "care@guestloop.test"
[providers.http.sms-gateway]
channel = "sms"
url = "http://127.0.0.1:{http_port}/sms"
auth_header = "authorization"
auth_value = "Bearer sms-secret"
payload = '{{"to": "{{{{to}}}}", "text": "{{{{body}}}}", "ref": "{{{{message_id}}}}"}}'

[[staff]]
staff_id = "s-001"
name = "Wang Fang"
property_id = "sh-bund"
roles = ["customer_service_manager", "duty_manager"]
email = "cs.manager@sh-bund.test"
language = "en"
"#,
        guestloop_testkit::calling_service_layer(url),
    );
    vec![
        chain.to_string(),
        overrides,
        wechat_template_toml(http_port),
    ]
}

/// The WeChat template provider: an endpoint that always refuses (400), unless a test's
/// `extra_toml` points it elsewhere.
fn wechat_template_toml(http_port: u16) -> String {
    format!(
        r#"[providers.http.wechat-template]
channel = "wechat"
url = "http://127.0.0.1:{http_port}/permanent/wechat"
payload = '{{"touser": "{{{{to}}}}", "template_id": "{{{{template_id}}}}", "data": "{{{{body}}}}"}}'
"#
    )
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(opts: Options) -> Self {
        let db = guestloop_testkit::test_database().await;
        let mut shutdown = Vec::new();
        let chain = chain_toml(opts.quiet_now);

        let gp_url = db.service_url("guest_profile", "guest_profile_svc").await;
        let gp_overrides = guestloop_testkit::service_layer(&gp_url);
        let mut layers: Vec<&str> = guest_profile::default_layers().to_vec();
        layers.push(&chain);
        layers.push(&gp_overrides);
        let settings: guest_profile::Settings =
            guestloop_config::load_from_env(&layers, None, std::iter::empty())
                .expect("guest-profile test settings are valid");
        let gp_app = guest_profile::Application::build(settings)
            .await
            .expect("guest-profile builds");
        let gp_addr = gp_app.grpc_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(gp_app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        shutdown.push(tx);

        let smtp = smtp_sink();
        let http = http_sink(opts.http_fail_first);
        let url = db.service_url("notification", "notification_svc").await;
        let mut own = notification_layers(&url, gp_addr, &chain, smtp.port, http.port, opts.worker);
        if opts.without_wechat_template {
            own.pop();
        }
        let mut layers: Vec<String> = notification::default_layers()
            .iter()
            .map(|l| l.to_string())
            .collect();
        layers.extend(own);
        if !opts.extra_toml.is_empty() {
            layers.push(
                opts.extra_toml
                    .replace("{http_port}", &http.port.to_string()),
            );
        }
        let (addr, tx) = start_notification(&layers).await;
        shutdown.push(tx);

        Self {
            addr,
            gp_addr,
            pool: pool_on(&url, "notification").await,
            smtp,
            http,
            layers,
            shutdown,
        }
    }

    /// Another notification replica on the same database, providers and peers, with its
    /// worker on or off (`[delivery] worker_enabled`); returns its address.
    pub async fn spawn_replica(&mut self, worker: bool) -> SocketAddr {
        let mut layers = self.layers.clone();
        layers.push(format!("[delivery]\nworker_enabled = {worker}\n"));
        let (addr, tx) = start_notification(&layers).await;
        self.shutdown.push(tx);
        addr
    }

    pub fn client(&self, token: &str) -> NotificationClient {
        Connection::builder(format!("http://{}", self.addr))
            .token(token)
            .timeout(Duration::from_secs(30))
            .connect_lazy()
            .expect("client")
            .notification()
    }

    pub fn head_office(&self) -> NotificationClient {
        self.client(&keys().head_office())
    }

    pub fn staff(&self, property: &str) -> NotificationClient {
        self.client(&keys().staff(property))
    }

    pub fn service(&self) -> NotificationClient {
        self.client(&keys().token(guestloop_auth::Role::Service, &[], None))
    }

    pub fn gp_client(&self) -> GuestProfileClient {
        Connection::builder(format!("http://{}", self.gp_addr))
            .token(&keys().head_office())
            .timeout(Duration::from_secs(10))
            .connect_lazy()
            .expect("client")
            .guest_profile()
    }

    /// A guest at `property` with an email (and phone) and the given consents for service
    /// follow-up.
    pub async fn guest(
        &self,
        property: &str,
        email: &str,
        language: &str,
        consents: &[common::ContactChannel],
    ) -> String {
        let n = next();
        let guest = self
            .gp_client()
            .create_guest(gp::CreateGuestRequest {
                guest: Some(gp::Guest {
                    given_name: "Mei".into(),
                    family_name: format!("Lin{n}"),
                    language: language.into(),
                    contacts: Some(gp::Contacts {
                        email: email.into(),
                        phone: format!("+861380013{:04}", n % 10000),
                        wechat_id: format!("wxguest{n:04}"),
                    }),
                    ..Default::default()
                }),
                property_id: property.into(),
                idempotency_key: String::new(),
            })
            .await
            .expect("create guest")
            .into_inner()
            .guest
            .expect("guest");
        for c in consents {
            self.gp_client()
                .set_consent(gp::SetConsentRequest {
                    guest_id: guest.guest_id.clone(),
                    consent: Some(gp::Consent {
                        channel: *c as i32,
                        purpose: common::ConsentPurpose::ServiceFollowUp as i32,
                        granted: true,
                        source: "test".into(),
                        record_time: None,
                    }),
                })
                .await
                .expect("set consent");
        }
        guest.guest_id
    }

    pub async fn send(&self, req: pb::SendMessageRequest) -> pb::SendMessageResponse {
        self.head_office()
            .send_message(req)
            .await
            .unwrap_or_else(|s| panic!("send failed: {s:?}"))
            .into_inner()
    }

    pub async fn get(&self, message_id: &str) -> pb::OutboundMessage {
        self.head_office()
            .get_message(pb::GetMessageRequest {
                message_id: message_id.into(),
                idempotency_key: String::new(),
            })
            .await
            .expect("get message")
            .into_inner()
            .message
            .expect("message")
    }

    /// Polls until the message reaches one of `statuses` (15 s at most).
    pub async fn wait_for(
        &self,
        message_id: &str,
        statuses: &[pb::DeliveryStatus],
    ) -> pb::OutboundMessage {
        let started = Instant::now();
        loop {
            let m = self.get(message_id).await;
            if statuses.iter().any(|s| *s as i32 == m.status) {
                return m;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "message stuck at {:?}: {m:?}",
                pb::DeliveryStatus::try_from(m.status)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The MessageStatusChanged events in the outbox for a message, as (previous, status).
    pub async fn events(&self, message_id: &str) -> Vec<(i32, i32)> {
        use guestloop_proto::events::v1::event_envelope::Payload;
        guestloop_outbox::envelopes_for(&self.pool, "message", message_id)
            .await
            .expect("outbox")
            .into_iter()
            .filter_map(|e| match e.payload {
                Some(Payload::MessageStatusChanged(c)) => Some((c.previous_status, c.status)),
                _ => None,
            })
            .collect()
    }
}

/// A guest message spec at `property`.
pub fn guest_message(guest_id: &str, property: &str, kind: pb::MessageKind) -> pb::MessageSpec {
    pb::MessageSpec {
        recipient: Some(pb::Recipient {
            kind: Some(pb::recipient::Kind::Guest(pb::GuestRecipient {
                guest_id: guest_id.into(),
            })),
        }),
        kind: kind as i32,
        purpose: common::ConsentPurpose::ServiceFollowUp as i32,
        property_id: property.into(),
        ..Default::default()
    }
}

pub fn survey(guest_id: &str, property: &str) -> pb::MessageSpec {
    let mut m = guest_message(guest_id, property, pb::MessageKind::SatisfactionSurvey);
    m.variables = HashMap::from([("survey_link".to_string(), "https://s.test/x1".to_string())]);
    m
}

pub fn send_req(key: &str, spec: pb::MessageSpec) -> pb::SendMessageRequest {
    pb::SendMessageRequest {
        idempotency_key: key.into(),
        message: Some(spec),
    }
}

pub fn key() -> String {
    format!("key-{}-{}", std::process::id(), next())
}

/// A random guest id nobody has.
pub fn some_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}
