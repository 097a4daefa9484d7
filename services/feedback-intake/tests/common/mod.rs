//! What every feedback-intake integration test starts from: a REAL guest-profile and
//! feedback-intake, both in-process on port 0, each in its own schema of one fresh test
//! database (as in production: one database, a schema and a role per service); pools on
//! both schemas for assertions; typed clients with any token; fixtures for guests, stays,
//! feedback of every channel, complaints and surveys.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use guestloop_auth::Role;
use guestloop_client::{Connection, EventIngestClient, FeedbackClient, GuestProfileClient};
use guestloop_proto::common::v1 as common;
use guestloop_proto::events::v1::{DeliverEventsRequest, EventEnvelope, event_envelope::Payload};
use guestloop_proto::feedback::v1 as pb;
use guestloop_proto::guestprofile::v1 as gp;
#[allow(unused_imports)]
pub use guestloop_testkit::grpc::{assert_code, assert_invalid, violated_fields};
use guestloop_testkit::keys;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const RPC_PREFIX: &str = "/guestloop.feedback.v1.FeedbackIntakeService/";

/// Every table feedback-intake writes, for "nothing changed" checks.
pub const TABLES: [&str; 10] = [
    "feedback",
    "cases",
    "case_events",
    "incidents",
    "case_reference_counters",
    "outbox",
    "inbox",
    "guest_merges",
    "erased_guests",
    "review_replies",
];

/// A running guest-profile and feedback-intake sharing one fresh database.
pub struct TestApp {
    /// feedback-intake's gRPC address.
    pub addr: SocketAddr,
    /// guest-profile's gRPC address (feedback-intake's peer).
    pub gp_addr: SocketAddr,
    /// feedback-intake's schema, as its role (search_path = feedback).
    pub pool: PgPool,
    /// guest-profile's schema, as its role (search_path = guest_profile).
    pub gp_pool: PgPool,
    shutdown: Vec<tokio::sync::oneshot::Sender<()>>,
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

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with("").await
    }

    /// As [`TestApp::spawn`], with one more TOML layer over feedback-intake's test settings
    /// (each table at most once in it; tables merge key by key with the layers below, so
    /// `[intake]` with one key changes only that key).
    pub async fn spawn_with(extra_toml: &str) -> Self {
        let db = guestloop_testkit::test_database().await;
        let mut shutdown = Vec::new();

        // guest-profile, for real: feedback-intake resolves guests and stays through it.
        let gp_url = db.service_url("guest_profile", "guest_profile_svc").await;
        let gp_overrides = guestloop_testkit::service_layer(&gp_url);
        let mut layers: Vec<&str> = guest_profile::default_layers().to_vec();
        layers.push(guestloop_testkit::TEST_CHAIN_TOML);
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

        // feedback-intake, minting its own service token to call guest-profile.
        let url = db.service_url("feedback", "feedback_svc").await;
        let overrides = format!(
            "{}[peers]\nguest_profile = \"http://{gp_addr}\"\n",
            guestloop_testkit::calling_service_layer(&url),
        );
        let mut layers: Vec<&str> = feedback_intake::default_layers().to_vec();
        layers.push(guestloop_testkit::TEST_CHAIN_TOML);
        layers.push(&overrides);
        if !extra_toml.is_empty() {
            layers.push(extra_toml);
        }
        let settings: feedback_intake::Settings =
            guestloop_config::load_from_env(&layers, None, std::iter::empty())
                .expect("feedback-intake test settings are valid");
        let app = feedback_intake::Application::build(settings)
            .await
            .expect("feedback-intake builds");
        let addr = app.grpc_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        shutdown.push(tx);

        Self {
            addr,
            gp_addr,
            pool: pool_on(&url, "feedback").await,
            gp_pool: pool_on(&gp_url, "guest_profile").await,
            shutdown,
        }
    }

    /// A feedback-intake client calling with `token`.
    pub fn client(&self, token: &str) -> FeedbackClient {
        Connection::builder(format!("http://{}", self.addr))
            .token(token)
            .timeout(Duration::from_secs(30))
            .connect_lazy()
            .expect("client")
            .feedback()
    }

    /// A feedback-intake client that sends no token.
    pub fn anonymous_client(&self) -> FeedbackClient {
        Connection::builder(format!("http://{}", self.addr))
            .connect_lazy()
            .expect("client")
            .feedback()
    }

    pub fn head_office(&self) -> FeedbackClient {
        self.client(&keys().head_office())
    }

    pub fn staff(&self, property: &str) -> FeedbackClient {
        self.client(&keys().staff(property))
    }

    pub fn manager(&self, property: &str) -> FeedbackClient {
        self.client(&manager(property))
    }

    /// A guest-profile client calling with `token`.
    pub fn gp_client(&self, token: &str) -> GuestProfileClient {
        Connection::builder(format!("http://{}", self.gp_addr))
            .token(token)
            .timeout(Duration::from_secs(10))
            .connect_lazy()
            .expect("client")
            .guest_profile()
    }

    /// Creates a guest in guest-profile as head office, with `property_id` as home.
    pub async fn create_guest(&self, property_id: &str, guest: gp::Guest) -> gp::Guest {
        self.gp_client(&keys().head_office())
            .create_guest(gp::CreateGuestRequest {
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

    /// Pushes a stay to guest-profile as head office; returns it with its id.
    pub async fn create_stay(&self, guest_id: &str, property_id: &str) -> gp::Stay {
        let n = next();
        self.gp_client(&keys().head_office())
            .upsert_stay(gp::UpsertStayRequest {
                stay: Some(gp::Stay {
                    guest_id: guest_id.into(),
                    property_id: property_id.into(),
                    pms_reservation_id: format!("RES-{n}"),
                    status: gp::StayStatus::CheckedIn as i32,
                    arrival_date: Some(common::Date {
                        year: 2025,
                        month: 3,
                        day: 1,
                    }),
                    departure_date: Some(common::Date {
                        year: 2025,
                        month: 3,
                        day: 4,
                    }),
                    room_number: "1208".into(),
                    ..Default::default()
                }),
            })
            .await
            .expect("upsert stay")
            .into_inner()
            .stay
            .expect("stay in response")
    }

    /// Submits as head office and expects success.
    pub async fn submit(&self, req: pb::SubmitFeedbackRequest) -> pb::SubmitFeedbackResponse {
        self.head_office()
            .submit_feedback(req)
            .await
            .unwrap_or_else(|s| panic!("submit failed: {s:?}"))
            .into_inner()
    }

    /// Submits a complaint at `property` as head office and returns its case.
    pub async fn complaint_case(&self, property: &str, text: &str) -> pb::Case {
        self.submit(complaint(property, pb::FeedbackChannel::Phone, text))
            .await
            .case
            .expect("a complaint opens a case")
    }

    pub async fn get_case(&self, case_id: &str) -> pb::Case {
        self.head_office()
            .get_case(pb::GetCaseRequest {
                case_id: case_id.into(),
            })
            .await
            .expect("get case")
            .into_inner()
            .case
            .expect("case")
    }

    pub async fn get_feedback(&self, feedback_id: &str) -> pb::Feedback {
        self.head_office()
            .get_feedback(pb::GetFeedbackRequest {
                feedback_id: feedback_id.into(),
            })
            .await
            .expect("get feedback")
            .into_inner()
            .feedback
            .expect("feedback")
    }

    /// Moves a case as head office and expects success.
    pub async fn transition(
        &self,
        case_id: &str,
        to: pb::CaseStatus,
    ) -> pb::TransitionCaseResponse {
        self.head_office()
            .transition_case(pb::TransitionCaseRequest {
                case_id: case_id.into(),
                to_status: to as i32,
                reason: "test".into(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("transition to {to:?} failed: {s:?}"))
            .into_inner()
    }

    /// The case's full history, oldest first.
    pub async fn case_events(&self, case_id: &str) -> Vec<pb::CaseEvent> {
        self.head_office()
            .list_case_events(pb::ListCaseEventsRequest {
                case_id: case_id.into(),
                page: page(500, ""),
            })
            .await
            .expect("list case events")
            .into_inner()
            .events
    }

    /// Rows in one of feedback-intake's tables.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .expect("count rows")
    }

    /// Row counts of every table feedback-intake writes.
    pub async fn counts(&self) -> Vec<(&'static str, i64)> {
        let mut out = Vec::new();
        for t in TABLES {
            out.push((t, self.count(t).await));
        }
        out
    }

    /// Every row of every table as JSON text: proves a call changed nothing at all.
    pub async fn dump(&self) -> Vec<String> {
        let mut out = Vec::new();
        for t in TABLES {
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT to_jsonb(t)::text FROM {t} t ORDER BY 1"
            )))
            .fetch_all(&self.pool)
            .await
            .expect("dump table");
            out.push(format!("{t}: {}", rows.join("\n")));
        }
        out
    }

    /// Guests in guest-profile.
    pub async fn guest_count(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM guests")
            .fetch_one(&self.gp_pool)
            .await
            .expect("count guests")
    }

    /// Every outbox envelope of one aggregate, oldest first.
    pub async fn events(&self, aggregate_type: &str, aggregate_id: &str) -> Vec<EventEnvelope> {
        guestloop_outbox::envelopes_for(&self.pool, aggregate_type, aggregate_id)
            .await
            .expect("outbox envelopes")
    }

    /// guest-profile's outbox envelopes of one aggregate ("guest", "stay"), oldest first:
    /// what its relay would deliver here.
    pub async fn gp_events(&self, aggregate_type: &str, aggregate_id: &str) -> Vec<EventEnvelope> {
        guestloop_outbox::envelopes_for(&self.gp_pool, aggregate_type, aggregate_id)
            .await
            .expect("guest-profile outbox envelopes")
    }

    /// feedback-intake's EventIngestService, calling with `token`.
    pub fn event_ingest(&self, token: &str) -> EventIngestClient {
        Connection::builder(format!("http://{}", self.addr))
            .token(token)
            .timeout(Duration::from_secs(30))
            .connect_lazy()
            .expect("client")
            .event_ingest()
    }

    /// Delivers `events` as guest-profile's relay does (its service token, one batch);
    /// returns the ids acknowledged.
    pub async fn deliver(&self, events: Vec<EventEnvelope>) -> Vec<String> {
        self.event_ingest(&token_as("guest-profile", Role::Service, &[], None))
            .deliver_events(DeliverEventsRequest { events })
            .await
            .unwrap_or_else(|s| panic!("deliver events failed: {s:?}"))
            .into_inner()
            .acknowledged_event_ids
    }

    /// Delivers `events` and expects every one acknowledged.
    pub async fn deliver_all(&self, events: Vec<EventEnvelope>) {
        let ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
        assert_eq!(self.deliver(events).await, ids, "every event acknowledged");
    }

    /// Erases a guest at guest-profile (head office); returns guest-profile's GuestErased
    /// events for it and everything merged into it, not yet delivered here.
    pub async fn erase_guest(&self, guest_id: &str) -> Vec<EventEnvelope> {
        self.gp_client(&keys().head_office())
            .erase_guest(gp::EraseGuestRequest {
                guest_id: guest_id.into(),
                reason: "the guest asked".into(),
            })
            .await
            .expect("erase guest");
        let mut out = Vec::new();
        let all: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT envelope FROM outbox WHERE event_type = 'guest_erased' ORDER BY id",
        )
        .fetch_all(&self.gp_pool)
        .await
        .expect("guest-profile outbox");
        for bytes in all {
            let e = <EventEnvelope as prost::Message>::decode(bytes.as_slice()).expect("envelope");
            if let Some(Payload::GuestErased(g)) = &e.payload
                && self.merged_into(&g.guest_id, guest_id).await
            {
                out.push(e);
            }
        }
        out
    }

    /// Whether guest-profile has `id` as `survivor` or merged into it (directly or not).
    async fn merged_into(&self, id: &str, survivor: &str) -> bool {
        sqlx::query_scalar(
            "WITH RECURSIVE m(id) AS (SELECT $1::uuid UNION SELECT g.id FROM guests g JOIN m ON g.merged_into = m.id)
             SELECT EXISTS (SELECT 1 FROM m WHERE id::text = $2)",
        )
        .bind(uuid::Uuid::parse_str(survivor).expect("guest id"))
        .bind(id)
        .fetch_one(&self.gp_pool)
        .await
        .expect("merged ids")
    }

    /// Merges `duplicate` into `survivor` at guest-profile; returns its GuestMerged event.
    pub async fn merge_guests(&self, survivor: &str, duplicate: &str) -> EventEnvelope {
        self.gp_client(&keys().head_office())
            .merge_guests(gp::MergeGuestsRequest {
                survivor_guest_id: survivor.into(),
                duplicate_guest_id: duplicate.into(),
                reason: "same person".into(),
            })
            .await
            .expect("merge guests");
        self.gp_events("guest", survivor)
            .await
            .into_iter()
            .rev()
            .find(|e| matches!(&e.payload, Some(Payload::GuestMerged(m)) if m.duplicate_guest_id == duplicate))
            .expect("a GuestMerged event in guest-profile's outbox")
    }
}

/// An event as guest-profile writes it about guest `aggregate_id`, never written there:
/// what its relay would deliver if guest-profile had made the change (or will, later).
pub fn guest_event(aggregate_id: &str, payload: Payload) -> EventEnvelope {
    EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        source: "guest-profile".into(),
        aggregate_type: "guest".into(),
        aggregate_id: aggregate_id.into(),
        sequence: 1,
        occur_time: Some(ts(chrono::Utc::now())),
        payload: Some(payload),
        ..Default::default()
    }
}

pub fn erased(guest_id: &str) -> EventEnvelope {
    guest_event(
        guest_id,
        Payload::GuestErased(guestloop_proto::events::v1::GuestErased {
            guest_id: guest_id.into(),
        }),
    )
}

pub fn merged(survivor: &str, duplicate: &str) -> EventEnvelope {
    guest_event(
        survivor,
        Payload::GuestMerged(guestloop_proto::events::v1::GuestMerged {
            survivor_guest_id: survivor.into(),
            duplicate_guest_id: duplicate.into(),
        }),
    )
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for tx in self.shutdown.drain(..) {
            let _ = tx.send(());
        }
    }
}

/// The payload's kind, e.g. "case_opened".
pub fn kind(e: &EventEnvelope) -> String {
    e.payload
        .as_ref()
        .map(guestloop_outbox::payload_name)
        .unwrap_or_default()
}

pub fn kinds(events: &[EventEnvelope]) -> Vec<String> {
    events.iter().map(kind).collect()
}

pub fn payload(e: &EventEnvelope) -> &Payload {
    e.payload.as_ref().expect("payload")
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

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

pub fn manager(property: &str) -> String {
    keys().token(Role::PropertyManager, &[property], None)
}

/// A token of another Guestloop service (the follow-up-scheduler).
pub fn service() -> String {
    token_as("follow-up-scheduler", Role::Service, &[], None)
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

static SEQ: AtomicU32 = AtomicU32::new(1);

pub fn next() -> u32 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// A complete guest with a unique email, phone and loyalty number, VIP gold.
pub fn guest() -> gp::Guest {
    let n = next();
    gp::Guest {
        given_name: "Wei".into(),
        family_name: "Zhang".into(),
        contacts: Some(gp::Contacts {
            email: format!("wei.zhang{n}@example.com"),
            phone: format!("+86138{n:08}"),
            wechat_id: format!("weizhang_{n}"),
        }),
        language: "zh-CN".into(),
        birthday: Some(common::Date {
            year: 1986,
            month: 5,
            day: 17,
        }),
        segment: gp::Segment::Business as i32,
        tier: gp::Tier::VipGold as i32,
        loyalty_number: format!("GL-{n:06}"),
        ..Default::default()
    }
}

/// A guest of this tier.
pub fn guest_of_tier(tier: gp::Tier) -> gp::Guest {
    gp::Guest {
        tier: tier as i32,
        ..guest()
    }
}

pub fn email_of(g: &gp::Guest) -> String {
    g.contacts.clone().unwrap_or_default().email
}

pub fn phone_of(g: &gp::Guest) -> String {
    g.contacts.clone().unwrap_or_default().phone
}

pub fn by_id(g: &gp::Guest) -> Option<pb::GuestReference> {
    Some(pb::GuestReference {
        guest_id: g.guest_id.clone(),
        ..Default::default()
    })
}

/// Plain feedback on `channel` at `property` with a neutral sentiment given, so the rules
/// open no case unless a test asks for one.
pub fn feedback(property: &str, channel: pb::FeedbackChannel, text: &str) -> pb::Feedback {
    pb::Feedback {
        property_id: property.into(),
        channel: channel as i32,
        text: text.into(),
        language: "en".into(),
        sentiment: pb::Sentiment::Neutral as i32,
        ..Default::default()
    }
}

pub fn submit_req(f: pb::Feedback) -> pb::SubmitFeedbackRequest {
    pb::SubmitFeedbackRequest {
        feedback: Some(f),
        ..Default::default()
    }
}

/// A complaint (a case opens) about noise, negative.
pub fn complaint(
    property: &str,
    channel: pb::FeedbackChannel,
    text: &str,
) -> pb::SubmitFeedbackRequest {
    pb::SubmitFeedbackRequest {
        feedback: Some(pb::Feedback {
            category: pb::Category::Noise as i32,
            sentiment: pb::Sentiment::Negative as i32,
            ..feedback(property, channel, text)
        }),
        complaint: Some(pb::CaseDetails::default()),
        ..Default::default()
    }
}

/// A complaint of `category` from `g`.
pub fn complaint_from(
    property: &str,
    g: &gp::Guest,
    category: pb::Category,
    text: &str,
) -> pb::SubmitFeedbackRequest {
    let mut req = complaint(property, pb::FeedbackChannel::Phone, text);
    req.guest = by_id(g);
    if let Some(f) = req.feedback.as_mut() {
        f.category = category as i32;
    }
    req
}

/// A post-stay survey with these scores and no text.
pub fn survey(
    property: &str,
    csat: Option<i32>,
    nps: Option<i32>,
    csi: &[(pb::CsiDimension, i32)],
) -> pb::Feedback {
    pb::Feedback {
        property_id: property.into(),
        channel: pb::FeedbackChannel::PostStaySurvey as i32,
        survey: Some(pb::SurveyAnswers {
            invitation_id: format!("inv-{}", next()),
            csat,
            nps,
            csi_scores: csi
                .iter()
                .map(|(d, s)| pb::CsiScore {
                    dimension: *d as i32,
                    score: *s,
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An OTA review with a rating out of `scale`.
pub fn ota_review(
    property: &str,
    site: pb::OtaSite,
    review_id: &str,
    rating: f64,
    scale: f64,
) -> pb::Feedback {
    pb::Feedback {
        property_id: property.into(),
        channel: pb::FeedbackChannel::OtaReview as i32,
        text: "Good location, friendly staff, the room was fine.".into(),
        language: "en".into(),
        sentiment: pb::Sentiment::Positive as i32,
        ota_review: Some(pb::OtaReview {
            site: site as i32,
            review_id: review_id.into(),
            rating,
            rating_scale: scale,
            title: "Nice stay".into(),
            reviewer_name: "traveller88".into(),
            review_url: format!("https://reviews.example.com/{review_id}"),
            reply_status: pb::OtaReplyStatus::NotReplied as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn ts(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn time_of(t: &Option<prost_types::Timestamp>) -> chrono::DateTime<chrono::Utc> {
    let t = t.expect("timestamp set");
    chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32).expect("valid timestamp")
}

pub fn ago(d: chrono::Duration) -> Option<prost_types::Timestamp> {
    Some(ts(chrono::Utc::now() - d))
}

pub fn page(size: i32, token: &str) -> Option<common::PageRequest> {
    Some(common::PageRequest {
        page_size: size,
        page_token: token.into(),
    })
}

pub fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

pub fn cny(amount_minor: i64) -> Option<common::Money> {
    Some(common::Money {
        currency_code: "CNY".into(),
        amount_minor,
    })
}

pub fn status_of(c: &pb::Case) -> pb::CaseStatus {
    pb::CaseStatus::try_from(c.status).expect("known status")
}

// ---------------------------------------------------------------------------------------
// Status assertions
// ---------------------------------------------------------------------------------------
