//! P4: follow-up-scheduler firing due timers, two replicas on one database, against a plain
//! SQL claim loop over a copy of the timers table at the same batch size; then lateness
//! (fire time − due time) when timers come due at half the ceiling's rate.
//!
//! The timers are post-stay follow-ups with no action to call, so what is measured is the
//! scheduler's own machinery (claim under a lease, the late policy, the firing record, the
//! lease-guarded finish, the deadline notice), which is what the claim loop is the ceiling
//! of; what a SendMessage costs is notification's path. They are loaded in SQL (a million
//! ScheduleTimer calls would measure the API, not the firing). The ceiling claims like the
//! service (mark RUNNING under a lease, commit) and then marks the batch FIRED (commit): two
//! durable steps per batch, the least a lease-based worker with side effects needs.

use super::measured;
use crate::Options;
use crate::load::Outcome;
use crate::procstat::{self, CpuMark, CpuSpent};
use crate::report::{Round, Scenario, Target};
use crate::stack::{Stack, Started};
use sqlx::{Connection, Executor, PgConnection};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const SERVICE: &str = "follow-up-scheduler";
/// The service's default `timers.batch_size`; the ceiling claims as many at a time.
const BATCH: i64 = 50;
const REPLICAS: usize = 2;

pub async fn p4_timers(stack: &Stack, opts: &Options) -> anyhow::Result<Vec<Scenario>> {
    let db = "bench_p4";
    stack.fresh_database(db).await?;
    let n = opts.timers;
    let env = opts.service_env.clone();
    // Started once so it migrates; the rounds start the replicas on a loaded table.
    stack
        .service(SERVICE, db, &env)
        .await?
        .process
        .shutdown(STOP)
        .await?;
    let mut conn = PgConnection::connect(&stack.cluster.admin_url(db)).await?;
    conn.execute(
        "DROP SCHEMA IF EXISTS bench_ceiling CASCADE;
         CREATE SCHEMA bench_ceiling;
         CREATE TABLE bench_ceiling.timers (LIKE followup.timers INCLUDING ALL);",
    )
    .await?;

    let mut rounds = Vec::new();
    let mut peak = 0.0f64;
    for _ in 0..opts.repeats {
        reset(&mut conn, "followup").await?;
        load_due(&mut conn, "followup", n, None).await?;
        let (subject, rss) = fire_with_replicas(stack, db, &env, &mut conn, n).await?;
        peak = peak.max(rss);

        reset(&mut conn, "bench_ceiling").await?;
        load_due(&mut conn, "bench_ceiling", n, None).await?;
        let ceiling = claim_loop(stack, db, n).await?;
        rounds.push(Round { subject, ceiling });
    }
    let throughput = Scenario::new(
        "P4",
        &format!("follow-up-scheduler ×{REPLICAS} firing {n} due timers (timers/s)"),
        &format!("SQL claim loop, FOR UPDATE SKIP LOCKED, batch {BATCH}, {REPLICAS} clients"),
        Target::ratio_at_least(0.5),
        rounds,
    )
    .with_peak_rss("follow-up-scheduler (firing)", peak);

    let ceiling_rate = throughput
        .rounds
        .iter()
        .map(|r| r.ceiling.summary.calls_per_s)
        .fold(f64::NAN, f64::min);
    let lateness = lateness_at(stack, db, &env, &mut conn, ceiling_rate / 2.0, opts).await?;
    Ok(vec![throughput, lateness])
}

const STOP: Duration = Duration::from_secs(20);

async fn reset(conn: &mut PgConnection, schema: &str) -> anyhow::Result<()> {
    conn.execute(sqlx::AssertSqlSafe(if schema == "followup" {
        "TRUNCATE followup.timer_firings, followup.timers".to_string()
    } else {
        format!("TRUNCATE {schema}.timers")
    }))
    .await?;
    Ok(())
}

/// `n` pending post-stay timers with no action into `schema`.timers: due a minute ago, or
/// (`spread` = (start, rate)) one every 1/rate seconds from `start`.
async fn load_due(
    conn: &mut PgConnection,
    schema: &str,
    n: usize,
    spread: Option<(chrono::DateTime<chrono::Utc>, f64)>,
) -> anyhow::Result<()> {
    let (start, step_us) = match spread {
        Some((start, rate)) => (start, 1e6 / rate.max(1.0)),
        None => (chrono::Utc::now() - chrono::Duration::minutes(1), 0.001),
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {schema}.timers (id, key, purpose, property_id, due_time, state, late_policy,
            late_threshold_ms, create_time, update_time)
         SELECT gen_random_uuid(), 'bench:' || i, 3, 'sh-bund',
            $2 + make_interval(secs => i * $3 / 1e6), 1, 1, 3600000, now(), now()
         FROM generate_series(1, $1) AS i"
    )))
    .bind(n as i64)
    .bind(start)
    .bind(step_us)
    .execute(&mut *conn)
    .await?;
    conn.execute(sqlx::AssertSqlSafe(format!("ANALYZE {schema}.timers")))
        .await?;
    Ok(())
}

/// How many timers are pending or running: a count over every one of them, for the error
/// message only.
async fn pending(conn: &mut PgConnection) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM followup.timers WHERE state IN (1, 2)")
            .fetch_one(conn)
            .await?,
    )
}

/// Whether any timer is pending or running. The drain check asks this ten times a second
/// while the replicas fire: a count would walk every pending timer each time (tens of ms of
/// PostgreSQL CPU at 300,000) and take it from the subject, which the ceiling never pays.
async fn any_pending(conn: &mut PgConnection) -> anyhow::Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM followup.timers WHERE state IN (1, 2))")
            .fetch_one(conn)
            .await?,
    )
}

async fn start_replicas(
    stack: &Stack,
    db: &str,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<Vec<Started>> {
    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        replicas.push(stack.service(SERVICE, db, env).await?);
    }
    Ok(replicas)
}

/// Waits until no timer is pending or running; fails past `limit`.
async fn drained(conn: &mut PgConnection, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if !any_pending(conn).await? {
            return Ok(());
        }
        if started.elapsed() >= limit {
            let left = pending(conn).await?;
            anyhow::bail!("{left} timers still pending after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two replicas fire the loaded timers; the rate is timers over the span of their fire times
/// (so the replicas' start-up is not counted), the CPU is both replicas' and PostgreSQL's;
/// the load generator's and the machine's are sampled from before the replicas start, so
/// their start-up is in those.
async fn fire_with_replicas(
    stack: &Stack,
    db: &str,
    env: &BTreeMap<String, String>,
    conn: &mut PgConnection,
    n: usize,
) -> anyhow::Result<(crate::report::Phase, f64)> {
    let data = &stack.cluster.data_dir;
    let mark = CpuMark::now(None, data);
    let mut replicas = start_replicas(stack, db, env).await?;
    let result = drained(conn, Duration::from_secs(1800)).await;
    let server_cpu: f64 = replicas
        .iter()
        .map(|r| procstat::cpu_seconds(r.process.pid()))
        .sum();
    let rss = replicas
        .iter()
        .map(|r| procstat::peak_rss_mb(r.process.pid()))
        .fold(0.0, f64::max);
    // Before the replicas stop: their connections' backends take their CPU time with them.
    let spent = CpuSpent {
        server: server_cpu,
        ..mark.since(None, data)
    };
    for r in &mut replicas {
        let _ = r.process.shutdown(STOP).await;
    }
    result?;
    let (fired, span_s, dupes): (i64, f64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM followup.timers WHERE state = 3),
            (SELECT extract(epoch FROM max(fire_time) - min(fire_time))::float8
               FROM followup.timers),
            (SELECT count(*) - count(DISTINCT timer_id) FROM followup.timer_firings)",
    )
    .fetch_one(&mut *conn)
    .await?;
    anyhow::ensure!(fired as usize == n, "{fired} of {n} timers fired");
    anyhow::ensure!(dupes == 0, "{dupes} timers fired twice");
    let outcome = bulk(n as u64, Duration::from_secs_f64(span_s.max(1e-3)));
    Ok((measured(&outcome, spent), rss))
}

/// The ceiling: `REPLICAS` connections claiming `BATCH` at a time until nothing is due.
async fn claim_loop(stack: &Stack, db: &str, n: usize) -> anyhow::Result<crate::report::Phase> {
    let mark = CpuMark::now(None, &stack.cluster.data_dir);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..REPLICAS {
        let url = stack.cluster.admin_url(db);
        workers.push(tokio::spawn(async move {
            let mut conn = PgConnection::connect(&url).await?;
            let owner = format!("ceiling-{w}");
            let mut fired = 0u64;
            loop {
                let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
                    "UPDATE bench_ceiling.timers SET state = 2, lease_owner = $1,
                        lease_until = now() + interval '60 seconds',
                        attempt_count = attempt_count + 1, update_time = now()
                     WHERE id IN (
                         SELECT id FROM bench_ceiling.timers
                         WHERE (state = 1 AND due_time <= now())
                            OR (state = 2 AND lease_until < now())
                         ORDER BY due_time LIMIT $2
                         FOR UPDATE SKIP LOCKED)
                     RETURNING id",
                )
                .bind(&owner)
                .bind(BATCH)
                .fetch_all(&mut conn)
                .await?;
                if ids.is_empty() {
                    return anyhow::Ok(fired);
                }
                let done = sqlx::query(
                    "UPDATE bench_ceiling.timers SET state = 3, fire_time = now(),
                        lease_owner = NULL, lease_until = NULL, worked_by = $2,
                        update_time = now()
                     WHERE id = ANY($1) AND state = 2 AND lease_owner = $2",
                )
                .bind(&ids)
                .bind(&owner)
                .execute(&mut conn)
                .await?;
                fired += done.rows_affected();
            }
        }));
    }
    let mut fired = 0;
    for w in workers {
        fired += w.await??;
    }
    anyhow::ensure!(fired as usize == n, "the claim loop fired {fired} of {n}");
    let outcome = bulk(fired, started.elapsed());
    Ok(measured(
        &outcome,
        mark.since(None, &stack.cluster.data_dir),
    ))
}

/// Lateness: replicas running and idle, then timers due from a few seconds ahead at `rate`
/// per second; the figures are fire time − due time over all of them.
async fn lateness_at(
    stack: &Stack,
    db: &str,
    env: &BTreeMap<String, String>,
    conn: &mut PgConnection,
    rate: f64,
    opts: &Options,
) -> anyhow::Result<Scenario> {
    let rate = if rate.is_finite() {
        rate.max(10.0)
    } else {
        100.0
    };
    let n = ((rate * opts.phase.as_secs_f64()) as usize).max(10);
    reset(conn, "followup").await?;
    let mut replicas = start_replicas(stack, db, env).await?;
    let result = async {
        // Loading takes a while at high rates; the first is due after it has surely finished.
        let lead = Duration::from_secs_f64(2.0 + n as f64 / 100_000.0);
        let start = chrono::Utc::now() + chrono::Duration::from_std(lead)?;
        load_due(conn, "followup", n, Some((start, rate))).await?;
        anyhow::ensure!(
            chrono::Utc::now() < start,
            "loading {n} timers took longer than {lead:?}"
        );
        drained(conn, lead + opts.phase * 10 + Duration::from_secs(60)).await
    }
    .await;
    for r in &mut replicas {
        let _ = r.process.shutdown(STOP).await;
    }
    result?;
    let (p50, p99, p999, mean, span_s): (f64, f64, f64, f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY l),
            percentile_cont(0.99) WITHIN GROUP (ORDER BY l),
            percentile_cont(0.999) WITHIN GROUP (ORDER BY l), avg(l),
            extract(epoch FROM max(fire_time) - min(due_time))::float8
         FROM (SELECT extract(epoch FROM fire_time - due_time)::float8 * 1000 AS l, fire_time,
                 due_time FROM followup.timers) t",
    )
    .fetch_one(&mut *conn)
    .await?;
    let fired_rate = n as f64 / span_s.max(1e-3);
    let phase = |calls_per_s: f64, lat: [f64; 4]| crate::report::Phase {
        summary: crate::load::Summary {
            calls_per_s,
            ok: n as u64,
            errors: BTreeMap::new(),
            p50_ms: lat[0],
            p99_ms: lat[1],
            p999_ms: lat[2],
            mean_ms: lat[3],
        },
        server_cpu_s_per_1k: 0.0,
        postgres_cpu_s_per_1k: 0.0,
        batching: None,
        machine: None,
    };
    let round = Round {
        subject: phase(fired_rate, [p50, p99, p999, mean]),
        ceiling: phase(rate, [f64::NAN; 4]),
    };
    Ok(Scenario::new(
        "P4 lateness",
        &format!("{n} timers due at {rate:.0}/s (half the ceiling): fire − due, ms"),
        "the offered rate (the ratio is fired/offered)",
        Target::ratio_at_least(0.95).with_p99_at_most_ms(1000.0),
        vec![round],
    ))
}

/// A bulk run as an [`Outcome`]: `ok` items over `elapsed`, latency the whole run.
fn bulk(ok: u64, elapsed: Duration) -> Outcome {
    super::p3_import::one_call(ok, elapsed)
}
