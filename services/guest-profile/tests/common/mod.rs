//! What every guest-profile integration test starts from: the service on port 0 against a
//! fresh database of its own, a pool on that database for assertions, typed clients with
//! any token, and fixtures for valid guests and stays.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use chrono::Datelike;
use guestloop_auth::Role;
use guestloop_client::{Connection, GuestProfileClient};
use guestloop_proto::common::v1 as common;
use guestloop_proto::events::v1::EventEnvelope;
use guestloop_proto::guestprofile::v1 as pb;
#[allow(unused_imports)]
pub use guestloop_testkit::grpc::{assert_code, assert_invalid, violated_fields};
use guestloop_testkit::keys;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const RPC_PREFIX: &str = "/guestloop.guestprofile.v1.GuestProfileService/";

/// A running guest-profile with its own database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The service's database, as the service's role, search_path = guest_profile.
    pub pool: PgPool,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with("").await
    }

    /// As [`TestApp::spawn`], with one more TOML layer over the test settings (each table at
    /// most once in it).
    pub async fn spawn_with(extra_toml: &str) -> Self {
        let db = guestloop_testkit::test_database().await;
        let url = bootstrap(&db).await;
        let overrides = guestloop_testkit::service_layer(&url);
        let mut layers: Vec<&str> = guest_profile::default_layers().to_vec();
        layers.push(guestloop_testkit::TEST_CHAIN_TOML);
        layers.push(&overrides);
        if !extra_toml.is_empty() {
            layers.push(extra_toml);
        }
        let settings: guest_profile::Settings =
            guestloop_config::load_from_env(&layers, None, std::iter::empty())
                .expect("test settings are valid");
        let app = guest_profile::Application::build(settings)
            .await
            .expect("guest-profile builds");
        let addr = app.grpc_addr();
        let admin_addr = app.admin_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));

        let options = PgConnectOptions::from_str(&url)
            .expect("service url")
            .options([("search_path", "guest_profile")]);
        let pool = PgPoolOptions::new()
            .max_connections(3)
            .connect_with(options)
            .await
            .expect("assertion pool");
        Self {
            addr,
            admin_addr,
            pool,
            shutdown: Some(tx),
        }
    }

    /// A client calling with `token`.
    pub fn client(&self, token: &str) -> GuestProfileClient {
        Connection::builder(format!("http://{}", self.addr))
            .token(token)
            .timeout(Duration::from_secs(10))
            .connect_lazy()
            .expect("client")
            .guest_profile()
    }

    /// A client that sends no token at all.
    pub fn anonymous_client(&self) -> GuestProfileClient {
        Connection::builder(format!("http://{}", self.addr))
            .connect_lazy()
            .expect("client")
            .guest_profile()
    }

    pub fn head_office(&self) -> GuestProfileClient {
        self.client(&keys().head_office())
    }

    /// Creates a guest as head office at `property_id`.
    pub async fn create_guest(&self, property_id: &str, guest: pb::Guest) -> pb::Guest {
        self.head_office()
            .create_guest(pb::CreateGuestRequest {
                guest: Some(guest),
                property_id: property_id.into(),
                idempotency_key: String::new(),
            })
            .await
            .expect("create guest")
            .into_inner()
            .guest
            .expect("guest in response")
    }

    /// Pushes a stay as head office.
    pub async fn upsert_stay(&self, stay: pb::Stay) -> pb::UpsertStayResponse {
        self.head_office()
            .upsert_stay(pb::UpsertStayRequest { stay: Some(stay) })
            .await
            .expect("upsert stay")
            .into_inner()
    }

    /// Rows in one of the service's tables.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .expect("count rows")
    }

    /// (accessor, accessor_role, rpc) of every access-log row of a guest, oldest first.
    pub async fn access_log(&self, guest_id: &str) -> Vec<(String, String, String)> {
        sqlx::query_as(
            "SELECT accessor, accessor_role, rpc FROM access_log WHERE guest_id = $1::uuid ORDER BY id",
        )
        .bind(guest_id)
        .fetch_all(&self.pool)
        .await
        .expect("access log")
    }

    /// The Prometheus text of the service's admin port.
    pub async fn scrape(&self) -> String {
        guestloop_testkit::scrape(self.admin_addr)
            .await
            .expect("admin port")
    }

    /// The stored guest row as JSON text, to prove a call changed nothing.
    pub async fn guest_row(&self, guest_id: &str) -> String {
        sqlx::query_scalar("SELECT to_jsonb(g)::text FROM guests g WHERE id = $1::uuid")
            .bind(guest_id)
            .fetch_one(&self.pool)
            .await
            .expect("guest row")
    }

    /// The stored stay row as JSON text.
    pub async fn stay_row(&self, stay_id: &str) -> String {
        sqlx::query_scalar("SELECT to_jsonb(s)::text FROM stays s WHERE id = $1::uuid")
            .bind(stay_id)
            .fetch_one(&self.pool)
            .await
            .expect("stay row")
    }

    /// Every outbox envelope of one aggregate, oldest first.
    pub async fn events(&self, aggregate_type: &str, aggregate_id: &str) -> Vec<EventEnvelope> {
        guestloop_outbox::envelopes_for(&self.pool, aggregate_type, aggregate_id)
            .await
            .expect("outbox envelopes")
    }
}

/// The service's role and schema in the test database, and the URL to connect with.
async fn bootstrap(db: &guestloop_testkit::TestDatabase) -> String {
    db.service_url("guest_profile", "guest_profile_svc").await
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

/// A token for a named person, so the access log can tell callers apart.
pub fn token_as(subject: &str, role: Role, properties: &[&str], region: Option<&str>) -> String {
    keys()
        .signer()
        .issue(
            subject,
            role,
            properties.iter().map(|p| p.to_string()).collect(),
            region.map(str::to_string),
            Duration::from_secs(3600),
        )
        .expect("valid token")
}

/// Who may read sh-bund's privacy records (an erasure, the contact-read report): its
/// managers, its region's and head office; other properties' and regions' managers are
/// told NOT_FOUND, its staff PERMISSION_DENIED. (who, token, expected outcome)
pub fn managers_of_sh_bund() -> Vec<(&'static str, String, Result<(), tonic::Code>)> {
    use tonic::Code;
    let k = keys();
    vec![
        ("head office", k.head_office(), Ok(())),
        ("the property's manager", manager("sh-bund"), Ok(())),
        (
            "the region's manager",
            k.token(Role::RegionalManager, &[], Some("east")),
            Ok(()),
        ),
        (
            "another property's manager",
            manager("hk-harbour"),
            Err(Code::NotFound),
        ),
        (
            "another region's manager",
            k.token(Role::RegionalManager, &[], Some("south")),
            Err(Code::NotFound),
        ),
        (
            "the property's staff",
            k.staff("sh-bund"),
            Err(Code::PermissionDenied),
        ),
    ]
}

pub fn manager(property: &str) -> String {
    keys().token(Role::PropertyManager, &[property], None)
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

static SEQ: AtomicU32 = AtomicU32::new(1);

fn next() -> u32 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

pub fn date(year: i32, month: i32, day: i32) -> common::Date {
    common::Date { year, month, day }
}

/// A complete, valid guest with a unique email, phone and loyalty number.
pub fn guest() -> pb::Guest {
    let n = next();
    pb::Guest {
        given_name: "Wei".into(),
        family_name: "Zhang".into(),
        contacts: Some(pb::Contacts {
            email: format!("wei.zhang{n}@example.com"),
            phone: format!("+86138{n:08}"),
            wechat_id: format!("weizhang_{n}"),
        }),
        language: "zh-CN".into(),
        birthday: Some(date(1986, 5, 17)),
        segment: pb::Segment::Business as i32,
        tier: pb::Tier::VipGold as i32,
        loyalty_number: format!("GL-{n:06}"),
        preferences: Some(pb::Preferences {
            room_type: "king".into(),
            pillow: "buckwheat".into(),
            floor: "high".into(),
            dietary: vec!["vegetarian".into()],
            allergies: vec!["peanuts".into()],
            free_text: "likes a quiet room away from the lift".into(),
        }),
        special_needs: vec![pb::SpecialNeed {
            kind: pb::SpecialNeedKind::Accessibility as i32,
            description: "step-free access".into(),
        }],
        notes: "prefers late check-out".into(),
        ..Default::default()
    }
}

/// A complete guest with these names.
pub fn guest_named(given: &str, family: &str) -> pb::Guest {
    pb::Guest {
        given_name: given.into(),
        family_name: family.into(),
        ..guest()
    }
}

/// A guest with names only (incomplete against the default required fields).
pub fn minimal_guest(given: &str, family: &str) -> pb::Guest {
    pb::Guest {
        given_name: given.into(),
        family_name: family.into(),
        ..Default::default()
    }
}

pub fn email_of(g: &pb::Guest) -> String {
    g.contacts.clone().unwrap_or_default().email
}

pub fn phone_of(g: &pb::Guest) -> String {
    g.contacts.clone().unwrap_or_default().phone
}

/// A booked stay of three nights.
pub fn stay(guest_id: &str, property_id: &str, reservation: &str) -> pb::Stay {
    pb::Stay {
        guest_id: guest_id.into(),
        property_id: property_id.into(),
        pms_reservation_id: reservation.into(),
        status: pb::StayStatus::Booked as i32,
        arrival_date: Some(date(2025, 3, 1)),
        departure_date: Some(date(2025, 3, 4)),
        room_number: "1208".into(),
        rate_code: "BAR".into(),
        booking_channel: "direct".into(),
        total_spend: Some(common::Money {
            currency_code: "CNY".into(),
            amount_minor: 258_000,
        }),
        ..Default::default()
    }
}

/// The same date one year after today (always in the future).
pub fn next_year() -> common::Date {
    let today = chrono::Utc::now().date_naive();
    date(today.year() + 1, 1, 1)
}

pub fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

pub fn page(size: i32, token: &str) -> Option<common::PageRequest> {
    Some(common::PageRequest {
        page_size: size,
        page_token: token.into(),
    })
}

// ---------------------------------------------------------------------------------------
// Status assertions
// ---------------------------------------------------------------------------------------
