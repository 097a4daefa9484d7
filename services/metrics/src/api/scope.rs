//! Request scopes and dates: a property, a region or the chain, checked against what the
//! caller may see (a property the caller cannot see answers NOT_FOUND; the chain to anyone
//! but head office PERMISSION_DENIED), and local date ranges.

use crate::error::{MetricsError, Result, invalid};
use crate::state::{Caller, State};
use chrono::NaiveDate;
use guestloop_auth::Scope as Seen;
use guestloop_config::ServiceStandards;
use guestloop_proto::common::v1::{Date, DateRange};
use guestloop_proto::metrics::v1::{Scope, ScopeLevel};

#[derive(Debug, Clone)]
pub struct Resolved {
    pub scope: Scope,
    pub properties: Vec<String>,
    pub standards: ServiceStandards,
}

pub fn resolve(
    state: &State,
    caller: &Caller,
    scope: Option<&Scope>,
    field: &str,
) -> Result<Resolved> {
    let Some(scope) = scope else {
        return Err(invalid(field, "is required"));
    };
    let chain = &state.chain;
    let p = &caller.principal;
    match ScopeLevel::try_from(scope.level).unwrap_or_default() {
        ScopeLevel::Property => {
            if !p.can_see_property(chain, &scope.id) {
                return Err(MetricsError::NotFound("property"));
            }
            of(state, scope).ok_or(MetricsError::NotFound("property"))
        }
        ScopeLevel::Region => {
            if !sees_region(caller, &scope.id) {
                return Err(MetricsError::NotFound("region"));
            }
            of(state, scope).ok_or(MetricsError::NotFound("region"))
        }
        ScopeLevel::Chain => {
            if !p.is_chain_wide() {
                return Err(MetricsError::PermissionDenied(
                    "only head office sees the chain",
                ));
            }
            of(state, scope).ok_or(MetricsError::NotFound("chain"))
        }
        ScopeLevel::Unspecified => Err(invalid(&format!("{field}.level"), "is required")),
    }
}

/// Whether the caller sees a region as a whole (head office, or its regional manager).
pub fn sees_region(caller: &Caller, region: &str) -> bool {
    match &caller.principal.scope {
        Seen::Chain => true,
        Seen::Region(r) => r == region,
        Seen::Properties(_) => false,
    }
}

/// The regions a scope holds: a region itself, every region of the chain, none for a
/// property (items and reports kept per region, e.g. regional improvement items).
pub fn regions(state: &State, scope: &Scope) -> Vec<String> {
    match ScopeLevel::try_from(scope.level).unwrap_or_default() {
        ScopeLevel::Region => vec![scope.id.clone()],
        ScopeLevel::Chain => state.chain.regions.iter().map(|x| x.id.clone()).collect(),
        _ => vec![],
    }
}

/// A scope's properties and standards, whoever asks (the report mailer addresses each
/// scope to the managers of it); None for a property or region the chain does not have.
pub fn of(state: &State, scope: &Scope) -> Option<Resolved> {
    let chain = &state.chain;
    match ScopeLevel::try_from(scope.level).unwrap_or_default() {
        ScopeLevel::Property => chain.property(&scope.id).map(|_| Resolved {
            scope: scope.clone(),
            properties: vec![scope.id.clone()],
            standards: state.standards.for_property(chain, &scope.id),
        }),
        ScopeLevel::Region => chain.region(&scope.id).map(|_| Resolved {
            scope: scope.clone(),
            properties: chain
                .properties_in_region(&scope.id)
                .map(str::to_string)
                .collect(),
            standards: state.standards.for_region(&scope.id),
        }),
        ScopeLevel::Chain => Some(Resolved {
            scope: Scope {
                level: ScopeLevel::Chain as i32,
                id: String::new(),
            },
            properties: chain.properties.iter().map(|p| p.id.clone()).collect(),
            standards: state.standards.default.clone(),
        }),
        ScopeLevel::Unspecified => None,
    }
}

/// The widest scope the caller sees (the league table's default).
pub fn widest(caller: &Caller) -> Scope {
    match &caller.principal.scope {
        Seen::Chain => Scope {
            level: ScopeLevel::Chain as i32,
            id: String::new(),
        },
        Seen::Region(r) => Scope {
            level: ScopeLevel::Region as i32,
            id: r.clone(),
        },
        Seen::Properties(ids) => Scope {
            level: ScopeLevel::Property as i32,
            id: ids.first().cloned().unwrap_or_default(),
        },
    }
}

/// A request's date: a real one in years 1 to 9999, what PostgreSQL and every client hold.
/// chrono reaches ±262 143 years, but a date at its ends panicked the handlers that step
/// around it (GetKpis by month, the league's previous range, the report's last 30 days;
/// R8, found by the parser fuzzing).
pub fn date(d: &Date) -> Option<NaiveDate> {
    if !(1..=9999).contains(&d.year) {
        return None;
    }
    NaiveDate::from_ymd_opt(
        d.year,
        u32::try_from(d.month).ok()?,
        u32::try_from(d.day).ok()?,
    )
}

pub fn to_date(d: NaiveDate) -> Date {
    use chrono::Datelike;
    Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

/// A required date range, start ≤ end, at most `max_days` long.
pub fn range(r: Option<&DateRange>, field: &str, max_days: i64) -> Result<(NaiveDate, NaiveDate)> {
    let Some(r) = r else {
        return Err(invalid(field, "is required"));
    };
    let mut v = guestloop_errors::FieldViolations::new();
    let start = match r.start_date.as_ref().map(date) {
        Some(Some(d)) => Some(d),
        Some(None) => {
            v.add(format!("{field}.start_date"), "is not a valid date");
            None
        }
        None => {
            v.add(format!("{field}.start_date"), "is required");
            None
        }
    };
    let end = match r.end_date.as_ref().map(date) {
        Some(Some(d)) => Some(d),
        Some(None) => {
            v.add(format!("{field}.end_date"), "is not a valid date");
            None
        }
        None => start,
    };
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            v.add(format!("{field}.end_date"), "is before start_date");
        } else if (e - s).num_days() + 1 > max_days {
            v.add(field, format!("is longer than {max_days} days"));
        }
    }
    v.into_result(|| (start.expect("checked"), end.expect("checked")))
        .map_err(MetricsError::from)
}
