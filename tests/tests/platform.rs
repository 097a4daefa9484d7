//! The five services as separate processes, as in production: each starts, migrates its own
//! schema, reports SERVING, serves /metrics, keeps out of the others' schemas, carries one
//! request's trace into its events, and stops cleanly on SIGTERM.

use guestloop_proto::common::v1::Date;
use guestloop_proto::feedback::v1 as fb;
use guestloop_proto::guestprofile::v1 as pb;
use guestloop_testkit::platform::{Platform, SERVICES};
use guestloop_testkit::{TEST_CHAIN_TOML, keys};
use sqlx::Connection;
use std::time::Duration;
use tracing::Instrument;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_starts_isolates_schemas_traces_and_stops() {
    let spec = guestloop_e2e::platform_spec(
        "platform",
        "guest-profile",
        TEST_CHAIN_TOML,
        Default::default(),
    )
    .await;
    let mut platform = Platform::start(&spec)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));

    // Every service answers health (Platform::start waited for it) and serves /metrics.
    for s in &platform.services {
        let reply = guestloop_testkit::scrape(("127.0.0.1", s.admin_port))
            .await
            .unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{}: {reply}", s.name);
    }

    // Each schema was migrated by its own service and is closed to the others' roles.
    for (name, schema, _) in SERVICES {
        let url = format!(
            "postgres://{schema}_svc@127.0.0.1:{}/{}",
            spec.cluster.port, spec.database
        );
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        let own: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {schema}.outbox"
        )))
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{name} reads its own schema: {e}"));
        assert!(own >= 0);
        for (other, other_schema, _) in SERVICES.iter().filter(|(n, _, _)| *n != name) {
            let denied = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT 1 FROM {other_schema}.outbox LIMIT 1"
            )))
            .execute(&mut conn)
            .await;
            assert!(
                denied.is_err(),
                "{name}'s role must not read {other}'s schema"
            );
        }
    }

    // One request's trace reaches the event it causes.
    let _ = guestloop_telemetry::init("e2e-test");
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let signer = guestloop_e2e::head_office_token(&spec.signing_key);
    let gp = platform.service("guest-profile").unwrap();
    let conn = guestloop_client::Connection::builder(gp.endpoint())
        .token(&signer)
        .connect_lazy()
        .unwrap();
    let span = tracing::info_span!("pms-push");
    guestloop_telemetry::propagation::set_parent_from_traceparent(
        &span,
        &format!("00-{trace_id}-00f067aa0ba902b7-01"),
    );
    let stay_id = async {
        let mut client = conn.guest_profile();
        let guest = client
            .create_guest(pb::CreateGuestRequest {
                property_id: "sh-bund".into(),
                guest: Some(pb::Guest {
                    family_name: "Li".into(),
                    contacts: Some(pb::Contacts {
                        phone: "+8613900139000".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .guest
            .unwrap();
        let date = |day| {
            Some(Date {
                year: 2026,
                month: 11,
                day,
            })
        };
        client
            .upsert_stay(pb::UpsertStayRequest {
                stay: Some(pb::Stay {
                    guest_id: guest.guest_id,
                    property_id: "sh-bund".into(),
                    pms_reservation_id: "R-1".into(),
                    status: pb::StayStatus::CheckedOut as i32,
                    arrival_date: date(20),
                    departure_date: date(22),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .stay
            .unwrap()
            .stay_id
    }
    .instrument(span)
    .await;
    let url = format!(
        "postgres://guest_profile_svc@127.0.0.1:{}/{}",
        spec.cluster.port, spec.database
    );
    let pool = sqlx::PgPool::connect(&format!("{url}?options=-csearch_path%3Dguest_profile"))
        .await
        .unwrap();
    let events = guestloop_outbox::envelopes_for(&pool, "stay", &stay_id)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "one check-out event");
    assert!(
        events[0].traceparent.contains(trace_id),
        "the event continues the caller's trace: {}",
        events[0].traceparent
    );

    // feedback-intake finds the guest through guest-profile, with its own service token.
    let fi = platform.service("feedback-intake").unwrap();
    let fi_conn = guestloop_client::Connection::builder(fi.endpoint())
        .token(&signer)
        .connect_lazy()
        .unwrap();
    let submitted = fi_conn
        .feedback()
        .submit_feedback(fb::SubmitFeedbackRequest {
            feedback: Some(fb::Feedback {
                property_id: "sh-bund".into(),
                channel: fb::FeedbackChannel::Phone as i32,
                text: "The shower has no hot water".into(),
                ..Default::default()
            }),
            guest: Some(fb::GuestReference {
                phone: "+86 139 0013 9000".into(),
                ..Default::default()
            }),
            idempotency_key: "e2e-call-1".into(),
            complaint: Some(fb::CaseDetails::default()),
        })
        .await
        .unwrap()
        .into_inner();
    let feedback = submitted.feedback.unwrap();
    assert_eq!(feedback.guest_match, fb::GuestMatch::ByPhone as i32);
    assert!(!feedback.guest_id.is_empty());
    assert_eq!(submitted.case.unwrap().guest_id, feedback.guest_id);

    // SIGTERM: each drains and exits cleanly.
    for s in platform.services.iter_mut().rev() {
        let status = s.stop(Duration::from_secs(25)).unwrap().unwrap();
        assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            s.name,
            s.log_tail()
        );
    }
    let _ = keys();
}
