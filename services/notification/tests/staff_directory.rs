//! ListStaff: the staff directory as services see it: members holding any asked role, with
//! their property, its region and their language (their own, else their property's
//! default), never a name or an address; bad roles refused by field.

mod common;

use common::*;
use guestloop_proto::notification::v1::{self as pb, StaffRole};
use guestloop_testkit::grpc::assert_invalid;

/// A layer's `staff` replaces the test settings' list, so s-001 is repeated here.
const MORE_STAFF: &str = r#"
[[staff]]
staff_id = "s-001"
name = "Wang Fang"
property_id = "sh-bund"
roles = ["customer_service_manager", "duty_manager"]
email = "cs.manager@sh-bund.test"
language = "en"
[[staff]]
staff_id = "pm-hk"
name = "Chan Tai Man"
property_id = "hk-harbour"
roles = ["property_manager", "regional_manager"]
email = "pm@hk-harbour.test"
[[staff]]
staff_id = "ho-1"
name = "Zhou Min"
property_id = "sh-bund"
roles = ["head_office"]
email = "zhou.min@chain.test"
language = "en"
"#;

fn roles(r: &[StaffRole]) -> pb::ListStaffRequest {
    pb::ListStaffRequest {
        roles: r.iter().map(|r| *r as i32).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_see_who_holds_a_role_without_names_or_addresses() {
    let app = TestApp::spawn_with(Options {
        extra_toml: MORE_STAFF.into(),
        ..Default::default()
    })
    .await;
    let mut c = app.service();
    // (asked, expected members as (id, property, region, language, roles))
    type Member = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        Vec<StaffRole>,
    );
    let table: Vec<(Vec<StaffRole>, Vec<Member>)> = vec![
        (
            vec![StaffRole::HeadOffice],
            vec![("ho-1", "sh-bund", "east", "en", vec![StaffRole::HeadOffice])],
        ),
        (
            vec![StaffRole::RegionalManager, StaffRole::DutyManager],
            vec![
                (
                    "s-001",
                    "sh-bund",
                    "east",
                    "en",
                    vec![StaffRole::CustomerServiceManager, StaffRole::DutyManager],
                ),
                (
                    "pm-hk",
                    "hk-harbour",
                    "south",
                    "zh-TW",
                    vec![StaffRole::PropertyManager, StaffRole::RegionalManager],
                ),
            ],
        ),
        (vec![StaffRole::FrontDesk], vec![]),
    ];
    for (asked, want) in table {
        let got = c
            .list_staff(roles(&asked))
            .await
            .unwrap_or_else(|s| panic!("ListStaff {asked:?}: {s:?}"))
            .into_inner();
        let members: Vec<(&str, &str, &str, &str, Vec<StaffRole>)> = got
            .staff
            .iter()
            .map(|m| {
                (
                    m.staff_id.as_str(),
                    m.property_id.as_str(),
                    m.region_id.as_str(),
                    m.language.as_str(),
                    m.roles
                        .iter()
                        .map(|r| StaffRole::try_from(*r).expect("a role"))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(members, want, "asked {asked:?}");
        let wire = format!("{got:?}");
        for secret in ["Chan Tai Man", "Zhou Min", "Wang Fang", "@"] {
            assert!(!wire.contains(secret), "{secret} in {wire}");
        }
    }
    for (req, field) in [
        (roles(&[]), "roles"),
        (roles(&[StaffRole::Unspecified]), "roles[0]"),
        (
            pb::ListStaffRequest {
                roles: vec![StaffRole::HeadOffice as i32, 99],
            },
            "roles[1]",
        ),
    ] {
        assert_invalid(c.list_staff(req).await, field);
    }
}
