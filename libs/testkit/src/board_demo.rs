//! The demo's improvement board (issue 13): after the history and the closed loop have
//! played, the item the platform proposed from the history's complaints (hz-lake's noise)
//! is accepted with an owner, its old cases linked, planned, worked and checked against its
//! target on today's numbers, then either standardised and closed (met) or sent round
//! again (not met). Without a proposal (no history played) sh-bund's top issue today is
//! opened by hand instead. Returns what happened, for the demo to print.

use crate::history::OldCase;
use anyhow::Context;
use guestloop_client::Connection;
use guestloop_proto::feedback::v1::Category;
use guestloop_proto::metrics::v1::{self as mx, ImprovementState as S};
use std::time::{Duration, Instant};

fn pretty(c: i32) -> String {
    Category::try_from(c)
        .map(|x| {
            x.as_str_name()
                .trim_start_matches("CATEGORY_")
                .replace('_', " ")
                .to_lowercase()
        })
        .unwrap_or_else(|_| c.to_string())
}

fn rate(v: &Option<mx::KpiValue>) -> String {
    match v {
        Some(v) => format!(
            "{} per 100 stays ({} of {})",
            v.value
                .map(|x| format!("{x:.1}"))
                .unwrap_or_else(|| "-".into()),
            v.numerator,
            v.denominator
        ),
        None => "-".into(),
    }
}

/// The first item the platform proposed, waiting up to `within` for the proposer to run
/// over the history (it runs every `improvement.propose_interval`).
async fn proposed(
    m: &mut guestloop_client::MetricsClient,
    within: Duration,
) -> anyhow::Result<Option<mx::ImprovementItem>> {
    let start = Instant::now();
    loop {
        let items = m
            .list_improvement_items(mx::ListImprovementItemsRequest {
                states: vec![S::Proposed as i32],
                ..Default::default()
            })
            .await?
            .into_inner()
            .items;
        if let Some(item) = items.into_iter().next() {
            return Ok(Some(item));
        }
        if start.elapsed() > within {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// sh-bund's top complaint category today, opened by hand.
async fn opened_by_hand(
    m: &mut guestloop_client::MetricsClient,
) -> anyhow::Result<Result<mx::ImprovementItem, String>> {
    let scope = mx::Scope {
        level: mx::ScopeLevel::Property as i32,
        id: "sh-bund".into(),
    };
    let report = m
        .get_voice_of_customer_report(mx::GetVoiceOfCustomerReportRequest {
            scope: Some(scope.clone()),
            report_date: crate::scenario::today_range().start_date,
            top_issue_limit: 1,
        })
        .await?
        .into_inner()
        .report
        .context("a report")?;
    let category = report
        .top_issues
        .first()
        .map(|t| t.category)
        .unwrap_or(Category::Noise as i32);
    let created = m
        .create_improvement_item(mx::CreateImprovementItemRequest {
            scope: Some(scope),
            category,
            title: format!("Fewer {} complaints at Shanghai Bund", pretty(category)),
            owner_staff_id: "sh-bund-dm".into(),
            due_time: Some(guestloop_proto::time::to_timestamp(
                chrono::Utc::now() + chrono::Duration::days(14),
            )),
            target_rate: Some(5.0),
            idempotency_key: format!("demo-{}", uuid::Uuid::now_v7().simple()),
            ..Default::default()
        })
        .await;
    match created {
        Ok(r) => Ok(Ok(r.into_inner().item.context("an item")?)),
        Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(Err(format!(
            "an item for {} is already open",
            pretty(category)
        ))),
        Err(s) => Err(s.into()),
    }
}

/// Takes the platform's proposal (or opens one), works and judges it; returns the lines to
/// print. `old_cases` are the history's imported cases, linked to the item they concern.
pub async fn play(
    metrics_url: &str,
    token: &str,
    old_cases: &[OldCase],
) -> anyhow::Result<Vec<String>> {
    let mut m = Connection::builder(metrics_url.to_string())
        .token(token)
        .connect_lazy()?
        .metrics();
    let mut lines = Vec::new();
    let wait = if old_cases.is_empty() {
        Duration::ZERO
    } else {
        Duration::from_secs(60)
    };
    let item = match proposed(&mut m, wait).await? {
        Some(p) => {
            lines.push(format!("proposed {:<45} {}", p.title, p.proposal_reason));
            let accepted = m
                .advance_improvement_item(mx::AdvanceImprovementItemRequest {
                    item_id: p.item_id.clone(),
                    from_state: p.state,
                    to_state: S::Plan as i32,
                    note: "accepted at the morning meeting".into(),
                    owner_staff_id: format!("{}-dm", p.scope.as_ref().map_or("", |s| &s.id)),
                    due_time: Some(guestloop_proto::time::to_timestamp(
                        chrono::Utc::now() + chrono::Duration::days(14),
                    )),
                    ..Default::default()
                })
                .await?
                .into_inner()
                .item
                .context("an item")?;
            let property = accepted.scope.as_ref().map_or("", |s| s.id.as_str());
            let ids: Vec<String> = old_cases
                .iter()
                .filter(|c| c.property_id == property && c.category == accepted.category)
                .map(|c| c.case_id.clone())
                .take(100)
                .collect();
            if !ids.is_empty() {
                let n = ids.len();
                m.link_improvement_cases(mx::LinkImprovementCasesRequest {
                    item_id: accepted.item_id.clone(),
                    case_ids: ids,
                })
                .await?;
                lines.push(format!("linked  {n} of its cases from the old log"));
            }
            accepted
        }
        None => match opened_by_hand(&mut m).await? {
            Ok(item) => item,
            Err(why) => {
                lines.push(why);
                return Ok(lines);
            }
        },
    };
    lines.push(format!(
        "opened  {:<46} baseline {}  target {:.1}",
        item.title,
        rate(&item.baseline),
        item.target_rate
    ));
    let step = |item: mx::ImprovementItem, to: S, plan: &str, note: &str| {
        let mut m = m.clone();
        let (plan, note) = (plan.to_string(), note.to_string());
        async move {
            m.advance_improvement_item(mx::AdvanceImprovementItemRequest {
                item_id: item.item_id.clone(),
                from_state: item.state,
                to_state: to as i32,
                note,
                plan,
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().item.unwrap_or_default())
        }
    };
    let item = step(
        item,
        S::Do,
        "Daily walk-through by the duty manager; fix list per floor",
        "plan agreed",
    )
    .await?;
    lines.push("PLAN -> DO  the plan is being worked".into());
    let item = step(item, S::Check, "", "two weeks in").await?;
    let verdict = mx::ImprovementVerdict::try_from(item.verdict)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("IMPROVEMENT_VERDICT_")
        .to_string();
    lines.push(format!(
        "DO -> CHECK judged {verdict}: since DO {}",
        rate(&item.current)
    ));
    if item.verdict == mx::ImprovementVerdict::Met as i32 {
        let item = step(item, S::Act, "", "the walk-through is the standard").await?;
        step(item, S::Closed, "", "done").await?;
        lines.push("CHECK -> ACT -> CLOSED  met: the change became the standard".into());
    } else {
        step(item, S::Do, "", "not there yet: another cycle").await?;
        lines.push("CHECK -> DO  not met: another cycle".into());
    }
    Ok(lines)
}
