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

/// An access-matrix probe: records which RPCs an outsider called, checks each refusal's
/// code, and that no secret of the protected objects shows in an error (or, with
/// `check_answers`, in an answer). Compare `called` with [`rpc_names`] at the end.
#[derive(Debug)]
pub struct AccessProbe<'a> {
    pub who: &'a str,
    pub secrets: Vec<String>,
    pub called: BTreeSet<String>,
    /// Also look for secrets in successful answers (their Debug text).
    pub check_answers: bool,
}

impl AccessProbe<'_> {
    /// The call must fail with one of `codes`, revealing no secret.
    #[track_caller]
    pub fn refused<T: std::fmt::Debug>(
        &mut self,
        rpc: &str,
        result: Result<T, Status>,
        codes: &[Code],
    ) {
        self.called.insert(rpc.to_string());
        let status = match result {
            Ok(v) => panic!("{}: {rpc} answered {v:?}", self.who),
            Err(s) => s,
        };
        assert!(
            codes.contains(&status.code()),
            "{}: {rpc} answered {:?} ({}), expected one of {codes:?}",
            self.who,
            status.code(),
            status.message()
        );
        self.no_secret(rpc, status.message());
    }

    /// The call must succeed; its answer is returned for further checks.
    #[track_caller]
    pub fn answered<T: std::fmt::Debug>(
        &mut self,
        rpc: &str,
        result: Result<tonic::Response<T>, Status>,
    ) -> T {
        self.called.insert(rpc.to_string());
        let v = result
            .unwrap_or_else(|s| panic!("{}: {rpc} failed: {s:?}", self.who))
            .into_inner();
        if self.check_answers {
            self.no_secret(rpc, &format!("{v:?}"));
        }
        v
    }

    #[track_caller]
    fn no_secret(&self, rpc: &str, text: &str) {
        for secret in &self.secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{}: {rpc} leaked {secret}: {text}",
                self.who
            );
        }
    }
}
