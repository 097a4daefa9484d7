//! A leak reported at once (issue 11), across real processes: a member of staff reads many
//! guests' contact details; guest-profile's detector raises one alert, and the general
//! manager of the property whose guests were read receives it by e-mail through
//! notification (a real SMTP server), once, while a service reading as much raises nothing.

use guestloop_e2e::eventually;
use guestloop_proto::guestprofile::v1 as gp;
use guestloop_testkit::platform::Platform;
use guestloop_testkit::{scenario, sinks};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusual_reader_is_reported_to_the_general_manager() {
    let smtp = sinks::smtp_sink();
    let config = scenario::config_toml(smtp.port)
        + "\n[leak]\nwindow = \"1h\"\nreads_per_window = 4\ncheck_interval = \"200ms\"\n";
    let spec =
        guestloop_e2e::platform_spec("leak", "notification", &config, Default::default()).await;
    let mut platform = Platform::start(&spec)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let endpoint = platform.service("guest-profile").unwrap().endpoint();
    let client = |token: &str| {
        guestloop_client::Connection::builder(endpoint.clone())
            .token(token)
            .connect_lazy()
            .unwrap()
            .guest_profile()
    };
    let head_office = guestloop_e2e::head_office_token(&spec.signing_key);
    let key = guestloop_auth::SigningKey::from_file(&spec.signing_key.to_string_lossy()).unwrap();
    let signer = guestloop_auth::TokenSigner::new(key, "guestloop");
    let token = |subject: &str, role| {
        signer
            .issue(
                subject,
                role,
                // A service is chain-wide; staff are of their property.
                if role == guestloop_auth::Role::Service {
                    vec![]
                } else {
                    vec!["hz-lake".to_string()]
                },
                None,
                Duration::from_secs(600),
            )
            .unwrap()
    };
    let mut guests = Vec::new();
    for i in 0..3 {
        let g = client(&head_office)
            .create_guest(gp::CreateGuestRequest {
                property_id: "hz-lake".into(),
                guest: Some(gp::Guest {
                    family_name: format!("Leakson{i}"),
                    contacts: Some(gp::Contacts {
                        email: format!("leak{i}@guest.test"),
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
        guests.push(g.guest_id);
    }
    let read_all = |token: String| {
        let guests = guests.clone();
        let mut c = client(&token);
        async move {
            for _ in 0..2 {
                for id in &guests {
                    c.get_guest(gp::GetGuestRequest {
                        guest_id: id.clone(),
                    })
                    .await
                    .unwrap();
                }
            }
        }
    };
    // A service reads 6 contacts: the platform at work, not a leak.
    read_all(token("notification", guestloop_auth::Role::Service)).await;
    // A front-desk account reads 6 contacts of 3 guests in minutes: over 4.
    read_all(token("desk-7", guestloop_auth::Role::PropertyStaff)).await;

    let mails = eventually("the GM's alert mail", Duration::from_secs(30), || {
        let mails: Vec<_> = smtp
            .mails()
            .into_iter()
            .filter(|m| m["rcpt_tos"].to_string().contains("gm@hz-lake.test"))
            .collect();
        std::future::ready((!mails.is_empty()).then_some(mails))
    })
    .await;
    let mail = &mails[0];
    let subject = mail["subject"].as_str().unwrap_or_default();
    let body = mail["body"].as_str().unwrap_or_default();
    assert!(subject.contains("Possible data leak"), "{mail}");
    assert!(
        body.contains("desk-7 (property_staff)")
            && body.contains("3 guests")
            && body.contains("6 reads"),
        "{body}"
    );
    // The report names the reader and its alert; the service raised none.
    let now = chrono::Utc::now().timestamp();
    let ts = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
    let report = client(&head_office)
        .list_contact_reads(gp::ListContactReadsRequest {
            property_id: "hz-lake".into(),
            time_range: Some(guestloop_proto::common::v1::TimeRange {
                start_time: ts(now - 3600),
                end_time: ts(now + 60),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let alerted: Vec<&str> = report.alerts.iter().map(|a| a.accessor.as_str()).collect();
    assert_eq!(alerted, ["desk-7"], "{report:?}");
    // Once: later rounds send nothing more, and no other property's manager heard of it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let alerts: Vec<_> = smtp
        .mails()
        .into_iter()
        .filter(|m| m["subject"].to_string().contains("Possible data leak"))
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    platform.stop();
}
