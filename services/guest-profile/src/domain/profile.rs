//! A guest's profile data and how request fields become it. One function knows every field
//! path, so create (all paths) and update (the mask's paths) parse the same way.

use chrono::NaiveDate;
use guestloop_errors::FieldViolations;
use guestloop_errors::parse::{date, email, known_enum, optional_text, phone, required_text};
use guestloop_proto::guestprofile::v1 as pb;
use serde::{Deserialize, Serialize};

/// Field paths UpdateGuest accepts in its mask.
pub const UPDATABLE_PATHS: [&str; 23] = [
    "given_name",
    "family_name",
    "contacts",
    "contacts.email",
    "contacts.phone",
    "contacts.wechat_id",
    "language",
    "birthday",
    "anniversary",
    "segment",
    "tier",
    "loyalty_number",
    "preferences",
    "preferences.room_type",
    "preferences.pillow",
    "preferences.floor",
    "preferences.dietary",
    "preferences.allergies",
    "preferences.free_text",
    "special_needs",
    "notes",
    // Whole-message aliases some clients send.
    "name",
    "contact",
];

const NAME_MAX: usize = 100;
const SHORT_MAX: usize = 100;
const LIST_MAX: usize = 20;
const FREE_TEXT_MAX: usize = 2000;
const NOTES_MAX: usize = 4000;
const LANGUAGES: [&str; 3] = ["zh-CN", "zh-TW", "en"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Preferences {
    pub room_type: Option<String>,
    pub pillow: Option<String>,
    pub floor: Option<String>,
    #[serde(default)]
    pub dietary: Vec<String>,
    #[serde(default)]
    pub allergies: Vec<String>,
    pub free_text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecialNeed {
    pub kind: i32,
    pub description: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub wechat_id: Option<String>,
    pub language: Option<String>,
    pub birthday: Option<NaiveDate>,
    /// A yearly date the guest celebrates (e.g. a wedding), with its year.
    pub anniversary: Option<NaiveDate>,
    pub segment: i32,
    pub tier: i32,
    pub loyalty_number: Option<String>,
    pub preferences: Preferences,
    pub special_needs: Vec<SpecialNeed>,
    pub notes: Option<String>,
}

impl Profile {
    /// A new profile from every field of `guest`; `prefix` names the message ("guest").
    pub fn parse_new(guest: &pb::Guest, prefix: &str, v: &mut FieldViolations) -> Profile {
        let mut p = Profile::default();
        for path in [
            "given_name",
            "family_name",
            "contacts",
            "language",
            "birthday",
            "anniversary",
            "segment",
            "tier",
            "loyalty_number",
            "preferences",
            "special_needs",
            "notes",
        ] {
            p.apply(path, guest, prefix, v);
        }
        if p.given_name.is_none() && p.family_name.is_none() {
            v.add(
                format!("{prefix}.family_name"),
                "a guest needs a given or family name",
            );
        }
        p
    }

    /// Copies one field path from `guest` into this profile, recording violations.
    /// Returns false for a path that is not a field of Guest (the caller reports it).
    pub fn apply(
        &mut self,
        path: &str,
        g: &pb::Guest,
        prefix: &str,
        v: &mut FieldViolations,
    ) -> bool {
        let f = |name: &str| format!("{prefix}.{name}");
        let contacts = g.contacts.clone().unwrap_or_default();
        let prefs = g.preferences.clone().unwrap_or_default();
        match path {
            "given_name" => {
                self.given_name = v
                    .check(&f(path), optional_text(&g.given_name, NAME_MAX))
                    .flatten()
            }
            "family_name" => {
                self.family_name = v
                    .check(&f(path), optional_text(&g.family_name, NAME_MAX))
                    .flatten()
            }
            "name" => {
                self.apply("given_name", g, prefix, v);
                self.apply("family_name", g, prefix, v);
            }
            "contacts" | "contact" => {
                for p in ["contacts.email", "contacts.phone", "contacts.wechat_id"] {
                    self.apply(p, g, prefix, v);
                }
            }
            "contacts.email" => self.email = v.check(&f(path), email(&contacts.email)).flatten(),
            "contacts.phone" => self.phone = v.check(&f(path), phone(&contacts.phone)).flatten(),
            "contacts.wechat_id" => {
                self.wechat_id = v.check(&f(path), wechat_id(&contacts.wechat_id)).flatten()
            }
            "language" => self.language = v.check(&f(path), language(&g.language)).flatten(),
            "birthday" => {
                let d = g.birthday.unwrap_or_default();
                self.birthday = v
                    .check(&f(path), date(d.year, d.month, d.day).and_then(past_date))
                    .flatten();
            }
            "anniversary" => {
                let d = g.anniversary.unwrap_or_default();
                self.anniversary = v
                    .check(&f(path), date(d.year, d.month, d.day).and_then(past_date))
                    .flatten();
            }
            "segment" => {
                if let Some(s) = v.check(&f(path), known_enum::<pb::Segment>(g.segment)) {
                    self.segment = s as i32;
                }
            }
            "tier" => {
                if let Some(t) = v.check(&f(path), known_enum::<pb::Tier>(g.tier)) {
                    self.tier = t as i32;
                }
            }
            "loyalty_number" => {
                self.loyalty_number = v.check(&f(path), loyalty(&g.loyalty_number)).flatten()
            }
            "preferences" => {
                for p in [
                    "preferences.room_type",
                    "preferences.pillow",
                    "preferences.floor",
                    "preferences.dietary",
                    "preferences.allergies",
                    "preferences.free_text",
                ] {
                    self.apply(p, g, prefix, v);
                }
            }
            "preferences.room_type" => {
                self.preferences.room_type = v
                    .check(&f(path), optional_text(&prefs.room_type, SHORT_MAX))
                    .flatten()
            }
            "preferences.pillow" => {
                self.preferences.pillow = v
                    .check(&f(path), optional_text(&prefs.pillow, SHORT_MAX))
                    .flatten()
            }
            "preferences.floor" => {
                self.preferences.floor = v
                    .check(&f(path), optional_text(&prefs.floor, SHORT_MAX))
                    .flatten()
            }
            "preferences.dietary" => {
                self.preferences.dietary = v
                    .check(&f(path), text_list(&prefs.dietary))
                    .unwrap_or_default()
            }
            "preferences.allergies" => {
                self.preferences.allergies = v
                    .check(&f(path), text_list(&prefs.allergies))
                    .unwrap_or_default()
            }
            "preferences.free_text" => {
                self.preferences.free_text = v
                    .check(&f(path), optional_text(&prefs.free_text, FREE_TEXT_MAX))
                    .flatten()
            }
            "special_needs" => {
                if g.special_needs.len() > LIST_MAX {
                    v.add(f(path), format!("at most {LIST_MAX} entries"));
                    return true;
                }
                let mut needs = Vec::new();
                for (i, n) in g.special_needs.iter().enumerate() {
                    let key = format!("{prefix}.special_needs[{i}]");
                    let kind = v.check(
                        &format!("{key}.kind"),
                        known_enum::<pb::SpecialNeedKind>(n.kind).and_then(|k| {
                            if k == pb::SpecialNeedKind::Unspecified {
                                Err("is required".to_string())
                            } else {
                                Ok(k)
                            }
                        }),
                    );
                    let description = v.check(
                        &format!("{key}.description"),
                        required_text(&n.description, 500),
                    );
                    if let (Some(kind), Some(description)) = (kind, description) {
                        needs.push(SpecialNeed {
                            kind: kind as i32,
                            description,
                        });
                    }
                }
                self.special_needs = needs;
            }
            "notes" => {
                self.notes = v
                    .check(&f(path), optional_text(&g.notes, NOTES_MAX))
                    .flatten()
            }
            _ => return false,
        }
        true
    }
}

/// A CreateGuest request's fields, checked: the property, the idempotency key and the new
/// profile. Violations name the request's fields.
pub fn parse_create(
    req: &pb::CreateGuestRequest,
) -> Result<(String, Option<String>, Profile), FieldViolations> {
    let mut v = FieldViolations::new();
    let property_id = v.check("property_id", required_text(&req.property_id, 64));
    let key = v
        .check("idempotency_key", optional_text(&req.idempotency_key, 128))
        .flatten();
    let profile = match &req.guest {
        Some(g) => Some(Profile::parse_new(g, "guest", &mut v)),
        None => {
            v.add("guest", "is required");
            None
        }
    };
    v.into_result(|| {
        (
            property_id.expect("checked"),
            key,
            profile.expect("checked"),
        )
    })
}

/// `current` with the fields an UpdateGuest mask names copied from `input`; violations name
/// the request's fields (`update_mask.paths[i]` for a path that is not updatable).
pub fn apply_mask(
    mut profile: Profile,
    input: &pb::Guest,
    paths: &[String],
) -> Result<Profile, FieldViolations> {
    let mut v = FieldViolations::new();
    for (i, path) in paths.iter().enumerate() {
        if !UPDATABLE_PATHS.contains(&path.as_str()) || !profile.apply(path, input, "guest", &mut v)
        {
            v.add(
                format!("update_mask.paths[{i}]"),
                format!("`{path}` is not an updatable field"),
            );
        }
    }
    if profile.given_name.is_none() && profile.family_name.is_none() {
        v.add("guest.family_name", "a guest needs a given or family name");
    }
    v.into_result(|| profile)
}

fn wechat_id(value: &str) -> Result<Option<String>, String> {
    let t = value.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let ok = (6..=20).contains(&t.len())
        && t.starts_with(|c: char| c.is_ascii_alphabetic())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(Some(t.to_string()))
    } else {
        Err("is not a WeChat id (6-20 letters, digits, _ or -, starting with a letter)".into())
    }
}

fn language(value: &str) -> Result<Option<String>, String> {
    match value.trim() {
        "" => Ok(None),
        l if LANGUAGES.contains(&l) => Ok(Some(l.to_string())),
        other => Err(format!("`{other}` is not one of {LANGUAGES:?}")),
    }
}

/// A birthday or an anniversary: a real date with its year, not in the future, not before
/// 1900 (the year counts: the anniversary greeting says how many years).
fn past_date(d: Option<NaiveDate>) -> Result<Option<NaiveDate>, String> {
    match d {
        Some(d) if d > chrono::Utc::now().date_naive() => Err("is in the future".into()),
        Some(d) if d < NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid date") => {
            Err("is before 1900".into())
        }
        other => Ok(other),
    }
}

fn loyalty(value: &str) -> Result<Option<String>, String> {
    let t = value.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.len() > 32 || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("must be at most 32 letters, digits or -".into());
    }
    Ok(Some(t.to_string()))
}

fn text_list(values: &[String]) -> Result<Vec<String>, String> {
    if values.len() > LIST_MAX {
        return Err(format!("at most {LIST_MAX} entries"));
    }
    values
        .iter()
        .map(|s| required_text(s, SHORT_MAX).map_err(|e| format!("entry {e}")))
        .collect()
}
