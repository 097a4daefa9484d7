//! R8: page tokens (libs/db/src/page.rs) and the request-value parsers every service uses
//! (libs/errors/src/parse.rs), on any text: refused or read, never a panic; what is read is
//! already in its checked form.

#![no_main]

use guestloop_db::page::{BoundOffset, Page, decode, encode};
use guestloop_errors::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let size = i32::from(*first as i8) * 4;
    if let Some(c) = decode(&text) {
        assert_eq!(decode(&encode(c)), Some(c));
    }
    match Page::parse(size, &text) {
        Ok(p) => assert!((1..=500).contains(&p.size)),
        Err((field, _)) => assert!(field == "page.page_size" || field == "page.page_token"),
    }
    if let Ok((size, offset)) = BoundOffset::parse(size, &text, 42) {
        assert!(offset >= 0);
        let _ = BoundOffset::next_token(size, offset, size as usize, 42);
    }
    let max = usize::from(*first);
    if let Ok(Some(t)) = parse::optional_text(&text, max) {
        assert!(t.chars().count() <= max);
    }
    if let Ok(Some(e)) = parse::email(&text) {
        assert_eq!(parse::email(&e), Ok(Some(e.clone())));
    }
    if let Ok(Some(p)) = parse::phone(&text) {
        assert_eq!(parse::phone(&p), Ok(Some(p.clone())));
    }
    let _ = parse::uuid(&text);
    let n = |i: usize| {
        i32::from_le_bytes(
            rest.get(i..i + 4)
                .and_then(|b| b.try_into().ok())
                .unwrap_or_default(),
        )
    };
    let _ = parse::date(n(0), n(4), n(8));
});
