//! The verified caller: role and scope, and the checks that keep each property's data its own.

use guestloop_config::ChainDirectory;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    PropertyStaff,
    PropertyManager,
    RegionalManager,
    HeadOffice,
    /// Another Guestloop service calling on the platform's behalf.
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::PropertyStaff => "property_staff",
            Role::PropertyManager => "property_manager",
            Role::RegionalManager => "regional_manager",
            Role::HeadOffice => "head_office",
            Role::Service => "service",
        }
    }

    pub fn is_manager(self) -> bool {
        matches!(
            self,
            Role::PropertyManager | Role::RegionalManager | Role::HeadOffice
        )
    }
}

/// Which properties a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Properties(Vec<String>),
    Region(String),
    Chain,
}

#[derive(Debug, Clone)]
pub struct Principal {
    /// Token subject: a staff id or a service name. Not personal data of guests.
    pub subject: String,
    pub role: Role,
    pub scope: Scope,
}

impl Principal {
    /// Whether the caller may see objects of this property.
    pub fn can_see_property(&self, chain: &ChainDirectory, property_id: &str) -> bool {
        match &self.scope {
            Scope::Chain => true,
            Scope::Properties(ids) => ids.iter().any(|p| p == property_id),
            Scope::Region(region) => chain
                .property(property_id)
                .is_some_and(|p| &p.region == region),
        }
    }

    /// Whether any of the properties is visible (an object tied to several, like a guest).
    pub fn can_see_any<'a>(
        &self,
        chain: &ChainDirectory,
        mut property_ids: impl Iterator<Item = &'a str>,
    ) -> bool {
        matches!(self.scope, Scope::Chain) || property_ids.any(|p| self.can_see_property(chain, p))
    }

    /// The properties this caller sees, or `None` for the whole chain. Queries filter by it.
    pub fn visible_properties(&self, chain: &ChainDirectory) -> Option<Vec<String>> {
        match &self.scope {
            Scope::Chain => None,
            Scope::Properties(ids) => Some(ids.clone()),
            Scope::Region(region) => Some(
                chain
                    .properties_in_region(region)
                    .map(str::to_string)
                    .collect(),
            ),
        }
    }

    pub fn is_chain_wide(&self) -> bool {
        matches!(self.scope, Scope::Chain)
    }
}
