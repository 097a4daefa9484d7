//! Generated protobuf messages and gRPC stubs for every Guestloop API, one module per
//! proto package, plus the encoded descriptor set that servers publish for reflection.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// The encoded `FileDescriptorSet` of every Guestloop proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/guestloop_descriptor.bin"));

pub mod import_response;
pub mod time;

/// Random messages from the descriptors, for the parser fuzzers (tests and `fuzz/`).
#[cfg(any(test, feature = "fuzzing"))]
pub mod arbitrary;

macro_rules! package {
    ($area:ident, $package:literal $(, $module:ident::$by_hand:ident)*) => {
        pub mod $area {
            pub mod v1 {
                tonic::include_proto!($package);
                // Messages build.rs maps to a hand-written type, under their usual path.
                $(pub use crate::$module::$by_hand;)*
            }
        }
    };
}

package!(common, "guestloop.common.v1");
package!(guestprofile, "guestloop.guestprofile.v1");
package!(events, "guestloop.events.v1");
package!(
    feedback,
    "guestloop.feedback.v1",
    import_response::ImportFeedbackResponse
);
package!(followup, "guestloop.followup.v1");
package!(notification, "guestloop.notification.v1");
package!(metrics, "guestloop.metrics.v1");
