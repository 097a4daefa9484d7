//! P2: SubmitFeedback of a comment card (one durable item per call, no case) against
//! pgbench inserting the same row into a copy of the feedback table (same columns and
//! indexes) at the same concurrency, c8 and c32 (what the issue asks), and c64: a burst
//! of twice that, to show what batching does when more callers wait than one batch of the
//! split takes.

use super::{ceiling_table, submit_subject};
use crate::Options;
use crate::pgbench;
use crate::procstat::CpuMark;
use crate::report::{Phase, Round, Scenario, Target, median_of};
use crate::stack::Stack;

pub async fn p2_submit_feedback(stack: &Stack, opts: &Options) -> anyhow::Result<Vec<Scenario>> {
    let db = "bench_p2";
    stack.fresh_database(db).await?;
    let subject = submit_subject(stack, db, &opts.service_env).await?;
    let script = ceiling_table(stack, db).await?;
    subject.warm_up(8, opts, &[&subject.call]).await;
    let mut out = Vec::new();
    for concurrency in [8usize, 32, 64] {
        let mut rounds = Vec::new();
        for _ in 0..opts.repeats {
            let measured = subject
                .closed(stack, &subject.call, concurrency, opts)
                .await;
            let mark = CpuMark::now(None, &stack.cluster.data_dir);
            let run =
                pgbench::run(stack.cluster.port, db, &script, concurrency, opts.phase).await?;
            let spent = mark.since(None, &stack.cluster.data_dir);
            rounds.push(Round {
                subject: measured,
                ceiling: Phase::from_pgbench(run, spent, opts.phase),
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
            scenario = scenario.with_sweep(subject.sweep(capacity, opts).await);
        }
        out.push(scenario);
    }
    if let Some(last) = out.last_mut() {
        last.peak_rss.insert(
            "feedback-intake".into(),
            crate::procstat::peak_rss_mb(subject.pid()),
        );
    }
    subject.stop().await;
    Ok(out)
}
