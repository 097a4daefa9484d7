//! The demo's improvement board (issue 13): after the closed loop has played, the top
//! complaint category at sh-bund becomes an improvement item; it is planned, worked and
//! checked against its target on today's numbers, then either standardised and closed
//! (met) or sent round again (not met). Returns what happened, for the demo to print.

use anyhow::Context;
use guestloop_client::Connection;
use guestloop_proto::feedback::v1::Category;
use guestloop_proto::metrics::v1::{self as mx, ImprovementState as S};

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

/// Opens, works and judges one item; returns the lines to print.
pub async fn play(metrics_url: &str, token: &str) -> anyhow::Result<Vec<String>> {
    let mut m = Connection::builder(metrics_url.to_string())
        .token(token)
        .connect_lazy()?
        .metrics();
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
    let mut lines = Vec::new();
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
    let item = match created {
        Ok(r) => r.into_inner().item.context("an item")?,
        Err(s) if s.code() == tonic::Code::AlreadyExists => {
            lines.push(format!("an item for {} is already open", pretty(category)));
            return Ok(lines);
        }
        Err(s) => return Err(s.into()),
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
