//! The reply queue (ListReviewReplies): which of a property's reviews it shows, in which
//! order. The request is parsed into a [`QueueFilter`]; the selection over the reviews'
//! due times is pure ([`select`]), the RPC is api/replies.rs.

use super::OtaReplySettings;
use crate::error::Result;
use chrono::{DateTime, Utc};
use guestloop_errors::FieldViolations;
use guestloop_errors::parse::required_text;
use guestloop_proto::feedback::v1 as pb;
use guestloop_proto::feedback::v1::ReviewReplyState as St;
use uuid::Uuid;

/// A parsed ListReviewRepliesRequest, less its page.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueFilter {
    pub property_id: String,
    /// Empty: every state.
    pub states: Vec<St>,
    pub overdue_only: bool,
}

impl TryFrom<&pb::ListReviewRepliesRequest> for QueueFilter {
    type Error = crate::error::FeedbackError;

    fn try_from(req: &pb::ListReviewRepliesRequest) -> Result<Self> {
        let mut v = FieldViolations::new();
        let property_id = v.check("property_id", required_text(&req.property_id, 64));
        let states = req
            .states
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let state = St::try_from(*s)
                    .ok()
                    .filter(|s| *s != St::Unspecified)
                    .ok_or_else(|| format!("{s} is not a reply state"));
                v.check(&format!("states[{i}]"), state)
            })
            .collect();
        let out = property_id.map(|property_id| Self {
            property_id,
            states,
            overdue_only: req.overdue_only,
        });
        if !v.is_empty() {
            return Err(v.into());
        }
        Ok(out.expect("no violation: the property id parsed"))
    }
}

impl QueueFilter {
    /// The states as stored (review_replies.state).
    pub fn stored_states(&self) -> Vec<i16> {
        self.states.iter().map(|s| *s as i16).collect()
    }
}

/// The shortest deadline of any site: a review received more recently than this cannot be
/// overdue, whatever its site and rating.
pub fn shortest_within(deadlines: &OtaReplySettings) -> chrono::Duration {
    let sites = deadlines
        .sites
        .values()
        .flat_map(|s| [s.negative_within, s.positive_within])
        .flatten();
    [deadlines.negative_within, deadlines.positive_within]
        .into_iter()
        .chain(sites)
        .map(|d| chrono::Duration::from_std(d.as_duration()).unwrap_or(chrono::Duration::MAX))
        .min()
        .unwrap_or(chrono::Duration::zero())
}

/// What the queue orders and filters by, for one review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub feedback_id: Uuid,
    pub due_time: DateTime<Utc>,
    pub post_time: Option<DateTime<Utc>>,
}

impl Due {
    /// Posted after its due time, or still unposted past it (as ReviewReply.overdue).
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.post_time.unwrap_or(now) > self.due_time
    }
}

/// One page of the queue: the items (overdue ones only if asked), the earliest due first
/// (ties by feedback id, so pages do not overlap), `size` of them from `offset`.
pub fn select<T>(
    mut items: Vec<(Due, T)>,
    overdue_only: bool,
    now: DateTime<Utc>,
    offset: i64,
    size: i64,
) -> Vec<(Due, T)> {
    items.retain(|(d, _)| !overdue_only || d.overdue(now));
    items.sort_by_key(|(d, _)| (d.due_time, d.feedback_id));
    let skip = usize::try_from(offset).unwrap_or(usize::MAX);
    let take = usize::try_from(size).unwrap_or(0);
    items.into_iter().skip(skip).take(take).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FeedbackError;

    #[test]
    fn requests_parse_or_name_the_field() {
        let req = |property: &str, states: Vec<i32>| pb::ListReviewRepliesRequest {
            property_id: property.into(),
            states,
            ..Default::default()
        };
        let ok = QueueFilter::try_from(&req("sh-bund", vec![1, 2])).unwrap();
        assert_eq!(ok.states, [St::Suggested, St::PendingApproval]);
        // (request, field named)
        let cases = [
            (req("", vec![]), "property_id"),
            (req("   ", vec![1]), "property_id"),
            (req("sh-bund", vec![1, 0]), "states[1]"),
            (req("sh-bund", vec![99]), "states[0]"),
            (req(&"p".repeat(65), vec![]), "property_id"),
        ];
        for (r, field) in cases {
            match QueueFilter::try_from(&r) {
                Err(FeedbackError::Invalid(v)) => {
                    assert!(v.to_string().contains(field), "{field}: {v}")
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_earliest_due_comes_first_and_overdue_only_keeps_the_late() {
        let now = Utc::now();
        let h = chrono::Duration::hours;
        let due = |n: u128, due: i64, posted: Option<i64>| {
            (
                Due {
                    feedback_id: Uuid::from_u128(n),
                    due_time: now + h(due),
                    post_time: posted.map(|p| now + h(p)),
                },
                n,
            )
        };
        let items = vec![
            due(1, 5, None),        // due in 5 h
            due(2, -3, None),       // 3 h late, unposted
            due(3, -10, Some(-9)),  // posted an hour late
            due(4, -10, Some(-20)), // posted in time
            due(5, 5, None),        // same due time as 1: by id
        ];
        // (overdue_only, offset, size, ids)
        let cases = [
            (false, 0, 10, vec![3, 4, 2, 1, 5]),
            (false, 2, 2, vec![2, 1]),
            (false, 4, 2, vec![5]),
            (true, 0, 10, vec![3, 2]),
            (true, 1, 10, vec![2]),
        ];
        for (overdue_only, offset, size, want) in cases {
            let got: Vec<u128> = select(items.clone(), overdue_only, now, offset, size)
                .into_iter()
                .map(|(_, n)| n)
                .collect();
            assert_eq!(got, want, "{overdue_only} {offset} {size}");
        }
    }
}
