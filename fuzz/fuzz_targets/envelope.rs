//! R8: the event envelope decoder and `consume::deliver` (libs/outbox/src/fuzzing.rs): any
//! bytes as a DeliverEventsRequest or a stored envelope.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    guestloop_outbox::fuzzing::run(data);
});
