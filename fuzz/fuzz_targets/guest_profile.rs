//! R8: guest-profile's request and event parsers (src/fuzzing.rs of the service): the first
//! byte picks the parse step, the rest are the choice bytes its input is drawn from.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((surface, rest)) = data.split_first() {
        guest_profile::fuzzing::run(usize::from(*surface), rest);
    }
});
