//! Who is calling and what they may see. Tokens are JWTs signed with Ed25519 (EdDSA),
//! checked by the `jsonwebtoken` library against the key their `kid` names; a
//! verified token becomes a [`Principal`] in the request's extensions, and
//! [`Principal::check_property`] is the one object-level check every handler makes: an
//! object outside the caller's scope answers NOT_FOUND, never its data.

mod interceptor;
mod keys;
mod principal;
mod rate;
mod service_tokens;
mod token;

pub use interceptor::{AuthInterceptor, principal};
pub use keys::{KeyError, SigningKey, VerifyingKey, generate_key_pair_pem};
pub use principal::{Principal, Role, Scope};
pub use rate::CallerLimit;
pub use service_tokens::ServiceTokens;
pub use token::{Claims, DEFAULT_AUDIENCE, TokenError, TokenSigner, TokenVerifier};
