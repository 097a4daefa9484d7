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
}
