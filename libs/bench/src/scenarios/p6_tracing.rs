//! P6: the cost of tracing. The same call on two processes of the same service and
//! database, one exporting every span (100 % sampling) to a real OTLP/gRPC receiver, one
//! exporting nothing, alternated round by round: GetGuest (P1's load) and SubmitFeedback
//! (P2's, c32). The report also says how many spans the receiver got, since a span queue
//! that overflows drops spans rather than slow calls down.

use super::{Subject, get_guest_subject, submit_subject};
use crate::Options;
use crate::report::{Round, Scenario, Target};
use crate::stack::Stack;
use guestloop_testkit::otlp::TraceReceiver;
use std::collections::BTreeMap;

pub async fn p6_tracing(stack: &Stack, opts: &Options) -> anyhow::Result<Vec<Scenario>> {
    let (receiver, addr) = TraceReceiver::start_on_own_thread(false)?;
    let mut traced = opts.service_env.clone();
    traced.insert(
        "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
        format!("http://{addr}"),
    );
    // Room for a few seconds of spans at full load; the SDK's default queue is 2,048.
    traced
        .entry("OTEL_BSP_MAX_QUEUE_SIZE".into())
        .or_insert_with(|| "65536".into());
    traced
        .entry("OTEL_BSP_SCHEDULE_DELAY".into())
        .or_insert_with(|| "500".into());
    let db = "bench_p6";
    stack.fresh_database(db).await?;
    let mut out = Vec::new();
    for (name, concurrency) in [("GetGuest, c64", 64usize), ("SubmitFeedback, c32", 32)] {
        let make = |env: BTreeMap<String, String>| async move {
            if name.starts_with("GetGuest") {
                get_guest_subject(stack, db, &env).await
            } else {
                submit_subject(stack, db, &env).await
            }
        };
        let on: Subject = make(traced.clone()).await?;
        let off: Subject = make(opts.service_env.clone()).await?;
        on.warm_up(concurrency, opts, &[&on.call]).await;
        off.warm_up(concurrency, opts, &[&off.call]).await;
        let before = receiver.spans();
        let mut rounds = Vec::new();
        let mut traced_calls = 0;
        for _ in 0..opts.repeats {
            let subject = on.closed(stack, &on.call, concurrency, opts).await;
            traced_calls += subject.summary.ok;
            let ceiling = off.closed(stack, &off.call, concurrency, opts).await;
            rounds.push(Round { subject, ceiling });
        }
        // Let the exporter's last batch arrive.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let spans = receiver.spans() - before;
        on.stop().await;
        off.stop().await;
        out.push(Scenario::new(
            "P6",
            &format!(
                "{name}, every span exported over OTLP ({spans} spans for {traced_calls} calls)"
            ),
            &format!("{name}, tracing not exported, same database"),
            Target::ratio_at_least(0.95),
            rounds,
        ));
    }
    Ok(out)
}
