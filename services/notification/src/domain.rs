//! Requests parsed into checked domain values, and the rules of delivery that need no I/O:
//! which statuses may be cancelled, quiet hours in a property's time zone, backoff.

use crate::error::Result;
use crate::templates::{Templates, normalise_language};
use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use guestloop_config::{ChainDirectory, LocalTimeRange};
use guestloop_errors::{FieldViolations, parse};
use guestloop_proto::common::v1::{ConsentPurpose, ContactChannel, Urgency};
use guestloop_proto::notification::v1::{
    self as pb, DeliveryStatus, MessageKind, RecipientKind, StaffRole, recipient,
};
use std::time::Duration;

pub const MAX_KEY_CHARS: usize = 200;
pub const MAX_VARIABLE_CHARS: usize = 2000;
/// A variable declared as trusted HTML (`templates.html_variables`, e.g. the daily report
/// page metrics renders) may be a whole page.
pub const MAX_HTML_VARIABLE_CHARS: usize = 1_000_000;

/// A checked SendMessage request.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub idempotency_key: String,
    /// The spec as it will be kept and answered (normalised).
    pub spec: pb::MessageSpec,
    pub recipient_kind: RecipientKind,
    pub guest_id: String,
    pub kind: MessageKind,
    pub urgency: Urgency,
    pub not_before: Option<DateTime<Utc>>,
}

pub fn parse_role(name: &str) -> Option<StaffRole> {
    StaffRole::from_str_name(&format!("STAFF_ROLE_{}", name.to_ascii_uppercase()))
        .filter(|r| *r != StaffRole::Unspecified)
}

pub fn timestamp(t: &prost_types::Timestamp) -> std::result::Result<DateTime<Utc>, String> {
    guestloop_proto::time::from_timestamp(t).ok_or_else(|| "is not a valid time".to_string())
}

fn optional_uuid(value: &str) -> std::result::Result<String, String> {
    if value.trim().is_empty() {
        return Ok(String::new());
    }
    parse::uuid(value).map(|u| u.to_string())
}

pub fn parse_send(
    req: pb::SendMessageRequest,
    chain: &ChainDirectory,
    templates: &Templates,
) -> Result<NewMessage> {
    let mut v = FieldViolations::new();
    let key = v.check(
        "idempotency_key",
        parse::required_text(&req.idempotency_key, MAX_KEY_CHARS),
    );
    let Some(mut spec) = req.message else {
        v.add("message", "is required");
        return Err(v.into());
    };
    let kind = match MessageKind::try_from(spec.kind) {
        Ok(MessageKind::Unspecified) => {
            v.add("message.kind", "is required");
            None
        }
        Ok(k) => Some(k),
        Err(_) => {
            v.add(
                "message.kind",
                format!("{} is not a known value", spec.kind),
            );
            None
        }
    };
    let mut recipient_kind = RecipientKind::Unspecified;
    let mut guest_id = String::new();
    match spec.recipient.as_mut().and_then(|r| r.kind.as_mut()) {
        None => v.add("message.recipient", "is required: a guest or staff"),
        Some(recipient::Kind::Guest(g)) => {
            recipient_kind = RecipientKind::Guest;
            if let Some(id) = v.check("message.recipient.guest.guest_id", parse::uuid(&g.guest_id))
            {
                guest_id = id.to_string();
                g.guest_id = guest_id.clone();
            }
            if kind.is_some_and(|k| k as i32 >= 20) {
                v.add(
                    "message.kind",
                    "is a staff message kind but the recipient is a guest",
                );
            }
            match ConsentPurpose::try_from(spec.purpose) {
                Ok(ConsentPurpose::Unspecified) => {
                    v.add("message.purpose", "is required for guest messages")
                }
                Ok(_) => {}
                Err(_) => v.add(
                    "message.purpose",
                    format!("{} is not a known value", spec.purpose),
                ),
            }
        }
        Some(recipient::Kind::Staff(s)) => {
            recipient_kind = RecipientKind::Staff;
            if kind.is_some_and(|k| (k as i32) < 20) {
                v.add(
                    "message.kind",
                    "is a guest message kind but the recipient is staff",
                );
            }
            let role = StaffRole::try_from(s.role).unwrap_or(StaffRole::Unspecified);
            if s.staff_id.trim().is_empty() && role == StaffRole::Unspecified {
                v.add(
                    "message.recipient.staff.role",
                    "a role or a staff_id is required",
                );
            }
            if StaffRole::try_from(s.role).is_err() {
                v.add(
                    "message.recipient.staff.role",
                    format!("{} is not a known value", s.role),
                );
            }
            if s.property_id.trim().is_empty() {
                s.property_id = spec.property_id.trim().to_string();
            } else if chain.property(s.property_id.trim()).is_none() {
                v.add(
                    "message.recipient.staff.property_id",
                    "is not a property of the chain",
                );
            }
            if role == StaffRole::RegionalManager
                && !s.region_id.is_empty()
                && chain.region(&s.region_id).is_none()
            {
                v.add(
                    "message.recipient.staff.region_id",
                    "is not a region of the chain",
                );
            }
        }
    }
    match parse::required_text(&spec.property_id, 100) {
        Err(e) => v.add("message.property_id", e),
        Ok(p) if chain.property(&p).is_none() => v.add(
            "message.property_id",
            format!("`{p}` is not a property of the chain"),
        ),
        Ok(p) => spec.property_id = p,
    }
    if let Some(k) = kind {
        for (name, value) in &spec.variables {
            if !templates.is_declared(k, name) {
                v.add(
                    format!("message.variables[{name}]"),
                    "is not a variable this kind's templates declare",
                );
            } else {
                let max = if templates.is_html(k, name) {
                    MAX_HTML_VARIABLE_CHARS
                } else {
                    MAX_VARIABLE_CHARS
                };
                if value.chars().count() > max {
                    v.add(
                        format!("message.variables[{name}]"),
                        format!("must be at most {max} characters"),
                    );
                }
            }
        }
    }
    for (i, c) in spec.channel_preference.iter().enumerate() {
        match ContactChannel::try_from(*c) {
            Ok(ContactChannel::Unspecified) | Ok(ContactChannel::PhoneCall) | Err(_) => v.add(
                format!("message.channel_preference[{i}]"),
                "must be email, sms, wechat or app_push",
            ),
            Ok(_) => {}
        }
    }
    let urgency = match Urgency::try_from(spec.urgency) {
        Ok(Urgency::Unspecified) => Urgency::Normal,
        Ok(u) => u,
        Err(_) => {
            v.add(
                "message.urgency",
                format!("{} is not a known value", spec.urgency),
            );
            Urgency::Normal
        }
    };
    spec.urgency = urgency as i32;
    if let Some(c) = v.check("message.case_id", optional_uuid(&spec.case_id)) {
        spec.case_id = c;
    }
    if let Some(s) = v.check("message.stay_id", optional_uuid(&spec.stay_id)) {
        spec.stay_id = s;
    }
    if let Some(t) = v.check("message.task_id", parse::optional_text(&spec.task_id, 200)) {
        spec.task_id = t.unwrap_or_default();
    }
    if spec.language.trim().is_empty() {
        // White space is no language (before R8 it was kept and stored as given).
        spec.language.clear();
    } else {
        let l = normalise_language(&spec.language);
        if crate::templates::LANGUAGES.contains(&l.as_str()) {
            spec.language = l;
        } else {
            v.add(
                "message.language",
                "must be a zh-CN, zh-TW or en language tag",
            );
        }
    }
    let not_before = spec
        .not_before_time
        .as_ref()
        .and_then(|t| v.check("message.not_before_time", timestamp(t)));
    let expire = spec
        .expire_time
        .as_ref()
        .and_then(|t| v.check("message.expire_time", timestamp(t)));
    if let (Some(e), nb) = (expire, not_before)
        && e <= nb.unwrap_or_else(Utc::now)
    {
        v.add(
            "message.expire_time",
            "must be after not_before_time and now",
        );
    }
    let key = v.into_result(|| key.unwrap_or_default())?;
    Ok(NewMessage {
        idempotency_key: key,
        spec,
        recipient_kind,
        guest_id,
        kind: kind.unwrap_or(MessageKind::Unspecified),
        urgency,
        not_before,
    })
}

/// Statuses a message can still be withdrawn from.
pub fn cancellable(status: DeliveryStatus) -> bool {
    matches!(
        status,
        DeliveryStatus::Queued | DeliveryStatus::Deferred | DeliveryStatus::Failed
    )
}

/// When `now` falls in the property's quiet hours, the instant they end.
pub fn quiet_until(
    now: DateTime<Utc>,
    time_zone: &str,
    quiet: &LocalTimeRange,
) -> Option<DateTime<Utc>> {
    let tz: chrono_tz::Tz = time_zone.parse().ok()?;
    let local = now.with_timezone(&tz);
    if !quiet.contains(local.time()) {
        return None;
    }
    let mut day = local.date_naive();
    if local.time() >= quiet.end {
        day = day.succ_opt()?;
    }
    let end = day.and_time(quiet.end);
    let end = tz
        .from_local_datetime(&end)
        .earliest()
        .unwrap_or_else(|| tz.from_utc_datetime(&(end + ChronoDuration::hours(1))));
    Some(end.with_timezone(&Utc))
}

/// Whether `now` is inside the daily window in the property's time zone.
pub fn within(now: DateTime<Utc>, time_zone: &str, window: &LocalTimeRange) -> bool {
    match time_zone.parse::<chrono_tz::Tz>() {
        Ok(tz) => window.contains(now.with_timezone(&tz).time()),
        Err(_) => true,
    }
}

/// Exponential backoff with full jitter in [d/2, d], d = base * 2^(n-1) capped at max.
pub fn backoff(attempt: i32, base: Duration, max: Duration) -> Duration {
    let exp = attempt.clamp(1, 30) as u32 - 1;
    let d = base.saturating_mul(2u32.saturating_pow(exp)).min(max);
    let jitter: f64 = rand::random::<f64>() * 0.5 + 0.5;
    d.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::NaiveTime;

    fn local_time(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
    }

    #[test]
    fn quiet_hours_wrap_midnight() {
        let quiet = LocalTimeRange {
            start: local_time(21, 0),
            end: local_time(8, 0),
        };
        // 23:30 in Shanghai = 15:30 UTC; quiet until 08:00 local next day = 00:00 UTC.
        let now = Utc.with_ymd_and_hms(2025, 3, 1, 15, 30, 0).unwrap();
        assert_eq!(
            quiet_until(now, "Asia/Shanghai", &quiet),
            Some(Utc.with_ymd_and_hms(2025, 3, 2, 0, 0, 0).unwrap())
        );
        // 03:00 local = 19:00 UTC the day before; same end.
        let now = Utc.with_ymd_and_hms(2025, 3, 1, 19, 0, 0).unwrap();
        assert_eq!(
            quiet_until(now, "Asia/Shanghai", &quiet),
            Some(Utc.with_ymd_and_hms(2025, 3, 2, 0, 0, 0).unwrap())
        );
        let noon = Utc.with_ymd_and_hms(2025, 3, 1, 4, 0, 0).unwrap();
        assert_eq!(quiet_until(noon, "Asia/Shanghai", &quiet), None);
    }

    #[test]
    fn backoff_grows_and_caps() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for n in 1..10 {
            let d = backoff(n, base, max);
            let full = base.saturating_mul(2u32.pow(n as u32 - 1)).min(max);
            assert!(d >= full / 2 && d <= full, "{n}: {d:?}");
        }
    }
}
