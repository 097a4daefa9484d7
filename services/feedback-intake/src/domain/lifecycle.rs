//! The case lifecycle: which status moves are legal, and which ladder moves are.

use guestloop_proto::feedback::v1::{CaseStatus, EscalationTier};

/// Whether a case may move from `from` to `to` (proto CaseStatus lists the moves).
pub fn can_move(from: CaseStatus, to: CaseStatus) -> bool {
    use CaseStatus::*;
    matches!(
        (from, to),
        (Received, Acknowledged)
            | (Acknowledged, InProgress | WaitingForGuest | Resolved)
            | (InProgress, WaitingForGuest | Resolved)
            | (WaitingForGuest, InProgress | Resolved)
            | (Resolved, Closed | Reopened)
            | (Closed, Reopened)
            | (Reopened, InProgress | WaitingForGuest | Resolved)
    )
}

/// Whether a case in this status still has open work (counts in queues, can escalate).
pub fn is_open(status: CaseStatus) -> bool {
    !matches!(status, CaseStatus::Resolved | CaseStatus::Closed)
}

/// The tier above `tier`, if any.
pub fn next_tier(tier: EscalationTier) -> Option<EscalationTier> {
    use EscalationTier::*;
    match tier {
        Unspecified | FrontLine => Some(CustomerServiceManager),
        CustomerServiceManager => Some(DepartmentHead),
        DepartmentHead => Some(GeneralManager),
        GeneralManager => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CaseStatus::*;

    #[test]
    fn legal_and_illegal_moves() {
        assert!(can_move(Received, Acknowledged));
        assert!(
            !can_move(Received, Resolved),
            "a case is acknowledged before it is resolved"
        );
        assert!(can_move(WaitingForGuest, InProgress));
        assert!(can_move(Closed, Reopened));
        assert!(!can_move(Closed, InProgress));
        assert!(!can_move(Reopened, Closed));
        assert!(!can_move(Acknowledged, Acknowledged));
    }

    #[test]
    fn the_ladder_ends_at_the_general_manager() {
        assert_eq!(
            next_tier(EscalationTier::FrontLine),
            Some(EscalationTier::CustomerServiceManager)
        );
        assert_eq!(next_tier(EscalationTier::GeneralManager), None);
    }
}
