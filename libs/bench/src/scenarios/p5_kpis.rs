//! P5: GetKpis for the whole chain over a year (every KPI, per month, with breakdowns) with
//! the rollups of `opts.kpi_feedback_items` feedback items loaded, against the aggregate
//! SQL that answer needs run directly over a sqlx pool, same concurrency, same database.
//!
//! GetKpis reads rollups only, so "10M items loaded" means the rows the consumer would
//! have written for them. Feeding 10M events through the API would take hours; instead
//! the items are generated in SQL (a deterministic hash per item picks its channel,
//! category, survey answers, case, SLA clocks), then grouped into exactly the measures and
//! breakdown keys ingest.rs writes (feedback, feedback_response, csat, nps, csi, complaints,
//! repeat, closed_24h, resolution_rate, fr_sla, fr_time, res_sla, sla_compliance,
//! emergency_response; stays, profile_complete, vip_return, satisfaction_contact, tasks per
//! property and day). The chain has `opts.kpi_properties` properties in six regions. The
//! load is checked: GetKpis's feedback and complaint volumes must equal counts taken over
//! the generated items themselves.
//!
//! The ceiling is the SQL the service must at least run for this answer: the chain's
//! pre-summed month rows (metrics' scope_rollups) aggregated per month and for the year.
//!
//! Two concurrencies: c1, one head-office dashboard at a time, where p99 is the call's own
//! latency (the ≤ 20 ms target); and c8, where a closed loop on two cores measures
//! throughput against the ceiling and p99 is mostly queueing (8 / rate).

use super::{Subject, bearer, measured};
use crate::Options;
use crate::load::{self, Call, authorized};
use crate::procstat::CpuMark;
use crate::report::{Phase, Round, Scenario, Target};
use crate::stack::Stack;
use guestloop_proto::common::v1::{Date, DateRange};
use guestloop_proto::metrics::v1::{
    self as pb, Granularity, Kpi, Scope, ScopeLevel, metrics_service_client::MetricsServiceClient,
};
use sqlx::{Connection, Executor, PgConnection};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVICE: &str = "metrics";
const DAYS: i64 = 365;
const YEAR: i32 = 2025;
const REGIONS: u32 = 6;
/// The concurrencies measured (see above); the pool is sized for the largest.
const CONCURRENCIES: [usize; 2] = [1, 8];

pub async fn p5_kpis(stack: &Stack, opts: &Options) -> anyhow::Result<Vec<Scenario>> {
    let db = "bench_p5";
    stack.fresh_database(db).await?;
    let props = opts.kpi_properties.max(1);
    let config = stack.work_dir.join("p5_chain.toml");
    std::fs::write(&config, chain_toml(props))?;
    let env = opts.service_env.clone();
    // Started once so it migrates (and records the chain's members); stopped to load.
    let mut first = stack
        .service_with_config(SERVICE, db, &env, &config)
        .await?;
    wait_members(&mut PgConnection::connect(&stack.cluster.admin_url(db)).await?).await?;
    first.process.shutdown(Duration::from_secs(20)).await?;

    let mut conn = PgConnection::connect(&stack.cluster.admin_url(db)).await?;
    let started = Instant::now();
    let expect = load(&mut conn, props, opts.kpi_feedback_items).await?;
    eprintln!(
        "  P5: {} feedback items as {} rollup rows in {:.1} s",
        expect.items,
        expect.rows,
        started.elapsed().as_secs_f64()
    );
    // Forget the members, as after an upgrade: the next start sums the loaded rollups into
    // the chain's and regions' own rows, the service's own code path for existing data.
    conn.execute("DELETE FROM metrics.scope_members").await?;
    let svc = stack
        .service_with_config(SERVICE, db, &env, &config)
        .await?;
    let started = Instant::now();
    wait_members(&mut conn).await?;
    eprintln!(
        "  P5: chain and region sums rebuilt {:.1} s after SERVING",
        started.elapsed().as_secs_f64()
    );

    let channels = load::channels(&svc.process.endpoint(), 4).await?;
    check(&channels[0], &expect, stack).await?;
    let subject = Subject {
        svc,
        channels,
        call: kpis_call(bearer(stack)),
    };

    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(CONCURRENCIES[1] as u32)
        .connect(&stack.cluster.admin_url(db))
        .await?;
    subject
        .warm_up(CONCURRENCIES[1], opts, &[&subject.call])
        .await;
    let _ = sql_loop(&pool, CONCURRENCIES[1], opts.warmup).await;
    let data = &stack.cluster.data_dir;
    let mut out = Vec::new();
    for concurrency in CONCURRENCIES {
        let mut rounds = Vec::new();
        for _ in 0..opts.repeats {
            let subject_phase = subject
                .closed(stack, &subject.call, concurrency, opts)
                .await;
            let mark = CpuMark::now(None, data);
            let run = sql_loop(&pool, concurrency, opts.phase).await;
            let ceiling: Phase = measured(&run, mark.since(None, data));
            rounds.push(Round {
                subject: subject_phase,
                ceiling,
            });
        }
        let target = if concurrency == 1 {
            Target::ratio_at_least(0.5).with_p99_at_most_ms(20.0)
        } else {
            Target::ratio_at_least(0.5)
        };
        out.push(Scenario::new(
            "P5",
            &format!(
                "GetKpis, chain of {props} properties, {YEAR} by month with breakdowns, {} feedback items loaded, c{concurrency}",
                expect.items
            ),
            "the same sums in SQL (the chain's month rows, per month and for the year), sqlx pool, same concurrency",
            target,
            rounds,
        ));
    }
    pool.close().await;
    let peak = crate::procstat::peak_rss_mb(subject.pid());
    subject.stop().await;
    if let Some(last) = out.last_mut() {
        last.peak_rss.insert("metrics (GetKpis)".into(), peak);
    }
    Ok(out)
}

/// `props` properties (p001…) spread over six regions, in two time zones.
fn chain_toml(props: u32) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("[chain]\nname = \"Bench Hotels\"\n");
    for r in 1..=REGIONS {
        let _ = write!(
            s,
            "\n[[chain.regions]]\nid = \"r{r}\"\nname = \"Region {r}\"\n"
        );
    }
    for p in 1..=props {
        let tz = if p % 5 == 0 {
            "Asia/Hong_Kong"
        } else {
            "Asia/Shanghai"
        };
        let _ = write!(
            s,
            "\n[[chain.properties]]\nid = \"p{p:03}\"\nname = \"Property {p}\"\nregion = \"r{}\"\ntime_zone = \"{tz}\"\ndefault_language = \"zh-CN\"\n",
            1 + (p - 1) % REGIONS
        );
    }
    s
}

/// Until the service has recorded the chain's members (its scope rows are summed then).
async fn wait_members(conn: &mut PgConnection) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM metrics.scope_members")
            .fetch_one(&mut *conn)
            .await?;
        if n > 0 {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "metrics never summed its scopes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the loaded data must show, counted over the generated items.
struct Expect {
    items: i64,
    complaints: i64,
    rows: i64,
}

/// Generates `items` feedback items over the year for `props` properties and writes the
/// rollups the consumer would have written for them.
async fn load(conn: &mut PgConnection, props: u32, items: u64) -> anyhow::Result<Expect> {
    let pd = i64::from(props) * DAYS;
    let base = items as i64 / pd;
    let extra = items as i64 % pd;
    // One row per item (unlogged: scratch data), its traits from a hash of its position.
    // h picks channel (20 % post-stay surveys), category and flags from separate digits;
    // g, a second hash, the rest. Rates are set near the chain's standards.
    conn.execute("DROP TABLE IF EXISTS bench_items").await?;
    // CREATE TABLE AS takes no parameters: the numbers are formatted in (integers only).
    conn.execute(sqlx::AssertSqlSafe(format!(
        "CREATE UNLOGGED TABLE bench_items AS
         WITH pd AS (
            SELECT p, d, {base} + CASE WHEN (p - 1) * {DAYS} + d < {extra} THEN 1 ELSE 0 END AS k
            FROM generate_series(1, {props}) p, generate_series(0, {DAYS} - 1) d),
         it AS (
            SELECT p, d, (hashint8((p::bigint * 1000 + d) * 1000000 + i) & 2147483647)::bigint AS h
            FROM pd, generate_series(0, pd.k - 1) i),
         hg AS (SELECT p, d, h, (hashint8(h) & 2147483647)::bigint AS g FROM it)
         SELECT 'p' || lpad(p::text, 3, '0') AS pid, make_date({YEAR}, 1, 1) + d AS day,
            (CASE WHEN h % 100 < 12 THEN 1 WHEN h % 100 < 22 THEN 2 WHEN h % 100 < 40 THEN 3
                  WHEN h % 100 < 50 THEN 4 WHEN h % 100 < 55 THEN 5 WHEN h % 100 < 63 THEN 6
                  WHEN h % 100 < 70 THEN 7 WHEN h % 100 < 80 THEN 8 ELSE 9 END)::int2 AS channel,
            (1 + (h / 100) % 10)::int2 AS category,
            h % 100 >= 80 AS survey,
            (h / 1000) % 100 < 97 AS responded,
            h % 100 < 80 AND (h / 100000) % 100 < 15 AS complaint,
            (1 + ((1 + (h / 100) % 10) * 5 + g % 2) % 11)::int2 AS department,
            g, h
         FROM hg"
    )))
    .await?;
    let (n, complaints): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE complaint) FROM bench_items")
            .fetch_one(&mut *conn)
            .await?;
    for sql in ROLLUPS {
        conn.execute(*sql).await?;
    }
    sqlx::query(
        "INSERT INTO metrics.rollups (property_id, day, measure, breakdown, n, num)
         SELECT 'p' || lpad(p::text, 3, '0'), make_date($2, 1, 1) + d, m.measure, '', m.n, m.num
         FROM generate_series(1, $1) p, generate_series(0, 364) d,
         LATERAL (SELECT 100 + (p * 7 + d) % 41 AS stays) s,
         LATERAL (VALUES ('stays', s.stays, 0),
                         ('profile_complete', s.stays, s.stays * 97 / 100),
                         ('vip_return', s.stays / 10, s.stays / 10 * 35 / 100),
                         ('satisfaction_contact', s.stays, s.stays * 95 / 100),
                         ('tasks', s.stays * 2 / 3, s.stays * 2 / 3 * 96 / 100))
            AS m(measure, n, num)",
    )
    .bind(i64::from(props))
    .bind(YEAR)
    .execute(&mut *conn)
    .await?;
    conn.execute("DROP TABLE bench_items; ANALYZE metrics.rollups")
        .await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM metrics.rollups")
        .fetch_one(&mut *conn)
        .await?;
    Ok(Expect {
        items: n,
        complaints,
        rows,
    })
}

/// The rollups of the generated items, measure by measure as ingest.rs adds them: a
/// received item counts in feedback ('', channel, category); one needing a reply (not a
/// survey) in feedback_response ('', channel); a survey's answer in csat ('', channel),
/// nps and csi ('', each of six dimensions); a complaint opens a case counted in complaints
/// ('', channel, category, department, category×department), repeat, closed_24h,
/// resolution_rate ('', channel) and its clocks in fr_sla, fr_time (bucket, channel×bucket),
/// res_sla, sla_compliance and, for urgent facility cases, emergency_response.
const ROLLUPS: &[&str] = &[
    "INSERT INTO metrics.rollups (property_id, day, measure, breakdown, n)
     SELECT pid, day, 'feedback',
        CASE WHEN GROUPING(channel) = 0 THEN 'channel:' || channel
             WHEN GROUPING(category) = 0 THEN 'category:' || category ELSE '' END,
        count(*)
     FROM bench_items
     GROUP BY GROUPING SETS ((pid, day), (pid, day, channel), (pid, day, category))",
    "INSERT INTO metrics.rollups (property_id, day, measure, breakdown, n, num)
     SELECT pid, day, 'feedback_response',
        CASE WHEN GROUPING(channel) = 0 THEN 'channel:' || channel ELSE '' END,
        count(*), count(*) FILTER (WHERE responded)
     FROM bench_items WHERE NOT survey
     GROUP BY GROUPING SETS ((pid, day), (pid, day, channel))",
    "INSERT INTO metrics.rollups (property_id, day, measure, breakdown, n, num, sum, sum_sq)
     SELECT pid, day, m.measure, m.breakdown, sum(m.n), sum(m.num), sum(m.s), sum(m.s * m.s)
     FROM bench_items,
     LATERAL (VALUES
        ('csat', '', 1, (g % 100 < 92)::int, 0.0),
        ('csat', 'channel:' || channel, 1, (g % 100 < 92)::int, 0.0),
        ('nps', '', 1, ((g / 100) % 100 < 62)::int, ((g / 100) % 100 >= 88)::int::float8))
        AS m(measure, breakdown, n, num, s)
     WHERE survey
     GROUP BY pid, day, m.measure, m.breakdown",
    "INSERT INTO metrics.rollups (property_id, day, measure, breakdown, n, sum, sum_sq)
     SELECT pid, day, 'csi', CASE WHEN GROUPING(dim) = 0 THEN 'csi_dimension:' || dim ELSE '' END,
        count(*), sum(score), sum(score * score)
     FROM (SELECT pid, day, dim, (7 + (g >> (dim * 2)) % 4)::float8 AS score
           FROM bench_items, generate_series(1, 6) dim WHERE survey) s
     GROUP BY GROUPING SETS ((pid, day), (pid, day, dim))",
    "INSERT INTO metrics.rollups (property_id, day, measure, breakdown, n)
     SELECT pid, day, 'complaints',
        CASE WHEN GROUPING(category) = 0 AND GROUPING(department) = 0
                  THEN 'category:' || category || ':department:' || department
             WHEN GROUPING(channel) = 0 THEN 'channel:' || channel
             WHEN GROUPING(category) = 0 THEN 'category:' || category
             WHEN GROUPING(department) = 0 THEN 'department:' || department ELSE '' END,
        count(*)
     FROM bench_items WHERE complaint
     GROUP BY GROUPING SETS ((pid, day), (pid, day, channel), (pid, day, category),
        (pid, day, department), (pid, day, category, department))",
    "INSERT INTO metrics.rollups (property_id, day, measure, breakdown, n, num)
     SELECT pid, day, m.measure, m.breakdown, sum(m.n), sum(m.num)
     FROM (SELECT *, (g / 100) % 100 < 95 AS resolved, (g / 10000) % 100 < 97 AS fr_within,
              (g / 1000000) % 100 < 92 AS res_within,
              (ARRAY[60, 300, 900, 1800, 3600, 7200, 14400])[1 + (g / 10) % 7] AS bucket
           FROM bench_items WHERE complaint) c,
     LATERAL (VALUES
        ('repeat', '', 1, (g % 100 < 8)::int),
        ('closed_24h', '', 1, (resolved AND (g / 1000) % 10 < 9)::int),
        ('resolution_rate', '', 1, resolved::int),
        ('resolution_rate', 'channel:' || channel, 1, resolved::int),
        ('fr_sla', '', 1, fr_within::int),
        ('fr_time', 'bucket:' || bucket, 1, 0),
        ('fr_time', 'channel:' || channel || ':bucket:' || bucket, 1, 0),
        ('res_sla', '', resolved::int, (resolved AND res_within)::int),
        ('sla_compliance', '', resolved::int, (resolved AND fr_within AND res_within)::int),
        ('emergency_response', '', (category = 2 AND g % 50 = 0)::int,
            (category = 2 AND g % 50 = 0 AND fr_within)::int))
        AS m(measure, breakdown, n, num)
     GROUP BY pid, day, m.measure, m.breakdown
     HAVING sum(m.n) > 0 OR sum(m.num) > 0",
];

/// The year, the chain, every KPI per month with breakdowns: head office's dashboard.
fn request() -> pb::GetKpisRequest {
    pb::GetKpisRequest {
        scope: Some(Scope {
            level: ScopeLevel::Chain as i32,
            id: String::new(),
        }),
        date_range: Some(DateRange {
            start_date: Some(Date {
                year: YEAR,
                month: 1,
                day: 1,
            }),
            end_date: Some(Date {
                year: YEAR,
                month: 12,
                day: 31,
            }),
        }),
        granularity: Granularity::Month as i32,
        kpis: Vec::new(),
        include_breakdowns: true,
    }
}

fn kpis_call(token: tonic::metadata::MetadataValue<tonic::metadata::Ascii>) -> Call {
    Arc::new(move |channel, _| {
        let request = authorized(request(), &token);
        Box::pin(async move {
            MetricsServiceClient::new(channel)
                .get_kpis(request)
                .await
                .map(|_| ())
        })
    })
}

/// The load is what it claims: the year's feedback and complaint volumes GetKpis answers
/// equal the counts over the generated items.
async fn check(
    channel: &tonic::transport::Channel,
    expect: &Expect,
    stack: &Stack,
) -> anyhow::Result<()> {
    let answer = MetricsServiceClient::new(channel.clone())
        .get_kpis(authorized(request(), &bearer(stack)))
        .await?
        .into_inner();
    let total = |kpi: Kpi| {
        answer
            .series
            .iter()
            .find(|s| s.kpi == kpi as i32 && s.breakdown.is_none())
            .and_then(|s| s.total.as_ref())
            .map_or(-1, |v| v.numerator)
    };
    let (feedback, complaints) = (total(Kpi::FeedbackVolume), total(Kpi::ComplaintVolume));
    anyhow::ensure!(
        feedback == expect.items && complaints == expect.complaints,
        "GetKpis shows {feedback} feedback items and {complaints} complaints; {} and {} were loaded",
        expect.items,
        expect.complaints
    );
    Ok(())
}

/// The ceiling's query: the chain's month rows of the year, per month and for the year.
const CEILING_SQL: &str = "SELECT measure, breakdown, day, SUM(n)::bigint, SUM(num)::bigint,
        SUM(sum), SUM(sum_sq)
     FROM metrics.scope_rollups
     WHERE scope = 'chain' AND grain = 'm' AND day >= $1 AND day <= $2
     GROUP BY GROUPING SETS ((measure, breakdown, day), (measure, breakdown))";

/// The ceiling closed loop at the same concurrency over a pool.
async fn sql_loop(pool: &sqlx::PgPool, concurrency: usize, duration: Duration) -> load::Outcome {
    let from = chrono::NaiveDate::from_ymd_opt(YEAR, 1, 1).expect("a date");
    let to = chrono::NaiveDate::from_ymd_opt(YEAR, 12, 31).expect("a date");
    let pool = pool.clone();
    let call: Call = Arc::new(move |_, _| {
        let pool = pool.clone();
        Box::pin(async move {
            sqlx::query(CEILING_SQL)
                .bind(from)
                .bind(to)
                .fetch_all(&pool)
                .await
                .map(|_| ())
                .map_err(|e| tonic::Status::internal(e.to_string()))
        })
    });
    // The channel argument is unused by the SQL call; closed_loop wants one per worker.
    load::closed_loop(&[lazy_channel()], concurrency, duration, call).await
}

/// A channel that never connects (the SQL ceiling ignores it).
fn lazy_channel() -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy()
}
