//! Parsers for the values requests carry: bounded text, email, phone, ids, dates, enums. Each
//! returns the checked value or a message that the caller files under the field's name, so a
//! domain type never holds an unchecked value.

use chrono::NaiveDate;

/// Trimmed text of at most `max` characters; `None` when empty.
pub fn optional_text(value: &str, max: usize) -> Result<Option<String>, String> {
    let t = value.trim();
    if t.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err("must not contain control characters".into());
    }
    Ok((!t.is_empty()).then(|| t.to_string()))
}

/// Trimmed, non-empty text of at most `max` characters.
pub fn required_text(value: &str, max: usize) -> Result<String, String> {
    optional_text(value, max)?.ok_or_else(|| "is required".to_string())
}

/// An email address in the usual shape (local@domain.tld), lower-cased domain.
pub fn email(value: &str) -> Result<Option<String>, String> {
    let t = value.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let bad = || "is not an email address".to_string();
    if t.len() > 254 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = t.rsplit_once('@').ok_or_else(bad)?;
    if local.is_empty() || local.len() > 64 || local.contains('@') {
        return Err(bad());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels.iter().any(|l| {
            l.is_empty()
                || l.len() > 63
                || l.starts_with('-')
                || l.ends_with('-')
                || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
    {
        return Err(bad());
    }
    Ok(Some(format!("{local}@{}", domain.to_lowercase())))
}

/// A phone number in E.164 ("+8613800138000"); spaces, dashes, dots and brackets are removed.
pub fn phone(value: &str) -> Result<Option<String>, String> {
    let t: String = value
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    if t.is_empty() {
        return Ok(None);
    }
    let digits = t
        .strip_prefix('+')
        .ok_or("must be in E.164 form, starting with +")?;
    if !(7..=15).contains(&digits.len())
        || !digits.chars().all(|c| c.is_ascii_digit())
        || digits.starts_with('0')
    {
        return Err("is not an E.164 phone number".into());
    }
    Ok(Some(t))
}

/// A UUID given as a string.
pub fn uuid(value: &str) -> Result<uuid::Uuid, String> {
    if value.trim().is_empty() {
        return Err("is required".into());
    }
    uuid::Uuid::parse_str(value.trim()).map_err(|_| "is not a valid id".to_string())
}

/// A real calendar date; `None` when all parts are zero (unset).
pub fn date(year: i32, month: i32, day: i32) -> Result<Option<NaiveDate>, String> {
    if (year, month, day) == (0, 0, 0) {
        return Ok(None);
    }
    let (Ok(m), Ok(d)) = (u32::try_from(month), u32::try_from(day)) else {
        return Err("is not a real date".into());
    };
    NaiveDate::from_ymd_opt(year, m, d)
        .map(Some)
        .ok_or_else(|| "is not a real date".into())
}

/// A proto enum value this server knows, rejecting numbers outside the enum.
pub fn known_enum<E: TryFrom<i32>>(value: i32) -> Result<E, String> {
    E::try_from(value).map_err(|_| format!("{value} is not a known value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            email(" Li.Wei@Example.COM ").unwrap().unwrap(),
            "Li.Wei@example.com"
        );
        assert_eq!(email("").unwrap(), None);
        for bad in [
            "no-at",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "@b.com",
            "a@-b.com",
            "a@b..com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert_eq!(
            phone("+86 138-0013-8000").unwrap().unwrap(),
            "+8613800138000"
        );
        for bad in ["13800138000", "+0123456", "+12", "+86abc12345"] {
            assert!(phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_and_text() {
        assert!(date(2023, 2, 29).is_err());
        assert_eq!(date(0, 0, 0).unwrap(), None);
        assert!(date(2024, 2, 29).unwrap().is_some());
        assert!(required_text("   ", 10).is_err());
        assert!(optional_text(&"x".repeat(11), 10).is_err());
        assert!(optional_text("a\u{0007}b", 10).is_err());
    }
}
