//! R8, request decoding through the real servers: every RPC of the five services (and the
//! event intake of the four consumers) gets request bodies no client library would send —
//! random bytes in a valid gRPC frame, random but well-typed messages (drawn from the
//! descriptors, so the handlers run on them), frames whose length prefix runs past the body
//! or past any limit, a body cut inside the 5-byte frame header, a compressed flag without
//! compression, an unknown flag, two messages for a unary call — over real HTTP/2 to the
//! service binaries. Every answer must be a gRPC status (a transport error would mean a
//! dropped connection: a handler that panicked), frames that are not a message must be
//! refused, and afterwards each service must still be SERVING with no panic in its log.
//!
//! The long version of the parser half is `scripts/fuzz.sh` (cargo-fuzz, fuzz/).

use bytes::Bytes;
use guestloop_proto::arbitrary::{Choices, encoded};
use http_body_util::BodyExt;
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tonic::Code;
use tonic::client::GrpcService;

/// Each kind of body is sent this many times to every method (random ones differ each time);
/// `R8_ROUNDS` and `R8_SEED` run longer or other bodies.
const ROUNDS: usize = 6;
/// Calls in flight per service.
const IN_FLIGHT: usize = 16;

/// A request body and whether it is a well-formed gRPC message stream.
#[derive(Debug, Clone)]
struct Body {
    kind: &'static str,
    bytes: Vec<u8>,
    /// False for frames the server cannot take as a message: it must refuse them.
    well_formed: bool,
}

fn frame(flag: u8, declared: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&declared.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// splitmix64: a fixed-seed stream, so a failing run repeats exactly.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() as usize) % (max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn bodies(input_type: &str, rng: &mut Random) -> Vec<Body> {
    let random = rng.bytes(300);
    let typed = encoded(input_type, &mut Choices::new(&rng.bytes(2000)));
    // At least one byte: tonic (0.14.9) ends a request stream cleanly when its last frame
    // header announces a message and no byte of it follows, so a client-streaming call
    // (ImportFeedback) would take such a body as a whole one; with a byte after the header
    // the cut message is refused like any other.
    let mut small = rng.bytes(40);
    small.push(rng.next() as u8);
    let len = |b: &[u8]| b.len() as u32;
    vec![
        Body {
            kind: "random bytes",
            well_formed: true,
            bytes: frame(0, len(&random), &random),
        },
        Body {
            kind: "typed message",
            well_formed: true,
            bytes: frame(0, len(&typed), &typed),
        },
        Body {
            kind: "empty message",
            well_formed: true,
            bytes: frame(0, 0, &[]),
        },
        Body {
            kind: "no message",
            well_formed: true,
            bytes: Vec::new(),
        },
        Body {
            kind: "two messages",
            well_formed: true,
            bytes: [frame(0, len(&small), &small), frame(0, len(&typed), &typed)].concat(),
        },
        Body {
            kind: "length past the body",
            well_formed: false,
            bytes: frame(0, len(&small) + 1 + (rng.next() % 1000) as u32, &small),
        },
        Body {
            kind: "length past every limit",
            well_formed: false,
            bytes: frame(0, u32::MAX - (rng.next() % 16) as u32, &small),
        },
        Body {
            kind: "cut inside the frame header",
            well_formed: false,
            bytes: frame(0, len(&small), &small)[..1 + (rng.next() % 4) as usize].to_vec(),
        },
        Body {
            kind: "compressed without an encoding",
            well_formed: false,
            bytes: frame(1, len(&small), &small),
        },
        Body {
            kind: "unknown flag",
            well_formed: false,
            bytes: frame(2 + (rng.next() % 250) as u8, len(&small), &small),
        },
    ]
}

/// Every method of `service` ("guestloop.feedback.v1.FeedbackIntakeService"): (path,
/// input type, server streaming).
fn methods(service: &str) -> Vec<(String, String, bool)> {
    let set = prost_types::FileDescriptorSet::decode(guestloop_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let mut out = Vec::new();
    for f in &set.file {
        for s in &f.service {
            if format!("{}.{}", f.package(), s.name()) != service {
                continue;
            }
            for m in &s.method {
                out.push((
                    format!("/{service}/{}", m.name()),
                    m.input_type().trim_start_matches('.').to_string(),
                    m.server_streaming(),
                ));
            }
        }
    }
    assert!(!out.is_empty(), "no methods of {service}");
    out
}

/// The gRPC code of an answer (trailers-only or trailers), or why there is none.
async fn call(
    channel: &mut tonic::transport::Channel,
    path: &str,
    token: &str,
    body: Vec<u8>,
    streaming: bool,
) -> Result<Option<(Code, String)>, String> {
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://guestloop{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {token}"))
        .header("grpc-timeout", "10S")
        .body(tonic::body::Body::new(
            http_body_util::Full::new(Bytes::from(body)).map_err(|e| match e {}),
        ))
        .expect("a request");
    std::future::poll_fn(|cx| GrpcService::poll_ready(channel, cx))
        .await
        .map_err(|e| format!("not ready: {e}"))?;
    let response = GrpcService::call(channel, request)
        .await
        .map_err(|e| format!("transport: {e:?}"))?;
    if response.status() != http::StatusCode::OK {
        return Err(format!("HTTP {}", response.status()));
    }
    let header_code = response.headers().get("grpc-status").cloned();
    let header_message = response.headers().get("grpc-message").cloned();
    let read = tokio::time::timeout(
        Duration::from_secs(if streaming { 2 } else { 15 }),
        response.into_body().collect(),
    )
    .await;
    let collected = match read {
        // A watch that accepted its request streams until the client leaves.
        Err(_) if streaming => return Ok(None),
        Err(_) => return Err("no answer in 15 s".into()),
        Ok(Err(e)) => return Err(format!("body: {e:?}")),
        Ok(Ok(c)) => c,
    };
    let trailer = |name: &str| collected.trailers().and_then(|t| t.get(name)).cloned();
    let status = header_code.or_else(|| trailer("grpc-status"));
    let message = header_message
        .or_else(|| trailer("grpc-message"))
        .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
        .unwrap_or_default();
    let status = status.ok_or("an answer without grpc-status")?;
    let code: i32 = status
        .to_str()
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("grpc-status {status:?}"))?;
    if !(0..=16).contains(&code) {
        return Err(format!("grpc-status {code} is no gRPC code"));
    }
    Ok(Some((Code::from_i32(code), message)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_answers_malformed_requests_with_a_status_and_stays_up() {
    let spec = guestloop_e2e::platform_spec(
        "request-decoding",
        "guest-profile",
        guestloop_testkit::TEST_CHAIN_TOML,
        BTreeMap::new(),
    )
    .await;
    let signer = guestloop_auth::TokenSigner::new(
        guestloop_auth::SigningKey::from_file(&spec.signing_key.to_string_lossy())
            .expect("the platform's signing key"),
        "guestloop",
    );
    let token = |role| {
        signer
            .issue("r8-fuzz", role, vec![], None, Duration::from_secs(1800))
            .expect("a token")
    };
    let (head_office, service) = (
        token(guestloop_auth::Role::HeadOffice),
        token(guestloop_auth::Role::Service),
    );
    let services = [
        (
            "guest-profile",
            "guestloop.guestprofile.v1.GuestProfileService",
            false,
        ),
        (
            "feedback-intake",
            "guestloop.feedback.v1.FeedbackIntakeService",
            true,
        ),
        (
            "follow-up-scheduler",
            "guestloop.followup.v1.FollowUpSchedulerService",
            true,
        ),
        (
            "notification",
            "guestloop.notification.v1.NotificationService",
            true,
        ),
        ("metrics", "guestloop.metrics.v1.MetricsService", true),
    ];
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = env("R8_ROUNDS", ROUNDS as u64) as usize;
    let mut rng = Random(env("R8_SEED", 0x5238_2026));
    let mut failures = Vec::new();
    for (name, api, consumes_events) in services {
        let (mut process, _) = guestloop_e2e::start_alone(&spec, name).await;
        let channel = tonic::transport::Endpoint::from_shared(process.endpoint())
            .expect("endpoint")
            .connect()
            .await
            .expect("a connection");
        let mut targets: Vec<(String, String, bool, &str)> = methods(api)
            .into_iter()
            .map(|(p, t, s)| (p, t, s, head_office.as_str()))
            .collect();
        if consumes_events {
            targets.extend(
                methods("guestloop.events.v1.EventIngestService")
                    .into_iter()
                    .map(|(p, t, s)| (p, t, s, service.as_str())),
            );
        }
        let mut calls = Vec::new();
        for (path, input, streaming, token) in &targets {
            for _ in 0..rounds {
                for body in bodies(input, &mut rng) {
                    calls.push((path.clone(), *streaming, token.to_string(), body));
                }
            }
        }
        let total = calls.len();
        let mut seen: BTreeMap<(String, &'static str), BTreeSet<String>> = BTreeMap::new();
        let mut pending = calls.into_iter();
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < IN_FLIGHT {
                let Some((path, streaming, token, body)) = pending.next() else {
                    break;
                };
                let mut channel = channel.clone();
                running.spawn(async move {
                    let answer =
                        call(&mut channel, &path, &token, body.bytes.clone(), streaming).await;
                    (path, body, answer)
                });
            }
            let Some(done) = running.join_next().await else {
                break;
            };
            let (path, body, answer) = done.expect("a call task");
            let method = path.rsplit('/').next().unwrap_or_default().to_string();
            match answer {
                Err(e) => failures.push(format!("{name} {method} ({}): {e}", body.kind)),
                Ok(Some((Code::Ok, _))) if !body.well_formed => failures.push(format!(
                    "{name} {method} accepted a request with {}",
                    body.kind
                )),
                // A request that decodes is the client's: what is wrong with it is
                // INVALID_ARGUMENT (or NOT_FOUND, ...), never the server's INTERNAL.
                Ok(Some((Code::Internal, message))) if body.kind == "typed message" => {
                    failures.push(format!("{name} {method} answered INTERNAL: {message}"))
                }
                Ok(answer) => {
                    let code = answer.map(|(c, _)| c);
                    seen.entry((method, body.kind))
                        .or_default()
                        .insert(code.map_or("streaming".into(), |c| format!("{c:?}")));
                }
            }
        }
        // The codes seen per kind of body, for the record (and to show the calls ran).
        let mut by_kind: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for ((_, kind), codes) in &seen {
            by_kind
                .entry(kind)
                .or_default()
                .extend(codes.iter().cloned());
        }
        println!("{name}: {total} calls to {} methods", targets.len());
        for (kind, codes) in by_kind {
            println!("  {kind}: {codes:?}");
        }
        assert!(
            guestloop_testkit::process::serving(&process.endpoint()).await,
            "{name} is not SERVING after the malformed requests:\n{}",
            process.log_tail()
        );
        let log = std::fs::read_to_string(&process.log_path).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| l.contains("panicked")) {
            failures.push(format!("{name} logged a panic: {line}"));
        }
        let _ = process.stop(Duration::from_secs(10));
    }
    assert!(
        failures.is_empty(),
        "{} calls were not answered with a proper status:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
