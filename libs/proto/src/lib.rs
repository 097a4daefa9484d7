//! Generated protobuf messages and gRPC stubs for every Guestloop API, one module per
//! proto package, plus the encoded descriptor set that servers publish for reflection.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// The encoded `FileDescriptorSet` of every Guestloop proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/guestloop_descriptor.bin"));

pub mod time;

/// Random messages from the descriptors, for the parser fuzzers (tests and `fuzz/`).
#[cfg(any(test, feature = "fuzzing"))]
pub mod arbitrary;

macro_rules! package {
    ($area:ident, $package:literal) => {
        pub mod $area {
            pub mod v1 {
                tonic::include_proto!($package);
            }
        }
    };
}

package!(common, "guestloop.common.v1");
package!(guestprofile, "guestloop.guestprofile.v1");
package!(events, "guestloop.events.v1");
package!(feedback, "guestloop.feedback.v1");
package!(followup, "guestloop.followup.v1");
package!(notification, "guestloop.notification.v1");
package!(metrics, "guestloop.metrics.v1");
