//! R7: one property's system flooding the API is held to its own rate; another property's
//! calls at the same moment all go through, and so do the platform's own services.

mod common;

use common::*;
use guestloop_auth::Role;
use guestloop_proto::guestprofile::v1 as pb;
use std::time::Duration;
use tonic::Code;

/// Fires `n` GetGuest calls at once as `token`; (answered OK, refused RESOURCE_EXHAUSTED).
async fn burst(app: &TestApp, token: &str, guest_id: &str, n: usize) -> (usize, usize) {
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let mut client = app.client(token);
            let guest_id = guest_id.to_string();
            tokio::spawn(async move {
                client
                    .get_guest(pb::GetGuestRequest { guest_id })
                    .await
                    .map(|_| ())
                    .map_err(|s| s.code())
            })
        })
        .collect();
    let (mut ok, mut limited) = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            Ok(()) => ok += 1,
            Err(Code::ResourceExhausted) => limited += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    (ok, limited)
}

#[tokio::test]
async fn a_flooding_caller_is_held_to_its_rate_and_the_others_are_not() {
    let app = TestApp::spawn_with("[auth]\nper_caller_rate = 2\nper_caller_burst = 5\n").await;
    let bund = app.create_guest("sh-bund", guest()).await;
    let lake = app.create_guest("hz-lake", guest_named("Na", "Li")).await;
    let flooder = token_as("pms.sh-bund", Role::PropertyStaff, &["sh-bund"], None);
    let neighbour = token_as("pms.hz-lake", Role::PropertyStaff, &["hz-lake"], None);
    let platform = token_as("notification", Role::Service, &[], None);

    let (flood, neighbour_calls, service_calls) = tokio::join!(
        burst(&app, &flooder, &bund.guest_id, 40),
        burst(&app, &neighbour, &lake.guest_id, 5),
        burst(&app, &platform, &bund.guest_id, 40),
    );
    // A burst of 5 and 2 a second: the flood gets its burst and perhaps a refill, no more.
    assert!(flood.0 >= 5 && flood.0 <= 8, "flooder admitted {}", flood.0);
    assert_eq!(flood.0 + flood.1, 40);
    // The other property, at the same moment, is untouched; so are platform services.
    assert_eq!(neighbour_calls, (5, 0));
    assert_eq!(service_calls, (40, 0));

    // The flooder's bucket refills at its rate.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let later = burst(&app, &flooder, &bund.guest_id, 10).await;
    assert!(later.0 >= 3 && later.0 <= 5, "after 1.6 s: {later:?}");
}
