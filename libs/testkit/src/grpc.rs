//! Assertions on gRPC answers that every service's tests make: the code, the fields an
//! INVALID_ARGUMENT names, and the full list of a service's RPCs (so an access matrix that
//! forgets a new RPC fails).

use prost::Message;
use std::collections::BTreeSet;
use tonic::{Code, Status};

/// The fields named by the `google.rpc.BadRequest` in a status.
pub fn violated_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Asserts INVALID_ARGUMENT with a violation of `field`.
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) -> Status {
    let status = result.expect_err("expected INVALID_ARGUMENT");
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "expected INVALID_ARGUMENT naming {field}, got {status:?}"
    );
    let fields = violated_fields(&status);
    assert!(
        fields.iter().any(|f| f == field),
        "expected a violation of `{field}`, got {fields:?} ({})",
        status.message()
    );
    status
}

/// Asserts the call failed with `code`.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Ok(v) => panic!("expected {code:?}, got Ok({v:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            status
        }
    }
}

/// Every method name of `service` in `package`, from the compiled descriptors.
pub fn rpc_names(package: &str, service: &str) -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(guestloop_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    set.file
        .iter()
        .filter(|f| f.package() == package)
        .flat_map(|f| f.service.iter())
        .filter(|s| s.name() == service)
        .flat_map(|s| s.method.iter().map(|m| m.name().to_string()))
        .collect()
}
