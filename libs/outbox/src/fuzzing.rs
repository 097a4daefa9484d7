//! R8: the event envelope decoder under random input, shared by the property test below
//! (`cargo test`) and the cargo-fuzz target `envelope` (fuzz/, the long run). A consumer
//! receives a DeliverEventsRequest, decodes it (any bytes the relay or a caller sends), and
//! `consume::deliver` checks each id, continues each trace from its `traceparent`, and
//! applies the events in order; the relay decodes stored envelopes. None may panic, and the
//! acknowledgements must follow the contract: in order, invalid ids acknowledged and
//! dropped, the first failure stopping the batch.

use crate::consume::{Consumer, deliver};
use guestloop_proto::arbitrary::{Choices, request};
use guestloop_proto::events::v1::{DeliverEventsRequest, EventEnvelope};
use prost::Message;
use std::collections::HashSet;
use std::sync::Mutex;
use uuid::Uuid;

/// Applies every event but those whose id is in `fail`, recording what it was given.
struct Recorder {
    fail: HashSet<String>,
    applied: Mutex<Vec<Uuid>>,
}

#[tonic::async_trait]
impl Consumer for Recorder {
    async fn apply(&self, id: Uuid, event: &EventEnvelope) -> Result<(), String> {
        assert_eq!(Uuid::parse_str(&event.event_id).ok(), Some(id));
        self.applied.lock().expect("not poisoned").push(id);
        if self.fail.contains(&event.event_id) {
            return Err("refused".into());
        }
        Ok(())
    }

    async fn erased(
        &self,
        _guest_ids: Vec<String>,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, String> {
        Ok(Vec::new())
    }
}

/// Decodes a delivery from `data` (raw, drawn from the descriptor, or a valid one changed)
/// and delivers it to a consumer that refuses some events.
pub fn run(data: &[u8]) {
    let c = &mut Choices::new(data);
    // The relay reads stored envelopes back leniently: any bytes, no panic.
    if c.byte().is_multiple_of(8) {
        let _ = EventEnvelope::decode(c.rest());
        return;
    }
    const REQ: &str = "guestloop.events.v1.DeliverEventsRequest";
    let valid = DeliverEventsRequest {
        events: (0..3)
            .map(|i| EventEnvelope {
                event_id: Uuid::from_u128(0x0195_a3c0_5f1e_7b62_9a4e_6f1b_2c3d_4e50 + i)
                    .to_string(),
                source: "guest-profile".into(),
                traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
                ..Default::default()
            })
            .collect(),
    };
    let Some(req) = request(REQ, &valid, c) else {
        return;
    };
    let fail: HashSet<String> = req
        .events
        .iter()
        .filter(|_| c.byte().is_multiple_of(5))
        .map(|e| e.event_id.clone())
        .collect();
    for e in &req.events {
        if let Some(p) = &e.payload {
            let name = crate::payload_name(p);
            assert!(
                !name.is_empty() && name.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_')
            );
        }
    }
    let consumer = Recorder {
        fail,
        applied: Mutex::new(Vec::new()),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let result = rt.block_on(deliver(&consumer, req.events.clone()));
    // The contract: events in order until the first one that fails; ids that are no UUID are
    // acknowledged without being applied; an error only when nothing was acknowledged.
    let mut expected = Vec::new();
    let mut failed = false;
    for e in &req.events {
        match Uuid::parse_str(&e.event_id) {
            Err(_) => expected.push(e.event_id.clone()),
            Ok(_) if consumer.fail.contains(&e.event_id) => {
                failed = true;
                break;
            }
            Ok(_) => expected.push(e.event_id.clone()),
        }
    }
    match result {
        Ok(acknowledged) => assert_eq!(acknowledged, expected),
        Err(_) => assert!(failed && expected.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        // Under a second in a debug build; the long run is `scripts/fuzz.sh`.
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn any_delivery_is_decoded_and_acknowledged_by_the_contract(
            data in proptest::collection::vec(any::<u8>(), 0..1024)
        ) {
            super::run(&data);
        }
    }
}
