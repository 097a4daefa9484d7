//! The voice-of-customer report against a scenario whose every number is counted here:
//! feedback and complaints on the report day and on the 30 days before it (the 7- and 30-day
//! averages), cases open, late, high-grade and escalated at the end of the day (including
//! ones opened or resolved exactly at midnight), guests' words for the top issues (only
//! negative or mixed, three at most, most recent first, gone once the guest is erased), the
//! CSAT trend; other properties kept out of a property's report and in the region's and the
//! chain's. The HTML page: self-contained, escaped, in three languages. Who may ask what.

mod common;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use common::*;
use guestloop_client::MetricsClient;
use guestloop_proto::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use guestloop_proto::metrics::v1::{self as pb, Kpi};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use tonic::Code;

// Enum numbers of the proto (feedback.v1 and common.v1).
const PHONE: i32 = 1;
const EMAIL: i32 = 2;
const WECHAT: i32 = 3;
const APP: i32 = 4;
const OTA: i32 = 8;
const COMMENT_CARD: i32 = 6;

const SERVICE_ATTITUDE: i32 = 1;
const HYGIENE: i32 = 3;
const NOISE: i32 = 4;
const FOOD: i32 = 5;
const BILLING: i32 = 6;

const POSITIVE: i32 = 1;
const NEUTRAL: i32 = 2;
const NEGATIVE: i32 = 3;
const MIXED: i32 = 4;

const FRONT_OFFICE: i32 = 1;
const HOUSEKEEPING: i32 = 2;
const ENGINEERING: i32 = 3;
const FOOD_AND_BEVERAGE: i32 = 4;
const FINANCE: i32 = 6;

const LOW: i32 = 1;
const MEDIUM: i32 = 2;
const HIGH: i32 = 3;

const FRONT_LINE: i32 = 1;
const CS_MANAGER: i32 = 2;
const DEPARTMENT_HEAD: i32 = 3;
const GENERAL_MANAGER: i32 = 4;

const RECEIVED: i32 = 1;
const ACKNOWLEDGED: i32 = 2;
const RESOLVED: i32 = 5;

/// Every property of the test chain is UTC+8 (Shanghai or Hong Kong, no DST).
fn zone() -> chrono_tz::Tz {
    chrono_tz::Asia::Shanghai
}

/// `h:m` local on `day`.
fn at(day: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    zone()
        .from_local_datetime(&day.and_hms_opt(h, m, 0).expect("a time"))
        .single()
        .expect("no DST in Shanghai")
        .with_timezone(&Utc)
}

/// Midnight at the start of the day after `day`: the end of `day`.
fn end_of(day: NaiveDate) -> DateTime<Utc> {
    at(day + Duration::days(1), 0, 0)
}

fn yesterday_local() -> NaiveDate {
    local_day("sh-bund", Utc::now()) - Duration::days(1)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// A piece of feedback as the scenario knows it.
#[derive(Debug, Clone)]
struct Fb {
    id: String,
    property: &'static str,
    guest: String,
    time: DateTime<Utc>,
    channel: i32,
    category: i32,
    sentiment: i32,
    excerpt: String,
}

/// A case as the scenario knows it.
#[derive(Debug, Clone)]
struct Case {
    id: String,
    reference: String,
    property: &'static str,
    channel: i32,
    category: i32,
    department: i32,
    risk: i32,
    tier: i32,
    open: DateTime<Utc>,
    fr_due: DateTime<Utc>,
    res_due: DateTime<Utc>,
    ack: Option<DateTime<Utc>>,
    resolve: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct Answer {
    property: &'static str,
    time: DateTime<Utc>,
    csat: i32,
}

#[derive(Default)]
struct Scenario {
    feedback: Vec<Fb>,
    cases: Vec<Case>,
    answers: Vec<Answer>,
    erased: BTreeSet<String>,
    refs: u32,
}

impl Scenario {
    #[allow(clippy::too_many_arguments)]
    fn feedback(
        &mut self,
        property: &'static str,
        time: DateTime<Utc>,
        channel: i32,
        category: i32,
        sentiment: i32,
        excerpt: &str,
        guest: &str,
    ) -> String {
        let id = new_id("fb");
        self.feedback.push(Fb {
            id: id.clone(),
            property,
            guest: guest.into(),
            time,
            channel,
            category,
            sentiment,
            excerpt: excerpt.into(),
        });
        id
    }

    /// A case opened at `open` with a first response due 30 minutes later and a resolution
    /// due `res_hours` later.
    #[allow(clippy::too_many_arguments)]
    fn case(
        &mut self,
        property: &'static str,
        open: DateTime<Utc>,
        channel: i32,
        category: i32,
        department: i32,
        risk: i32,
        tier: i32,
        res_hours: i64,
        ack: Option<DateTime<Utc>>,
        resolve: Option<DateTime<Utc>>,
    ) -> String {
        self.refs += 1;
        let id = new_id("case");
        let prefix = property.split('-').next().unwrap_or("X").to_uppercase();
        self.cases.push(Case {
            id: id.clone(),
            reference: format!("{prefix}01-2026-{:06}", self.refs),
            property,
            channel,
            category,
            department,
            risk,
            tier,
            open,
            fr_due: open + Duration::minutes(30),
            res_due: open + Duration::hours(res_hours),
            ack,
            resolve,
        });
        id
    }

    fn events(&self) -> Vec<EventEnvelope> {
        let mut out = Vec::new();
        for f in &self.feedback {
            out.push(envelope(
                "feedback-intake",
                "feedback",
                &f.id,
                f.property,
                f.time,
                Payload::FeedbackReceived(ev::FeedbackReceived {
                    feedback_id: f.id.clone(),
                    property_id: f.property.into(),
                    channel: f.channel,
                    guest_id: f.guest.clone(),
                    receive_time: Some(ts(f.time)),
                    language: "zh-CN".into(),
                    category: f.category,
                    sentiment: f.sentiment,
                    redacted_excerpt: f.excerpt.clone(),
                    ..Default::default()
                }),
            ));
        }
        for c in &self.cases {
            let facts = ev::CaseFacts {
                case_id: c.id.clone(),
                reference: c.reference.clone(),
                property_id: c.property.into(),
                guest_id: new_id("guest"),
                channel: c.channel,
                category: c.category,
                risk_grade: c.risk,
                department: c.department,
                status: RECEIVED,
                escalation_tier: c.tier,
                open_time: Some(ts(c.open)),
                first_response_due_time: Some(ts(c.fr_due)),
                resolution_due_time: Some(ts(c.res_due)),
                version: 1,
                ..Default::default()
            };
            let event = |t: DateTime<Utc>, payload: Payload| {
                envelope("feedback-intake", "case", &c.id, c.property, t, payload)
            };
            out.push(event(
                c.open,
                Payload::CaseOpened(ev::CaseOpened {
                    case: Some(facts.clone()),
                    feedback_id: String::new(),
                }),
            ));
            if let Some(ack) = c.ack {
                let mut g = facts.clone();
                g.status = ACKNOWLEDGED;
                g.acknowledge_time = Some(ts(ack));
                g.version = 2;
                out.push(event(
                    ack,
                    Payload::CaseStatusChanged(ev::CaseStatusChanged {
                        case: Some(g),
                        from_status: RECEIVED,
                        to_status: ACKNOWLEDGED,
                        change_time: Some(ts(ack)),
                        ..Default::default()
                    }),
                ));
            }
            if let Some(done) = c.resolve {
                let mut g = facts.clone();
                g.status = RESOLVED;
                g.acknowledge_time = c.ack.map(ts);
                g.resolve_time = Some(ts(done));
                g.version = 3;
                out.push(event(
                    done,
                    Payload::CaseStatusChanged(ev::CaseStatusChanged {
                        case: Some(g),
                        from_status: ACKNOWLEDGED,
                        to_status: RESOLVED,
                        change_time: Some(ts(done)),
                        ..Default::default()
                    }),
                ));
            }
        }
        for a in &self.answers {
            out.push(csat_answer(a.property, a.csat, a.time));
        }
        out
    }

    // ---- What a report of `props` on `day` must show, counted over the scenario. ----

    fn feedback_on(&self, props: &[&str], d: NaiveDate, pick: impl Fn(&Fb) -> bool) -> i64 {
        self.feedback
            .iter()
            .filter(|f| props.contains(&f.property) && local_day(f.property, f.time) == d)
            .filter(|f| pick(f))
            .count() as i64
    }

    fn complaints_on(&self, props: &[&str], d: NaiveDate, pick: impl Fn(&Case) -> bool) -> i64 {
        self.cases
            .iter()
            .filter(|c| props.contains(&c.property) && local_day(c.property, c.open) == d)
            .filter(|c| pick(c))
            .count() as i64
    }

    fn volume(on: impl Fn(NaiveDate) -> i64, day: NaiveDate) -> pb::Volume {
        let avg =
            |n: i64| (1..=n).map(|i| on(day - Duration::days(i))).sum::<i64>() as f64 / n as f64;
        pb::Volume {
            count: on(day),
            previous_7_day_average: avg(7),
            previous_30_day_average: avg(30),
        }
    }

    fn feedback_volume(
        &self,
        props: &[&str],
        day: NaiveDate,
        pick: impl Fn(&Fb) -> bool,
    ) -> pb::Volume {
        Self::volume(|d| self.feedback_on(props, d, &pick), day)
    }

    fn complaint_volume(
        &self,
        props: &[&str],
        day: NaiveDate,
        pick: impl Fn(&Case) -> bool,
    ) -> pb::Volume {
        Self::volume(|d| self.complaints_on(props, d, &pick), day)
    }

    fn in_window(day: NaiveDate, d: NaiveDate) -> bool {
        d <= day && d >= day - Duration::days(30)
    }

    /// Channels (or categories) seen in the 31 days up to `day`.
    fn seen(&self, props: &[&str], day: NaiveDate, key: impl Fn(i32, i32) -> i32) -> BTreeSet<i32> {
        let fb = self
            .feedback
            .iter()
            .filter(|f| props.contains(&f.property))
            .filter(|f| Self::in_window(day, local_day(f.property, f.time)))
            .map(|f| key(f.channel, f.category));
        let cs = self
            .cases
            .iter()
            .filter(|c| props.contains(&c.property))
            .filter(|c| Self::in_window(day, local_day(c.property, c.open)))
            .map(|c| key(c.channel, c.category));
        fb.chain(cs).collect()
    }

    fn top_issues(&self, props: &[&str], day: NaiveDate, limit: usize) -> Vec<pb::TopIssue> {
        let mut per: BTreeMap<i32, i64> = BTreeMap::new();
        for c in self
            .cases
            .iter()
            .filter(|c| props.contains(&c.property) && local_day(c.property, c.open) == day)
        {
            *per.entry(c.category).or_default() += 1;
        }
        let total: i64 = per.values().sum();
        let mut issues: Vec<(i32, i64)> = per.into_iter().collect();
        issues.sort_by_key(|x| std::cmp::Reverse(x.1));
        for w in issues.windows(2) {
            assert_ne!(w[0].1, w[1].1, "the scenario has no ties between issues");
        }
        issues.truncate(limit);
        issues
            .into_iter()
            .map(|(category, n)| {
                // The department most of the category's cases of the 31 days went to.
                let mut by_dept: BTreeMap<i32, i64> = BTreeMap::new();
                for c in self.cases.iter().filter(|c| {
                    props.contains(&c.property)
                        && c.category == category
                        && Self::in_window(day, local_day(c.property, c.open))
                }) {
                    *by_dept.entry(c.department).or_default() += 1;
                }
                let mut depts: Vec<(i32, i64)> = by_dept.into_iter().collect();
                depts.sort_by_key(|x| std::cmp::Reverse(x.1));
                if depts.len() > 1 {
                    assert_ne!(depts[0].1, depts[1].1, "no tie of departments");
                }
                let mut quotes: Vec<&Fb> = self
                    .feedback
                    .iter()
                    .filter(|f| {
                        props.contains(&f.property)
                            && local_day(f.property, f.time) == day
                            && f.category == category
                            && matches!(f.sentiment, NEGATIVE | MIXED)
                            && !f.excerpt.trim().is_empty()
                            && !self.erased.contains(&f.guest)
                    })
                    .collect();
                quotes.sort_by_key(|f| std::cmp::Reverse(f.time));
                quotes.truncate(3);
                pb::TopIssue {
                    category,
                    department: depts[0].0,
                    complaints: Some(self.complaint_volume(props, day, |c| c.category == category)),
                    share: n as f64 / total as f64,
                    example_quotes: quotes
                        .into_iter()
                        .map(|f| pb::Quote {
                            feedback_id: f.id.clone(),
                            property_id: f.property.into(),
                            channel: f.channel,
                            language: "zh-CN".into(),
                            sentiment: f.sentiment,
                            excerpt: f.excerpt.clone(),
                            receive_time: Some(ts(f.time)),
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// Open at the end of `day`: opened before midnight, not resolved by then.
    fn open_at_end(&self, props: &[&str], day: NaiveDate) -> Vec<&Case> {
        let end = end_of(day);
        self.cases
            .iter()
            .filter(|c| props.contains(&c.property))
            .filter(|c| c.open < end && c.resolve.is_none_or(|t| t >= end))
            .collect()
    }

    /// The due time an open case missed by the end of `day`, if it is late.
    fn missed(c: &Case, day: NaiveDate) -> Option<DateTime<Utc>> {
        let end = end_of(day);
        if c.fr_due < end && c.ack.is_none_or(|t| t >= end) {
            Some(c.fr_due)
        } else if c.res_due < end {
            Some(c.res_due)
        } else {
            None
        }
    }

    fn departments(&self, props: &[&str], day: NaiveDate) -> Vec<pb::DepartmentCases> {
        let mut per: BTreeMap<i32, pb::DepartmentCases> = BTreeMap::new();
        for c in self.open_at_end(props, day) {
            let d = per.entry(c.department).or_insert(pb::DepartmentCases {
                department: c.department,
                ..Default::default()
            });
            d.open_count += 1;
            d.late_count += i64::from(Self::missed(c, day).is_some());
            d.high_grade_open_count += i64::from(c.risk == HIGH);
            d.escalated_open_count += i64::from(c.tier > FRONT_LINE);
        }
        per.into_values().collect()
    }

    /// (case id, reference, missed due time), most overdue first.
    fn late(&self, props: &[&str], day: NaiveDate) -> Vec<(String, String, DateTime<Utc>)> {
        let mut out: Vec<(String, String, DateTime<Utc>)> = self
            .open_at_end(props, day)
            .into_iter()
            .filter_map(|c| Self::missed(c, day).map(|m| (c.id.clone(), c.reference.clone(), m)))
            .collect();
        out.sort_by(|a, b| a.2.cmp(&b.2).then(a.0.cmp(&b.0)));
        out
    }

    /// (answers of 4-5, answers) of the days `from..=to`.
    fn csat(&self, props: &[&str], from: NaiveDate, to: NaiveDate) -> (i64, i64) {
        let xs: Vec<&Answer> = self
            .answers
            .iter()
            .filter(|a| props.contains(&a.property))
            .filter(|a| (from..=to).contains(&local_day(a.property, a.time)))
            .collect();
        (
            xs.iter().filter(|a| a.csat >= 4).count() as i64,
            xs.len() as i64,
        )
    }

    /// Compares a report of `props` on `day` with the scenario.
    fn check(&self, name: &str, r: &pb::VoiceOfCustomerReport, props: &[&str], day: NaiveDate) {
        assert_eq!(r.report_date, Some(date(day)), "{name}: report date");
        let vol = |what: &str, got: &Option<pb::Volume>, want: pb::Volume| {
            let got = got.unwrap_or_else(|| panic!("{name}: {what} has no volume"));
            assert!(
                got.count == want.count
                    && close(got.previous_7_day_average, want.previous_7_day_average)
                    && close(got.previous_30_day_average, want.previous_30_day_average),
                "{name}: {what}: got {got:?}, want {want:?}"
            );
        };
        vol(
            "feedback",
            &r.feedback,
            self.feedback_volume(props, day, |_| true),
        );
        vol(
            "complaints",
            &r.complaints,
            self.complaint_volume(props, day, |_| true),
        );

        // Channels and categories: every one seen in the 31 days, each with its volumes;
        // anything else listed shows nothing.
        let channels = self.seen(props, day, |ch, _| ch);
        let listed: BTreeSet<i32> = r.channels.iter().map(|c| c.channel).collect();
        assert!(
            listed.is_superset(&channels),
            "{name}: channels {listed:?} ⊉ {channels:?}"
        );
        for c in &r.channels {
            let what = format!("channel {}", c.channel);
            vol(
                &what,
                &c.feedback,
                self.feedback_volume(props, day, |f| f.channel == c.channel),
            );
            vol(
                &what,
                &c.complaints,
                self.complaint_volume(props, day, |x| x.channel == c.channel),
            );
        }
        let categories = self.seen(props, day, |_, cat| cat);
        let listed: BTreeSet<i32> = r.categories.iter().map(|c| c.category).collect();
        assert!(
            listed.is_superset(&categories),
            "{name}: categories {listed:?} ⊉ {categories:?}"
        );
        for c in &r.categories {
            let what = format!("category {}", c.category);
            vol(
                &what,
                &c.feedback,
                self.feedback_volume(props, day, |f| f.category == c.category),
            );
            vol(
                &what,
                &c.complaints,
                self.complaint_volume(props, day, |x| x.category == c.category),
            );
        }

        // Top issues.
        let want = self.top_issues(props, day, 5);
        let got_order: Vec<(i32, i32)> = r
            .top_issues
            .iter()
            .map(|t| (t.category, t.department))
            .collect();
        let want_order: Vec<(i32, i32)> = want.iter().map(|t| (t.category, t.department)).collect();
        assert_eq!(
            got_order, want_order,
            "{name}: top issues (category, department)"
        );
        for (g, w) in r.top_issues.iter().zip(&want) {
            let what = format!("top issue {}", w.category);
            assert!(
                close(g.share, w.share),
                "{name}: {what} share {} ≠ {}",
                g.share,
                w.share
            );
            vol(&what, &g.complaints, w.complaints.unwrap());
            assert_eq!(g.example_quotes, w.example_quotes, "{name}: {what} quotes");
        }

        // Cases at the end of the day.
        assert_eq!(
            r.open_cases_by_department,
            self.departments(props, day),
            "{name}: open cases by department"
        );
        let late = self.late(props, day);
        let got: Vec<(String, String, DateTime<Utc>)> = r
            .late_cases
            .iter()
            .map(|c| {
                let due = c.due_time.unwrap();
                (
                    c.case_id.clone(),
                    c.reference.clone(),
                    DateTime::from_timestamp(due.seconds, 0).unwrap(),
                )
            })
            .collect();
        assert_eq!(got, late, "{name}: late cases, most overdue first");
        assert_eq!(
            r.late_case_count,
            late.len() as i64,
            "{name}: late case count"
        );
        for lc in &r.late_cases {
            let c = self.cases.iter().find(|c| c.id == lc.case_id).unwrap();
            assert_eq!(
                (
                    lc.property_id.as_str(),
                    lc.category,
                    lc.department,
                    lc.risk_grade,
                    lc.escalation_tier
                ),
                (c.property, c.category, c.department, c.risk, c.tier),
                "{name}: late case {}",
                c.reference
            );
            assert_eq!(lc.open_time, Some(ts(c.open)), "{name}: {}", c.reference);
        }

        // CSAT: the day, the 7 and the 30 days before.
        let t = r
            .kpi_trends
            .iter()
            .find(|t| t.kpi == Kpi::Csat as i32)
            .unwrap_or_else(|| panic!("{name}: no CSAT trend"));
        for (what, v, (num, n)) in [
            ("report day", t.report_day, self.csat(props, day, day)),
            (
                "previous 7 days",
                t.previous_7_days,
                self.csat(props, day - Duration::days(7), day - Duration::days(1)),
            ),
            (
                "previous 30 days",
                t.previous_30_days,
                self.csat(props, day - Duration::days(30), day - Duration::days(1)),
            ),
        ] {
            let v = v.unwrap_or_else(|| panic!("{name}: CSAT {what} missing"));
            assert_eq!(
                (v.numerator, v.denominator),
                (num, n),
                "{name}: CSAT {what} {v:?}"
            );
            if n > 0 {
                assert!(
                    close(v.value.unwrap(), num as f64 / n as f64),
                    "{name}: CSAT {what} {v:?}"
                );
            }
        }
    }
}

/// The scenario around report day `d` (yesterday, local).
fn scenario(d: NaiveDate) -> Scenario {
    let mut s = Scenario::default();
    let ago = |n: i64| d - Duration::days(n);
    let sh = "sh-bund";

    // Feedback on earlier days (D-1..D-10, D-20, and D-31 outside the 30 days), channels and
    // categories cycled; comment cards only on D-31.
    let channels = [PHONE, EMAIL, WECHAT, APP, OTA];
    let categories = [HYGIENE, NOISE, BILLING, FOOD, SERVICE_ATTITUDE];
    let mut k = 0;
    for (days, n) in [
        (1, 3),
        (2, 2),
        (3, 4),
        (5, 1),
        (7, 2),
        (8, 5),
        (10, 1),
        (20, 3),
    ] {
        for i in 0..n {
            let t = at(ago(days), 9 + i, 15);
            s.feedback(sh, t, channels[k % 5], categories[k % 5], NEUTRAL, "", "");
            k += 1;
        }
    }
    s.feedback(
        sh,
        at(ago(31), 12, 0),
        COMMENT_CARD,
        HYGIENE,
        NEGATIVE,
        "",
        "",
    );
    // The evening before: a negative hygiene quote that is not the report day's.
    s.feedback(
        sh,
        at(ago(1), 23, 59),
        WECHAT,
        HYGIENE,
        NEGATIVE,
        "D-1: mouldy shower",
        "",
    );

    // The report day: guests' words. Hygiene: five negative or mixed (the three latest
    // shown), one positive; one of them from a guest who is erased later.
    s.feedback(
        sh,
        at(d, 8, 0),
        WECHAT,
        HYGIENE,
        NEGATIVE,
        "Hair in the sink.",
        "guest-a",
    );
    s.feedback(
        sh,
        at(d, 12, 0),
        OTA,
        HYGIENE,
        MIXED,
        "Nice view but a dusty room.",
        "",
    );
    s.feedback(
        sh,
        at(d, 13, 0),
        APP,
        HYGIENE,
        POSITIVE,
        "Spotless, thank you!",
        "guest-b",
    );
    s.feedback(
        sh,
        at(d, 15, 0),
        EMAIL,
        HYGIENE,
        NEGATIVE,
        "毛巾有异味。",
        "guest-erased",
    );
    s.feedback(
        sh,
        at(d, 18, 0),
        WECHAT,
        HYGIENE,
        NEGATIVE,
        "Mould in the bathroom.",
        "guest-c",
    );
    // Noise: one neutral (not shown), one negative.
    s.feedback(
        sh,
        at(d, 21, 0),
        PHONE,
        NOISE,
        NEUTRAL,
        "Some noise from the street.",
        "",
    );
    s.feedback(
        sh,
        at(d, 23, 0),
        PHONE,
        NOISE,
        NEGATIVE,
        "Party next door until 3am.",
        "guest-d",
    );
    // Billing: negative without words (nothing to quote), and blank words.
    s.feedback(sh, at(d, 10, 0), EMAIL, BILLING, NEGATIVE, "", "");
    s.feedback(sh, at(d, 10, 30), EMAIL, BILLING, NEGATIVE, "   ", "");
    // Food: negative, but food is not one of the day's complaints.
    s.feedback(
        sh,
        at(d, 7, 30),
        APP,
        FOOD,
        NEGATIVE,
        "Cold breakfast.",
        "guest-e",
    );
    // Exactly midnight after the report day: the next day's.
    s.feedback(
        sh,
        end_of(d),
        WECHAT,
        HYGIENE,
        NEGATIVE,
        "Midnight: the next day's.",
        "",
    );

    // Cases of the report day.
    // Hygiene ×6 (four at housekeeping, two at engineering): unacknowledged and late; escalated, acknowledged
    // in time; resolved the same afternoon; acknowledged late (not late at the end of the
    // day); resolved exactly at midnight (still open at the end of the day).
    let ack = |t: DateTime<Utc>, m: i64| Some(t + Duration::minutes(m));
    let t = at(d, 9, 0);
    s.case(
        sh,
        t,
        WECHAT,
        HYGIENE,
        HOUSEKEEPING,
        HIGH,
        FRONT_LINE,
        48,
        None,
        None,
    );
    let t = at(d, 14, 0);
    s.case(
        sh,
        t,
        OTA,
        HYGIENE,
        HOUSEKEEPING,
        MEDIUM,
        CS_MANAGER,
        48,
        ack(t, 10),
        None,
    );
    let t = at(d, 10, 0);
    s.case(
        sh,
        t,
        WECHAT,
        HYGIENE,
        ENGINEERING,
        LOW,
        FRONT_LINE,
        48,
        ack(t, 5),
        Some(at(d, 16, 0)),
    );
    let t = at(d, 11, 0);
    s.case(
        sh,
        t,
        EMAIL,
        HYGIENE,
        HOUSEKEEPING,
        LOW,
        FRONT_LINE,
        72,
        ack(t, 60),
        None,
    );
    let t = at(d, 7, 0);
    s.case(
        sh,
        t,
        APP,
        HYGIENE,
        HOUSEKEEPING,
        LOW,
        FRONT_LINE,
        72,
        ack(t, 5),
        Some(end_of(d)),
    );
    // Acknowledged exactly at midnight, after its first response was due: late at the end
    // of the day.
    let t = at(d, 23, 0);
    s.case(
        sh,
        t,
        WECHAT,
        HYGIENE,
        ENGINEERING,
        LOW,
        FRONT_LINE,
        48,
        Some(end_of(d)),
        None,
    );
    // Noise ×2 at the front office: high grade, escalated, late; opened just before midnight
    // (its first response is due after it: not late).
    let t = at(d, 22, 0);
    s.case(
        sh,
        t,
        PHONE,
        NOISE,
        FRONT_OFFICE,
        HIGH,
        DEPARTMENT_HEAD,
        48,
        None,
        None,
    );
    let t = at(d, 23, 50);
    s.case(
        sh,
        t,
        PHONE,
        NOISE,
        FRONT_OFFICE,
        MEDIUM,
        FRONT_LINE,
        48,
        None,
        None,
    );
    // Billing ×1 at finance: acknowledged, resolution due at 20:00, still open: late.
    let t = at(d, 8, 0);
    s.case(
        sh,
        t,
        EMAIL,
        BILLING,
        FINANCE,
        LOW,
        FRONT_LINE,
        12,
        ack(t, 10),
        None,
    );
    // Opened exactly at midnight: the next day's, not open at the end of the report day.
    let t = end_of(d);
    s.case(
        sh,
        t,
        WECHAT,
        HYGIENE,
        HOUSEKEEPING,
        HIGH,
        FRONT_LINE,
        48,
        None,
        None,
    );

    // Earlier cases: still open and late for days (the most overdue), resolved before the
    // report day, resolved on it, open and in time, outside the 7 days.
    let t = at(ago(3), 10, 0);
    s.case(
        sh,
        t,
        PHONE,
        NOISE,
        FRONT_OFFICE,
        MEDIUM,
        GENERAL_MANAGER,
        24 * 10,
        None,
        None,
    );
    let t = at(ago(2), 9, 0);
    s.case(
        sh,
        t,
        WECHAT,
        HYGIENE,
        HOUSEKEEPING,
        LOW,
        FRONT_LINE,
        48,
        ack(t, 5),
        Some(at(ago(1), 9, 0)),
    );
    let t = at(ago(5), 15, 0);
    s.case(
        sh,
        t,
        EMAIL,
        BILLING,
        FINANCE,
        HIGH,
        FRONT_LINE,
        24 * 7,
        ack(t, 5),
        Some(at(d, 12, 0)),
    );
    let t = at(ago(10), 11, 0);
    s.case(
        sh,
        t,
        APP,
        HYGIENE,
        HOUSEKEEPING,
        MEDIUM,
        FRONT_LINE,
        24 * 15,
        ack(t, 5),
        None,
    );
    let t = at(ago(20), 19, 0);
    s.case(
        sh,
        t,
        OTA,
        FOOD,
        FOOD_AND_BEVERAGE,
        LOW,
        FRONT_LINE,
        48,
        ack(t, 5),
        Some(at(ago(19), 9, 0)),
    );
    let t = at(ago(1), 16, 0);
    s.case(
        sh,
        t,
        PHONE,
        SERVICE_ATTITUDE,
        FRONT_OFFICE,
        LOW,
        FRONT_LINE,
        48,
        ack(t, 5),
        Some(at(ago(1), 18, 0)),
    );
    let t = at(ago(8), 16, 0);
    s.case(
        sh,
        t,
        WECHAT,
        NOISE,
        FRONT_OFFICE,
        LOW,
        FRONT_LINE,
        48,
        ack(t, 5),
        Some(at(ago(7), 18, 0)),
    );

    // CSAT: 4 of 6 on the day; 2 of 2 two days before; 0 of 1 twenty days before.
    for (n, csat) in [
        (0, 5),
        (0, 5),
        (0, 4),
        (0, 2),
        (0, 5),
        (0, 1),
        (2, 5),
        (2, 4),
        (20, 2),
    ] {
        s.answers.push(Answer {
            property: sh,
            time: at(ago(n), 12, 0),
            csat,
        });
    }

    // hz-lake, the same region: in the region's and the chain's report, not sh-bund's.
    let hz = "hz-lake";
    s.feedback(
        hz,
        at(d, 19, 0),
        WECHAT,
        HYGIENE,
        NEGATIVE,
        "杭州：地毯很脏。",
        "guest-hz",
    );
    s.feedback(
        hz,
        at(d, 9, 0),
        OTA,
        NOISE,
        MIXED,
        "Lovely lake, noisy lift.",
        "",
    );
    s.feedback(hz, at(ago(4), 9, 0), EMAIL, BILLING, NEUTRAL, "", "");
    s.feedback(hz, at(ago(4), 10, 0), EMAIL, BILLING, NEUTRAL, "", "");
    let t = at(d, 8, 0);
    s.case(
        hz,
        t,
        WECHAT,
        HYGIENE,
        HOUSEKEEPING,
        HIGH,
        CS_MANAGER,
        48,
        None,
        None,
    );
    let t = at(d, 9, 30);
    s.case(
        hz,
        t,
        OTA,
        NOISE,
        FRONT_OFFICE,
        LOW,
        FRONT_LINE,
        48,
        ack(t, 5),
        None,
    );
    s.answers.push(Answer {
        property: hz,
        time: at(d, 13, 0),
        csat: 5,
    });
    // hk-harbour, another region: only in the chain's.
    let hk = "hk-harbour";
    s.feedback(
        hk,
        at(d, 11, 0),
        PHONE,
        BILLING,
        NEGATIVE,
        "Charged twice.",
        "guest-hk",
    );
    let t = at(d, 6, 0);
    s.case(
        hk,
        t,
        PHONE,
        BILLING,
        FINANCE,
        MEDIUM,
        FRONT_LINE,
        4,
        ack(t, 5),
        None,
    );
    s
}

async fn report(
    client: &mut MetricsClient,
    scope: pb::Scope,
    day: Option<NaiveDate>,
    top_issue_limit: i32,
) -> pb::VoiceOfCustomerReport {
    client
        .get_voice_of_customer_report(pb::GetVoiceOfCustomerReportRequest {
            scope: Some(scope),
            report_date: day.map(date),
            top_issue_limit,
        })
        .await
        .unwrap_or_else(|s| panic!("GetVoiceOfCustomerReport failed: {s:?}"))
        .into_inner()
        .report
        .expect("a report")
}

/// Delivers the scenario in batches of uneven size.
async fn deliver(app: &TestApp, s: &Scenario) {
    let events = s.events();
    let mut rest = events.as_slice();
    let mut i = 0;
    while !rest.is_empty() {
        let n = (7 + (i * 13) % 30).min(rest.len());
        app.deliver(rest[..n].to_vec()).await;
        rest = &rest[n..];
        i += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_report_shows_what_happened() {
    let started = Instant::now();
    let app = TestApp::spawn("").await;
    let d = yesterday_local();
    let mut s = scenario(d);
    deliver(&app, &s).await;
    let sh = ["sh-bund"];
    let east = ["sh-bund", "hz-lake"];
    let all = ["sh-bund", "hz-lake", "hk-harbour", "sz-bay"];

    let mut staff = app.staff("sh-bund");
    let r = report(&mut staff, property("sh-bund"), Some(d), 0).await;
    s.check("sh-bund", &r, &sh, d);

    // The same, by hand, against a mistake shared by the count above and the service.
    let f = r.feedback.unwrap();
    assert_eq!(f.count, 10, "{f:?}");
    assert!(close(f.previous_7_day_average, 13.0 / 7.0), "{f:?}");
    assert!(close(f.previous_30_day_average, 22.0 / 30.0), "{f:?}");
    let c = r.complaints.unwrap();
    assert_eq!(c.count, 9, "{c:?}");
    assert!(close(c.previous_7_day_average, 4.0 / 7.0), "{c:?}");
    assert!(close(c.previous_30_day_average, 7.0 / 30.0), "{c:?}");
    let issues: Vec<(i32, i32, f64)> = r
        .top_issues
        .iter()
        .map(|t| (t.category, t.department, t.share))
        .collect();
    assert_eq!(
        issues,
        vec![
            (HYGIENE, HOUSEKEEPING, 6.0 / 9.0),
            (NOISE, FRONT_OFFICE, 2.0 / 9.0),
            (BILLING, FINANCE, 1.0 / 9.0)
        ]
    );
    let words = |t: &pb::TopIssue| -> Vec<String> {
        t.example_quotes.iter().map(|q| q.excerpt.clone()).collect()
    };
    assert_eq!(
        words(&r.top_issues[0]),
        [
            "Mould in the bathroom.",
            "毛巾有异味。",
            "Nice view but a dusty room."
        ]
    );
    assert_eq!(words(&r.top_issues[1]), ["Party next door until 3am."]);
    assert!(r.top_issues[2].example_quotes.is_empty());
    let depts: Vec<(i32, i64, i64, i64, i64)> = r
        .open_cases_by_department
        .iter()
        .map(|x| {
            (
                x.department,
                x.open_count,
                x.late_count,
                x.high_grade_open_count,
                x.escalated_open_count,
            )
        })
        .collect();
    assert_eq!(
        depts,
        vec![
            (FRONT_OFFICE, 3, 2, 1, 2),
            (HOUSEKEEPING, 5, 1, 1, 1),
            (ENGINEERING, 1, 1, 0, 0),
            (FINANCE, 1, 1, 0, 0)
        ]
    );
    let late: Vec<(i32, i32)> = r
        .late_cases
        .iter()
        .map(|c| (c.category, c.department))
        .collect();
    assert_eq!(
        late,
        vec![
            (NOISE, FRONT_OFFICE),
            (HYGIENE, HOUSEKEEPING),
            (BILLING, FINANCE),
            (NOISE, FRONT_OFFICE),
            (HYGIENE, ENGINEERING)
        ],
        "most overdue first"
    );
    assert_eq!(r.late_case_count, 5);
    let csat = r
        .kpi_trends
        .iter()
        .find(|t| t.kpi == Kpi::Csat as i32)
        .and_then(|t| t.report_day)
        .unwrap();
    assert_eq!((csat.numerator, csat.denominator), (4, 6), "{csat:?}");
    assert!(close(csat.value.unwrap(), 4.0 / 6.0));
    assert!(
        !r.top_issues
            .iter()
            .flat_map(|t| &t.example_quotes)
            .any(|q| q.property_id != "sh-bund"),
        "only sh-bund's words"
    );

    // A limit of two issues.
    let r2 = report(&mut staff, property("sh-bund"), Some(d), 2).await;
    let cats: Vec<i32> = r2.top_issues.iter().map(|t| t.category).collect();
    assert_eq!(cats, [HYGIENE, NOISE]);

    // The region and the chain include hz-lake (and the chain hk-harbour).
    let r = report(&mut app.regional("east"), region("east"), Some(d), 0).await;
    s.check("region east", &r, &east, d);
    assert_eq!(
        words(&r.top_issues[0])[0],
        "杭州：地毯很脏。",
        "hz-lake's words in the region's report"
    );
    let r = report(&mut app.head_office(), chain(), Some(d), 0).await;
    s.check("chain", &r, &all, d);
    assert_eq!(r.feedback.unwrap().count, 10 + 2 + 1);
    assert_eq!(r.complaints.unwrap().count, 9 + 2 + 1);
    let r = report(&mut app.head_office(), region("east"), Some(d), 0).await;
    s.check("region east by head office", &r, &east, d);

    // The erased guest's words leave the next report; the counts stay.
    app.deliver(vec![envelope(
        "guest-profile",
        "guest",
        "guest-erased",
        "sh-bund",
        Utc::now(),
        Payload::GuestErased(ev::GuestErased {
            guest_id: "guest-erased".into(),
        }),
    )])
    .await;
    s.erased.insert("guest-erased".into());
    let r = report(&mut staff, property("sh-bund"), Some(d), 0).await;
    s.check("sh-bund after the erasure", &r, &sh, d);
    assert_eq!(
        words(&r.top_issues[0]),
        [
            "Mould in the bathroom.",
            "Nice view but a dusty room.",
            "Hair in the sink."
        ]
    );
    assert_eq!(r.feedback.unwrap().count, 10);
    let r = report(&mut app.regional("east"), region("east"), Some(d), 0).await;
    s.check("region east after the erasure", &r, &east, d);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM quotes WHERE guest_id = 'guest-erased'")
            .await,
        0
    );
    // Feedback of the erased guest arriving after the erasure (another outbox): counted,
    // but its words are not kept.
    let late = new_id("fb");
    app.deliver(vec![envelope(
        "feedback-intake",
        "feedback",
        &late,
        "sh-bund",
        Utc::now(),
        Payload::FeedbackReceived(ev::FeedbackReceived {
            feedback_id: late.clone(),
            property_id: "sh-bund".into(),
            guest_id: "guest-erased".into(),
            channel: 2,
            receive_time: Some(ts(Utc::now())),
            sentiment: 3,
            redacted_excerpt: "Still unhappy about the mould.".into(),
            ..Default::default()
        }),
    )])
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM quotes WHERE guest_id = 'guest-erased'")
            .await,
        0,
        "an erased guest's later feedback leaves no quote"
    );
    app.stop().await;
    eprintln!(
        "the_daily_report_shows_what_happened: {:?}",
        started.elapsed()
    );
}

/// Where `html` refers to something outside itself: src=, href= or url( naming a web
/// address (the SVG namespace is an identifier, not a resource).
fn external_references(html: &str) -> Vec<String> {
    let lower = html.to_lowercase();
    let mut out = Vec::new();
    for pat in ["src=", "href=", "url("] {
        for (i, _) in lower.match_indices(pat) {
            let rest = lower[i + pat.len()..].trim_start_matches(['"', '\'', ' ']);
            if rest.starts_with("http:") || rest.starts_with("https:") || rest.starts_with("//") {
                out.push(html[i..(i + 60).min(html.len())].to_string());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_page_is_self_contained_and_escaped() {
    let started = Instant::now();
    let app = TestApp::spawn("").await;
    let d = yesterday_local();
    let mut s = scenario(d);
    let hostile = r#"<script>alert(1)</script> & "quotes""#;
    s.feedback(
        "sh-bund",
        at(d, 20, 0),
        WECHAT,
        HYGIENE,
        NEGATIVE,
        hostile,
        "guest-x",
    );
    deliver(&app, &s).await;
    let mut staff = app.staff("sh-bund");
    let render = |language: &str| pb::RenderVoiceOfCustomerReportRequest {
        scope: Some(property("sh-bund")),
        report_date: Some(date(d)),
        top_issue_limit: 0,
        language: language.into(),
    };
    let day = d.format("%Y-%m-%d").to_string();
    let mut sample = String::new();
    for (language, title) in [
        ("", "Voice of the customer"),
        ("en", "Voice of the customer"),
        ("zh-CN", "宾客之声日报"),
        ("zh-TW", "賓客之聲日報"),
    ] {
        let page = staff
            .render_voice_of_customer_report(render(language))
            .await
            .unwrap_or_else(|s| panic!("render {language}: {s:?}"))
            .into_inner();
        assert_eq!(page.file_name, format!("voc-sh-bund-{day}.html"));
        let html = &page.html;
        assert!(html.starts_with("<!DOCTYPE html>"), "{language}");
        assert!(html.contains(title), "{language}: title {title}");
        assert!(html.contains("Shanghai Bund"), "{language}: property name");
        assert!(html.contains(&day), "{language}: date");
        assert!(html.contains("<svg"), "{language}: charts");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"),
            "{language}: the quote escaped"
        );
        assert!(
            !html.to_lowercase().contains("<script"),
            "{language}: no script"
        );
        assert!(!html.contains("alert(1)</script>"), "{language}");
        assert_eq!(
            external_references(html),
            Vec::<String>::new(),
            "{language}: external resources"
        );
        // Other guests' words too, in any script.
        assert!(html.contains("毛巾有异味。"), "{language}");
        if language == "en" {
            sample = page.html.clone();
        }
    }
    assert_invalid(
        staff.render_voice_of_customer_report(render("fr")).await,
        "language",
    );
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("voc-sample.html");
    std::fs::write(&path, &sample).expect("sample written");
    eprintln!("HTML sample: {} ({} bytes)", path.display(), sample.len());
    // The region's and the chain's file names.
    let page = app
        .head_office()
        .render_voice_of_customer_report(pb::RenderVoiceOfCustomerReportRequest {
            scope: Some(chain()),
            report_date: Some(date(d)),
            ..Default::default()
        })
        .await
        .expect("chain page")
        .into_inner();
    assert_eq!(page.file_name, format!("voc-chain-{day}.html"));
    assert!(page.html.contains("Test Hotels"));
    let page = app
        .regional("east")
        .render_voice_of_customer_report(pb::RenderVoiceOfCustomerReportRequest {
            scope: Some(region("east")),
            report_date: Some(date(d)),
            language: "zh-CN".into(),
            ..Default::default()
        })
        .await
        .expect("region page")
        .into_inner();
    assert_eq!(page.file_name, format!("voc-east-{day}.html"));
    assert!(page.html.contains("East China") && page.html.contains("杭州：地毯很脏。"));
    app.stop().await;
    eprintln!(
        "the_html_page_is_self_contained_and_escaped: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_scopes() {
    let started = Instant::now();
    let app = TestApp::spawn("").await;
    let before = yesterday_local();
    // One piece of feedback yesterday at sh-bund.
    let mut s = Scenario::default();
    s.feedback(
        "sh-bund",
        at(before, 12, 0),
        PHONE,
        NOISE,
        NEGATIVE,
        "Loud.",
        "",
    );
    deliver(&app, &s).await;
    let get =
        |scope: pb::Scope, report_date: Option<guestloop_proto::common::v1::Date>, top: i32| {
            pb::GetVoiceOfCustomerReportRequest {
                scope: Some(scope),
                report_date,
                top_issue_limit: top,
            }
        };
    let day = Some(date(before));

    let mut hk = app.staff("hk-harbour");
    assert_code(
        hk.get_voice_of_customer_report(get(property("sh-bund"), day, 0))
            .await,
        Code::NotFound,
    );
    assert_code(
        hk.render_voice_of_customer_report(pb::RenderVoiceOfCustomerReportRequest {
            scope: Some(property("sh-bund")),
            report_date: day,
            ..Default::default()
        })
        .await,
        Code::NotFound,
    );
    assert_code(
        hk.get_voice_of_customer_report(get(region("east"), day, 0))
            .await,
        Code::NotFound,
    );
    assert_code(
        hk.get_voice_of_customer_report(get(chain(), day, 0)).await,
        Code::PermissionDenied,
    );
    assert_code(
        app.regional("south")
            .get_voice_of_customer_report(get(property("sh-bund"), day, 0))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.regional("east")
            .get_voice_of_customer_report(get(chain(), day, 0))
            .await,
        Code::PermissionDenied,
    );
    assert_invalid(
        hk.get_voice_of_customer_report(pb::GetVoiceOfCustomerReportRequest::default())
            .await,
        "scope",
    );

    let mut sh = app.staff("sh-bund");
    for top in [51, -1, 1000] {
        assert_invalid(
            sh.get_voice_of_customer_report(get(property("sh-bund"), day, top))
                .await,
            "top_issue_limit",
        );
    }
    for top in [1, 50] {
        sh.get_voice_of_customer_report(get(property("sh-bund"), day, top))
            .await
            .unwrap_or_else(|s| panic!("top_issue_limit {top}: {s:?}"));
    }
    let bad = guestloop_proto::common::v1::Date {
        year: before.format("%Y").to_string().parse().unwrap(),
        month: 13,
        day: 1,
    };
    assert_invalid(
        sh.get_voice_of_customer_report(get(property("sh-bund"), Some(bad), 0))
            .await,
        "report_date",
    );
    assert_invalid(
        sh.render_voice_of_customer_report(pb::RenderVoiceOfCustomerReportRequest {
            scope: Some(property("sh-bund")),
            report_date: Some(bad),
            ..Default::default()
        })
        .await,
        "report_date",
    );

    // Unset: yesterday, local (either side of a midnight passing during the call).
    let r = report(&mut sh, property("sh-bund"), None, 0).await;
    let after = yesterday_local();
    let got = r.report_date.expect("a report date");
    assert!(
        got == date(before) || got == date(after),
        "{got:?} is not yesterday ({before} / {after})"
    );
    if got == date(before) {
        assert_eq!(r.feedback.unwrap().count, 1, "yesterday's feedback");
    }
    assert_eq!(r.scope, Some(property("sh-bund")));
    app.stop().await;
    eprintln!("report_scopes: {:?}", started.elapsed());
}
