//! What every request handler shares, and the caller of one request.

use crate::classify::Classifier;
use crate::error::{FeedbackError, Result};
use crate::guests::GuestDirectory;
use crate::settings::IntakeSettings;
use guestloop_auth::Principal;
use guestloop_config::{ChainDirectory, ServiceStandards, Standards};
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Debug)]
pub struct State {
    pub pool: PgPool,
    pub chain: Arc<ChainDirectory>,
    pub standards: Arc<Standards>,
    pub intake: IntakeSettings,
    /// When OTA review replies are due, per site.
    pub ota_replies: crate::reply::OtaReplySettings,
    pub classifier: Classifier,
    pub guests: GuestDirectory,
    /// Case changes for WatchCaseQueue, one listening connection for all watches.
    pub case_feed: guestloop_db::feed::ChangeFeed,
    /// Submissions share transactions (one WAL flush for many calls).
    pub group: guestloop_db::group::GroupCommit,
    /// Single submissions that open no case: multi-row writes, one commit per batch.
    pub batch: crate::intake_batch::IntakeBatch,
    /// The same for ImportFeedback's items (`import_write`).
    pub import_batch: crate::intake_batch::IntakeBatch,
    /// How long words are kept: a record already past its period when it arrives (a
    /// historical import) is stored without them (retention.rs).
    pub retention: guestloop_config::RetentionSettings,
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

    pub fn subject(&self) -> &str {
        &self.principal.subject
    }

    pub fn role(&self) -> &'static str {
        self.principal.role.as_str()
    }
}

impl State {
    /// The property exists and the caller may act on it; else the field is named.
    pub fn writable_property(&self, caller: &Caller, field: &str, property_id: &str) -> Result<()> {
        if self.chain.property(property_id).is_none() {
            return Err(crate::error::invalid(
                field,
                format!("`{property_id}` is not a property of the chain"),
            ));
        }
        if !caller.sees(self, property_id) {
            return Err(FeedbackError::PermissionDenied(
                "the property is outside the caller's scope",
            ));
        }
        tracing::Span::current().record("property_id", property_id);
        Ok(())
    }

    pub fn standards_at(&self, property_id: &str) -> ServiceStandards {
        self.standards.for_property(&self.chain, property_id)
    }

    /// Narrows a filter's properties to the caller's scope; `None` = the whole chain.
    pub fn scope(
        &self,
        caller: &Caller,
        property_ids: &[String],
        region_id: &str,
    ) -> Option<Vec<String>> {
        // Ids that are no property of the chain match nothing; dropped here, they never
        // reach PostgreSQL (which refuses text with a NUL byte: INTERNAL, R8).
        let mut wanted: Option<Vec<String>> = if property_ids.is_empty() {
            None
        } else {
            Some(
                property_ids
                    .iter()
                    .filter(|p| self.chain.property(p).is_some())
                    .cloned()
                    .collect(),
            )
        };
        if !region_id.is_empty() {
            let region: Vec<String> = self
                .chain
                .properties_in_region(region_id)
                .map(str::to_string)
                .collect();
            wanted = Some(match wanted {
                Some(w) => w.into_iter().filter(|p| region.contains(p)).collect(),
                None => region,
            });
        }
        match (wanted, &caller.visible) {
            (None, None) => None,
            (Some(w), None) => Some(w),
            (None, Some(v)) => Some(v.clone()),
            (Some(w), Some(v)) => Some(w.into_iter().filter(|p| v.contains(p)).collect()),
        }
    }
}
