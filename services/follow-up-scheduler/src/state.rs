//! What every request handler, the event consumer and the firing worker share, and the
//! caller of one request.

use crate::settings::{
    AlertSettings, CareSettings, PlanSettings, ReviewReplySettings, TaskSettings, TimerSettings,
};
use guestloop_auth::Principal;
use guestloop_client::{FeedbackClient, GuestProfileClient, NotificationClient};
use guestloop_config::{ChainDirectory, Standards};
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Debug)]
pub struct State {
    pub pool: PgPool,
    pub chain: Arc<ChainDirectory>,
    pub standards: Arc<Standards>,
    pub timers: TimerSettings,
    pub plan: PlanSettings,
    pub alerts: AlertSettings,
    pub tasks: TaskSettings,
    pub care: CareSettings,
    pub review_replies: ReviewReplySettings,
    pub peers: Peers,
    /// Deadline changes for WatchDeadlines, from one listening connection per process.
    pub deadline_feed: guestloop_db::feed::ChangeFeed,
}

/// The services the scheduler calls, each with its own service token. Missing ones are
/// configuration gaps the worker reports (timers needing them fail, visibly).
#[derive(Debug, Clone, Default)]
pub struct Peers {
    pub notification: Option<NotificationClient>,
    pub guest_profile: Option<GuestProfileClient>,
    pub feedback: Option<FeedbackClient>,
}

/// The verified caller and the properties they see (`None`: the whole chain).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub visible: Option<Vec<String>>,
}

impl Caller {
    pub fn new<T>(
        state: &State,
        request: &tonic::Request<T>,
    ) -> std::result::Result<Self, tonic::Status> {
        let principal = guestloop_auth::principal(request)?;
        let visible = principal.visible_properties(&state.chain);
        Ok(Self { principal, visible })
    }

    pub fn sees(&self, state: &State, property_id: &str) -> bool {
        self.principal.can_see_property(&state.chain, property_id)
    }
}
