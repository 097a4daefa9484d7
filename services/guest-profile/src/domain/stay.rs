//! A stay as a hotel's PMS reports it, checked.

use chrono::{DateTime, NaiveDate, Utc};
use guestloop_errors::FieldViolations;
use guestloop_errors::parse::{date, known_enum, optional_text, required_text, uuid};
use guestloop_proto::guestprofile::v1 as pb;
use uuid::Uuid;

pub type StayStatus = pb::StayStatus;

#[derive(Debug, Clone, PartialEq)]
pub struct StayInput {
    pub guest_id: Uuid,
    pub property_id: String,
    pub pms_reservation_id: String,
    pub status: StayStatus,
    pub arrival_date: NaiveDate,
    pub departure_date: NaiveDate,
    pub room_number: Option<String>,
    pub rate_code: Option<String>,
    pub booking_channel: Option<String>,
    pub spend: Option<(String, i64)>,
    pub checked_out_time: Option<DateTime<Utc>>,
}

/// Clock skew we tolerate on times a PMS reports.
const SKEW_SECS: i64 = 300;

impl TryFrom<pb::UpsertStayRequest> for StayInput {
    type Error = FieldViolations;

    fn try_from(req: pb::UpsertStayRequest) -> Result<Self, Self::Error> {
        let mut v = FieldViolations::new();
        let Some(s) = req.stay else {
            return Err(FieldViolations::single("stay", "is required"));
        };
        let guest_id = v.check("stay.guest_id", uuid(&s.guest_id));
        let property_id = v.check("stay.property_id", required_text(&s.property_id, 64));
        let pms_reservation_id = v.check(
            "stay.pms_reservation_id",
            required_text(&s.pms_reservation_id, 64),
        );
        let status = v.check(
            "stay.status",
            known_enum::<StayStatus>(s.status).and_then(|st| {
                if st == StayStatus::Unspecified {
                    Err("is required".into())
                } else {
                    Ok(st)
                }
            }),
        );
        let required_date = |d: Option<guestloop_proto::common::v1::Date>| {
            let d = d.unwrap_or_default();
            date(d.year, d.month, d.day)?.ok_or_else(|| "is required".to_string())
        };
        let arrival = v.check("stay.arrival_date", required_date(s.arrival_date));
        let departure = v.check("stay.departure_date", required_date(s.departure_date));
        if let (Some(a), Some(d)) = (arrival, departure) {
            if d < a {
                v.add("stay.departure_date", "is before the arrival date");
            } else if (d - a).num_days() > 366 {
                v.add(
                    "stay.departure_date",
                    "is more than 366 nights after arrival",
                );
            }
        }
        let room_number = v
            .check("stay.room_number", optional_text(&s.room_number, 16))
            .flatten();
        let rate_code = v
            .check("stay.rate_code", optional_text(&s.rate_code, 32))
            .flatten();
        let booking_channel = v
            .check(
                "stay.booking_channel",
                optional_text(&s.booking_channel, 64),
            )
            .flatten();
        let spend = match s.total_spend {
            None => None,
            Some(m) => {
                let code_ok = m.currency_code.len() == 3
                    && m.currency_code.chars().all(|c| c.is_ascii_uppercase());
                if !code_ok {
                    v.add("stay.total_spend.currency_code", "is not an ISO 4217 code");
                }
                if m.amount_minor < 0 {
                    v.add("stay.total_spend.amount_minor", "must not be negative");
                }
                Some((m.currency_code, m.amount_minor))
            }
        };
        let now = Utc::now();
        let checked_out_time = match s.checked_out_time {
            None => None,
            Some(ts) => match DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32) {
                Some(t) if t.timestamp() > now.timestamp() + SKEW_SECS => {
                    v.add("stay.checked_out_time", "is in the future");
                    None
                }
                Some(t) => Some(t),
                None => {
                    v.add("stay.checked_out_time", "is not a valid time");
                    None
                }
            },
        };
        if checked_out_time.is_some() && status.is_some_and(|st| st != StayStatus::CheckedOut) {
            v.add(
                "stay.checked_out_time",
                "is only set with STAY_STATUS_CHECKED_OUT",
            );
        }
        if !v.is_empty() {
            return Err(v);
        }
        let status = status.expect("checked");
        Ok(Self {
            guest_id: guest_id.expect("checked"),
            property_id: property_id.expect("checked"),
            pms_reservation_id: pms_reservation_id.expect("checked"),
            status,
            arrival_date: arrival.expect("checked"),
            departure_date: departure.expect("checked"),
            room_number,
            rate_code,
            booking_channel,
            spend,
            // As given; a check-out without a time is stamped when it is stored.
            checked_out_time,
        })
    }
}
