//! Property tests of the page-token decoders (R8): a page token is text from the client,
//! so `decode`, `Page::parse` and `BoundOffset::parse` must refuse anything this server did
//! not issue without panicking, name the field they refuse, and read back every token it
//! did issue. The long run is the cargo-fuzz target `page_token` (fuzz/).

use crate::page::{BoundOffset, Cursor, MAX_PAGE_SIZE, Page, binding_of, decode, encode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use uuid::Uuid;

/// Tokens: any text, base64 of any bytes, and base64 of JSON near the real shapes.
fn token() -> impl Strategy<Value = String> {
    let json = (
        any::<i64>(),
        any::<u64>(),
        any::<i64>(),
        any::<u128>(),
        0usize..4,
    )
        .prop_map(|(offset, binding, secs, id, shape)| match shape {
            // Bound to the query the test parses for (42), or to another.
            0 => format!(r#"{{"offset":{offset},"binding":{}}}"#, 42 + binding % 2),
            1 => format!(
                r#"{{"t":"{}","id":"{}"}}"#,
                DateTime::from_timestamp(secs % 8_000_000_000_000, 0)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
                Uuid::from_u128(id)
            ),
            2 => format!(r#"{{"t":{secs},"id":{id}}}"#),
            _ => format!(r#"{{"offset":"{offset}","binding":-1}}"#),
        });
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(|b| B64.encode(b)),
        json.prop_map(|j| B64.encode(j)),
        "[A-Za-z0-9_-]{0,60}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Found by this fuzzing: a client's token may carry any offset up to i64::MAX, and the
    /// next token's offset overflowed (a panic in debug builds).
    #[test]
    fn next_tokens_never_overflow(
        size in 1i64..=MAX_PAGE_SIZE,
        offset in prop_oneof![0i64..1000, (i64::MAX - 1000)..=i64::MAX],
    ) {
        let _ = BoundOffset::next_token(size, offset, size as usize, 7);
    }

    #[test]
    fn any_token_is_read_or_refused_naming_the_field(
        size in prop_oneof![any::<i32>(), -2i32..600],
        token in token(),
    ) {
        let binding = 42;
        let _ = decode(&token);
        match Page::parse(size, &token) {
            Ok(p) => prop_assert!((1..=MAX_PAGE_SIZE).contains(&p.size)),
            Err((field, e)) => {
                prop_assert!(field == "page.page_size" || field == "page.page_token");
                prop_assert!(!e.is_empty());
            }
        }
        match BoundOffset::parse(size, &token, binding) {
            Ok((size, offset)) => {
                prop_assert!((1..=MAX_PAGE_SIZE).contains(&size) && offset >= 0);
                // A full page answers with the next token, whatever offset the client sent.
                let next = BoundOffset::next_token(size, offset, size as usize, binding);
                prop_assert!(!next.is_empty());
            }
            Err((field, _)) => {
                prop_assert!(field == "page.page_size" || field == "page.page_token");
            }
        }
    }

    #[test]
    fn every_issued_token_reads_back(secs in -8_000_000_000_000i64..8_000_000_000_000,
                                     nanos in 0u32..1_000_000_000, id in any::<u128>(),
                                     offset in 0i64..i64::MAX, filter in any::<Vec<u8>>()) {
        if let Some(t) = DateTime::<Utc>::from_timestamp(secs, nanos) {
            let c = Cursor { t, id: Uuid::from_u128(id) };
            prop_assert_eq!(decode(&encode(c)), Some(c));
            prop_assert_eq!(Page::parse(10, &encode(c)).map(|p| p.after), Ok(Some(c)));
        }
        let binding = binding_of(&filter);
        let token = BoundOffset::next_token(10, offset, 10, binding);
        prop_assert!(BoundOffset::parse(10, &token, binding).is_ok());
    }
}
