//! Leak reporting (issue 11): who read a property's guests' contacts in a window, per
//! reader; and a reader (not a service) reading more contacts in one window than
//! `leak.reads_per_window` raising an alert, once, shown in the report and counted on
//! /metrics without naming anyone.

mod common;

use common::*;
use guestloop_auth::Role;
use guestloop_proto::common::v1::TimeRange;
use guestloop_proto::guestprofile::v1 as pb;
use std::time::{Duration, Instant};

fn last_hour() -> Option<TimeRange> {
    let now = chrono::Utc::now();
    let ts = |t: chrono::DateTime<chrono::Utc>| prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    };
    Some(TimeRange {
        start_time: Some(ts(now - chrono::Duration::hours(1))),
        end_time: Some(ts(now + chrono::Duration::minutes(1))),
    })
}

async fn read(app: &TestApp, token: &str, guest_id: &str, times: usize) {
    for _ in 0..times {
        app.client(token)
            .get_guest(pb::GetGuestRequest {
                guest_id: guest_id.into(),
            })
            .await
            .unwrap();
    }
}

async fn report(
    app: &TestApp,
    token: &str,
    property: &str,
) -> Result<pb::ListContactReadsResponse, tonic::Status> {
    app.client(token)
        .list_contact_reads(pb::ListContactReadsRequest {
            property_id: property.into(),
            time_range: last_hour(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_read_a_propertys_contacts_and_an_unusual_reader_is_alerted() {
    let app = TestApp::spawn_with(
        "[leak]\nwindow = \"1h\"\nreads_per_window = 3\ncheck_interval = \"100ms\"\n",
    )
    .await;
    let bund = app.create_guest("sh-bund", guest()).await;
    let bund2 = app.create_guest("sh-bund", guest()).await;
    let harbour = app.create_guest("hk-harbour", guest()).await;
    let snoop = token_as("snoop-wu", Role::PropertyStaff, &["sh-bund"], None);
    let desk = token_as("desk-li", Role::PropertyStaff, &["sh-bund"], None);
    let hk = token_as("hk-reader", Role::PropertyStaff, &["hk-harbour"], None);
    read(&app, &snoop, &bund.guest_id, 3).await;
    read(&app, &snoop, &bund2.guest_id, 2).await;
    read(&app, &desk, &bund.guest_id, 1).await;
    read(&app, &hk, &harbour.guest_id, 5).await;
    // A service reading as much is the platform at work (notification reads an address
    // per send), not a leak.
    let service = guestloop_testkit::keys().token(Role::Service, &[], None);
    read(&app, &service, &bund.guest_id, 5).await;

    let start = Instant::now();
    let got = loop {
        let got = report(&app, &manager("sh-bund"), "sh-bund").await.unwrap();
        if !got.alerts.is_empty() {
            break got;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no alert: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reader = |who: &str| got.readers.iter().find(|r| r.accessor == who);
    let s = reader("snoop-wu").expect("snoop-wu read sh-bund's guests");
    assert_eq!(
        (s.reads, s.guests, s.accessor_role.as_str()),
        (5, 2, "property_staff")
    );
    let secs = |t: &Option<prost_types::Timestamp>| t.as_ref().map(|t| (t.seconds, t.nanos));
    assert!(secs(&s.first_read_time) <= secs(&s.last_read_time));
    assert!(s.first_read_time.is_some());
    assert_eq!(
        got.readers[0].accessor, "snoop-wu",
        "most reads first (service excepted): {got:?}"
    );
    assert_eq!(reader("desk-li").map(|r| (r.reads, r.guests)), Some((1, 1)));
    // hk-harbour's guest is not sh-bund's.
    assert!(reader("hk-reader").is_none(), "{got:?}");
    // Alerts: snoop-wu (5) and hk-reader (5) are over 3, desk-li is not, the service is
    // excepted; sh-bund's report shows its readers' alerts only.
    assert_eq!(got.alerts.len(), 1, "{got:?}");
    let a = &got.alerts[0];
    assert_eq!((a.accessor.as_str(), a.reads, a.guests), ("snoop-wu", 5, 2));
    let hk_report = report(&app, &guestloop_testkit::keys().head_office(), "hk-harbour")
        .await
        .unwrap();
    assert_eq!(
        hk_report
            .alerts
            .iter()
            .map(|a| a.accessor.as_str())
            .collect::<Vec<_>>(),
        ["hk-reader"]
    );
    // Raised once per reader and window, whatever the rounds since.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(app.count("contact_read_alerts").await, 2);
    let body = app.scrape().await;
    assert!(
        body.contains("guestloop_contact_read_bursts_total 2"),
        "{body}"
    );
    assert!(!body.contains("snoop-wu") && !body.contains("hk-reader"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_is_for_the_propertys_managers_and_checks_its_window() {
    let app = TestApp::spawn().await;
    for (who, token, want) in managers_of_sh_bund() {
        match (report(&app, &token, "sh-bund").await, want) {
            (Ok(_), Ok(())) => {}
            (Err(s), Err(code)) => assert_eq!(s.code(), code, "{who}"),
            (got, want) => panic!("{who}: {got:?}, wanted {want:?}"),
        }
    }
    let ts = |s: i64| {
        Some(prost_types::Timestamp {
            seconds: s,
            nanos: 0,
        })
    };
    let bad: [(&str, pb::ListContactReadsRequest); 4] = [
        (
            "property_id",
            pb::ListContactReadsRequest {
                property_id: "nowhere".into(),
                time_range: last_hour(),
            },
        ),
        (
            "time_range.start_time",
            pb::ListContactReadsRequest {
                property_id: "sh-bund".into(),
                time_range: None,
            },
        ),
        (
            "time_range.end_time",
            pb::ListContactReadsRequest {
                property_id: "sh-bund".into(),
                time_range: Some(TimeRange {
                    start_time: ts(2_000_000),
                    end_time: ts(1_000_000),
                }),
            },
        ),
        (
            "time_range",
            pb::ListContactReadsRequest {
                property_id: "sh-bund".into(),
                time_range: Some(TimeRange {
                    start_time: ts(0),
                    end_time: ts(32 * 86_400),
                }),
            },
        ),
    ];
    for (field, req) in bad {
        assert_invalid(app.head_office().list_contact_reads(req).await, field);
    }
}
