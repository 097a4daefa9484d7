//! A page of improvement items costs a fixed number of queries, not a few per item: the
//! list and the report's open items load every item's steps, linked cases and current rate
//! with one query each. Counted from sqlx's statement events (target `sqlx::query`), which
//! is why this test has a binary of its own: the subscriber is the process's.

mod common;

use chrono::{Duration, Utc};
use common::*;
use guestloop_proto::events::v1::{self as ev, event_envelope::Payload};
use guestloop_proto::metrics::v1::{self as pb, ImprovementState as S};
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Metadata, span};

/// Every statement sqlx ran since the last `take`.
static STATEMENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn take() -> Vec<String> {
    std::mem::take(&mut *STATEMENTS.lock().expect("statements"))
}

/// Keeps the text of sqlx's statement events, nothing else.
struct Statements;

impl tracing::Subscriber for Statements {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.target() == "sqlx::query"
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, e: &Event<'_>) {
        let mut text = Text(String::new());
        e.record(&mut text);
        STATEMENTS.lock().expect("statements").push(text.0);
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

/// The summary and the full statement (sqlx leaves the latter empty for a one-liner).
struct Text(String);

impl Visit for Text {
    fn record_str(&mut self, f: &Field, v: &str) {
        if matches!(f.name(), "summary" | "db.statement") {
            self.0.push_str(v);
            self.0.push('\n');
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// How many of the statements select from `table`.
fn reading(statements: &[String], table: &str) -> usize {
    let from = format!("FROM {table}");
    statements.iter().filter(|s| s.contains(&from)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_items_costs_the_same_queries_as_one() {
    tracing::subscriber::set_global_default(Statements).expect("the only subscriber");
    // No proposals: the proposer reads the rollups as the items do.
    let app = TestApp::spawn("[improvement]\npropose = false\n").await;
    let now = Utc::now();
    let categories = [1, 2, 3, 4, 5];
    let mut events = Vec::new();
    let mut cases = Vec::new();
    for c in categories {
        let id = new_id("case");
        events.push(envelope(
            "feedback-intake",
            "case",
            &id,
            "sh-bund",
            now,
            Payload::CaseOpened(ev::CaseOpened {
                case: Some(ev::CaseFacts {
                    case_id: id.clone(),
                    property_id: "sh-bund".into(),
                    category: c,
                    status: 1,
                    open_time: Some(ts(now)),
                    version: 1,
                    ..Default::default()
                }),
                feedback_id: String::new(),
            }),
        ));
        cases.push(id);
    }
    app.deliver(events).await;
    let mut c = app.head_office();
    for (category, case) in categories.into_iter().zip(cases) {
        let item = c
            .create_improvement_item(pb::CreateImprovementItemRequest {
                scope: Some(property("sh-bund")),
                category,
                title: format!("item {category}"),
                owner_staff_id: "s-li".into(),
                plan: "a plan".into(),
                due_time: Some(ts(now + Duration::days(14))),
                ..Default::default()
            })
            .await
            .expect("create")
            .into_inner()
            .item
            .expect("item");
        c.advance_improvement_item(pb::AdvanceImprovementItemRequest {
            item_id: item.item_id.clone(),
            from_state: S::Plan as i32,
            to_state: S::Do as i32,
            ..Default::default()
        })
        .await
        .expect("do");
        c.link_improvement_cases(pb::LinkImprovementCasesRequest {
            item_id: item.item_id,
            case_ids: vec![case],
        })
        .await
        .expect("link");
    }

    // Five items: one statement each for their steps, their cases and their rates.
    take();
    let listed = c
        .list_improvement_items(pb::ListImprovementItemsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .items;
    assert_eq!(listed.len(), 5);
    assert!(
        listed
            .iter()
            .all(|i| i.steps.len() == 2 && i.case_ids.len() == 1 && i.current.is_some())
    );
    let list = take();
    let report = c
        .get_voice_of_customer_report(pb::GetVoiceOfCustomerReportRequest {
            scope: Some(property("sh-bund")),
            ..Default::default()
        })
        .await
        .expect("report")
        .into_inner()
        .report
        .expect("report");
    assert_eq!(report.improvement_items.len(), 5);
    let report = take();
    for (what, statements) in [("list", list), ("report", report)] {
        let counts = (
            reading(&statements, "improvement_steps"),
            reading(&statements, "improvement_cases"),
            // The items' rates (not the report's other sections, nor the gauges).
            statements
                .iter()
                .filter(|s| s.contains("CASE WHEN measure = 'stays' THEN 'stays'"))
                .count(),
        );
        assert_eq!(counts, (1, 1, 1), "{what}: {statements:#?}");
    }
}
