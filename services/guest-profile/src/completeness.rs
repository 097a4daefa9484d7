//! Profile completeness: the share of the chain's required fields that a profile has filled.

use crate::domain::Profile;

/// (score 0-100, missing field paths) against `required`.
pub fn score(p: &Profile, required: &[String]) -> (i32, Vec<String>) {
    if required.is_empty() {
        return (100, Vec::new());
    }
    let missing: Vec<String> = required.iter().filter(|f| !filled(p, f)).cloned().collect();
    let filled = required.len() - missing.len();
    ((filled * 100 / required.len()) as i32, missing)
}

fn filled(p: &Profile, field: &str) -> bool {
    match field {
        "given_name" => p.given_name.is_some(),
        "family_name" => p.family_name.is_some(),
        "contacts.email" => p.email.is_some(),
        "contacts.phone" => p.phone.is_some(),
        "contacts.wechat_id" => p.wechat_id.is_some(),
        "language" => p.language.is_some(),
        "birthday" => p.birthday.is_some(),
        "segment" => p.segment != 0,
        "tier" => p.tier != 0,
        "loyalty_number" => p.loyalty_number.is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_required_fields() {
        let required: Vec<String> = ["given_name", "contacts.email", "birthday", "tier"]
            .map(String::from)
            .to_vec();
        let mut p = Profile {
            given_name: Some("Wei".into()),
            ..Profile::default()
        };
        assert_eq!(
            score(&p, &required),
            (
                25,
                vec!["contacts.email".into(), "birthday".into(), "tier".into()]
            )
        );
        p.email = Some("w@example.com".into());
        p.birthday = chrono::NaiveDate::from_ymd_opt(1990, 1, 2);
        p.tier = 3;
        assert_eq!(score(&p, &required), (100, vec![]));
    }
}
