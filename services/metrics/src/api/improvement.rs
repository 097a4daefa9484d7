//! The improvement board's RPCs. Requests are parsed into checked values first (every bad
//! field named at once); then the caller's scope decides: an item outside it answers
//! NOT_FOUND, property staff read but only managers (and services) create and move items.
//! Linked cases must be the item's: a case metrics has no facts of yet, or one the caller
//! does not see, answers NOT_FOUND like an item; one of another scope or category is
//! INVALID_ARGUMENT on its `case_ids[i]`.

use super::scope;
use crate::error::{MetricsError, Result, invalid};
use crate::improvement::{self as board, NewItem, store};
use crate::report::html::category as category_name;
use crate::state::{Caller, State};
use chrono::{DateTime, Utc};
use guestloop_db::page::{Cursor, Page};
use guestloop_errors::{FieldViolations, parse};
use guestloop_proto::common::v1::Department;
use guestloop_proto::feedback::v1::Category;
use guestloop_proto::metrics::v1::{self as pb, ImprovementState as S, ImprovementVerdict as V};
use guestloop_proto::metrics::v1::{Scope, ScopeLevel};
use prost::Message;
use std::collections::HashMap;
use uuid::Uuid;

const MAX_TEXT: usize = 4000;

fn time(t: &Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    guestloop_proto::time::instant(t)
}

fn future(
    v: &mut FieldViolations,
    field: &str,
    t: &Option<prost_types::Timestamp>,
) -> Option<DateTime<Utc>> {
    match (t, time(t)) {
        (None, _) => None,
        (Some(_), None) => {
            v.add(field, "is not a valid time");
            None
        }
        (Some(_), Some(at)) if at <= Utc::now() => {
            v.add(field, "must be in the future");
            None
        }
        (Some(_), at) => at,
    }
}

fn target(v: &mut FieldViolations, t: Option<f64>) -> Option<f64> {
    match t {
        Some(x) if !x.is_finite() || x < 0.0 => {
            v.add(
                "target_rate",
                "must be a number of complaints per 100 stays, >= 0",
            );
            None
        }
        other => other,
    }
}

/// A checked CreateImprovementItemRequest.
struct Create {
    scope: Scope,
    item: NewItem,
}

impl TryFrom<pb::CreateImprovementItemRequest> for Create {
    type Error = MetricsError;

    fn try_from(r: pb::CreateImprovementItemRequest) -> Result<Self> {
        let mut v = FieldViolations::new();
        let scope = r.scope.unwrap_or_default();
        let level = ScopeLevel::try_from(scope.level).unwrap_or_default();
        if !board::item_level(level) {
            v.add("scope.level", "must be a property or a region");
        }
        let category = match Category::try_from(r.category) {
            Ok(Category::Unspecified) | Err(_) => {
                v.add("category", "is required: a complaint category");
                0
            }
            Ok(c) => c as i32,
        };
        let department = v
            .check("department", parse::known_enum::<Department>(r.department))
            .map(|d| d as i32)
            .unwrap_or(0);
        let tag = v
            .check("tag", parse::optional_text(&r.tag, 100))
            .flatten()
            .unwrap_or_default();
        let title = v.check("title", parse::required_text(&r.title, 200));
        let owner = v.check(
            "owner_staff_id",
            parse::required_text(&r.owner_staff_id, 100),
        );
        let plan = v
            .check("plan", parse::optional_text(&r.plan, MAX_TEXT))
            .flatten()
            .unwrap_or_default();
        let due = future(&mut v, "due_time", &r.due_time);
        if r.due_time.is_none() {
            v.add("due_time", "is required");
        }
        let target_rate = target(&mut v, r.target_rate);
        let key = v
            .check(
                "idempotency_key",
                parse::optional_text(&r.idempotency_key, 200),
            )
            .flatten();
        let item = v.into_result(|| NewItem {
            state: S::Plan,
            scope_level: level,
            scope_id: scope.id.trim().to_string(),
            category,
            department,
            tag,
            title: title.unwrap_or_default(),
            owner_staff_id: owner.unwrap_or_default(),
            plan,
            due_time: due,
            target_rate,
            proposal_reason: String::new(),
            idempotency_key: key,
            actor: String::new(),
        })?;
        Ok(Self { scope, item })
    }
}

/// Whether the caller sees an item's scope.
fn sees(state: &State, caller: &Caller, level: i16, id: &str) -> bool {
    if level == ScopeLevel::Region as i16 {
        scope::sees_region(caller, id)
    } else {
        caller.principal.can_see_property(&state.chain, id)
    }
}

fn may_work(caller: &Caller) -> Result<()> {
    let role = caller.principal.role;
    if role.is_manager() || role == guestloop_auth::Role::Service {
        Ok(())
    } else {
        Err(MetricsError::PermissionDenied(
            "only managers work the improvement board",
        ))
    }
}

/// The item, if the caller sees it.
async fn visible(state: &State, caller: &Caller, id: &str) -> Result<store::ItemRow> {
    let id = parse::uuid(id).map_err(|e| invalid("item_id", e))?;
    match store::get(&state.pool, id).await? {
        Some(row) if sees(state, caller, row.scope_level, &row.scope_id) => Ok(row),
        _ => Err(MetricsError::NotFound("improvement item")),
    }
}

pub async fn create(
    state: &State,
    caller: &Caller,
    req: pb::CreateImprovementItemRequest,
) -> Result<pb::CreateImprovementItemResponse> {
    let Create { scope, mut item } = Create::try_from(req)?;
    scope::resolve(state, caller, Some(&scope), "scope")?;
    may_work(caller)?;
    item.actor = caller.principal.subject.clone();
    let (row, created) = match board::create(state, &item).await? {
        store::Inserted::New(row) => (row, true),
        store::Inserted::Repeat(row) => (row, false),
        store::Inserted::OpenExists => {
            return Err(MetricsError::AlreadyExists(
                "an improvement item for this scope and category is open",
            ));
        }
    };
    Ok(pb::CreateImprovementItemResponse {
        item: Some(board::view(state, &row, false).await?),
        created,
    })
}

pub async fn get(
    state: &State,
    caller: &Caller,
    req: pb::GetImprovementItemRequest,
) -> Result<pb::GetImprovementItemResponse> {
    let row = visible(state, caller, &req.item_id).await?;
    Ok(pb::GetImprovementItemResponse {
        item: Some(board::view(state, &row, true).await?),
    })
}

pub async fn list(
    state: &State,
    caller: &Caller,
    req: pb::ListImprovementItemsRequest,
) -> Result<pb::ListImprovementItemsResponse> {
    let (properties, regions) = match &req.scope {
        Some(s) => {
            let r = scope::resolve(state, caller, Some(s), "scope")?;
            (r.properties, scope::regions(state, &r.scope))
        }
        None => {
            let all: Vec<String> = state
                .chain
                .properties
                .iter()
                .map(|p| p.id.clone())
                .collect();
            let properties = caller
                .principal
                .visible_properties(&state.chain)
                .unwrap_or(all);
            (properties, scope::regions(state, &scope::widest(caller)))
        }
    };
    let mut states = Vec::new();
    for (i, s) in req.states.iter().enumerate() {
        match S::try_from(*s) {
            Ok(S::Unspecified) | Err(_) => {
                return Err(invalid(
                    &format!("states[{i}]"),
                    format!("{s} is not an improvement state"),
                ));
            }
            Ok(s) => states.push(s as i16),
        }
    }
    let page_req = req.page.unwrap_or_default();
    let page = Page::parse(page_req.page_size, &page_req.page_token)
        .map_err(|(f, why)| invalid(f, why))?;
    let rows = store::list(&state.pool, &properties, &regions, &states, &page).await?;
    let next_page_token = page.next_token(&rows, |r| Cursor {
        t: r.create_time,
        id: r.id,
    });
    Ok(pb::ListImprovementItemsResponse {
        items: board::views(state, &rows).await?,
        next_page_token,
    })
}

/// A checked AdvanceImprovementItemRequest.
struct Advance {
    id: Uuid,
    from: S,
    to: S,
    note: String,
    owner: Option<String>,
    due: Option<DateTime<Utc>>,
    plan: Option<String>,
    target_rate: Option<f64>,
}

fn state_field(v: &mut FieldViolations, field: &str, s: i32) -> S {
    match S::try_from(s) {
        Ok(S::Unspecified) | Err(_) => {
            v.add(field, "is required: an improvement state");
            S::Unspecified
        }
        Ok(s) => s,
    }
}

impl TryFrom<pb::AdvanceImprovementItemRequest> for Advance {
    type Error = MetricsError;

    fn try_from(r: pb::AdvanceImprovementItemRequest) -> Result<Self> {
        let mut v = FieldViolations::new();
        let id = v.check("item_id", parse::uuid(&r.item_id));
        let from = state_field(&mut v, "from_state", r.from_state);
        let to = state_field(&mut v, "to_state", r.to_state);
        let note = v
            .check("note", parse::optional_text(&r.note, MAX_TEXT))
            .flatten()
            .unwrap_or_default();
        let owner = v
            .check(
                "owner_staff_id",
                parse::optional_text(&r.owner_staff_id, 100),
            )
            .flatten();
        let due = future(&mut v, "due_time", &r.due_time);
        let plan = v
            .check("plan", parse::optional_text(&r.plan, MAX_TEXT))
            .flatten();
        let target_rate = target(&mut v, r.target_rate);
        Ok(v.into_result(|| Self {
            id: id.unwrap_or_default(),
            from,
            to,
            note,
            owner,
            due,
            plan,
            target_rate,
        })?)
    }
}

pub async fn advance(
    state: &State,
    caller: &Caller,
    req: pb::AdvanceImprovementItemRequest,
) -> Result<pb::AdvanceImprovementItemResponse> {
    let a = Advance::try_from(req)?;
    let mut tx = state.pool.begin().await?;
    let mut row = match store::lock(&mut tx, a.id).await? {
        Some(row) if sees(state, caller, row.scope_level, &row.scope_id) => row,
        _ => return Err(MetricsError::NotFound("improvement item")),
    };
    may_work(caller)?;
    let now_state = S::try_from(i32::from(row.state)).unwrap_or_default();
    if now_state != a.from {
        return Err(MetricsError::FailedPrecondition(format!(
            "the item is {}, not {}",
            now_state.as_str_name(),
            a.from.as_str_name()
        )));
    }
    if !board::allowed(a.from, a.to) {
        return Err(MetricsError::FailedPrecondition(format!(
            "an item does not move from {} to {}",
            a.from.as_str_name(),
            a.to.as_str_name()
        )));
    }
    let before_due = row.due_time;
    if let Some(o) = a.owner {
        row.owner_staff_id = o;
    }
    if let Some(d) = a.due {
        row.due_time = Some(d);
    }
    if let Some(p) = a.plan {
        row.plan = p;
    }
    if let Some(t) = a.target_rate {
        row.target_rate = t;
    }
    let properties = board::properties(state, row.scope_level, &row.scope_id);
    let today = board::today(state, &properties);
    let mut v = FieldViolations::new();
    match (a.from, a.to) {
        (S::Proposed, S::Plan) => {
            if row.owner_staff_id.is_empty() {
                v.add("owner_staff_id", "is required to accept a proposal");
            }
            if row.due_time.is_none() {
                v.add("due_time", "is required to accept a proposal");
            }
            // Accepting opens the item: its baseline is taken again over the days before
            // today, so a proposal made while events were still arriving, or accepted days
            // later, starts from the whole record (and the default target with it).
            let days = state.improvement.baseline_days;
            let baseline = board::rate::over(
                state,
                &properties,
                i32::from(row.category),
                today - chrono::Duration::days(days),
                today - chrono::Duration::days(1),
                None,
            )
            .await?;
            if a.target_rate.is_none() {
                row.target_rate = board::default_target(state, &baseline);
            }
            row.baseline = baseline.encode_to_vec();
            row.open_day = today;
        }
        (S::Plan, S::Do) => {
            if row.plan.is_empty() {
                v.add("plan", "is required before the item is worked");
            }
            row.do_day = Some(today);
        }
        (S::Do, S::Check) => {
            let from = row.do_day.unwrap_or(today);
            let judged = board::rate::over(
                state,
                &properties,
                i32::from(row.category),
                from,
                today,
                Some(row.target_rate),
            )
            .await?;
            row.verdict = board::verdict(&judged) as i16;
            row.verdict_value = Some(judged.encode_to_vec());
            row.check_day = Some(today);
        }
        (S::Check, S::Act) if row.verdict != V::Met as i16 => {
            return Err(MetricsError::FailedPrecondition(
                "the check did not meet the target: move it back to DO for another cycle".into(),
            ));
        }
        (S::Check, S::Do) => {
            row.do_day = Some(today);
            row.check_day = None;
            row.verdict = V::Unspecified as i16;
            row.verdict_value = None;
        }
        _ => {}
    }
    if !v.is_empty() {
        return Err(v.into());
    }
    row.state = a.to as i16;
    row.update_time = Utc::now();
    let retime = board::watched(a.from) != board::watched(a.to) || before_due != row.due_time;
    store::update(&mut tx, &row, retime).await?;
    store::step(
        &mut tx,
        row.id,
        row.update_time,
        a.from as i16,
        a.to as i16,
        &a.note,
        &caller.principal.subject,
    )
    .await?;
    tx.commit().await?;
    if retime {
        state.improvement_timers.notify_one();
    }
    metrics::counter!("metrics_improvement_steps_total", "to" => a.to.as_str_name()).increment(1);
    Ok(pb::AdvanceImprovementItemResponse {
        item: Some(board::view(state, &row, false).await?),
    })
}

pub async fn link(
    state: &State,
    caller: &Caller,
    req: pb::LinkImprovementCasesRequest,
) -> Result<pb::LinkImprovementCasesResponse> {
    let mut v = FieldViolations::new();
    let id = v.check("item_id", parse::uuid(&req.item_id));
    if req.case_ids.is_empty() || req.case_ids.len() > 100 {
        v.add("case_ids", "name 1-100 cases");
    }
    let mut ids = Vec::with_capacity(req.case_ids.len());
    for (i, c) in req.case_ids.iter().enumerate() {
        if let Some(c) = v.check(&format!("case_ids[{i}]"), parse::required_text(c, 100)) {
            ids.push(c);
        }
    }
    let id = v.into_result(|| id.unwrap_or_default())?;
    let row = visible(state, caller, &id.to_string()).await?;
    may_work(caller)?;
    let properties = board::properties(state, row.scope_level, &row.scope_id);
    let known = store::known_cases(&state.pool, &ids).await?;
    let known: HashMap<&str, &store::KnownCase> =
        known.iter().map(|k| (k.case_id.as_str(), k)).collect();
    // A case metrics has no facts of (unknown, or its events still on their way) and one at
    // a property the caller does not see answer NOT_FOUND, as an item does: the two the same,
    // so nothing is told about another property's cases.
    let seen = |c: &String| {
        known.get(c.as_str()).is_some_and(|k| {
            caller
                .principal
                .can_see_property(&state.chain, &k.property_id)
        })
    };
    if !ids.iter().all(seen) {
        return Err(MetricsError::NotFound("case"));
    }
    // A case the caller sees but of another scope or category is a mistake in the request.
    let mut v = FieldViolations::new();
    for (i, c) in ids.iter().enumerate() {
        let k = known[c.as_str()];
        let field = format!("case_ids[{i}]");
        if !properties.contains(&k.property_id) {
            v.add(
                &field,
                format!("is a case of {}, outside this item's scope", k.property_id),
            );
        }
        if k.category != row.category {
            v.add(
                &field,
                format!(
                    "is a {} case, not {} like this item",
                    category_name(i32::from(k.category)),
                    category_name(i32::from(row.category)),
                ),
            );
        }
    }
    if !v.is_empty() {
        return Err(v.into());
    }
    let mut tx = state.pool.begin().await?;
    store::link(&mut tx, row.id, &ids).await?;
    tx.commit().await?;
    Ok(pb::LinkImprovementCasesResponse {
        item: Some(board::view(state, &row, false).await?),
    })
}
