//! P7: each service's time from process start to SERVING (first start, which migrates a
//! fresh schema, and a restart on the migrated schema) and its resident memory when idle,
//! all of it and the part that is not the binary's mapped code.

use crate::Options;
use crate::procstat;
use crate::report::Footprint;
use crate::stack::Stack;

pub async fn p7_footprint(stack: &Stack, opts: &Options) -> anyhow::Result<Vec<Footprint>> {
    let db = "bench_p7";
    stack.fresh_database(db).await?;
    let mut out = Vec::new();
    for (service, _, _) in guestloop_testkit::platform::SERVICES {
        let mut first = stack.service(service, db, &opts.service_env).await?;
        let _ = first
            .process
            .shutdown(std::time::Duration::from_secs(20))
            .await;
        let mut again = stack.service(service, db, &opts.service_env).await?;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        out.push(Footprint {
            service: service.to_string(),
            first_serving_ms: first.serving_after.as_secs_f64() * 1000.0,
            restart_serving_ms: again.serving_after.as_secs_f64() * 1000.0,
            idle_rss_mb: procstat::rss_mb(again.process.pid()),
            idle_anon_mb: procstat::anon_rss_mb(again.process.pid()),
        });
        let _ = again
            .process
            .shutdown(std::time::Duration::from_secs(20))
            .await;
    }
    Ok(out)
}
