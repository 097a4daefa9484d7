//! The scenarios: each subject measured against its ceiling in the same run, interleaved
//! A/B/A/B, the median of the rounds' ratios reported. This module holds what they
//! share: the services under load (a [`Subject`]), the ceiling calls, phases and sweeps.

mod p1_get_guest;
mod p2_submit;
mod p3_import;
mod p4_timers;
mod p5_kpis;
mod p6_tracing;
mod p7_footprint;

pub use p1_get_guest::p1_get_guest;
pub use p2_submit::p2_submit_feedback;
pub use p3_import::p3_import;
pub use p4_timers::p4_timers;
pub use p5_kpis::p5_kpis;
pub use p6_tracing::p6_tracing;
pub use p7_footprint::p7_footprint;

use crate::Options;
use crate::load::{self, Call, Outcome, authorized};
use crate::procstat::CpuSpent;
use crate::report::{Batching, Phase, SweepPoint};
use crate::stack::{Stack, Started};
use guestloop_proto::feedback::v1 as fb;
use guestloop_proto::feedback::v1::feedback_intake_service_client::FeedbackIntakeServiceClient;
use guestloop_proto::guestprofile::v1 as gp;
use guestloop_proto::guestprofile::v1::guest_profile_service_client::GuestProfileServiceClient;
use std::collections::BTreeMap;
use std::sync::Arc;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// The text of every benchmark comment card (the classifier runs on it, as in production).
const COMMENT_CARD: &str =
    "Room was clean and the breakfast staff were friendly; the lift was a little slow.";

/// Counters of a service's batchers, all batchers together (libs/db's batch.rs).
struct BatchTotals {
    batches: f64,
    items: f64,
    seconds: f64,
}

impl BatchTotals {
    /// What was written between `before` and these counters; `None` if no batch was.
    fn since(&self, before: &BatchTotals) -> Option<Batching> {
        let n = self.batches - before.batches;
        (n > 0.0).then(|| Batching {
            items_per_batch: (self.items - before.items) / n,
            ms_per_batch: (self.seconds - before.seconds) / n * 1000.0,
        })
    }
}

/// A service process under load: its connections and the call that exercises it.
pub(crate) struct Subject {
    pub svc: Started,
    pub channels: Vec<Channel>,
    pub call: Call,
}

impl Subject {
    pub fn pid(&self) -> u32 {
        self.svc.process.pid()
    }

    /// `call` closed loop at `concurrency`, with the CPU it cost.
    pub async fn closed(
        &self,
        stack: &Stack,
        call: &Call,
        concurrency: usize,
        opts: &Options,
    ) -> Phase {
        let pid = Some(self.pid());
        let batches = self.batches().await;
        let mark = crate::procstat::CpuMark::now(pid, &stack.cluster.data_dir);
        let out = load::closed_loop(&self.channels, concurrency, opts.phase, call.clone()).await;
        let mut phase = measured(&out, mark.since(pid, &stack.cluster.data_dir));
        if let (Some(before), Some(after)) = (batches, self.batches().await) {
            phase.batching = after.since(&before);
        }
        phase
    }

    /// What the service's batchers have written so far (its /metrics).
    async fn batches(&self) -> Option<BatchTotals> {
        let text = guestloop_testkit::scrape(("127.0.0.1", self.svc.process.admin_port))
            .await
            .ok()?;
        let sum = |series| guestloop_testkit::sum_of(&text, series);
        Some(BatchTotals {
            batches: sum("guestloop_batch_items_count"),
            items: sum("guestloop_batch_items_sum"),
            seconds: sum("guestloop_batch_seconds_sum"),
        })
    }

    pub async fn warm_up(&self, concurrency: usize, opts: &Options, calls: &[&Call]) {
        for call in calls {
            let _ =
                load::closed_loop(&self.channels, concurrency, opts.warmup, (*call).clone()).await;
        }
    }

    /// Open-loop latency at fractions of the subject's closed-loop rate, for the chart.
    pub async fn sweep(&self, capacity: f64, opts: &Options) -> Vec<SweepPoint> {
        let mut points = Vec::new();
        for fraction in [0.25, 0.5, 0.75, 1.0, 1.25] {
            let rate = (capacity * fraction).max(10.0);
            let out =
                load::open_loop(&self.channels, rate, opts.phase, 4096, self.call.clone()).await;
            let s = out.summary();
            points.push(SweepPoint {
                offered_per_s: rate,
                achieved_per_s: s.calls_per_s,
                p50_ms: s.p50_ms,
                p99_ms: s.p99_ms,
                errors: s.errors.clone(),
            });
        }
        points
    }

    pub async fn stop(mut self) {
        let _ = self
            .svc
            .process
            .shutdown(std::time::Duration::from_secs(20))
            .await;
    }
}

fn bearer(stack: &Stack) -> MetadataValue<Ascii> {
    format!("Bearer {}", stack.keys.head_office())
        .parse()
        .expect("a token is ASCII")
}

/// grpc.health.v1 Check on the subject's own server: the RPC ceiling.
fn health_call() -> Call {
    Arc::new(|channel, _| {
        Box::pin(async move {
            HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|_| ())
        })
    })
}

/// A phase's figures with the CPU it cost per 1,000 successful calls.
fn measured(outcome: &Outcome, cpu: CpuSpent) -> Phase {
    Phase::with_cpu(outcome.summary(), &cpu, outcome.ok as f64)
}

/// guest-profile on `db` with one guest, and GetGuest of that guest as the call.
async fn get_guest_subject(
    stack: &Stack,
    db: &str,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<Subject> {
    let svc = stack.service("guest-profile", db, env).await?;
    let token = bearer(stack);
    let channels = load::channels(&svc.process.endpoint(), 4).await?;
    let created = GuestProfileServiceClient::new(channels[0].clone())
        .create_guest(authorized(
            gp::CreateGuestRequest {
                property_id: "sh-bund".into(),
                guest: Some(gp::Guest {
                    given_name: "Bench".into(),
                    family_name: "Guest".into(),
                    contacts: Some(gp::Contacts {
                        email: "bench.guest@example.com".into(),
                        phone: "+8613800138000".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            &token,
        ))
        .await?
        .into_inner();
    let guest_id = created.guest.map(|g| g.guest_id).unwrap_or_default();
    let call: Call = Arc::new(move |channel, _| {
        let request = authorized(
            gp::GetGuestRequest {
                guest_id: guest_id.clone(),
            },
            &token,
        );
        Box::pin(async move {
            GuestProfileServiceClient::new(channel)
                .get_guest(request)
                .await
                .map(|_| ())
        })
    });
    Ok(Subject {
        svc,
        channels,
        call,
    })
}

/// feedback-intake on `db`, and SubmitFeedback of a fresh comment card as the call.
async fn submit_subject(
    stack: &Stack,
    db: &str,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<Subject> {
    let svc = stack.service("feedback-intake", db, env).await?;
    let channels = load::channels(&svc.process.endpoint(), 4).await?;
    let token = bearer(stack);
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let call: Call = Arc::new(move |channel, seq| {
        let request = authorized(
            fb::SubmitFeedbackRequest {
                feedback: Some(fb::Feedback {
                    property_id: "sh-bund".into(),
                    channel: fb::FeedbackChannel::CommentCard as i32,
                    source: "bench-cards".into(),
                    external_id: format!("{run_id}-{seq}"),
                    language: "en".into(),
                    text: COMMENT_CARD.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            &token,
        );
        Box::pin(async move {
            FeedbackIntakeServiceClient::new(channel)
                .submit_feedback(request)
                .await
                .map(|_| ())
        })
    });
    Ok(Subject {
        svc,
        channels,
        call,
    })
}

/// A copy of the feedback table (columns, defaults, generated column, indexes) for the
/// database ceilings; returns the pgbench script inserting the row the subject writes.
async fn ceiling_table(stack: &Stack, db: &str) -> anyhow::Result<std::path::PathBuf> {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(&stack.cluster.admin_url(db)).await?;
    conn.execute(
        "DROP SCHEMA IF EXISTS bench_ceiling CASCADE;
         CREATE SCHEMA bench_ceiling;
         CREATE TABLE bench_ceiling.feedback (LIKE feedback.feedback INCLUDING ALL);",
    )
    .await?;
    let script = stack.work_dir.join("p2_insert.sql");
    std::fs::write(
        &script,
        format!(
            "INSERT INTO bench_ceiling.feedback (id, property_id, channel, source, external_id,
               guest_match, guest_tier, receive_time, language, text, category, category_source,
               sentiment, sentiment_source, submitted_by)
             VALUES (gen_random_uuid(), 'sh-bund', 6, 'bench-cards', gen_random_uuid()::text,
               0, 0, now(), 'en', '{COMMENT_CARD}', 5, 2, 2, 2, 'test-user');\n"
        ),
    )?;
    Ok(script)
}
