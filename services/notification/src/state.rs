//! What every request handler and the delivery worker share, and the caller of one request.

use crate::error::{NotificationError, Result};
use crate::settings::{DeliverySettings, StaffMember};
use crate::templates::Templates;
use crate::window::WechatWindow;
use guestloop_auth::{Principal, Role};
use guestloop_client::GuestProfileClient;
use guestloop_config::ChainDirectory;
use guestloop_proto::guestprofile::v1::ListConsentsRequest;
use guestloop_proto::notification::v1::StaffRecipient;
use sqlx::PgPool;
use std::sync::Arc;
use tonic::metadata::AsciiMetadataValue;

#[derive(Debug)]
pub struct State {
    pub pool: PgPool,
    pub chain: Arc<ChainDirectory>,
    pub templates: Templates,
    pub delivery: DeliverySettings,
    pub staff: Vec<StaffMember>,
    pub wechat: WechatWindow,
    /// guest-profile, which decides who may see a guest (`peers.guest_profile`).
    pub guests: Option<GuestProfileClient>,
}

/// The verified caller and the properties they see (`None`: the whole chain).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub visible: Option<Vec<String>>,
    /// The caller's own `authorization` header, to ask guest-profile as the caller.
    authorization: Option<AsciiMetadataValue>,
}

impl Caller {
    pub fn new<T>(
        state: &State,
        request: &tonic::Request<T>,
    ) -> std::result::Result<Self, tonic::Status> {
        let principal = guestloop_auth::principal(request)?;
        let visible = principal.visible_properties(&state.chain);
        let authorization = request.metadata().get("authorization").cloned();
        Ok(Self {
            principal,
            visible,
            authorization,
        })
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

    /// The caller may address this guest: guest-profile, asked as the caller, shows them
    /// the guest. Otherwise a property could message another's guest and read back the
    /// message's channel, language and suppression reason (no consent, no address). A
    /// caller who sees the whole chain needs no asking.
    pub async fn visible_guest(&self, caller: &Caller, guest_id: &str) -> Result<()> {
        if caller.visible.is_none() {
            return Ok(());
        }
        let (Some(guests), Some(authorization)) = (&self.guests, &caller.authorization) else {
            return Err(NotificationError::FailedPrecondition(
                "peers.guest_profile is not configured: a property's guest messages cannot be checked".into(),
            ));
        };
        let mut request = tonic::Request::new(ListConsentsRequest {
            guest_id: guest_id.to_string(),
        });
        request
            .metadata_mut()
            .insert("authorization", authorization.clone());
        match guests.clone().list_consents(request).await {
            Ok(_) => Ok(()),
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::NotFound | tonic::Code::PermissionDenied
                ) =>
            {
                Err(NotificationError::NotFound("guest"))
            }
            Err(s) => Err(NotificationError::Peer(s.code())),
        }
    }

    /// The caller may alert these staff: where the worker will look for them (their
    /// property; a regional manager's region; a member named by id) is within the caller's
    /// scope. Otherwise one property could alert, and learn of, another's staff.
    pub fn writable_staff(&self, caller: &Caller, s: &StaffRecipient) -> Result<()> {
        let id = s.staff_id.trim();
        let member = self
            .staff
            .iter()
            .find(|m| !id.is_empty() && m.staff_id == id);
        let outside = !caller.sees(self, &s.property_id)
            || (!s.region_id.is_empty()
                && !self
                    .chain
                    .properties_in_region(&s.region_id)
                    .any(|p| caller.sees(self, p)))
            || member.is_some_and(|m| !caller.sees(self, &m.property_id));
        if outside {
            return Err(NotificationError::PermissionDenied(
                "the recipient is outside the caller's scope",
            ));
        }
        Ok(())
    }
}
