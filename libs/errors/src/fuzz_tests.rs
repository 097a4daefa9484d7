//! Property tests of the request-value parsers (R8): every service checks its request
//! fields with these, so none may panic on any text or number, and what each accepts must
//! already be in its checked form (parsing it again gives it back unchanged).

use crate::parse::{date, email, optional_text, phone, required_text, uuid};
use chrono::Datelike;
use proptest::prelude::*;

/// Text of the kinds requests carry: any Unicode, shapes near emails, phones and ids,
/// control characters, and long runs over the limits.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        2 => "[ \t\n]{0,2}[a-zA-Z0-9._%+-]{0,12}@[a-zA-Z0-9.-]{0,12}[ \t]{0,2}",
        2 => "[+]?[ 0-9().-]{0,20}",
        1 => "[0-9a-fA-F-]{30,40}",
        1 => "[\\x00-\\x1f\\x7f\u{85}\u{2028}\u{3000}a]{0,6}",
        1 => (0usize..3000, any::<char>()).prop_map(|(n, c)| std::iter::repeat_n(c, n).collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn text_is_trimmed_bounded_and_free_of_control_characters(s in text(), max in 0usize..300) {
        match optional_text(&s, max) {
            Ok(Some(t)) => {
                prop_assert_eq!(t.as_str(), s.trim());
                prop_assert!(t.chars().count() <= max);
                prop_assert!(!t.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
            }
            Ok(None) => prop_assert!(s.trim().is_empty()),
            Err(e) => prop_assert!(!e.is_empty()),
        }
        if let Ok(t) = required_text(&s, max) {
            prop_assert!(!t.is_empty());
        }
    }

    #[test]
    fn emails_phones_and_ids_accepted_are_already_canonical(s in text()) {
        if let Ok(Some(e)) = email(&s) {
            prop_assert!(e.contains('@') && e.len() <= 254);
            prop_assert_eq!(email(&e), Ok(Some(e.clone())));
        }
        if let Ok(Some(p)) = phone(&s) {
            prop_assert!(p.starts_with('+'));
            prop_assert!((8..=16).contains(&p.len()));
            prop_assert_eq!(phone(&p), Ok(Some(p.clone())));
        }
        if let Ok(u) = uuid(&s) {
            prop_assert_eq!(uuid(&u.to_string()), Ok(u));
        }
    }

    #[test]
    fn dates_are_real_or_refused(y in any::<i32>(), m in any::<i32>(), d in any::<i32>(),
                                 small in (-3i32..3000, -2i32..15, -2i32..33)) {
        for (y, m, d) in [(y, m, d), small] {
            match date(y, m, d) {
                Ok(Some(day)) => {
                    prop_assert_eq!((day.year(), day.month() as i32, day.day() as i32), (y, m, d));
                }
                Ok(None) => prop_assert_eq!((y, m, d), (0, 0, 0)),
                Err(e) => prop_assert!(!e.is_empty()),
            }
        }
    }
}
