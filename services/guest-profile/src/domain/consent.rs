//! A consent decision for one channel and purpose, checked.

use chrono::{DateTime, Utc};
use guestloop_errors::FieldViolations;
use guestloop_errors::parse::{known_enum, required_text, uuid};
use guestloop_proto::common::v1::{ConsentPurpose, ContactChannel};
use guestloop_proto::guestprofile::v1 as pb;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct ConsentInput {
    pub guest_id: Uuid,
    pub channel: ContactChannel,
    pub purpose: ConsentPurpose,
    pub granted: bool,
    pub source: String,
    pub record_time: DateTime<Utc>,
}

impl TryFrom<pb::SetConsentRequest> for ConsentInput {
    type Error = FieldViolations;

    fn try_from(req: pb::SetConsentRequest) -> Result<Self, Self::Error> {
        let mut v = FieldViolations::new();
        let guest_id = v.check("guest_id", uuid(&req.guest_id));
        let Some(c) = req.consent else {
            v.add("consent", "is required");
            return Err(v);
        };
        let channel = v.check(
            "consent.channel",
            known_enum::<ContactChannel>(c.channel).and_then(|ch| {
                if ch == ContactChannel::Unspecified {
                    Err("is required".into())
                } else {
                    Ok(ch)
                }
            }),
        );
        let purpose = v.check(
            "consent.purpose",
            known_enum::<ConsentPurpose>(c.purpose).and_then(|p| {
                if p == ConsentPurpose::Unspecified {
                    Err("is required".into())
                } else {
                    Ok(p)
                }
            }),
        );
        let source = v.check("consent.source", required_text(&c.source, 100));
        let now = Utc::now();
        let record_time = match c.record_time {
            None => Some(now),
            Some(ts) => match DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32) {
                Some(t) if t > now + chrono::Duration::minutes(5) => {
                    v.add("consent.record_time", "is in the future");
                    None
                }
                Some(t) => Some(t),
                None => {
                    v.add("consent.record_time", "is not a valid time");
                    None
                }
            },
        };
        if !v.is_empty() {
            return Err(v);
        }
        Ok(Self {
            guest_id: guest_id.expect("checked"),
            channel: channel.expect("checked"),
            purpose: purpose.expect("checked"),
            granted: c.granted,
            source: source.expect("checked"),
            record_time: record_time.expect("checked"),
        })
    }
}
