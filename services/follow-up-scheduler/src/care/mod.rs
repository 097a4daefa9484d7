//! VIP and frequent-guest care before arrival (issue 13). guest-profile's StayBooked says a
//! stay was booked, with the guest's tier, their earlier stays and the profile's care facts
//! (preferences, special needs). For a VIP tier (`[chain] vip_tiers`), or a guest with at least
//! `frequent_after_stays` earlier stays, the property gets pre-arrival tasks (kind
//! VIP_CARE): a welcome amenity, the room to the guest's preferences, their special needs
//! — each configured task the guest has anything for, due its `[care.pre_arrival]` lead time
//! before the arrival (the arrival date at `arrival_time`, the property's local time).
//!
//! This file is the pure part: the booking parsed (TryFrom) and what to create when;
//! plans.rs writes it. The care facts are copied into the tasks' instructions only, which
//! an erasure blanks like any task's text (tasks.rs `erase_guest`).

pub mod plans;

use crate::settings::CareSettings;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use guestloop_config::ChainDirectory;
use guestloop_proto::events::v1::StayBooked;
use guestloop_proto::guestprofile::v1::SpecialNeedKind;

/// A booked stay, as the care plan needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Booking {
    pub stay_id: String,
    pub guest_id: String,
    pub property_id: String,
    pub arrival: NaiveDate,
    /// guestprofile.v1.Tier.
    pub tier: i32,
    pub previous_stays: u32,
    pub care: Care,
}

/// What the property prepares from: the profile's preferences and special needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Care {
    pub room_type: String,
    pub pillow: String,
    pub floor: String,
    pub dietary: Vec<String>,
    pub allergies: Vec<String>,
    /// (kind, description).
    pub special_needs: Vec<(SpecialNeedKind, String)>,
}

impl TryFrom<&StayBooked> for Booking {
    /// The fields that make the event unusable.
    type Error = Vec<&'static str>;

    fn try_from(b: &StayBooked) -> Result<Self, Self::Error> {
        let mut bad = Vec::new();
        let id = |field, value: &str, bad: &mut Vec<&'static str>| {
            let v = value.trim();
            if v.is_empty() || v.len() > 100 {
                bad.push(field);
            }
            v.to_string()
        };
        let stay_id = id("stay_id", &b.stay_id, &mut bad);
        let guest_id = id("guest_id", &b.guest_id, &mut bad);
        let property_id = id("property_id", &b.property_id, &mut bad);
        let arrival = b.arrival_date.as_ref().and_then(crate::domain::date);
        if arrival.is_none() {
            bad.push("arrival_date");
        }
        if !bad.is_empty() {
            return Err(bad);
        }
        let c = b.care.clone().unwrap_or_default();
        let text = |s: &str| s.trim().to_string();
        let list = |l: &[String]| -> Vec<String> {
            l.iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Ok(Booking {
            stay_id,
            guest_id,
            property_id,
            arrival: arrival.expect("checked"),
            tier: b.tier,
            previous_stays: u32::try_from(b.previous_stays).unwrap_or(0),
            care: Care {
                room_type: text(&c.room_type),
                pillow: text(&c.pillow),
                floor: text(&c.floor),
                dietary: list(&c.dietary),
                allergies: list(&c.allergies),
                special_needs: c
                    .special_needs
                    .iter()
                    .filter(|n| !n.description.trim().is_empty())
                    .map(|n| {
                        (
                            SpecialNeedKind::try_from(n.kind).unwrap_or_default(),
                            n.description.trim().to_string(),
                        )
                    })
                    .collect(),
            },
        })
    }
}

/// One kind of pre-arrival task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prep {
    WelcomeAmenity,
    RoomPreferences,
    SpecialNeeds,
}

impl Prep {
    pub const ALL: [Prep; 3] = [
        Prep::WelcomeAmenity,
        Prep::RoomPreferences,
        Prep::SpecialNeeds,
    ];

    /// Its name in `[care.pre_arrival]` and in the task's key.
    pub fn name(self) -> &'static str {
        match self {
            Prep::WelcomeAmenity => "welcome_amenity",
            Prep::RoomPreferences => "room_preferences",
            Prep::SpecialNeeds => "special_needs",
        }
    }

    pub fn from_name(name: &str) -> Option<Prep> {
        Prep::ALL.into_iter().find(|p| p.name() == name)
    }

    /// How long before arrival it is due; zero: not created.
    pub fn lead(self, s: &CareSettings) -> std::time::Duration {
        let l = &s.pre_arrival;
        match self {
            Prep::WelcomeAmenity => l.welcome_amenity,
            Prep::RoomPreferences => l.room_preferences,
            Prep::SpecialNeeds => l.special_needs,
        }
        .as_duration()
    }

    /// (title, instructions) for this guest, or `None` when they have nothing for it.
    /// Titles name no one; instructions hold the care facts and no dates (a moved arrival
    /// re-times the task, its words stay).
    fn text(self, b: &Booking, vip: bool) -> Option<(String, String)> {
        let who = if vip {
            "a VIP guest".to_string()
        } else {
            format!("a frequent guest ({} earlier stays)", b.previous_stays)
        };
        let c = &b.care;
        let mut lines: Vec<String> = Vec::new();
        let title = match self {
            Prep::WelcomeAmenity => {
                lines.push("Place a welcome amenity in the room before the guest arrives.".into());
                if !c.dietary.is_empty() {
                    lines.push(format!("Dietary: {}", c.dietary.join(", ")));
                }
                if !c.allergies.is_empty() {
                    lines.push(format!("Allergies: {}", c.allergies.join(", ")));
                }
                format!("Welcome amenity for {who} arriving")
            }
            Prep::RoomPreferences => {
                for (label, value) in [
                    ("Room type", &c.room_type),
                    ("Pillow", &c.pillow),
                    ("Floor", &c.floor),
                ] {
                    if !value.is_empty() {
                        lines.push(format!("{label}: {value}"));
                    }
                }
                if lines.is_empty() {
                    return None;
                }
                format!("Prepare the room to the preferences of {who} arriving")
            }
            Prep::SpecialNeeds => {
                for (kind, description) in &c.special_needs {
                    let label = match kind {
                        SpecialNeedKind::Accessibility => "Accessibility",
                        SpecialNeedKind::Medical => "Medical",
                        SpecialNeedKind::Unspecified => "Need",
                    };
                    lines.push(format!("{label}: {description}"));
                }
                if lines.is_empty() {
                    return None;
                }
                format!("Prepare for the special needs of {who} arriving")
            }
        };
        Some((title, clip(&lines.join("\n"), 2000)))
    }
}

/// At most `max` characters (the API's bound on a task's instructions).
fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A pre-arrival task to create.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub prep: Prep,
    pub due: DateTime<Utc>,
    pub title: String,
    pub instructions: String,
}

/// When the guest is expected: the arrival date at `time`, local at the property.
pub fn arrival_at(
    chain: &ChainDirectory,
    property_id: &str,
    date: NaiveDate,
    time: NaiveTime,
) -> Option<DateTime<Utc>> {
    let tz: Tz = chain
        .property(property_id)?
        .time_zone
        .parse()
        .unwrap_or(chrono_tz::UTC);
    Some(crate::plan::slot::at_local(tz, date, time))
}

/// A task `lead` before `arrival`, not earlier than now; `None` once the guest is due (the
/// time to prepare has passed).
pub fn due(
    arrival: DateTime<Utc>,
    lead: std::time::Duration,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if arrival <= now {
        return None;
    }
    let lead = Duration::from_std(lead).unwrap_or(Duration::MAX);
    let due = arrival.checked_sub_signed(lead).unwrap_or(now).max(now);
    Some(crate::domain::micros(due))
}

/// The pre-arrival tasks of a booking (pure): none when the guest is not cared for, the
/// property is unknown or the arrival has come.
pub fn plan(
    b: &Booking,
    s: &CareSettings,
    chain: &ChainDirectory,
    now: DateTime<Utc>,
) -> Vec<Planned> {
    let vip = chain.is_vip(b.tier);
    if !s.enabled || !s.cares_for(vip, b.previous_stays) {
        return Vec::new();
    }
    let Some(arrival) = arrival_at(chain, &b.property_id, b.arrival, s.arrival_time) else {
        return Vec::new();
    };
    Prep::ALL
        .into_iter()
        .filter(|p| !p.lead(s).is_zero())
        .filter_map(|prep| {
            let due = due(arrival, prep.lead(s), now)?;
            let (title, instructions) = prep.text(b, vip)?;
            Some(Planned {
                prep,
                due,
                title,
                instructions,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestloop_proto::common::v1::Date;
    use guestloop_proto::events::v1::StayCare;
    use guestloop_proto::guestprofile::v1::{SpecialNeed, Tier};

    fn settings() -> crate::Settings {
        let mut layers: Vec<&str> = crate::default_layers().to_vec();
        layers.push(guestloop_testkit::TEST_CHAIN_TOML);
        guestloop_config::load_offline(&layers).expect("the default settings load")
    }

    #[test]
    fn the_chains_tier_names_are_the_guest_profiles() {
        // `[chain] vip_tiers` is parsed in libs/config, which does not see the proto.
        for (name, number) in guestloop_config::TIERS {
            assert_eq!(Tier::from_str_name(name).map(|t| t as i32), Some(number));
        }
        let all = [
            Tier::Potential,
            Tier::Regular,
            Tier::VipSilver,
            Tier::VipGold,
            Tier::VipPlatinum,
        ];
        assert_eq!(guestloop_config::TIERS.len(), all.len());
        // The chain's default: silver and up.
        let vip: Vec<Tier> = all
            .into_iter()
            .filter(|t| settings().common.chain.is_vip(*t as i32))
            .collect();
        assert_eq!(vip, [Tier::VipSilver, Tier::VipGold, Tier::VipPlatinum]);
    }

    fn booked(tier: Tier, previous_stays: i32) -> StayBooked {
        StayBooked {
            stay_id: "s-1".into(),
            guest_id: "g-1".into(),
            property_id: "sh-bund".into(),
            arrival_date: Some(Date {
                year: 2026,
                month: 12,
                day: 10,
            }),
            tier: tier as i32,
            previous_stays,
            care: Some(StayCare {
                pillow: "buckwheat".into(),
                allergies: vec!["peanuts".into()],
                special_needs: vec![SpecialNeed {
                    kind: SpecialNeedKind::Accessibility as i32,
                    description: "step-free access".into(),
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_booking_without_ids_or_arrival_is_refused_naming_them() {
        let b = StayBooked {
            stay_id: " ".into(),
            ..Default::default()
        };
        assert_eq!(
            Booking::try_from(&b).unwrap_err(),
            ["stay_id", "guest_id", "property_id", "arrival_date"]
        );
        let mut b = booked(Tier::VipGold, 0);
        b.arrival_date = Some(Date {
            year: 2026,
            month: 2,
            day: 30,
        });
        assert_eq!(Booking::try_from(&b).unwrap_err(), ["arrival_date"]);
    }

    #[test]
    fn vips_and_frequent_guests_get_the_configured_tasks_before_arrival() {
        let s = settings();
        let now = utc("2026-12-01T00:00:00Z");
        // Arrival 2026-12-10 14:00 in Shanghai = 06:00Z.
        let arrival = utc("2026-12-10T06:00:00Z");
        let cases = [
            ("VIP", Tier::VipGold, 0, 3),
            ("regular, 4 stays", Tier::Regular, 4, 0),
            ("regular, 5 stays", Tier::Regular, 5, 3),
            ("no tier, 9 stays", Tier::Unspecified, 9, 3),
        ];
        for (what, tier, stays, n) in cases {
            let b = Booking::try_from(&booked(tier, stays)).unwrap();
            let planned = plan(&b, &s.care, &s.common.chain, now);
            assert_eq!(planned.len(), n, "{what}: {planned:?}");
            for p in &planned {
                assert_eq!(
                    arrival - p.due,
                    Duration::from_std(p.prep.lead(&s.care)).unwrap(),
                    "{what}"
                );
            }
        }
        let b = Booking::try_from(&booked(Tier::VipGold, 0)).unwrap();
        let planned = plan(&b, &s.care, &s.common.chain, now);
        assert!(planned[0].instructions.contains("Allergies: peanuts"));
        assert_eq!(planned[1].instructions, "Pillow: buckwheat");
        assert_eq!(planned[2].instructions, "Accessibility: step-free access");
    }

    #[test]
    fn a_late_booking_is_due_now_and_a_past_arrival_gets_nothing() {
        let s = settings();
        let b = Booking::try_from(&booked(Tier::VipGold, 0)).unwrap();
        let now = utc("2026-12-10T05:00:00Z"); // an hour before arrival
        let planned = plan(&b, &s.care, &s.common.chain, now);
        assert_eq!(planned.len(), 3);
        assert!(planned.iter().all(|p| p.due == now));
        assert!(plan(&b, &s.care, &s.common.chain, utc("2026-12-10T06:00:00Z")).is_empty());
    }

    #[test]
    fn nothing_to_prepare_leaves_a_task_out() {
        let s = settings();
        let mut e = booked(Tier::VipPlatinum, 0);
        e.care = None;
        let b = Booking::try_from(&e).unwrap();
        let planned = plan(&b, &s.care, &s.common.chain, utc("2026-12-01T00:00:00Z"));
        let names: Vec<_> = planned.iter().map(|p| p.prep.name()).collect();
        assert_eq!(names, ["welcome_amenity"]);
    }
}
