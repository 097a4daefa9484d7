//! Finding the guest behind feedback, through guest-profile: by id, loyalty number, email or
//! phone, in that order. An unknown guest stays unknown; several matches stay unresolved.
//! The contact data used to look up is never stored here.

use crate::error::{FeedbackError, Result};
use guestloop_client::GuestProfileClient;
use guestloop_proto::feedback::v1::GuestMatch;
use guestloop_proto::guestprofile::v1 as gp;
use uuid::Uuid;

use crate::domain::submission::GuestRef;

/// Who the feedback is from, as far as guest-profile knows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolved {
    pub guest_id: Option<Uuid>,
    pub matched: GuestMatch,
    pub tier: gp::Tier,
}

#[derive(Debug, Clone)]
pub struct GuestDirectory {
    client: Option<GuestProfileClient>,
}

fn unavailable(status: tonic::Status) -> FeedbackError {
    FeedbackError::GuestProfile(status)
}

impl GuestDirectory {
    /// `None`: guest-profile is not configured; every guest stays unknown.
    pub fn new(client: Option<GuestProfileClient>) -> Self {
        if client.is_none() {
            tracing::warn!("peers.guest_profile is not set: every guest stays unknown");
        }
        Self { client }
    }

    pub async fn resolve(&self, r: &GuestRef) -> Result<Resolved> {
        let unknown = |matched| Resolved {
            guest_id: None,
            matched,
            tier: gp::Tier::Unspecified,
        };
        if r.is_empty() {
            return Ok(unknown(GuestMatch::NotGiven));
        }
        let Some(client) = &self.client else {
            return Ok(unknown(GuestMatch::Unknown));
        };
        let mut client = client.clone();
        if let Some(id) = r.guest_id {
            match client
                .get_guest(gp::GetGuestRequest {
                    guest_id: id.to_string(),
                })
                .await
            {
                Ok(g) => {
                    if let Some(g) = g.into_inner().guest {
                        return Ok(found(&g, GuestMatch::ById));
                    }
                }
                Err(s) if s.code() == tonic::Code::NotFound => {}
                Err(s) => return Err(unavailable(s)),
            }
        }
        let searches = [
            (r.loyalty_number.clone(), GuestMatch::ByLoyaltyNumber),
            (r.email.clone(), GuestMatch::ByEmail),
            (r.phone.clone(), GuestMatch::ByPhone),
        ];
        for (value, how) in searches {
            let Some(value) = value else { continue };
            let mut req = gp::SearchGuestsRequest {
                page: Some(guestloop_proto::common::v1::PageRequest {
                    page_size: 2,
                    page_token: String::new(),
                }),
                ..Default::default()
            };
            match how {
                GuestMatch::ByLoyaltyNumber => req.loyalty_number = value,
                GuestMatch::ByEmail => req.email = value,
                _ => req.phone = value,
            }
            let guests = client
                .search_guests(req)
                .await
                .map_err(unavailable)?
                .into_inner()
                .guests;
            match guests.as_slice() {
                [] => continue,
                [g] => return Ok(found(g, how)),
                _ => return Ok(unknown(GuestMatch::Ambiguous)),
            }
        }
        Ok(unknown(GuestMatch::Unknown))
    }

    /// The stay, if it exists: (guest id, property id).
    pub async fn stay(&self, stay_id: Uuid) -> Result<Option<(Uuid, String)>> {
        let Some(client) = &self.client else {
            return Ok(None);
        };
        match client
            .clone()
            .get_stay(gp::GetStayRequest {
                stay_id: stay_id.to_string(),
            })
            .await
        {
            Ok(r) => Ok(r
                .into_inner()
                .stay
                .and_then(|s| Some((Uuid::parse_str(&s.guest_id).ok()?, s.property_id)))),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(unavailable(s)),
        }
    }

    /// The guest's tier (for a guest given by stay), or unspecified if unknown.
    pub async fn by_id(&self, id: Uuid) -> Result<Resolved> {
        self.resolve(&GuestRef {
            guest_id: Some(id),
            ..Default::default()
        })
        .await
    }
}

fn found(g: &gp::Guest, how: GuestMatch) -> Resolved {
    Resolved {
        guest_id: Uuid::parse_str(&g.guest_id).ok(),
        matched: how,
        tier: gp::Tier::try_from(g.tier).unwrap_or(gp::Tier::Unspecified),
    }
}
