//! The gRPC interceptor that turns a bearer token into a [`Principal`] on the request, or
//! answers UNAUTHENTICATED; then the caller's rate limit, if one is set. Health and
//! reflection are served outside it, so probes and tools work without a token.

use crate::{CallerLimit, Principal, Role, TokenVerifier};
use std::sync::Arc;
use tonic::{Request, Status};

#[derive(Debug, Clone)]
pub struct AuthInterceptor {
    verifier: Arc<TokenVerifier>,
    limit: Option<Arc<CallerLimit>>,
}

impl AuthInterceptor {
    pub fn new(verifier: TokenVerifier) -> Self {
        Self {
            verifier: Arc::new(verifier),
            limit: None,
        }
    }

    /// Refuses a caller's calls beyond its rate with RESOURCE_EXHAUSTED (`rate.rs`).
    pub fn with_caller_limit(mut self, limit: Option<CallerLimit>) -> Self {
        self.limit = limit.map(Arc::new);
        self
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .ok_or_else(|| Status::unauthenticated("authorization is not a bearer token"))?;
        let claims = self
            .verifier
            .verify(token.trim())
            .map_err(|e| Status::unauthenticated(e.to_string()))?;
        let principal = claims
            .principal()
            .map_err(|e| Status::unauthenticated(e.to_string()))?;
        if let Some(limit) = &self.limit
            && principal.role != Role::Service
            && !limit.admit(&principal.subject)
        {
            // No subject in the label: a subject can name a person.
            metrics::counter!("grpc_server_rate_limited_total").increment(1);
            return Err(Status::resource_exhausted(
                "rate limit for this caller exceeded; retry later",
            ));
        }
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The verified caller of a request that passed [`AuthInterceptor`].
pub fn principal<T>(request: &Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no verified caller"))
}
