//! P3: ImportFeedback of `opts.import_items` comment cards in one stream against `COPY` of
//! the same rows into a copy of the feedback table (same columns and indexes).

use super::{COMMENT_CARD, bearer, ceiling_table, measured};
use crate::Options;
use crate::load::{self, Outcome, authorized};
use crate::procstat::{self, CpuMark};
use crate::report::{Round, Scenario, Target};
use crate::stack::Stack;
use guestloop_proto::feedback::v1 as fb;
use guestloop_proto::feedback::v1::feedback_intake_service_client::FeedbackIntakeServiceClient;

pub async fn p3_import(stack: &Stack, opts: &Options) -> anyhow::Result<Scenario> {
    let db = "bench_p3";
    stack.fresh_database(db).await?;
    let n = opts.import_items;
    let mut env = opts.service_env.clone();
    // The service refuses imports past intake.import_max_items (50,000 by default).
    env.entry("GUESTLOOP__INTAKE__IMPORT_MAX_ITEMS".into())
        .or_insert_with(|| n.max(50_000).to_string());
    // Its answer lists every item (about 45 bytes each): 100,000 outgrow the 4 MiB default.
    env.entry("GUESTLOOP__GRPC__MAX_MESSAGE_BYTES".into())
        .or_insert_with(|| (n * 64).max(4 << 20).to_string());
    let mut svc = stack.service("feedback-intake", db, &env).await?;
    let pid = svc.process.pid();
    let channel = load::bulk_channel(&svc.process.endpoint()).await?;
    let token = bearer(stack);
    let _ = ceiling_table(stack, db).await?;
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
        let import = one_call(answer.created_count as u64, started.elapsed());
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
        let copy = one_call(n as u64, started.elapsed());
        let ceiling = measured(&copy, mark.since(None, &stack.cluster.data_dir));
        rounds.push(Round { subject, ceiling });
    }
    let peak = procstat::peak_rss_mb(pid);
    let _ = svc
        .process
        .shutdown(std::time::Duration::from_secs(20))
        .await;
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
pub(super) fn one_call(ok: u64, elapsed: std::time::Duration) -> Outcome {
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
