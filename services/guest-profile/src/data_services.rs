//! The services that hold guest data besides guest-profile: this outbox's subscribers,
//! which receive its GuestErased and GuestMerged events. Erasures wait for each of them to
//! confirm (erasure_tracker.rs) and exports gather each one's share (api/export.rs), both
//! through their EventIngestService.

use guestloop_client::EventIngestClient;

#[derive(Debug, Clone)]
pub struct DataService {
    /// The service's name in receipts and exports, e.g. `follow-up-scheduler`.
    pub service: String,
    pub client: EventIngestClient,
}

impl DataService {
    /// A subscriber of this outbox; its peer name (`follow_up_scheduler`) becomes the
    /// service's name (`follow-up-scheduler`).
    pub fn of(sub: guestloop_outbox::Subscriber) -> Self {
        Self {
            service: sub.name.replace('_', "-"),
            client: sub.client,
        }
    }
}
