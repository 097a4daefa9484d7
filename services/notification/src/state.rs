//! What every request handler and the delivery worker share, and the caller of one request.

use crate::error::{NotificationError, Result};
use crate::settings::{DeliverySettings, StaffMember};
use crate::templates::Templates;
use crate::window::WechatWindow;
use guestloop_auth::{Principal, Role};
use guestloop_config::ChainDirectory;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Debug)]
pub struct State {
    pub pool: PgPool,
    pub chain: Arc<ChainDirectory>,
    pub templates: Templates,
    pub delivery: DeliverySettings,
    pub staff: Vec<StaffMember>,
    pub wechat: WechatWindow,
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

    pub fn is_service(&self) -> bool {
        self.principal.role == Role::Service
    }
}

impl State {
    /// The caller may act for the property (it exists: checked when parsing).
    pub fn writable_property(&self, caller: &Caller, property_id: &str) -> Result<()> {
        if !caller.sees(self, property_id) {
            return Err(NotificationError::PermissionDenied(
                "the property is outside the caller's scope",
            ));
        }
        tracing::Span::current().record("property_id", property_id);
        Ok(())
    }
}
