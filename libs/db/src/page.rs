//! Keyset paging behind opaque tokens: a page token encodes the (create_time, id) of the last
//! row returned, so the next page starts after it even while rows are being added. Clients
//! treat tokens as opaque strings.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 500;

/// Where the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    pub t: DateTime<Utc>,
    pub id: Uuid,
}

/// A checked page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub size: i64,
    pub after: Option<Cursor>,
}

impl Page {
    /// Parses a page size (0 = default) and token; errors name the field.
    pub fn parse(size: i32, token: &str) -> Result<Self, (&'static str, String)> {
        let size = match size {
            0 => DEFAULT_PAGE_SIZE,
            s if s < 0 => return Err(("page.page_size", "must not be negative".into())),
            s if i64::from(s) > MAX_PAGE_SIZE => {
                return Err(("page.page_size", format!("must be at most {MAX_PAGE_SIZE}")));
            }
            s => i64::from(s),
        };
        let after = if token.is_empty() {
            None
        } else {
            Some(decode(token).ok_or((
                "page.page_token",
                "is not a token this server issued".to_string(),
            ))?)
        };
        Ok(Self { size, after })
    }

    /// The token for the page after `rows`, if the page was full.
    pub fn next_token<T>(&self, rows: &[T], key: impl Fn(&T) -> Cursor) -> String {
        match rows.last() {
            Some(last) if rows.len() as i64 >= self.size => encode(key(last)),
            _ => String::new(),
        }
    }
}

/// An offset page bound to the query it belongs to: a token from another filter or order
/// is refused rather than silently paging through different results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BoundOffset {
    pub offset: i64,
    pub binding: u64,
}

impl BoundOffset {
    /// Parses a page size and token issued for `binding`; errors name the field.
    pub fn parse(
        size: i32,
        token: &str,
        binding: u64,
    ) -> Result<(i64, i64), (&'static str, String)> {
        let page = Page::parse(size, "")?;
        if token.is_empty() {
            return Ok((page.size, 0));
        }
        let bad = || {
            (
                "page.page_token",
                "is not a token this server issued for this query".to_string(),
            )
        };
        let t: BoundOffset =
            serde_json::from_slice(&B64.decode(token).map_err(|_| bad())?).map_err(|_| bad())?;
        if t.binding != binding || t.offset < 0 {
            return Err(bad());
        }
        Ok((page.size, t.offset))
    }

    /// The token for the next page, if this one was full.
    pub fn next_token(size: i64, offset: i64, returned: usize, binding: u64) -> String {
        if (returned as i64) < size {
            return String::new();
        }
        let t = BoundOffset {
            // The offset comes back from the client's token: saturate rather than overflow.
            offset: offset.saturating_add(size),
            binding,
        };
        B64.encode(serde_json::to_vec(&t).expect("token serialises"))
    }
}

/// A stable hash of a request's filter, to bind page tokens to it.
pub fn binding_of(bytes: &[u8]) -> u64 {
    // FNV-1a: stable across processes and versions, unlike the std hasher.
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub fn encode(cursor: Cursor) -> String {
    B64.encode(serde_json::to_vec(&cursor).expect("cursor serialises"))
}

pub fn decode(token: &str) -> Option<Cursor> {
    serde_json::from_slice(&B64.decode(token).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let c = Cursor {
            t: Utc::now(),
            id: Uuid::new_v4(),
        };
        assert_eq!(decode(&encode(c)), Some(c));
        assert!(Page::parse(10, "not-a-token").is_err());
        assert_eq!(Page::parse(0, "").unwrap().size, DEFAULT_PAGE_SIZE);
        assert!(Page::parse(501, "").is_err());
        assert!(Page::parse(-1, "").is_err());
    }

    #[test]
    fn bound_tokens_refuse_another_query() {
        let token = BoundOffset::next_token(10, 0, 10, 42);
        assert_eq!(BoundOffset::parse(10, &token, 42).unwrap(), (10, 10));
        assert!(
            BoundOffset::parse(10, &token, 43).is_err(),
            "a token of another filter"
        );
        assert_eq!(
            BoundOffset::next_token(10, 0, 9, 42),
            "",
            "a short page is the last"
        );
        assert_ne!(binding_of(b"a"), binding_of(b"b"));
    }
}
