//! GetKpis and the league table against an independent count: a deterministic pseudo-random
//! scenario of events from every source, shuffled, batched and partly redelivered; the
//! expected numerators and denominators are counted here over the generated data, never
//! with the service's code. And who may see and deliver what.

mod common;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use common::*;
use guestloop_proto::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use guestloop_proto::feedback::v1::CsiScore;
use guestloop_proto::metrics::v1::{
    self as pb, Kpi, KpiStatus, LeagueTableOrder, kpi_breakdown::Key,
};
use guestloop_testkit::keys;
use std::collections::BTreeMap;
use tonic::Code;

/// A linear congruential generator: the scenario is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            xs.swap(i, j);
        }
    }
}

/// What a scope should show, counted over the generated data.
#[derive(Debug, Clone, Default)]
struct Expect {
    /// (answers of 4-5, answers)
    csat: (i64, i64),
    /// (promoters, detractors, answers)
    nps: (i64, i64, i64),
    /// (sum of scores, scores)
    csi: (i64, i64),
    complaints: i64,
    stays: i64,
    fr: (i64, i64),
    res: (i64, i64),
    compliance: (i64, i64),
    closed_24h: (i64, i64),
    feedback_response: (i64, i64),
    tasks: (i64, i64),
    repeat: (i64, i64),
    feedback: i64,
    complaints_by_category: BTreeMap<i32, i64>,
}

fn add2(a: &mut (i64, i64), b: (i64, i64)) {
    a.0 += b.0;
    a.1 += b.1;
}

impl Expect {
    fn merge(&mut self, o: &Expect) {
        add2(&mut self.csat, o.csat);
        self.nps.0 += o.nps.0;
        self.nps.1 += o.nps.1;
        self.nps.2 += o.nps.2;
        add2(&mut self.csi, o.csi);
        self.complaints += o.complaints;
        self.stays += o.stays;
        add2(&mut self.fr, o.fr);
        add2(&mut self.res, o.res);
        add2(&mut self.compliance, o.compliance);
        add2(&mut self.closed_24h, o.closed_24h);
        add2(&mut self.feedback_response, o.feedback_response);
        add2(&mut self.tasks, o.tasks);
        add2(&mut self.repeat, o.repeat);
        self.feedback += o.feedback;
        for (c, n) in &o.complaints_by_category {
            *self.complaints_by_category.entry(*c).or_default() += n;
        }
    }
}

fn rate(hit: bool) -> (i64, i64) {
    (i64::from(hit), 1)
}

const PROPERTIES: [&str; 3] = ["sh-bund", "hz-lake", "hk-harbour"];

struct Feedback {
    id: String,
    property: &'static str,
    has_survey: bool,
    answered: bool,
}

/// The facts every event of one case carries.
#[allow(clippy::too_many_arguments)]
fn facts(
    case_id: &str,
    property: &str,
    channel: i32,
    category: i32,
    department: i32,
    repeat: bool,
    origin: &str,
    open: DateTime<Utc>,
) -> ev::CaseFacts {
    ev::CaseFacts {
        case_id: case_id.into(),
        reference: format!("C-{}", &case_id[case_id.len() - 6..]),
        property_id: property.into(),
        guest_id: new_id("guest"),
        origin_feedback_id: origin.into(),
        channel,
        category,
        department,
        status: 1, // RECEIVED
        repeat,
        open_time: Some(ts(open)),
        first_response_due_time: Some(ts(open + Duration::minutes(30))),
        resolution_due_time: Some(ts(open + Duration::hours(48))),
        version: 1,
        ..Default::default()
    }
}

/// Builds the scenario at `now`: its events (each once) and what each property should show.
fn scenario(
    rng: &mut Lcg,
    now: DateTime<Utc>,
) -> (Vec<EventEnvelope>, BTreeMap<String, Expect>, Vec<Feedback>) {
    let mut out = Vec::new();
    let mut exp: BTreeMap<String, Expect> = PROPERTIES
        .iter()
        .map(|p| (p.to_string(), Expect::default()))
        .collect();

    // Survey answers: CSAT, NPS and 2-3 CSI dimensions. hk-harbour's guests are happy.
    for _ in 0..40 {
        let p = *rng.pick(&PROPERTIES);
        let csat = if p == "hk-harbour" {
            if rng.chance(80) { 5 } else { 4 }
        } else {
            1 + rng.below(5) as i32
        };
        let nps = rng.below(11) as i32;
        let k = 2 + rng.below(2);
        let first = rng.below(6);
        let scores: Vec<CsiScore> = (0..k)
            .map(|j| CsiScore {
                dimension: ((first + j) % 6 + 1) as i32,
                score: 1 + rng.below(10) as i32,
            })
            .collect();
        let e = exp.get_mut(p).unwrap();
        add2(&mut e.csat, rate(csat >= 4));
        e.nps.0 += i64::from(nps >= 9);
        e.nps.1 += i64::from(nps <= 6);
        e.nps.2 += 1;
        for s in &scores {
            add2(&mut e.csi, (i64::from(s.score), 1));
        }
        let feedback = new_id("fb");
        out.push(envelope(
            "feedback-intake",
            "feedback",
            &feedback,
            p,
            now,
            Payload::SurveyAnswered(ev::SurveyAnswered {
                feedback_id: feedback.clone(),
                property_id: p.into(),
                guest_id: new_id("guest"),
                stay_id: new_id("stay"),
                channel: 9,
                answer_time: Some(ts(now)),
                csat: Some(csat),
                nps: Some(nps),
                csi_scores: scores,
                low_score: csat <= 2,
                ..Default::default()
            }),
        ));
    }

    // Feedback: survey answers need no reply, the rest does; some are replied to.
    let mut feedback: Vec<Feedback> = Vec::new();
    for _ in 0..30 {
        let p = *rng.pick(&PROPERTIES);
        let id = new_id("fb");
        let channel = 1 + rng.below(8) as i32;
        let category = 1 + rng.below(10) as i32;
        let has_survey = rng.chance(30);
        let replied = rng.chance(50);
        exp.get_mut(p).unwrap().feedback += 1;
        out.push(envelope(
            "feedback-intake",
            "feedback",
            &id,
            p,
            now,
            Payload::FeedbackReceived(ev::FeedbackReceived {
                feedback_id: id.clone(),
                property_id: p.into(),
                channel,
                guest_id: new_id("guest"),
                receive_time: Some(ts(now)),
                language: "zh-CN".into(),
                category,
                has_survey,
                ..Default::default()
            }),
        ));
        if replied {
            out.push(envelope(
                "feedback-intake",
                "feedback",
                &id,
                p,
                now,
                Payload::FeedbackReplied(ev::FeedbackReplied {
                    feedback_id: id.clone(),
                    property_id: p.into(),
                    channel,
                    receive_time: Some(ts(now)),
                    reply_time: Some(ts(now + Duration::minutes(20))),
                    kind: 2,
                    ..Default::default()
                }),
            ));
        }
        feedback.push(Feedback {
            id,
            property: p,
            has_survey,
            answered: replied,
        });
    }

    // Cases: opened, acknowledged or resolved (some closed too), some never seen opened
    // (their first event is a status change), their SLA clocks.
    for _ in 0..20 {
        let p = *rng.pick(&PROPERTIES);
        let case_id = new_id("case");
        let channel = 1 + rng.below(8) as i32;
        let category = 1 + rng.below(10) as i32;
        let department = 1 + rng.below(11) as i32;
        let repeat = rng.chance(25);
        let mut origin = String::new();
        let linked: Vec<usize> = (0..feedback.len())
            .filter(|i| feedback[*i].property == p)
            .collect();
        let link = if !linked.is_empty() && rng.chance(35) {
            let i = *rng.pick(&linked);
            origin = feedback[i].id.clone();
            Some(i)
        } else {
            None
        };
        let f = facts(
            &case_id, p, channel, category, department, repeat, &origin, now,
        );
        let seen_opened = rng.chance(75);
        let mut stage = rng.below(3);
        if !seen_opened && stage == 0 {
            stage = 1;
        }
        let case_event =
            |payload: Payload| envelope("feedback-intake", "case", &case_id, p, now, payload);
        if seen_opened {
            out.push(case_event(Payload::CaseOpened(ev::CaseOpened {
                case: Some(f.clone()),
                feedback_id: origin.clone(),
            })));
        }
        let ack = now + Duration::minutes(10);
        let mut hours = 0;
        if stage >= 1 {
            let mut g = f.clone();
            g.status = 2; // ACKNOWLEDGED
            g.acknowledge_time = Some(ts(ack));
            g.version = 2;
            out.push(case_event(Payload::CaseStatusChanged(
                ev::CaseStatusChanged {
                    case: Some(g),
                    from_status: 1,
                    to_status: 2,
                    change_time: Some(ts(ack)),
                    ..Default::default()
                },
            )));
        }
        if stage == 2 {
            hours = 1 + rng.below(36);
            let done = now + Duration::hours(hours);
            let mut g = f.clone();
            g.status = 5; // RESOLVED
            g.acknowledge_time = Some(ts(ack));
            g.resolve_time = Some(ts(done));
            g.version = 3;
            out.push(case_event(Payload::CaseStatusChanged(
                ev::CaseStatusChanged {
                    case: Some(g.clone()),
                    from_status: 2,
                    to_status: 5,
                    change_time: Some(ts(done)),
                    ..Default::default()
                },
            )));
            if rng.chance(40) {
                let closed = done + Duration::hours(1);
                g.status = 6; // CLOSED
                g.close_time = Some(ts(closed));
                g.version = 4;
                out.push(case_event(Payload::CaseStatusChanged(
                    ev::CaseStatusChanged {
                        case: Some(g),
                        from_status: 5,
                        to_status: 6,
                        change_time: Some(ts(closed)),
                        ..Default::default()
                    },
                )));
            }
        }
        if let (Some(i), true) = (link, stage >= 1) {
            feedback[i].answered = true;
        }
        let e = exp.get_mut(p).unwrap();
        e.complaints += 1;
        *e.complaints_by_category.entry(category).or_default() += 1;
        add2(&mut e.repeat, rate(repeat));
        add2(&mut e.closed_24h, rate(stage == 2 && hours <= 24));

        let clock = |kind: i32, within: bool, elapsed: i64| {
            envelope(
                "follow-up-scheduler",
                "clock",
                &case_id,
                p,
                now,
                Payload::SlaClockStopped(ev::SlaClockStopped {
                    clock_id: new_id("clock"),
                    kind,
                    case_id: case_id.clone(),
                    property_id: p.into(),
                    final_state: 3,
                    within_sla: within,
                    start_time: Some(ts(now)),
                    due_time: Some(ts(now + Duration::minutes(30))),
                    stop_time: Some(ts(now + Duration::seconds(elapsed))),
                    elapsed_duration: Some(secs(elapsed)),
                    ..Default::default()
                }),
            )
        };
        let fr = rng.chance(80).then(|| rng.chance(75));
        if let Some(within) = fr {
            let elapsed = if within { 600 } else { 3_600 };
            out.push(clock(1, within, elapsed));
            // A reopened case's clock stops again: counted once.
            if rng.chance(15) {
                out.push(clock(1, within, elapsed + 60));
            }
            add2(&mut e.fr, rate(within));
        }
        let res = (stage == 2 && rng.chance(85)).then(|| rng.chance(70));
        if let Some(within) = res {
            out.push(clock(2, within, hours * 3_600));
            add2(&mut e.res, rate(within));
        }
        if let (Some(a), Some(b)) = (fr, res) {
            add2(&mut e.compliance, rate(a && b));
        }
    }
    for f in &feedback {
        if !f.has_survey {
            add2(
                &mut exp.get_mut(f.property).unwrap().feedback_response,
                rate(f.answered),
            );
        }
    }

    // Check-outs.
    for _ in 0..50 {
        let p = *rng.pick(&PROPERTIES);
        let stay = new_id("stay");
        exp.get_mut(p).unwrap().stays += 1;
        out.push(envelope(
            "guest-profile",
            "stay",
            &stay,
            p,
            now,
            Payload::StayCheckedOut(ev::StayCheckedOut {
                stay_id: stay.clone(),
                guest_id: new_id("guest"),
                property_id: p.into(),
                checked_out_time: Some(ts(now)),
                tier: 2, // REGULAR
                language: "zh-CN".into(),
                ..Default::default()
            }),
        ));
    }

    // Follow-up tasks due today: open, completed on time, completed late, cancelled, and
    // cancelled because the guest was erased (stays counted, not completed: an erasure
    // changes no KPI).
    for _ in 0..30 {
        let p = *rng.pick(&PROPERTIES);
        let task = new_id("task");
        let outcome = rng.below(5);
        let e = exp.get_mut(p).unwrap();
        add2(
            &mut e.tasks,
            (i64::from(outcome == 1), i64::from(outcome != 3)),
        );
        let emit =
            |payload: Payload| envelope("follow-up-scheduler", "task", &task, p, now, payload);
        out.push(emit(Payload::FollowUpTaskCreated(
            ev::FollowUpTaskCreated {
                task_id: task.clone(),
                kind: 1,
                property_id: p.into(),
                due_time: Some(ts(now)),
                create_time: Some(ts(now - Duration::hours(1))),
                ..Default::default()
            },
        )));
        match outcome {
            1 | 2 => out.push(emit(Payload::FollowUpTaskCompleted(
                ev::FollowUpTaskCompleted {
                    task_id: task.clone(),
                    kind: 1,
                    property_id: p.into(),
                    due_time: Some(ts(now)),
                    complete_time: Some(ts(now)),
                    late: outcome == 2,
                    ..Default::default()
                },
            ))),
            3 | 4 => out.push(emit(Payload::FollowUpTaskCancelled(
                ev::FollowUpTaskCancelled {
                    task_id: task.clone(),
                    kind: 1,
                    property_id: p.into(),
                    due_time: Some(ts(now)),
                    cancel_time: Some(ts(now)),
                    reason: if outcome == 3 {
                        "guest left".into()
                    } else {
                        "guest_erased".into()
                    },
                },
            ))),
            _ => {}
        }
    }
    (out, exp, feedback)
}

fn reply(f: &Feedback, now: DateTime<Utc>) -> EventEnvelope {
    envelope(
        "feedback-intake",
        "feedback",
        &f.id,
        f.property,
        now,
        Payload::FeedbackReplied(ev::FeedbackReplied {
            feedback_id: f.id.clone(),
            property_id: f.property.into(),
            channel: 2,
            receive_time: Some(ts(now)),
            reply_time: Some(ts(now + Duration::hours(2))),
            kind: 2,
            ..Default::default()
        }),
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Compares one scope's answer with the independent count.
fn check(name: &str, r: &pb::GetKpisResponse, e: &Expect, statuses: &mut Vec<i32>) {
    let rate_kpi = |kpi: Kpi, (num, n): (i64, i64)| {
        let v = total(r, kpi);
        assert_eq!(
            (v.numerator, v.denominator, v.sample_size),
            (num, n, n),
            "{name}: {kpi:?} {v:?}"
        );
        match v.value {
            Some(x) => assert!(
                n > 0 && close(x, num as f64 / n as f64),
                "{name}: {kpi:?} {v:?}"
            ),
            None => assert_eq!(n, 0, "{name}: {kpi:?} has no value"),
        }
    };
    rate_kpi(Kpi::Csat, e.csat);
    rate_kpi(Kpi::FirstResponseWithinSlaRate, e.fr);
    rate_kpi(Kpi::ResolutionWithinSlaRate, e.res);
    rate_kpi(Kpi::SlaComplianceRate, e.compliance);
    rate_kpi(Kpi::ClosedWithin24hRate, e.closed_24h);
    rate_kpi(Kpi::FeedbackResponseRate, e.feedback_response);
    rate_kpi(Kpi::FollowUpCompletionRate, e.tasks);
    rate_kpi(Kpi::RepeatComplaintRate, e.repeat);

    let (prom, det, n) = e.nps;
    let v = total(r, Kpi::Nps);
    assert_eq!(
        (v.numerator, v.denominator, v.sample_size),
        (prom - det, n, n),
        "{name}: NPS {v:?}"
    );
    assert!(
        close(v.value.unwrap(), (prom - det) as f64 / n as f64 * 100.0),
        "{name}: NPS {v:?}"
    );

    let (sum, n) = e.csi;
    let v = total(r, Kpi::Csi);
    assert_eq!(
        (v.numerator, v.denominator, v.sample_size),
        (sum, n, n),
        "{name}: CSI {v:?}"
    );
    assert!(
        close(v.value.unwrap(), sum as f64 / n as f64),
        "{name}: CSI {v:?}"
    );

    let v = total(r, Kpi::ComplaintsPer100Stays);
    assert_eq!(
        (v.numerator, v.denominator),
        (e.complaints, e.stays),
        "{name}: complaints per 100 stays {v:?}"
    );
    assert!(
        close(
            v.value.unwrap(),
            e.complaints as f64 * 100.0 / e.stays as f64
        ),
        "{name}: complaints per 100 stays {v:?}"
    );

    for (kpi, n) in [
        (Kpi::FeedbackVolume, e.feedback),
        (Kpi::ComplaintVolume, e.complaints),
    ] {
        let v = total(r, kpi);
        assert_eq!(
            (v.numerator, v.sample_size),
            (n, n),
            "{name}: {kpi:?} {v:?}"
        );
        assert_eq!(v.value, Some(n as f64), "{name}: {kpi:?}");
    }

    // Complaint volume per category: exactly the categories seen, each with its count.
    let by_category: BTreeMap<i32, i64> = r
        .series
        .iter()
        .filter(|s| s.kpi == Kpi::ComplaintVolume as i32)
        .filter_map(|s| match s.breakdown.as_ref()?.key? {
            Key::Category(c) => Some((c, s.total.unwrap().numerator)),
            _ => None,
        })
        .collect();
    assert_eq!(
        by_category, e.complaints_by_category,
        "{name}: complaints per category"
    );

    // CSAT is judged against its 0.90 target once the sample is large enough.
    let v = total(r, Kpi::Csat);
    assert_eq!(v.target, Some(0.9), "{name}: CSAT target");
    assert_eq!(v.min_sample_size, 5, "{name}");
    let x = v.value.unwrap();
    if v.sample_size >= 5 {
        assert_eq!(v.target_met, x >= 0.9, "{name}: CSAT {v:?}");
        let want = if x >= 0.9 {
            KpiStatus::Met
        } else {
            KpiStatus::Missed
        };
        assert_eq!(v.status, want as i32, "{name}: CSAT {v:?}");
    } else {
        assert!(!v.target_met, "{name}: CSAT {v:?}");
        assert_eq!(v.status, KpiStatus::InsufficientSample as i32, "{name}");
    }
    statuses.push(v.status);

    // Every value lies within its confidence interval; every day's value is the total
    // (the range is one day).
    for s in &r.series {
        let t = s.total.unwrap();
        if let (Some(x), Some(lo), Some(hi)) = (t.value, t.confidence_low, t.confidence_high) {
            assert!(
                lo <= x + 1e-9 && x <= hi + 1e-9,
                "{name}: {:?} {:?} outside its interval: {t:?}",
                Kpi::try_from(s.kpi),
                s.breakdown
            );
        }
        assert_eq!(s.periods.len(), 1, "{name}: one day");
        assert_eq!(
            s.periods[0].value.as_ref(),
            Some(&t),
            "{name}: {:?} the day differs from the total",
            Kpi::try_from(s.kpi)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpis_match_an_independent_count_in_any_order() {
    let app = TestApp::spawn("").await;
    // The chain's and regions' own sums are set up at start (store/scopes.rs): from then on
    // GetKpis reads them for the region and the chain below.
    eventually(
        "the chain's members",
        std::time::Duration::from_secs(10),
        || async { (app.count("SELECT COUNT(*) FROM scope_members").await == 4).then_some(()) },
    )
    .await;
    let now = Utc::now();
    let mut rng = Lcg(0x5eed_2026);
    let (events, mut exp, feedback) = scenario(&mut rng, now);
    // Shuffled, about 10 % delivered twice, in batches of uneven size.
    let mut all = events.clone();
    let again: Vec<EventEnvelope> = events.iter().filter(|_| rng.chance(10)).cloned().collect();
    assert!(!again.is_empty());
    all.extend(again);
    rng.shuffle(&mut all);
    let mut rest = all.as_slice();
    let mut batches = 0;
    while !rest.is_empty() {
        let n = (10 + rng.below(60) as usize).min(rest.len());
        app.deliver(rest[..n].to_vec()).await;
        rest = &rest[n..];
        batches += 1;
    }
    assert!(batches >= 4, "{batches} batches");
    // Late replies, surely after their receipt: to two unanswered feedback that needed one
    // (now answered) and to two survey answers (which need none: they change nothing).
    let mut late = Vec::new();
    for survey in [false, true] {
        for f in feedback
            .iter()
            .filter(|f| f.has_survey == survey && !f.answered)
            .take(2)
        {
            late.push(reply(f, now));
            if !survey {
                exp.get_mut(f.property).unwrap().feedback_response.0 += 1;
            }
        }
    }
    assert_eq!(
        late.len(),
        4,
        "the scenario has unanswered feedback of both kinds"
    );
    app.deliver(late.clone()).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM inbox").await,
        (events.len() + late.len()) as i64,
        "each event applied once"
    );

    let mut statuses = Vec::new();
    for p in PROPERTIES {
        let d = local_day(p, now);
        // The property's own staff sees it.
        let r = app.kpis(&mut app.staff(p), property(p), d, d, true).await;
        check(p, &r, &exp[p], &mut statuses);
    }
    let days = |ps: &[&str]| -> (NaiveDate, NaiveDate) {
        let ds: Vec<NaiveDate> = ps.iter().map(|p| local_day(p, now)).collect();
        (*ds.iter().min().unwrap(), *ds.iter().max().unwrap())
    };
    let mut east = exp["sh-bund"].clone();
    east.merge(&exp["hz-lake"]);
    let (from, to) = days(&["sh-bund", "hz-lake"]);
    let r = app
        .kpis(&mut app.regional("east"), region("east"), from, to, true)
        .await;
    check("region east", &r, &east, &mut statuses);
    let mut whole = east.clone();
    whole.merge(&exp["hk-harbour"]);
    let (chain_from, chain_to) = days(&PROPERTIES);
    let r = app
        .kpis(&mut app.head_office(), chain(), chain_from, chain_to, true)
        .await;
    check("chain", &r, &whole, &mut statuses);

    // Once the queued additions are folded in, the scope rows alone equal their properties'
    // sums, per day and per month, and the answers are the same.
    eventually("the fold", std::time::Duration::from_secs(10), || async {
        (app.count("SELECT COUNT(*) FROM scope_deltas").await == 0).then_some(())
    })
    .await;
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM (
                SELECT s.scope, g.grain, g.day, r.measure, r.breakdown, SUM(r.n) AS n,
                    SUM(r.num) AS num, SUM(r.sum) AS sum
                FROM rollups r JOIN scope_members m USING (property_id)
                CROSS JOIN LATERAL (VALUES ('chain'), ('region:' || m.region_id)) s(scope)
                CROSS JOIN LATERAL (VALUES ('d'::\"char\", r.day),
                    ('m'::\"char\", date_trunc('month', r.day)::date)) g(grain, day)
                GROUP BY 1, 2, 3, 4, 5) want
             FULL JOIN scope_rollups have USING (scope, grain, day, measure, breakdown)
             WHERE want.n IS DISTINCT FROM have.n OR want.num IS DISTINCT FROM have.num
                OR abs(want.sum - have.sum) > 1e-6 OR want.sum IS NULL OR have.sum IS NULL"
        )
        .await,
        0,
        "scope rows differ from their properties' sums"
    );
    assert!(app.count("SELECT COUNT(*) FROM scope_rollups").await > 0);
    let r = app
        .kpis(&mut app.regional("east"), region("east"), from, to, true)
        .await;
    check("region east, folded", &r, &east, &mut statuses);
    let r = app
        .kpis(&mut app.head_office(), chain(), chain_from, chain_to, true)
        .await;
    check("chain, folded", &r, &whole, &mut statuses);
    // The scenario judges both ways.
    assert!(
        statuses.contains(&(KpiStatus::Met as i32))
            && statuses.contains(&(KpiStatus::Missed as i32)),
        "CSAT statuses seen: {statuses:?}"
    );
    app.stop().await;
}

/// A case with both clocks stopped at `property`.
fn sla_case(property: &str, fr: bool, res: bool, now: DateTime<Utc>) -> Vec<EventEnvelope> {
    let case_id = new_id("case");
    let f = facts(&case_id, property, 1, 1, 1, false, "", now);
    let clock = |kind: i32, within: bool| {
        envelope(
            "follow-up-scheduler",
            "clock",
            &case_id,
            property,
            now,
            Payload::SlaClockStopped(ev::SlaClockStopped {
                clock_id: new_id("clock"),
                kind,
                case_id: case_id.clone(),
                property_id: property.into(),
                within_sla: within,
                start_time: Some(ts(now)),
                elapsed_duration: Some(secs(600)),
                ..Default::default()
            }),
        )
    };
    vec![
        envelope(
            "feedback-intake",
            "case",
            &case_id,
            property,
            now,
            Payload::CaseOpened(ev::CaseOpened {
                case: Some(f),
                feedback_id: String::new(),
            }),
        ),
        clock(1, fr),
        clock(2, res),
    ]
}

async fn league(
    client: &mut guestloop_client::MetricsClient,
    scope: Option<pb::Scope>,
    day: NaiveDate,
    order: LeagueTableOrder,
) -> Vec<(String, i32)> {
    client
        .get_league_table(pb::GetLeagueTableRequest {
            scope,
            date_range: Some(range(day, day)),
            order_by: order as i32,
        })
        .await
        .unwrap_or_else(|s| panic!("league table: {s:?}"))
        .into_inner()
        .rows
        .into_iter()
        .map(|r| {
            assert_eq!(r.previous_rank, 0, "nothing the day before: {r:?}");
            (r.property_id, r.rank)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_are_enforced() {
    let app = TestApp::spawn("").await;
    let now = Utc::now();
    let day = local_day("sh-bund", now);
    // SLA compliance: hz-lake 6/6, sh-bund 5/6, hk-harbour 3/5, sz-bay 2/2 (too few).
    // CSAT: sz-bay 6/6, sh-bund 5/6, hk-harbour 4/5, hz-lake 2/4 (too few).
    let mut events = Vec::new();
    for (p, cases, good_cases, answers, good_answers) in [
        ("hz-lake", 6, 6, 4, 2),
        ("sh-bund", 6, 5, 6, 5),
        ("hk-harbour", 5, 3, 5, 4),
        ("sz-bay", 2, 2, 6, 6),
    ] {
        for i in 0..cases {
            // The missed ones miss one clock or the other.
            let ok = i < good_cases;
            events.extend(sla_case(p, ok || i % 2 == 0, ok || i % 2 == 1, now));
        }
        for i in 0..answers {
            events.push(csat_answer(p, if i < good_answers { 5 } else { 2 }, now));
        }
    }
    app.deliver(events).await;

    // Staff of sh-bund: its property only.
    let mut staff = app.staff("sh-bund");
    let get = |scope: Option<pb::Scope>, from: NaiveDate, to: NaiveDate| pb::GetKpisRequest {
        scope,
        date_range: Some(range(from, to)),
        granularity: pb::Granularity::Day as i32,
        ..Default::default()
    };
    assert_code(
        staff
            .get_kpis(get(Some(property("hk-harbour")), day, day))
            .await,
        Code::NotFound,
    );
    assert_code(
        staff.get_kpis(get(Some(region("east")), day, day)).await,
        Code::NotFound,
    );
    assert_code(
        staff.get_kpis(get(Some(chain()), day, day)).await,
        Code::PermissionDenied,
    );
    staff
        .get_kpis(get(Some(property("sh-bund")), day, day))
        .await
        .expect("its own property");
    assert_code(
        app.regional("south")
            .get_kpis(get(Some(region("east")), day, day))
            .await,
        Code::NotFound,
    );
    assert_invalid(staff.get_kpis(get(None, day, day)).await, "scope");
    assert_invalid(
        staff
            .get_kpis(pb::GetKpisRequest {
                scope: Some(property("sh-bund")),
                ..Default::default()
            })
            .await,
        "date_range",
    );
    assert_invalid(
        staff
            .get_kpis(get(Some(property("sh-bund")), day, day - Duration::days(1)))
            .await,
        "date_range.end_date",
    );

    // League tables.
    let sla = LeagueTableOrder::SlaCompliance;
    assert_eq!(
        league(&mut staff, None, day, sla).await,
        vec![("sh-bund".to_string(), 1)]
    );
    assert_eq!(
        league(&mut app.regional("south"), None, day, sla).await,
        vec![("hk-harbour".to_string(), 1), ("sz-bay".to_string(), 0)]
    );
    let s = |v: &[(&str, i32)]| -> Vec<(String, i32)> {
        v.iter().map(|(p, r)| (p.to_string(), *r)).collect()
    };
    let mut ho = app.head_office();
    assert_eq!(
        league(&mut ho, None, day, sla).await,
        s(&[
            ("hz-lake", 1),
            ("sh-bund", 2),
            ("hk-harbour", 3),
            ("sz-bay", 0)
        ])
    );
    assert_eq!(
        league(&mut ho, Some(chain()), day, LeagueTableOrder::Unspecified).await,
        s(&[
            ("hz-lake", 1),
            ("sh-bund", 2),
            ("hk-harbour", 3),
            ("sz-bay", 0)
        ]),
        "SLA compliance is the default order"
    );
    assert_eq!(
        league(&mut ho, None, day, LeagueTableOrder::Csat).await,
        s(&[
            ("sz-bay", 1),
            ("sh-bund", 2),
            ("hk-harbour", 3),
            ("hz-lake", 0)
        ])
    );
    assert_eq!(
        league(&mut ho, Some(region("east")), day, LeagueTableOrder::Csat).await,
        s(&[("sh-bund", 1), ("hz-lake", 0)])
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivering_events_needs_a_service_token() {
    let app = TestApp::spawn("").await;
    let now = Utc::now();
    let events: Vec<EventEnvelope> = (0..3).map(|_| csat_answer("sh-bund", 5, now)).collect();
    for token in [
        keys().staff("sh-bund"),
        keys().head_office(),
        keys().regional("east"),
    ] {
        assert_code(
            app.events(&token)
                .deliver_events(ev::DeliverEventsRequest {
                    events: events.clone(),
                })
                .await,
            Code::PermissionDenied,
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM rollups").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 0);
    // The same events from a service count.
    app.deliver(events).await;
    assert_eq!(
        app.count("SELECT COALESCE(SUM(n), 0)::bigint FROM rollups WHERE measure = 'csat' AND breakdown = ''")
            .await,
        3
    );
    app.stop().await;
}
