//! Generated protobuf messages and gRPC stubs for every Guestloop API, one module per
//! proto package, plus the encoded descriptor set that servers publish for reflection.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// The encoded `FileDescriptorSet` of every Guestloop proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/guestloop_descriptor.bin"));

pub mod common {
    pub mod v1 {
        tonic::include_proto!("guestloop.common.v1");
    }
}

pub mod guestprofile {
    pub mod v1 {
        tonic::include_proto!("guestloop.guestprofile.v1");
    }
}
