//! GetVoiceOfCustomerReport and RenderVoiceOfCustomerReport: the daily report of a scope the
//! caller sees, structured or as one HTML page.

use super::scope;
use crate::error::{Result, invalid};
use crate::report;
use crate::state::{Caller, State};
use guestloop_proto::metrics::v1 as pb;

async fn build(
    state: &State,
    caller: &Caller,
    scope: Option<&pb::Scope>,
    date: Option<&guestloop_proto::common::v1::Date>,
    top: i32,
) -> Result<pb::VoiceOfCustomerReport> {
    let r = scope::resolve(state, caller, scope, "scope")?;
    let day = match date {
        None => report::yesterday(state, &r),
        Some(d) => scope::date(d).ok_or_else(|| invalid("report_date", "is not a valid date"))?,
    };
    let top = match top {
        0 => 5,
        1..=50 => top as usize,
        _ => return Err(invalid("top_issue_limit", "must be between 1 and 50")),
    };
    Ok(report::build(state, &r, day, top).await?)
}

pub async fn get(
    state: &State,
    caller: &Caller,
    req: pb::GetVoiceOfCustomerReportRequest,
) -> Result<pb::GetVoiceOfCustomerReportResponse> {
    let report = build(
        state,
        caller,
        req.scope.as_ref(),
        req.report_date.as_ref(),
        req.top_issue_limit,
    )
    .await?;
    Ok(pb::GetVoiceOfCustomerReportResponse {
        report: Some(report),
    })
}

pub async fn render(
    state: &State,
    caller: &Caller,
    req: pb::RenderVoiceOfCustomerReportRequest,
) -> Result<pb::RenderVoiceOfCustomerReportResponse> {
    let language = match req.language.as_str() {
        "" | "en" => "en",
        "zh-CN" => "zh-CN",
        "zh-TW" => "zh-TW",
        _ => return Err(invalid("language", "must be zh-CN, zh-TW or en")),
    };
    let report = build(
        state,
        caller,
        req.scope.as_ref(),
        req.report_date.as_ref(),
        req.top_issue_limit,
    )
    .await?;
    let html = report::html::render(&report, &state.chain, language);
    let scope = report.scope.clone().unwrap_or_default();
    let d = report.report_date.unwrap_or_default();
    let who = if scope.id.is_empty() {
        "chain".to_string()
    } else {
        scope.id.clone()
    };
    Ok(pb::RenderVoiceOfCustomerReportResponse {
        html,
        file_name: format!("voc-{who}-{:04}-{:02}-{:02}.html", d.year, d.month, d.day),
    })
}
