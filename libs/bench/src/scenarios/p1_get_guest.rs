//! P1: GetGuest of one hot profile against grpc.health Check on the same server, 4
//! connections × 16 calls in flight.

use super::{get_guest_subject, health_call};
use crate::Options;
use crate::report::{Round, Scenario, Target, median_of};
use crate::stack::Stack;

pub async fn p1_get_guest(stack: &Stack, opts: &Options) -> anyhow::Result<Scenario> {
    let db = "bench_p1";
    stack.fresh_database(db).await?;
    let subject = get_guest_subject(stack, db, &opts.service_env).await?;
    let health = health_call();
    let concurrency = 64;
    subject
        .warm_up(concurrency, opts, &[&subject.call, &health])
        .await;
    let mut rounds = Vec::new();
    for _ in 0..opts.repeats {
        rounds.push(Round {
            subject: subject
                .closed(stack, &subject.call, concurrency, opts)
                .await,
            ceiling: subject.closed(stack, &health, concurrency, opts).await,
        });
    }
    let capacity = median_of(rounds.iter().map(|r| r.subject.summary.calls_per_s));
    let sweep = subject.sweep(capacity, opts).await;
    let peak_rss_mb = crate::procstat::peak_rss_mb(subject.pid());
    subject.stop().await;
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
