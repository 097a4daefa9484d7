//! The gRPC surface of guest-profile: each RPC checks the caller, parses its request into
//! domain values, and runs one transaction. Handlers live by topic in the submodules; this
//! file holds what they share, above all the scope check that answers NOT_FOUND for any
//! guest outside the caller's properties.

mod contact_reads;
mod convert;
mod erasures;
mod export;
mod guests;
mod privacy;
mod stay_events;
mod stays;

use crate::error::{GuestProfileError, Result};
use crate::store::{GuestRecord, guests as guest_store, privacy as privacy_store};
use guestloop_auth::Principal;
use guestloop_config::{ChainDirectory, Standards};
use guestloop_proto::guestprofile::v1 as pb;
use guestloop_proto::guestprofile::v1::guest_profile_service_server::GuestProfileService;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use uuid::Uuid;

pub(crate) const SOURCE: &str = "guest-profile";
const RPC_PREFIX: &str = "/guestloop.guestprofile.v1.GuestProfileService/";

#[derive(Debug)]
pub struct State {
    pub pool: PgPool,
    pub chain: Arc<ChainDirectory>,
    pub standards: Arc<Standards>,
    pub access_log: crate::access_log::AccessLog,
    /// The services besides this one that hold guest data: each must confirm an erasure,
    /// and each has a share of an export.
    pub data_services: Vec<crate::data_services::DataService>,
}

#[derive(Debug, Clone)]
pub struct GuestProfileApi {
    state: Arc<State>,
}

impl GuestProfileApi {
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

/// The caller of one request, with what they may see.
pub(crate) struct Caller {
    pub principal: Principal,
    /// The properties visible to the caller; `None` for the whole chain.
    pub visible: Option<Vec<String>>,
    pub rpc: &'static str,
}

impl Caller {
    fn new<T>(
        state: &State,
        request: &Request<T>,
        rpc: &'static str,
    ) -> std::result::Result<Self, Status> {
        let principal = guestloop_auth::principal(request)?;
        let visible = principal.visible_properties(&state.chain);
        Ok(Self {
            principal,
            visible,
            rpc,
        })
    }

    pub fn visible(&self) -> Option<&[String]> {
        self.visible.as_deref()
    }

    pub fn can_see_property(&self, chain: &ChainDirectory, property_id: &str) -> bool {
        self.principal.can_see_property(chain, property_id)
    }

    /// The full method name for the access log.
    pub fn method(&self) -> String {
        format!("{RPC_PREFIX}{}", self.rpc)
    }
}

impl State {
    /// The guest (after merges) if the caller may see it; NOT_FOUND otherwise, whether it is
    /// missing or belongs to other properties.
    pub(crate) async fn visible_guest(
        &self,
        conn: &mut PgConnection,
        caller: &Caller,
        id: Uuid,
        for_update: bool,
    ) -> Result<(GuestRecord, Option<Uuid>)> {
        let Some((guest, merged_from)) = guest_store::resolve(conn, id, for_update).await? else {
            return Err(GuestProfileError::NotFound("guest"));
        };
        if !caller.principal.is_chain_wide() {
            let properties = guest_store::properties(&mut *conn, guest.id).await?;
            if !caller
                .principal
                .can_see_any(&self.chain, properties.iter().map(String::as_str))
            {
                return Err(GuestProfileError::NotFound("guest"));
            }
        }
        tracing::Span::current().record("property_id", guest.home_property_id.as_str());
        Ok((guest, merged_from))
    }

    /// Records that `caller` read the contact data of these guests, outside any
    /// transaction: batched with concurrent reads, returns once committed.
    pub(crate) async fn log_read(&self, caller: &Caller, ids: &[Uuid]) -> Result<()> {
        self.access_log
            .record(
                ids,
                &caller.principal.subject,
                caller.principal.role.as_str(),
                caller.method(),
            )
            .await?;
        Ok(())
    }

    /// The guest's own row read and its read logged by the access log's batch, when it
    /// exists, was not merged away and `caller` may see it; `None` (nothing logged) when
    /// the caller must resolve it with [`Self::visible_guest`].
    pub(crate) async fn read_logged(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<Option<GuestRecord>> {
        let guest = self
            .access_log
            .read(
                id,
                caller.visible.clone(),
                &caller.principal.subject,
                caller.principal.role.as_str(),
                caller.method(),
            )
            .await?;
        if let Some(g) = &guest {
            tracing::Span::current().record("property_id", g.home_property_id.as_str());
        }
        Ok(guest)
    }

    /// Records, inside the transaction on `conn`, that `caller` read the contact data of
    /// these guests (calls that also change them).
    pub(crate) async fn log_access(
        &self,
        conn: &mut PgConnection,
        caller: &Caller,
        ids: &[Uuid],
    ) -> Result<()> {
        privacy_store::log_access(
            conn,
            ids,
            &caller.principal.subject,
            caller.principal.role.as_str(),
            &caller.method(),
        )
        .await?;
        Ok(())
    }

    /// Required profile fields at a property.
    pub(crate) fn required_fields(&self, property_id: &str) -> Vec<String> {
        self.standards
            .for_property(&self.chain, property_id)
            .required_profile_fields
    }

    /// The property must exist and be in the caller's scope for the caller to write to it.
    pub(crate) fn writable_property(
        &self,
        caller: &Caller,
        field: &str,
        property_id: &str,
    ) -> Result<()> {
        if self.chain.property(property_id).is_none() {
            return Err(crate::error::invalid(
                field,
                format!("`{property_id}` is not a property of the chain"),
            ));
        }
        if !caller.can_see_property(&self.chain, property_id) {
            return Err(GuestProfileError::PermissionDenied(
                "the property is outside the caller's scope",
            ));
        }
        tracing::Span::current().record("property_id", property_id);
        Ok(())
    }
}

/// Each RPC: identify the caller, run the handler, map its error once.
macro_rules! rpc {
    ($self:ident, $request:ident, $name:literal, $handler:path) => {{
        let caller = Caller::new(&$self.state, &$request, $name)?;
        $handler(&$self.state, &caller, $request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }};
}

#[tonic::async_trait]
impl GuestProfileService for GuestProfileApi {
    async fn create_guest(
        &self,
        request: Request<pb::CreateGuestRequest>,
    ) -> std::result::Result<Response<pb::CreateGuestResponse>, Status> {
        rpc!(self, request, "CreateGuest", guests::create)
    }
    async fn get_guest(
        &self,
        request: Request<pb::GetGuestRequest>,
    ) -> std::result::Result<Response<pb::GetGuestResponse>, Status> {
        rpc!(self, request, "GetGuest", guests::get)
    }
    async fn update_guest(
        &self,
        request: Request<pb::UpdateGuestRequest>,
    ) -> std::result::Result<Response<pb::UpdateGuestResponse>, Status> {
        rpc!(self, request, "UpdateGuest", guests::update)
    }
    async fn list_guests(
        &self,
        request: Request<pb::ListGuestsRequest>,
    ) -> std::result::Result<Response<pb::ListGuestsResponse>, Status> {
        rpc!(self, request, "ListGuests", guests::list)
    }
    async fn search_guests(
        &self,
        request: Request<pb::SearchGuestsRequest>,
    ) -> std::result::Result<Response<pb::SearchGuestsResponse>, Status> {
        rpc!(self, request, "SearchGuests", guests::search)
    }
    async fn upsert_stay(
        &self,
        request: Request<pb::UpsertStayRequest>,
    ) -> std::result::Result<Response<pb::UpsertStayResponse>, Status> {
        rpc!(self, request, "UpsertStay", stays::upsert)
    }
    async fn get_stay(
        &self,
        request: Request<pb::GetStayRequest>,
    ) -> std::result::Result<Response<pb::GetStayResponse>, Status> {
        rpc!(self, request, "GetStay", stays::get)
    }
    async fn list_stays(
        &self,
        request: Request<pb::ListStaysRequest>,
    ) -> std::result::Result<Response<pb::ListStaysResponse>, Status> {
        rpc!(self, request, "ListStays", stays::list)
    }
    async fn get_guest_completeness(
        &self,
        request: Request<pb::GetGuestCompletenessRequest>,
    ) -> std::result::Result<Response<pb::GetGuestCompletenessResponse>, Status> {
        rpc!(self, request, "GetGuestCompleteness", guests::completeness)
    }
    async fn get_property_completeness(
        &self,
        request: Request<pb::GetPropertyCompletenessRequest>,
    ) -> std::result::Result<Response<pb::GetPropertyCompletenessResponse>, Status> {
        rpc!(
            self,
            request,
            "GetPropertyCompleteness",
            guests::property_completeness
        )
    }
    async fn find_duplicates(
        &self,
        request: Request<pb::FindDuplicatesRequest>,
    ) -> std::result::Result<Response<pb::FindDuplicatesResponse>, Status> {
        rpc!(self, request, "FindDuplicates", guests::find_duplicates)
    }
    async fn merge_guests(
        &self,
        request: Request<pb::MergeGuestsRequest>,
    ) -> std::result::Result<Response<pb::MergeGuestsResponse>, Status> {
        rpc!(self, request, "MergeGuests", guests::merge)
    }
    async fn set_consent(
        &self,
        request: Request<pb::SetConsentRequest>,
    ) -> std::result::Result<Response<pb::SetConsentResponse>, Status> {
        rpc!(self, request, "SetConsent", privacy::set_consent)
    }
    async fn list_consents(
        &self,
        request: Request<pb::ListConsentsRequest>,
    ) -> std::result::Result<Response<pb::ListConsentsResponse>, Status> {
        rpc!(self, request, "ListConsents", privacy::list_consents)
    }
    async fn get_contact_permission(
        &self,
        request: Request<pb::GetContactPermissionRequest>,
    ) -> std::result::Result<Response<pb::GetContactPermissionResponse>, Status> {
        rpc!(
            self,
            request,
            "GetContactPermission",
            privacy::contact_permission
        )
    }
    async fn export_guest(
        &self,
        request: Request<pb::ExportGuestRequest>,
    ) -> std::result::Result<Response<pb::ExportGuestResponse>, Status> {
        rpc!(self, request, "ExportGuest", export::export)
    }
    async fn erase_guest(
        &self,
        request: Request<pb::EraseGuestRequest>,
    ) -> std::result::Result<Response<pb::EraseGuestResponse>, Status> {
        rpc!(self, request, "EraseGuest", privacy::erase)
    }
    async fn get_erasure(
        &self,
        request: Request<pb::GetErasureRequest>,
    ) -> std::result::Result<Response<pb::GetErasureResponse>, Status> {
        rpc!(self, request, "GetErasure", erasures::get)
    }
    async fn list_erasures(
        &self,
        request: Request<pb::ListErasuresRequest>,
    ) -> std::result::Result<Response<pb::ListErasuresResponse>, Status> {
        rpc!(self, request, "ListErasures", erasures::list)
    }
    async fn list_contact_reads(
        &self,
        request: Request<pb::ListContactReadsRequest>,
    ) -> std::result::Result<Response<pb::ListContactReadsResponse>, Status> {
        rpc!(self, request, "ListContactReads", contact_reads::list)
    }
    async fn list_access_log(
        &self,
        request: Request<pb::ListAccessLogRequest>,
    ) -> std::result::Result<Response<pb::ListAccessLogResponse>, Status> {
        rpc!(self, request, "ListAccessLog", privacy::access_log)
    }
}

/// Parses a guest id field.
pub(crate) fn guest_id(field: &str, value: &str) -> Result<Uuid> {
    guestloop_errors::parse::uuid(value).map_err(|e| crate::error::invalid(field, e))
}

/// Parses paging fields.
pub(crate) fn page(
    p: Option<guestloop_proto::common::v1::PageRequest>,
) -> Result<guestloop_db::page::Page> {
    let p = p.unwrap_or_default();
    guestloop_db::page::Page::parse(p.page_size, &p.page_token)
        .map_err(|(f, e)| crate::error::invalid(f, e))
}
