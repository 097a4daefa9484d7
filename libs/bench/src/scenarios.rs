//! The scenarios: each subject measured against its ceiling in the same run, interleaved
//! A/B/A/B, the median of the rounds' ratios reported.

use crate::load::{self, Call, Outcome, Summary, authorized};
use crate::pgbench;
use crate::procstat::{self, CpuMark};
use crate::stack::Stack;
use crate::{Options, report::*};
use guestloop_proto::feedback::v1 as fb;
use guestloop_proto::feedback::v1::feedback_intake_service_client::FeedbackIntakeServiceClient;
use guestloop_proto::guestprofile::v1 as gp;
use guestloop_proto::guestprofile::v1::guest_profile_service_client::GuestProfileServiceClient;
use std::sync::Arc;
use tonic::metadata::{Ascii, MetadataValue};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

fn bearer(stack: &Stack) -> MetadataValue<Ascii> {
    format!("Bearer {}", stack.keys.head_office())
        .parse()
        .expect("a token is ASCII")
}

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
fn measured(outcome: &Outcome, cpu: (f64, f64)) -> Phase {
    let per_k = |s: f64| s / (outcome.ok.max(1) as f64) * 1000.0;
    Phase {
        summary: outcome.summary(),
        server_cpu_s_per_1k: per_k(cpu.0),
        postgres_cpu_s_per_1k: per_k(cpu.1),
    }
}

/// Runs `call` closed loop and measures its CPU.
async fn closed(
    stack: &Stack,
    pid: u32,
    channels: &[tonic::transport::Channel],
    concurrency: usize,
    opts: &Options,
    call: &Call,
) -> Phase {
    let mark = CpuMark::now(Some(pid), &stack.cluster.data_dir);
    let out = load::closed_loop(channels, concurrency, opts.phase, call.clone()).await;
    measured(&out, mark.since(Some(pid), &stack.cluster.data_dir))
}

/// Open-loop latency at fractions of the subject's closed-loop rate, for the chart.
async fn sweep(
    channels: &[tonic::transport::Channel],
    capacity: f64,
    opts: &Options,
    call: &Call,
) -> Vec<SweepPoint> {
    let mut points = Vec::new();
    for fraction in [0.25, 0.5, 0.75, 1.0, 1.25] {
        let rate = (capacity * fraction).max(10.0);
        let out = load::open_loop(channels, rate, opts.phase, 4096, call.clone()).await;
        let s: Summary = out.summary();
        points.push(SweepPoint {
            offered_per_s: rate,
            achieved_per_s: s.calls_per_s,
            p50_ms: s.p50_ms,
            p99_ms: s.p99_ms,
            errors: s.errors.values().sum(),
        });
    }
    points
}

/// P1: GetGuest of one hot profile against grpc.health Check on the same server, 4
/// connections × 16 calls in flight.
pub async fn p1_get_guest(stack: &Stack, opts: &Options) -> anyhow::Result<Scenario> {
    let db = "bench_p1";
    stack.fresh_database(db).await?;
    let mut svc = stack
        .service("guest-profile", db, &opts.service_env)
        .await?;
    let endpoint = svc.process.endpoint();
    let pid = svc.process.pid();
    let token = bearer(stack);
    let channels = load::channels(&endpoint, 4).await?;
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
    let get: Call = Arc::new(move |channel, _| {
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
    let health = health_call();
    let concurrency = 64;
    warm_up(&channels, concurrency, opts, &[&get, &health]).await;
    let mut rounds = Vec::new();
    for _ in 0..opts.repeats {
        let subject = closed(stack, pid, &channels, concurrency, opts, &get).await;
        let ceiling = closed(stack, pid, &channels, concurrency, opts, &health).await;
        rounds.push(Round { subject, ceiling });
    }
    let capacity = median_of(rounds.iter().map(|r| r.subject.summary.calls_per_s));
    let sweep = sweep(&channels, capacity, opts, &get).await;
    let peak_rss_mb = procstat::peak_rss_mb(pid);
    let _ = svc.process.stop(std::time::Duration::from_secs(20));
    Ok(Scenario::new(
        "P1",
        "GetGuest, one hot profile, c64 over 4 connections",
        "grpc.health.v1 Check on the same server, same load",
        Target::ratio_at_least(0.5).with_p99_at_most_times_ceiling(3.0),
        rounds,
    )
    .with_sweep(sweep)
    .with_peak_rss("guest-profile", peak_rss_mb))
}

/// P2: SubmitFeedback of a comment card (one durable item per call, no case) against
/// pgbench inserting the same row into a copy of the feedback table (same columns and
/// indexes) at the same concurrency, c8 and c32.
pub async fn p2_submit_feedback(stack: &Stack, opts: &Options) -> anyhow::Result<Vec<Scenario>> {
    let db = "bench_p2";
    stack.fresh_database(db).await?;
    let mut svc = stack
        .service("feedback-intake", db, &opts.service_env)
        .await?;
    let pid = svc.process.pid();
    let channels = load::channels(&svc.process.endpoint(), 4).await?;
    let token = bearer(stack);
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let submit: Call = Arc::new(move |channel, seq| {
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
    let script = ceiling_insert(stack, db).await?;
    warm_up(&channels, 8, opts, &[&submit]).await;
    let mut out = Vec::new();
    for concurrency in [8usize, 32] {
        let mut rounds = Vec::new();
        for _ in 0..opts.repeats {
            let subject = closed(stack, pid, &channels, concurrency, opts, &submit).await;
            let mark = CpuMark::now(None, &stack.cluster.data_dir);
            let run = pgbench::run(stack.cluster.port, db, &script, concurrency, opts.phase)?;
            let (_, pg_cpu) = mark.since(None, &stack.cluster.data_dir);
            rounds.push(Round {
                subject,
                ceiling: Phase::from_pgbench(run, pg_cpu, opts.phase),
            });
        }
        let mut scenario = Scenario::new(
            "P2",
            &format!("SubmitFeedback, comment card, c{concurrency}"),
            &format!("pgbench: the same one-row INSERT into a copy of feedback, c{concurrency}"),
            Target::ratio_at_least(1.0),
            rounds,
        );
        if concurrency == 8 {
            let capacity = median_of(
                scenario
                    .rounds
                    .iter()
                    .map(|r| r.subject.summary.calls_per_s),
            );
            scenario = scenario.with_sweep(sweep(&channels, capacity, opts, &submit).await);
        }
        out.push(scenario);
    }
    if let Some(last) = out.last_mut() {
        last.peak_rss
            .insert("feedback-intake".into(), procstat::peak_rss_mb(pid));
    }
    let _ = svc.process.stop(std::time::Duration::from_secs(20));
    Ok(out)
}

/// P3: ImportFeedback of `opts.import_items` comment cards in one stream against `COPY` of
/// the same rows into a copy of the feedback table (same columns and indexes).
pub async fn p3_import(stack: &Stack, opts: &Options) -> anyhow::Result<Scenario> {
    let db = "bench_p3";
    stack.fresh_database(db).await?;
    let mut svc = stack
        .service("feedback-intake", db, &opts.service_env)
        .await?;
    let pid = svc.process.pid();
    let channel = load::channels(&svc.process.endpoint(), 1).await?.remove(0);
    let token = bearer(stack);
    let _ = ceiling_insert(stack, db).await?;
    let n = opts.import_items;
    let mut rounds = Vec::new();
    for round in 0..opts.repeats {
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let items = (0..n).map(move |i| fb::ImportFeedbackRequest {
            feedback: Some(fb::Feedback {
                property_id: "sh-bund".into(),
                channel: fb::FeedbackChannel::CommentCard as i32,
                source: "bench-import".into(),
                external_id: format!("{run_id}-{i}"),
                language: "en".into(),
                text: COMMENT_CARD.into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let mark = CpuMark::now(Some(pid), &stack.cluster.data_dir);
        let started = std::time::Instant::now();
        let answer = FeedbackIntakeServiceClient::new(channel.clone())
            .max_decoding_message_size(256 << 20)
            .import_feedback(authorized(futures::stream::iter(items), &token))
            .await?
            .into_inner();
        let import = one_call(n, answer.created_count as u64, started.elapsed());
        let subject = measured(&import, mark.since(Some(pid), &stack.cluster.data_dir));
        anyhow::ensure!(
            answer.created_count as usize == n,
            "round {round}: import created {} of {n} ({} failed)",
            answer.created_count,
            answer.failed_count
        );

        let mark = CpuMark::now(None, &stack.cluster.data_dir);
        let started = std::time::Instant::now();
        copy_rows(stack, db, n).await?;
        let copy = one_call(n, n as u64, started.elapsed());
        let ceiling = measured(&copy, mark.since(None, &stack.cluster.data_dir));
        rounds.push(Round { subject, ceiling });
    }
    let peak = procstat::peak_rss_mb(pid);
    let _ = svc.process.stop(std::time::Duration::from_secs(20));
    Ok(Scenario::new(
        "P3",
        &format!("ImportFeedback, {n} comment cards in one stream (items/s)"),
        &format!("COPY of the same {n} rows into a copy of feedback (rows/s)"),
        Target::ratio_at_least(0.5),
        rounds,
    )
    .with_peak_rss("feedback-intake (import)", peak))
}

/// A bulk operation as an [`Outcome`]: `ok` items over `elapsed`, latency the whole call.
fn one_call(_items: usize, ok: u64, elapsed: std::time::Duration) -> Outcome {
    let mut latency = hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .expect("valid histogram bounds");
    latency.saturating_record(elapsed.as_micros() as u64);
    Outcome {
        ok,
        errors: Default::default(),
        elapsed,
        latency,
    }
}

/// `COPY … FROM STDIN` of `n` rows like the import's, in one transaction.
async fn copy_rows(stack: &Stack, db: &str, n: usize) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&stack.cluster.admin_url(db)).await?;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let mut copy = conn
        .copy_in_raw(
            "COPY bench_ceiling.feedback (id, property_id, channel, source, external_id,
               guest_match, guest_tier, receive_time, language, text, category, category_source,
               sentiment, sentiment_source, submitted_by) FROM STDIN",
        )
        .await?;
    let now = chrono::Utc::now().to_rfc3339();
    let mut chunk = String::with_capacity(1 << 20);
    for i in 0..n {
        use std::fmt::Write as _;
        let _ = writeln!(
            chunk,
            "{}\tsh-bund\t6\tbench-import\t{run_id}-{i}\t0\t0\t{now}\ten\t{COMMENT_CARD}\t5\t2\t2\t2\ttest-user",
            uuid::Uuid::now_v7()
        );
        if chunk.len() > (1 << 20) - 512 {
            copy.send(chunk.as_bytes()).await?;
            chunk.clear();
        }
    }
    copy.send(chunk.as_bytes()).await?;
    copy.finish().await?;
    Ok(())
}

const COMMENT_CARD: &str =
    "Room was clean and the breakfast staff were friendly; the lift was a little slow.";

/// A copy of the feedback table (columns, defaults, generated column, indexes) and the
/// pgbench script inserting the row the subject writes.
async fn ceiling_insert(stack: &Stack, db: &str) -> anyhow::Result<std::path::PathBuf> {
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

async fn warm_up(
    channels: &[tonic::transport::Channel],
    concurrency: usize,
    opts: &Options,
    calls: &[&Call],
) {
    for call in calls {
        let _ = load::closed_loop(channels, concurrency, opts.warmup, (*call).clone()).await;
    }
}

/// P7: each service's time from process start to SERVING (first start, which migrates a
/// fresh schema, and a restart on the migrated schema) and its resident memory when idle.
pub async fn p7_footprint(stack: &Stack, opts: &Options) -> anyhow::Result<Vec<Footprint>> {
    let db = "bench_p7";
    stack.fresh_database(db).await?;
    let mut out = Vec::new();
    for (service, _, _) in guestloop_testkit::platform::SERVICES {
        let mut first = stack.service(service, db, &opts.service_env).await?;
        let _ = first.process.stop(std::time::Duration::from_secs(20));
        let mut again = stack.service(service, db, &opts.service_env).await?;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        out.push(Footprint {
            service: service.to_string(),
            first_serving_ms: first.serving_after.as_secs_f64() * 1000.0,
            restart_serving_ms: again.serving_after.as_secs_f64() * 1000.0,
            idle_rss_mb: procstat::rss_mb(again.process.pid()),
        });
        let _ = again.process.stop(std::time::Duration::from_secs(20));
    }
    Ok(out)
}
