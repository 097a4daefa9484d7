//! Masks contact data (email addresses, phone numbers, long digit runs) in the guest's
//! words before an excerpt leaves this service in an event.

/// At most `max` characters of `text` with contact-like tokens replaced by "***".
pub fn excerpt(text: &str, max: usize) -> String {
    let masked: Vec<String> = text
        .split_whitespace()
        .map(|word| {
            if word.contains('@') {
                "***".to_string()
            } else {
                mask_digit_runs(word)
            }
        })
        .collect();
    masked.join(" ").chars().take(max).collect()
}

/// Chinese text has no spaces: mask any run of 7+ digits inside a word.
fn mask_digit_runs(word: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in word.chars() {
        if c.is_ascii_digit() || (c == '-' && !run.is_empty()) {
            run.push(c);
        } else {
            flush(&mut out, &mut run);
            out.push(c);
        }
    }
    flush(&mut out, &mut run);
    out
}

fn flush(out: &mut String, run: &mut String) {
    if run.chars().filter(char::is_ascii_digit).count() >= 7 {
        out.push_str("***");
    } else {
        out.push_str(run);
    }
    run.clear();
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_contacts() {
        assert_eq!(
            super::excerpt("mail me at li@example.com please", 280),
            "mail me at *** please"
        );
        assert_eq!(
            super::excerpt("call +86 138-0013-8000", 280),
            "call +86 ***"
        );
        assert_eq!(
            super::excerpt("请打电话13800138000谢谢", 280),
            "请打电话***谢谢"
        );
        assert_eq!(
            super::excerpt("room 1208 was cold", 280),
            "room 1208 was cold"
        );
        assert_eq!(super::excerpt("abcdef", 3), "abc");
    }
}
