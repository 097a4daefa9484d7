//! The access-matrix machinery of the authorization sweeps (follow-up-scheduler,
//! notification, metrics): the callers, what a call must answer for each, a snapshot of a
//! service's schema (refused calls must leave it as it was), and tokens that must not get in.

use crate::keys;
use guestloop_auth::{Claims, Role, SigningKey, TokenSigner};
use sqlx::PgPool;
use std::collections::BTreeSet;
use tonic::{Code, Response, Status};

/// One caller of the matrix.
pub struct Who {
    pub name: &'static str,
    /// None: no authorization header at all.
    pub token: Option<String>,
    pub role: Role,
    /// Whether sh-bund is inside the caller's scope.
    pub inside: bool,
    /// A property the caller may act for: their own, sh-bund for insiders.
    pub own: &'static str,
}

fn who(name: &'static str, token: String, role: Role, inside: bool, own: &'static str) -> Who {
    Who {
        name,
        token: Some(token),
        role,
        inside,
        own,
    }
}

/// Everyone whose scope leaves sh-bund out, nearest first.
pub fn outsiders() -> Vec<Who> {
    let k = keys();
    let hz_manager = k.token(Role::PropertyManager, &["hz-lake"], None);
    vec![
        who(
            "staff of hz-lake (same region)",
            k.staff("hz-lake"),
            Role::PropertyStaff,
            false,
            "hz-lake",
        ),
        who(
            "manager of hz-lake (same region)",
            hz_manager,
            Role::PropertyManager,
            false,
            "hz-lake",
        ),
        who(
            "staff of hk-harbour (other region)",
            k.staff("hk-harbour"),
            Role::PropertyStaff,
            false,
            "hk-harbour",
        ),
        who(
            "regional manager of south",
            k.regional("south"),
            Role::RegionalManager,
            false,
            "sz-bay",
        ),
    ]
}

/// Everyone whose scope takes sh-bund in.
pub fn insiders() -> Vec<Who> {
    let k = keys();
    let two = k.token(Role::PropertyStaff, &["hz-lake", "sh-bund"], None);
    let manager = k.token(Role::PropertyManager, &["sh-bund"], None);
    let service = k.token(Role::Service, &[], None);
    vec![
        who(
            "staff of sh-bund",
            k.staff("sh-bund"),
            Role::PropertyStaff,
            true,
            "sh-bund",
        ),
        who(
            "manager of sh-bund",
            manager,
            Role::PropertyManager,
            true,
            "sh-bund",
        ),
        who(
            "staff of hz-lake and sh-bund",
            two,
            Role::PropertyStaff,
            true,
            "sh-bund",
        ),
        who(
            "regional manager of east",
            k.regional("east"),
            Role::RegionalManager,
            true,
            "sh-bund",
        ),
        who(
            "head office",
            k.head_office(),
            Role::HeadOffice,
            true,
            "sh-bund",
        ),
        who("a service", service, Role::Service, true, "sh-bund"),
    ]
}

/// What one call must answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expect {
    /// Refused with this code; the message names nothing of sh-bund.
    Refused(Code),
    /// Answered, and nothing of sh-bund is in the answer.
    Blind,
    /// Answered, showing the sh-bund object the call asked about.
    Sees,
}

/// How a row's expectation follows from the caller.
#[derive(Debug, Clone, Copy)]
pub enum Policy {
    /// Insiders see sh-bund's object; outsiders are refused with the code.
    Scoped(Code),
    /// Insiders see it; outsiders get an answer without it.
    Filtered,
    /// Only this role gets through (and sees); everyone else PERMISSION_DENIED.
    Only(Role),
    /// Anything else: decided per caller.
    // Kept in every copy of this module so the copies stay alike; not every sweep uses it.
    #[allow(dead_code)]
    By(fn(&Who) -> Expect),
}

impl Policy {
    pub fn expect(self, who: &Who) -> Expect {
        match self {
            Policy::Scoped(_) | Policy::Filtered if who.inside => Expect::Sees,
            Policy::Scoped(code) => Expect::Refused(code),
            Policy::Filtered => Expect::Blind,
            Policy::Only(role) if who.role == role => Expect::Sees,
            Policy::Only(_) => Expect::Refused(Code::PermissionDenied),
            Policy::By(f) => f(who),
        }
    }
}

/// A successful answer: its Debug text, and what an insider must find in it.
#[derive(Debug)]
pub struct Answer {
    pub text: String,
    pub want: String,
}

pub fn answer<T: std::fmt::Debug>(
    r: Result<Response<T>, Status>,
    want: &str,
) -> Result<Answer, Status> {
    r.map(|a| Answer {
        text: format!("{:?}", a.into_inner()),
        want: want.to_string(),
    })
}

/// A connection to `addr` as `who` (no authorization header for a caller without a token).
pub fn connection(addr: std::net::SocketAddr, who: &Who) -> guestloop_client::Connection {
    let mut b = guestloop_client::Connection::builder(format!("http://{addr}"))
        .timeout(std::time::Duration::from_secs(30));
    if let Some(t) = &who.token {
        b = b.token(t);
    }
    b.connect_lazy().expect("client")
}

/// Calls every row of `table` as `who` and checks each answer against what `expect` makes
/// of the row's policy; returns how many cells were checked.
pub async fn run_table<K: Copy + std::fmt::Debug>(
    who: &Who,
    table: &[(K, &str, Policy)],
    secrets: &[String],
    expect: impl Fn(Policy) -> Expect,
    mut call: impl AsyncFnMut(K) -> Result<Answer, Status>,
) -> usize {
    for (what, rpc, policy) in table {
        let got = call(*what).await;
        check(
            who.name,
            &format!("{rpc} ({what:?})"),
            got,
            expect(*policy),
            secrets,
        );
    }
    table.len()
}

/// Asserts one cell of the matrix.
#[track_caller]
pub fn check(
    who: &str,
    rpc: &str,
    got: Result<Answer, Status>,
    expect: Expect,
    secrets: &[String],
) {
    let leaked = |text: &str| secrets.iter().find(|s| text.contains(s.as_str())).cloned();
    match (expect, got) {
        (Expect::Refused(code), Err(s)) => {
            assert_eq!(
                s.code(),
                code,
                "{who}: {rpc} answered {s:?}, expected {code:?}"
            );
            assert_eq!(leaked(s.message()), None, "{who}: {rpc} leaked in {s:?}");
        }
        (Expect::Blind, Ok(a)) => {
            assert_eq!(leaked(&a.text), None, "{who}: {rpc} leaked in {}", a.text)
        }
        (Expect::Sees, Ok(a)) => assert!(
            a.text.contains(&a.want),
            "{who}: {rpc} does not show {}: {}",
            a.want,
            a.text
        ),
        (expect, got) => panic!("{who}: {rpc} expected {expect:?}, got {got:?}"),
    }
}

/// Every row of every table in the service's schema (count and digest), so a refused call
/// that wrote anything, anywhere, shows.
pub async fn snapshot(pool: &PgPool) -> Vec<(String, i64, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("tables");
    assert!(!tables.is_empty(), "the snapshot sees the service's tables");
    let mut out = Vec::new();
    for t in tables {
        let sql = format!(
            "SELECT COUNT(*), COALESCE(md5(string_agg(x::text, E'\\n' ORDER BY x::text)), '')
             FROM \"{t}\" x"
        );
        let (n, digest): (i64, String) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("snapshot of {t}: {e}"));
        out.push((t, n, digest));
    }
    out
}

/// The RPCs a table covers must be all of the service's, and DeliverEvents.
pub fn assert_covers(called: &BTreeSet<&str>, package: &str, service: &str) {
    let mut all = crate::grpc::rpc_names(package, service);
    all.insert("DeliverEvents".to_string());
    let called: BTreeSet<String> = called.iter().map(|s| s.to_string()).collect();
    assert_eq!(called, all, "the matrix must call every RPC");
}

fn claims(role: Role) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: "guestloop".into(),
        aud: guestloop_auth::DEFAULT_AUDIENCE.into(),
        sub: "someone".into(),
        iat: now,
        nbf: None,
        exp: now + 600,
        jti: uuid::Uuid::new_v4().to_string(),
        role,
        properties: vec![],
        region: None,
    }
}

/// Callers that must not get in: no token, and tokens the service cannot trust (each would
/// be head office if it were believed).
pub fn strangers() -> Vec<Who> {
    let now = chrono::Utc::now().timestamp();
    let signer = keys().signer();
    let (other_key, _) = guestloop_auth::generate_key_pair_pem();
    let other = TokenSigner::new(SigningKey::from_pem(&other_key).expect("key"), "guestloop");
    let stranger = |name, token| Who {
        name,
        token,
        role: Role::HeadOffice,
        inside: false,
        own: "sh-bund",
    };
    let expired = Claims {
        iat: now - 7200,
        exp: now - 3600,
        ..claims(Role::HeadOffice)
    };
    let audience = Claims {
        aud: "another-api".into(),
        ..claims(Role::HeadOffice)
    };
    vec![
        stranger("no token", None),
        stranger("garbage", Some("garbage".into())),
        stranger("expired", Some(signer.sign(&expired))),
        stranger("another key", Some(other.sign(&claims(Role::HeadOffice)))),
        stranger("another audience", Some(signer.sign(&audience))),
    ]
}
