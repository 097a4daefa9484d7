//! guest-profile's tables: the only place that writes SQL. Queries take an executor so the
//! handlers decide what shares a transaction.

pub mod contact_reads;
pub mod erasures;
pub mod guests;
pub mod privacy;
pub mod stay_care;
pub mod stays;

use crate::domain::{Preferences, Profile, SpecialNeed};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use uuid::Uuid;

/// A guest as stored.
#[derive(Debug, Clone)]
pub struct GuestRecord {
    pub id: Uuid,
    pub home_property_id: String,
    pub profile: Profile,
    pub completeness_score: i32,
    pub merged_into: Option<Uuid>,
    pub erased: bool,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct GuestRow {
    id: Uuid,
    home_property_id: String,
    given_name: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    wechat_id: Option<String>,
    language: Option<String>,
    birthday: Option<NaiveDate>,
    anniversary: Option<NaiveDate>,
    segment: i16,
    tier: i16,
    loyalty_number: Option<String>,
    preferences: Json<Preferences>,
    special_needs: Json<Vec<SpecialNeed>>,
    notes: Option<String>,
    completeness_score: i16,
    merged_into: Option<Uuid>,
    erased: bool,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
}

pub(crate) const GUEST_COLUMNS: &str = "g.id, g.home_property_id, g.given_name, g.family_name, g.email, g.phone, \
     g.wechat_id, g.language, g.birthday, g.anniversary, g.segment, g.tier, g.loyalty_number, g.preferences, \
     g.special_needs, g.notes, g.completeness_score, g.merged_into, g.erased, \
     g.create_time, g.update_time";

impl From<GuestRow> for GuestRecord {
    fn from(r: GuestRow) -> Self {
        Self {
            id: r.id,
            home_property_id: r.home_property_id,
            profile: Profile {
                given_name: r.given_name,
                family_name: r.family_name,
                email: r.email,
                phone: r.phone,
                wechat_id: r.wechat_id,
                language: r.language,
                birthday: r.birthday,
                anniversary: r.anniversary,
                segment: i32::from(r.segment),
                tier: i32::from(r.tier),
                loyalty_number: r.loyalty_number,
                preferences: r.preferences.0,
                special_needs: r.special_needs.0,
                notes: r.notes,
            },
            completeness_score: i32::from(r.completeness_score),
            merged_into: r.merged_into,
            erased: r.erased,
            create_time: r.create_time,
            update_time: r.update_time,
        }
    }
}

/// A stay as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StayRecord {
    pub id: Uuid,
    pub guest_id: Uuid,
    pub property_id: String,
    pub pms_reservation_id: String,
    pub status: i16,
    pub arrival_date: NaiveDate,
    pub departure_date: NaiveDate,
    pub room_number: Option<String>,
    pub rate_code: Option<String>,
    pub booking_channel: Option<String>,
    pub spend_currency: Option<String>,
    pub spend_minor: Option<i64>,
    pub checked_out_time: Option<DateTime<Utc>>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

/// The visibility filter every guest query applies: `properties` is an SQL text[]
/// expression for the caller's visible properties (NULL for the whole chain); a guest `g`
/// is visible through their home property or any stay.
pub(crate) fn visible_through(properties: &str) -> String {
    format!(
        "({properties} IS NULL OR g.home_property_id = ANY({properties}) \
         OR EXISTS (SELECT 1 FROM stays s WHERE s.guest_id = g.id AND s.property_id = ANY({properties})))"
    )
}

/// [`visible_through`] the query's first parameter.
pub(crate) fn visible_through_param() -> String {
    visible_through("$1::text[]")
}
