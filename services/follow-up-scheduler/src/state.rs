//! What every request handler and the firing worker share, and the caller of one request.

use crate::settings::TimerSettings;
use guestloop_auth::Principal;
use guestloop_config::ChainDirectory;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Debug)]
pub struct State {
    pub pool: PgPool,
    pub chain: Arc<ChainDirectory>,
    pub timers: TimerSettings,
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
